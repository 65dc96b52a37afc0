//! Diagnostics as plain data, rendered in exactly one place ([`render`]).
//!
//! Passes never format text for the terminal: they build [`Diagnostic`]
//! values. Tests check the [`Code`] (stable) rather than the wording, and the
//! rendering is pinned by snapshot tests.
use serde::Serialize;
use std::fmt;
use std::ops::Range;

mod problem;
mod render;

pub(crate) use problem::unit_words;
pub use problem::{BadLiteral, DeclFault, FieldHint, Lhist, Problem, Shown};
pub use render::{render, render_all};

/// A stable error code. Never renumber: scripts and docs refer to these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Code {
    // -- syntax (E01xx) -------------------------------------------------
    /// The grammar did not match.
    Syntax,
    /// `on PROBE` names no probe in the catalog.
    UnknownProbe,
    /// A field that the probe does not have.
    UnknownField,
    /// `$name` that the recipe does not declare.
    UndeclaredParam,
    /// An upper-case constant that is not a TCP state or family name.
    UnknownConstant,
    /// Two clauses on one line without `;`.
    MissingSeparator,
    /// `&&`, `||`, `!` or `=` instead of `and`, `or`, `not`, `==`.
    CStyleOperator,
    /// A literal that does not make sense on its own (bad address, escape,
    /// integer too large).
    InvalidLiteral,
    /// A program with no clause.
    EmptyProgram,
    /// `as NAME` that is no Prometheus metric name, or ends with a suffix
    /// the formats add (`_total`, `_count`, `_sum`, `_bucket`).
    BadMetricName,
    // -- types (E02xx) --------------------------------------------------
    /// A field compared with a value of another type.
    TypeMismatch,
    /// An operator the field's type does not support (`saddr < ...`).
    UnsupportedOperator,
    /// A value the field can never hold (`sport > 65535`).
    OutOfRange,
    /// A string longer than a `comm` (15 bytes) or containing NUL.
    StringTooLong,
    /// Two fields, or two values, compared with each other.
    NeedFieldAndValue,
    /// A literal with a unit suffix (`64KiB`).
    UnitSuffix,
    /// A non-boolean used alone as a condition.
    NotAPredicate,
    /// Arithmetic other than `FIELD / NUMBER` or `FIELD * NUMBER`.
    UnsupportedArithmetic,
    /// A number needed where the field is not one (`sum comm`).
    NotNumeric,
    /// A value that needs a unit and has none (`1.5`, `every 5`).
    MissingUnit,
    /// A modifier that does not apply (`top` on `print`), or given twice.
    BadModifier,
    /// An aggregation or a modifier after `tcpq sockets`, which lists.
    NotForSockets,
    /// A printing clause, `top`, `every` or `limit` given to `tcpq serve`,
    /// which exports aggregations.
    NotForServe,
    /// Two clauses export one metric name as different metrics (type,
    /// unit, labels, buckets), or a derived name twice.
    MetricConflict,
    /// A field of the event's header (`time`, `ktime`, `cpu`) in `where`,
    /// `count by` or an aggregation: it can only be printed.
    PrintOnly,
    // -- limits (E03xx) -------------------------------------------------
    /// The `where` clause compiles to more than `MAX_INSNS` instructions.
    FilterTooLong,
    /// The `count by` key needs more than `MAX_KEY_SLOTS` slots.
    KeyTooLarge,
    /// An `in` set with more than `MAX_SET_ITEMS` items.
    TooManyItems,
    /// `lhist` bounds that do not make buckets (`min >= max`, step 0,
    /// range not a multiple of the step, too many buckets).
    BadHistogram,
    /// More than `MAX_CLAUSES` clauses in one program.
    TooManyClauses,
    /// A clause reads more socket fields than a template loads
    /// (`MAX_LOADS`).
    TooManyFields,
    // -- recipes and parameters (E04xx) ---------------------------------
    /// `--param` names a parameter the recipe does not declare.
    UnknownParam,
    /// A parameter without default was not given.
    MissingParam,
    /// A `--param` value (or a default) does not parse as its type.
    BadParamValue,
    /// The same `--param` given twice.
    DuplicateParam,
    /// A malformed `@param` line (unknown type, no name, ...).
    BadParamDecl,
    /// The same parameter declared twice.
    DuplicateParamDecl,
    /// An `@word` in the header that is not `@param` or `@example`.
    UnknownDirective,
    // -- this kernel (E05xx), found by the runtime ----------------------
    /// A field the program uses that this kernel cannot provide (its
    /// struct member is missing from BTF, or the tracepoint lacks it).
    FieldUnavailable,
    /// A named kernel constant (`reason == NETFILTER_DROP`) that this
    /// kernel's BTF enum does not have.
    ConstantUnavailable,
    /// No strategy of a probe can run on this kernel (its attach points
    /// or what they need are missing, or none fills a field the clause
    /// uses).
    ProbeUnavailable,
    // -- tcpq itself (E09xx) ----------------------------------------------
    /// A pass produced something inconsistent (a `where` clause that
    /// compiled to nothing without an error): a bug in tcpq, reported
    /// instead of running a program that means less than was written.
    Internal,
}

