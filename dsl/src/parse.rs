//! Pass 1: source text → spanned AST ([`crate::ast`]).
//!
//! pest stops at the first syntax error, so after one the source is cut into
//! clauses (each starts with the keyword `on`) and every clause is parsed on
//! its own: a program with three broken clauses gets three errors.
use crate::ast::*;
use crate::catalog;
use crate::diagnostic::{Code, Diagnostic};
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::Parser;
use pest_derive::Parser;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Parser)]
#[grammar = "grammar.pest"]
struct Grammar;

/// Parse a whole program. All syntax errors are returned, one per broken
/// clause, plus every invalid literal.
pub fn parse(source: &str) -> Result<Program, Vec<Diagnostic>> {
    let too_deep: Vec<Diagnostic> = clause_chunks(source)
        .filter_map(|(a, b)| too_complex(&source[a..b], a))
        .collect();
    if !too_deep.is_empty() {
        return Err(too_deep);
    }
    let pairs = match Grammar::parse(Rule::program, source) {
        Ok(p) => p,
        Err(e) => return Err(recover(source, e)),
    };
    let mut b = Builder::default();
    let mut clauses = Vec::new();
    for pair in pairs.flatten().filter(|p| p.as_rule() == Rule::clause) {
        clauses.push(b.clause(pair));
    }
    check_separators(source, &clauses, &mut b.errors);
    if clauses.is_empty() {
        let end = source.len();
        b.errors.push(
            Diagnostic::error(
                Code::EmptyProgram,
                "the program has no clause",
                end..end,
                "expected `on PROBE ...`",
            )
            .with_help("write e.g. `on tcp_select_window where win == 0 print pid, comm`"),
        );
    }
    if b.errors.is_empty() {
        Ok(Program { clauses })
    } else {
        Err(b.errors)
    }
}

/// Parse a lone expression, as stored in a plan's `where_source` (used by
/// `--explain`).
pub fn parse_expr(source: &str) -> Result<Expr, Vec<Diagnostic>> {
    if let Some(d) = too_complex(source, 0) {
        return Err(vec![d]);
    }
    let mut pairs =
        Grammar::parse(Rule::expr_only, source).map_err(|e| vec![syntax_error(source, 0, e)])?;
    let mut b = Builder::default();
    let expr = pairs
        .next()
        .and_then(|p| p.into_inner().next())
        .map(|p| b.expr(p));
    match (expr, b.errors.is_empty()) {
        (Some(e), true) => Ok(e),
        (_, _) => Err(b.errors),
    }
}

/// Parse a lone number literal (`5s`, `1.5s`, `250ms`, `1_000`), as the
/// grammar reads one in a program: used for command-line values that take
/// the language's units (`--duration`), so that both accept the same
/// spellings.
pub fn parse_number(source: &str) -> Result<Literal, Vec<Diagnostic>> {
    let mut pairs =
        Grammar::parse(Rule::number_only, source).map_err(|e| vec![syntax_error(source, 0, e)])?;
    let mut b = Builder::default();
    let lit = pairs
        .next()
        .and_then(|p| p.into_inner().next())
        .map(|p| b.number(p));
    match (lit, b.errors.is_empty()) {
        (Some(l), true) => Ok(l),
        (_, _) => Err(b.errors),
    }
}

/// Parse what follows `tcpq sockets`: `[where EXPR] [ACTION] [MODIFIER...]`,
/// as a clause on the probe named `sockets` (span `0..0`). The flag says
/// whether an action was written (without one the caller picks the
/// columns; the returned clause then has an empty `print`).
pub fn parse_sockets(source: &str) -> Result<(Clause, bool), Vec<Diagnostic>> {
    if let Some(d) = too_complex(source, 0) {
        return Err(vec![d]);
    }
    let mut pairs = Grammar::parse(Rule::sockets_query, source)
        .map_err(|e| vec![syntax_error(source, 0, e)])?;
    let Some(query) = pairs.next() else {
        return Err(vec![Diagnostic::unlocated(Code::Syntax, "empty input")]);
    };
    let acted = query
        .clone()
        .into_inner()
        .any(|p| p.as_rule() == Rule::action);
    let mut b = Builder::default();
    let mut clause = b.clause(query);
    clause.probe = Ident {
        name: "sockets".into(),
        span: 0..0,
    };
    if !acted {
        let end = source.trim_end().len();
        clause.action = Action::Print {
            items: Vec::new(),
            span: end..end,
        };
    }
    if b.errors.is_empty() {
        Ok((clause, acted))
    } else {
        Err(b.errors)
    }
}

