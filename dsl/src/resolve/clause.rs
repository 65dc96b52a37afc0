//! A clause: its probe, the fields its action names, and the hints for
//! an unknown probe or field (a typo, another tool's name, another
//! probe's field). The `where` clause is `expr.rs`.
use crate::ast::{self, Span, Value};
use crate::catalog::{self, ProbeDef};
use crate::diagnostic::{suggest, Diagnostic, FieldHint, Problem};

use super::{RAction, RClause, RField, RPrintItem, RScale, RWhere, Resolver};

impl Resolver<'_> {
    pub(super) fn clause(&mut self, c: &ast::Clause) -> Option<RClause> {
        let Some(probe) = catalog::probe(&c.probe.name) else {
            let names = catalog::PROBES.iter().map(|p| p.name);
            self.diagnostics.push(Diagnostic::new(
                Problem::UnknownProbe {
                    name: c.probe.name.clone(),
                    suggestion: suggest(&c.probe.name, names).map(str::to_owned),
                    probes: catalog::PROBES.iter().map(|p| p.name).collect(),
                },
                c.probe.span.clone(),
            ));
            // Without a probe its fields cannot be judged: skip the clause.
            return None;
        };
        self.clause_on(probe, c)
    }

    /// `c` against `probe`, which need not be in `catalog::PROBES`.
    pub(super) fn clause_on(
        &mut self,
        probe: &'static ProbeDef,
        c: &ast::Clause,
    ) -> Option<RClause> {
        self.field_spans.clear();
        let filter = c.filter.as_ref().map(|w| {
            self.omitted.clear();
            let expr = self.expr(probe, &w.expr);
            RWhere {
                expr,
                source: w.source.clone(),
                span: w.span.clone(),
                omitted: std::mem::take(&mut self.omitted),
            }
        });
        let action = match &c.action {
            ast::Action::Print { items, span } => RAction::Print {
                items: items
                    .iter()
                    .filter_map(|i| {
                        let field = self.field(probe, &i.field, None);
                        let scale = i.scale.as_ref().map(|(op, by)| RScale {
                            op: *op,
                            op_span: by.span.clone(),
                            by: by.clone(),
                        });
                        Some(RPrintItem {
                            field: field?,
                            scale,
                            alias: i.alias.clone(),
                            span: i.span.clone(),
                        })
                    })
                    .collect(),
                span: span.clone(),
            },
            ast::Action::Count { by, span } => RAction::Count {
                by: self.fields(probe, by),
                span: span.clone(),
            },
            ast::Action::Agg {
                func,
                field,
                args,
                by,
                span,
            } => {
                let f = self.field(probe, field, None);
                let by = self.fields(probe, by);
                match f {
                    Some(field) => RAction::Agg {
                        func: func.clone(),
                        field,
                        args: args.clone(),
                        by,
                        span: span.clone(),
                    },
                    // Keep checking the keys: count by them instead.
                    None => RAction::Count {
                        by,
                        span: span.clone(),
                    },
                }
            }
        };
        Some(RClause {
            probe,
            filter,
            action,
            modifiers: c.modifiers.clone(),
            metric: c.metric.clone(),
            span: c.span.clone(),
            probe_span: c.probe.span.clone(),
            field_spans: std::mem::take(&mut self.field_spans),
        })
    }

    /// Note where the clause first names `field`.
    pub(super) fn saw_field(&mut self, field: &'static str, span: &Span) {
        if !self.field_spans.iter().any(|(f, _)| *f == field) {
            self.field_spans.push((field, span.clone()));
        }
    }

    fn fields(&mut self, probe: &'static ProbeDef, names: &[ast::Ident]) -> Vec<RField> {
        names
            .iter()
            .filter_map(|i| self.field(probe, i, None))
            .collect()
    }

    /// Look a field up. `other` is the type on the other side of a
    /// comparison, which sharpens the hint for an unknown name.
    pub(super) fn field(
        &mut self,
        probe: &'static ProbeDef,
        id: &ast::Ident,
        other: Option<&Value>,
    ) -> Option<RField> {
        if let Some(def) = probe.field(&id.name) {
            self.saw_field(def.name, &id.span);
            return Some(RField {
                def,
                span: id.span.clone(),
            });
        }
        let names = probe.all_fields().map(|f| f.name);
        let hint = if let Some(s) = alias_of(probe, &id.name).or_else(|| suggest(&id.name, names)) {
            FieldHint::Suggest(s.to_owned())
        } else if let Some(p) = catalog::PROBES.iter().find(|p| p.field(&id.name).is_some()) {
            // A field of another probe is a common confusion.
            FieldHint::OtherProbe(p.name)
        } else if is_positional_arg(&id.name) {
            FieldHint::Positional
        } else if matches!(other, Some(Value::Str(_))) {
            FieldHint::ComparedWithString
        } else {
            FieldHint::Nothing
        };
        self.diagnostics.push(Diagnostic::new(
            Problem::UnknownField {
                name: id.name.clone(),
                probe: probe.name,
                hint,
            },
            id.span.clone(),
        ));
        None
    }
}

/// What people from other tools call a field: BCC's and ss's column
/// names, bpftrace's builtins. Only suggested when the probe has the field.
const ALIASES: &[(&str, &str)] = &[
    ("cmd", "comm"),
    ("command", "comm"),
    ("process", "comm"),
    ("proc", "comm"),
    ("task", "task_comm"),
    ("lport", "sport"),
    ("local_port", "sport"),
    ("src_port", "sport"),
    ("rport", "dport"),
    ("remote_port", "dport"),
    ("dst_port", "dport"),
    ("port", "dport"),
    ("laddr", "saddr"),
    ("src", "saddr"),
    ("local", "saddr"),
    ("raddr", "daddr"),
    ("dst", "daddr"),
    ("remote", "daddr"),
    ("rtt", "srtt"),
    ("cwnd", "snd_cwnd"),
    ("window", "rcv_wnd"),
    ("wnd", "rcv_wnd"),
    ("wscale", "rcv_wscale"),
    ("tgid", "pid"),
    ("tid", "task_pid"),
    ("af", "family"),
    ("retrans", "total_retrans"),
    ("retransmits", "total_retrans"),
    ("tx_bytes", "bytes_acked"),
    ("rx_bytes", "bytes_received"),
    ("newstate", "state"),
];

/// The probe's field another tool calls `name`, if any.
pub(crate) fn alias_of(probe: &ProbeDef, name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(a, _)| *a == lower)
        .and_then(|(_, f)| probe.field(f))
        .map(|f| f.name)
        .filter(|f| *f != name)
}

/// `arg0`, `arg1`, ... (bpftrace's kprobe registers).
fn is_positional_arg(name: &str) -> bool {
    name.strip_prefix("arg")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
