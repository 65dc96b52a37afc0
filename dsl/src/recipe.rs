// Over 800 lines: 170 are its tests; the code is one format, the header and the values it types.
//! Recipe files: a header of `#` comment lines (description, `@param`,
//! `@example`, `@expect`), then the program. `@expect` lines say what the
//! recipe must show against known traffic; they are data for the kernel
//! test that runs every recipe (tests/kernel/recipes.rs, which documents
//! them) and are ignored here.
//!
//! ```text
//! # Zero-window segments advertised on a local port, with the owning process.
//! #
//! # @param port: port                      Local port to watch (required)
//! # @param min: u64 = 0                    Ignore windows below this
//! # @example tcpq recipes/zero-window.tcpq --param port=8080
//! on tcp_select_window where win == 0 and sport == $port print pid, comm, sport, dport
//! ```
//!
//! Parameter values are parsed by their declared type into typed
//! [`Value`]s; the program refers to them as `$name` and `resolve` puts the
//! value into the AST. A value is never spliced into program text, so it can
//! never change the program's shape.
//!
//! An optional parameter (`# @param port: port?`) may be left out: every
//! comparison that uses it is then left out of the condition, as if it had
//! not been written (`resolve` prunes it; `--explain` lists it).
//!
//! A value may be a set where the type allows it: a list (`80,443`), a
//! range (`8000..8100`, numbers and ports) or a prefix (`10.0.0.0/8`,
//! addresses), each item parsed by the declared type into a [`ParamItem`].
//! `FIELD == $p` then means "the field is in the set" and `FIELD != $p`
//! "not in it" (`resolve` turns them into `in`); `check` checks every item
//! against the field like any written set member.
use crate::ast::{Span, Value};
use crate::catalog;
use crate::diagnostic::{suggest, DeclFault, Diagnostic, Problem};
use crate::parse::parse_int;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recipe {
    /// The first paragraph of the header, joined into one line.
    pub description: String,
    pub params: Vec<ParamDecl>,
    /// `@example` lines, verbatim.
    pub examples: Vec<String>,
    /// The program after the header.
    pub body: String,
    /// Byte offset of `body` in the recipe source (the program is parsed
    /// from the whole source, so diagnostics point into the file itself).
    pub body_offset: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParamDecl {
    pub name: String,
    pub ty: ParamType,
    /// `None`: the parameter is required (unless `optional`).
    pub default: Option<Value>,
    /// Declared `TYPE?`: may be left out, and then the comparisons that
    /// use it are left out. Never has a default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    pub help: String,
    /// Where the name is declared.
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    U64,
    I64,
    Port,
    Addr,
    String,
    Bool,
    State,
    Family,
}

impl ParamType {
    pub const ALL: &'static [(&'static str, ParamType)] = &[
        ("u64", ParamType::U64),
        ("i64", ParamType::I64),
        ("port", ParamType::Port),
        ("addr", ParamType::Addr),
        ("string", ParamType::String),
        ("bool", ParamType::Bool),
        ("state", ParamType::State),
        ("family", ParamType::Family),
    ];

    pub fn name(self) -> &'static str {
        ParamType::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(n, _)| n)
    }

    /// What a valid value looks like, for error messages.
    pub(crate) fn expects(self) -> &'static str {
        match self {
            ParamType::U64 => "a non-negative integer, optionally with a unit (`100ms`, `64KiB`)",
            ParamType::I64 => "an integer",
            ParamType::Port => "a port number (0 to 65535)",
            ParamType::Addr => "an IPv4 or IPv6 address",
            ParamType::String => "a string",
            ParamType::Bool => "`true`, `false`, `1` or `0`",
            ParamType::State => "a TCP state name such as `ESTABLISHED`",
            ParamType::Family => "an address family: `AF_INET` or `AF_INET6` (or `4`, `6`)",
        }
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The first sentence of a description: the one-line purpose.
pub fn summary(description: &str) -> &str {
    let mut from = 0;
    while let Some(i) = description[from..].find(". ") {
        let end = from + i + 1;
        let before = &description[..from + i];
        // `e.g.`, `i.e.` do not end a sentence.
        if !(before.ends_with("e.g") || before.ends_with("i.e")) {
            return &description[..end];
        }
        from = end;
    }
    description
}

