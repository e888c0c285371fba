//! The workload the index advisor works on, as [`Query`]s: pg_stat_statements of the
//! current database, `--query` arguments, `--file` SQL files and server logs
//! (log_min_duration_statement and auto_explain output, in the stderr, csvlog and jsonlog
//! formats), grouped by pg_query fingerprint ([`group`]).
//!
//! Only [`stat_statements`] talks to a server; the log and file readers are pure functions of
//! their text (the `parse_*` functions), so each format is tested on samples without one.
//! Statements that do not parse are kept, each on its own (empty fingerprint), so the advisor
//! can say so; utility statements and pgopt's own catalog reads are left out of the workload.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use tokio_postgres::error::SqlState;

use super::catalog::referenced_tables;
use super::model::{Query, Source};
use crate::db::Conn;
use crate::error::{Error, Result};
use crate::ident::Ident;

const EXTENSION_SQL: &str = include_str!("../sql/statements_extension.sql");
const WORKLOAD_SQL: &str = include_str!("../sql/indexes_workload.sql");
const SET_LOCAL_SQL: &str = include_str!("../sql/set_local.sql");

/// What [`stat_statements`] reads.
#[derive(Debug, Clone)]
pub struct StatOptions {
    /// The top statements by total_exec_time kept (after leaving out utility statements and
    /// catalog reads).
    pub limit: usize,
    /// Statements called fewer times are left out.
    pub min_calls: i64,
}

impl Default for StatOptions {
    fn default() -> Self {
        StatOptions {
            limit: 500,
            min_calls: 1,
        }
    }
}

/// The top statements of pg_stat_statements in the database `conn` is connected to, by total
/// execution time, weighted by their calls and mean time. An error that says how to enable the
/// extension when it is not installed or not loaded.
pub async fn stat_statements(conn: &Conn, opts: &StatOptions) -> Result<Vec<Query>> {
    let enable = |why: String| {
        Error::BadInput(format!(
            "{why}. To read the workload from it: add pg_stat_statements to \
             shared_preload_libraries (ALTER SYSTEM SET shared_preload_libraries = \
             'pg_stat_statements', keeping any library already listed), restart the server, \
             then run CREATE EXTENSION pg_stat_statements in database {}; or give the \
             statements with --query, --file or --log",
            conn.database
        ))
    };
    let Some(ext) = conn
        .query_opt("looking for pg_stat_statements", EXTENSION_SQL, &[])
        .await?
    else {
        return Err(enable(format!(
            "pg_stat_statements is not installed in database {}",
            conn.database
        )));
    };
    let schema: String = ext.get("schema");
    let version: String = ext.get("version");
    if !version_at_least(&version, (1, 8)) {
        return Err(Error::BadInput(format!(
            "pg_stat_statements {version} is older than 1.8 (no total_exec_time): run ALTER \
             EXTENSION pg_stat_statements UPDATE, or give the statements with --query, --file \
             or --log"
        )));
    }
    // The function lives in the extension's schema: on the search_path of a read-only
    // transaction of its own (a value, quoted as an identifier; gone at its end).
    let fetch = i64::try_from(opts.limit.saturating_mul(4).saturating_add(50)).unwrap_or(i64::MAX);
    conn.batch("reading pg_stat_statements", "BEGIN READ ONLY")
        .await?;
    let read = async {
        let search_path = format!("{}, pg_catalog", Ident::new(&schema));
        conn.query_one(
            "setting search_path for pg_stat_statements",
            SET_LOCAL_SQL,
            &[&"search_path", &search_path],
        )
        .await?;
        conn.query(
            "reading pg_stat_statements",
            WORKLOAD_SQL,
            &[&opts.min_calls, &fetch],
        )
        .await
    }
    .await;
    let end = if read.is_ok() { "COMMIT" } else { "ROLLBACK" };
    if !read.as_ref().is_err_and(|e| e.is_connection_lost()) {
        conn.batch("ending the pg_stat_statements read", end)
            .await?;
    }
    let rows = match read {
        Ok(rows) => rows,
        Err(e) if e.sqlstate() == Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE) => {
            return Err(enable(format!(
                "pg_stat_statements is installed but not loaded ({e})"
            )));
        }
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for r in rows {
        if out.len() >= opts.limit {
            break;
        }
        let text: Option<String> = r.get("query");
        let Some(text) = text else { continue };
        if skip_reason(&text).is_some() {
            continue;
        }
        let queryid: i64 = r.get("queryid");
        let calls: i64 = r.get("calls");
        let mean: f64 = r.get("mean_exec_time_ms");
        out.push(query(
            text,
            calls,
            Some(mean),
            Source::StatStatements { queryid },
        ));
    }
    Ok(out)
}

fn version_at_least(v: &str, min: (u32, u32)) -> bool {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= min
}

/// One statement of the workload, fingerprinted (empty when it does not parse).
fn query(text: String, calls: i64, mean_ms: Option<f64>, source: Source) -> Query {
    Query {
        fingerprint: fingerprint(&text),
        text,
        calls,
        mean_ms,
        source,
    }
}

/// pg_query's fingerprint in hex; empty when the statement does not parse.
pub fn fingerprint(text: &str) -> String {
    pg_query::fingerprint(text)
        .map(|f| f.hex)
        .unwrap_or_default()
}

