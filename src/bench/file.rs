//! A custom workload from a SQL file, pgbench style.
//!
//! ```text
//! \set scale 10
//! \set aid random(1, 100000 * :scale)
//! -- name: account_balance
//! SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
//! ```
//!
//! `\set NAME EXPR` defines a variable, evaluated before every execution in file order. EXPR is
//! integer arithmetic (`+ - * / %`, parentheses, integer literals, earlier `:variables`) and
//! `random(LOW, HIGH)` (uniform, both ends included). Every other line is SQL: statements end
//! at `;` and each becomes one operation (weight 1), named by a `-- name: NAME` comment just
//! before it, else `<file stem>` for a single statement or `<file stem>:<n>` for several.
//! `:name` in a statement becomes a bind parameter (`$1`, `$2`, ... in order of first use,
//! typed int8); quoted strings, comments and `::` casts are left alone.
//!
//! Syntax errors name the file and the line. Parsing is pure; the file is read by [`load`].

use std::path::Path;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::Rng;
use tokio_postgres::types::Type;

use super::workload::{OpKind, Operation, Param, Workload};
use crate::error::{Error, Result};

/// An integer expression of a `\set` line.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Int(i64),
    /// Index of an earlier variable.
    Var(usize),
    Random(Box<Expr>, Box<Expr>),
    Bin(char, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
}

impl Expr {
    /// Evaluates with wrapping arithmetic; division by zero gives 0 (only reachable through
    /// variables: a literal zero divisor is refused when parsing).
    fn eval(&self, vars: &[i64], rng: &mut SmallRng) -> i64 {
        match self {
            Expr::Int(v) => *v,
            Expr::Var(i) => vars[*i],
            Expr::Neg(e) => e.eval(vars, rng).wrapping_neg(),
            Expr::Random(lo, hi) => {
                let lo = lo.eval(vars, rng);
                let hi = hi.eval(vars, rng);
                if hi <= lo {
                    lo
                } else {
                    rng.gen_range(lo..=hi)
                }
            }
            Expr::Bin(op, a, b) => {
                let a = a.eval(vars, rng);
                let b = b.eval(vars, rng);
                match op {
                    '+' => a.wrapping_add(b),
                    '-' => a.wrapping_sub(b),
                    '*' => a.wrapping_mul(b),
                    '/' => a.checked_div(b).unwrap_or(0),
                    _ => a.checked_rem(b).unwrap_or(0),
                }
            }
        }
    }

    /// The value when it does not depend on random().
    fn constant(&self) -> Option<i64> {
        match self {
            Expr::Int(v) => Some(*v),
            _ => None,
        }
    }
}

/// A parsed workload file: variables and statements, before becoming a [`Workload`].
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub name: String,
    /// Variable names, in `\set` order.
    pub vars: Vec<String>,
    exprs: Vec<Expr>,
    pub statements: Vec<ScriptStatement>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScriptStatement {
    pub name: String,
    /// The SQL with `$n` placeholders.
    pub sql: String,
    /// For each placeholder, the index of the variable bound to it.
    pub params: Vec<usize>,
    /// Line where the statement starts (1-based).
    pub line: usize,
}

/// Reads and parses a workload file.
pub fn load(path: &Path) -> Result<Workload> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::BadInput(format!(
            "cannot read the workload file {}: {e}",
            path.display()
        ))
    })?;
    let file = path.display().to_string();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.clone());
    parse(&file, &stem, &text)?.into_workload()
}