/// Parameter values bound for one run, by name, and the optional
/// parameters not given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Params {
    pub values: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub absent: BTreeSet<String>,
    /// Parameters given as a set (`port=80,443`, `port=8000..8100`,
    /// `net=10.0.0.0/8`), never also in `values`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sets: BTreeMap<String, Vec<ParamItem>>,
}

/// One member of a parameter given as a set, typed like the parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamItem {
    /// `80`, `ESTABLISHED`, `10.0.0.1`.
    One(Value),
    /// `8000..8100`: both ends included (numbers and ports).
    Range(Value, Value),
    /// `10.0.0.0/8`, `fd00::/8` (addresses).
    Prefix(IpAddr, u8),
}

impl fmt::Display for ParamItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamItem::One(v) => write!(f, "{v}"),
            ParamItem::Range(a, b) => write!(f, "{a}..{b}"),
            ParamItem::Prefix(a, n) => write!(f, "{a}/{n}"),
        }
    }
}

/// A `--param` value: one value, or a set of items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    One(Value),
    Set(Vec<ParamItem>),
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// Declared optional and not given.
    pub fn is_absent(&self, name: &str) -> bool {
        self.absent.contains(name)
    }

    /// The items of a parameter given as a set.
    pub fn set(&self, name: &str) -> Option<&[ParamItem]> {
        self.sets.get(name).map(Vec::as_slice)
    }
}

impl ParamType {
    /// Whether `A..B` items apply (numbers and ports).
    pub(crate) fn takes_ranges(self) -> bool {
        matches!(self, ParamType::U64 | ParamType::I64 | ParamType::Port)
    }
}

/// Parse a `--param` value of type `ty`: one value, or a set. A set is a
/// comma-separated list of items; an item is a value, `LO..HI` (numbers
/// and ports) or `ADDR/LEN` (addresses). Booleans are never sets (a set of
/// both is no filter). A string is split at commas too: a command name
/// with a comma cannot be given as a parameter (write it in the program).
/// The error names the item that does not parse and says why.
pub fn parse_param_binding(ty: ParamType, text: &str) -> Result<Binding, String> {
    if ty == ParamType::Bool {
        return parse_param_value(ty, text).map(Binding::One);
    }
    let parts: Vec<&str> = text.split(',').collect();
    let is_set = parts.len() > 1
        || (ty != ParamType::String && text.contains(".."))
        || (ty == ParamType::Addr && text.contains('/'));
    if !is_set {
        return parse_param_value(ty, text).map(Binding::One);
    }
    let mut items = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let which = if parts.len() > 1 {
            format!("item {} (`{}`)", i + 1, part.trim())
        } else {
            format!("`{}`", part.trim())
        };
        items.push(param_item(ty, part).map_err(|why| format!("{which}: {why}"))?);
    }
    Ok(Binding::Set(items))
}

/// One item of a set-valued parameter.
fn param_item(ty: ParamType, part: &str) -> Result<ParamItem, String> {
    let t = part.trim();
    if t.is_empty() {
        return Err("an empty item (two commas, or one at an end)".into());
    }
    if let Some((lo, hi)) = t.split_once("..") {
        if !ty.takes_ranges() {
            return Err(match ty {
                ParamType::Addr => "address ranges are prefixes, e.g. `10.0.0.0/24`".into(),
                _ => format!("a range `A..B` applies to numbers and ports, not to {ty}"),
            });
        }
        let (lo, hi) = (parse_param_value(ty, lo)?, parse_param_value(ty, hi)?);
        return Ok(ParamItem::Range(lo, hi));
    }
    if ty == ParamType::Addr {
        if let Some((addr, len)) = t.split_once('/') {
            let addr: IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| format!("`{}` is not an IPv4 or IPv6 address", addr.trim()))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len = len
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| {
                    format!(
                        "`/{}` is not a prefix length: 0 to {max} for this address",
                        len.trim()
                    )
                })?;
            return Ok(ParamItem::Prefix(addr, len));
        }
    }
    parse_param_value(ty, t).map(ParamItem::One)
}