/// Clauses must be separated by a newline or `;`: `on a print x on b ...`
/// on one line is almost always a missing separator.
fn check_separators(source: &str, clauses: &[Clause], errors: &mut Vec<Diagnostic>) {
    for w in clauses.windows(2) {
        let gap = source.get(w[0].span.end..w[1].span.start).unwrap_or("");
        if !gap.contains('\n') && !gap.contains(';') {
            let at = w[1].probe.span.start.saturating_sub(3).max(w[1].span.start);
            errors.push(
                Diagnostic::error(
                    Code::MissingSeparator,
                    "two clauses on one line",
                    at..at + 2,
                    "a new clause starts here",
                )
                .with_help("separate clauses with `;` or put each on its own line"),
            );
        }
    }
}

/// Most `and`/`or` in one clause, and most `(`/`not` (which nest). A
/// filter runs at most `MAX_INSNS` comparisons, so a valid clause needs far
/// fewer; the caps keep every recursive pass (pest's included) far from the
/// end of even a 2 MiB thread stack, whatever the input.
pub const MAX_CONNECTIVES: usize = 4 * tcpq_abi::MAX_INSNS;
pub const MAX_NESTING: usize = 32;

/// The clause chunks of `source` as byte ranges.
fn clause_chunks(source: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let starts = clause_starts(source);
    (0..starts.len()).map(move |i| {
        let b = starts.get(i + 1).copied().unwrap_or(source.len());
        (starts[i], b)
    })
}

/// A diagnostic when `chunk` has more operators than any valid clause.
fn too_complex(chunk: &str, offset: usize) -> Option<Diagnostic> {
    let (mut connectives, mut nesting) = (0, 0);
    let mut at = None;
    scan(chunk, |tok, pos| {
        match tok {
            "&&" | "||" | "and" | "or" => connectives += 1,
            "(" | "!" | "not" => nesting += 1,
            _ => return,
        }
        if (connectives > MAX_CONNECTIVES || nesting > MAX_NESTING) && at.is_none() {
            at = Some(pos);
        }
    });
    let at = offset + at?;
    let what = if nesting > MAX_NESTING {
        format!("more than {MAX_NESTING} parentheses and `not`s")
    } else {
        format!("more than {MAX_CONNECTIVES} `and`s and `or`s")
    };
    Some(
        Diagnostic::error(
            Code::FilterTooLong,
            format!("this clause has {what}"),
            at..at + 1,
            "too complex from here on",
        )
        .with_help(format!(
            "a filter runs at most {} comparisons; simplify the condition or split it across clauses",
            tcpq_abi::MAX_INSNS
        )),
    )
}

/// Call `f` with each word or punctuation token outside strings and
/// comments, and its byte offset. Lexing is approximate (it only has to
/// find `on` and operators), and never fails.
fn scan(source: &str, mut f: impl FnMut(&str, usize)) {
    let bytes = source.as_bytes();
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                f("\"", i);
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            c if is_word(c) => {
                let s = i;
                while i < bytes.len() && is_word(bytes[i]) {
                    i += 1;
                }
                f(&source[s..i], s);
            }
            b'&' | b'|' if bytes.get(i + 1) == Some(&bytes[i]) => {
                f(&source[i..i + 2], i);
                i += 2;
            }
            c if c.is_ascii() => {
                f(&source[i..i + 1], i);
                i += 1;
            }
            // Skip the rest of a multi-byte character.
            _ => i += 1,
        }
    }
}

/// After a syntax error: parse each clause alone to report every one.
fn recover(source: &str, first: pest::error::Error<Rule>) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for (a, b) in clause_chunks(source) {
        let chunk = &source[a..b];
        if let Err(e) = Grammar::parse(Rule::clause_only, chunk) {
            errors.push(syntax_error(chunk, a, e));
        }
    }
    if errors.is_empty() {
        // The cut did not isolate the problem; report pest's own error.
        errors.push(syntax_error(source, 0, first));
    }
    errors
}

/// Byte offsets where clauses start: 0, then every whole-word `on` after
/// some code (`on` is a keyword, so it cannot appear inside a clause).
fn clause_starts(source: &str) -> Vec<usize> {
    let mut starts = vec![0];
    let mut seen_code = false;
    scan(source, |tok, pos| {
        if tok == "on" && seen_code {
            starts.push(pos);
        }
        seen_code |= !tok.trim().is_empty() && tok != ";";
    });
    starts
}