impl Code {
    /// All codes, for tests and documentation.
    pub const ALL: &'static [Code] = &[
        Code::Syntax,
        Code::UnknownProbe,
        Code::UnknownField,
        Code::UndeclaredParam,
        Code::UnknownConstant,
        Code::MissingSeparator,
        Code::CStyleOperator,
        Code::InvalidLiteral,
        Code::EmptyProgram,
        Code::BadMetricName,
        Code::TypeMismatch,
        Code::UnsupportedOperator,
        Code::OutOfRange,
        Code::StringTooLong,
        Code::NeedFieldAndValue,
        Code::UnitSuffix,
        Code::NotAPredicate,
        Code::UnsupportedArithmetic,
        Code::NotNumeric,
        Code::MissingUnit,
        Code::BadModifier,
        Code::NotForSockets,
        Code::PrintOnly,
        Code::NotForServe,
        Code::MetricConflict,
        Code::FilterTooLong,
        Code::KeyTooLarge,
        Code::TooManyItems,
        Code::BadHistogram,
        Code::TooManyClauses,
        Code::TooManyFields,
        Code::UnknownParam,
        Code::MissingParam,
        Code::BadParamValue,
        Code::DuplicateParam,
        Code::BadParamDecl,
        Code::DuplicateParamDecl,
        Code::UnknownDirective,
        Code::FieldUnavailable,
        Code::ConstantUnavailable,
        Code::ProbeUnavailable,
        Code::Internal,
    ];

    /// The number shown as `E0102`.
    pub fn number(self) -> u16 {
        match self {
            Code::Syntax => 100,
            Code::UnknownProbe => 101,
            Code::UnknownField => 102,
            Code::UndeclaredParam => 103,
            Code::UnknownConstant => 104,
            Code::MissingSeparator => 105,
            Code::CStyleOperator => 106,
            Code::InvalidLiteral => 107,
            Code::EmptyProgram => 108,
            Code::BadMetricName => 109,
            Code::TypeMismatch => 201,
            Code::UnsupportedOperator => 202,
            Code::OutOfRange => 203,
            Code::StringTooLong => 204,
            Code::NeedFieldAndValue => 205,
            Code::UnitSuffix => 206,
            Code::NotAPredicate => 207,
            Code::UnsupportedArithmetic => 208,
            Code::NotNumeric => 209,
            Code::MissingUnit => 210,
            Code::BadModifier => 211,
            Code::NotForSockets => 212,
            Code::PrintOnly => 213,
            Code::NotForServe => 214,
            Code::MetricConflict => 215,
            Code::FilterTooLong => 301,
            Code::KeyTooLarge => 302,
            Code::TooManyItems => 303,
            Code::BadHistogram => 304,
            Code::TooManyClauses => 305,
            Code::TooManyFields => 306,
            Code::UnknownParam => 401,
            Code::MissingParam => 402,
            Code::BadParamValue => 403,
            Code::DuplicateParam => 404,
            Code::BadParamDecl => 405,
            Code::DuplicateParamDecl => 406,
            Code::UnknownDirective => 407,
            Code::FieldUnavailable => 501,
            Code::ConstantUnavailable => 502,
            Code::ProbeUnavailable => 503,
            Code::Internal => 900,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E{:04}", self.number())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, with where it is and how to fix it.
///
/// A diagnostic with an empty `label` has no place in the source (e.g. an
/// unknown `--param` name): [`render`] then prints no snippet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// Byte offsets into the source.
    pub span: Range<usize>,
    /// Shown under the caret.
    pub label: String,
    pub help: Option<String>,
    /// What was found, when the diagnostic was built from a [`Problem`]:
    /// the data its words come from.
    #[serde(skip)]
    pub problem: Option<Problem>,
}

impl Diagnostic {
    /// The diagnostic for `problem` at `span`, worded by `Problem::words`.
    pub fn new(problem: Problem, span: Range<usize>) -> Self {
        let w = problem.words();
        Diagnostic {
            code: problem.code(),
            severity: Severity::Error,
            message: w.message,
            span,
            label: w.label,
            help: w.help,
            problem: Some(problem),
        }
    }

    /// [`Diagnostic::new`] with no place in the source.
    pub fn unlocated_problem(problem: Problem) -> Self {
        let mut d = Self::new(problem, 0..0);
        d.label.clear();
        d
    }

    pub fn error(
        code: Code,
        message: impl Into<String>,
        span: Range<usize>,
        label: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            span,
            label: label.into(),
            help: None,
            problem: None,
        }
    }

    /// A diagnostic that does not point into the source.
    pub fn unlocated(code: Code, message: impl Into<String>) -> Self {
        Self::error(code, message, 0..0, "")
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    pub fn is_located(&self) -> bool {
        !self.label.is_empty() || !self.span.is_empty()
    }
}

/// Did-you-mean: the candidate closest to `word` by edit distance, if close
/// enough to be a likely typo. A case-insensitive exact match wins.
pub fn suggest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if c.to_ascii_lowercase() == lower {
            return Some(c);
        }
        let d = edit_distance(&lower, &c.to_ascii_lowercase());
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal string alignment distance (Levenshtein plus adjacent
/// transpositions, the most common typo).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_formatted() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.number()), "{c:?} reuses a number");
        }
        assert_eq!(Code::UnknownField.to_string(), "E0102");
    }

    /// A pass says what it found; the words come from it. Tests can match
    /// the data rather than the text.
    #[test]
    fn diagnostics_carry_what_was_found() {
        let src = "on tcp_select_window where wn == 0 print pid, comm";
        let d = crate::compile(src, "<test>", &[]).unwrap_err();
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].problem,
            Some(Problem::UnknownField {
                name: "wn".into(),
                probe: "tcp_select_window",
                hint: FieldHint::Suggest("win".into()),
            })
        );
        assert_eq!(d[0].code, Code::UnknownField);
        assert_eq!(d[0].span, 27..29);
        assert_eq!(d[0].help.as_deref(), Some("did you mean `win`?"));
    }

    /// A problem with no place in the source (a `--param` name) has no
    /// label, so it renders without a snippet.
    #[test]
    fn unlocated_problems_have_no_place() {
        let d = Diagnostic::unlocated_problem(Problem::DuplicateParam { name: "p".into() });
        assert!(!d.is_located());
        assert_eq!(d.code, Code::DuplicateParam);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("wn", ["win", "seq"]), Some("win"));
        assert_eq!(suggest("rcv_wdn", ["rcv_wnd", "snd_wnd"]), Some("rcv_wnd"));
        assert_eq!(suggest("established", ["ESTABLISHED"]), Some("ESTABLISHED"));
        assert_eq!(suggest("zzzzzz", ["win"]), None);
    }
}