/// A value as `--param` spells it (the inverse of [`parse_param_value`]):
/// strings unquoted, everything else as displayed.
pub fn param_text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parse a value of type `ty` from command-line text. The error says what
/// was expected.
pub fn parse_param_value(ty: ParamType, text: &str) -> Result<Value, String> {
    let int = |lo: i128, hi: i128| {
        parse_int(text.trim())
            .filter(|v| (lo..=hi).contains(v))
            .map(|value| Value::Int {
                value,
                suffix: None,
            })
    };
    // `100ms`, `64KiB`, `1.5s`: a number with a unit, which the field it is
    // compared with interprets (and rejects if the unit does not fit).
    let with_unit = || {
        let t = text.trim();
        let at = t.find(|c: char| c.is_ascii_alphabetic())?;
        let (num, unit) = t.split_at(at);
        if !unit.chars().all(|c| c.is_ascii_alphabetic()) || num.is_empty() {
            return None;
        }
        let suffix = Some(unit.to_string());
        match num.split_once('.') {
            Some((i, f))
                if !i.is_empty()
                    && !f.is_empty()
                    && i.chars().all(|c| c.is_ascii_digit())
                    && f.chars().all(|c| c.is_ascii_digit()) =>
            {
                Some(Value::Frac {
                    text: num.to_string(),
                    suffix,
                })
            }
            Some(_) => None,
            None => parse_int(num)
                .filter(|v| *v >= 0 && *v <= u64::MAX as i128)
                .map(|value| Value::Int { value, suffix }),
        }
    };
    let v = match ty {
        ParamType::U64 => int(0, u64::MAX as i128).or_else(with_unit),
        ParamType::I64 => int(i64::MIN as i128, i64::MAX as i128),
        ParamType::Port => int(0, 65535),
        ParamType::Addr => text.trim().parse::<IpAddr>().ok().map(Value::Addr),
        ParamType::String => Some(Value::Str(text.to_string())),
        ParamType::Bool => match text.trim() {
            "true" | "1" => Some(Value::Bool(true)),
            "false" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        ParamType::State => {
            catalog::state_by_name(&text.trim().to_ascii_uppercase()).map(Value::State)
        }
        ParamType::Family => match text.trim() {
            "4" => catalog::family_by_name("AF_INET"),
            "6" => catalog::family_by_name("AF_INET6"),
            t => catalog::family_by_name(&t.to_ascii_uppercase()),
        }
        .map(Value::Family),
    };
    v.ok_or_else(|| {
        let mut msg = format!("`{text}` is not {}", ty.expects());
        if ty == ParamType::State {
            let names = catalog::TCP_STATES.iter().map(|(n, _)| *n);
            if let Some(s) = suggest(text.trim(), names) {
                msg.push_str(&format!(" (did you mean `{s}`?)"));
            }
        }
        msg
    })
}

/// Split a recipe into header and program. Any source is a recipe: a
/// program without header has no description and no parameters.
pub fn parse_recipe(source: &str) -> Result<Recipe, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut description: Vec<&str> = Vec::new();
    let mut in_description = true;
    let mut params: Vec<ParamDecl> = Vec::new();
    let mut examples = Vec::new();
    let mut offset = 0;
    let mut body_offset = source.len();

    for line in source.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        let trimmed = line.trim_start();
        let Some(after_hash) = trimmed.strip_prefix('#') else {
            body_offset = line_start;
            break;
        };
        // Byte offset of the text after `#` (and one optional space).
        let text_start = line_start + (line.len() - trimmed.len()) + 1;
        let (text, text_start) = match after_hash.strip_prefix(' ') {
            Some(t) => (t, text_start + 1),
            None => (after_hash, text_start),
        };
        let text = text.trim_end();
        if let Some(directive) = text.strip_prefix('@') {
            in_description = false;
            let word_len = directive
                .find(|c: char| c.is_whitespace())
                .unwrap_or(directive.len());
            let word = &directive[..word_len];
            let rest_start = text_start + 1 + word_len;
            let rest = &directive[word_len..];
            match word {
                "param" => {
                    if let Some(d) = param_decl(rest, rest_start, &mut errors) {
                        if params.iter().any(|p| p.name == d.name) {
                            errors.push(Diagnostic::new(
                                Problem::DuplicateParamDecl {
                                    name: d.name.clone(),
                                },
                                d.span.clone(),
                            ));
                        } else {
                            params.push(d);
                        }
                    }
                }
                "example" => examples.push(rest.trim().to_string()),
                // What the recipe must show against known traffic: data for
                // the kernel test that runs every recipe
                // (tests/kernel/recipes.rs), never read here, never run.
                "expect" => {}
                _ => {
                    let sp = text_start..text_start + 1 + word_len;
                    errors.push(Diagnostic::new(
                        Problem::UnknownDirective {
                            word: word.to_owned(),
                            suggestion: suggest(word, ["param", "example", "expect"])
                                .map(str::to_owned),
                        },
                        sp,
                    ));
                }
            }
        } else if text.is_empty() {
            if !description.is_empty() {
                in_description = false;
            }
        } else if in_description {
            description.push(text);
        }
    }
    if errors.is_empty() {
        Ok(Recipe {
            description: description.join(" "),
            params,
            examples,
            body: source[body_offset..].to_string(),
            body_offset,
        })
    } else {
        Err(errors)
    }
}

