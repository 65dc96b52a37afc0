//! pest's pairs into the spanned AST ([`crate::ast`]), checking each
//! literal (numbers, units, addresses, strings) as it goes and collecting
//! every invalid one. Syntax errors are `errors.rs`.
use crate::ast::*;
use crate::catalog;
use crate::diagnostic::{BadLiteral, Diagnostic, Problem};
use pest::iterators::Pair;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Rule;

/// Builds the AST from pest pairs, collecting errors about literals.
#[derive(Default)]
pub(super) struct Builder {
    pub(super) errors: Vec<Diagnostic>,
}

fn span(p: &Pair<'_, Rule>) -> Span {
    let s = p.as_span();
    s.start()..s.end()
}

/// A span without trailing whitespace or comments. pest puts what it skipped
/// before a failed repetition (`("," ~ field)*`) into the enclosing pair, so
/// the end is taken from the last token instead.
fn trimmed_span(p: &Pair<'_, Rule>) -> Span {
    p.as_span().start()..last_end(p)
}

fn last_end(p: &Pair<'_, Rule>) -> usize {
    // An atom ends with its own token (`)`, or a literal): exact already.
    // (A comparison's last term may carry skipped whitespace: recurse.)
    if p.as_rule() == Rule::atom
        && p.clone().into_inner().next().map(|q| q.as_rule()) == Some(Rule::expr)
    {
        return p.as_span().end();
    }
    // Tokens end where their text ends (a string's closing quote is not a
    // pair of its own).
    if matches!(
        p.as_rule(),
        Rule::set
            | Rule::string
            | Rule::number
            | Rule::range
            | Rule::cidr
            | Rule::param
            | Rule::ipv4
            | Rule::ipv6
            | Rule::ident
    ) {
        return p.as_span().end();
    }
    match p.clone().into_inner().last() {
        Some(q) => last_end(&q),
        None => p.as_span().end(),
    }
}

fn arith_op(s: &str) -> ArithOp {
    match s {
        "/" => ArithOp::Div,
        "*" => ArithOp::Mul,
        "+" => ArithOp::Add,
        _ => ArithOp::Sub,
    }
}

fn ident(p: Pair<'_, Rule>) -> Ident {
    // probe_name / field_name wrap an ident; take the text either way.
    Ident {
        name: p.as_str().to_string(),
        span: span(&p),
    }
}

