//! pgbench scripts: custom files and the built-ins, parsed into a [`Script`].
//!
//! ```text
//! \set aid random(1, 100000 * :scale)
//! \set delta random(-5000, 5000)
//! BEGIN;
//! UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
//! END;
//! ```
//!
//! A file is one script and one run of it is one transaction, whatever it holds. Lines are
//! SQL (statements end at `;` or at a following meta-command; `--` comments and blank lines
//! are skipped) or meta-commands: `\set NAME EXPR` (pgbench's expression language,
//! src/bench/expr.rs) and `\sleep N [us|ms|s]` (N a number or a `:variable`). The other
//! meta-commands of pgbench (`\gset`, `\if`, `\setshell`, ...) and `\;` are refused with the
//! file and line, never misread. Each `:name` in SQL becomes a bind parameter of its own (`$1`,
//! `$2`, ... in order), sent as text for the server to type, as pgbench's extended mode does;
//! quoted strings, comments and `::` casts are left alone. Variables are pgbench's automatic
//! ones (`:client_id`, `:scale`, `:default_seed`, `:random_seed`), `--define` ones, and those
//! `\set` on an earlier line. A statement's name is its `-- name: NAME` comment, else
//! `<script>:<n>`.
//!
//! Parsing is pure; the file is read by [`load`].

use std::path::Path;

use super::expr::{self, Value};
use super::workload::{
    Binds, Block, Command, OpKind, Script, SleepFor, Statement, Workload, AUTOMATIC_VARS,
};
use crate::error::{Error, Result};

/// pgbench's built-in scripts, by the names of `pgbench -b`.
pub const BUILTINS: [(&str, &str); 3] = [
    ("tpcb-like", include_str!("builtin/tpcb-like.sql")),
    ("simple-update", include_str!("builtin/simple-update.sql")),
    ("select-only", include_str!("builtin/select-only.sql")),
];

/// Meta-commands of pgbench that pgopt does not run.
const UNSUPPORTED: [&str; 11] = [
    "gset",
    "aset",
    "if",
    "elif",
    "else",
    "endif",
    "setshell",
    "shell",
    "startpipeline",
    "endpipeline",
    "syncpipeline",
];

const SUPPORTED: &str = "pgopt runs \\set (pgbench expressions) and \\sleep; \
                         rewrite the script without it";

/// Splits `NAME@WEIGHT` (pgbench's `-f file@w`); the weight defaults to 1.
pub fn split_weight(spec: &str) -> Result<(&str, u32)> {
    if let Some((name, w)) = spec.rsplit_once('@') {
        if !name.is_empty() && !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()) {
            let weight = w.parse::<u32>().map_err(|_| {
                Error::BadInput(format!("--workload {spec}: the weight {w} is too large"))
            })?;
            return Ok((name, weight));
        }
    }
    Ok((spec, 1))
}

/// The built-in a name means: the exact name, else the one built-in it is a prefix of
/// (pgbench's `-b simple`); None when it names none, an error when several.
pub fn builtin_name(name: &str) -> Result<Option<&'static str>> {
    if let Some(b) = BUILTINS.iter().find(|b| b.0 == name) {
        return Ok(Some(b.0));
    }
    let matches: Vec<&str> = BUILTINS
        .iter()
        .map(|b| b.0)
        .filter(|b| !name.is_empty() && b.starts_with(name))
        .collect();
    match matches[..] {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(Error::BadInput(format!(
            "--workload {name}: ambiguous built-in name, it begins {}",
            matches.join(" and ")
        ))),
    }
}

/// A pgbench built-in script by name (or unique prefix), with `:scale` read from
/// pgbench_branches unless `--scale` is given.
pub fn builtin(name: &str, defines: &[(String, Value)]) -> Option<Result<Workload>> {
    let name = match builtin_name(name) {
        Ok(Some(n)) => n,
        Ok(None) => return None,
        Err(e) => return Some(Err(e)),
    };
    let (_, text) = BUILTINS.iter().find(|b| b.0 == name)?;
    Some(
        parse(&format!("built-in {name}"), name, text, defines).and_then(|mut s| {
            s.detects_scale = true;
            Workload::from_scripts(name, vec![s])
        }),
    )
}

