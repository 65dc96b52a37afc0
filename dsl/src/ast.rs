//! The spanned syntax tree `parse` produces. Names are not resolved yet: a
//! field is just an identifier, a parameter just `$name`.
//!
//! Every node carries the byte range it came from so that any later pass can
//! point at it in a diagnostic.
use serde::Serialize;
use std::net::IpAddr;
use std::ops::Range;

pub use crate::plan::{ArithOp, CmpOp};

/// Byte offsets into the source.
pub type Span = Range<usize>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Program {
    pub clauses: Vec<Clause>,
}

/// `on PROBE [where EXPR] ACTION [as METRIC] [top N] [every DUR] [limit N]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Clause {
    pub probe: Ident,
    pub filter: Option<Where>,
    pub action: Action,
    /// `top N`, `every DUR`, `limit N`, in the order written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<Modifier>,
    /// `as NAME` after an aggregation's `by` list: the metric `tcpq serve`
    /// exports (checked against Prometheus's rules by `check`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<Ident>,
    pub span: Span,
}

/// An output modifier after the action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Modifier {
    pub kind: ModifierKind,
    pub value: Literal,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModifierKind {
    /// `top N`: keep the N largest keys of an aggregation.
    Top,
    /// `every DUR`: print and reset the aggregation periodically.
    Every,
    /// `limit N`: stop after N printed events.
    Limit,
}

impl ModifierKind {
    pub fn word(self) -> &'static str {
        match self {
            ModifierKind::Top => "top",
            ModifierKind::Every => "every",
            ModifierKind::Limit => "limit",
        }
    }
}

/// A `where` clause: the expression and its source text (for `--explain`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Where {
    pub expr: Expr,
    pub source: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Action {
    Print {
        items: Vec<PrintItem>,
        span: Span,
    },
    Count {
        by: Vec<Ident>,
        span: Span,
    },
    /// `sum F`, `avg F`, `min F`, `max F`, `stats F`, `hist F`,
    /// `lhist F, MIN, MAX, STEP`, each `[by KEY, ...]`.
    Agg {
        func: Ident,
        field: Ident,
        /// `lhist`'s MIN, MAX, STEP.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        args: Vec<Literal>,
        by: Vec<Ident>,
        span: Span,
    },
}

/// `FIELD [/ CONST] [as NAME]` in a `print`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrintItem {
    pub field: Ident,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<(ArithOp, Literal)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Expr {
    /// `a OP b`. Which side is the field is decided by `resolve`.
    Compare {
        lhs: Operand,
        op: Op,
        rhs: Operand,
        span: Span,
    },
    /// An operand used alone as a condition (`where wscale_ok`).
    Bare(Operand),
    /// `a in [ITEM, ...]` (or `a in ITEM`).
    In {
        lhs: Operand,
        items: Vec<SetItem>,
        span: Span,
    },
    Not {
        expr: Box<Expr>,
        span: Span,
    },
    And {
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        span: Span,
    },
    Or {
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        span: Span,
    },
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Compare { span, .. }
            | Expr::In { span, .. }
            | Expr::Not { span, .. }
            | Expr::And { span, .. }
            | Expr::Or { span, .. } => span.clone(),
            Expr::Bare(o) => o.span(),
        }
    }
}

/// A comparison operator as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Op {
    pub op: CmpOp,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Operand {
    /// An identifier that is not a constant: a field name, once resolved.
    Field(Ident),
    Literal(Literal),
    /// `$name`, replaced by its typed value in `resolve`.
    Param(Ident),
    /// `a / b` (and `*`, `+`, `-`): the checker accepts `FIELD / CONST` and
    /// `FIELD * CONST`.
    Arith {
        lhs: Box<Operand>,
        op: ArithOp,
        op_span: Span,
        rhs: Box<Operand>,
        span: Span,
    },
}

impl Operand {
    pub fn span(&self) -> Span {
        match self {
            Operand::Field(i) | Operand::Param(i) => i.span.clone(),
            Operand::Literal(l) => l.span.clone(),
            Operand::Arith { span, .. } => span.clone(),
        }
    }
}

/// One member of an `in` set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum SetItem {
    /// A value or `$param`.
    One(Operand),
    /// `LO..HI`, both ends included.
    Range {
        lo: Literal,
        hi: Literal,
        span: Span,
    },
    /// `ADDR/LEN`.
    Cidr { addr: IpAddr, len: u8, span: Span },
}

impl SetItem {
    pub fn span(&self) -> Span {
        match self {
            SetItem::One(o) => o.span(),
            SetItem::Range { span, .. } | SetItem::Cidr { span, .. } => span.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Literal {
    pub value: Value,
    pub span: Span,
    /// The parameter this value came from, if any (for messages).
    pub from_param: Option<String>,
}

/// A typed constant. Parameters bind to these directly, so a parameter's
/// value is never re-read as program text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Value {
    /// Any integer that fits `u64` or `i64`; the field decides which.
    Int {
        value: i128,
        /// A unit written after the number (`64KiB`, `10ms`): the field's
        /// unit decides what it means.
        suffix: Option<String>,
    },
    /// A number with a fraction (`1.5s`): meaningful only with a unit that
    /// makes it whole (`1.5s` = 1500000 µs).
    Frac {
        /// The digits as written, without the unit (`1.5`).
        text: String,
        suffix: Option<String>,
    },
    Addr(IpAddr),
    Str(String),
    Bool(bool),
    /// A TCP state by its kernel number (`TCP_ESTABLISHED` = 1, ...).
    State(u8),
    /// An address family (`AF_INET` = 2, `AF_INET6` = 10).
    Family(u8),
    /// A constant of a kernel enum by its short name (`NETFILTER_DROP` of
    /// `enum skb_drop_reason`): its number differs between kernels, so the
    /// runtime looks it up in the running kernel's BTF.
    Enum(String),
    /// An error by name, as the kernel passes it: `EPERM` is -1,
    /// `NET_XMIT_DROP` is 1 (see [`crate::errno`]).
    Errno(i64),
}

impl Value {
    /// What kind of value this is, in words, for type errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Int { .. } => "an integer",
            Value::Frac { .. } => "a fractional number",
            Value::Addr(_) => "an address",
            Value::Str(_) => "a string",
            Value::Bool(_) => "a boolean",
            Value::State(_) => "a TCP state",
            Value::Family(_) => "an address family",
            Value::Enum(_) => "a kernel constant",
            Value::Errno(_) => "an error name",
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int { value, suffix } => {
                write!(f, "{value}{}", suffix.as_deref().unwrap_or(""))
            }
            Value::Frac { text, suffix } => {
                write!(f, "{text}{}", suffix.as_deref().unwrap_or(""))
            }
            Value::Addr(a) => write!(f, "{a}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::State(s) => f.write_str(crate::catalog::state_name(*s).unwrap_or("?")),
            Value::Family(x) => f.write_str(crate::catalog::family_name(*x).unwrap_or("?")),
            Value::Enum(n) => f.write_str(n),
            Value::Errno(v) => f.write_str(crate::errno::name(*v).unwrap_or("?")),
        }
    }
}