/// Why a statement is no part of the workload an index could serve, if it is not: a utility
/// statement (BEGIN, SET, DDL, ...), or one that reads no user table (pgopt's own catalog
/// reads, `SELECT 1`). A statement that does not parse is kept (the advisor reports it).
pub fn skip_reason(text: &str) -> Option<&'static str> {
    let parsed = pg_query::parse(text).ok()?;
    let dml = parsed.protobuf.stmts.iter().all(|s| {
        use pg_query::NodeEnum::*;
        matches!(
            s.stmt.as_ref().and_then(|n| n.node.as_ref()),
            Some(SelectStmt(_) | InsertStmt(_) | UpdateStmt(_) | DeleteStmt(_) | MergeStmt(_))
        )
    });
    if !dml || parsed.protobuf.stmts.is_empty() {
        return Some("utility statement");
    }
    let tables = referenced_tables(&[text]);
    let system = |(schema, name): &(Option<String>, String)| {
        matches!(schema.as_deref(), Some("pg_catalog" | "information_schema"))
            || (schema.is_none() && name.starts_with("pg_"))
    };
    if tables.iter().all(system) {
        return Some("reads no user table");
    }
    None
}

/// `--query SQL` arguments, each one statement of the workload run once.
pub fn from_queries(sqls: &[String]) -> Vec<Query> {
    sqls.iter()
        .map(|s| query(s.trim().to_string(), 1, None, Source::Argument))
        .collect()
}

/// The statements of a SQL file, each with the line it starts on.
pub fn from_file(path: &Path) -> Result<Vec<Query>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::input_file(path, &e))?;
    Ok(parse_sql_file(&text, &path.display().to_string()))
}

/// The statements of SQL text (split with the real parser; at the scanner's `;` tokens when a
/// statement does not parse, so that one is kept on its own and the rest still split right).
pub fn parse_sql_file(text: &str, label: &str) -> Vec<Query> {
    let pieces = pg_query::split_with_parser(text).unwrap_or_else(|_| split_on_semicolons(text));
    pieces
        .into_iter()
        .filter_map(|piece| {
            let start = piece.as_ptr() as usize - text.as_ptr() as usize;
            let body = strip_leading_comments(piece);
            if body.trim().is_empty() {
                return None;
            }
            let offset = start + (piece.len() - body.len());
            let line = 1 + text[..offset].matches('\n').count();
            Some(query(
                body.trim_end().trim_end_matches(';').trim_end().to_string(),
                1,
                None,
                Source::File {
                    path: label.to_string(),
                    line,
                },
            ))
        })
        .collect()
}

/// `text` cut at each `;` token (the scanner knows literals, comments and dollar quotes):
/// for text with a statement the parser rejects, which is kept whole between its `;`s.
fn split_on_semicolons(text: &str) -> Vec<&str> {
    let Ok(scan) = pg_query::scan(text) else {
        return vec![text];
    };
    let mut out = Vec::new();
    let mut at = 0;
    for t in &scan.tokens {
        if t.token == pg_query::protobuf::Token::Ascii59 as i32 {
            let end = t.start as usize;
            out.push(&text[at..end]);
            at = t.end as usize;
        }
    }
    out.push(&text[at..]);
    out
}

/// `s` from its first character that is neither white space nor in a `--` or `/* */`
/// comment.
fn strip_leading_comments(mut s: &str) -> &str {
    loop {
        let t = s.trim_start();
        if let Some(rest) = t.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = t.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return t;
        }
    }
}

/// A server log's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Stderr,
    Csv,
    Json,
}

/// What a log gave: its statements (one per logged run, not yet grouped), its format, how
/// many of its entries were not statements (other messages, utility statements, catalog
/// reads), how many were of another database than the one asked for, and whether any entry
/// said which database it is of.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRead {
    pub queries: Vec<Query>,
    pub format: LogFormat,
    pub skipped: usize,
    pub other_databases: usize,
    pub database_known: bool,
}

/// The statements of a server log (stderr, csvlog or jsonlog, told apart by the first line),
/// with log_min_duration_statement's durations or auto_explain's plans; only those of
/// `database` when it is given and the log names each entry's database (see [`read_log`]).
pub fn from_log(path: &Path, database: Option<&str>) -> Result<Vec<Query>> {
    let read = read_log(path, database)?;
    if read.skipped > 0 || read.other_databases > 0 {
        tracing::info!(
            "{}: {} log entries are not statements of the workload and {} are of other \
             databases; both were skipped",
            path.display(),
            read.skipped,
            read.other_databases
        );
    }
    Ok(read.queries)
}

/// What several logs gave for one database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogsRead {
    pub queries: Vec<Query>,
    /// Entries of other databases, left out.
    pub other_databases: usize,
    /// The logs with statements that do not say which database each entry is of (an stderr
    /// log whose log_line_prefix has no recognisable %d): all their statements were kept.
    pub unfiltered: Vec<String>,
}

impl LogsRead {
    /// The one line to tell the user when some logs could not be filtered.
    pub fn note(&self, database: &str) -> Option<String> {
        if self.unfiltered.is_empty() {
            return None;
        }
        Some(format!(
            "{}: the log does not say which database each entry is of, so the statements of \
             every database are read, not only {database}'s. csvlog and jsonlog always say it; \
             for stderr add %d to log_line_prefix as db=%d (or %u@%d at its end)",
            self.unfiltered.join(", ")
        ))
    }
}

