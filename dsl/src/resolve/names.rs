//! Bare names beside a field: a constant of the field's kernel enum
//! (`reason == NETFILTER_DROP`), an errno, and what to say about a name
//! that is none (a typo'd constant, a word meant as a string, a host
//! name, a second field).
use crate::ast::{self, Literal, Operand, Value};
use crate::catalog;
use crate::diagnostic::{suggest, Code, Diagnostic};
use crate::plan::FieldType;

use super::{operand_text, RField, Resolver};

impl Resolver<'_> {
    /// A name on the value side of a comparison with `field`: a typo'd
    /// constant, a word meant as a string, or a second field.
    pub(super) fn unknown_value_name(&mut self, field: &RField, id: &ast::Ident) {
        let (what, candidates): (&str, Vec<&str>) = match field.def.ty {
            FieldType::TcpState => (
                "TCP state",
                catalog::TCP_STATES.iter().map(|(n, _)| *n).collect(),
            ),
            FieldType::Family => (
                "address family",
                catalog::FAMILIES.iter().map(|(n, _)| *n).collect(),
            ),
            FieldType::Int(crate::plan::Unit::Errno) => {
                self.unknown_errno(field, id);
                return;
            }
            FieldType::Comm => {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::UnknownField,
                        format!(
                            "`{}` is not a field; `{}` compares with a string",
                            id.name, field.def.name
                        ),
                        id.span.clone(),
                        "a name, not a string",
                    )
                    .with_help(format!("quote it: `{} == \"{}\"`", field.def.name, id.name)),
                );
                return;
            }
            FieldType::Addr => {
                let example = if id.name == "localhost" {
                    format!("`{0} == 127.0.0.1` or `{0} == ::1`", field.def.name)
                } else {
                    format!("`{} == 192.0.2.10`", field.def.name)
                };
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        format!(
                            "`{}` is a name; `{}` holds an address",
                            id.name, field.def.name
                        ),
                        id.span.clone(),
                        "a name, not an address",
                    )
                    .with_help(format!(
                        "tcpq compares addresses and never resolves host names: write {example}"
                    )),
                );
                return;
            }
            _ => {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::NeedFieldAndValue,
                        format!("`{}` is compared with `{}`, which is not a value", field.def.name, id.name),
                        id.span.clone(),
                        "expected a value here",
                    )
                    .with_help("compare a field with a literal value; comparing two fields is not supported"),
                );
                return;
            }
        };
        let help = match suggest(&id.name, candidates.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("{what}s are {}", candidates.join(", ")),
        };
        self.diagnostics.push(
            Diagnostic::error(
                Code::UnknownConstant,
                format!("unknown {what} `{}`", id.name),
                id.span.clone(),
                format!("not a {what}"),
            )
            .with_help(help),
        );
    }

    /// `err == EPRM`: a name that is no errno (there are too many to list).
    fn unknown_errno(&mut self, field: &RField, id: &ast::Ident) {
        let upper = id.name.to_ascii_uppercase();
        let help = match crate::errno::by_name(&upper) {
            Some(_) => format!("errno names are upper case: `{upper}`"),
            None => match suggest(&upper, crate::errno::names()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "`{}` holds an errno, by name as in the kernel's headers: `EPERM`, \
                     `ENOBUFS`, ... (or NET_XMIT_DROP)",
                    field.def.name
                ),
            },
        };
        self.diagnostics.push(
            Diagnostic::error(
                Code::UnknownConstant,
                format!("unknown errno `{}`", id.name),
                id.span.clone(),
                "not an errno name",
            )
            .with_help(help),
        );
    }

    /// A bare name as a constant of the field's kernel enum (`reason ==
    /// NETFILTER_DROP`, `SKB_DROP_REASON_` optional): the value the runtime
    /// binds from BTF.
    pub(super) fn enum_constant(&mut self, field: &RField, id: &ast::Ident) -> Named {
        let FieldType::Uint(unit) = field.def.ty else {
            return Named::NotAnEnum;
        };
        let Some((enum_name, prefix, names)) = crate::reasons::enum_of(unit) else {
            return Named::NotAnEnum;
        };
        if let Some(short) = crate::reasons::known(unit, &id.name) {
            return Named::Constant(Literal {
                value: Value::Enum(short.to_owned()),
                span: id.span.clone(),
                from_param: None,
            });
        }
        let short = id.name.strip_prefix(prefix).unwrap_or(&id.name);
        let upper = short.to_ascii_uppercase();
        let help = if crate::reasons::known(unit, &upper).is_some() {
            format!("reasons are upper case: `{upper}`")
        } else {
            match suggest(short, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "`tcpq -l {}` lists the reasons tcpq knows (`enum {enum_name}` of Linux \
                     6.18); a reason newer than that can be compared by its number",
                    field_probe_name(field)
                ),
            }
        };
        self.diagnostics.push(
            Diagnostic::error(
                Code::UnknownConstant,
                format!("unknown {} `{}`", unit_enum_words(unit), id.name),
                id.span.clone(),
                format!("not in `enum {enum_name}`"),
            )
            .with_help(help),
        );
        Named::Reported
    }

    /// A bare name inside `field in [...]`: a command name without quotes,
    /// a typo'd constant, or a field where a value belongs.
    pub(super) fn name_in_set(&mut self, field: &RField, id: &ast::Ident, all: &[ast::SetItem]) {
        match field.def.ty {
            FieldType::TcpState | FieldType::Family | FieldType::Addr => {
                self.unknown_value_name(field, id)
            }
            FieldType::Comm => {
                // Show the whole set as it should be written.
                let fixed: Vec<String> = all
                    .iter()
                    .map(|i| match i {
                        ast::SetItem::One(Operand::Field(n)) => format!("\"{}\"", n.name),
                        ast::SetItem::One(Operand::Literal(l)) => l.value.to_string(),
                        ast::SetItem::One(Operand::Param(p)) => format!("${}", p.name),
                        ast::SetItem::One(o) => operand_text(o),
                        ast::SetItem::Range { lo, hi, .. } => format!("{}..{}", lo.value, hi.value),
                        ast::SetItem::Cidr { addr, len, .. } => format!("{addr}/{len}"),
                    })
                    .collect();
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        format!(
                            "`{}` is a name, but `{}` holds command names, which are strings",
                            id.name, field.def.name
                        ),
                        id.span.clone(),
                        "a name, not a string",
                    )
                    .with_help(format!(
                        "strings are quoted: \"{}\"; write `{} in [{}]`",
                        id.name,
                        field.def.name,
                        fixed.join(", ")
                    )),
                );
            }
            _ => {
                let what = if field_named(field, &id.name) {
                    format!("`{}` is a field, not a value", id.name)
                } else {
                    format!("`{}` is not a value", id.name)
                };
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::NeedFieldAndValue,
                        what,
                        id.span.clone(),
                        format!("expected {}", catalog::type_words(field.def.ty)),
                    )
                    .with_help(format!(
                        "a set holds values of `{}` ({}), e.g. `{}`",
                        field.def.name,
                        catalog::type_words(field.def.ty),
                        set_example(field)
                    )),
                );
            }
        }
    }
}

/// What a bare name beside a field turned out to be.
pub(super) enum Named {
    /// A constant of the field's kernel enum.
    Constant(Literal),
    /// The field takes enum constants, and this is none: reported.
    Reported,
    /// The field takes no enum constants.
    NotAnEnum,
}

fn unit_enum_words(u: crate::plan::Unit) -> &'static str {
    match u {
        crate::plan::Unit::RstReason => "reset reason",
        _ => "drop reason",
    }
}

/// The probe a field belongs to, for help lines.
fn field_probe_name(f: &RField) -> &'static str {
    catalog::PROBES
        .iter()
        .find(|p| p.fields.iter().any(|d| std::ptr::eq(d, f.def)))
        .map_or("PROBE", |p| p.name)
}

/// Whether `name` is a field of the probe `f` belongs to.
fn field_named(f: &RField, name: &str) -> bool {
    catalog::PROBES
        .iter()
        .filter(|p| p.field(f.def.name).is_some_and(|d| std::ptr::eq(d, f.def)))
        .any(|p| p.field(name).is_some())
}

/// A well-formed set for the field, for help lines.
fn set_example(f: &RField) -> String {
    let n = f.def.name;
    match f.def.ty {
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
