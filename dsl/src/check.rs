//! Pass 3: types, units and limits. Every comparison is checked against its
//! field's type and turned into a [`Test`] on record slots with the value
//! already encoded the way the templates store it.
use crate::ast::{ArithOp, CmpOp, Literal, ModifierKind, Span, Value};
use crate::catalog::{self, FieldDef, ProbeDef};
use crate::diagnostic::{suggest, Code, Diagnostic};
use crate::plan::{Action, AggFunc, Column, FieldType, Output, Scale, Source, Unit};
use crate::resolve::{RAction, RExpr, RField, RPrintItem, RScale, RSetItem, Resolved};
pub mod duration;

/// Most clauses in one program (each loads and attaches its own template,
/// about 10 ms of verifier time each).
pub const MAX_CLAUSES: usize = 16;
/// Most items in one `in [...]` set.
pub const MAX_SET_ITEMS: usize = 16;
/// Most buckets of one `lhist` (below MIN and at or above MAX included).
pub const MAX_LHIST_BUCKETS: u64 = 1024;
/// Shortest `every` interval, in milliseconds.
pub const MIN_EVERY_MS: u64 = 10;
use std::net::IpAddr;

/// A checked program: every clause is valid and within the ABI's limits.
#[derive(Debug, Clone)]
pub struct Checked {
    pub clauses: Vec<CClause>,
}

#[derive(Debug, Clone)]
pub struct CClause {
    pub probe: &'static ProbeDef,
    /// The `where` clause as written.
    pub where_source: Option<String>,
    /// The `where` clause in plain words (values substituted).
    pub where_words: Option<String>,
    /// Comparisons left out: they use an optional parameter not given.
    pub where_omitted: Vec<String>,
    pub filter: Option<Cond>,
    pub action: Action,
    pub output: Output,
}

/// A boolean condition over record slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Test(Test),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

/// `(vals[slot] & mask) OP value` over one or more slots. With several
/// slots (addresses, `comm`) `op` is `==` (all slots equal) or `!=` (any
/// slot differs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    pub slots: Vec<(u8, u64)>,
    pub op: CmpOp,
    pub signed: bool,
    pub mask: u64,
    /// The value is a kernel enum constant, bound by the runtime (one
    /// slot only; its value here is 0).
    pub bind: Option<crate::plan::EnumBind>,
}

impl Cond {
    /// Filter instructions this condition compiles to: one per slot test.
    pub fn insn_count(&self) -> usize {
        match self {
            Cond::Test(t) => t.slots.len(),
            Cond::Not(c) => c.insn_count(),
            Cond::And(a, b) | Cond::Or(a, b) => a.insn_count() + b.insn_count(),
        }
    }
}

/// Check a resolved program. Returns every diagnostic of `resolve` and of
/// this pass together.
pub fn check(resolved: &Resolved) -> Result<Checked, Vec<Diagnostic>> {
    let mut c = Checker {
        diagnostics: resolved.diagnostics.clone(),
    };
    let mut clauses = Vec::new();
    for rc in &resolved.clauses {
        let filter = rc.filter.as_ref().and_then(|w| {
            let cond = c.expr(&w.expr)?;
            let n = cond.insn_count();
            if n > tcpq_abi::MAX_INSNS {
                // Point at `where`: the whole condition can be very long.
                let at = w.span.start;
                c.diagnostics
                    .push(filter_too_long(n, at..at + "where".len()));
                return None;
            }
            Some((cond, words(&w.expr, None)))
        });
        let action = c.action(&rc.action);
        let output = c.modifiers(&rc.modifiers, &rc.action);
        let (filter, where_words) = match filter {
            Some((f, w)) => (Some(f), Some(w)),
            None => (None, None),
        };
        clauses.push(CClause {
            probe: rc.probe,
            where_source: rc.filter.as_ref().map(|w| w.source.clone()),
            where_words,
            where_omitted: rc
                .filter
                .as_ref()
                .map(|w| w.omitted.clone())
                .unwrap_or_default(),
            filter,
            action,
            output,
        });
    }
    // Fail closed: a program is accepted only if every `where` that was
    // not left out (an optional parameter not given) compiled. A condition
    // dropped without a diagnostic would run as "every event".
    if c.diagnostics.is_empty() {
        for (rc, cc) in resolved.clauses.iter().zip(&clauses) {
            if let Some(w) = &rc.filter {
                if !matches!(w.expr, RExpr::Omitted) && cc.filter.is_none() {
                    c.diagnostics.push(dropped_filter(w.span.clone()));
                }
            }
        }
    }
    if resolved.clauses.len() > MAX_CLAUSES {
        let extra = &resolved.clauses[MAX_CLAUSES];
        c.diagnostics.push(
            Diagnostic::error(
                Code::TooManyClauses,
                format!(
                    "this program has {} clauses; at most {MAX_CLAUSES} fit",
                    resolved.clauses.len()
                ),
                extra.span.start..extra.span.start + 2,
                format!("clause {} starts here", MAX_CLAUSES + 1),
            )
            .with_help("each clause loads its own template; split the program into several runs"),
        );
    }
    if c.diagnostics.is_empty() {
        Ok(Checked { clauses })
    } else {
        Err(c.diagnostics)
    }
}

/// The internal error for a `where` clause that compiled to nothing.
fn dropped_filter(span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::Internal,
        "internal error: this `where` clause was not compiled, so nothing will run",
        span,
        "this condition was lost",
    )
    .with_help("this is a bug in tcpq, not in your program; please report it with the program text")
}

pub(crate) fn filter_too_long(n: usize, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::FilterTooLong,
        format!(
            "this condition needs {n} filter instructions; templates run at most {}",
            tcpq_abi::MAX_INSNS
        ),
        span,
        format!("this condition needs {n} instructions"),
    )
    .with_help("addresses and `comm` take two instructions per comparison; simplify the condition or split it across clauses")
}

fn column(f: &RField) -> Column {
    Column {
        name: f.def.name.to_string(),
        ty: f.def.ty,
        slots: f.def.slots.to_vec(),
        source: match f.def.header {
            Some(h) => Source::Header(h),
            None => Source::Slots,
        },
        scale: None,
    }
}

struct Checker {
    diagnostics: Vec<Diagnostic>,
}

/// How a value reads in an error: `8080` or `$port (8080)`.
fn shown(l: &Literal) -> String {
    match &l.from_param {
        Some(p) => format!("`${p}` ({})", l.value),
        None => format!("`{}`", l.value),
    }
}

fn type_article(ty: FieldType) -> String {
    let w = catalog::type_words(ty);
    let article = if w.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {w}")
}

