//! The `@expect` lines of a recipe: what it must show against known
//! traffic (like the headers of bpftrace's `tests/runtime`). They are data:
//! nothing in them is run, and the recipe parser ignores them (dsl's
//! `recipe.rs`). Statements, one per line:
//!
//! ```text
//! # @expect traffic NAME              the scenario to drive (`transfer`)
//! # @expect case [PARAM=EXPR ...]     one run of the recipe, with these
//! #                                   --param values; checks after it
//! #                                   are this run's, checks before the
//! #                                   first `case` every run's (no `case`:
//! #                                   one run without parameters)
//! # @expect [buckets:] rows[(CONDS)] OP EXPR        how many rows (match)
//! # @expect [buckets:] sum(FIELD[; CONDS]) OP EXPR  their FIELD, summed
//! # @expect [buckets:] distinct(FIELD[; CONDS]) OP EXPR
//! # @expect [buckets:] all[(CONDS)] CONDS           every (matching) row
//! ```
//!
//! CONDS is `FIELD OP EXPR` (or `FIELD in (EXPR, ...)`) joined by commas,
//! all of which must hold; OP is `==`, `!=`, `<`, `<=`, `>`, `>=`. EXPR is
//! a number, `true`/`false`, a word (compared as a string: `tcpq-reader`,
//! `ESTABLISHED`, `0x0`), `.FIELD` (the same row's field), or a value the
//! scenario measured, `$NAME` (`$port`, `$reader.pid`, `$nstat.TcpRetransSegs`:
//! see [`super::Scenario`]), combined with `+ - * /` and parentheses.
//! `buckets:` looks at the buckets of a histogram row instead of rows (each
//! bucket with its row's fields, and `min`, `max`, `count`).
//!
//! A run without a `port` parameter sees every connection on the machine;
//! only the scenario's rows (a port and, where the row has one, an address
//! of the scenario's) are checked.
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug)]
pub struct Expect {
    pub traffic: String,
    pub cases: Vec<Case>,
}

#[derive(Debug)]
pub struct Case {
    pub params: Vec<(String, Expr)>,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone)]
pub struct Check {
    /// As written, for failure messages.
    pub text: String,
    buckets: bool,
    what: What,
}

#[derive(Debug, Clone)]
enum What {
    Rows(Vec<Cond>, Op, Expr),
    Sum(String, Vec<Cond>, Op, Expr),
    Distinct(String, Vec<Cond>, Op, Expr),
    All(Vec<Cond>, Vec<Cond>),
}

#[derive(Debug, Clone)]
struct Cond {
    field: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Cmp(Op, Expr),
    In(Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Num(i128),
    Bool(bool),
    Word(String),
    Field(String),
    Truth(String),
    Bin(Box<Expr>, char, Box<Expr>),
}

/// A value compared: numbers exactly (JSON integers), strings, booleans.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Num(i128),
    Str(String),
    Bool(bool),
    Null,
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Num(n) => write!(f, "{n}"),
            Val::Str(s) => write!(f, "{s}"),
            Val::Bool(b) => write!(f, "{b}"),
            Val::Null => write!(f, "null"),
        }
    }
}

