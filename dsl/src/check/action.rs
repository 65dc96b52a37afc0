//! What a clause does: `print` columns (with `FIELD / N` scales), `count
//! by` keys and aggregations (`sum`, ..., `hist`, `lhist` and its bounds),
//! the key's size limit, and which fields cannot be used so (the event
//! header's, non-numbers, errnos). Not the `where` clause (`condition.rs`)
//! nor the modifiers after the action (`output.rs`).
use crate::ast::{ArithOp, Literal, Span};
use crate::diagnostic::{Diagnostic, Lhist, Problem, Shown};
use crate::plan::{Action, AggFunc, Column, FieldType, Scale, Source, Unit};
use crate::resolve::{RAction, RField, RPrintItem, RScale};

use super::units::field_unit;
use super::{Checker, MAX_LHIST_BUCKETS};

pub(super) fn column(f: &RField) -> Column {
    Column {
        name: f.def.name.to_string(),
        ty: f.def.ty,
        slots: f.def.slots.to_vec(),
        source: match f.def.header {
            Some(h) => Source::Header(h),
            None => Source::Slots,
        },
        scale: None,
        labels: f.def.labels.map(|l| l.map(str::to_owned)),
    }
}

impl Checker {
    pub(super) fn action(&mut self, a: &RAction) -> Action {
        match a {
            RAction::Print { items, .. } => Action::Print {
                columns: items.iter().map(|i| self.print_column(i)).collect(),
            },
            RAction::Count { by, span } => {
                for f in by {
                    self.print_only(f, "count by");
                }
                let keys: Vec<Column> = by.iter().map(column).collect();
                self.key_size(&keys, 0, span, "count by");
                Action::Count { keys }
            }
            RAction::Agg {
                func,
                field,
                args,
                by,
                span,
            } => {
                for f in by {
                    self.print_only(f, &format!("{} by", func.name));
                }
                if self.print_only(field, &func.name) {
                    // Nothing more to say about a value no aggregation has.
                    return Action::Count { keys: vec![] };
                }
                let keys: Vec<Column> = by.iter().map(column).collect();
                self.errno_aggregated(field, &func.name);
                let f = self.agg_func(func, field, args);
                // Signed values aggregate too (`sum ret`): the template
                // compares them as i64.
                if !matches!(field.def.ty, FieldType::Int(_)) {
                    self.numeric_field(field, &format!("{} {}", func.name, field.def.name));
                }
                let f = f.unwrap_or(AggFunc::Sum);
                let extra = usize::from(f.is_histogram());
                self.key_size(&keys, extra, span, &format!("{} by", func.name));
                Action::Aggregate {
                    func: f,
                    value: column(field),
                    keys,
                }
            }
        }
    }

    /// `as NAME`: the name, when Prometheus accepts it; else a diagnostic
    /// at it.
    pub(super) fn metric_name(
        &mut self,
        m: &crate::ast::Ident,
    ) -> Option<(String, (usize, usize))> {
        match crate::metrics::check_name(&m.name) {
            Ok(()) => Some((m.name.clone(), (m.span.start, m.span.end))),
            Err(fault) => {
                self.diagnostics.push(Diagnostic::new(
                    Problem::BadMetricName {
                        name: m.name.clone(),
                        fault,
                    },
                    m.span.clone(),
                ));
                None
            }
        }
    }

    fn key_size(&mut self, keys: &[Column], extra: usize, span: &Span, what: &str) {
        let n: usize = keys.iter().map(|k| k.slots.len()).sum::<usize>() + extra;
        if n > tcpq_abi::MAX_KEY_SLOTS {
            self.diagnostics.push(Diagnostic::new(
                Problem::KeyTooLarge {
                    what: what.to_owned(),
                    slots: n,
                    max: tcpq_abi::MAX_KEY_SLOTS,
                    histogram: extra > 0,
                },
                span.clone(),
            ));
        }
    }

    /// Report a field of the event's header (`time`, `ktime`, `cpu`) used
    /// in `what` (`where`, `count by`, an aggregation): the template stamps
    /// them only on records it sends to userspace, after the filter and
    /// never for a record it aggregates. Returns whether it was one.
    pub(super) fn print_only(&mut self, f: &RField, what: &str) -> bool {
        if f.def.header.is_none() {
            return false;
        }
        let name = f.def.name;
        self.diagnostics.push(Diagnostic::new(
            Problem::PrintOnly {
                field: name,
                what: what.to_owned(),
                cpu: f.def.header == Some(crate::plan::Header::Cpu),
            },
            f.span.clone(),
        ));
        true
    }