/// `NAME: TYPE [= DEFAULT] HELP`, starting at byte `start` of the source.
fn param_decl(text: &str, start: usize, errors: &mut Vec<Diagnostic>) -> Option<ParamDecl> {
    let lead = text.len() - text.trim_start().len();
    let t = text.trim_start();
    let at = start + lead;
    let bad = |fault: DeclFault, sp: Span| Diagnostic::new(Problem::MalformedParamDecl(fault), sp);
    let name_len = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    let name = &t[..name_len];
    let name_span = at..at + name_len.max(1);
    let Some(after_colon) = t[name_len..].trim_start().strip_prefix(':') else {
        errors.push(bad(DeclFault::NoType, name_span));
        return None;
    };
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        errors.push(bad(DeclFault::NoName, name_span));
        return None;
    }
    let ty_text = after_colon.trim_start();
    let ty_at = at + (t.len() - ty_text.len());
    let ty_len = ty_text
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(ty_text.len());
    let (ty_word, optional) = match ty_text[..ty_len].strip_suffix('?') {
        Some(w) => (w, true),
        None => (&ty_text[..ty_len], false),
    };
    let Some(ty) = ParamType::ALL
        .iter()
        .find(|(n, _)| *n == ty_word)
        .map(|(_, t)| *t)
    else {
        let names = ParamType::ALL.iter().map(|(n, _)| *n);
        errors.push(Diagnostic::new(
            Problem::UnknownParamType {
                word: ty_word.to_owned(),
                suggestion: suggest(ty_word, names).map(str::to_owned),
                types: ParamType::ALL.iter().map(|(n, _)| *n).collect(),
            },
            ty_at..ty_at + ty_len.max(1),
        ));
        return None;
    };
    let mut rest = ty_text[ty_len..].trim_start();
    let mut default = None;
    if let Some(d) = rest.strip_prefix('=') {
        let d = d.trim_start();
        let d_at = at + (t.len() - d.len());
        if optional {
            let n = d.find(char::is_whitespace).unwrap_or(d.len());
            errors.push(Diagnostic::new(
                Problem::OptionalWithDefault {
                    name: name.to_owned(),
                    ty_word: ty_word.to_owned(),
                    default: d[..n].to_owned(),
                },
                ty_at..d_at + n.max(1),
            ));
            return None;
        }
        // A default is one token, or a double-quoted string for `string`.
        let (token, raw_len) = if let Some(q) = d.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], end + 2),
                None => {
                    errors.push(bad(DeclFault::UnclosedQuote, d_at..d_at + d.len().max(1)));
                    return None;
                }
            }
        } else {
            let n = d.find(char::is_whitespace).unwrap_or(d.len());
            (&d[..n], n)
        };
        match parse_param_value(ty, token) {
            Ok(v) => default = Some(v),
            Err(msg) => {
                errors.push(Diagnostic::new(
                    Problem::BadDefault {
                        name: name.to_owned(),
                        ty,
                        reason: msg,
                    },
                    d_at..d_at + raw_len.max(1),
                ));
                return None;
            }
        }
        rest = d[raw_len..].trim_start();
    }
    Some(ParamDecl {
        name: name.to_string(),
        ty,
        default,
        optional,
        help: rest.trim().to_string(),
        span: name_span,
    })
}

