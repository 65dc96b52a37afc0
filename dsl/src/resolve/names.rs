//! Bare names beside a field: a constant of the field's kernel enum
//! (`reason == NETFILTER_DROP`), an errno, and what to say about a name
//! that is none (a typo'd constant, a word meant as a string, a host
//! name, a second field).
use crate::ast::{self, Literal, Operand, Value};
use crate::catalog;
use crate::diagnostic::{suggest, Diagnostic, Problem};
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
                self.diagnostics.push(Diagnostic::new(
                    Problem::NameForString {
                        name: id.name.clone(),
                        field: field.def.name,
                    },
                    id.span.clone(),
                ));
                return;
            }
            FieldType::Addr => {
                self.diagnostics.push(Diagnostic::new(
                    Problem::HostName {
                        name: id.name.clone(),
                        field: field.def.name,
                    },
                    id.span.clone(),
                ));
                return;
            }
            _ => {
                self.diagnostics.push(Diagnostic::new(
                    Problem::NameNotAValue {
                        name: id.name.clone(),
                        field: field.def.name,
                    },
                    id.span.clone(),
                ));
                return;
            }
        };
        let suggestion = suggest(&id.name, candidates.iter().copied()).map(str::to_owned);
        self.diagnostics.push(Diagnostic::new(
            Problem::UnknownStateOrFamily {
                what,
                name: id.name.clone(),
                suggestion,
                candidates,
            },
            id.span.clone(),
        ));
    }

    /// `err == EPRM`: a name that is no errno (there are too many to list).
    fn unknown_errno(&mut self, field: &RField, id: &ast::Ident) {
        let upper = id.name.to_ascii_uppercase();
        let (upper_case, suggestion) = match crate::errno::by_name(&upper) {
            Some(_) => (Some(upper), None),
            None => (
                None,
                suggest(&upper, crate::errno::names()).map(str::to_owned),
            ),
        };
        self.diagnostics.push(Diagnostic::new(
            Problem::UnknownErrno {
                name: id.name.clone(),
                field: field.def.name,
                upper_case,
                suggestion,
            },
            id.span.clone(),
        ));
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
        let (upper_case, suggestion) = if crate::reasons::known(unit, &upper).is_some() {
            (Some(upper), None)
        } else {
            (
                None,
                suggest(short, names.iter().copied()).map(str::to_owned),
            )
        };
        self.diagnostics.push(Diagnostic::new(
            Problem::UnknownReason {
                name: id.name.clone(),
                what: unit_enum_words(unit),
                enum_name,
                upper_case,
                suggestion,
                probe: field_probe_name(field),
            },
            id.span.clone(),
        ));
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
                self.diagnostics.push(Diagnostic::new(
                    Problem::NameInCommSet {
                        name: id.name.clone(),
                        field: field.def.name,
                        fixed,
                    },
                    id.span.clone(),
                ));
            }
            _ => {
                self.diagnostics.push(Diagnostic::new(
                    Problem::NameInSet {
                        name: id.name.clone(),
                        field: field.def.name,
                        ty: field.def.ty,
                        is_field: field_named(field, &id.name),
                    },
                    id.span.clone(),
                ));
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