    /// Report a field that is not an unsigned number where one is needed.
    pub(super) fn numeric_field(&mut self, f: &RField, what: &str) -> bool {
        if matches!(f.def.ty, FieldType::Uint(_) | FieldType::Port) {
            return true;
        }
        self.diagnostics.push(Diagnostic::new(
            Problem::NotNumeric {
                field: f.def.name,
                ty: f.def.ty,
                what: what.to_owned(),
            },
            f.span.clone(),
        ));
        false
    }

    fn agg_func(
        &mut self,
        func: &crate::ast::Ident,
        field: &RField,
        args: &[Literal],
    ) -> Option<AggFunc> {
        Some(match func.name.as_str() {
            "sum" => AggFunc::Sum,
            "avg" => AggFunc::Avg,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "stats" => AggFunc::Stats,
            "hist" => AggFunc::Hist,
            _ => {
                let unit = field_unit(field.def.ty);
                let mut v = Vec::new();
                for a in args {
                    v.push(self.in_unit(unit, a, field.def.name)?);
                }
                let [lo, hi, step] = v[..] else {
                    return None;
                };
                let sp = args[0].span.start..args[2].span.end;
                let bad = |h: Lhist| Diagnostic::new(Problem::BadHistogram(h), sp.clone());
                let signed = matches!(field.def.ty, FieldType::Int(_));
                if (!signed && (lo < 0 || hi < 0)) || step < 0 {
                    self.diagnostics.push(bad(Lhist::Negative {
                        field: field.def.name,
                        step: step < 0,
                    }));
                    return None;
                }
                let fits = |v: i128| i64::try_from(v).is_ok();
                if !fits(lo) || !fits(hi) || !fits(step) {
                    self.diagnostics.push(bad(Lhist::Beyond64));
                    return None;
                }
                let (lo, hi, step) = (lo as i64, hi as i64, step as u64);
                if lo >= hi || step == 0 {
                    self.diagnostics.push(bad(Lhist::Order { lo, hi, step }));
                    return None;
                }
                // lo < hi: the width fits in u64.
                let width = hi.wrapping_sub(lo) as u64;
                if !width.is_multiple_of(step) {
                    let fixed = i128::from(lo) + i128::from(width.div_ceil(step) * step);
                    self.diagnostics.push(bad(Lhist::NotMultiple {
                        lo,
                        hi,
                        step,
                        unit,
                        fixed,
                    }));
                    return None;
                }
                let buckets = width / step + 2;
                if buckets > MAX_LHIST_BUCKETS {
                    self.diagnostics.push(bad(Lhist::TooManyBuckets {
                        buckets,
                        max: MAX_LHIST_BUCKETS,
                    }));
                    return None;
                }
                AggFunc::Lhist {
                    min: lo,
                    max: hi,
                    step,
                }
            }
        })
    }

    fn print_column(&mut self, i: &RPrintItem) -> Column {
        let mut col = column(&i.field);
        if let Some(a) = &i.alias {
            col.name = a.name.clone();
        }
        if let Some(sc) = &i.scale {
            if !matches!(sc.op, ArithOp::Div | ArithOp::Mul) {
                self.diagnostics.push(Diagnostic::new(
                    Problem::PrintArithmetic { op: sc.op.symbol() },
                    i.span.clone(),
                ));
            } else if self.numeric_field(
                &i.field,
                &format!("{} {}", i.field.def.name, sc.op.symbol()),
            ) {
                if let Some(k) = self.scale_factor(&i.field, sc) {
                    col.scale = Some(Scale { op: sc.op, by: k });
                    col.ty = FieldType::Uint(Unit::None);
                }
            }
        }
        col
    }

    /// The constant of `FIELD / K` or `FIELD * K`, in the field's unit.
    pub(super) fn scale_factor(&mut self, field: &RField, sc: &RScale) -> Option<u64> {
        let k = self.in_unit(field_unit(field.def.ty), &sc.by, field.def.name)?;
        if k <= 0 || k > u64::MAX as i128 {
            self.diagnostics.push(Diagnostic::new(
                Problem::NotPositive {
                    value: Shown::of(&sc.by),
                    field: field.def.name,
                },
                sc.by.span.clone(),
            ));
            return None;
        }
        Some(k as u64)
    }

    /// `sum err`, `hist err`: an error code is not a quantity.
    fn errno_aggregated(&mut self, field: &RField, func: &str) {
        if field.def.ty != FieldType::Int(Unit::Errno) {
            return;
        }
        let name = field.def.name;
        self.diagnostics.push(Diagnostic::new(
            Problem::ErrnoAggregated {
                field: name,
                func: func.to_owned(),
            },
            field.span.clone(),
        ));
    }
}