impl Builder {
    pub(super) fn clause(&mut self, pair: Pair<'_, Rule>) -> Clause {
        let sp = trimmed_span(&pair);
        let mut probe = None;
        let mut filter = None;
        let mut action = None;
        let mut modifiers = Vec::new();
        let mut metric = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::probe_name => probe = Some(ident(p)),
                Rule::where_clause => {
                    let wsp = span(&p);
                    if let Some(e) = p.into_inner().find(|p| p.as_rule() == Rule::expr) {
                        // Stop at the last token: no trailing comment.
                        let start = e.as_span().start();
                        let end = last_end(&e);
                        let text = e.as_str().get(..end - start).unwrap_or(e.as_str());
                        filter = Some(Where {
                            source: text.to_string(),
                            span: wsp.start..end,
                            expr: self.expr(e),
                        });
                    }
                }
                Rule::action => {
                    if let Some(a) = p.into_inner().next() {
                        metric = a
                            .clone()
                            .into_inner()
                            .find(|q| q.as_rule() == Rule::metric_as)
                            .and_then(|m| m.into_inner().find(|q| q.as_rule() == Rule::metric_name))
                            .map(ident);
                        action = Some(self.action(a));
                    }
                }
                Rule::modifier => modifiers.extend(self.modifier(p)),
                _ => {}
            }
        }
        Clause {
            // The grammar guarantees both; the fallbacks only avoid a panic.
            probe: probe.unwrap_or_else(|| Ident {
                name: String::new(),
                span: sp.clone(),
            }),
            filter,
            action: action.unwrap_or(Action::Count {
                by: vec![],
                span: sp.clone(),
            }),
            modifiers,
            metric,
            span: sp,
        }
    }

    fn modifier(&mut self, p: Pair<'_, Rule>) -> Option<Modifier> {
        let sp = trimmed_span(&p);
        let mut inner = p.into_inner();
        let kind = match inner.next()?.as_str() {
            "top" => ModifierKind::Top,
            "every" => ModifierKind::Every,
            _ => ModifierKind::Limit,
        };
        let value = self.number(inner.next()?);
        Some(Modifier {
            kind,
            value,
            span: sp,
        })
    }

    fn action(&mut self, p: Pair<'_, Rule>) -> Action {
        // An aggregation's span ends before its `as NAME`.
        let sp = match p
            .clone()
            .into_inner()
            .filter(|q| q.as_rule() != Rule::metric_as)
            .last()
        {
            Some(last) if p.as_rule() == Rule::agg_action => p.as_span().start()..last_end(&last),
            _ => trimmed_span(&p),
        };
        match p.as_rule() {
            Rule::print_action => {
                let items = p
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::print_item)
                    .filter_map(|i| self.print_item(i))
                    .collect();
                Action::Print { items, span: sp }
            }
            _ => {
                let mut func = None;
                let mut by = Vec::new();
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::agg_func => func = Some(part),
                        Rule::field_list => by = part.into_inner().map(ident).collect(),
                        _ => {}
                    }
                }
                let Some(func) = func else {
                    return Action::Count { by, span: sp };
                };
                let mut word = None;
                let mut field = None;
                let mut args = Vec::new();
                for part in func.into_inner() {
                    match part.as_rule() {
                        Rule::kw_count => return Action::Count { by, span: sp },
                        Rule::kw_lhist | Rule::agg_word => word = Some(ident(part)),
                        Rule::field_name => field = Some(ident(part)),
                        Rule::number => args.push(self.number(part)),
                        _ => {}
                    }
                }
                match (word, field) {
                    (Some(func), Some(field)) => Action::Agg {
                        func,
                        field,
                        args,
                        by,
                        span: sp,
                    },
                    _ => Action::Count { by, span: sp },
                }
            }
        }
    }

    fn print_item(&mut self, p: Pair<'_, Rule>) -> Option<PrintItem> {
        let sp = trimmed_span(&p);
        let mut field = None;
        let mut op = None;
        let mut scale = None;
        let mut alias = None;
        for part in p.into_inner() {
            match part.as_rule() {
                Rule::field_name => field = Some(ident(part)),
                Rule::arith_op => op = Some(arith_op(part.as_str())),
                Rule::number => scale = op.map(|o| (o, self.number(part))),
                Rule::alias => alias = Some(ident(part)),
                _ => {}
            }
        }
        Some(PrintItem {
            field: field?,
            scale,
            alias,
            span: sp,
        })
    }

    pub(super) fn expr(&mut self, p: Pair<'_, Rule>) -> Expr {
        match p.as_rule() {
            Rule::expr | Rule::atom => match p.clone().into_inner().next() {
                Some(inner) => self.expr(inner),
                None => self.missing(&p),
            },
            Rule::or_expr | Rule::and_expr => self.binary(p),
            Rule::unary => {
                let sp = trimmed_span(&p);
                let mut inner = p.into_inner();
                match (inner.next(), inner.next()) {
                    (Some(op), Some(e)) if op.as_rule() == Rule::not_op => {
                        self.c_style(&op, "not");
                        Expr::Not {
                            expr: Box::new(self.expr(e)),
                            span: sp,
                        }
                    }
                    (Some(e), None) => self.expr(e),
                    _ => Expr::Bare(Operand::Field(Ident {
                        name: String::new(),
                        span: sp,
                    })),
                }
            }
            Rule::comparison => {
                let sp = trimmed_span(&p);
                let mut inner = p.into_inner();
                match (inner.next(), inner.next(), inner.next()) {
                    (Some(l), Some(op), Some(r)) => Expr::Compare {
                        lhs: self.term(l),
                        op: self.cmp_op(op),
                        rhs: self.term(r),
                        span: sp,
                    },
                    _ => self.missing_span(sp),
                }
            }
            Rule::in_test => {
                let sp = trimmed_span(&p);
                let mut lhs = None;
                let mut items = Vec::new();
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::term => lhs = Some(self.term(part)),
                        Rule::set => {
                            for i in part.into_inner() {
                                items.extend(self.set_item(i));
                            }
                        }
                        Rule::set_item => items.extend(self.set_item(part)),
                        _ => {}
                    }
                }
                match lhs {
                    Some(lhs) => Expr::In {
                        lhs,
                        items,
                        span: sp,
                    },
                    None => self.missing_span(sp),
                }
            }
            Rule::operand => Expr::Bare(self.operand(p)),
            _ => self.missing(&p),
        }
    }

    /// `operand [OP operand]`.
    fn term(&mut self, p: Pair<'_, Rule>) -> Operand {
        let sp = trimmed_span(&p);
        let mut inner = p.into_inner();
        let Some(first) = inner.next() else {
            return Operand::Field(Ident {
                name: String::new(),
                span: sp,
            });
        };
        let lhs = self.operand(first);
        match (inner.next(), inner.next()) {
            (Some(op), Some(rhs)) => Operand::Arith {
                lhs: Box::new(lhs),
                op: arith_op(op.as_str()),
                op_span: span(&op),
                rhs: Box::new(self.operand(rhs)),
                span: sp,
            },
            _ => lhs,
        }
    }

    fn set_item(&mut self, p: Pair<'_, Rule>) -> Option<SetItem> {
        let p = if p.as_rule() == Rule::set_item {
            p.into_inner().next()?
        } else {
            p
        };
        let sp = span(&p);
        match p.as_rule() {
            Rule::range => {
                let mut inner = p.into_inner();
                let lo = self.number(inner.next()?);
                let hi = self.number(inner.next()?);
                Some(SetItem::Range { lo, hi, span: sp })
            }
            Rule::cidr => {
                let mut inner = p.into_inner();
                let a = inner.next()?;
                let len_text = inner.next()?.as_str().to_string();
                let addr = match self.operand_literal(a) {
                    Some(Value::Addr(addr)) => addr,
                    _ => return None,
                };
                let max = if addr.is_ipv4() { 32 } else { 128 };
                match len_text.parse::<u8>() {
                    Ok(len) if len <= max => Some(SetItem::Cidr {
                        addr,
                        len,
                        span: sp,
                    }),
                    _ => {
                        self.bad_literal(
                            &sp,
                            BadLiteral::PrefixLength {
                                len: len_text.to_owned(),
                                max,
                            },
                        );
                        None
                    }
                }
            }
            Rule::operand => Some(SetItem::One(self.operand(p))),
            _ => None,
        }
    }

    /// An address inside a CIDR, validated like an operand.
    fn operand_literal(&mut self, p: Pair<'_, Rule>) -> Option<Value> {
        let sp = span(&p);
        let text = p.as_str();
        let parsed: Option<IpAddr> = match p.as_rule() {
            Rule::ipv4 => text.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            _ => text.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        };
        if parsed.is_none() {
            self.bad_literal(
                &sp,
                BadLiteral::NotAnAddress {
                    text: text.to_owned(),
                },
            );
        }
        parsed.map(Value::Addr)
    }

    /// A `number` pair as a literal.
    pub(super) fn number(&mut self, p: Pair<'_, Rule>) -> Literal {
        let sp = span(&p);
        let p_text = p.as_str().to_string();
        let mut value = 0;
        let mut suffix = None;
        let mut frac = None;
        let mut int_text = String::new();
        for part in p.into_inner() {
            match part.as_rule() {
                Rule::int_body => {
                    int_text = part.as_str().to_string();
                    match parse_int(part.as_str()) {
                        Some(v) => value = v,
                        None => self.bad_literal(
                            &span(&part),
                            BadLiteral::TooLarge {
                                text: part.as_str().to_owned(),
                            },
                        ),
                    }
                }
                Rule::fraction => frac = Some(part.as_str().to_string()),
                Rule::unit_suffix if part.as_str().starts_with(['x', 'X']) && value == 0 => {
                    // `0x` with no hex digits after it.
                    self.bad_literal(
                        &sp,
                        BadLiteral::NoHexDigits {
                            text: p_text.to_owned(),
                        },
                    );
                }
                Rule::unit_suffix => suffix = Some(part.as_str().to_string()),
                _ => {}
            }
        }
        let value = match frac {
            Some(f) => Value::Frac {
                text: format!("{int_text}{f}"),
                suffix,
            },
            None => Value::Int { value, suffix },
        };
        Literal {
            value,
            span: sp,
            from_param: None,
        }
    }

    fn missing(&mut self, p: &Pair<'_, Rule>) -> Expr {
        self.missing_span(span(p))
    }

    /// Only reachable if the grammar and the builder disagree: report it
    /// rather than panic.
    fn missing_span(&mut self, sp: Span) -> Expr {
        self.errors
            .push(Diagnostic::new(Problem::TreeShape, sp.clone()));
        Expr::Bare(Operand::Field(Ident {
            name: String::new(),
            span: sp,
        }))
    }

    /// `a and b and c` folds left; `or` likewise.
    fn binary(&mut self, p: Pair<'_, Rule>) -> Expr {
        let is_or = p.as_rule() == Rule::or_expr;
        let mut inner = p.into_inner();
        let Some(first) = inner.next() else {
            return self.missing_span(0..0);
        };
        let mut acc = self.expr(first);
        while let (Some(op), Some(rhs)) = (inner.next(), inner.next()) {
            self.c_style(&op, if is_or { "or" } else { "and" });
            let rhs = self.expr(rhs);
            let sp = acc.span().start..rhs.span().end;
            let (lhs, rhs) = (Box::new(acc), Box::new(rhs));
            acc = if is_or {
                Expr::Or { lhs, rhs, span: sp }
            } else {
                Expr::And { lhs, rhs, span: sp }
            };
        }
        acc
    }

    /// `&&`, `||`, `!` parse (so the rest of the program is still read) but
    /// are errors with the fix.
    fn c_style(&mut self, op: &Pair<'_, Rule>, word: &'static str) {
        let is_c = op
            .clone()
            .into_inner()
            .next()
            .is_some_and(|r| matches!(r.as_rule(), Rule::c_and | Rule::c_or | Rule::c_not));
        if is_c {
            self.errors.push(Diagnostic::new(
                Problem::CStyleOperator {
                    written: op.as_str().to_owned(),
                    word,
                },
                span(op),
            ));
        }
    }

    fn cmp_op(&mut self, p: Pair<'_, Rule>) -> Op {
        let sp = span(&p);
        let op = match p.as_str() {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            _ => {
                self.errors
                    .push(Diagnostic::new(Problem::SingleEquals, sp.clone()));
                CmpOp::Eq
            }
        };
        Op { op, span: sp }
    }

    fn operand(&mut self, p: Pair<'_, Rule>) -> Operand {
        let Some(p) = p.into_inner().next() else {
            return Operand::Field(Ident {
                name: String::new(),
                span: 0..0,
            });
        };
        let sp = span(&p);
        let lit = |value| {
            Operand::Literal(Literal {
                value,
                span: sp.clone(),
                from_param: None,
            })
        };
        match p.as_rule() {
            Rule::param => {
                let name = p.as_str().trim_start_matches('$').to_string();
                Operand::Param(Ident { name, span: sp })
            }
            Rule::ipv4 => match p.as_str().parse::<Ipv4Addr>() {
                Ok(a) => lit(Value::Addr(IpAddr::V4(a))),
                Err(_) => {
                    self.bad_literal(
                        &sp,
                        BadLiteral::NotIpv4 {
                            text: p.as_str().to_owned(),
                        },
                    );
                    lit(Value::Addr(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
                }
            },
            Rule::ipv6 => match p.as_str().parse::<Ipv6Addr>() {
                Ok(a) => lit(Value::Addr(IpAddr::V6(a))),
                Err(_) => {
                    self.bad_literal(
                        &sp,
                        BadLiteral::NotIpv6 {
                            text: p.as_str().to_owned(),
                        },
                    );
                    lit(Value::Addr(IpAddr::V6(Ipv6Addr::UNSPECIFIED)))
                }
            },
            Rule::number => Operand::Literal(self.number(p)),
            Rule::string => {
                let raw = p.into_inner().next().map_or("", |i| i.as_str());
                match unescape(raw) {
                    Ok(s) => lit(Value::Str(s)),
                    Err(what) => {
                        self.bad_literal(&sp, what);
                        lit(Value::Str(String::new()))
                    }
                }
            }
            Rule::ident => {
                let text = p.as_str();
                match text {
                    "true" => lit(Value::Bool(true)),
                    "false" => lit(Value::Bool(false)),
                    _ => {
                        if let Some(v) = catalog::state_by_name(text) {
                            lit(Value::State(v))
                        } else if let Some(v) = catalog::family_by_name(text) {
                            lit(Value::Family(v))
                        } else if let Some(v) = crate::errno::by_name(text) {
                            lit(Value::Errno(v))
                        } else {
                            Operand::Field(Ident {
                                name: text.to_string(),
                                span: sp,
                            })
                        }
                    }
                }
            }
            _ => Operand::Field(Ident {
                name: p.as_str().to_string(),
                span: sp,
            }),
        }
    }

    fn bad_literal(&mut self, sp: &Span, what: BadLiteral) {
        self.errors
            .push(Diagnostic::new(Problem::BadLiteral(what), sp.clone()));
    }
}

/// Decimal or `0x` hex, `_` separators, optional leading `-`.
pub(crate) fn parse_int(text: &str) -> Option<i128> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let digits: String = body.chars().filter(|c| *c != '_').collect();
    let v = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(h, 16).ok()?
    } else {
        digits.parse::<u64>().ok()?
    };
    let v = v as i128;
    Some(if neg { -v } else { v })
}

fn unescape(raw: &str) -> Result<String, BadLiteral> {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(escape) => return Err(BadLiteral::UnknownEscape { escape }),
            None => return Err(BadLiteral::TrailingBackslash),
        }
    }
    Ok(out)
}