/// Reads and parses a script file.
pub fn load(path: &Path, defines: &[(String, Value)]) -> Result<Workload> {
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
    let script = parse(&file, &stem, &text, defines)?;
    Workload::from_scripts(stem, vec![script])
}

/// Parses `text`; `file` names it in errors, `stem` names the script.
pub fn parse(file: &str, stem: &str, text: &str, defines: &[(String, Value)]) -> Result<Script> {
    let err = |line: usize, msg: String| Error::BadInput(format!("{file}:{line}: {msg}"));
    let mut vars: Vec<String> = AUTOMATIC_VARS.iter().map(|s| s.to_string()).collect();
    let mut initial = vec![Value::Int(0), Value::Int(1), Value::Int(0), Value::Int(0)];
    for (name, value) in defines {
        match vars.iter().position(|v| v == name) {
            Some(at) => initial[at] = value.clone(),
            None => {
                vars.push(name.clone());
                initial.push(value.clone());
            }
        }
    }
    let mut commands: Vec<Command> = Vec::new();
    let mut statements: Vec<Statement> = Vec::new();
    let mut sql = SqlScanner::default();

    let mut add_statement =
        |raw: RawStatement, vars: &[String], commands: &mut Vec<Command>| -> Result<()> {
            let st = finish_statement(raw, vars, &err)?;
            commands.push(Command::Sql(statements.len()));
            statements.push(st);
            Ok(())
        };

    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim();
        if sql.outside_literals() && trimmed.starts_with('\\') {
            // A meta-command ends the SQL before it.
            if let Some(done) = sql.finish() {
                add_statement(done, &vars, &mut commands)?;
            }
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
                    let lookup = |n: &str| vars.iter().position(|v| v == n);
                    let e = expr::parse(expr_text, &lookup)
                        .map_err(|m| err(line_no, format!("\\set {name}: {m}")))?;
                    let slot = match vars.iter().position(|v| v == name) {
                        Some(at) => at,
                        None => {
                            vars.push(name.to_string());
                            initial.push(Value::Null);
                            vars.len() - 1
                        }
                    };
                    commands.push(Command::Set(slot, e));
                }
                "sleep" => {
                    let sleep = parse_sleep(rest, &vars).map_err(|m| err(line_no, m))?;
                    commands.push(Command::Sleep(sleep));
                }
                other if UNSUPPORTED.contains(&other) => {
                    return Err(err(
                        line_no,
                        format!("\\{other} is not supported: {SUPPORTED}"),
                    ))
                }
                other => {
                    return Err(err(
                        line_no,
                        format!("unknown meta-command \\{other}: {SUPPORTED}"),
                    ))
                }
            }
            continue;
        }
        for done in sql.feed_line(raw, line_no) {
            add_statement(done, &vars, &mut commands)?;
        }
        if let Some(at) = sql.backslash_semicolon {
            return Err(err(
                at,
                format!("\\; (several queries sent together) is not supported: {SUPPORTED}"),
            ));
        }
    }
    if let Some(done) = sql.finish() {
        add_statement(done, &vars, &mut commands)?;
    }
    if statements.is_empty() {
        return Err(Error::BadInput(format!(
            "{file}: no SQL statement found; a script needs at least one statement, ending with ;"
        )));
    }
    for (n, s) in statements.iter_mut().enumerate() {
        if s.name.is_empty() {
            s.name = format!("{stem}:{}", n + 1);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for s in &statements {
        if !seen.insert(s.name.clone()) {
            return Err(err(
                s.line,
                format!("the statement name {:?} is used twice", s.name),
            ));
        }
    }
    // pgbench aborts a client whose script ends inside a transaction block; refuse it now.
    let mut open: Option<usize> = None;
    for s in &statements {
        match s.block {
            Block::Opens => open = Some(s.line),
            Block::Closes => open = None,
            Block::Other => {}
        }
    }
    if let Some(line) = open {
        return Err(err(
            line,
            "the transaction block opened here is still open at the end of the script; \
             end it with END or COMMIT"
                .into(),
        ));
    }
    let kind = if statements.iter().all(|s| is_read(&s.sql)) {
        OpKind::Read
    } else {
        OpKind::Write
    };
    Ok(Script {
        name: stem.to_string(),
        weight: 1,
        kind,
        vars,
        initial,
        commands,
        statements,
        detects_scale: false,
    })
}

fn is_read(sql: &str) -> bool {
    let head = sql.trim_start().to_ascii_lowercase();
    [
        "select", "with", "values", "show", "begin", "start", "end", "commit", "rollback",
    ]
    .iter()
    .any(|k| head.starts_with(k))
}

/// `\sleep N [us|ms|s]`, N an integer or a `:variable`.
fn parse_sleep(rest: &str, vars: &[String]) -> std::result::Result<SleepFor, String> {
    let usage = "write \\sleep N [us|ms|s], N an integer or a :variable";
    let mut words = rest.split_whitespace();
    let amount = words
        .next()
        .ok_or_else(|| format!("\\sleep needs a time; {usage}"))?;
    let unit = match words.next() {
        None | Some("s") => 1_000_000,
        Some("ms") => 1_000,
        Some("us") => 1,
        Some(other) => return Err(format!("\\sleep: unknown unit {other:?}; {usage}")),
    };
    if words.next().is_some() {
        return Err(format!("\\sleep: too many words; {usage}"));
    }
    if let Some(name) = amount.strip_prefix(':') {
        let slot = vars.iter().position(|v| v == name).ok_or_else(|| {
            format!("\\sleep: undefined variable :{name}; define it on an earlier \\set line")
        })?;
        return Ok(SleepFor::Var(slot, unit));
    }
    let n: u64 = amount
        .parse()
        .map_err(|_| format!("\\sleep: {amount:?} is not a whole number; {usage}"))?;
    Ok(SleepFor::Micros(n.saturating_mul(unit)))
}

fn finish_statement(
    raw: RawStatement,
    vars: &[String],
    err: &impl Fn(usize, String) -> Error,
) -> Result<Statement> {
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
                            "undefined variable :{name}; define it first with \\set {name} ... \
                             or --define {name}=VALUE"
                        ),
                    )
                })?;
                // One parameter per occurrence, as pgbench: the server types each from its
                // own context (`id = :v AND name <> :v` is an int4 and a text).
                params.push(var);
                sql.push_str(&format!("${}", params.len()));
            }
        }
    }
    let sql = sql.trim().to_string();
    Ok(Statement {
        name: raw.name.unwrap_or_default(),
        block: Block::of(&sql),
        sql,
        line: raw.line,
        param_types: Vec::new(),
        binds: Binds::Vars(params),
    })
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
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
    /// The line of a `\\;` seen outside literals (refused by the parser).
    backslash_semicolon: Option<usize>,
}