/// Parses `text`; `file` names it in errors, `stem` names its operations.
pub fn parse(file: &str, stem: &str, text: &str) -> Result<Script> {
    let err = |line: usize, msg: String| Error::BadInput(format!("{file}:{line}: {msg}"));
    let mut vars: Vec<String> = Vec::new();
    let mut exprs: Vec<Expr> = Vec::new();
    let mut statements: Vec<ScriptStatement> = Vec::new();
    let mut sql = SqlScanner::default();

    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim();
        if sql.is_idle() && trimmed.starts_with('\\') {
            let mut words = trimmed[1..].splitn(2, char::is_whitespace);
            let command = words.next().unwrap_or("");
            let rest = words.next().unwrap_or("").trim();
            match command {
                "set" => {
                    let (name, expr_text) = rest
                        .split_once(char::is_whitespace)
                        .map(|(n, e)| (n, e.trim()))
                        .ok_or_else(|| {
                            err(
                                line_no,
                                "\\set needs a name and an expression, e.g. \\set aid random(1, 100000)"
                                    .into(),
                            )
                        })?;
                    if !is_var_name(name) {
                        return Err(err(line_no, format!("{name:?} is not a variable name")));
                    }
                    let expr = ExprParser::new(expr_text, &vars)
                        .parse()
                        .map_err(|m| err(line_no, format!("\\set {name}: {m}")))?;
                    match vars.iter().position(|v| v == name) {
                        Some(at) => exprs[at] = expr,
                        None => {
                            vars.push(name.to_string());
                            exprs.push(expr);
                        }
                    }
                }
                other => {
                    return Err(err(
                        line_no,
                        format!("unknown command \\{other} (only \\set is supported)"),
                    ))
                }
            }
            continue;
        }
        for done in sql.feed_line(raw, line_no) {
            statements.push(finish_statement(done, &vars, &err)?);
        }
    }
    if let Some(done) = sql.finish() {
        statements.push(finish_statement(done, &vars, &err)?);
    }
    if statements.is_empty() {
        return Err(Error::BadInput(format!(
            "{file}: no SQL statement found; write one statement per operation, ending with ;"
        )));
    }
    let numbered = statements.len() > 1;
    for (n, s) in statements.iter_mut().enumerate() {
        if s.name.is_empty() {
            s.name = if numbered {
                format!("{stem}:{}", n + 1)
            } else {
                stem.to_string()
            };
        }
    }
    let mut seen = std::collections::HashSet::new();
    for s in &statements {
        if !seen.insert(s.name.clone()) {
            return Err(err(
                s.line,
                format!("the operation name {:?} is used twice", s.name),
            ));
        }
    }
    Ok(Script {
        name: stem.to_string(),
        vars,
        exprs,
        statements,
    })
}

fn finish_statement(
    raw: RawStatement,
    vars: &[String],
    err: &impl Fn(usize, String) -> Error,
) -> Result<ScriptStatement> {
    let mut sql = String::with_capacity(raw.text.len());
    let mut params: Vec<usize> = Vec::new();
    for piece in raw.pieces {
        match piece {
            Piece::Text(t) => sql.push_str(&t),
            Piece::Var(name, line) => {
                let var = vars.iter().position(|v| *v == name).ok_or_else(|| {
                    err(
                        line,
                        format!(
                            "undefined variable :{name}; define it first with \\set {name} ..."
                        ),
                    )
                })?;
                let n = match params.iter().position(|&p| p == var) {
                    Some(at) => at + 1,
                    None => {
                        params.push(var);
                        params.len()
                    }
                };
                sql.push_str(&format!("${n}"));
            }
        }
    }
    Ok(ScriptStatement {
        name: raw.name.unwrap_or_default(),
        sql: sql.trim().to_string(),
        params,
        line: raw.line,
    })
}

impl Script {
    /// The runnable workload: each statement an operation whose generator evaluates every
    /// `\set` in order and binds the variables the statement uses, as int8.
    pub fn into_workload(self) -> Result<Workload> {
        let exprs: Arc<Vec<Expr>> = Arc::new(self.exprs);
        let ops = self
            .statements
            .into_iter()
            .map(|s| {
                let exprs = exprs.clone();
                let used = s.params.clone();
                let head = s.sql.trim_start().to_ascii_lowercase();
                let kind = if head.starts_with("select")
                    || head.starts_with("with")
                    || head.starts_with("values")
                    || head.starts_with("show")
                {
                    OpKind::Read
                } else {
                    OpKind::Write
                };
                Operation {
                    name: s.name,
                    kind,
                    param_types: vec![Type::INT8; s.params.len()],
                    sql: s.sql,
                    weight: 1,
                    params: Arc::new(move |rng: &mut SmallRng| {
                        if used.is_empty() {
                            return Vec::new();
                        }
                        let values = eval_all(&exprs, rng);
                        used.iter().map(|&i| Box::new(values[i]) as Param).collect()
                    }),
                }
            })
            .collect();
        Workload::new(self.name, ops)
    }

    /// One evaluation of every variable (for tests and `--dry-run` style checks).
    pub fn sample(&self, rng: &mut SmallRng) -> Vec<i64> {
        eval_all(&self.exprs, rng)
    }
}

fn eval_all(exprs: &[Expr], rng: &mut SmallRng) -> Vec<i64> {
    let mut values = Vec::with_capacity(exprs.len());
    for e in exprs {
        let v = e.eval(&values, rng);
        values.push(v);
    }
    values
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Recursive descent over `\set` expressions.
struct ExprParser<'a> {
    s: &'a [u8],
    pos: usize,
    vars: &'a [String],
}

