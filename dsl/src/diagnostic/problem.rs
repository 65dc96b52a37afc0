//! What went wrong, as data, and every sentence tcpq says about it.
//!
//! The passes (parse, resolve, check, recipes, sockets) build a [`Problem`]
//! carrying what they found (the name, the field, the suggestion) and where;
//! [`Problem::words`] is the only place that turns one into a message, a
//! label and a help line (gleam's `compiler-core/src/error.rs` does the
//! same). A test can match on the variant; the wording is pinned by the
//! snapshot tests.
use serde::Serialize;

use super::Code;
use crate::plan::FieldType;

/// One problem a pass found, with what it found. Each variant has one
/// [`Code`] ([`Problem::code`]); several variants may share one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
            ValueAlone => Code::NotAPredicate,
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