impl Checker {
    fn action(&mut self, a: &RAction) -> Action {
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

    fn key_size(&mut self, keys: &[Column], extra: usize, span: &Span, what: &str) {
        let n: usize = keys.iter().map(|k| k.slots.len()).sum::<usize>() + extra;
        if n > tcpq_abi::MAX_KEY_SLOTS {
            let hist = if extra > 0 {
                " (a histogram's bucket takes one)"
            } else {
                ""
            };
            self.diagnostics.push(
                Diagnostic::error(
                    Code::KeyTooLarge,
                    format!(
                        "the `{what}` key needs {n} slots{hist}; at most {} fit",
                        tcpq_abi::MAX_KEY_SLOTS
                    ),
                    span.clone(),
                    "key too large",
                )
                .with_help("addresses and `comm` take two slots each; aggregate by fewer fields"),
            );
        }
    }

    /// Report a field of the event's header (`time`, `ktime`, `cpu`) used
    /// in `what` (`where`, `count by`, an aggregation): the template stamps
    /// them only on records it sends to userspace, after the filter and
    /// never for a record it aggregates. Returns whether it was one.
    fn print_only(&mut self, f: &RField, what: &str) -> bool {
        if f.def.header.is_none() {
            return false;
        }
        let name = f.def.name;
        let help = match what {
            "where" => format!(
                "the kernel stamps `{name}` on an event after the filter ran, so no filter \
                 can test it; print it (`print {name}, ...`) and select on it afterwards, \
                 e.g. with jq"
            ),
            _ => format!(
                "the kernel stamps `{name}` only on events it sends to userspace, not on \
                 those it aggregates; print it (`print {name}, ...`){}",
                if f.def.header == Some(crate::plan::Header::Cpu) {
                    ""
                } else {
                    ", or aggregate per interval with `every DUR`"
                }
            ),
        };
        self.diagnostics.push(
            Diagnostic::error(
                Code::PrintOnly,
                format!("`{name}` can only be printed, not used in `{what}`"),
                f.span.clone(),
                "print only",
            )
            .with_help(help),
        );
        true
    }

    /// Report a field that is not an unsigned number where one is needed.
    fn numeric_field(&mut self, f: &RField, what: &str) -> bool {
        let (msg, help) = match f.def.ty {
            FieldType::Uint(_) | FieldType::Port => return true,
            FieldType::Int(_) => (
                format!("`{}` is a signed integer", f.def.name),
                format!(
                    "`/` and `*` apply to unsigned values only; compare, print or aggregate \
                     `{}` itself",
                    f.def.name
                ),
            ),
            FieldType::Comm => (
                format!("`{}` is a string", f.def.name),
                format!(
                    "`{what}` needs a number; to count per command name write `count by {}`",
                    f.def.name
                ),
            ),
            FieldType::Time => (
                format!("`{}` is a wall-clock time, not a number", f.def.name),
                "print `time` as it is, or `ktime` (nanoseconds, a number: `ktime / 1ms`)"
                    .to_string(),
            ),
            ty => (
                format!("`{}` is {}, not a number", f.def.name, type_article(ty)),
                format!(
                    "`{what}` needs a number; to count per value write `count by {}`",
                    f.def.name
                ),
            ),
        };
        let label = if matches!(f.def.ty, FieldType::Int(_)) {
            "signed"
        } else {
            "not a number"
        };
        self.diagnostics
            .push(Diagnostic::error(Code::NotNumeric, msg, f.span.clone(), label).with_help(help));
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
                let bad = |msg: String, help: &str| {
                    Diagnostic::error(Code::BadHistogram, msg, sp.clone(), "bad bounds")
                        .with_help(help.to_string())
                };
                let signed = matches!(field.def.ty, FieldType::Int(_));
                if (!signed && (lo < 0 || hi < 0)) || step < 0 {
                    self.diagnostics.push(bad(
                        "`lhist` bounds are negative".into(),
                        &if step < 0 {
                            "write `lhist FIELD, MIN, MAX, STEP` with MIN < MAX and STEP > 0"
                                .to_string()
                        } else {
                            format!(
                                "`{}` is never negative: write `lhist FIELD, MIN, MAX, STEP` \
                                 with 0 <= MIN < MAX and STEP > 0",
                                field.def.name
                            )
                        },
                    ));
                    return None;
                }
                let fits = |v: i128| i64::try_from(v).is_ok();
                if !fits(lo) || !fits(hi) || !fits(step) {
                    self.diagnostics.push(bad(
                        "`lhist` bounds beyond 64-bit signed integers".into(),
                        "write bounds between -2^63 and 2^63-1",
                    ));
                    return None;
                }
                let (lo, hi, step) = (lo as i64, hi as i64, step as u64);
                if lo >= hi || step == 0 {
                    self.diagnostics.push(bad(
                        format!("`lhist` needs MIN < MAX and STEP > 0 (got {lo}, {hi}, {step})"),
                        "write `lhist FIELD, MIN, MAX, STEP`, e.g. `lhist srtt, 0, 100ms, 10ms`",
                    ));
                    return None;
                }
                // lo < hi: the width fits in u64.
                let width = hi.wrapping_sub(lo) as u64;
                if !width.is_multiple_of(step) {
                    let fixed = i128::from(lo) + i128::from(width.div_ceil(step) * step);
                    let in_unit = if unit == Unit::None {
                        String::new()
                    } else {
                        format!(" ({})", unit_words(unit))
                    };
                    self.diagnostics.push(bad(
                        format!("`lhist` range {lo}..{hi}{in_unit} is not a multiple of the step {step}"),
                        &format!("make MAX - MIN a multiple of STEP, e.g. MAX = {fixed}"),
                    ));
                    return None;
                }
                let buckets = width / step + 2;
                if buckets > MAX_LHIST_BUCKETS {
                    self.diagnostics.push(bad(
                        format!(
                            "`lhist` would make {buckets} buckets; at most {MAX_LHIST_BUCKETS}"
                        ),
                        "use a larger STEP or a narrower range (or `hist` for powers of two)",
                    ));
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
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::UnsupportedArithmetic,
                        format!("`{}` is not supported in `print`", sc.op.symbol()),
                        i.span.clone(),
                        "only `/` and `*` here",
                    )
                    .with_help("print `FIELD / NUMBER` or `FIELD * NUMBER`, e.g. `win_bytes / 1024 as win_kib`"),
                );
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
    fn scale_factor(&mut self, field: &RField, sc: &RScale) -> Option<u64> {
        let k = self.in_unit(field_unit(field.def.ty), &sc.by, field.def.name)?;
        if k <= 0 || k > u64::MAX as i128 {
            self.diagnostics.push(
                Diagnostic::error(
                    Code::OutOfRange,
                    format!("{} is not a positive number", shown(&sc.by)),
                    sc.by.span.clone(),
                    "must be at least 1",
                )
                .with_help(format!(
                    "divide or multiply `{}` by a number from 1 up",
                    field.def.name
                )),
            );
            return None;
        }
        Some(k as u64)
    }

    fn modifiers(&mut self, mods: &[crate::ast::Modifier], action: &RAction) -> Output {
        let mut out = Output::default();
        let is_print = matches!(action, RAction::Print { .. });
        for m in mods {
            let word = m.kind.word();
            let misplaced = match m.kind {
                ModifierKind::Top | ModifierKind::Every if is_print => Some(format!(
                    "`{word}` applies to aggregations (`count`, `sum`, `hist`, ...), not to `print`"
                )),
                ModifierKind::Limit if !is_print => Some(
                    "`limit` applies to `print`; an aggregation prints once at the end (or `every DUR`)"
                        .to_string(),
                ),
                _ => None,
            };
            let already = match m.kind {
                ModifierKind::Top => out.top.is_some(),
                ModifierKind::Every => out.every_ms.is_some(),
                ModifierKind::Limit => out.limit.is_some(),
            };
            if misplaced.is_some() || already {
                let help = misplaced.unwrap_or_else(|| format!("keep one `{word}`"));
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::BadModifier,
                        if already {
                            format!("`{word}` is given twice")
                        } else {
                            format!("`{word}` does not apply here")
                        },
                        m.span.clone(),
                        format!("`{word}` here"),
                    )
                    .with_help(help),
                );
                continue;
            }
            match m.kind {
                ModifierKind::Every => {
                    let unitless = matches!(
                        &m.value.value,
                        Value::Int { suffix: None, .. } | Value::Frac { suffix: None, .. }
                    );
                    let ms = if unitless {
                        self.diagnostics.push(
                            Diagnostic::error(
                                Code::MissingUnit,
                                format!("`every {}` has no unit", m.value.value),
                                m.value.span.clone(),
                                "a duration needs a unit",
                            )
                            .with_help(format!(
                                "write e.g. `every {0}s` or `every {0}ms`",
                                m.value.value
                            )),
                        );
                        None
                    } else {
                        self.in_unit(Unit::Millis, &m.value, "every")
                    };
                    if let Some(ms) = ms {
                        if ms < MIN_EVERY_MS as i128 || ms > u64::MAX as i128 {
                            self.diagnostics.push(
                                Diagnostic::error(
                                    Code::OutOfRange,
                                    format!("`every {}` is too short", m.value.value),
                                    m.value.span.clone(),
                                    format!("at least {MIN_EVERY_MS}ms"),
                                )
                                .with_help(format!("print at most every {MIN_EVERY_MS}ms")),
                            );
                        } else {
                            out.every_ms = Some(ms as u64);
                        }
                    }
                }
                ModifierKind::Top | ModifierKind::Limit => {
                    let n = match &m.value.value {
                        Value::Int {
                            value,
                            suffix: None,
                        } if *value >= 1 && *value <= u64::MAX as i128 => Some(*value as u64),
                        _ => {
                            self.diagnostics.push(
                                Diagnostic::error(
                                    Code::InvalidLiteral,
                                    format!(
                                        "`{word} {}` needs a whole number from 1 up",
                                        m.value.value
                                    ),
                                    m.value.span.clone(),
                                    "not a count",
                                )
                                .with_help(format!("write e.g. `{word} 10`")),
                            );
                            None
                        }
                    };
                    if m.kind == ModifierKind::Top {
                        out.top = n.or(out.top);
                    } else {
                        out.limit = n.or(out.limit);
                    }
                }
            }
        }
        out
    }

    /// A literal as a plain number in `unit` (`64KiB` → 65536 for bytes,
    /// `1.5s` → 1500000 for microseconds). `None` after reporting.
    fn in_unit(&mut self, unit: Unit, lit: &Literal, name: &str) -> Option<i128> {
        let (value, frac, suffix) = match &lit.value {
            Value::Int { value, suffix } => (*value, None, suffix.as_deref()),
            Value::Frac { text, suffix } => (0, Some(text.as_str()), suffix.as_deref()),
            other => {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        format!("{} is {}, not a number", shown(lit), other.kind()),
                        lit.span.clone(),
                        "expected a number",
                    )
                    .with_help(format!("`{name}` takes a number here")),
                );
                return None;
            }
        };
        let Some(suffix) = suffix else {
            if frac.is_some() {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::MissingUnit,
                        format!("{} has a fraction but no unit", shown(lit)),
                        lit.span.clone(),
                        "fraction without a unit",
                    )
                    .with_help(match unit_examples(unit) {
                        Some(ex) => format!(
                            "a fraction needs a unit that makes it whole, e.g. `{}{ex}`",
                            lit.value
                        ),
                        None => format!("`{name}` counts whole things: write a whole number"),
                    }),
                );
                return None;
            }
            return Some(value);
        };
        let Some(factor) = unit_factor(unit, suffix) else {
            let help = match unit_examples(unit) {
                Some(_) => format!(
                    "`{name}` is in {}: write {}",
                    unit_words(unit),
                    unit_list(unit)
                ),
                None => format!("`{name}` has no unit: write a plain number"),
            };
            self.diagnostics.push(
                Diagnostic::error(
                    Code::UnitSuffix,
                    format!("`{suffix}` is not a unit of `{name}`"),
                    lit.span.clone(),
                    if unit == Unit::None {
                        format!("`{name}` has no unit")
                    } else {
                        format!("`{name}` is in {}", unit_words(unit))
                    },
                )
                .with_help(help),
            );
            return None;
        };
        let v = match frac {
            None => value.checked_mul(factor),
            Some(text) => decimal_times(text, factor),
        };
        match v {
            Some(v) => Some(v),
            None => {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::InvalidLiteral,
                        format!(
                            "{} is not a whole number of {}",
                            shown(lit),
                            unit_words(unit)
                        ),
                        lit.span.clone(),
                        "not whole in this unit",
                    )
                    .with_help(format!(
                        "`{name}` is in {}; write a value that is a whole number of them",
                        unit_words(unit)
                    )),
                );
                None
            }
        }
    }

    fn set(&mut self, field: &RField, items: &[RSetItem], span: &Span) -> Option<Cond> {
        if items.len() > MAX_SET_ITEMS {
            self.diagnostics.push(
                Diagnostic::error(
                    Code::TooManyItems,
                    format!(
                        "this set has {} items; at most {MAX_SET_ITEMS} fit",
                        items.len()
                    ),
                    span.clone(),
                    "too many items",
                )
                .with_help(
                    "use ranges (`8000..8100`, `10.0.0.0/8`) or split the question across clauses",
                ),
            );
            return None;
        }
        let mut acc: Option<Cond> = None;
        let mut ok = true;
        for item in items {
            let c = match item {
                RSetItem::One(lit) => self.encode(field, CmpOp::Eq, lit),
                RSetItem::Range(lo, hi, sp) => self.range(field, lo, hi, sp),
                RSetItem::Cidr(addr, len, sp) => self.cidr(field, *addr, *len, sp),
            };
            match c {
                Some(c) => {
                    acc = Some(match acc {
                        None => c,
                        Some(a) => Cond::Or(Box::new(a), Box::new(c)),
                    })
                }
                None => ok = false,
            }
        }
        if ok {
            acc
        } else {
            None
        }
    }

    fn range(&mut self, field: &RField, lo: &Literal, hi: &Literal, sp: &Span) -> Option<Cond> {
        if !matches!(
            field.def.ty,
            FieldType::Uint(_) | FieldType::Int(_) | FieldType::Port
        ) {
            let help = if field.def.ty == FieldType::Addr {
                format!(
                    "address ranges are prefixes: `{} in 10.0.0.0/8`",
                    field.def.name
                )
            } else {
                format!("list the values: `{} in [A, B]`", field.def.name)
            };
            self.diagnostics.push(
                Diagnostic::error(
                    Code::TypeMismatch,
                    format!(
                        "`{}` is {}: a numeric range does not apply",
                        field.def.name,
                        type_article(field.def.ty)
                    ),
                    sp.clone(),
                    "a range of numbers",
                )
                .with_help(help),
            );
            return None;
        }
        let unit = field_unit(field.def.ty);
        let (x, y) = (self.quiet_value(unit, lo), self.quiet_value(unit, hi));
        if let (Some(x), Some(y)) = (x, y) {
            if x > y {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::OutOfRange,
                        format!("the range {}..{} is empty", lo.value, hi.value),
                        sp.clone(),
                        "empty range",
                    )
                    .with_help(format!(
                        "write the smaller bound first: `{}..{}`",
                        hi.value, lo.value
                    )),
                );
                return None;
            }
        }
        // A bound at the field's own limit filters nothing (`dport in
        // 0..1023`): leave it out rather than report it as always true.
        let (min, max) = match field.def.ty {
            FieldType::Port => (0, 65535),
            FieldType::Int(_) => {
                let bits = field.def.bits.clamp(1, 64) as u32;
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            }
            _ => (0, max_unsigned(field.def.bits)),
        };
        let a = match x {
            Some(x) if x <= min => None,
            _ => Some(self.encode(field, CmpOp::Ge, lo)?),
        };
        let b = match y {
            Some(y) if y >= max => None,
            _ => Some(self.encode(field, CmpOp::Le, hi)?),
        };
        Some(match (a, b) {
            (Some(a), Some(b)) => Cond::And(Box::new(a), Box::new(b)),
            (Some(c), None) | (None, Some(c)) => c,
            (None, None) => always(field.def.slots[0]),
        })
    }

    /// A literal's value in `unit` without reporting (for cross-checks of
    /// values already checked elsewhere).
    fn quiet_value(&mut self, unit: Unit, lit: &Literal) -> Option<i128> {
        let n = self.diagnostics.len();
        let v = self.in_unit(unit, lit, "");
        self.diagnostics.truncate(n);
        v
    }

    fn cidr(&mut self, field: &RField, addr: std::net::IpAddr, len: u8, sp: &Span) -> Option<Cond> {
        if field.def.ty != FieldType::Addr {
            self.diagnostics.push(
                Diagnostic::error(
                    Code::TypeMismatch,
                    format!(
                        "`{}` is {}, but `{addr}/{len}` is an address range",
                        field.def.name,
                        type_article(field.def.ty)
                    ),
                    sp.clone(),
                    format!("expected {}", type_article(field.def.ty)),
                )
                .with_help("address ranges apply to `saddr` and `daddr`"),
            );
            return None;
        }
        let (bytes, bits) = match addr {
            std::net::IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), 96 + u32::from(len)),
            std::net::IpAddr::V6(v6) => (v6.octets(), u32::from(len)),
        };
        let words = tcpq_abi::addr_words(&bytes);
        let mask_of = |n: u32| -> u64 {
            match n {
                0 => 0,
                n if n >= 64 => u64::MAX,
                n => !(u64::MAX >> n),
            }
        };
        let (m_hi, m_lo) = (mask_of(bits.min(64)), mask_of(bits.saturating_sub(64)));
        let test = |slot: u8, value: u64, mask: u64| {
            Cond::Test(Test {
                slots: vec![(slot, value & mask)],
                op: CmpOp::Eq,
                signed: false,
                mask,
                bind: None,
            })
        };
        let hi = test(field.def.slots[0], words[0], m_hi);
        if m_lo == 0 {
            return Some(hi);
        }
        let lo = test(field.def.slots[1], words[1], m_lo);
        Some(Cond::And(Box::new(hi), Box::new(lo)))
    }

    fn expr(&mut self, e: &RExpr) -> Option<Cond> {
        match e {
            // Left out entirely (an optional parameter not given): no filter.
            RExpr::Invalid | RExpr::Omitted => None,
            RExpr::Not(x) => Some(Cond::Not(Box::new(self.expr(x)?))),
            // Check both sides before giving up, to report both.
            RExpr::And(a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                Some(Cond::And(Box::new(a?), Box::new(b?)))
            }
            RExpr::Or(a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                Some(Cond::Or(Box::new(a?), Box::new(b?)))
            }
            RExpr::Bare(f) | RExpr::In { field: f, .. } | RExpr::Compare { field: f, .. }
                if f.def.header.is_some() =>
            {
                self.print_only(f, "where");
                None
            }
            RExpr::Bare(f) => {
                if f.def.ty == FieldType::Bool {
                    Some(Cond::Test(single(f.def, CmpOp::Ne, 0, false)))
                } else {
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::NotAPredicate,
                            format!("`{}` is not a boolean", f.def.name),
                            f.span.clone(),
                            "not a condition on its own",
                        )
                        .with_help(format!(
                            "compare it with a value, e.g. `{} != 0`",
                            f.def.name
                        )),
                    );
                    None
                }
            }
            RExpr::In { field, items, span } => self.set(field, items, span),
            RExpr::Compare {
                field,
                scale: None,
                op,
                op_span,
                value,
                ..
            } => self.compare(field, *op, op_span, value),
            RExpr::Compare {
                field,
                scale: Some(sc),
                op,
                value,
                ..
            } => self.scaled_compare(field, sc, *op, value),
        }
    }

    fn mismatch(&mut self, field: &RField, value: &Literal, help: Option<String>) {
        self.diagnostics.push(
            Diagnostic::error(
                Code::TypeMismatch,
                format!(
                    "`{}` is {}, but {} is {}",
                    field.def.name,
                    type_article(field.def.ty),
                    shown(value),
                    value.value.kind()
                ),
                value.span.clone(),
                format!("expected {}", type_article(field.def.ty)),
            )
            .with_help_opt(help),
        );
    }

    fn compare(
        &mut self,
        field: &RField,
        op: CmpOp,
        op_span: &Span,
        lit: &Literal,
    ) -> Option<Cond> {
        let def = field.def;
        let equality_only = matches!(
            def.ty,
            FieldType::Addr
                | FieldType::Comm
                | FieldType::Bool
                | FieldType::TcpState
                | FieldType::Family
        );
        // A kernel constant's number is this kernel's, and reasons are not
        // ordered: only `==` and `!=`.
        let equality_only = equality_only || matches!(lit.value, Value::Enum(_));
        let op_ok = !equality_only || matches!(op, CmpOp::Eq | CmpOp::Ne);
        if !op_ok {
            let why = match def.ty {
                _ if matches!(lit.value, Value::Enum(_)) => format!(
                    "`{}` names a kernel enum constant; their numbers differ between kernels \
                     and have no order: compare with `==` or `!=`, or list several with `in [...]`",
                    lit.value
                ),
                FieldType::TcpState => {
                    "TCP state numbers do not follow a connection's life (LISTEN is 10, CLOSE 7); \
                     compare with `==` or `!=`, joined with `or`"
                        .to_string()
                }
                FieldType::Bool => format!("write `{0}` or `not {0}`", def.name),
                FieldType::Addr => {
                    "compare addresses with `==` or `!=` (address ranges are not supported yet)"
                        .to_string()
                }
                _ => format!("compare `{}` with `==` or `!=`", def.name),
            };
            self.diagnostics.push(
                Diagnostic::error(
                    Code::UnsupportedOperator,
                    format!(
                        "`{}` is {}: it cannot be ordered",
                        def.name,
                        type_article(def.ty)
                    ),
                    op_span.clone(),
                    "only `==` and `!=` here",
                )
                .with_help(why.to_string()),
            );
        }
        let cond = self.encode(field, op, lit);
        if op_ok {
            cond
        } else {
            None
        }
    }

    /// `FIELD / K OP c` or `FIELD * K OP c`, rewritten into comparisons of
    /// the field itself (exact for unsigned integer division).
    fn scaled_compare(
        &mut self,
        field: &RField,
        sc: &RScale,
        op: CmpOp,
        lit: &Literal,
    ) -> Option<Cond> {
        if !self.numeric_field(field, &format!("{} {}", field.def.name, sc.op.symbol())) {
            return None;
        }
        let k = i128::from(self.scale_factor(field, sc)?);
        let c = self.in_unit(field_unit(field.def.ty), lit, field.def.name)?;
        if c < 0 {
            self.out_of_range(field, lit, 0, max_unsigned(field.def.bits));
            return None;
        }
        // Each bound: (op, value) on the field; all must hold.
        let bounds: Vec<(CmpOp, i128)> = match (sc.op, op) {
            (ArithOp::Div, CmpOp::Eq | CmpOp::Ne) => {
                vec![(CmpOp::Ge, c * k), (CmpOp::Le, c * k + k - 1)]
            }
            (ArithOp::Div, CmpOp::Lt) => vec![(CmpOp::Lt, c * k)],
            (ArithOp::Div, CmpOp::Le) => vec![(CmpOp::Le, c * k + k - 1)],
            (ArithOp::Div, CmpOp::Gt) => vec![(CmpOp::Gt, c * k + k - 1)],
            (ArithOp::Div, CmpOp::Ge) => vec![(CmpOp::Ge, c * k)],
            (_, CmpOp::Eq | CmpOp::Ne) if c % k != 0 => {
                let always = op == CmpOp::Ne;
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::OutOfRange,
                        format!(
                            "this comparison is {} true: `{} * {k}` is a multiple of {k}, {c} is not",
                            if always { "always" } else { "never" },
                            field.def.name
                        ),
                        lit.span.clone(),
                        if always { "always true" } else { "never true" },
                    )
                    .with_help("compare with a multiple of the factor, or use `<`/`>`"),
                );
                return None;
            }
            (_, CmpOp::Eq | CmpOp::Ne) => vec![(op, c / k)],
            (_, CmpOp::Lt) => vec![(CmpOp::Lt, (c + k - 1) / k)],
            (_, CmpOp::Le) => vec![(CmpOp::Le, c / k)],
            (_, CmpOp::Gt) => vec![(CmpOp::Gt, c / k)],
            (_, CmpOp::Ge) => vec![(CmpOp::Ge, (c + k - 1) / k)],
        };
        let mut acc: Option<Cond> = None;
        for (bop, v) in bounds {
            let l = Literal {
                value: Value::Int {
                    value: v,
                    suffix: None,
                },
                span: lit.span.clone(),
                from_param: lit.from_param.clone(),
            };
            let t = self.encode(field, bop, &l)?;
            acc = Some(match acc {
                None => t,
                Some(a) => Cond::And(Box::new(a), Box::new(t)),
            });
        }
        let cond = acc?;
        Some(if sc.op == ArithOp::Div && op == CmpOp::Ne {
            Cond::Not(Box::new(cond))
        } else {
            cond
        })
    }

    /// Encode the value for the field's slots; `None` after reporting.
    fn encode(&mut self, field: &RField, op: CmpOp, lit: &Literal) -> Option<Cond> {
        let def = field.def;
        // Units first: `64KiB`, `10ms`, `1.5s` become plain numbers in the
        // field's unit.
        let has_unit = matches!(
            &lit.value,
            Value::Int {
                suffix: Some(_),
                ..
            } | Value::Frac { .. }
        );
        if has_unit {
            let numeric = matches!(
                def.ty,
                FieldType::Uint(_) | FieldType::Int(_) | FieldType::Port
            );
            if !numeric {
                self.mismatch(field, lit, None);
                return None;
            }
            let v = self.in_unit(field_unit(def.ty), lit, def.name)?;
            let plain = Literal {
                value: Value::Int {
                    value: v,
                    suffix: None,
                },
                span: lit.span.clone(),
                from_param: lit.from_param.clone(),
            };
            return self.encode(field, op, &plain);
        }
        match (def.ty, &lit.value) {
            (FieldType::Uint(_) | FieldType::Port, Value::Int { value, .. }) => {
                let max = if def.ty == FieldType::Port {
                    65535
                } else {
                    max_unsigned(def.bits)
                };
                if *value < 0 || *value > max {
                    self.out_of_range(field, lit, 0, max);
                    return None;
                }
                if self.constant(field, op, lit, *value, 0, max) {
                    return None;
                }
                Some(Cond::Test(single(def, op, *value as u64, false)))
            }
            (FieldType::Int(Unit::Errno), Value::Errno(v)) => {
                self.errno(field, op, lit, i128::from(*v), true)
            }
            (FieldType::Int(Unit::Errno), Value::Int { value, .. }) => {
                self.errno(field, op, lit, *value, false)
            }
            (FieldType::Int(Unit::Errno), Value::Str(s)) => self.errno_string(field, op, lit, s),
            (FieldType::Int(_), Value::Int { value, .. }) => {
                let bits = def.bits.clamp(1, 64) as u32;
                let (lo, hi) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
                if *value < lo || *value > hi {
                    self.out_of_range(field, lit, lo, hi);
                    return None;
                }
                if self.constant(field, op, lit, *value, lo, hi) {
                    return None;
                }
                // Templates sign-extend signed values into the slot.
                Some(Cond::Test(single(def, op, *value as i64 as u64, true)))
            }
            (FieldType::Bool, Value::Bool(b)) => Some(bool_test(def, op, *b)),
            (
                FieldType::Bool,
                Value::Int {
                    value: v @ (0 | 1), ..
                },
            ) => Some(bool_test(def, op, *v == 1)),
            (FieldType::Addr, Value::Addr(a)) => {
                let bytes = match a {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                    IpAddr::V6(v6) => v6.octets(),
                };
                let words = tcpq_abi::addr_words(&bytes);
                Some(multi(def, op, words))
            }
            // `"*nginx"`, `"ngin*x"`, `"ng?nx"`: a shell pattern, which
            // tcpq does not match (only a trailing `*` means "starts
            // with"). Matched as written it would silently find nothing.
            (FieldType::Comm, Value::Str(s))
                if s.trim_end_matches('*').contains(['*', '?', '[']) || s.ends_with("**") =>
            {
                let at = s.find(['*', '?', '[']).unwrap_or(0);
                let stem: String = s
                    .chars()
                    .filter(|c| !matches!(c, '*' | '?' | '[' | ']'))
                    .collect();
                let help = if at == 0 || stem.is_empty() {
                    format!(
                        "tcpq matches a command name exactly, or by its start with one trailing \
                         `*` (`{} == \"{stem}*\"`); there is no suffix or substring match",
                        def.name
                    )
                } else {
                    format!(
                        "only a trailing `*` is a pattern (\"starts with\"): write `{} == \"{}*\"`",
                        def.name,
                        &s[..at]
                    )
                };
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::InvalidLiteral,
                        format!(
                            "{} looks like a shell pattern, which tcpq would match literally",
                            shown(lit)
                        ),
                        lit.span.clone(),
                        "`*`, `?` or `[` inside a name",
                    )
                    .with_help(help),
                );
                None
            }
            (FieldType::Comm, Value::Str(s)) if s.ends_with('*') => {
                // `"nginx*"`: the command name starts with `nginx`.
                let prefix = &s[..s.len() - 1];
                if prefix.len() > 15 || prefix.contains('\0') {
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::StringTooLong,
                            format!("{} is longer than a command name", shown(lit)),
                            lit.span.clone(),
                            "too long",
                        )
                        .with_help("a command name is at most 15 bytes; shorten the prefix"),
                    );
                    return None;
                }
                let mut buf = [0u8; 16];
                buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
                let words = tcpq_abi::comm_words(&buf);
                let n = prefix.len();
                // Little-endian words: the first bytes are the low bits.
                let mask = |bytes: usize| -> u64 {
                    match bytes {
                        0 => 0,
                        b if b >= 8 => u64::MAX,
                        b => (1u64 << (8 * b)) - 1,
                    }
                };
                let test = |slot: u8, value: u64, mask: u64| {
                    Cond::Test(Test {
                        slots: vec![(slot, value & mask)],
                        op: CmpOp::Eq,
                        signed: false,
                        mask,
                        bind: None,
                    })
                };
                let mut c = test(def.slots[0], words[0], mask(n.min(8)));
                if n > 8 {
                    let second = test(def.slots[1], words[1], mask(n - 8));
                    c = Cond::And(Box::new(c), Box::new(second));
                }
                Some(if op == CmpOp::Ne {
                    Cond::Not(Box::new(c))
                } else {
                    c
                })
            }
            (FieldType::Comm, Value::Str(s)) => {
                if s.len() > 15 || s.contains('\0') {
                    let msg = if s.contains('\0') {
                        format!("{} contains a NUL byte", shown(lit))
                    } else {
                        format!(
                            "{} is {} bytes; a command name is at most 15",
                            shown(lit),
                            s.len()
                        )
                    };
                    self.diagnostics.push(
                        Diagnostic::error(Code::StringTooLong, msg, lit.span.clone(), "too long")
                            .with_help(
                                "the kernel keeps the first 15 bytes of a command name; \
                                 compare with those",
                            ),
                    );
                    return None;
                }
                let mut buf = [0u8; 16];
                buf[..s.len()].copy_from_slice(s.as_bytes());
                Some(multi(def, op, tcpq_abi::comm_words(&buf)))
            }
            (FieldType::TcpState, Value::State(v)) => {
                Some(Cond::Test(single(def, op, u64::from(*v), false)))
            }
            (FieldType::TcpState, Value::Str(s)) => {
                match catalog::state_by_name(&s.to_ascii_uppercase()) {
                    Some(v) => Some(Cond::Test(single(def, op, u64::from(v), false))),
                    None => {
                        let names = catalog::TCP_STATES.iter().map(|(n, _)| *n);
                        let help = suggest(s, names).map(|n| format!("did you mean `{n}`?"));
                        self.diagnostics.push(
                            Diagnostic::error(
                                Code::UnknownConstant,
                                format!("{} is not a TCP state", shown(lit)),
                                lit.span.clone(),
                                "not a TCP state",
                            )
                            .with_help_opt(help),
                        );
                        None
                    }
                }
            }
            (FieldType::Uint(unit), Value::Enum(name)) => {
                let Some((enum_name, prefix, _)) = crate::reasons::enum_of(unit) else {
                    self.mismatch(field, lit, None);
                    return None;
                };
                // Bound by the runtime from this kernel's BTF: the value
                // here is a placeholder that never reaches a template.
                let mut t = single(def, op, 0, false);
                t.bind = Some(crate::plan::EnumBind {
                    enum_name: enum_name.to_owned(),
                    constant: format!("{prefix}{name}"),
                    span: (lit.span.start, lit.span.end),
                });
                Some(Cond::Test(t))
            }
            (FieldType::Family, Value::Family(v)) => {
                Some(Cond::Test(single(def, op, u64::from(*v), false)))
            }
            (ty, _) => {
                let help = match (ty, &lit.value) {
                    (FieldType::TcpState, Value::Int { value, .. }) => Some(
                        match u8::try_from(*value).ok().and_then(catalog::state_name) {
                            Some(n) => format!("state {value} is `{n}`: write `{n}`"),
                            None => "write a state name, e.g. `ESTABLISHED`".into(),
                        },
                    ),
                    (FieldType::Family, Value::Int { value, .. }) => Some(
                        match u8::try_from(*value).ok().and_then(catalog::family_name) {
                            Some(n) => format!("family {value} is `{n}`: write `{n}`"),
                            None => "write `AF_INET` or `AF_INET6`".into(),
                        },
                    ),
                    (FieldType::Comm, _) => Some(format!(
                        "command names are strings: `{} == \"nginx\"`",
                        def.name
                    )),
                    (FieldType::Addr, _) => Some(format!(
                        "write an address: `{} == 10.0.0.1` or `{} == ::1`",
                        def.name, def.name
                    )),
                    (FieldType::Bool, _) => Some("write `true` or `false`".into()),
                    (FieldType::Uint(_) | FieldType::Int(_) | FieldType::Port, Value::Str(s))
                        if crate::parse::parse_int(s).is_some() =>
                    {
                        Some(format!("remove the quotes: `{s}`"))
                    }
                    _ => None,
                };
                self.mismatch(field, lit, help);
                None
            }
        }
    }

    /// A comparison of an errno field (`err == EPERM`, `err != 0`, `err <
    /// 0`) with a name (`named`) or a number as the kernel passes it.
    fn errno(
        &mut self,
        field: &RField,
        op: CmpOp,
        lit: &Literal,
        value: i128,
        named: bool,
    ) -> Option<Cond> {
        let def = field.def;
        let name = def.name;
        let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
        if named && !equality {
            self.diagnostics.push(
                Diagnostic::error(
                    Code::UnsupportedOperator,
                    format!("{} is an error name: it cannot be ordered", shown(lit)),
                    lit.span.clone(),
                    "compared with `==` or `!=` only",
                )
                .with_help(format!(
                    "errno numbers mean nothing in order: write `{name} == EPERM or {name} == \
                     ENOBUFS`, or `{name} < 0` for any errno"
                )),
            );
            return None;
        }
        if !named && value > 0 {
            // `err == 1` is almost always EPERM's number, which the kernel
            // passes as -1; the only positive value is NET_XMIT_DROP.
            let help = match i64::try_from(-value).ok().and_then(crate::errno::name) {
                Some(n) if n != crate::errno::NET_XMIT_DROP.0 => format!(
                    "errnos are negative here: {value} is `{n}`, which the kernel passes as \
                     -{value}; write `{name} == {n}`"
                ),
                _ => format!(
                    "errnos are negative here (`EPERM` is -1); compare with a name: `{name} == \
                     EPERM`, or `{name} == NET_XMIT_DROP` for a qdisc's drop (1)"
                ),
            };
            self.diagnostics.push(
                Diagnostic::error(
                    Code::OutOfRange,
                    format!(
                        "{} is positive: `{name}` is 0, a negative errno or NET_XMIT_DROP",
                        shown(lit)
                    ),
                    lit.span.clone(),
                    "not an error as the kernel passes it",
                )
                .with_help(help),
            );
            return None;
        }
        let lo = -(1i128 << (def.bits.clamp(1, 64) - 1));
        if value < lo {
            self.out_of_range(field, lit, lo, 0);
            return None;
        }
        let why = i64::try_from(value)
            .ok()
            .filter(|_| equality)
            .and_then(|v| catalog::unreported(def, v));
        if let Some(why) = why {
            let errno = i64::try_from(value)
                .ok()
                .and_then(crate::errno::name)
                .unwrap_or("?");
            let always = op == CmpOp::Ne;
            let (because, help) = match why {
                catalog::Unreported::NotCounted(why) => (
                    "such an attempt is not a retransmission",
                    format!(
                        "the kernel gives up with {errno} before it counts the attempt in \
                         TcpRetransSegs ({why}); tcpq reports only what the kernel counts, \
                         tracefs (`tcp/tcp_retransmit_skb`) shows every attempt"
                    ),
                ),
                catalog::Unreported::NotAnError(why) => {
                    ("it is not an error a socket holds", why.to_string())
                }
            };
            self.diagnostics.push(
                Diagnostic::error(
                    Code::OutOfRange,
                    format!(
                        "this comparison is {} true: `{name}` is never {errno} here, because \
                         {because}",
                        if always { "always" } else { "never" }
                    ),
                    lit.span.clone(),
                    if always { "always true" } else { "never true" },
                )
                .with_help(help),
            );
            return None;
        }
        // A bound at the top of the range (`err <= 0`) tests nothing, but
        // holding that up would only get in the way of `in -20..0`.
        Some(Cond::Test(single(def, op, value as i64 as u64, true)))
    }

    /// `err == "EPERM"`: the name without quotes.
    fn errno_string(&mut self, field: &RField, op: CmpOp, lit: &Literal, s: &str) -> Option<Cond> {
        match crate::errno::by_name(&s.to_ascii_uppercase()) {
            Some(v) => self.errno(field, op, lit, i128::from(v), true),
            None => {
                let help = suggest(&s.to_ascii_uppercase(), crate::errno::names())
                    .map(|n| format!("did you mean `{n}`?"))
                    .unwrap_or_else(|| "write an errno name, e.g. `EPERM`".into());
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::UnknownConstant,
                        format!("{} is not an errno name", shown(lit)),
                        lit.span.clone(),
                        "not an errno",
                    )
                    .with_help(help),
                );
                None
            }
        }
    }

    /// `sum err`, `hist err`: an error code is not a quantity.
    fn errno_aggregated(&mut self, field: &RField, func: &str) {
        if field.def.ty != FieldType::Int(Unit::Errno) {
            return;
        }
        let name = field.def.name;
        self.diagnostics.push(
            Diagnostic::error(
                Code::NotNumeric,
                format!("`{name}` is an error code, not a quantity"),
                field.span.clone(),
                format!("`{func}` needs a quantity"),
            )
            .with_help(format!(
                "count the events per error: `count by {name}` (or `sum segs by {name}`)"
            )),
        );
    }

    /// `sport > 65535` or `win >= 0`: in range, but the answer never
    /// depends on the event. Almost always a mistake about the field's
    /// range or unit, so report it like an out-of-range value.
    fn constant(
        &mut self,
        field: &RField,
        op: CmpOp,
        lit: &Literal,
        v: i128,
        lo: i128,
        hi: i128,
    ) -> bool {
        let always = match op {
            CmpOp::Gt if v == hi => false,
            CmpOp::Lt if v == lo => false,
            CmpOp::Ge if v == lo => true,
            CmpOp::Le if v == hi => true,
            _ => return false,
        };
        let name = field.def.name;
        self.diagnostics.push(
            Diagnostic::error(
                Code::OutOfRange,
                format!(
                    "this comparison is {} true: `{name}` holds values from {lo} to {hi}",
                    if always { "always" } else { "never" }
                ),
                lit.span.clone(),
                if always { "always true" } else { "never true" },
            )
            .with_help(if always {
                "remove the comparison, it does not filter anything".to_string()
            } else {
                format!(
                    "check the field's range and unit: {}",
                    catalog::type_words(field.def.ty)
                )
            }),
        );
        true
    }

    fn out_of_range(&mut self, field: &RField, lit: &Literal, lo: i128, hi: i128) {
        let def = field.def;
        let what = match def.ty {
            FieldType::Port => "a port".to_string(),
            FieldType::Uint(_) if lo == 0 && def.bits < 64 => format!("{}-bit unsigned", def.bits),
            FieldType::Int(_) => format!("{}-bit signed", def.bits),
            _ => "unsigned".to_string(),
        };
        // `win` is the unscaled wire value; the scaled one is `win_bytes`.
        let mut help = format!("`{}` holds values from {lo} to {hi}", def.name);
        let bytes_twin = format!("{}_bytes", def.name);
        if let Some(twin) = catalog::PROBES
            .iter()
            .flat_map(|p| p.fields.iter())
            .find(|f| f.name == bytes_twin)
        {
            help.push_str(&format!(
                "; to compare the window in bytes use `{}`",
                twin.name
            ));
        }
        self.diagnostics.push(
            Diagnostic::error(
                Code::OutOfRange,
                format!("{} is out of range for `{}` ({what})", shown(lit), def.name),
                lit.span.clone(),
                match lit.value {
                    Value::Int { value, .. } if value < lo => {
                        format!("`{}` is at least {lo}", def.name)
                    }
                    _ => format!("`{}` is at most {hi}", def.name),
                },
            )
            .with_help(help),
        );
    }
}

