//! Pass 3: types, units and limits. Every comparison is checked against its
//! field's type and turned into a [`Test`] on record slots with the value
//! already encoded the way the templates store it.
use crate::ast::{CmpOp, Literal, Span, Value};
use crate::catalog::{self, FieldDef, ProbeDef};
use crate::diagnostic::{suggest, Code, Diagnostic};
use crate::plan::{Action, Column, FieldType, Unit};
use crate::resolve::{RAction, RExpr, RField, Resolved};
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
    pub filter: Option<Cond>,
    pub action: Action,
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
        let action = match &rc.action {
            RAction::Print { fields, .. } => Action::Print {
                columns: fields.iter().map(column).collect(),
            },
            RAction::Count { by, span } => {
                let keys: Vec<Column> = by.iter().map(column).collect();
                let n: usize = keys.iter().map(|k| k.slots.len()).sum();
                if n > tcpq_abi::MAX_KEY_SLOTS {
                    c.diagnostics.push(
                        Diagnostic::error(
                            Code::KeyTooLarge,
                            format!(
                                "the `count by` key needs {n} slots; at most {} fit",
                                tcpq_abi::MAX_KEY_SLOTS
                            ),
                            span.clone(),
                            "key too large",
                        )
                        .with_help(
                            "addresses and `comm` take two slots each; count by fewer fields",
                        ),
                    );
                }
                Action::Count { keys }
            }
        };
        let (filter, where_words) = match filter {
            Some((f, w)) => (Some(f), Some(w)),
            None => (None, None),
        };
        clauses.push(CClause {
            probe: rc.probe,
            where_source: rc.filter.as_ref().map(|w| w.source.clone()),
            where_words,
            filter,
            action,
        });
    }
    if c.diagnostics.is_empty() {
        Ok(Checked { clauses })
    } else {
        Err(c.diagnostics)
    }
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
    fn expr(&mut self, e: &RExpr) -> Option<Cond> {
        match e {
            RExpr::Invalid => None,
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
            RExpr::Compare {
                field,
                op,
                op_span,
                value,
                ..
            } => self.compare(field, *op, op_span, value),
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
        let op_ok = !equality_only || matches!(op, CmpOp::Eq | CmpOp::Ne);
        if !op_ok {
            let why = match def.ty {
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

    /// Encode the value for the field's slots; `None` after reporting.
    fn encode(&mut self, field: &RField, op: CmpOp, lit: &Literal) -> Option<Cond> {
        let def = field.def;
        match (def.ty, &lit.value) {
            (
                _,
                Value::Int {
                    suffix: Some(s),
                    value,
                },
            ) => {
                self.unit_suffix(field, lit, *value, s);
                None
            }
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

    fn unit_suffix(&mut self, field: &RField, lit: &Literal, value: i128, suffix: &str) {
        let unit = match field.def.ty {
            FieldType::Uint(u) | FieldType::Int(u) => u,
            _ => Unit::None,
        };
        let plain = plain_value(unit, value, suffix);
        let help = match (plain, unit) {
            (Some(n), _) => format!(
                "units on numbers are not supported yet; `{}` is in {}: write `{n}`",
                field.def.name,
                unit_words(unit)
            ),
            (None, Unit::None) => format!("`{}` has no unit: write a plain number", field.def.name),
            (None, u) => format!(
                "units on numbers are not supported yet; `{}` is in {}: write a plain number",
                field.def.name,
                unit_words(u)
            ),
        };
        self.diagnostics.push(
            Diagnostic::error(
                Code::UnitSuffix,
                format!("`{value}{suffix}`: units on numbers are not supported yet"),
                lit.span.clone(),
                "unit suffix",
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
        Unit::Segments => "segments",
        Unit::DropReason => "a drop reason number",
        Unit::RstReason => "a reset reason number",
        Unit::KernelSymbol => "a kernel address",
    }
}

/// `64KiB` for a bytes field is `65536`; `10ms` for a microseconds field is
/// `10000`. `None` when the suffix does not fit the field's unit.
fn plain_value(unit: Unit, value: i128, suffix: &str) -> Option<i128> {
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
        (Unit::Segments, "seg" | "segs" | "segments") => 1,
        _ => return None,
    };
    value.checked_mul(factor)
}

fn max_unsigned(bits: u8) -> i128 {
    if bits >= 64 {
        u64::MAX as i128
    } else {
        (1i128 << bits) - 1
    }
}

fn single(def: &FieldDef, op: CmpOp, value: u64, signed: bool) -> Test {
    Test {
        slots: vec![(def.slots[0], value)],
        op,
        signed,
        mask: u64::MAX,
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
        RExpr::Invalid => "?".into(),
        RExpr::Bare(f) => format!("`{}` is true", f.def.name),
        RExpr::Not(x) => match &**x {
            RExpr::Bare(f) => format!("`{}` is false", f.def.name),
            other => format!("not ({})", words(other, None)),
        },
        RExpr::And(a, b) => group(Bin::And, a, b, "and"),
        RExpr::Or(a, b) => group(Bin::Or, a, b, "or"),
        RExpr::Compare {
            field, op, value, ..
        } => {
            let verb = match op {
                CmpOp::Eq => "is",
                CmpOp::Ne => "is not",
                CmpOp::Lt => "is below",
                CmpOp::Le => "is at most",
                CmpOp::Gt => "is above",
                CmpOp::Ge => "is at least",
            };
            let unit = match field.def.ty {
                FieldType::Uint(u) | FieldType::Int(u) if u != Unit::None => {
                    format!(" {}", unit_words(u))
                }
                _ => String::new(),
            };
            let from = match &value.from_param {
                Some(p) => format!(" (from `${p}`)"),
                None => String::new(),
            };
            format!("`{}` {verb} {}{unit}{from}", field.def.name, value.value)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bin {
    And,
    Or,
}