/// The statements of every log of `paths` that are of `database` ([`read_log`] on each).
pub fn from_logs(paths: &[std::path::PathBuf], database: &str) -> Result<LogsRead> {
    let mut out = LogsRead::default();
    for path in paths {
        let read = read_log(path, Some(database))?;
        if !read.database_known && !read.queries.is_empty() {
            out.unfiltered.push(path.display().to_string());
        }
        if read.skipped > 0 {
            tracing::info!(
                "{}: {} log entries are not statements of the workload and were skipped",
                path.display(),
                read.skipped
            );
        }
        out.other_databases += read.other_databases;
        out.queries.extend(read.queries);
    }
    Ok(out)
}

/// [`from_log`] with the format and the counts of skipped entries.
///
/// With `database`, an entry that names another database is left out: csvlog's
/// database_name column, jsonlog's `dbname`, and in stderr the database log_line_prefix
/// puts before the severity when its `%d` is written as `db=%d`, `database=%d` or
/// `dbname=%d` (ended by a space, comma, semicolon or bracket), or as the `%u@%d` word that
/// ends the prefix (Debian's default '%m [%p] %q%u@%d '). An entry that names none (a
/// prefix without %d, a background process) is kept.
pub fn read_log(path: &Path, database: Option<&str>) -> Result<LogRead> {
    let open = || std::fs::File::open(path).map_err(|e| Error::input_file(path, &e));
    let mut first = String::new();
    let mut probe = BufReader::new(open()?);
    loop {
        first.clear();
        let n = probe
            .read_line(&mut first)
            .map_err(|e| Error::input_file(path, &e))?;
        if n == 0 || !first.trim().is_empty() {
            break;
        }
    }
    let label = path.display().to_string();
    let reader = BufReader::new(open()?);
    let read = match detect(&first) {
        LogFormat::Stderr => parse_stderr(reader, &label, database),
        LogFormat::Csv => parse_csv(reader, &label, database),
        LogFormat::Json => parse_json(reader, &label, database),
    };
    read.map_err(|reason| Error::InputFile {
        path: label.clone(),
        reason,
    })
}

/// The format of a log from its first non-empty line: a JSON object, a CSV record whose first
/// field is a timestamp, else stderr text.
pub fn detect(first_line: &str) -> LogFormat {
    let line = first_line.trim_start();
    if line.starts_with('{') {
        return LogFormat::Json;
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    if let Some(Ok(rec)) = rdr.records().next() {
        let ts = rec.get(0).unwrap_or("");
        if rec.len() >= 14 && ts.len() >= 19 && ts.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
            return LogFormat::Csv;
        }
    }
    LogFormat::Stderr
}

/// Severity markers of stderr log lines (`<prefix>LOG:  message`).
const SEVERITIES: &[&str] = &[
    "LOG",
    "DETAIL",
    "STATEMENT",
    "ERROR",
    "WARNING",
    "HINT",
    "CONTEXT",
    "FATAL",
    "PANIC",
    "NOTICE",
    "INFO",
    "DEBUG",
    "DEBUG1",
    "DEBUG2",
    "DEBUG3",
    "DEBUG4",
    "DEBUG5",
    "LOCATION",
];

/// The prefix, severity and message of a stderr log line, found after whatever
/// log_line_prefix put before it: the first `WORD:  ` whose word is a severity.
fn split_severity(line: &str) -> Option<(&str, &str, &str)> {
    let mut from = 0;
    while let Some(i) = line[from..].find(":  ") {
        let at = from + i;
        let word_start = line[..at]
            .rfind(|c: char| !c.is_ascii_alphanumeric())
            .map_or(0, |p| p + 1);
        let word = &line[word_start..at];
        if SEVERITIES.contains(&word) {
            return Some((&line[..word_start], word, &line[at + 3..]));
        }
        from = at + 3;
    }
    None
}