impl SqlScanner {
    /// Not inside a quoted string or a block comment: a line starting with `\\` here is a
    /// meta-command.
    fn outside_literals(&self) -> bool {
        self.in_quote.is_none() && self.block_comment == 0
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
                b'\\' if b.get(i + 1) == Some(&b';') => {
                    self.backslash_semicolon.get_or_insert(line_no);
                    i += 2;
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

    fn ok(text: &str) -> Script {
        parse("w.sql", "w", text, &[]).unwrap()
    }

    fn fails(text: &str) -> String {
        parse("w.sql", "w", text, &[]).unwrap_err().to_string()
    }

    fn vars_of(s: &Statement) -> Vec<usize> {
        match &s.binds {
            Binds::Vars(v) => v.clone(),
            Binds::Generated(_) => panic!("generated"),
        }
    }

    #[test]
    fn a_file_is_one_script_whose_statements_run_in_order_with_its_sets() {
        let s = ok("\\set aid random(1, 100000 * :scale)\n\
                    BEGIN;\n\
                    SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n\
                    \\set x :aid + 1\n\
                    UPDATE t SET v = :x WHERE aid = :aid;\n\
                    END;\n");
        assert_eq!(s.statements.len(), 4);
        assert_eq!(
            s.statements[1].sql,
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
        );
        let aid = s.vars.iter().position(|v| v == "aid").unwrap();
        let x = s.vars.iter().position(|v| v == "x").unwrap();
        assert_eq!(vars_of(&s.statements[1]), vec![aid]);
        assert_eq!(vars_of(&s.statements[2]), vec![x, aid]);
        assert!(matches!(s.commands[0], Command::Set(slot, _) if slot == aid));
        assert_eq!(s.commands[1], Command::Sql(0));
        assert_eq!(s.commands[2], Command::Sql(1));
        assert!(matches!(s.commands[3], Command::Set(slot, _) if slot == x));
        assert_eq!(s.commands[5], Command::Sql(3));
        assert_eq!(s.statements[0].block, Block::Opens);
        assert_eq!(s.statements[3].block, Block::Closes);
        assert_eq!(s.kind, OpKind::Write);
        assert!(s.uses_variable(crate::bench::workload::SLOT_SCALE));
    }

    #[test]
    fn statements_are_numbered_or_named_by_comment() {
        let s = ok("-- a comment\nSELECT 1;\n-- name: second_one\nSELECT\n  2;\nSELECT 3");
        let names: Vec<_> = s.statements.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["w:1", "second_one", "w:3"]);
        assert_eq!(s.statements[1].line, 4);
        assert_eq!(s.statements[1].sql, "SELECT\n  2");
        assert_eq!(s.kind, OpKind::Read);
    }

    #[test]
    fn a_meta_command_ends_the_sql_before_it() {
        let s = ok("SELECT 1\n\\sleep 10 ms\nSELECT 2\n");
        assert_eq!(s.statements.len(), 2);
        assert_eq!(s.commands[1], Command::Sleep(SleepFor::Micros(10_000)));
    }

    #[test]
    fn sleep_takes_units_and_variables() {
        let sleep = |t: &str| ok(&format!("\\set n 3\n{t}\nSELECT 1;")).commands[1].clone();
        assert_eq!(
            sleep("\\sleep 2"),
            Command::Sleep(SleepFor::Micros(2_000_000))
        );
        assert_eq!(
            sleep("\\sleep 2 s"),
            Command::Sleep(SleepFor::Micros(2_000_000))
        );
        assert_eq!(
            sleep("\\sleep 5 ms"),
            Command::Sleep(SleepFor::Micros(5_000))
        );
        assert_eq!(sleep("\\sleep 7 us"), Command::Sleep(SleepFor::Micros(7)));
        let n = AUTOMATIC_VARS.len();
        assert_eq!(
            sleep("\\sleep :n ms"),
            Command::Sleep(SleepFor::Var(n, 1_000))
        );
        assert!(fails("\\sleep 1 min\nSELECT 1;").contains("unknown unit"));
        assert!(fails("\\sleep :nope\nSELECT 1;").contains(":nope"));
    }

    #[test]
    fn quotes_comments_and_casts_are_not_parameters_or_separators() {
        let s = ok("\\set x 5\nSELECT ':x;', \"a:x\", :x::int /* :y; */ -- :z;\n;");
        assert_eq!(s.statements.len(), 1);
        assert_eq!(
            s.statements[0].sql,
            "SELECT ':x;', \"a:x\", $1::int /* :y; */ -- :z;"
        );
    }

    #[test]
    fn each_occurrence_of_a_variable_is_a_parameter_of_its_own() {
        let s = ok("\\set v 5\nSELECT 1 WHERE :v = 5 AND 'x' <> :v;");
        assert_eq!(s.statements[0].sql, "SELECT 1 WHERE $1 = 5 AND 'x' <> $2");
        assert_eq!(vars_of(&s.statements[0]), vec![4, 4]);
    }

    #[test]
    fn unsupported_meta_commands_name_their_line_and_what_is_supported() {
        for cmd in [
            "\\gset",
            "\\if :x",
            "\\setshell x echo 1",
            "\\shell ls",
            "\\endif",
        ] {
            let e = fails(&format!("\\set x 1\nSELECT 1;\n\n{cmd}\n"));
            assert!(e.starts_with("w.sql:4:"), "{e}");
            assert!(e.contains("not supported") && e.contains("\\set"), "{e}");
        }
        let e = fails("SELECT 1;\n\\frobnicate\n");
        assert!(
            e.starts_with("w.sql:2:") && e.contains("unknown meta-command"),
            "{e}"
        );
        let e = fails("SELECT 1 \\; SELECT 2;\n");
        assert!(e.starts_with("w.sql:1:") && e.contains("\\;"), "{e}");
    }

    #[test]
    fn bad_expressions_name_their_line() {
        let e = fails("\\set a 1\n\\set b random(1)\nSELECT :b;");
        assert!(e.starts_with("w.sql:2:") && e.contains("takes 2"), "{e}");
        let e = fails("\\set b random(10, 1)\nSELECT :b;");
        assert!(
            e.starts_with("w.sql:1:") && e.contains("empty range"),
            "{e}"
        );
        let e = fails("\\set b 10 / (5 - 5)\nSELECT :b;");
        assert!(e.contains("division by zero"), "{e}");
        let e = fails("\\set b random_gaussian(1, 10, 1.0)\nSELECT :b;");
        assert!(
            e.starts_with("w.sql:1:") && e.contains("at least 2.0"),
            "{e}"
        );
    }

    #[test]
    fn an_undefined_variable_names_its_line() {
        let e = fails("\\set a random(1, 2)\nSELECT 1;\nSELECT *\nFROM t WHERE id = :aid;");
        assert!(e.starts_with("w.sql:4:") && e.contains(":aid"), "{e}");
        let e = fails("\\set a :b + 1\nSELECT :a;");
        assert!(e.starts_with("w.sql:1:") && e.contains(":b"), "{e}");
    }

    #[test]
    fn defines_and_automatic_variables_are_known() {
        let d = vec![("limit".to_string(), Value::Int(7))];
        let s = parse("w.sql", "w", "SELECT :limit, :client_id, :scale;", &d).unwrap();
        assert_eq!(vars_of(&s.statements[0]), vec![4, 0, 1]);
        assert_eq!(s.initial[4], Value::Int(7));
    }

    #[test]
    fn a_script_ending_inside_a_transaction_block_is_refused() {
        let e = fails("SELECT 1;\nBEGIN;\nSELECT 2;\n");
        assert!(e.starts_with("w.sql:2:") && e.contains("END"), "{e}");
        ok("BEGIN;\nSELECT 1;\nCOMMIT;");
    }

    #[test]
    fn a_file_without_statements_or_with_a_duplicate_name_is_refused() {
        assert!(fails("\\set a 1\n-- nothing\n").contains("no SQL statement"));
        let e = fails("-- name: x\nSELECT 1;\n-- name: x\nSELECT 2;");
        assert!(e.starts_with("w.sql:4:") && e.contains("twice"), "{e}");
    }

    #[test]
    fn the_builtins_parse_and_tpcb_like_is_one_transaction_of_five_statements() {
        for (name, _) in BUILTINS {
            let w = builtin(name, &[]).unwrap().unwrap();
            assert!(w.detects_scale(), "{name}");
        }
        let w = builtin("tpcb-like", &[]).unwrap().unwrap();
        let s = &w.scripts[0];
        assert_eq!(s.statements.len(), 7);
        assert_eq!(s.statements[0].sql, "BEGIN");
        assert_eq!(s.statements[6].sql, "END");
        assert_eq!(
            builtin("select-only", &[]).unwrap().unwrap().scripts[0]
                .statements
                .len(),
            1
        );
        assert_eq!(
            builtin("simple-update", &[]).unwrap().unwrap().scripts[0]
                .statements
                .len(),
            5
        );
        assert!(builtin("tpcc", &[]).is_none());
        // A unique prefix, as pgbench -b.
        assert_eq!(builtin_name("simple").unwrap(), Some("simple-update"));
        assert_eq!(builtin_name("tpcb").unwrap(), Some("tpcb-like"));
        assert!(builtin_name("s")
            .unwrap_err()
            .to_string()
            .contains("ambiguous"));
    }

    #[test]
    fn weights_split_from_names() {
        assert_eq!(split_weight("a.sql@3").unwrap(), ("a.sql", 3));
        assert_eq!(split_weight("select-only").unwrap(), ("select-only", 1));
        assert_eq!(split_weight("me@host/x.sql").unwrap(), ("me@host/x.sql", 1));
        assert_eq!(split_weight("x@0").unwrap(), ("x", 0));
        assert!(split_weight("x@99999999999").is_err());
    }
}
