//! What went wrong, as data, and every sentence tcpq says about it.
//!
//! The passes (parse, resolve, check, recipes, sockets) build a [`Problem`]
//! carrying what they found (the name, the field, the suggestion) and where;
//! [`Problem::words`] is the only place that turns one into a message, a
//! label and a help line (gleam's `compiler-core/src/error.rs` does the
//! same). A test can match on the variant; the wording is pinned by the
//! snapshot tests.
use super::Code;
use crate::ast::Literal;
use crate::catalog::{self, Unreported};
use crate::plan::{FieldType, Unit};
use crate::recipe::ParamType;

/// One problem a pass found, with what it found. Each variant has one
/// [`Code`] ([`Problem::code`]); several variants may share one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    // -- names beside a field (resolve) ---------------------------------
    /// A bare name compared with a command-name field (`comm == nginx`).
    NameForString { name: String, field: &'static str },
    /// A host name compared with an address field (`daddr == localhost`).
    HostName { name: String, field: &'static str },
    /// A name on the value side that is no constant of the field.
    NameNotAValue { name: String, field: &'static str },
    /// A TCP state or address family that does not exist.
    UnknownStateOrFamily {
        /// "TCP state" or "address family".
        what: &'static str,
        name: String,
        suggestion: Option<String>,
        candidates: Vec<&'static str>,
    },
    /// `err == EPRM`.
    UnknownErrno {
        name: String,
        field: &'static str,
        /// The name in upper case, when that is an errno.
        upper_case: Option<String>,
        suggestion: Option<String>,
    },
    /// A drop or reset reason that tcpq does not know.
    UnknownReason {
        name: String,
        /// "drop reason" or "reset reason".
        what: &'static str,
        enum_name: &'static str,
        /// The name in upper case, when that is a reason.
        upper_case: Option<String>,
        suggestion: Option<String>,
        probe: &'static str,
    },
    /// A bare name in a set of command names (`comm in [nginx]`), with the
    /// set as it should be written.
    NameInCommSet {
        name: String,
        field: &'static str,
        fixed: Vec<String>,
    },
    /// A bare name in a set of `field`'s values.
    NameInSet {
        name: String,
        field: &'static str,
        ty: FieldType,
        /// The name is a field of the same probe.
        is_field: bool,
    },
    /// A bare name in a set whose field is unknown.
    NameInUnknownSet { name: String },
    // -- the shape of a condition (resolve) -----------------------------
    /// Arithmetic other than `FIELD / NUMBER`, `FIELD * NUMBER`.
    UnsupportedArithmetic,
    /// `win / 2 in [...]`.
    ArithmeticBeforeIn,
    /// `80 in [...]`.
    InNeedsField,
    /// `daddr == 10.0.0.0/8`.
    PrefixCompared {
        field: String,
        prefix: String,
        /// The operator as written.
        op: &'static str,
    },
    /// `win == rcv_wnd`.
    TwoFields { a: String, b: String },
    /// `1 == 2`, `$p == 0`; `param` is the first parameter named.
    TwoValues { param: Option<String> },
    /// `where 5`.
    ValueAlone,
    // -- conditions (check) ---------------------------------------------
    /// An `in` set over `MAX_SET_ITEMS`.
    TooManyItems { items: usize, max: usize },
    /// `comm in a..b`.
    RangeNotNumeric { field: &'static str, ty: FieldType },
    /// `5..1`.
    EmptyRange { lo: String, hi: String },
    /// `dport in 10.0.0.0/8`.
    PrefixNotAddress {
        field: &'static str,
        ty: FieldType,
        prefix: String,
    },
    /// `where win`, `win` not a boolean.
    NotABoolean { field: &'static str },
    /// `state < ESTABLISHED`; `constant` is the kernel enum constant
    /// compared with, if that is why.
    CannotBeOrdered {
        field: &'static str,
        ty: FieldType,
        constant: Option<String>,
    },
    /// `win * 4 == 6`.
    NeverMultiple {
        field: &'static str,
        factor: i128,
        value: i128,
        always: bool,
    },
    /// `win / 0`.
    NotPositive { value: Shown, field: &'static str },
    /// A number needed, something else found.
    NotANumber {
        value: Shown,
        kind: &'static str,
        field: String,
    },
    /// `1.5` for a field whose unit cannot make it whole.
    FractionWithoutUnit {
        value: Shown,
        literal: String,
        field: String,
        unit: Unit,
    },
    /// `64KiB` for a field in microseconds.
    NotAUnit {
        suffix: String,
        field: String,
        unit: Unit,
    },
    /// `1.5us` for a field in microseconds.
    NotWholeInUnit {
        value: Shown,
        field: String,
        unit: Unit,
    },
    /// A field compared with a value of another type.
    Mismatch {
        field: &'static str,
        ty: FieldType,
        value: Shown,
        kind: &'static str,
        /// Said by the caller, from what it knows about the value.
        help: Option<String>,
    },
    /// A value past the field's range.
    OutOfRange {
        value: Shown,
        field: &'static str,
        ty: FieldType,
        bits: u8,
        lo: i128,
        hi: i128,
        /// The value is below `lo`.
        below: bool,
        /// The field's twin in bytes (`win_bytes` for `win`).
        bytes_twin: Option<&'static str>,
    },
    /// `sport > 65535`, `win >= 0`.
    AlwaysOrNever {
        field: &'static str,
        ty: FieldType,
        lo: i128,
        hi: i128,
        always: bool,
    },
    /// `state == "ESTABLISHD"`.
    NotATcpState {
        value: Shown,
        suggestion: Option<String>,
    },
    /// `err == "EPRM"`.
    NotAnErrnoName {
        value: Shown,
        suggestion: Option<String>,
    },
    /// `err < EPERM`.
    ErrnoOrdered { value: Shown, field: &'static str },
    /// `err == 1`; `errno` names the error whose negative this is.
    ErrnoPositive {
        value: Shown,
        number: i128,
        field: &'static str,
        errno: Option<&'static str>,
    },
    /// `err == EPERM` where the kernel never reports EPERM.
    ErrnoNeverHere {
        field: &'static str,
        errno: &'static str,
        why: Unreported,
        always: bool,
    },
    /// `comm == "*nginx"`; `at` is where the pattern starts, `stem` the
    /// name without pattern characters.
    ShellPattern {
        value: Shown,
        field: &'static str,
        before: String,
        stem: String,
        leading: bool,
    },
    /// `comm == "a-very-long-name*"`.
    CommPrefixTooLong { value: Shown },
    /// `comm == "a-very-long-name"`, or with a NUL.
    CommTooLong { value: Shown, len: usize, nul: bool },
    /// A `where` clause over `MAX_INSNS` instructions.
    FilterTooLong { insns: usize, max: usize },
    // -- actions (check) ------------------------------------------------
    /// A `count by` (or `AGG by`, `what`) key over `MAX_KEY_SLOTS`.
    KeyTooLarge {
        what: String,
        slots: usize,
        max: usize,
        /// A histogram's bucket takes one of the slots.
        histogram: bool,
    },
    /// `time`, `ktime`, `cpu` used in `what` (`where`, `count by`, ...).
    PrintOnly {
        field: &'static str,
        what: String,
        /// The field is `cpu` (which no interval aggregation stamps).
        cpu: bool,
    },
    /// `sum comm`, `win_bytes / 2` on a signed field.
    NotNumeric {
        field: &'static str,
        ty: FieldType,
        what: String,
    },
    /// `sum err`.
    ErrnoAggregated { field: &'static str, func: String },
    /// `lhist` bounds that make no buckets.
    BadHistogram(Lhist),
    /// `print win - 1`.
    PrintArithmetic { op: &'static str },
    /// More than `MAX_CLAUSES` clauses.
    TooManyClauses { clauses: usize, max: usize },
    /// A clause reading more socket fields than `MAX_LOADS`.
    TooManyFields { fields: usize, max: usize },
    /// A modifier on the wrong action, or given twice.
    BadModifier {
        word: &'static str,
        twice: bool,
        /// `word` is `top`/`every` after `print` (or `limit` after an
        /// aggregation).
        misplaced: bool,
    },
    /// `every 1ms`.
    EveryTooShort { value: String, min_ms: u64 },
    /// `top 0`, `limit x`.
    NotACount { word: &'static str, value: String },
    /// `every 5`, `--duration 5`.
    DurationWithoutUnit { name: String, value: String },
    /// `--duration -1s`.
    NegativeDuration { name: String, value: String },
    /// `--duration` past 2^64 - 1 ms.
    DurationTooLong { name: String, value: String },
    // -- metrics (check, and `tcpq serve`) ------------------------------
    /// `as 9lives`, `as tcp-zero`, `as x_total`.
    BadMetricName {
        name: String,
        fault: crate::metrics::NameFault,
    },
    /// A part of a program `tcpq serve` cannot export: `what` is `print`,
    /// `top`, `every` or `limit`.
    NotForServe { what: &'static str },
    /// A clause exports `name` as another clause does, but differently;
    /// `first` says where the other one is, `why` how they differ (or
    /// that a derived name is taken).
    MetricConflict {
        name: String,
        first: String,
        why: String,
        /// This clause's name is derived, not given with `as`.
        derived: bool,
    },
    // -- names (resolve) ------------------------------------------------
    /// `on PROBE` names no probe.
    UnknownProbe {
        name: String,
        suggestion: Option<String>,
        probes: Vec<&'static str>,
    },
    /// A field that the probe does not have.
    UnknownField {
        name: String,
        probe: &'static str,
        hint: FieldHint,
    },
    /// `$name` that the recipe does not declare.
    UndeclaredParam {
        name: String,
        suggestion: Option<String>,
        /// The program declares no parameter at all (`-e`).
        none_declared: bool,
    },
    /// `$ports in [...]` with a set parameter.
    SetNotAField,
    /// `where $ports`.
    SetAlone,
    /// A set parameter in arithmetic, or compared with a value.
    SetMisused {
        name: String,
        given: String,
        arithmetic: bool,
    },
    /// `dport < $ports`.
    SetOrdered {
        name: String,
        given: String,
        field: String,
        op: &'static str,
    },
    // -- syntax (parse) -------------------------------------------------
    /// A program with no clause.
    EmptyProgram,
    /// Nothing to parse at all.
    EmptyInput,
    /// `on a print x on b print y` on one line.
    MissingSeparator,
    /// More operators than any valid clause has.
    TooComplex {
        /// Too deep (parentheses, `not`) rather than too long.
        nesting: bool,
        max_nesting: usize,
        max_connectives: usize,
        max_insns: usize,
    },
    /// `&&`, `||`, `!`; `word` is tcpq's spelling.
    CStyleOperator { written: String, word: &'static str },
    /// `win = 0`.
    SingleEquals,
    /// A literal that does not make sense on its own.
    BadLiteral(BadLiteral),
    /// Every clause switched off by its parameters; `left_out` names them.
    AllSwitchedOff { left_out: Vec<String> },
    /// `-p 4242` on a clause whose probe has no `pid`.
    RestrictionField {
        flag: String,
        field: &'static str,
        probe: &'static str,
    },
    // -- recipes and parameters -----------------------------------------
    /// The same `@param` twice.
    DuplicateParamDecl { name: String },
    /// `@parm`.
    UnknownDirective {
        word: String,
        suggestion: Option<String>,
    },
    /// A `@param` line that is not `NAME: TYPE [= DEFAULT] HELP`.
    MalformedParamDecl(DeclFault),
    /// `@param p: int`.
    UnknownParamType {
        word: String,
        suggestion: Option<String>,
        types: Vec<&'static str>,
    },
    /// `@param p: port? = 80`.
    OptionalWithDefault {
        name: String,
        ty_word: String,
        default: String,
    },
    /// A default that does not parse as the parameter's type; `reason`
    /// is [`crate::recipe`]'s value parser's.
    BadDefault {
        name: String,
        ty: ParamType,
        reason: String,
    },
    /// `--param a=1 --param a=2`.
    DuplicateParam { name: String },
    /// `--param` naming no declared parameter.
    UnknownParam {
        name: String,
        suggestion: Option<String>,
        declared: Vec<String>,
    },
    /// A `--param` value that does not parse as its type.
    BadParamValue {
        name: String,
        text: String,
        ty: ParamType,
        reason: String,
    },
    /// A parameter without default, not given.
    MissingParam { name: String, ty: ParamType },
    // -- tcpq sockets ---------------------------------------------------
    /// `tcpq sockets count`.
    SocketsAggregate,
    /// `tcpq sockets ... top 5`.
    SocketsModifier,
    /// A field `tcpq sockets` does not have.
    SocketsUnknownField { name: String, hint: FieldHint },
    // -- this kernel (found by the runtime) -----------------------------
    /// A field this kernel cannot provide; `probe` is `None` for
    /// `tcpq sockets`.
    FieldUnavailable {
        field: String,
        probe: Option<String>,
        why: String,
    },
    /// A named kernel constant this kernel's BTF lacks.
    /// No strategy of `probe` runs on this kernel: `why` lists each one
    /// tried and what it lacks.
    ProbeUnavailable { probe: String, why: String },
    ConstantUnavailable {
        constant: String,
        enum_name: String,
        why: String,
        suggestion: Option<String>,
    },
    // -- tcpq itself ----------------------------------------------------
    /// A `where` clause that compiled to nothing without an error.
    FilterLost,
    /// A sockets query that resolved to no clause.
    SocketsNoClause,
    /// A sockets query that resolved to an aggregation.
    SocketsNotAListing,
    /// A kernel constant in a sockets query.
    SocketsConstant,
    /// The grammar and the syntax-tree builder disagree.
    TreeShape,
}

/// What a malformed `@param` line lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclFault {
    /// No `: TYPE`.
    NoType,
    /// No name before the `:`.
    NoName,
    /// `= "abc` without the closing quote.
    UnclosedQuote,
}

/// What is wrong with a literal (all [`Code::InvalidLiteral`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadLiteral {
    /// `10.0.0.0/40`.
    PrefixLength { len: String, max: u8 },
    /// Not an address at all.
    NotAnAddress { text: String },
    /// An integer past 64 bits.
    TooLarge { text: String },
    /// `0x`.
    NoHexDigits { text: String },
    /// `256.1.1.1`.
    NotIpv4 { text: String },
    /// `fe80:::1`.
    NotIpv6 { text: String },
    /// `"\q"`.
    UnknownEscape { escape: char },
    /// `"abc\`.
    TrailingBackslash,
}

/// What tcpq can tell about an unknown field's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldHint {
    /// A near name (or an alias from another tool) of the probe.
    Suggest(String),
    /// A field of another probe.
    OtherProbe(&'static str),
    /// bpftrace's `arg0`.
    Positional,
    /// Compared with a string: a word meant as a field?
    ComparedWithString,
    Nothing,
}

/// What is wrong with `lhist FIELD, MIN, MAX, STEP`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lhist {
    /// A negative STEP, or negative bounds for an unsigned field.
    Negative { field: &'static str, step: bool },
    /// Bounds past 64-bit signed integers.
    Beyond64,
    /// MIN >= MAX or STEP 0.
    Order { lo: i64, hi: i64, step: u64 },
    /// MAX - MIN not a multiple of STEP; `fixed` is the MAX that would be.
    NotMultiple {
        lo: i64,
        hi: i64,
        step: u64,
        unit: Unit,
        fixed: i128,
    },
    /// More buckets than a template has.
    TooManyBuckets { buckets: u64, max: u64 },
}

/// A value as the program wrote it, and the parameter it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub value: String,
    pub param: Option<String>,
}

impl Shown {
    pub fn of(l: &Literal) -> Self {
        Shown {
            value: l.value.to_string(),
            param: l.from_param.clone(),
        }
    }
}

/// How a value reads in an error: `8080` or `$port (8080)`.
impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.param {
            Some(p) => write!(f, "`${p}` ({})", self.value),
            None => write!(f, "`{}`", self.value),
        }
    }
}

/// The words of one diagnostic.
pub(crate) struct Words {
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

fn words(message: impl Into<String>, label: impl Into<String>, help: impl Into<String>) -> Words {
    Words {
        message: message.into(),
        label: label.into(),
        help: Some(help.into()),
    }
}

fn did_you_mean(s: &str) -> String {
    format!("did you mean `{s}`?")
}

impl Problem {
    /// The stable code shown as `E0xxx`.
    pub fn code(&self) -> Code {
        use Problem::*;
        match self {
            NameForString { .. } => Code::UnknownField,
            HostName { .. } | NameInCommSet { .. } => Code::TypeMismatch,
            NameNotAValue { .. }
            | NameInSet { .. }
            | NameInUnknownSet { .. }
            | InNeedsField
            | TwoFields { .. }
            | TwoValues { .. } => Code::NeedFieldAndValue,
            UnknownStateOrFamily { .. } | UnknownErrno { .. } | UnknownReason { .. } => {
                Code::UnknownConstant
            }
            UnsupportedArithmetic | ArithmeticBeforeIn => Code::UnsupportedArithmetic,
            PrefixCompared { .. } => Code::UnsupportedOperator,
            ValueAlone | NotABoolean { .. } => Code::NotAPredicate,
            TooManyItems { .. } => Code::TooManyItems,
            RangeNotNumeric { .. }
            | PrefixNotAddress { .. }
            | NotANumber { .. }
            | Mismatch { .. } => Code::TypeMismatch,
            EmptyRange { .. }
            | NeverMultiple { .. }
            | NotPositive { .. }
            | OutOfRange { .. }
            | AlwaysOrNever { .. }
            | ErrnoPositive { .. }
            | ErrnoNeverHere { .. } => Code::OutOfRange,
            CannotBeOrdered { .. } | ErrnoOrdered { .. } => Code::UnsupportedOperator,
            FractionWithoutUnit { .. } => Code::MissingUnit,
            NotAUnit { .. } => Code::UnitSuffix,
            NotWholeInUnit { .. } | ShellPattern { .. } => Code::InvalidLiteral,
            NotATcpState { .. } | NotAnErrnoName { .. } => Code::UnknownConstant,
            CommPrefixTooLong { .. } | CommTooLong { .. } => Code::StringTooLong,
            FilterTooLong { .. } => Code::FilterTooLong,
            KeyTooLarge { .. } => Code::KeyTooLarge,
            PrintOnly { .. } => Code::PrintOnly,
            NotNumeric { .. } | ErrnoAggregated { .. } => Code::NotNumeric,
            BadHistogram(_) => Code::BadHistogram,
            PrintArithmetic { .. } => Code::UnsupportedArithmetic,
            TooManyClauses { .. } => Code::TooManyClauses,
            TooManyFields { .. } => Code::TooManyFields,
            BadMetricName { .. } => Code::BadMetricName,
            NotForServe { .. } => Code::NotForServe,
            MetricConflict { .. } => Code::MetricConflict,
            FilterLost | SocketsConstant => Code::Internal,
            SocketsNoClause => Code::Syntax,
            SocketsAggregate | SocketsModifier | SocketsNotAListing => Code::NotForSockets,
            SocketsUnknownField { .. } | RestrictionField { .. } => Code::UnknownField,
            AllSwitchedOff { .. } => Code::EmptyProgram,
            DuplicateParamDecl { .. } => Code::DuplicateParamDecl,
            UnknownDirective { .. } => Code::UnknownDirective,
            MalformedParamDecl(_) | UnknownParamType { .. } | OptionalWithDefault { .. } => {
                Code::BadParamDecl
            }
            BadDefault { .. } | BadParamValue { .. } => Code::BadParamValue,
            DuplicateParam { .. } => Code::DuplicateParam,
            UnknownParam { .. } => Code::UnknownParam,
            MissingParam { .. } => Code::MissingParam,
            FieldUnavailable { .. } => Code::FieldUnavailable,
            ConstantUnavailable { .. } => Code::ConstantUnavailable,
            ProbeUnavailable { .. } => Code::ProbeUnavailable,
            TreeShape | EmptyInput => Code::Syntax,
            EmptyProgram => Code::EmptyProgram,
            MissingSeparator => Code::MissingSeparator,
            TooComplex { .. } => Code::FilterTooLong,
            CStyleOperator { .. } | SingleEquals => Code::CStyleOperator,
            BadLiteral(_) => Code::InvalidLiteral,
            BadModifier { .. } => Code::BadModifier,
            EveryTooShort { .. } | NegativeDuration { .. } | DurationTooLong { .. } => {
                Code::OutOfRange
            }
            NotACount { .. } => Code::InvalidLiteral,
            DurationWithoutUnit { .. } => Code::MissingUnit,
            UnknownProbe { .. } => Code::UnknownProbe,
            UnknownField { .. } => Code::UnknownField,
            UndeclaredParam { .. } => Code::UndeclaredParam,
            SetNotAField => Code::NeedFieldAndValue,
            SetAlone => Code::NotAPredicate,
            SetMisused {
                arithmetic: true, ..
            } => Code::UnsupportedArithmetic,
            SetMisused { .. } => Code::NeedFieldAndValue,
            SetOrdered { .. } => Code::UnsupportedOperator,
        }
    }

    /// Message, label and help: every sentence, in one `match`.
    pub(crate) fn words(&self) -> Words {
        use Problem::*;
        match self {
            NameForString { name, field } => words(
                format!("`{name}` is not a field; `{field}` compares with a string"),
                "a name, not a string",
                format!("quote it: `{field} == \"{name}\"`"),
            ),
            HostName { name, field } => {
                let example = if name == "localhost" {
                    format!("`{field} == 127.0.0.1` or `{field} == ::1`")
                } else {
                    format!("`{field} == 192.0.2.10`")
                };
                words(
                    format!("`{name}` is a name; `{field}` holds an address"),
                    "a name, not an address",
                    format!(
                        "tcpq compares addresses and never resolves host names: write {example}"
                    ),
                )
            }
            NameNotAValue { name, field } => words(
                format!("`{field}` is compared with `{name}`, which is not a value"),
                "expected a value here",
                "compare a field with a literal value; comparing two fields is not supported",
            ),
            UnknownStateOrFamily {
                what,
                name,
                suggestion,
                candidates,
            } => words(
                format!("unknown {what} `{name}`"),
                format!("not a {what}"),
                match suggestion {
                    Some(s) => did_you_mean(s),
                    None => format!("{what}s are {}", candidates.join(", ")),
                },
            ),
            UnknownErrno {
                name,
                field,
                upper_case,
                suggestion,
            } => words(
                format!("unknown errno `{name}`"),
                "not an errno name",
                match (upper_case, suggestion) {
                    (Some(upper), _) => format!("errno names are upper case: `{upper}`"),
                    (None, Some(s)) => did_you_mean(s),
                    (None, None) => format!(
                        "`{field}` holds an errno, by name as in the kernel's headers: `EPERM`, \
                         `ENOBUFS`, ... (or NET_XMIT_DROP)"
                    ),
                },
            ),
            UnknownReason {
                name,
                what,
                enum_name,
                upper_case,
                suggestion,
                probe,
            } => words(
                format!("unknown {what} `{name}`"),
                format!("not in `enum {enum_name}`"),
                match (upper_case, suggestion) {
                    (Some(upper), _) => format!("reasons are upper case: `{upper}`"),
                    (None, Some(s)) => did_you_mean(s),
                    (None, None) => format!(
                        "`tcpq -l {probe}` lists the reasons tcpq knows (`enum {enum_name}` of \
                         Linux 6.18); a reason newer than that can be compared by its number"
                    ),
                },
            ),
            NameInCommSet { name, field, fixed } => words(
                format!("`{name}` is a name, but `{field}` holds command names, which are strings"),
                "a name, not a string",
                format!(
                    "strings are quoted: \"{name}\"; write `{field} in [{}]`",
                    fixed.join(", ")
                ),
            ),
            NameInSet {
                name,
                field,
                ty,
                is_field,
            } => {
                let ty_words = crate::catalog::type_words(*ty);
                words(
                    if *is_field {
                        format!("`{name}` is a field, not a value")
                    } else {
                        format!("`{name}` is not a value")
                    },
                    format!("expected {ty_words}"),
                    format!(
                        "a set holds values of `{field}` ({ty_words}), e.g. `{}`",
                        set_example(field, *ty)
                    ),
                )
            }
            NameInUnknownSet { name } => words(
                format!("`{name}` is a name, not a value"),
                "not a value",
                "a set holds values: numbers, quoted strings, addresses, \
                 ranges (`8000..8100`) or prefixes (`10.0.0.0/8`)",
            ),
            UnsupportedArithmetic => words(
                "this arithmetic is not supported",
                "not `FIELD / NUMBER` or `FIELD * NUMBER`",
                "a condition can compare `FIELD / NUMBER` or `FIELD * NUMBER` with a value, \
                 e.g. `win_bytes / 1024 > 64`; compute the constant yourself otherwise",
            ),
            ArithmeticBeforeIn => words(
                "arithmetic before `in` is not supported",
                "write the field alone",
                "scale the set's values instead, e.g. `win_bytes in 64KiB..128KiB`",
            ),
            InNeedsField => words(
                "`in` needs a field on its left",
                "not a field",
                "write e.g. `dport in [80, 443]`",
            ),
            PrefixCompared { field, prefix, op } => {
                let fix = if *op == "!=" {
                    format!("not {field} in {prefix}")
                } else {
                    format!("{field} in {prefix}")
                };
                words(
                    format!("`{prefix}` is an address prefix; `{op}` compares one address"),
                    format!("a prefix compared with `{op}`"),
                    format!("test membership with `in`: `{fix}`"),
                )
            }
            TwoFields { a, b } => words(
                format!("`{a}` and `{b}` are both fields"),
                "two fields compared",
                "compare a field with a literal value; comparing two fields is not supported yet",
            ),
            TwoValues { param } => words(
                "two values compared with each other",
                "no field here",
                match param {
                    // `$port == 0 or dport == $port`: the way to say
                    // "filter on it only when it is given".
                    Some(p) => format!(
                        "a comparison needs a field on one side; to filter only when \
                         `--param {p}` is given, declare it optional (`# @param {p}: TYPE?`) \
                         and write only the comparison with the field (`FIELD == ${p}`): \
                         without `--param {p}`, every comparison that uses `${p}` is left out"
                    ),
                    None => "a comparison needs a field on one side, e.g. `win == 0`".into(),
                },
            ),
            ValueAlone => words(
                "a value alone is not a condition",
                "expected a comparison",
                "compare a field with it, e.g. `win == 0`",
            ),
            TooManyItems { items, max } => words(
                format!("this set has {items} items; at most {max} fit"),
                "too many items",
                "use ranges (`8000..8100`, `10.0.0.0/8`) or split the question across clauses",
            ),
            RangeNotNumeric { field, ty } => words(
                format!(
                    "`{field}` is {}: a numeric range does not apply",
                    type_article(*ty)
                ),
                "a range of numbers",
                if *ty == FieldType::Addr {
                    format!("address ranges are prefixes: `{field} in 10.0.0.0/8`")
                } else {
                    format!("list the values: `{field} in [A, B]`")
                },
            ),
            EmptyRange { lo, hi } => words(
                format!("the range {lo}..{hi} is empty"),
                "empty range",
                format!("write the smaller bound first: `{hi}..{lo}`"),
            ),
            PrefixNotAddress { field, ty, prefix } => words(
                format!(
                    "`{field}` is {}, but `{prefix}` is an address range",
                    type_article(*ty)
                ),
                format!("expected {}", type_article(*ty)),
                "address ranges apply to `saddr` and `daddr`",
            ),
            NotABoolean { field } => words(
                format!("`{field}` is not a boolean"),
                "not a condition on its own",
                format!("compare it with a value, e.g. `{field} != 0`"),
            ),
            CannotBeOrdered {
                field,
                ty,
                constant,
            } => words(
                format!("`{field}` is {}: it cannot be ordered", type_article(*ty)),
                "only `==` and `!=` here",
                match (constant, ty) {
                    (Some(c), _) => format!(
                        "`{c}` names a kernel enum constant; their numbers differ between kernels \
                         and have no order: compare with `==` or `!=`, or list several with `in [...]`"
                    ),
                    (None, FieldType::TcpState) => {
                        "TCP state numbers do not follow a connection's life (LISTEN is 10, CLOSE 7); \
                         compare with `==` or `!=`, joined with `or`"
                            .to_string()
                    }
                    (None, FieldType::Bool) => format!("write `{field}` or `not {field}`"),
                    (None, FieldType::Addr) => {
                        "compare addresses with `==` or `!=` (address ranges are not supported yet)"
                            .to_string()
                    }
                    (None, _) => format!("compare `{field}` with `==` or `!=`"),
                },
            ),
            NeverMultiple {
                field,
                factor: k,
                value: c,
                always,
            } => words(
                format!(
                    "this comparison is {} true: `{field} * {k}` is a multiple of {k}, {c} is not",
                    always_never(*always)
                ),
                format!("{} true", always_never(*always)),
                "compare with a multiple of the factor, or use `<`/`>`",
            ),
            NotPositive { value, field } => words(
                format!("{value} is not a positive number"),
                "must be at least 1",
                format!("divide or multiply `{field}` by a number from 1 up"),
            ),
            NotANumber { value, kind, field } => words(
                format!("{value} is {kind}, not a number"),
                "expected a number",
                format!("`{field}` takes a number here"),
            ),
            FractionWithoutUnit {
                value,
                literal,
                field,
                unit,
            } => words(
                format!("{value} has a fraction but no unit"),
                "fraction without a unit",
                match unit_examples(*unit) {
                    Some(ex) => {
                        format!("a fraction needs a unit that makes it whole, e.g. `{literal}{ex}`")
                    }
                    None => format!("`{field}` counts whole things: write a whole number"),
                },
            ),
            NotAUnit {
                suffix,
                field,
                unit,
            } => words(
                format!("`{suffix}` is not a unit of `{field}`"),
                if *unit == Unit::None {
                    format!("`{field}` has no unit")
                } else {
                    format!("`{field}` is in {}", unit_words(*unit))
                },
                match unit_examples(*unit) {
                    Some(_) => format!(
                        "`{field}` is in {}: write {}",
                        unit_words(*unit),
                        unit_list(*unit)
                    ),
                    None => format!("`{field}` has no unit: write a plain number"),
                },
            ),
            NotWholeInUnit { value, field, unit } => words(
                format!("{value} is not a whole number of {}", unit_words(*unit)),
                "not whole in this unit",
                format!(
                    "`{field}` is in {}; write a value that is a whole number of them",
                    unit_words(*unit)
                ),
            ),
            Mismatch {
                field,
                ty,
                value,
                kind,
                help,
            } => Words {
                message: format!("`{field}` is {}, but {value} is {kind}", type_article(*ty)),
                label: format!("expected {}", type_article(*ty)),
                help: help.clone(),
            },
            OutOfRange {
                value,
                field,
                ty,
                bits,
                lo,
                hi,
                below,
                bytes_twin,
            } => {
                let what = match ty {
                    FieldType::Port => "a port".to_string(),
                    FieldType::Uint(_) if *lo == 0 && *bits < 64 => format!("{bits}-bit unsigned"),
                    FieldType::Int(_) => format!("{bits}-bit signed"),
                    _ => "unsigned".to_string(),
                };
                // `win` is the unscaled wire value; the scaled one is `win_bytes`.
                let mut help = format!("`{field}` holds values from {lo} to {hi}");
                if let Some(twin) = bytes_twin {
                    help.push_str(&format!("; to compare the window in bytes use `{twin}`"));
                }
                words(
                    format!("{value} is out of range for `{field}` ({what})"),
                    if *below {
                        format!("`{field}` is at least {lo}")
                    } else {
                        format!("`{field}` is at most {hi}")
                    },
                    help,
                )
            }
            AlwaysOrNever {
                field,
                ty,
                lo,
                hi,
                always,
            } => words(
                format!(
                    "this comparison is {} true: `{field}` holds values from {lo} to {hi}",
                    always_never(*always)
                ),
                format!("{} true", always_never(*always)),
                if *always {
                    "remove the comparison, it does not filter anything".to_string()
                } else {
                    format!(
                        "check the field's range and unit: {}",
                        catalog::type_words(*ty)
                    )
                },
            ),
            NotATcpState { value, suggestion } => Words {
                message: format!("{value} is not a TCP state"),
                label: "not a TCP state".into(),
                help: suggestion.as_deref().map(did_you_mean),
            },
            NotAnErrnoName { value, suggestion } => words(
                format!("{value} is not an errno name"),
                "not an errno",
                match suggestion {
                    Some(s) => did_you_mean(s),
                    None => "write an errno name, e.g. `EPERM`".into(),
                },
            ),
            ErrnoOrdered { value, field } => words(
                format!("{value} is an error name: it cannot be ordered"),
                "compared with `==` or `!=` only",
                format!(
                    "errno numbers mean nothing in order: write `{field} == EPERM or {field} == \
                     ENOBUFS`, or `{field} < 0` for any errno"
                ),
            ),
            ErrnoPositive {
                value,
                number,
                field,
                errno,
            } => words(
                format!("{value} is positive: `{field}` is 0, a negative errno or NET_XMIT_DROP"),
                "not an error as the kernel passes it",
                match errno {
                    Some(n) => format!(
                        "errnos are negative here: {number} is `{n}`, which the kernel passes as \
                         -{number}; write `{field} == {n}`"
                    ),
                    None => format!(
                        "errnos are negative here (`EPERM` is -1); compare with a name: `{field} == \
                         EPERM`, or `{field} == NET_XMIT_DROP` for a qdisc's drop (1)"
                    ),
                },
            ),
            ErrnoNeverHere {
                field,
                errno,
                why,
                always,
            } => {
                let (because, help) = match why {
                    Unreported::NotCounted(why) => (
                        "such an attempt is not a retransmission",
                        format!(
                            "the kernel gives up with {errno} before it counts the attempt in \
                             TcpRetransSegs ({why}); tcpq reports only what the kernel counts, \
                             tracefs (`tcp/tcp_retransmit_skb`) shows every attempt"
                        ),
                    ),
                    Unreported::NotAnError(why) => {
                        ("it is not an error a socket holds", why.to_string())
                    }
                };
                words(
                    format!(
                        "this comparison is {} true: `{field}` is never {errno} here, because \
                         {because}",
                        always_never(*always)
                    ),
                    format!("{} true", always_never(*always)),
                    help,
                )
            }
            ShellPattern {
                value,
                field,
                before,
                stem,
                leading,
            } => words(
                format!("{value} looks like a shell pattern, which tcpq would match literally"),
                "`*`, `?` or `[` inside a name",
                if *leading {
                    format!(
                        "tcpq matches a command name exactly, or by its start with one trailing \
                         `*` (`{field} == \"{stem}*\"`); there is no suffix or substring match"
                    )
                } else {
                    format!(
                        "only a trailing `*` is a pattern (\"starts with\"): write `{field} == \"{before}*\"`"
                    )
                },
            ),
            CommPrefixTooLong { value } => words(
                format!("{value} is longer than a command name"),
                "too long",
                "a command name is at most 15 bytes; shorten the prefix",
            ),
            CommTooLong { value, len, nul } => words(
                if *nul {
                    format!("{value} contains a NUL byte")
                } else {
                    format!("{value} is {len} bytes; a command name is at most 15")
                },
                "too long",
                "the kernel keeps the first 15 bytes of a command name; compare with those",
            ),
            FilterTooLong { insns, max } => words(
                format!("this condition needs {insns} filter instructions; templates run at most {max}"),
                format!("this condition needs {insns} instructions"),
                "addresses and `comm` take two instructions per comparison; simplify the condition or split it across clauses",
            ),
            KeyTooLarge {
                what,
                slots,
                max,
                histogram,
            } => words(
                format!(
                    "the `{what}` key needs {slots} slots{}; at most {max} fit",
                    if *histogram {
                        " (a histogram's bucket takes one)"
                    } else {
                        ""
                    }
                ),
                "key too large",
                "addresses and `comm` take two slots each; aggregate by fewer fields",
            ),
            PrintOnly { field, what, cpu } => words(
                format!("`{field}` can only be printed, not used in `{what}`"),
                "print only",
                if what == "where" {
                    format!(
                        "the kernel stamps `{field}` on an event after the filter ran, so no filter \
                         can test it; print it (`print {field}, ...`) and select on it afterwards, \
                         e.g. with jq"
                    )
                } else {
                    format!(
                        "the kernel stamps `{field}` only on events it sends to userspace, not on \
                         those it aggregates; print it (`print {field}, ...`){}",
                        if *cpu {
                            ""
                        } else {
                            ", or aggregate per interval with `every DUR`"
                        }
                    )
                },
            ),
            NotNumeric { field, ty, what } => {
                let (message, help) = match ty {
                    FieldType::Int(_) => (
                        format!("`{field}` is a signed integer"),
                        format!(
                            "`/` and `*` apply to unsigned values only; compare, print or aggregate \
                             `{field}` itself"
                        ),
                    ),
                    FieldType::Comm => (
                        format!("`{field}` is a string"),
                        format!(
                            "`{what}` needs a number; to count per command name write `count by {field}`"
                        ),
                    ),
                    FieldType::Time => (
                        format!("`{field}` is a wall-clock time, not a number"),
                        "print `time` as it is, or `ktime` (nanoseconds, a number: `ktime / 1ms`)"
                            .to_string(),
                    ),
                    ty => (
                        format!("`{field}` is {}, not a number", type_article(*ty)),
                        format!("`{what}` needs a number; to count per value write `count by {field}`"),
                    ),
                };
                let label = if matches!(ty, FieldType::Int(_)) {
                    "signed"
                } else {
                    "not a number"
                };
                words(message, label, help)
            }
            ErrnoAggregated { field, func } => words(
                format!("`{field}` is an error code, not a quantity"),
                format!("`{func}` needs a quantity"),
                format!("count the events per error: `count by {field}` (or `sum segs by {field}`)"),
            ),
            BadHistogram(h) => {
                let (message, help) = match h {
                    Lhist::Negative { field, step } => (
                        "`lhist` bounds are negative".to_string(),
                        if *step {
                            "write `lhist FIELD, MIN, MAX, STEP` with MIN < MAX and STEP > 0"
                                .to_string()
                        } else {
                            format!(
                                "`{field}` is never negative: write `lhist FIELD, MIN, MAX, STEP` \
                                 with 0 <= MIN < MAX and STEP > 0"
                            )
                        },
                    ),
                    Lhist::Beyond64 => (
                        "`lhist` bounds beyond 64-bit signed integers".to_string(),
                        "write bounds between -2^63 and 2^63-1".to_string(),
                    ),
                    Lhist::Order { lo, hi, step } => (
                        format!("`lhist` needs MIN < MAX and STEP > 0 (got {lo}, {hi}, {step})"),
                        "write `lhist FIELD, MIN, MAX, STEP`, e.g. `lhist srtt, 0, 100ms, 10ms`"
                            .to_string(),
                    ),
                    Lhist::NotMultiple {
                        lo,
                        hi,
                        step,
                        unit,
                        fixed,
                    } => {
                        let in_unit = if *unit == Unit::None {
                            String::new()
                        } else {
                            format!(" ({})", unit_words(*unit))
                        };
                        (
                            format!(
                                "`lhist` range {lo}..{hi}{in_unit} is not a multiple of the step {step}"
                            ),
                            format!("make MAX - MIN a multiple of STEP, e.g. MAX = {fixed}"),
                        )
                    }
                    Lhist::TooManyBuckets { buckets, max } => (
                        format!("`lhist` would make {buckets} buckets; at most {max}"),
                        "use a larger STEP or a narrower range (or `hist` for powers of two)"
                            .to_string(),
                    ),
                };
                words(message, "bad bounds", help)
            }
            TooManyClauses { clauses, max } => words(
                format!("this program has {clauses} clauses; at most {max} fit"),
                format!("clause {} starts here", max + 1),
                "each clause loads its own template; split the program into several runs",
            ),
            TooManyFields { fields, max } => words(
                format!("this clause reads {fields} socket fields; a template loads at most {max}"),
                "too many socket fields",
                "split the fields over two clauses on the same probe",
            ),
            BadMetricName { name, fault } => {
                use crate::metrics::NameFault;
                let fixed = crate::metrics::fixed_name(name);
                let (message, label) = match fault {
                    NameFault::BadChar { c, .. } => (
                        format!("`{name}` is not a metric name: Prometheus does not allow `{c}`"),
                        format!("`{c}` is not allowed"),
                    ),
                    NameFault::LeadingDigit => (
                        format!("`{name}` is not a metric name: it starts with a digit"),
                        "starts with a digit".to_string(),
                    ),
                    NameFault::ReservedSuffix(s) => (
                        format!("`{name}` ends with `{s}`, which Prometheus adds itself"),
                        format!("`{s}` is added when exported"),
                    ),
                };
                let help = match fault {
                    NameFault::ReservedSuffix("_total") => format!(
                        "a counter is exported with `_total` after its name: write `as {}`",
                        name.trim_end_matches("_total")
                    ),
                    NameFault::ReservedSuffix(s) => format!(
                        "`{s}` names one sample of a summary or histogram; write e.g. `as {fixed}`"
                    ),
                    _ => format!(
                        "a metric name is letters, digits, `_` and `:`, not starting with a \
                         digit: e.g. `as {fixed}`"
                    ),
                };
                words(message, label, help)
            }
            NotForServe { what } => {
                let (message, help) = match *what {
                    "print" => (
                        "`tcpq serve` exports aggregations; this clause prints events",
                        "count or aggregate instead (`count by comm`, `hist srtt`), or run it \
                         with `tcpq` rather than `tcpq serve`",
                    ),
                    "every" => (
                        "`tcpq serve` takes no `every`: Prometheus reads the totals when it scrapes",
                        "remove `every`; `rate()` or `increase()` in a query gives the change per \
                         interval",
                    ),
                    _ => (
                        "`tcpq serve` exports every key of an aggregation",
                        "remove it; a query chooses what it shows (`topk()` for `top`)",
                    ),
                };
                words(message, format!("`{what}` here"), help)
            }
            MetricConflict {
                name,
                first,
                why,
                derived,
            } => words(
                format!("metric `{name}` is exported by two clauses that differ: {why}"),
                "exported again here",
                match derived {
                    true => format!(
                        "this name is derived from the probe and the aggregation; give the \
                         clause its own with `as NAME` (the other one is {first})"
                    ),
                    false => format!(
                        "clauses may share a name only with the same type, unit and labels (the \
                         other one is {first}); rename one with `as NAME`"
                    ),
                },
            ),
            FilterLost => words(
                "internal error: this `where` clause was not compiled, so nothing will run",
                "this condition was lost",
                "this is a bug in tcpq, not in your program; please report it with the program text",
            ),
            BadModifier {
                word,
                twice,
                misplaced,
            } => words(
                if *twice {
                    format!("`{word}` is given twice")
                } else {
                    format!("`{word}` does not apply here")
                },
                format!("`{word}` here"),
                match (*misplaced, *word) {
                    (true, "limit") => "`limit` applies to `print`; an aggregation prints once at \
                                        the end (or `every DUR`)"
                        .to_string(),
                    (true, _) => format!(
                        "`{word}` applies to aggregations (`count`, `sum`, `hist`, ...), not to `print`"
                    ),
                    (false, _) => format!("keep one `{word}`"),
                },
            ),
            EveryTooShort { value, min_ms } => words(
                format!("`every {value}` is too short"),
                format!("at least {min_ms}ms"),
                format!("print at most every {min_ms}ms"),
            ),
            NotACount { word, value } => words(
                format!("`{word} {value}` needs a whole number from 1 up"),
                "not a count",
                format!("write e.g. `{word} 10`"),
            ),
            DurationWithoutUnit { name, value } => words(
                format!("`{name} {value}` has no unit"),
                "a duration needs a unit",
                format!("write e.g. `{name} {value}s` or `{name} {value}ms`"),
            ),
            NegativeDuration { name, value } => words(
                format!("`{name} {value}` is negative"),
                "at least 0",
                format!("write a duration from `{name} 0s` up"),
            ),
            DurationTooLong { name, value } => Words {
                message: format!("`{name} {value}` is too long"),
                label: "at most 2^64 - 1 milliseconds".into(),
                help: None,
            },
            UnknownProbe {
                name,
                suggestion,
                probes,
            } => words(
                format!("unknown probe `{name}`"),
                "not a probe",
                match suggestion {
                    Some(s) => did_you_mean(s),
                    None => format!(
                        "probes are {}",
                        probes
                            .iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            ),
            UnknownField { name, probe, hint } => Words {
                message: format!("unknown field `{name}` on probe `{probe}`"),
                label: format!("not a field of `{probe}`"),
                help: match hint {
                    FieldHint::Suggest(s) => Some(did_you_mean(s)),
                    FieldHint::OtherProbe(p) => {
                        Some(format!("`{name}` is a field of `{p}`, not of `{probe}`"))
                    }
                    // bpftrace's `arg0..argN` are a kprobe's raw registers,
                    // whose meaning depends on the function's prototype.
                    FieldHint::Positional => Some(format!(
                        "tcpq has no positional arguments: fields have names, types and units; \
                         `tcpq -l {probe}` lists them"
                    )),
                    FieldHint::ComparedWithString => {
                        Some("compare a field with the string, e.g. `comm == \"nginx\"`".into())
                    }
                    FieldHint::Nothing => None,
                },
            },
            UndeclaredParam {
                name,
                suggestion,
                none_declared,
            } => words(
                format!("parameter `${name}` is not declared"),
                "undeclared parameter",
                match (suggestion, none_declared) {
                    (Some(s), _) => format!("did you mean `${s}`?"),
                    (None, true) => "parameters come from a recipe's `# @param NAME: TYPE` header; \
                                     `-e` programs have none"
                        .into(),
                    (None, false) => format!("declare it: `# @param {name}: TYPE  help`"),
                },
            ),
            SetNotAField => words(
                "`in` needs a field on its left",
                "a set parameter, not a field",
                "write e.g. `dport in $ports` or `dport == $ports`",
            ),
            SetAlone => words(
                "a value alone is not a condition",
                "expected a comparison",
                "compare a field with it, e.g. `dport == $port`",
            ),
            SetMisused {
                name,
                given,
                arithmetic: true,
            } => words(
                format!("`${name}` is a set (`--param {name}={given}`): arithmetic with a set is not supported"),
                "a set parameter",
                "compare the field itself with the set, e.g. `dport == $port`",
            ),
            SetMisused { name, given, .. } => words(
                format!("`${name}` is a set (`--param {name}={given}`) compared with a value"),
                "a set parameter",
                "a set is tested against a field: `FIELD == $p` (the field is one of the items) or `FIELD != $p`",
            ),
            SetOrdered {
                name,
                given,
                field,
                op,
            } => words(
                format!("`${name}` is a set (`--param {name}={given}`); `{op}` does not apply to a set"),
                "only `==` and `!=` with a set",
                format!(
                    "`{field} == ${name}` keeps events whose `{field}` is one of the items, `{field} != ${name}` \
                     those whose `{field}` is none of them; for a bound, pass one value (or a \
                     range `A..B`)"
                ),
            ),
            EmptyProgram => words(
                "the program has no clause",
                "expected `on PROBE ...`",
                "write e.g. `on tcp_select_window where win == 0 print pid, comm`",
            ),
            EmptyInput => Words {
                message: "empty input".into(),
                label: String::new(),
                help: None,
            },
            MissingSeparator => words(
                "two clauses on one line",
                "a new clause starts here",
                "separate clauses with `;` or put each on its own line",
            ),
            TooComplex {
                nesting,
                max_nesting,
                max_connectives,
                max_insns,
            } => words(
                if *nesting {
                    format!("this clause has more than {max_nesting} parentheses and `not`s")
                } else {
                    format!("this clause has more than {max_connectives} `and`s and `or`s")
                },
                "too complex from here on",
                format!(
                    "a filter runs at most {max_insns} comparisons; simplify the condition or split it across clauses"
                ),
            ),
            CStyleOperator { written, word } => words(
                format!("`{written}` is not an operator here"),
                format!("write `{word}`"),
                format!("tcpq spells it `{word}`"),
            ),
            SingleEquals => words(
                "`=` is not a comparison",
                "write `==`",
                "compare with `==`",
            ),
            BadLiteral(b) => {
                let (message, help) = match b {
                    self::BadLiteral::PrefixLength { len, max } => (
                        format!("`/{len}` is not a prefix length for this address"),
                        format!("the prefix length of this address is 0 to {max}"),
                    ),
                    self::BadLiteral::NotAnAddress { text } => (
                        format!("`{text}` is not an address"),
                        "write e.g. `10.0.0.0/8` or `fd00::/8`".into(),
                    ),
                    self::BadLiteral::TooLarge { text } => (
                        format!("`{text}` is too large"),
                        "values are at most 64 bits".into(),
                    ),
                    self::BadLiteral::NoHexDigits { text } => (
                        format!("`{text}` is not a number"),
                        "hex numbers need digits: `0x1f`".into(),
                    ),
                    self::BadLiteral::NotIpv4 { text } => (
                        format!("`{text}` is not an IPv4 address"),
                        "each of the four numbers must be 0 to 255, without leading zeros".into(),
                    ),
                    self::BadLiteral::NotIpv6 { text } => (
                        format!("`{text}` is not an IPv6 address"),
                        "write it like `::1`, `fe80::1` or `2001:db8::10`".into(),
                    ),
                    self::BadLiteral::UnknownEscape { escape } => (
                        format!("unknown escape `\\{escape}` in string"),
                        ESCAPES.into(),
                    ),
                    self::BadLiteral::TrailingBackslash => {
                        ("string ends with `\\`".into(), ESCAPES.into())
                    }
                };
                words(message, "not a valid value", help)
            }
            AllSwitchedOff { left_out } => words(
                "every clause is switched off by its parameters",
                "false with these parameters",
                format!(
                    "with these `--param` values no clause is left to run: {}",
                    left_out.join("; ")
                ),
            ),
            RestrictionField { flag, field, probe } => words(
                format!("`{flag}` keeps only events whose `{field}` matches, but probe `{probe}` has no field `{field}`"),
                format!("no `{field}` here"),
                format!("leave out `{flag}`, or this clause (`tcpq -l {probe}` lists its fields)"),
            ),
            DuplicateParamDecl { name } => words(
                format!("parameter `{name}` is declared twice"),
                "declared again here",
                "keep one declaration of each parameter",
            ),
            UnknownDirective { word, suggestion } => words(
                format!("unknown header directive `@{word}`"),
                "not a directive",
                match suggestion {
                    Some(s) => format!("did you mean `@{s}`?"),
                    None => "directives are `@param`, `@example` and `@expect`".into(),
                },
            ),
            MalformedParamDecl(fault) => words(
                match fault {
                    DeclFault::NoType => "a parameter needs a name and a type",
                    DeclFault::NoName => "a parameter needs a name",
                    DeclFault::UnclosedQuote => "the default's opening `\"` has no closing `\"`",
                },
                "malformed declaration",
                "write `@param NAME: TYPE [= DEFAULT] HELP` or `@param NAME: TYPE? HELP` (optional), \
                 TYPE one of u64, i64, port, addr, string, bool, state",
            ),
            UnknownParamType {
                word,
                suggestion,
                types,
            } => words(
                format!("unknown parameter type `{word}`"),
                "not a type",
                match suggestion {
                    Some(s) => did_you_mean(s),
                    None => format!("types are {}", types.join(", ")),
                },
            ),
            OptionalWithDefault {
                name,
                ty_word,
                default,
            } => words(
                format!("optional parameter `{name}` has a default"),
                "`?` and a default",
                format!(
                    "an optional parameter that is not given leaves out the comparisons that \
                     use it; one with a default always has a value: write `{name}: {ty_word}? \
                     HELP` or `{name}: {ty_word} = {default} HELP`"
                ),
            ),
            BadDefault { name, ty, reason } => words(
                format!("default of `{name}`: {reason}"),
                format!("not a valid {ty}"),
                format!("`{name}` is declared as {}", ty.expects()),
            ),
            DuplicateParam { name } => Words {
                message: format!("`--param {name}` is given more than once"),
                label: String::new(),
                help: Some("give each parameter once".into()),
            },
            UnknownParam {
                name,
                suggestion,
                declared,
            } => Words {
                message: format!("unknown parameter `{name}`"),
                label: String::new(),
                help: Some(match suggestion {
                    _ if declared.is_empty() => "this program declares no parameters".to_string(),
                    Some(s) => did_you_mean(s),
                    None => format!(
                        "declared parameters: {}",
                        declared
                            .iter()
                            .map(|d| format!("`{d}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
            },
            BadParamValue {
                name,
                text,
                ty,
                reason,
            } => words(
                format!("`--param {name}={text}`: {reason}"),
                format!("declared as `{ty}` here"),
                if *ty == ParamType::Bool {
                    format!("pass {}", ty.expects())
                } else {
                    format!(
                        "pass {}, or several separated by commas{}",
                        ty.expects(),
                        match ty {
                            t if t.takes_ranges() => " or a range `A..B`",
                            ParamType::Addr => " or a prefix `ADDR/LEN`",
                            _ => "",
                        }
                    )
                },
            ),
            MissingParam { name, ty } => words(
                format!("missing required parameter `{name}`"),
                "declared without a default here",
                format!("pass `--param {name}=VALUE`, where VALUE is {}", ty.expects()),
            ),
            SocketsAggregate => words(
                "`tcpq sockets` lists sockets; it does not aggregate",
                "an aggregation",
                "write `print FIELD, ...` (or nothing, for the default columns); to count \
                 sockets, count the lines (`tcpq sockets ... --format json | wc -l`)",
            ),
            SocketsModifier => words(
                "`tcpq sockets` takes no `top`, `every` or `limit`",
                "not for a listing",
                "it lists every socket that matches, once; narrow the `where` instead",
            ),
            SocketsUnknownField { name, hint } => {
                let label = "not a field of `sockets`".to_string();
                if let Some((_, help)) = NOT_IN_SOCKETS.iter().find(|(n, _)| n == name) {
                    return words(format!("`tcpq sockets` has no `{name}`"), label, *help);
                }
                Words {
                    message: format!("unknown field `{name}` of `tcpq sockets`"),
                    label,
                    help: match hint {
                        FieldHint::OtherProbe(p) => Some(format!(
                            "`{name}` is a field of `{p}`, not of `tcpq sockets` (`tcpq -l sockets` \
                             lists its fields)"
                        )),
                        hint => UnknownField {
                            name: name.clone(),
                            probe: "sockets",
                            hint: hint.clone(),
                        }
                        .words()
                        .help,
                    },
                }
            }
            FieldUnavailable { field, probe, why } => words(
                format!("`{field}` cannot be read on this kernel"),
                "not available on this kernel",
                match probe {
                    Some(probe) => format!(
                        "{why}; this kernel's `{probe}` cannot provide `{field}`: leave it out, or run on a \
                         kernel that has it (`tcpq --explain` lists what this kernel resolves)"
                    ),
                    None => format!("{why}; leave it out, or run on a kernel that has it"),
                },
            ),
            ProbeUnavailable { probe, why } => words(
                format!("probe `{probe}` cannot run on this kernel"),
                "no way to attach it here",
                format!("{why} (`tcpq doctor` shows what this kernel offers)"),
            ),
            ConstantUnavailable {
                constant,
                enum_name,
                why,
                suggestion,
            } => words(
                format!("`{constant}` is not in this kernel's `enum {enum_name}`"),
                "not on this kernel",
                match suggestion {
                    Some(s) => format!("{why}; did you mean `{s}`? (or compare with the number)"),
                    None => format!(
                        "{why}; compare with the number instead (`tcpq -l PROBE` lists the fields, \
                         `bpftool btf dump file /sys/kernel/btf/vmlinux format c` this kernel's enum)"
                    ),
                },
            ),
            SocketsNoClause => Words {
                message: "nothing to list (internal: the query resolved to no clause)".into(),
                label: String::new(),
                help: None,
            },
            SocketsNotAListing => Words {
                message: "`tcpq sockets` lists sockets; it does not aggregate".into(),
                label: String::new(),
                help: None,
            },
            SocketsConstant => Words {
                message: "internal error: a kernel constant in a `tcpq sockets` query cannot be bound"
                    .into(),
                label: String::new(),
                help: None,
            },
            TreeShape => Words {
                message: "internal error: unexpected syntax tree shape".into(),
                label: "here".into(),
                help: None,
            },
            PrintArithmetic { op } => words(
                format!("`{op}` is not supported in `print`"),
                "only `/` and `*` here",
                "print `FIELD / NUMBER` or `FIELD * NUMBER`, e.g. `win_bytes / 1024 as win_kib`",
            ),
        }
    }
}

/// A well-formed set for the field `n` of type `ty`, for help lines.
fn set_example(n: &str, ty: FieldType) -> String {
    match ty {
        FieldType::Port => format!("{n} in [80, 443, 8000..8100]"),
        FieldType::Addr => format!("{n} in [10.0.0.1, 192.168.0.0/16, ::1]"),
        FieldType::Bool => format!("{n} in [true]"),
        FieldType::Comm => format!("{n} in [\"nginx\", \"envoy\"]"),
        FieldType::TcpState => format!("{n} in [ESTABLISHED, CLOSE_WAIT]"),
        FieldType::Family => format!("{n} in [AF_INET, AF_INET6]"),
        FieldType::Uint(_) | FieldType::Int(_) => format!("{n} in [0, 1, 10..20]"),
        // Print only (`check` says so); no set of it is well-formed.
        FieldType::Time => format!("print {n}"),
    }
}

/// The probes' fields a listing cannot have, and what to use instead.
const NOT_IN_SOCKETS: &[(&str, &str)] = &[
    (
        "rttvar",
        "tcp_info has no tcp_sock.rttvar_us; `mdev` is what ss shows as rtt:SRTT/MDEV",
    ),
    (
        "skaddr",
        "sock_diag shows no kernel addresses; `sock_cookie` tells sockets apart",
    ),
    (
        "task_pid",
        "a listing has no task on the CPU; `pid` is the process holding the socket",
    ),
    (
        "task_comm",
        "a listing has no task on the CPU; `comm` is the process holding the socket",
    ),
];

const ESCAPES: &str = "escapes are `\\\"`, `\\\\`, `\\n`, `\\t`";

fn always_never(always: bool) -> &'static str {
    if always {
        "always"
    } else {
        "never"
    }
}

/// `a port`, `an unsigned integer (bytes)`.
fn type_article(ty: FieldType) -> String {
    let w = catalog::type_words(ty);
    let article = if w.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {w}")
}

/// A unit in words.
pub(crate) fn unit_words(u: Unit) -> &'static str {
    match u {
        Unit::None => "no unit",
        Unit::Bytes => "bytes",
        Unit::Micros => "microseconds",
        Unit::Millis => "milliseconds",
        Unit::Nanos => "nanoseconds",
        Unit::Segments => "segments",
        Unit::DropReason => "a drop reason number",
        Unit::RstReason => "a reset reason number",
        Unit::KernelSymbol | Unit::Address => "a kernel address",
        Unit::Errno => "an errno",
    }
}

/// Suffixes a unit takes, for help lines.
fn unit_list(u: Unit) -> &'static str {
    match u {
        Unit::Bytes => "a plain number of bytes or `B`, `KB`, `KiB`, `MB`, `MiB`, `GB`, `GiB`",
        Unit::Micros => "a plain number of microseconds or `us`, `ms`, `s`",
        Unit::Millis => "`ms`, `s`, `m` or `h`",
        Unit::Nanos => "a plain number of nanoseconds or `ns`, `us`, `ms`, `s`",
        Unit::Segments => "a plain number of segments",
        Unit::None => "a plain number",
        Unit::DropReason | Unit::RstReason => {
            "a reason by name (`NO_SOCKET`) or a plain number (this kernel's value)"
        }
        Unit::KernelSymbol | Unit::Address => "a plain number (a kernel address)",
        Unit::Errno => "an errno name (`EPERM`), or a number as the kernel passes it (-1)",
    }
}

/// A typical suffix of a unit that takes fractions.
fn unit_examples(u: Unit) -> Option<&'static str> {
    match u {
        Unit::Bytes => Some("MiB"),
        Unit::Micros | Unit::Millis | Unit::Nanos => Some("s"),
        _ => None,
    }
}