/// Rule names in words, for "expected ..." messages.
fn rule_words(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of input",
        Rule::clause | Rule::kw_on => "`on`",
        Rule::probe_name => "a probe name",
        Rule::where_clause | Rule::kw_where => "`where`",
        Rule::action | Rule::agg_action | Rule::agg_func => "`print` or an aggregation",
        Rule::agg_word => "an aggregation (`sum`, `avg`, `min`, `max`, `stats`, `hist`)",
        Rule::kw_lhist => "`lhist`",
        Rule::print_item => "a field name",
        Rule::alias => "a column name",
        Rule::kw_as => "`as`",
        Rule::kw_in => "`in`",
        Rule::modifier | Rule::mod_word => "`top`, `every` or `limit`",
        Rule::term => "a field or a value",
        Rule::arith_op => "an arithmetic operator",
        Rule::in_test => "`in`",
        Rule::set | Rule::set_item => "a set (`[80, 443]`, `8000..8100`, `10.0.0.0/8`)",
        Rule::range => "a range (`8000..8100`)",
        Rule::cidr | Rule::prefix_len => "an address range (`10.0.0.0/8`)",
        Rule::param_name => "a parameter name",
        Rule::fraction => "a number",
        Rule::print_action | Rule::kw_print => "`print`",
        Rule::kw_count => "`count`",
        Rule::kw_by => "`by`",
        Rule::field_list | Rule::field_name => "a field name",
        Rule::expr | Rule::expr_only | Rule::or_expr | Rule::and_expr | Rule::unary => {
            "a condition"
        }
        Rule::atom | Rule::comparison => "a comparison",
        Rule::or_op | Rule::kw_or | Rule::c_or => "`or`",
        Rule::and_op | Rule::kw_and | Rule::c_and => "`and`",
        Rule::not_op | Rule::kw_not | Rule::c_not => "`not`",
        Rule::cmp_op | Rule::single_eq => "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
        Rule::operand => "a field or a value",
        Rule::param => "a `$parameter`",
        Rule::ipv4 | Rule::ipv6 => "an address",
        Rule::number | Rule::int_body | Rule::number_only => "a number",
        Rule::unit_suffix => "a unit",
        Rule::string | Rule::string_inner => "a string",
        Rule::ident | Rule::keyword => "a name",
        Rule::program | Rule::clause_only | Rule::sockets_query => "a program",
        Rule::WHITESPACE | Rule::COMMENT | Rule::ident_char => "whitespace",
    }
}

/// A pest error as a diagnostic: "expected X or Y, found Z", pointing at Z.
fn syntax_error(chunk: &str, offset: usize, e: pest::error::Error<Rule>) -> Diagnostic {
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((a, _)) => a,
    }
    .min(chunk.len());
    let (found, len) = token_at(chunk, pos);
    let at = offset + pos;
    let expected = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut words: Vec<&str> = Vec::new();
            for r in positives {
                // `action` reads as two keywords, so that the list joins
                // into "`and`, `or`, `print` or `count`".
                let ws: &[&str] = match r {
                    Rule::action => &["`print`", "`count`", "an aggregation"],
                    r => &[rule_words(*r)],
                };
                for w in ws {
                    if !words.contains(w) {
                        words.push(w);
                    }
                }
            }
            // Arithmetic can follow almost any value: naming it in every
            // message is noise.
            if words.len() > 1 {
                words.retain(|w| *w != "an arithmetic operator");
            }
            // Operators first, keywords after: reads like a sentence.
            words.sort_by_key(|w| match *w {
                "`and`" => 0,
                "`or`" => 1,
                _ => 2,
            });
            join_or(&words)
        }
        ErrorVariant::CustomError { message } => message.clone(),
    };
    let (message, label) = if expected.is_empty() {
        (format!("unexpected {found}"), "unexpected here".to_string())
    } else {
        (
            format!("expected {expected}, found {found}"),
            format!("expected {expected}"),
        )
    };
    // Slips people make under pressure get their own message and fix.
    if let Some(slip) = slip(chunk, pos, &expected) {
        let (a, b) = slip.span;
        return Diagnostic::error(
            Code::Syntax,
            slip.message,
            offset + a..offset + b,
            slip.label,
        )
        .with_help(slip.help);
    }
    let mut d = Diagnostic::error(Code::Syntax, message, at..at + len, label);
    // Common slips deserve a targeted hint.
    let word = chunk.get(pos..pos + len).unwrap_or("");
    // `err == -EPERM`, as the kernel's C reads: the name is the value.
    if word == "-" {
        let rest = chunk.get(pos + 1..).unwrap_or("");
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if let Some(v) = crate::errno::by_name(&rest[..n]) {
            d = d.with_help(format!(
                "an errno name already stands for the value the kernel passes: write `{}` \
                 (it is {v})",
                &rest[..n]
            ));
        }
    }
    if expected.contains("`print`") && !word.is_empty() {
        if let Some(s) = crate::diagnostic::suggest(
            word,
            [
                "print", "count", "where", "sum", "avg", "min", "max", "stats", "hist", "lhist",
            ],
        ) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
    }
    d
}

/// A syntax error recognised as a common slip: what it is, and the fix.
struct Slip {
    message: String,
    label: String,
    help: String,
    /// Byte range in the chunk.
    span: (usize, usize),
}

/// Units a number can carry (`200ms`, `64KiB`, `3seg`).
const UNIT_WORDS: &[&str] = &[
    "B", "KB", "kB", "KiB", "MB", "MiB", "GB", "GiB", "us", "ms", "s", "m", "min", "h", "seg",
    "segs", "segments",
];