/// Bind `--param NAME=VALUE` pairs against the recipe's declarations.
/// Reports every problem: unknown names (with did-you-mean), duplicates,
/// values that do not parse as their type, required parameters not given.
pub fn bind_params(
    decls: &[ParamDecl],
    args: &[(String, String)],
) -> Result<Params, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut values = BTreeMap::new();
    let mut absent = BTreeSet::new();
    let mut sets = BTreeMap::new();
    let mut given: Vec<&str> = Vec::new();
    for (name, text) in args {
        if given.contains(&name.as_str()) {
            errors.push(Diagnostic::unlocated_problem(Problem::DuplicateParam {
                name: name.clone(),
            }));
            continue;
        }
        given.push(name);
        let Some(decl) = decls.iter().find(|d| &d.name == name) else {
            let names = decls.iter().map(|d| d.name.as_str());
            errors.push(Diagnostic::unlocated_problem(Problem::UnknownParam {
                name: name.clone(),
                suggestion: suggest(name, names).map(str::to_owned),
                declared: decls.iter().map(|d| d.name.clone()).collect(),
            }));
            continue;
        };
        match parse_param_binding(decl.ty, text) {
            Ok(Binding::One(v)) => {
                values.insert(name.clone(), v);
            }
            Ok(Binding::Set(items)) => {
                sets.insert(name.clone(), items);
            }
            Err(msg) => errors.push(Diagnostic::new(
                Problem::BadParamValue {
                    name: name.clone(),
                    text: text.clone(),
                    ty: decl.ty,
                    reason: msg,
                },
                decl.span.clone(),
            )),
        }
    }
    for d in decls {
        if given.contains(&d.name.as_str()) {
            continue;
        }
        match &d.default {
            Some(v) => {
                values.insert(d.name.clone(), v.clone());
            }
            None if d.optional => {
                absent.insert(d.name.clone());
            }
            None => errors.push(Diagnostic::new(
                Problem::MissingParam {
                    name: d.name.clone(),
                    ty: d.ty,
                },
                d.span.clone(),
            )),
        }
    }
    if errors.is_empty() {
        Ok(Params {
            values,
            absent,
            sets,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;

    const ZERO_WINDOW: &str = "\
# Zero-window segments advertised on a local port, with the owning process.
#
# @param port: port                      Local port to watch (required)
# @param min: u64 = 0                    Ignore windows below this
# @example tcpq recipes/zero-window.tcpq --param port=8080
on tcp_select_window where win == 0 and sport == $port print pid, comm, sport, dport
";

    fn codes(r: Result<impl fmt::Debug, Vec<Diagnostic>>) -> Vec<Code> {
        r.expect_err("expected errors")
            .iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn header_is_read() {
        let r = parse_recipe(ZERO_WINDOW).unwrap();
        assert_eq!(
            r.description,
            "Zero-window segments advertised on a local port, with the owning process."
        );
        assert_eq!(r.params.len(), 2);
        assert_eq!(r.params[0].name, "port");
        assert_eq!(r.params[0].ty, ParamType::Port);
        assert_eq!(r.params[0].default, None);
        assert_eq!(r.params[0].help, "Local port to watch (required)");
        assert_eq!(&ZERO_WINDOW[r.params[0].span.clone()], "port");
        assert_eq!(
            r.params[1].default,
            Some(Value::Int {
                value: 0,
                suffix: None
            })
        );
        assert_eq!(
            r.examples,
            ["tcpq recipes/zero-window.tcpq --param port=8080"]
        );
        assert!(r.body.starts_with("on tcp_select_window"));
        assert_eq!(&ZERO_WINDOW[r.body_offset..], r.body);
    }

    /// `@expect` lines are the kernel test's data: accepted anywhere in
    /// the header, kept out of the description, the parameters and the
    /// examples, and never part of the program.
    #[test]
    fn expect_lines_are_accepted_and_ignored() {
        let src = "# Zero windows.\n\
                   # @param port: port?   Local port\n\
                   # @expect traffic transfer\n\
                   # @expect case port=$port\n\
                   # @expect all pid == $reader.pid, wscale_ok == false\n\
                   # @example tcpq zero-window\n\
                   on tcp_select_window where win == 0 and sport == $port print pid\n";
        let r = parse_recipe(src).unwrap();
        assert_eq!(r.description, "Zero windows.");
        assert_eq!(r.params.len(), 1);
        assert_eq!(r.examples, ["tcpq zero-window"]);
        assert!(r.body.starts_with("on tcp_select_window"));
        let plan = crate::compile(src, "zero-window.tcpq", &[("port".into(), "80".into())]);
        assert!(plan.is_ok(), "{plan:?}");
        assert_eq!(
            codes(parse_recipe("# @expct traffic transfer\non x print a")),
            [Code::UnknownDirective]
        );
    }

    #[test]
    fn string_default_may_be_quoted() {
        let r = parse_recipe("# @param who: string = \"my app\" the comm\non x print a").unwrap();
        assert_eq!(r.params[0].default, Some(Value::Str("my app".into())));
        assert_eq!(r.params[0].help, "the comm");
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            codes(parse_recipe("# @param port: prot\n")),
            [Code::BadParamDecl]
        );
        assert_eq!(codes(parse_recipe("# @param port\n")), [Code::BadParamDecl]);
        assert_eq!(
            codes(parse_recipe("# @param p: port = 70000\n")),
            [Code::BadParamValue]
        );
        assert_eq!(
            codes(parse_recipe("# @param p: port\n# @param p: u64\n")),
            [Code::DuplicateParamDecl]
        );
        assert_eq!(
            codes(parse_recipe("# @parm p: port\n")),
            [Code::UnknownDirective]
        );
    }

    fn args(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn binding() {
        let r = parse_recipe(ZERO_WINDOW).unwrap();
        let p = bind_params(&r.params, &args(&[("port", "8080")])).unwrap();
        assert_eq!(
            p.get("port"),
            Some(&Value::Int {
                value: 8080,
                suffix: None
            })
        );
        assert!(p.get("min").is_some(), "default applies");
        assert_eq!(codes(bind_params(&r.params, &[])), [Code::MissingParam]);
        assert_eq!(
            codes(bind_params(
                &r.params,
                &args(&[("prot", "1"), ("port", "1")])
            )),
            [Code::UnknownParam]
        );
        assert_eq!(
            codes(bind_params(&r.params, &args(&[("port", "80x")]))),
            [Code::BadParamValue]
        );
        assert_eq!(
            codes(bind_params(
                &r.params,
                &args(&[("port", "1"), ("port", "2")])
            )),
            [Code::DuplicateParam]
        );
    }

    #[test]
    fn optional_params() {
        let src = "# @param port: port?   Remote port; every port when not given\n\
                   on tcp_probe where dport == $port print pid\n";
        let r = parse_recipe(src).unwrap();
        assert!(r.params[0].optional);
        assert_eq!(r.params[0].ty, ParamType::Port);
        assert_eq!(r.params[0].default, None);
        assert_eq!(r.params[0].help, "Remote port; every port when not given");
        // Not given: absent, not an error.
        let p = bind_params(&r.params, &[]).unwrap();
        assert!(p.is_absent("port") && p.get("port").is_none());
        let p = bind_params(&r.params, &args(&[("port", "443")])).unwrap();
        assert!(!p.is_absent("port") && p.get("port").is_some());
        assert_eq!(
            codes(bind_params(&r.params, &args(&[("port", "http")]))),
            [Code::BadParamValue]
        );
        // `?` and a default contradict each other.
        assert_eq!(
            codes(parse_recipe("# @param port: port? = 80 help\n")),
            [Code::BadParamDecl]
        );
        assert_eq!(
            codes(parse_recipe("# @param port: prot? help\n")),
            [Code::BadParamDecl]
        );
    }

    #[test]
    fn values_by_type() {
        use ParamType::*;
        assert!(parse_param_value(Port, "65536").is_err());
        assert!(parse_param_value(U64, "-1").is_err());
        assert_eq!(
            parse_param_value(I64, "-5"),
            Ok(Value::Int {
                value: -5,
                suffix: None
            })
        );
        assert!(matches!(parse_param_value(Addr, "::1"), Ok(Value::Addr(_))));
        assert_eq!(parse_param_value(State, "established"), Ok(Value::State(1)));
        assert_eq!(parse_param_value(Family, "6"), Ok(Value::Family(10)));
        assert_eq!(parse_param_value(Family, "af_inet"), Ok(Value::Family(2)));
        assert!(parse_param_value(Family, "AF_UNIX").is_err());
        assert!(parse_param_value(State, "ESTABLISHD")
            .unwrap_err()
            .contains("ESTABLISHED"));
        assert_eq!(parse_param_value(Bool, "0"), Ok(Value::Bool(false)));
        // A string value is data, even when it looks like syntax.
        assert_eq!(
            parse_param_value(String, "x\" or 1 == 1"),
            Ok(Value::Str("x\" or 1 == 1".into()))
        );
    }
}