impl<'a> ExprParser<'a> {
    fn new(s: &'a str, vars: &'a [String]) -> Self {
        ExprParser {
            s: s.as_bytes(),
            pos: 0,
            vars,
        }
    }

    fn parse(mut self) -> std::result::Result<Expr, String> {
        let e = self.sum()?;
        self.ws();
        if self.pos < self.s.len() {
            return Err(format!(
                "unexpected {:?} in the expression",
                String::from_utf8_lossy(&self.s[self.pos..])
            ));
        }
        Ok(e)
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }

    fn sum(&mut self) -> std::result::Result<Expr, String> {
        let mut left = self.product()?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let right = self.product()?;
            left = fold(c as char, left, right)?;
        }
        Ok(left)
    }

    fn product(&mut self) -> std::result::Result<Expr, String> {
        let mut left = self.unary()?;
        while let Some(c @ (b'*' | b'/' | b'%')) = self.peek() {
            self.pos += 1;
            let right = self.unary()?;
            left = fold(c as char, left, right)?;
        }
        Ok(left)
    }

    fn unary(&mut self) -> std::result::Result<Expr, String> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
            let e = self.unary()?;
            return Ok(match e.constant() {
                Some(v) => Expr::Int(v.wrapping_neg()),
                None => Expr::Neg(Box::new(e)),
            });
        }
        self.atom()
    }

    fn atom(&mut self) -> std::result::Result<Expr, String> {
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let e = self.sum()?;
                if self.peek() != Some(b')') {
                    return Err("missing )".into());
                }
                self.pos += 1;
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).expect("ascii");
                text.parse::<i64>()
                    .map(Expr::Int)
                    .map_err(|_| format!("{text} does not fit in a 64-bit integer"))
            }
            Some(b':') => {
                self.pos += 1;
                let name = self.word();
                match self.vars.iter().position(|v| *v == name) {
                    Some(i) => Ok(Expr::Var(i)),
                    None if name.is_empty() => Err("a variable name must follow :".into()),
                    None => Err(format!(
                        "undefined variable :{name}; define it on an earlier \\set line"
                    )),
                }
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let name = self.word();
                if name != "random" {
                    return Err(format!(
                        "unknown function {name}() (only random(low, high))"
                    ));
                }
                if self.peek() != Some(b'(') {
                    return Err("random needs arguments: random(low, high)".into());
                }
                self.pos += 1;
                let mut args = Vec::new();
                if self.peek() != Some(b')') {
                    loop {
                        args.push(self.sum()?);
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b')') => break,
                            _ => return Err("random(low, high): expected , or )".into()),
                        }
                    }
                }
                self.pos += 1;
                if args.len() != 2 {
                    return Err(format!(
                        "random() takes 2 arguments (low, high), got {}",
                        args.len()
                    ));
                }
                let hi = args.pop().expect("two");
                let lo = args.pop().expect("two");
                if let (Some(l), Some(h)) = (lo.constant(), hi.constant()) {
                    if l > h {
                        return Err(format!(
                            "random({l}, {h}): the low bound is above the high bound"
                        ));
                    }
                }
                Ok(Expr::Random(Box::new(lo), Box::new(hi)))
            }
            Some(c) => Err(format!("unexpected {:?} in the expression", c as char)),
            None => Err("the expression is empty or ends too early".into()),
        }
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_')
        {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }
}

/// Builds a binary node, folding constants (so `100000 * 10` is one literal).
fn fold(op: char, a: Expr, b: Expr) -> std::result::Result<Expr, String> {
    if let (Some(x), Some(y)) = (a.constant(), b.constant()) {
        let v = match op {
            '+' => x.checked_add(y),
            '-' => x.checked_sub(y),
            '*' => x.checked_mul(y),
            '/' if y == 0 => return Err("division by zero".into()),
            '%' if y == 0 => return Err("division by zero".into()),
            '/' => x.checked_div(y),
            _ => x.checked_rem(y),
        };
        return v
            .map(Expr::Int)
            .ok_or_else(|| "integer overflow in the expression".to_string());
    }
    if matches!(op, '/' | '%') && b.constant() == Some(0) {
        return Err("division by zero".into());
    }
    Ok(Expr::Bin(op, Box::new(a), Box::new(b)))
}

enum Piece {
    Text(String),
    Var(String, usize),
}

