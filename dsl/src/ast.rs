//! The spanned syntax tree `parse` produces. Names are not resolved yet: a
//! field is just an identifier, a parameter just `$name`.
//!
//! Every node carries the byte range it came from so that any later pass can
//! point at it in a diagnostic.
use serde::Serialize;
use std::net::IpAddr;
use std::ops::Range;

pub use crate::plan::CmpOp;

/// Byte offsets into the source.
pub type Span = Range<usize>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Program {
    pub clauses: Vec<Clause>,
}

/// `on PROBE [where EXPR] ACTION`
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Clause {
    pub probe: Ident,
    pub filter: Option<Where>,
    pub action: Action,
    pub span: Span,
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
    Print { fields: Vec<Ident>, span: Span },
    Count { by: Vec<Ident>, span: Span },
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
}

impl Operand {
    pub fn span(&self) -> Span {
        match self {
            Operand::Field(i) | Operand::Param(i) => i.span.clone(),
            Operand::Literal(l) => l.span.clone(),
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
        /// A unit written after the number (`64KiB`): not supported yet,
        /// kept so `check` can say so and give the plain number.
        suffix: Option<String>,
    },
    Addr(IpAddr),
    Str(String),
    Bool(bool),
    /// A TCP state by its kernel number (`TCP_ESTABLISHED` = 1, ...).
    State(u8),
    /// An address family (`AF_INET` = 2, `AF_INET6` = 10).
    Family(u8),
}

impl Value {
    /// What kind of value this is, in words, for type errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Int { .. } => "an integer",
            Value::Addr(_) => "an address",
            Value::Str(_) => "a string",
            Value::Bool(_) => "a boolean",
            Value::State(_) => "a TCP state",
            Value::Family(_) => "an address family",
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int { value, suffix } => {
                write!(f, "{value}{}", suffix.as_deref().unwrap_or(""))
            }
            Value::Addr(a) => write!(f, "{a}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::State(s) => f.write_str(crate::catalog::state_name(*s).unwrap_or("?")),
            Value::Family(x) => f.write_str(crate::catalog::family_name(*x).unwrap_or("?")),
        }
    }
}