impl Val {
    pub fn of(v: &Value) -> Val {
        match v {
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => n
                .as_i64()
                .map(|i| Val::Num(i as i128))
                .or_else(|| n.as_u64().map(|u| Val::Num(u as i128)))
                .unwrap_or_else(|| Val::Str(n.to_string())),
            Value::String(s) => Val::Str(s.clone()),
            _ => Val::Null,
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing

/// The `@expect` lines of a recipe's header, parsed; an error names the
/// line that is not a statement (a checker never drops part of one).
pub fn parse(recipe: &str) -> Result<Expect, String> {
    let mut traffic = None;
    let mut common: Vec<Check> = Vec::new();
    let mut cases: Vec<Case> = Vec::new();
    for line in recipe
        .lines()
        .take_while(|l| l.trim_start().starts_with('#'))
    {
        let Some(text) = line.trim_start()[1..].trim().strip_prefix("@expect") else {
            continue;
        };
        let text = text.trim();
        let err = |e: String| format!("`@expect {text}`: {e}");
        if let Some(name) = text.strip_prefix("traffic ") {
            if traffic.replace(name.trim().to_string()).is_some() {
                return Err(err("a second `traffic`".into()));
            }
        } else if text == "case" || text.starts_with("case ") {
            let mut params = Vec::new();
            for p in text["case".len()..].split_whitespace() {
                let (k, v) = p
                    .split_once('=')
                    .ok_or_else(|| err(format!("`{p}` is not PARAM=EXPR")))?;
                let mut t = Tokens::new(v);
                let e = t.expr().map_err(err)?;
                t.end().map_err(err)?;
                params.push((k.to_string(), e));
            }
            cases.push(Case {
                params,
                checks: Vec::new(),
            });
        } else {
            let check = check(text).map_err(err)?;
            match cases.last_mut() {
                Some(c) => c.checks.push(check),
                None => common.push(check),
            }
        }
    }
    let traffic = traffic.ok_or("no `@expect traffic NAME` line")?;
    if common.is_empty() && cases.iter().all(|c| c.checks.is_empty()) {
        return Err("`@expect` checks nothing".into());
    }
    if cases.is_empty() {
        cases.push(Case {
            params: Vec::new(),
            checks: Vec::new(),
        });
    }
    for c in &mut cases {
        let mut all = common.clone();
        all.append(&mut c.checks);
        c.checks = all;
    }
    Ok(Expect { traffic, cases })
}

fn check(text: &str) -> Result<Check, String> {
    let (buckets, body) = match text.strip_prefix("buckets:") {
        Some(b) => (true, b.trim()),
        None => (false, text),
    };
    let mut t = Tokens::new(body);
    let what = match t.next().as_deref() {
        Some("rows") => {
            let filter = t.paren_conds()?;
            What::Rows(filter, t.op()?, t.expr()?)
        }
        Some(agg @ ("sum" | "distinct")) => {
            t.want("(")?;
            let field = t.word()?;
            let filter = if t.peek() == Some(";") {
                t.next();
                t.conds()?
            } else {
                Vec::new()
            };
            t.want(")")?;
            let (op, e) = (t.op()?, t.expr()?);
            if agg == "sum" {
                What::Sum(field, filter, op, e)
            } else {
                What::Distinct(field, filter, op, e)
            }
        }
        Some("all") => {
            let filter = t.paren_conds()?;
            What::All(filter, t.conds()?)
        }
        other => return Err(format!("`{}` is not a statement", other.unwrap_or(""))),
    };
    t.end()?;
    Ok(Check {
        text: text.to_string(),
        buckets,
        what,
    })
}

struct Tokens {
    toks: Vec<String>,
    at: usize,
}

impl Tokens {
    fn new(s: &str) -> Tokens {
        let mut toks = Vec::new();
        for word in s.split_whitespace() {
            // `-` inside a word is part of it (`tcpq-reader`); alone, minus.
            let mut cur = String::new();
            let mut chars = word.chars().peekable();
            while let Some(c) = chars.next() {
                let two = chars.peek().map(|n| format!("{c}{n}"));
                if let Some(op) = two.filter(|t| ["==", "!=", "<=", ">="].contains(&t.as_str())) {
                    chars.next();
                    if !cur.is_empty() {
                        toks.push(std::mem::take(&mut cur));
                    }
                    toks.push(op);
                } else if "(),;<>+*/".contains(c) {
                    if !cur.is_empty() {
                        toks.push(std::mem::take(&mut cur));
                    }
                    toks.push(c.to_string());
                } else {
                    cur.push(c);
                }
            }
            if !cur.is_empty() {
                toks.push(cur);
            }
        }
        Tokens { toks, at: 0 }
    }
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.at).map(String::as_str)
    }
    fn next(&mut self) -> Option<String> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn want(&mut self, t: &str) -> Result<(), String> {
        match self.next() {
            Some(got) if got == t => Ok(()),
            got => Err(format!(
                "expected `{t}`, found `{}`",
                got.unwrap_or_default()
            )),
        }
    }
    fn end(&self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(format!("unexpected `{t}`")),
        }
    }
    fn word(&mut self) -> Result<String, String> {
        match self.next() {
            Some(w) if w.chars().all(|c| c.is_alphanumeric() || c == '_') => Ok(w),
            got => Err(format!(
                "expected a field, found `{}`",
                got.unwrap_or_default()
            )),
        }
    }
    fn op(&mut self) -> Result<Op, String> {
        Ok(match self.next().as_deref() {
            Some("==") => Op::Eq,
            Some("!=") => Op::Ne,
            Some("<") => Op::Lt,
            Some("<=") => Op::Le,
            Some(">") => Op::Gt,
            Some(">=") => Op::Ge,
            got => {
                return Err(format!(
                    "expected a comparison, found `{}`",
                    got.unwrap_or("")
                ))
            }
        })
    }
    /// `(CONDS)` if there is one.
    fn paren_conds(&mut self) -> Result<Vec<Cond>, String> {
        if self.peek() != Some("(") {
            return Ok(Vec::new());
        }
        self.next();
        let c = self.conds()?;
        self.want(")")?;
        Ok(c)
    }
    fn conds(&mut self) -> Result<Vec<Cond>, String> {
        let mut v = vec![self.cond()?];
        while self.peek() == Some(",") {
            self.next();
            v.push(self.cond()?);
        }
        Ok(v)
    }
    fn cond(&mut self) -> Result<Cond, String> {
        let field = self.word()?;
        let test = if self.peek() == Some("in") {
            self.next();
            self.want("(")?;
            let mut set = vec![self.expr()?];
            while self.peek() == Some(",") {
                self.next();
                set.push(self.expr()?);
            }
            self.want(")")?;
            Test::In(set)
        } else {
            Test::Cmp(self.op()?, self.expr()?)
        };
        Ok(Cond { field, test })
    }
    fn expr(&mut self) -> Result<Expr, String> {
        let mut e = self.term()?;
        while let Some(op) = self.peek().filter(|t| *t == "+" || *t == "-") {
            let op = op.chars().next().unwrap();
            self.next();
            e = Expr::Bin(Box::new(e), op, Box::new(self.term()?));
        }
        Ok(e)
    }
    fn term(&mut self) -> Result<Expr, String> {
        let mut e = self.atom()?;
        while let Some(op) = self.peek().filter(|t| *t == "*" || *t == "/") {
            let op = op.chars().next().unwrap();
            self.next();
            e = Expr::Bin(Box::new(e), op, Box::new(self.atom()?));
        }
        Ok(e)
    }
    fn atom(&mut self) -> Result<Expr, String> {
        let t = self.next().ok_or("expected a value, found the end")?;
        Ok(match t.as_str() {
            "(" => {
                let e = self.expr()?;
                self.want(")")?;
                e
            }
            "true" => Expr::Bool(true),
            "false" => Expr::Bool(false),
            _ if t.starts_with('$') => Expr::Truth(t[1..].to_string()),
            _ if t.starts_with('.') => Expr::Field(t[1..].to_string()),
            _ => match t.parse::<i128>() {
                Ok(n) => Expr::Num(n),
                Err(_) if t.chars().any(|c| "(),;<>=!+*/".contains(c)) => {
                    return Err(format!("expected a value, found `{t}`"))
                }
                Err(_) => Expr::Word(t),
            },
        })
    }
}