/// The database a stderr line's log_line_prefix names (see [`read_log`]): `db=NAME`,
/// `database=NAME` or `dbname=NAME`, else the `user@NAME` word that ends the prefix. None
/// when it names none, or an empty or `[unknown]` one.
pub fn prefix_database(prefix: &str) -> Option<&str> {
    let known = |name: &str| !name.is_empty() && name != "[unknown]";
    for key in ["dbname=", "database=", "db="] {
        let mut from = 0;
        while let Some(i) = prefix[from..].find(key) {
            let at = from + i;
            let boundary = !prefix[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            if boundary {
                let rest = &prefix[at + key.len()..];
                let end = rest
                    .find([' ', '\t', ',', ';', ']', ')'])
                    .unwrap_or(rest.len());
                let name = &rest[..end];
                return known(name).then_some(name);
            }
            from = at + key.len();
        }
    }
    let last = prefix.split_whitespace().last()?;
    let (_, name) = last.rsplit_once('@')?;
    if name == "[unknown]" {
        return None;
    }
    let name = name.trim_end_matches([']', ')', ':', ',', ';']);
    known(name).then_some(name)
}

/// A log entry being read: severity, message (continuation lines joined with newlines), the
/// line it starts on and the database its prefix names.
struct Entry {
    severity: String,
    message: String,
    line: usize,
    database: Option<String>,
}

/// The stderr format: entries start with log_line_prefix and a severity; a line that starts
/// with a tab continues the entry before it. A `DETAIL:  parameters: ...` entry right after
/// an `execute` one gives its parameters.
pub fn parse_stderr(
    reader: impl Read,
    label: &str,
    database: Option<&str>,
) -> std::result::Result<LogRead, String> {
    let mut out = Gather::new(LogFormat::Stderr, database);
    // The entry being read (continuation lines still to come), and the one before it, kept
    // until the next one shows whether it is its DETAIL.
    let mut current: Option<Entry> = None;
    let mut previous: Option<Entry> = None;
    let handle = |out: &mut Gather, e: Entry, detail: Option<&str>| {
        if out.of_other_database(e.database.as_deref()) {
            return;
        }
        match (e.severity == "LOG")
            .then(|| statement_of(&e.message, detail))
            .flatten()
        {
            Some((ms, text)) => out.push(text, ms, label, e.line),
            None => out.skip(),
        }
    };
    let complete = |out: &mut Gather, previous: &mut Option<Entry>, e: Entry| match previous.take()
    {
        Some(p) if e.severity == "DETAIL" => handle(out, p, Some(&e.message)),
        Some(p) => {
            handle(out, p, None);
            *previous = Some(e);
        }
        None => *previous = Some(e),
    };
    for (no, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| format!("reading line {}: {e}", no + 1))?;
        let line = line.trim_end_matches('\r');
        if let Some(cont) = line.strip_prefix('\t') {
            match current.as_mut() {
                Some(e) => {
                    e.message.push('\n');
                    e.message.push_str(cont);
                }
                None => out.skip(),
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let Some((prefix, severity, message)) = split_severity(line) else {
            out.skip();
            continue;
        };
        if let Some(e) = current.take() {
            complete(&mut out, &mut previous, e);
        }
        current = Some(Entry {
            severity: severity.to_string(),
            message: message.to_string(),
            line: no + 1,
            database: prefix_database(prefix).map(str::to_string),
        });
    }
    if let Some(e) = current.take() {
        complete(&mut out, &mut previous, e);
    }
    if let Some(p) = previous.take() {
        handle(&mut out, p, None);
    }
    Ok(out.out)
}

/// csvlog: one record per entry (quoted fields may span lines); the database, severity,
/// message and detail columns.
pub fn parse_csv(
    reader: impl Read,
    label: &str,
    database: Option<&str>,
) -> std::result::Result<LogRead, String> {
    const DATABASE: usize = 2;
    const SEVERITY: usize = 11;
    const MESSAGE: usize = 13;
    const DETAIL: usize = 14;
    let mut out = Gather::new(LogFormat::Csv, database);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut rec = csv::StringRecord::new();
    loop {
        let line = rdr.position().line() as usize;
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(format!("csvlog record at line {line}: {e}")),
        }
        if out.of_other_database(rec.get(DATABASE)) {
            continue;
        }
        let severity = rec.get(SEVERITY).unwrap_or("");
        let message = rec.get(MESSAGE).unwrap_or("");
        let detail = rec.get(DETAIL).filter(|d| !d.is_empty());
        match (severity == "LOG")
            .then(|| statement_of(message, detail))
            .flatten()
        {
            Some((ms, text)) => out.push(text, ms, label, line),
            None => out.skip(),
        }
    }
    Ok(out.out)
}

/// jsonlog: one JSON object per line; its `dbname`, `error_severity`, `message` and `detail`.
pub fn parse_json(
    reader: impl Read,
    label: &str,
    database: Option<&str>,
) -> std::result::Result<LogRead, String> {
    let mut out = Gather::new(LogFormat::Json, database);
    for (no, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| format!("reading line {}: {e}", no + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            out.skip();
            continue;
        };
        let field = |k: &str| v.get(k).and_then(|x| x.as_str());
        if out.of_other_database(field("dbname")) {
            continue;
        }
        let found = (field("error_severity") == Some("LOG"))
            .then(|| statement_of(field("message").unwrap_or(""), field("detail")))
            .flatten();
        match found {
            Some((ms, text)) => out.push(text, ms, label, no + 1),
            None => out.skip(),
        }
    }
    Ok(out.out)
}

/// What a log reader gathers: the statements and skipped entries, and for each fingerprint
/// seen whether it is workload (parsing once per fingerprint, not once per logged run).
struct Gather {
    out: LogRead,
    workload: HashMap<String, bool>,
    /// The database whose entries are kept (None: every one).
    database: Option<String>,
}

impl Gather {
    fn new(format: LogFormat, database: Option<&str>) -> Gather {
        Gather {
            out: LogRead {
                queries: Vec::new(),
                format,
                skipped: 0,
                other_databases: 0,
                database_known: false,
            },
            workload: HashMap::new(),
            database: database.map(str::to_string),
        }
    }

    /// Whether an entry that names `database` (None or empty: names none) is of another
    /// database than the one kept; counts it when so.
    fn of_other_database(&mut self, database: Option<&str>) -> bool {
        let Some(name) = database.filter(|d| !d.is_empty()) else {
            return false;
        };
        self.out.database_known = true;
        let other = self.database.as_deref().is_some_and(|want| want != name);
        if other {
            self.out.other_databases += 1;
        }
        other
    }

    fn skip(&mut self) {
        self.out.skipped += 1;
    }

    fn push(&mut self, text: String, ms: Option<f64>, label: &str, line: usize) {
        let fingerprint = fingerprint(&text);
        let keep = if fingerprint.is_empty() {
            true
        } else {
            *self
                .workload
                .entry(fingerprint.clone())
                .or_insert_with(|| skip_reason(&text).is_none())
        };
        if !keep {
            self.out.skipped += 1;
            return;
        }
        self.out.queries.push(Query {
            fingerprint,
            text,
            calls: 1,
            mean_ms: ms,
            source: Source::Log {
                path: label.to_string(),
                line,
            },
        });
    }
}

/// The statement a LOG message holds, with its duration when logged: `[duration: N ms  ]
/// statement: SQL`, `[duration: N ms  ]execute NAME: SQL` (parameters from `detail`), or
/// auto_explain's `duration: N ms  plan:` with the query text in text or JSON format.
pub fn statement_of(message: &str, detail: Option<&str>) -> Option<(Option<f64>, String)> {
    let (ms, rest) = match message.strip_prefix("duration: ") {
        Some(d) => {
            let (num, rest) = d.split_once(" ms")?;
            (Some(num.trim().parse::<f64>().ok()?), rest.trim_start())
        }
        None => (None, message),
    };
    if let Some(sql) = rest.strip_prefix("statement: ") {
        return Some((ms, clean(sql)));
    }
    if let Some(named) = rest.strip_prefix("execute ") {
        let (_, sql) = named.split_once(": ")?;
        let params = detail
            .and_then(|d| d.trim_start().strip_prefix("parameters: "))
            .map(parse_parameters)
            .unwrap_or_default();
        return Some((ms, substitute(&clean(sql), &params)));
    }
    if let Some(plan) = rest.strip_prefix("plan:") {
        return query_text_of_plan(plan).map(|t| (ms, clean(&t)));
    }
    None
}

fn clean(sql: &str) -> String {
    sql.trim().trim_end_matches(';').trim_end().to_string()
}

/// The query text of an auto_explain plan: the JSON plan's "Query Text", or the text
/// format's `Query Text:` up to the first line of the plan itself.
fn query_text_of_plan(plan: &str) -> Option<String> {
    let body = plan.trim_start();
    if body.starts_with('{') || body.starts_with('[') {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        let v = if v.is_array() { v.get(0)? } else { &v };
        return v.get("Query Text")?.as_str().map(str::to_string);
    }
    let mut lines = body.lines();
    let first = lines.find_map(|l| l.trim_start().strip_prefix("Query Text: "))?;
    let mut text = first.to_string();
    for l in lines {
        if is_plan_line(l) {
            break;
        }
        text.push('\n');
        text.push_str(l);
    }
    Some(text)
}

/// Whether a line of auto_explain's text output belongs to the plan, not to the query text.
fn is_plan_line(l: &str) -> bool {
    const HEADS: &[&str] = &[
        "Query Parameters:",
        "Planning Time:",
        "Planning:",
        "Execution Time:",
        "JIT:",
        "Settings:",
        "Trigger ",
    ];
    l.contains("  (cost=")
        || l.contains("  (actual time=")
        || l.contains("  (actual rows=")
        || l.contains("(never executed)")
        || HEADS.iter().any(|h| l.starts_with(h))
}

/// `$1 = '42', $2 = NULL, $3 = 'it''s'` as (number, SQL literal) pairs.
fn parse_parameters(s: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some(r) = rest.strip_prefix('$') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(n) = r[..digits].parse::<usize>() else {
            break;
        };
        let Some(r) = r[digits..].trim_start().strip_prefix('=') else {
            break;
        };
        let r = r.trim_start();
        let (value, after) = if let Some(v) = r.strip_prefix("NULL") {
            ("NULL".to_string(), v)
        } else if r.starts_with('\'') {
            // A quoted literal; '' inside is an escaped quote.
            let bytes = r.as_bytes();
            let mut i = 1;
            loop {
                match bytes.get(i) {
                    None => return out,
                    Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    Some(b'\'') => break,
                    Some(_) => i += 1,
                }
            }
            (r[..=i].to_string(), &r[i + 1..])
        } else {
            break;
        };
        out.push((n, value));
        rest = after.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// `sql` with each `$n` parameter (a token, not inside a literal or comment) replaced by its
/// value; parameters without one stay.
fn substitute(sql: &str, params: &[(usize, String)]) -> String {
    if params.is_empty() {
        return sql.to_string();
    }
    let Ok(scan) = pg_query::scan(sql) else {
        return sql.to_string();
    };
    let values: HashMap<usize, &str> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for t in &scan.tokens {
        if t.token != pg_query::protobuf::Token::Param as i32 {
            continue;
        }
        let (s, e) = (t.start as usize, t.end as usize);
        let Some(v) = sql
            .get(s + 1..e)
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| values.get(&n))
        else {
            continue;
        };
        out.push_str(&sql[at..s]);
        out.push_str(v);
        at = e;
    }
    out.push_str(&sql[at..]);
    out
}

/// One query per fingerprint: calls summed, the mean time weighted by calls (over the
/// statements whose time is known), the first text and source kept, in the order first
/// seen. Statements that do not parse (empty fingerprint) stay, each on its own.
pub fn group(queries: Vec<Query>) -> Vec<Query> {
    let mut out: Vec<Query> = Vec::new();
    // Per group: calls with a known time and their total time.
    let mut timed: Vec<(i64, f64)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for q in queries {
        let t = q
            .mean_ms
            .map_or((0, 0.0), |ms| (q.calls.max(1), ms * q.calls.max(1) as f64));
        if !q.fingerprint.is_empty() {
            if let Some(&i) = at.get(&q.fingerprint) {
                out[i].calls += q.calls;
                timed[i].0 += t.0;
                timed[i].1 += t.1;
                continue;
            }
            at.insert(q.fingerprint.clone(), out.len());
        }
        out.push(q);
        timed.push(t);
    }
    for (q, (calls, total)) in out.iter_mut().zip(timed) {
        q.mean_ms = (calls > 0).then(|| total / calls as f64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(r: &LogRead) -> Vec<&str> {
        r.queries.iter().map(|q| q.text.as_str()).collect()
    }

    #[test]
    fn stderr_log_reads_statements_with_any_prefix_and_multi_line_text() {
        let log = "2026-01-02 10:00:00.123 UTC [4242] app@shop LOG:  duration: 12.500 ms  statement: SELECT *\n\
                   \tFROM orders\n\
                   \tWHERE customer_id = 42\n\
                   2026-01-02 10:00:01.000 UTC [4242] app@shop LOG:  connection authorized: user=app\n\
                   [4243] LOG:  duration: 1.000 ms  statement: BEGIN\n\
                   < 2026-01-02 10:00:02 > LOG:  duration: 3.250 ms  statement: select id from orders where status = 'x: y';\n\
                   garbage line\n";
        let r = parse_stderr(log.as_bytes(), "pg.log", None).unwrap();
        assert_eq!(r.format, LogFormat::Stderr);
        assert_eq!(
            texts(&r),
            vec![
                "SELECT *\nFROM orders\nWHERE customer_id = 42",
                "select id from orders where status = 'x: y'"
            ]
        );
        assert_eq!(r.queries[0].mean_ms, Some(12.5));
        assert_eq!(
            r.queries[0].source,
            Source::Log {
                path: "pg.log".into(),
                line: 1
            }
        );
        assert_eq!(r.queries[1].mean_ms, Some(3.25));
        // connection line, BEGIN (utility) and the garbage line.
        assert_eq!(r.skipped, 3);
    }

    #[test]
    fn stderr_execute_takes_its_parameters_from_the_detail_line() {
        let log = "2026-01-02 10:00:00 UTC [1] LOG:  duration: 0.800 ms  execute <unnamed>: SELECT * FROM orders WHERE customer_id = $1 AND note = $2 AND x = '$1'\n\
                   2026-01-02 10:00:00 UTC [1] DETAIL:  parameters: $1 = '7', $2 = 'it''s, $2'\n\
                   2026-01-02 10:00:00 UTC [1] LOG:  duration: 0.900 ms  execute S_1: UPDATE orders SET status = $1 WHERE id = $2\n\
                   2026-01-02 10:00:00 UTC [1] DETAIL:  parameters: $1 = NULL, $2 = '10'\n\
                   2026-01-02 10:00:00 UTC [1] LOG:  duration: 0.100 ms  parse S_2: SELECT 1 FROM orders\n";
        let r = parse_stderr(log.as_bytes(), "pg.log", None).unwrap();
        assert_eq!(
            texts(&r),
            vec![
                "SELECT * FROM orders WHERE customer_id = '7' AND note = 'it''s, $2' AND x = '$1'",
                "UPDATE orders SET status = NULL WHERE id = '10'"
            ]
        );
        assert_eq!(r.queries[1].mean_ms, Some(0.9));
        assert_eq!(r.skipped, 1, "the parse message is not a run");
    }

    #[test]
    fn stderr_auto_explain_text_and_json_plans_give_their_query_text() {
        let log = "2026-01-02 10:00:00 UTC [1] LOG:  duration: 250.000 ms  plan:\n\
                   \tQuery Text: SELECT count(*)\n\
                   \t  FROM orders\n\
                   \t  WHERE created_at > now() - interval '1 day';\n\
                   \tAggregate  (cost=100.00..100.01 rows=1 width=8) (actual time=249.1..249.2 rows=1 loops=1)\n\
                   \t  ->  Seq Scan on orders  (cost=0.00..90.00 rows=4000 width=0)\n\
                   2026-01-02 10:00:01 UTC [1] LOG:  duration: 99.000 ms  plan:\n\
                   \t{\n\
                   \t  \"Query Text\": \"SELECT * FROM items\\n WHERE sku = 'a'\",\n\
                   \t  \"Plan\": {\"Node Type\": \"Seq Scan\"}\n\
                   \t}\n";
        let r = parse_stderr(log.as_bytes(), "pg.log", None).unwrap();
        assert_eq!(
            texts(&r),
            vec![
                "SELECT count(*)\n  FROM orders\n  WHERE created_at > now() - interval '1 day'",
                "SELECT * FROM items\n WHERE sku = 'a'"
            ]
        );
        assert_eq!(r.queries[0].mean_ms, Some(250.0));
        assert_eq!(r.queries[1].mean_ms, Some(99.0));
        assert_eq!(r.skipped, 0);
    }

    const CSV: &str = "2026-01-02 10:00:00.123 UTC,\"app\",\"shop\",4242,\"[local]\",6571,1,\"SELECT\",2026-01-02 09:00:00 UTC,3/10,0,LOG,00000,\"duration: 5.000 ms  statement: SELECT *\n  FROM orders WHERE note = \"\"a,b\"\"\",,,,,,,,,\"psql\",\"client backend\",,0\n\
2026-01-02 10:00:01.000 UTC,\"app\",\"shop\",4242,\"[local]\",6571,2,\"SELECT\",2026-01-02 09:00:00 UTC,3/11,0,LOG,00000,\"duration: 2.000 ms  execute <unnamed>: SELECT * FROM orders WHERE id = $1\",\"parameters: $1 = '5'\",,,,,,,,\"psql\",\"client backend\",,0\n\
2026-01-02 10:00:02.000 UTC,\"app\",\"shop\",4242,\"[local]\",6571,3,\"idle\",2026-01-02 09:00:00 UTC,,0,LOG,00000,\"disconnection: session time: 0:00:01.000\",,,,,,,,,\"psql\",\"client backend\",,0\n";

    #[test]
    fn csvlog_reads_multi_line_quoted_messages_and_the_detail_column() {
        assert_eq!(detect(CSV.lines().next().unwrap()), LogFormat::Csv);
        let r = parse_csv(CSV.as_bytes(), "pg.csv", None).unwrap();
        assert_eq!(
            texts(&r),
            vec![
                "SELECT *\n  FROM orders WHERE note = \"a,b\"",
                "SELECT * FROM orders WHERE id = '5'"
            ]
        );
        assert_eq!(r.queries[0].mean_ms, Some(5.0));
        assert_eq!(
            r.queries[1].source,
            Source::Log {
                path: "pg.csv".into(),
                line: 3
            },
            "the second record starts on line 3 (the first spans two)"
        );
        assert_eq!(r.skipped, 1);
    }

    #[test]
    fn jsonlog_reads_message_and_detail_per_line() {
        let log = concat!(
            r#"{"timestamp":"2026-01-02 10:00:00.000 UTC","pid":1,"error_severity":"LOG","message":"duration: 7.000 ms  statement: SELECT * FROM orders\nWHERE id = 1"}"#,
            "\n",
            r#"{"timestamp":"2026-01-02 10:00:00.000 UTC","pid":1,"error_severity":"LOG","message":"duration: 1.000 ms  execute s1: SELECT * FROM orders WHERE id = $1","detail":"parameters: $1 = '3'"}"#,
            "\n",
            r#"{"timestamp":"2026-01-02 10:00:00.000 UTC","pid":1,"error_severity":"LOG","message":"duration: 30.000 ms  plan:\n{\n  \"Query Text\": \"SELECT * FROM items WHERE sku = 'b'\",\n  \"Plan\": {}\n}"}"#,
            "\n",
            r#"{"timestamp":"2026-01-02 10:00:00.000 UTC","pid":1,"error_severity":"ERROR","message":"syntax error"}"#,
            "\nnot json\n"
        );
        assert_eq!(detect(log.lines().next().unwrap()), LogFormat::Json);
        let r = parse_json(log.as_bytes(), "pg.json", None).unwrap();
        assert_eq!(
            texts(&r),
            vec![
                "SELECT * FROM orders\nWHERE id = 1",
                "SELECT * FROM orders WHERE id = '3'",
                "SELECT * FROM items WHERE sku = 'b'"
            ]
        );
        assert_eq!(r.skipped, 2);
    }

    #[test]
    fn log_files_are_detected_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("a.log");
        std::fs::write(
            &stderr,
            "\n2026-01-02 10:00:00 UTC [1] LOG:  duration: 1.000 ms  statement: SELECT * FROM t\n",
        )
        .unwrap();
        let csv = dir.path().join("b.csv");
        std::fs::write(&csv, CSV).unwrap();
        assert_eq!(read_log(&stderr, None).unwrap().format, LogFormat::Stderr);
        assert_eq!(read_log(&csv, None).unwrap().format, LogFormat::Csv);
        assert_eq!(from_log(&csv, None).unwrap().len(), 2);
        let e = from_log(&dir.path().join("missing.log"), None).unwrap_err();
        assert!(e.is_bad_input(), "{e}");
    }

    #[test]
    fn stderr_prefix_names_the_database_in_the_documented_forms() {
        let db = prefix_database;
        assert_eq!(
            db("2026-01-02 10:00:00.123 UTC [4242] app@shop "),
            Some("shop")
        );
        assert_eq!(db("[4242] [app@shop] "), Some("shop"));
        assert_eq!(
            db("2026-01-02 10:00:00 UTC [1]: db=shop,user=app "),
            Some("shop")
        );
        assert_eq!(db("user=app database=shop "), Some("shop"));
        assert_eq!(db("[dbname=shop] "), Some("shop"));
        assert_eq!(
            db("pid=1 db=,user= "),
            None,
            "a background process names none"
        );
        assert_eq!(db("[4242] app@[unknown] "), None);
        assert_eq!(db("2026-01-02 10:00:00 UTC [1] "), None);
        assert_eq!(db("< 2026-01-02 10:00:02 > "), None);
        assert_eq!(db("mydb=x "), None, "db= only as a word of its own");
    }

    #[test]
    fn stderr_keeps_the_asked_databases_entries_and_their_details() {
        let log = "2026-01-02 10:00:00 UTC [1] app@shop LOG:  duration: 1.000 ms  execute s1: SELECT * FROM orders WHERE id = $1\n\
                   2026-01-02 10:00:00 UTC [1] app@shop DETAIL:  parameters: $1 = '7'\n\
                   2026-01-02 10:00:00 UTC [2] app@crm LOG:  duration: 2.000 ms  statement: SELECT * FROM leads\n\
                   \tWHERE id = 1\n\
                   2026-01-02 10:00:00 UTC [3] LOG:  checkpoint starting: time\n\
                   2026-01-02 10:00:01 UTC [1] app@shop LOG:  duration: 3.000 ms  statement: SELECT * FROM items\n";
        let r = parse_stderr(log.as_bytes(), "pg.log", Some("shop")).unwrap();
        assert_eq!(
            texts(&r),
            vec!["SELECT * FROM orders WHERE id = '7'", "SELECT * FROM items"]
        );
        assert!(r.database_known);
        assert_eq!(r.other_databases, 1);
        assert_eq!(
            r.skipped, 1,
            "the checkpoint line names no database: read, not a run"
        );
        let all = parse_stderr(log.as_bytes(), "pg.log", None).unwrap();
        assert_eq!(all.queries.len(), 3);
        let other = parse_stderr(log.as_bytes(), "pg.log", Some("crm")).unwrap();
        assert_eq!(texts(&other), vec!["SELECT * FROM leads\nWHERE id = 1"]);
    }

    #[test]
    fn stderr_without_the_database_in_its_prefix_is_read_whole() {
        let log = "2026-01-02 10:00:00 UTC [1] LOG:  duration: 1.000 ms  statement: SELECT * FROM a\n\
                   2026-01-02 10:00:00 UTC [2] LOG:  duration: 1.000 ms  statement: SELECT * FROM b\n";
        let r = parse_stderr(log.as_bytes(), "pg.log", Some("shop")).unwrap();
        assert_eq!(r.queries.len(), 2);
        assert!(!r.database_known);
        assert_eq!(r.other_databases, 0);
    }

    #[test]
    fn csvlog_and_jsonlog_keep_the_asked_databases_entries() {
        let r = parse_csv(CSV.as_bytes(), "pg.csv", Some("shop")).unwrap();
        assert_eq!(r.queries.len(), 2);
        assert!(r.database_known);
        let r = parse_csv(CSV.as_bytes(), "pg.csv", Some("crm")).unwrap();
        assert!(r.queries.is_empty());
        assert_eq!(r.other_databases, 3);
        let log = concat!(
            r#"{"dbname":"shop","error_severity":"LOG","message":"duration: 7.000 ms  statement: SELECT * FROM orders"}"#,
            "\n",
            r#"{"dbname":"crm","error_severity":"LOG","message":"duration: 7.000 ms  statement: SELECT * FROM leads"}"#,
            "\n",
            r#"{"error_severity":"LOG","message":"checkpoint complete"}"#,
            "\n",
        );
        let r = parse_json(log.as_bytes(), "pg.json", Some("crm")).unwrap();
        assert_eq!(texts(&r), vec!["SELECT * FROM leads"]);
        assert_eq!((r.other_databases, r.skipped), (1, 1));
        assert!(r.database_known);
    }

    #[test]
    fn sql_files_split_with_the_line_each_statement_starts_on() {
        let text = "-- orders\nSELECT * FROM orders\n  WHERE id = 1;\n\n/* two */ SELECT ';' FROM items;\nSELEC broken;\n";
        let qs = parse_sql_file(text, "w.sql");
        let got: Vec<(&str, usize)> = qs
            .iter()
            .map(|q| match &q.source {
                Source::File { line, .. } => (q.text.as_str(), *line),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("SELECT * FROM orders\n  WHERE id = 1", 2),
                ("SELECT ';' FROM items", 5),
                ("SELEC broken", 6)
            ]
        );
        assert!(qs[2].fingerprint.is_empty(), "kept, not parseable");
        assert!(!qs[0].fingerprint.is_empty());
    }

    #[test]
    fn group_sums_calls_and_weights_the_mean_by_calls() {
        let q = |text: &str, calls: i64, ms: Option<f64>| {
            query(text.to_string(), calls, ms, Source::Argument)
        };
        let grouped = group(vec![
            q("SELECT * FROM t WHERE a = 1", 1, Some(10.0)),
            q("SELEC nope", 1, None),
            q("SELECT * FROM t WHERE a = 2", 3, Some(2.0)),
            q("SELEC nope", 1, None),
            q("SELECT * FROM t WHERE b = 2", 2, None),
            q("select * from t where b = 7", 1, None),
        ]);
        assert_eq!(grouped.len(), 4);
        assert_eq!(
            grouped[0].text, "SELECT * FROM t WHERE a = 1",
            "first text kept"
        );
        assert_eq!(grouped[0].calls, 4);
        assert!((grouped[0].mean_ms.unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(grouped[1].text, "SELEC nope");
        assert_eq!(grouped[2].text, "SELEC nope", "unparseable ones stay apart");
        assert_eq!(grouped[3].calls, 3);
        assert_eq!(grouped[3].mean_ms, None);
    }

    #[test]
    fn utility_statements_and_catalog_reads_are_not_workload() {
        assert_eq!(skip_reason("BEGIN"), Some("utility statement"));
        assert_eq!(
            skip_reason("SET work_mem = '1MB'"),
            Some("utility statement")
        );
        assert_eq!(
            skip_reason("SELECT * FROM pg_catalog.pg_class c JOIN pg_namespace n ON true"),
            Some("reads no user table")
        );
        assert_eq!(skip_reason("SELECT 1"), Some("reads no user table"));
        assert_eq!(skip_reason("SELECT * FROM orders WHERE id = $1"), None);
        assert_eq!(
            skip_reason("SELEC nope"),
            None,
            "kept: the advisor reports it"
        );
    }
}