struct RawStatement {
    name: Option<String>,
    text: String,
    pieces: Vec<Piece>,
    line: usize,
}

/// Splits SQL into statements at `;`, finding `:name` references outside quotes and comments.
#[derive(Default)]
struct SqlScanner {
    pieces: Vec<Piece>,
    text: String,
    current: String,
    start_line: Option<usize>,
    /// A `-- name:` seen since the last statement ended.
    pending_name: Option<String>,
    /// Inside '...' or "..." or /* ... */ across lines.
    in_quote: Option<u8>,
    block_comment: usize,
}

impl SqlScanner {
    fn is_idle(&self) -> bool {
        self.in_quote.is_none() && self.block_comment == 0 && self.text.trim().is_empty()
    }

    fn feed_line(&mut self, line: &str, line_no: usize) -> Vec<RawStatement> {
        let mut done = Vec::new();
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if self.block_comment > 0 {
                if c == b'*' && b.get(i + 1) == Some(&b'/') {
                    self.block_comment -= 1;
                    self.push_str("*/", line_no);
                    i += 2;
                } else {
                    self.push_char(line, &mut i, line_no);
                }
                continue;
            }
            if let Some(q) = self.in_quote {
                if c == q {
                    self.in_quote = None;
                }
                self.push_char(line, &mut i, line_no);
                continue;
            }
            match c {
                b'\'' | b'"' => {
                    self.in_quote = Some(c);
                    self.push_char(line, &mut i, line_no);
                }
                b'-' if b.get(i + 1) == Some(&b'-') => {
                    let comment = &line[i + 2..];
                    if self.text.trim().is_empty() {
                        if let Some(name) = comment.trim().strip_prefix("name:") {
                            self.pending_name = Some(name.trim().to_string());
                        }
                        // Comments before a statement are not part of it.
                    } else {
                        self.push_str(&line[i..], line_no);
                    }
                    i = b.len();
                }
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    self.block_comment += 1;
                    self.push_str("/*", line_no);
                    i += 2;
                }
                b':' if b.get(i + 1) == Some(&b':') => {
                    self.push_str("::", line_no);
                    i += 2;
                }
                b':' if b
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_alphabetic() || *n == b'_') =>
                {
                    let start = i + 1;
                    let mut end = start;
                    while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                        end += 1;
                    }
                    self.flush_current();
                    self.note_start(line_no);
                    self.text.push_str(&line[i..end]);
                    self.pieces
                        .push(Piece::Var(line[start..end].to_string(), line_no));
                    i = end;
                }
                b';' => {
                    i += 1;
                    if let Some(s) = self.take() {
                        done.push(s);
                    }
                }
                _ => self.push_char(line, &mut i, line_no),
            }
        }
        if !self.text.is_empty() {
            self.push_str("\n", line_no);
        }
        done
    }

    fn push_char(&mut self, line: &str, i: &mut usize, line_no: usize) {
        let ch = line[*i..].chars().next().expect("in bounds");
        if !ch.is_whitespace() {
            self.note_start(line_no);
        }
        if self.start_line.is_some() {
            self.current.push(ch);
            self.text.push(ch);
        }
        *i += ch.len_utf8();
    }

    fn push_str(&mut self, s: &str, line_no: usize) {
        if !s.trim().is_empty() {
            self.note_start(line_no);
        }
        if self.start_line.is_some() {
            self.current.push_str(s);
            self.text.push_str(s);
        }
    }

    fn note_start(&mut self, line_no: usize) {
        if self.start_line.is_none() {
            self.start_line = Some(line_no);
        }
    }

    fn flush_current(&mut self) {
        if !self.current.is_empty() {
            self.pieces
                .push(Piece::Text(std::mem::take(&mut self.current)));
        }
    }

    fn take(&mut self) -> Option<RawStatement> {
        self.flush_current();
        let text = std::mem::take(&mut self.text);
        let pieces = std::mem::take(&mut self.pieces);
        let line = self.start_line.take();
        if text.trim().is_empty() {
            return None;
        }
        Some(RawStatement {
            name: self.pending_name.take(),
            text,
            pieces,
            line: line.unwrap_or(1),
        })
    }

    fn finish(&mut self) -> Option<RawStatement> {
        self.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ok(text: &str) -> Script {
        parse("w.sql", "w", text).unwrap()
    }

    fn fails(text: &str) -> String {
        parse("w.sql", "w", text).unwrap_err().to_string()
    }

    #[test]
    fn pgbench_select_only_becomes_one_operation_with_one_int8_parameter() {
        let s = ok("\\set aid random(1, 100000 * 10)\n\
                    SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n");
        assert_eq!(s.statements.len(), 1);
        let st = &s.statements[0];
        assert_eq!(st.name, "w");
        assert_eq!(
            st.sql,
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
        );
        assert_eq!(st.params, vec![0]);
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..1000 {
            let v = s.sample(&mut rng)[0];
            assert!((1..=1_000_000).contains(&v), "{v}");
        }
        let w = s.into_workload().unwrap();
        assert_eq!(w.ops[0].param_types, vec![Type::INT8]);
        assert_eq!((w.ops[0].params)(&mut rng).len(), 1);
    }

    #[test]
    fn variables_feed_later_expressions_and_repeat_as_one_parameter() {
        let s = ok("\\set scale 10\n\
                    \\set n :scale * 2 + (3 - 1) % 2\n\
                    \\set aid random(1, 100000 * :scale)\n\
                    SELECT :aid, :n, :aid;");
        let mut rng = SmallRng::seed_from_u64(2);
        let v = s.sample(&mut rng);
        assert_eq!(v[0], 10);
        assert_eq!(v[1], 20);
        assert!((1..=1_000_000).contains(&v[2]));
        assert_eq!(s.statements[0].sql, "SELECT $1, $2, $1");
        assert_eq!(s.statements[0].params, vec![2, 1]);
    }

    #[test]
    fn several_statements_are_numbered_or_named_by_comment() {
        let s = ok("-- a comment\nSELECT 1;\n-- name: second_one\nSELECT\n  2;\nSELECT 3");
        let names: Vec<_> = s.statements.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["w:1", "second_one", "w:3"]);
        assert_eq!(s.statements[1].line, 4);
        assert_eq!(s.statements[1].sql, "SELECT\n  2");
        let w = s.into_workload().unwrap();
        assert_eq!(w.ops.len(), 3);
        assert!(w.ops.iter().all(|o| o.param_types.is_empty()));
    }

    #[test]
    fn quotes_comments_and_casts_are_not_parameters_or_separators() {
        let s = ok("\\set x 5\nSELECT ':x;', \"a:x\", :x::int /* :y; */ -- :z;\n;");
        assert_eq!(s.statements.len(), 1);
        assert_eq!(
            s.statements[0].sql,
            "SELECT ':x;', \"a:x\", $1::int /* :y; */ -- :z;"
        );
        assert_eq!(s.statements[0].params, vec![0]);
    }

    #[test]
    fn an_unknown_backslash_command_names_its_line() {
        let e = fails("SELECT 1;\n\n\\sleep 10 ms\n");
        assert!(e.starts_with("w.sql:3:"), "{e}");
        assert!(e.contains("unknown command \\sleep"), "{e}");
    }

    #[test]
    fn bad_random_arguments_name_their_line() {
        let e = fails("\\set a 1\n\\set b random(1)\nSELECT :b;");
        assert!(e.starts_with("w.sql:2:"), "{e}");
        assert!(e.contains("2 arguments"), "{e}");
        let e = fails("\\set b random(10, 1)\nSELECT :b;");
        assert!(e.starts_with("w.sql:1:") && e.contains("low bound"), "{e}");
        let e = fails("\\set b random(1, x)\nSELECT :b;");
        assert!(e.starts_with("w.sql:1:"), "{e}");
        let e = fails("\\set b random(1, 10\nSELECT :b;");
        assert!(e.starts_with("w.sql:1:"), "{e}");
        let e = fails("\\set b 10 / (5 - 5)\nSELECT :b;");
        assert!(e.contains("division by zero"), "{e}");
    }

    #[test]
    fn an_undefined_variable_names_its_line() {
        let e = fails("\\set a random(1, 2)\nSELECT 1;\nSELECT *\nFROM t WHERE id = :aid;");
        assert!(e.starts_with("w.sql:4:"), "{e}");
        assert!(e.contains(":aid"), "{e}");
        let e = fails("\\set a :b + 1\nSELECT :a;");
        assert!(e.starts_with("w.sql:1:") && e.contains(":b"), "{e}");
    }

    #[test]
    fn a_file_without_statements_or_with_a_duplicate_name_is_refused() {
        assert!(fails("\\set a 1\n-- nothing\n").contains("no SQL statement"));
        let e = fails("-- name: x\nSELECT 1;\n-- name: x\nSELECT 2;");
        assert!(e.starts_with("w.sql:4:") && e.contains("twice"), "{e}");
    }
}