fn unit_words(u: Unit) -> &'static str {
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

/// The unit of a numeric field.
fn field_unit(ty: FieldType) -> Unit {
    match ty {
        FieldType::Uint(u) | FieldType::Int(u) => u,
        _ => Unit::None,
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

/// `text` (decimal digits with one `.`) times `factor`, when whole.
fn decimal_times(text: &str, factor: i128) -> Option<i128> {
    let (int, frac) = text.split_once('.')?;
    let neg = int.starts_with('-');
    let int: i128 = int.trim_start_matches('-').replace('_', "").parse().ok()?;
    let digits = frac.len() as u32;
    if digits > 18 {
        return None;
    }
    let scale = 10i128.pow(digits);
    let frac: i128 = frac.parse().ok()?;
    let total = int
        .checked_mul(scale)?
        .checked_add(frac)?
        .checked_mul(factor)?;
    if total % scale != 0 {
        return None;
    }
    Some(if neg { -(total / scale) } else { total / scale })
}

/// How many plain units one `suffix` is: `KiB` for bytes is 1024, `ms` for
/// microseconds is 1000. `None` when the suffix does not fit the unit.
fn unit_factor(unit: Unit, suffix: &str) -> Option<i128> {
    let factor: i128 = match (unit, suffix) {
        (Unit::Bytes, "B") => 1,
        (Unit::Bytes, "KB" | "kB") => 1_000,
        (Unit::Bytes, "KiB") => 1 << 10,
        (Unit::Bytes, "MB") => 1_000_000,
        (Unit::Bytes, "MiB") => 1 << 20,
        (Unit::Bytes, "GB") => 1_000_000_000,
        (Unit::Bytes, "GiB") => 1 << 30,
        (Unit::Micros, "us") => 1,
        (Unit::Micros, "ms") => 1_000,
        (Unit::Micros, "s") => 1_000_000,
        (Unit::Millis, "ms") => 1,
        (Unit::Millis, "s") => 1_000,
        (Unit::Millis, "m" | "min") => 60_000,
        (Unit::Millis, "h") => 3_600_000,
        (Unit::Nanos, "ns") => 1,
        (Unit::Nanos, "us") => 1_000,
        (Unit::Nanos, "ms") => 1_000_000,
        (Unit::Nanos, "s") => 1_000_000_000,
        (Unit::Segments, "seg" | "segs" | "segments") => 1,
        _ => return None,
    };
    Some(factor)
}

fn max_unsigned(bits: u8) -> i128 {
    if bits >= 64 {
        u64::MAX as i128
    } else {
        (1i128 << bits) - 1
    }
}

/// A test that always holds (`(v & 0) == 0`).
fn always(slot: u8) -> Cond {
    Cond::Test(Test {
        slots: vec![(slot, 0)],
        op: CmpOp::Eq,
        signed: false,
        mask: 0,
        bind: None,
    })
}

fn single(def: &FieldDef, op: CmpOp, value: u64, signed: bool) -> Test {
    Test {
        slots: vec![(def.slots[0], value)],
        op,
        signed,
        mask: u64::MAX,
        bind: None,
    }
}

/// `== true` is "non-zero", not "equals 1": robust to how a template stores
/// a flag.
fn bool_test(def: &FieldDef, op: CmpOp, b: bool) -> Cond {
    let want_true = (op == CmpOp::Eq) == b;
    Cond::Test(single(
        def,
        if want_true { CmpOp::Ne } else { CmpOp::Eq },
        0,
        false,
    ))
}

fn multi(def: &FieldDef, op: CmpOp, words: [u64; 2]) -> Cond {
    Cond::Test(Test {
        slots: def.slots.iter().copied().zip(words).collect(),
        op,
        signed: false,
        mask: u64::MAX,
        bind: None,
    })
}

/// The condition in plain words, e.g. "`win` is 0 and `sport` is 8080".
/// A mix of `and` and `or` is always parenthesised: readers should not need
/// to know precedence.
fn words(e: &RExpr, parent: Option<Bin>) -> String {
    let group = |me: Bin, a: &RExpr, b: &RExpr, word: &str| {
        let s = format!("{} {word} {}", words(a, Some(me)), words(b, Some(me)));
        match parent {
            Some(p) if p != me => format!("({s})"),
            _ => s,
        }
    };
    match e {
        RExpr::Invalid | RExpr::Omitted => "?".into(),
        RExpr::Bare(f) => format!("`{}` is true", f.def.name),
        RExpr::Not(x) => match &**x {
            RExpr::Bare(f) => format!("`{}` is false", f.def.name),
            other => format!("not ({})", words(other, None)),
        },
        RExpr::In { field, items, .. } => {
            let list: Vec<String> = items
                .iter()
                .map(|i| match i {
                    RSetItem::One(l) => l.value.to_string(),
                    RSetItem::Range(a, b, _) => format!("{}..{}", a.value, b.value),
                    RSetItem::Cidr(a, n, _) => format!("{a}/{n}"),
                })
                .collect();
            format!("`{}` is in [{}]", field.def.name, list.join(", "))
        }
        RExpr::And(a, b) => group(Bin::And, a, b, "and"),
        RExpr::Or(a, b) => group(Bin::Or, a, b, "or"),
        RExpr::Compare {
            field,
            op,
            value,
            scale,
            ..
        } => {
            let name = match scale {
                Some(s) => format!("{} {} {}", field.def.name, s.op.symbol(), s.by.value),
                None => field.def.name.to_string(),
            };
            let verb = match op {
                CmpOp::Eq => "is",
                CmpOp::Ne => "is not",
                CmpOp::Lt => "is below",
                CmpOp::Le => "is at most",
                CmpOp::Gt => "is above",
                CmpOp::Ge => "is at least",
            };
            let unit = match field.def.ty {
                // An errno's name says it all.
                FieldType::Int(Unit::Errno) => String::new(),
                FieldType::Uint(u) | FieldType::Int(u) if u != Unit::None => {
                    format!(" {}", unit_words(u))
                }
                _ => String::new(),
            };
            let prefix = match &value.value {
                Value::Str(t) if field.def.ty == FieldType::Comm && t.ends_with('*') => {
                    Some(format!("{:?}", &t[..t.len() - 1]))
                }
                _ => None,
            };
            let verb = match (&prefix, op) {
                (Some(_), CmpOp::Ne) => "does not start with",
                (Some(_), _) => "starts with",
                _ => verb,
            };
            let shown_value = prefix.unwrap_or_else(|| value.value.to_string());
            let from = match &value.from_param {
                Some(p) => format!(" (from `${p}`)"),
                None => String::new(),
            };
            let unit = if scale.is_some()
                || matches!(
                    value.value,
                    Value::Int {
                        suffix: Some(_),
                        ..
                    } | Value::Frac { .. }
                ) {
                String::new()
            } else {
                unit
            };
            format!("`{name}` {verb} {shown_value}{unit}{from}")
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bin {
    And,
    Or,
}