/// Recognise the slips people make in a hurry at the point pest stopped:
/// `200 ms`, `'nginx'`, `443,8443`, `(443, 8443)`, `lhist srtt 0 100ms
/// 10ms`, a host name where an address belongs.
fn slip(chunk: &str, pos: usize, expected: &str) -> Option<Slip> {
    let rest = chunk.get(pos..)?;
    let before = chunk.get(..pos)?;
    let word_end = |from: usize| {
        chunk[from..]
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(chunk.len(), |(i, _)| from + i)
    };
    let word = &chunk[pos..word_end(pos)];
    // `200 ms`: a unit after a space.
    let trimmed = before.trim_end_matches([' ', '\t']);
    if UNIT_WORDS.contains(&word) && trimmed.len() < before.len() {
        let num_start = trimmed
            .rfind(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .map_or(0, |i| i + 1);
        let number = &trimmed[num_start..];
        if number.starts_with(|c: char| c.is_ascii_digit()) {
            return Some(Slip {
                message: format!("a unit is written right after its number: `{number}{word}`"),
                label: "no space before a unit".into(),
                help: format!("write `{number}{word}`"),
                span: (num_start, pos + word.len()),
            });
        }
    }
    // `'nginx'`: single quotes.
    if let Some(inner) = rest.strip_prefix('\'') {
        let text = inner.split(['\'', '\n']).next().unwrap_or("");
        let closed = inner[text.len()..].starts_with('\'');
        let end = pos + 1 + text.len() + usize::from(closed);
        return Some(Slip {
            message: "strings are written in double quotes".into(),
            label: "single quotes".into(),
            help: format!("write \"{text}\""),
            span: (pos, end),
        });
    }
    // `dport == 443,8443`: a list after `==` is a set.
    if rest.starts_with(',') {
        if let Some(fix) = list_after_compare(chunk, pos) {
            return Some(fix);
        }
    }
    // `dport in (443, 8443)`: sets take square brackets.
    if rest.starts_with('(') && expected.contains("a set") {
        let close = rest.find(')').map(|i| pos + i + 1);
        let end = close.unwrap_or(pos + 1);
        let inner = chunk[pos + 1..end.saturating_sub(usize::from(close.is_some()))].trim();
        return Some(Slip {
            message: "a set is written in square brackets".into(),
            label: "parentheses".into(),
            help: format!("write `[{inner}]`"),
            span: (pos, end),
        });
    }
    // `lhist srtt 0 100ms 10ms`: lhist's arguments are comma-separated.
    if word == "lhist" {
        let line_end = rest.find(['\n', ';']).map_or(chunk.len(), |i| pos + i);
        let args: Vec<&str> = chunk[pos + word.len()..line_end]
            .split_whitespace()
            .collect();
        let example = if args.len() == 4 && !args.iter().any(|a| a.contains(',')) {
            format!("lhist {}", args.join(", "))
        } else {
            "lhist srtt, 0, 100ms, 10ms".to_string()
        };
        return Some(Slip {
            message: "`lhist` takes a field, MIN, MAX and STEP, separated by commas".into(),
            label: "`lhist FIELD, MIN, MAX, STEP`".into(),
            help: format!("write e.g. `{example}`"),
            span: (pos, pos + word.len()),
        });
    }
    // `daddr == example.com`: a host name.
    if rest.starts_with('.') {
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
            .map_or(0, |i| i + 1);
        let end = chunk[pos..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
            .map_or(chunk.len(), |i| pos + i);
        let name = &chunk[start..end];
        let looks_like_host = name.split('.').count() >= 2
            && name.split('.').all(|l| !l.is_empty())
            && name.starts_with(|c: char| c.is_ascii_alphabetic());
        if looks_like_host {
            return Some(Slip {
                message: format!("`{name}` looks like a host name; tcpq compares addresses"),
                label: "a host name".into(),
                help: format!(
                    "tcpq never resolves names (a tracer must not wait on DNS): look the address \
                     up (`getent ahosts {name}`) and write it, e.g. `daddr == 192.0.2.10`, or a \
                     set of them"
                ),
                span: (start, end),
            });
        }
    }
    None
}

/// `FIELD == A,B,C` (or `!=`): the fix is `FIELD in [A, B, C]`.
fn list_after_compare(chunk: &str, comma: usize) -> Option<Slip> {
    let before = &chunk[..comma];
    let (op_at, op) = ["==", "!="]
        .iter()
        .filter_map(|op| before.rfind(op).map(|i| (i, *op)))
        .max_by_key(|(i, _)| *i)?;
    let lhs = before[..op_at].trim_end();
    let field_start = lhs
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let field = &lhs[field_start..];
    if field.is_empty() || before[op_at + 2..].contains(['(', ')', '[']) {
        return None;
    }
    // The list runs to the next keyword or the end of the line.
    let tail = &chunk[op_at + 2..];
    let mut end = op_at + 2 + tail.find(['\n', ';']).unwrap_or(tail.len());
    for kw in [
        " and ", " or ", " print ", " count", " sum ", " hist ", " by ",
    ] {
        if let Some(i) = chunk[op_at + 2..end].find(kw) {
            end = end.min(op_at + 2 + i);
        }
    }
    let items: Vec<&str> = chunk[op_at + 2..end]
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect();
    let set = format!("{field} in [{}]", items.join(", "));
    let fix = if op == "!=" {
        format!("not {set}")
    } else {
        set
    };
    Some(Slip {
        message: format!("`{op}` compares with one value; a list of values is a set"),
        label: "a list after a comparison".into(),
        help: format!("write `{fix}`"),
        span: (field_start, end),
    })
}

fn join_or(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The token starting at `pos` in words, and its byte length.
fn token_at(s: &str, pos: usize) -> (String, usize) {
    let rest = s.get(pos..).unwrap_or("");
    let Some(c) = rest.chars().next() else {
        return ("end of input".into(), 0);
    };
    if c == '\n' || c == '\r' {
        return ("end of line".into(), c.len_utf8());
    }
    let word_len = rest
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(rest.len(), |(i, _)| i);
    let len = if word_len > 0 { word_len } else { c.len_utf8() };
    (format!("`{}`", &rest[..len]), len)
}

/// Builds the AST from pest pairs, collecting errors about literals.
#[derive(Default)]
struct Builder {
    errors: Vec<Diagnostic>,
}

fn span(p: &Pair<'_, Rule>) -> Span {
    let s = p.as_span();
    s.start()..s.end()
}

/// A span without trailing whitespace or comments. pest puts what it skipped
/// before a failed repetition (`("," ~ field)*`) into the enclosing pair, so
/// the end is taken from the last token instead.
fn trimmed_span(p: &Pair<'_, Rule>) -> Span {
    p.as_span().start()..last_end(p)
}

fn last_end(p: &Pair<'_, Rule>) -> usize {
    // An atom ends with its own token (`)`, or a literal): exact already.
    // (A comparison's last term may carry skipped whitespace: recurse.)
    if p.as_rule() == Rule::atom
        && p.clone().into_inner().next().map(|q| q.as_rule()) == Some(Rule::expr)
    {
        return p.as_span().end();
    }
    // Tokens end where their text ends (a string's closing quote is not a
    // pair of its own).
    if matches!(
        p.as_rule(),
        Rule::set
            | Rule::string
            | Rule::number
            | Rule::range
            | Rule::cidr
            | Rule::param
            | Rule::ipv4
            | Rule::ipv6
            | Rule::ident
    ) {
        return p.as_span().end();
    }
    match p.clone().into_inner().last() {
        Some(q) => last_end(&q),
        None => p.as_span().end(),
    }
}

fn arith_op(s: &str) -> ArithOp {
    match s {
        "/" => ArithOp::Div,
        "*" => ArithOp::Mul,
        "+" => ArithOp::Add,
        _ => ArithOp::Sub,
    }
}

fn ident(p: Pair<'_, Rule>) -> Ident {
    // probe_name / field_name wrap an ident; take the text either way.
    Ident {
        name: p.as_str().to_string(),
        span: span(&p),
    }
}

impl Builder {
    fn clause(&mut self, pair: Pair<'_, Rule>) -> Clause {
        let sp = trimmed_span(&pair);
        let mut probe = None;
        let mut filter = None;
        let mut action = None;
        let mut modifiers = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::probe_name => probe = Some(ident(p)),
                Rule::where_clause => {
                    let wsp = span(&p);
                    if let Some(e) = p.into_inner().find(|p| p.as_rule() == Rule::expr) {
                        // Stop at the last token: no trailing comment.
                        let start = e.as_span().start();
                        let end = last_end(&e);
                        let text = e.as_str().get(..end - start).unwrap_or(e.as_str());
                        filter = Some(Where {
                            source: text.to_string(),
                            span: wsp.start..end,
                            expr: self.expr(e),
                        });
                    }
                }
                Rule::action => action = p.into_inner().next().map(|a| self.action(a)),
                Rule::modifier => modifiers.extend(self.modifier(p)),
                _ => {}
            }
        }
        Clause {
            // The grammar guarantees both; the fallbacks only avoid a panic.
            probe: probe.unwrap_or_else(|| Ident {
                name: String::new(),
                span: sp.clone(),
            }),
            filter,
            action: action.unwrap_or(Action::Count {
                by: vec![],
                span: sp.clone(),
            }),
            modifiers,
            span: sp,
        }
    }

    fn modifier(&mut self, p: Pair<'_, Rule>) -> Option<Modifier> {
        let sp = trimmed_span(&p);
        let mut inner = p.into_inner();
        let kind = match inner.next()?.as_str() {
            "top" => ModifierKind::Top,
            "every" => ModifierKind::Every,
            _ => ModifierKind::Limit,
        };
        let value = self.number(inner.next()?);
        Some(Modifier {
            kind,
            value,
            span: sp,
        })
    }

    fn action(&mut self, p: Pair<'_, Rule>) -> Action {
        let sp = trimmed_span(&p);
        match p.as_rule() {
            Rule::print_action => {
                let items = p
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::print_item)
                    .filter_map(|i| self.print_item(i))
                    .collect();
                Action::Print { items, span: sp }
            }
            _ => {
                let mut func = None;
                let mut by = Vec::new();
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::agg_func => func = Some(part),
                        Rule::field_list => by = part.into_inner().map(ident).collect(),
                        _ => {}
                    }
                }
                let Some(func) = func else {
                    return Action::Count { by, span: sp };
                };
                let mut word = None;
                let mut field = None;
                let mut args = Vec::new();
                for part in func.into_inner() {
                    match part.as_rule() {
                        Rule::kw_count => return Action::Count { by, span: sp },
                        Rule::kw_lhist | Rule::agg_word => word = Some(ident(part)),
                        Rule::field_name => field = Some(ident(part)),
                        Rule::number => args.push(self.number(part)),
                        _ => {}
                    }
                }
                match (word, field) {
                    (Some(func), Some(field)) => Action::Agg {
                        func,
                        field,
                        args,
                        by,
                        span: sp,
                    },
                    _ => Action::Count { by, span: sp },
                }
            }
        }
    }

    fn print_item(&mut self, p: Pair<'_, Rule>) -> Option<PrintItem> {
        let sp = trimmed_span(&p);
        let mut field = None;
        let mut op = None;
        let mut scale = None;
        let mut alias = None;
        for part in p.into_inner() {
            match part.as_rule() {
                Rule::field_name => field = Some(ident(part)),
                Rule::arith_op => op = Some(arith_op(part.as_str())),
                Rule::number => scale = op.map(|o| (o, self.number(part))),
                Rule::alias => alias = Some(ident(part)),
                _ => {}
            }
        }
        Some(PrintItem {
            field: field?,
            scale,
            alias,
            span: sp,
        })
    }

    fn expr(&mut self, p: Pair<'_, Rule>) -> Expr {
        match p.as_rule() {
            Rule::expr | Rule::atom => match p.clone().into_inner().next() {
                Some(inner) => self.expr(inner),
                None => self.missing(&p),
            },
            Rule::or_expr | Rule::and_expr => self.binary(p),
            Rule::unary => {
                let sp = trimmed_span(&p);
                let mut inner = p.into_inner();
                match (inner.next(), inner.next()) {
                    (Some(op), Some(e)) if op.as_rule() == Rule::not_op => {
                        self.c_style(&op, "not");
                        Expr::Not {
                            expr: Box::new(self.expr(e)),
                            span: sp,
                        }
                    }
                    (Some(e), None) => self.expr(e),
                    _ => Expr::Bare(Operand::Field(Ident {
                        name: String::new(),
                        span: sp,
                    })),
                }
            }
            Rule::comparison => {
                let sp = trimmed_span(&p);
                let mut inner = p.into_inner();
                match (inner.next(), inner.next(), inner.next()) {
                    (Some(l), Some(op), Some(r)) => Expr::Compare {
                        lhs: self.term(l),
                        op: self.cmp_op(op),
                        rhs: self.term(r),
                        span: sp,
                    },
                    _ => self.missing_span(sp),
                }
            }
            Rule::in_test => {
                let sp = trimmed_span(&p);
                let mut lhs = None;
                let mut items = Vec::new();
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::term => lhs = Some(self.term(part)),
                        Rule::set => {
                            for i in part.into_inner() {
                                items.extend(self.set_item(i));
                            }
                        }
                        Rule::set_item => items.extend(self.set_item(part)),
                        _ => {}
                    }
                }
                match lhs {
                    Some(lhs) => Expr::In {
                        lhs,
                        items,
                        span: sp,
                    },
                    None => self.missing_span(sp),
                }
            }
            Rule::operand => Expr::Bare(self.operand(p)),
            _ => self.missing(&p),
        }
    }

    /// `operand [OP operand]`.
    fn term(&mut self, p: Pair<'_, Rule>) -> Operand {
        let sp = trimmed_span(&p);
        let mut inner = p.into_inner();
        let Some(first) = inner.next() else {
            return Operand::Field(Ident {
                name: String::new(),
                span: sp,
            });
        };
        let lhs = self.operand(first);
        match (inner.next(), inner.next()) {
            (Some(op), Some(rhs)) => Operand::Arith {
                lhs: Box::new(lhs),
                op: arith_op(op.as_str()),
                op_span: span(&op),
                rhs: Box::new(self.operand(rhs)),
                span: sp,
            },
            _ => lhs,
        }
    }

    fn set_item(&mut self, p: Pair<'_, Rule>) -> Option<SetItem> {
        let p = if p.as_rule() == Rule::set_item {
            p.into_inner().next()?
        } else {
            p
        };
        let sp = span(&p);
        match p.as_rule() {
            Rule::range => {
                let mut inner = p.into_inner();
                let lo = self.number(inner.next()?);
                let hi = self.number(inner.next()?);
                Some(SetItem::Range { lo, hi, span: sp })
            }
            Rule::cidr => {
                let mut inner = p.into_inner();
                let a = inner.next()?;
                let len_text = inner.next()?.as_str().to_string();
                let addr = match self.operand_literal(a) {
                    Some(Value::Addr(addr)) => addr,
                    _ => return None,
                };
                let max = if addr.is_ipv4() { 32 } else { 128 };
                match len_text.parse::<u8>() {
                    Ok(len) if len <= max => Some(SetItem::Cidr {
                        addr,
                        len,
                        span: sp,
                    }),
                    _ => {
                        self.bad_literal(
                            &sp,
                            format!("`/{len_text}` is not a prefix length for this address"),
                            &format!("the prefix length of this address is 0 to {max}"),
                        );
                        None
                    }
                }
            }
            Rule::operand => Some(SetItem::One(self.operand(p))),
            _ => None,
        }
    }

    /// An address inside a CIDR, validated like an operand.
    fn operand_literal(&mut self, p: Pair<'_, Rule>) -> Option<Value> {
        let sp = span(&p);
        let text = p.as_str();
        let parsed: Option<IpAddr> = match p.as_rule() {
            Rule::ipv4 => text.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            _ => text.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        };
        if parsed.is_none() {
            self.bad_literal(
                &sp,
                format!("`{text}` is not an address"),
                "write e.g. `10.0.0.0/8` or `fd00::/8`",
            );
        }
        parsed.map(Value::Addr)
    }

    /// A `number` pair as a literal.
    fn number(&mut self, p: Pair<'_, Rule>) -> Literal {
        let sp = span(&p);
        let p_text = p.as_str().to_string();
        let mut value = 0;
        let mut suffix = None;
        let mut frac = None;
        let mut int_text = String::new();
        for part in p.into_inner() {
            match part.as_rule() {
                Rule::int_body => {
                    int_text = part.as_str().to_string();
                    match parse_int(part.as_str()) {
                        Some(v) => value = v,
                        None => self.bad_literal(
                            &span(&part),
                            format!("`{}` is too large", part.as_str()),
                            "values are at most 64 bits",
                        ),
                    }
                }
                Rule::fraction => frac = Some(part.as_str().to_string()),
                Rule::unit_suffix if part.as_str().starts_with(['x', 'X']) && value == 0 => {
                    // `0x` with no hex digits after it.
                    self.bad_literal(
                        &sp,
                        format!("`{}` is not a number", p_text),
                        "hex numbers need digits: `0x1f`",
                    );
                }
                Rule::unit_suffix => suffix = Some(part.as_str().to_string()),
                _ => {}
            }
        }
        let value = match frac {
            Some(f) => Value::Frac {
                text: format!("{int_text}{f}"),
                suffix,
            },
            None => Value::Int { value, suffix },
        };
        Literal {
            value,
            span: sp,
            from_param: None,
        }
    }

    fn missing(&mut self, p: &Pair<'_, Rule>) -> Expr {
        self.missing_span(span(p))
    }

    /// Only reachable if the grammar and the builder disagree: report it
    /// rather than panic.
    fn missing_span(&mut self, sp: Span) -> Expr {
        self.errors.push(Diagnostic::error(
            Code::Syntax,
            "internal error: unexpected syntax tree shape",
            sp.clone(),
            "here",
        ));
        Expr::Bare(Operand::Field(Ident {
            name: String::new(),
            span: sp,
        }))
    }

    /// `a and b and c` folds left; `or` likewise.
    fn binary(&mut self, p: Pair<'_, Rule>) -> Expr {
        let is_or = p.as_rule() == Rule::or_expr;
        let mut inner = p.into_inner();
        let Some(first) = inner.next() else {
            return self.missing_span(0..0);
        };
        let mut acc = self.expr(first);
        while let (Some(op), Some(rhs)) = (inner.next(), inner.next()) {
            self.c_style(&op, if is_or { "or" } else { "and" });
            let rhs = self.expr(rhs);
            let sp = acc.span().start..rhs.span().end;
            let (lhs, rhs) = (Box::new(acc), Box::new(rhs));
            acc = if is_or {
                Expr::Or { lhs, rhs, span: sp }
            } else {
                Expr::And { lhs, rhs, span: sp }
            };
        }
        acc
    }

    /// `&&`, `||`, `!` parse (so the rest of the program is still read) but
    /// are errors with the fix.
    fn c_style(&mut self, op: &Pair<'_, Rule>, word: &str) {
        let is_c = op
            .clone()
            .into_inner()
            .next()
            .is_some_and(|r| matches!(r.as_rule(), Rule::c_and | Rule::c_or | Rule::c_not));
        if is_c {
            self.errors.push(
                Diagnostic::error(
                    Code::CStyleOperator,
                    format!("`{}` is not an operator here", op.as_str()),
                    span(op),
                    format!("write `{word}`"),
                )
                .with_help(format!("tcpq spells it `{word}`")),
            );
        }
    }

    fn cmp_op(&mut self, p: Pair<'_, Rule>) -> Op {
        let sp = span(&p);
        let op = match p.as_str() {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            _ => {
                self.errors.push(
                    Diagnostic::error(
                        Code::CStyleOperator,
                        "`=` is not a comparison",
                        sp.clone(),
                        "write `==`",
                    )
                    .with_help("compare with `==`"),
                );
                CmpOp::Eq
            }
        };
        Op { op, span: sp }
    }

    fn operand(&mut self, p: Pair<'_, Rule>) -> Operand {
        let Some(p) = p.into_inner().next() else {
            return Operand::Field(Ident {
                name: String::new(),
                span: 0..0,
            });
        };
        let sp = span(&p);
        let lit = |value| {
            Operand::Literal(Literal {
                value,
                span: sp.clone(),
                from_param: None,
            })
        };
        match p.as_rule() {
            Rule::param => {
                let name = p.as_str().trim_start_matches('$').to_string();
                Operand::Param(Ident { name, span: sp })
            }
            Rule::ipv4 => match p.as_str().parse::<Ipv4Addr>() {
                Ok(a) => lit(Value::Addr(IpAddr::V4(a))),
                Err(_) => {
                    self.bad_literal(
                        &sp,
                        format!("`{}` is not an IPv4 address", p.as_str()),
                        "each of the four numbers must be 0 to 255, without leading zeros",
                    );
                    lit(Value::Addr(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
                }
            },
            Rule::ipv6 => match p.as_str().parse::<Ipv6Addr>() {
                Ok(a) => lit(Value::Addr(IpAddr::V6(a))),
                Err(_) => {
                    self.bad_literal(
                        &sp,
                        format!("`{}` is not an IPv6 address", p.as_str()),
                        "write it like `::1`, `fe80::1` or `2001:db8::10`",
                    );
                    lit(Value::Addr(IpAddr::V6(Ipv6Addr::UNSPECIFIED)))
                }
            },
            Rule::number => Operand::Literal(self.number(p)),
            Rule::string => {
                let raw = p.into_inner().next().map_or("", |i| i.as_str());
                match unescape(raw) {
                    Ok(s) => lit(Value::Str(s)),
                    Err(msg) => {
                        self.bad_literal(&sp, msg, "escapes are `\\\"`, `\\\\`, `\\n`, `\\t`");
                        lit(Value::Str(String::new()))
                    }
                }
            }
            Rule::ident => {
                let text = p.as_str();
                match text {
                    "true" => lit(Value::Bool(true)),
                    "false" => lit(Value::Bool(false)),
                    _ => {
                        if let Some(v) = catalog::state_by_name(text) {
                            lit(Value::State(v))
                        } else if let Some(v) = catalog::family_by_name(text) {
                            lit(Value::Family(v))
                        } else if let Some(v) = crate::errno::by_name(text) {
                            lit(Value::Errno(v))
                        } else {
                            Operand::Field(Ident {
                                name: text.to_string(),
                                span: sp,
                            })
                        }
                    }
                }
            }
            _ => Operand::Field(Ident {
                name: p.as_str().to_string(),
                span: sp,
            }),
        }
    }

    fn bad_literal(&mut self, sp: &Span, message: String, help: &str) {
        self.errors.push(
            Diagnostic::error(
                Code::InvalidLiteral,
                message,
                sp.clone(),
                "not a valid value",
            )
            .with_help(help),
        );
    }
}

/// Decimal or `0x` hex, `_` separators, optional leading `-`.
pub(crate) fn parse_int(text: &str) -> Option<i128> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let digits: String = body.chars().filter(|c| *c != '_').collect();
    let v = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(h, 16).ok()?
    } else {
        digits.parse::<u64>().ok()?
    };
    let v = v as i128;
    Some(if neg { -v } else { v })
}

fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(o) => return Err(format!("unknown escape `\\{o}` in string")),
            None => return Err("string ends with `\\`".into()),
        }
    }
    Ok(out)
}
