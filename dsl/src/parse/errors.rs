//! A pest syntax error in words a user knows: what was expected (rule
//! names renamed), and the slip that most likely caused it (a unit glued
//! to the wrong thing, a list after `==`, ...) with its fix. Where the
//! source is cut after an error is `mod.rs`.
use crate::diagnostic::{Code, Diagnostic};
use pest::error::{ErrorVariant, InputLocation};

use super::Rule;

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
        Rule::metric_as | Rule::metric_name => "a metric name",
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
pub(super) fn syntax_error(chunk: &str, offset: usize, e: pest::error::Error<Rule>) -> Diagnostic {
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