// ---------------------------------------------------------------------------
// Checking

/// What an expression may refer to: the scenario's measured values.
pub type Truths = BTreeMap<String, Val>;

pub fn eval(e: &Expr, row: Option<&Value>, truths: &Truths) -> Result<Val, String> {
    Ok(match e {
        Expr::Num(n) => Val::Num(*n),
        Expr::Bool(b) => Val::Bool(*b),
        Expr::Word(w) => Val::Str(w.clone()),
        Expr::Field(f) => {
            let row = row.ok_or(format!("`.{f}` outside a row"))?;
            Val::of(row.get(f).ok_or(format!("no field `{f}` in {row}"))?)
        }
        Expr::Truth(t) => truths
            .get(t)
            .cloned()
            .ok_or(format!("the scenario measured no `${t}`"))?,
        Expr::Bin(a, op, b) => match (eval(a, row, truths)?, eval(b, row, truths)?) {
            (Val::Num(a), Val::Num(b)) => Val::Num(match op {
                '+' => a + b,
                '-' => a - b,
                '*' => a * b,
                _ if b == 0 => return Err("division by zero".into()),
                _ => a / b,
            }),
            (a, b) => return Err(format!("`{a} {op} {b}` is not arithmetic")),
        },
    })
}

fn compare(a: &Val, op: Op, b: &Val) -> bool {
    use std::cmp::Ordering::*;
    let ord = match (a, b) {
        (Val::Num(x), Val::Num(y)) => Some(x.cmp(y)),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match (op, ord) {
        (Op::Eq, o) => o == Some(Equal),
        (Op::Ne, o) => o != Some(Equal),
        (_, None) => false,
        (Op::Lt, Some(o)) => o == Less,
        (Op::Le, Some(o)) => o != Greater,
        (Op::Gt, Some(o)) => o == Greater,
        (Op::Ge, Some(o)) => o != Less,
    }
}

fn holds(conds: &[Cond], row: &Value, truths: &Truths) -> Result<bool, String> {
    for c in conds {
        let got = Val::of(
            row.get(&c.field)
                .ok_or(format!("no field `{}` in {row}", c.field))?,
        );
        let ok = match &c.test {
            Test::Cmp(op, e) => compare(&got, *op, &eval(e, Some(row), truths)?),
            Test::In(set) => {
                let mut any = false;
                for e in set {
                    any |= compare(&got, Op::Eq, &eval(e, Some(row), truths)?);
                }
                any
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A histogram row's buckets, each with its row's other fields.
fn buckets(rows: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for r in rows {
        let Some(bs) = r["buckets"].as_array() else {
            continue;
        };
        for b in bs {
            let mut m = r.as_object().cloned().unwrap_or_default();
            m.remove("buckets");
            if let Some(bm) = b.as_object() {
                m.extend(bm.clone());
            }
            out.push(Value::Object(m));
        }
    }
    out
}

/// Check one run's rows: the failures, each naming its statement.
pub fn run(checks: &[Check], rows: &[Value], truths: &Truths) -> Vec<String> {
    let bucket_rows = buckets(rows);
    let mut failures = Vec::new();
    for c in checks {
        let rows = if c.buckets { &bucket_rows } else { rows };
        if let Err(e) = one(c, rows, truths) {
            failures.push(format!("`@expect {}`: {e}", c.text));
        }
    }
    failures
}

fn filtered<'a>(rows: &'a [Value], f: &[Cond], truths: &Truths) -> Result<Vec<&'a Value>, String> {
    let mut v = Vec::new();
    for r in rows {
        if holds(f, r, truths)? {
            v.push(r);
        }
    }
    Ok(v)
}

fn one(c: &Check, rows: &[Value], truths: &Truths) -> Result<(), String> {
    let verdict = |got: Val, op: Op, e: &Expr| -> Result<(), String> {
        let want = eval(e, None, truths)?;
        if compare(&got, op, &want) {
            Ok(())
        } else {
            Err(format!("got {got}, want {op:?} {want}"))
        }
    };
    match &c.what {
        What::Rows(f, op, e) => verdict(Val::Num(filtered(rows, f, truths)?.len() as i128), *op, e),
        What::Sum(field, f, op, e) => {
            let mut sum = 0i128;
            for r in filtered(rows, f, truths)? {
                match Val::of(r.get(field).ok_or(format!("no field `{field}` in {r}"))?) {
                    Val::Num(n) => sum += n,
                    v => return Err(format!("`{field}` is {v}, not a number, in {r}")),
                }
            }
            verdict(Val::Num(sum), *op, e)
        }
        What::Distinct(field, f, op, e) => {
            let set: std::collections::BTreeSet<String> = filtered(rows, f, truths)?
                .iter()
                .map(|r| r.get(field).map_or("null".into(), |v| v.to_string()))
                .collect();
            verdict(Val::Num(set.len() as i128), *op, e)
        }
        What::All(f, conds) => {
            for r in filtered(rows, f, truths)? {
                if !holds(conds, r, truths)? {
                    return Err(format!("not so for {r}"));
                }
            }
            Ok(())
        }
    }
}
