//! A plan to look at for a regressed statement: the latest auto_explain entry for its text
//! in the server's log, read through the server (`pg_current_logfile()` and
//! `pg_read_binary_file()`) when the role may.
//!
//! Bounded: only the last [`TAIL_BYTES`] of the current log file are read, under the
//! connection's statement timeout; an entry is cut at [`MAX_ENTRY_BYTES`]. Reads only the
//! statement text pgopt already has (from pg_stat_statements), never text from a request.
//! Without the privileges, or without `logging_collector`, it says why and what to do.

use crate::db::Conn;
use crate::error::Result;

/// How much of the end of the log file is read.
pub const TAIL_BYTES: i64 = 4 * 1024 * 1024;
/// The longest entry returned.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;

/// What the look-up found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanLookup {
    /// The log entry: auto_explain's header line and the plan.
    Found(String),
    /// No plan, and why (with what to do about it).
    NotFound(String),
}

/// The latest auto_explain entry for `statement` (pg_stat_statements' normalized text) in
/// the server log.
pub async fn latest_plan(conn: &Conn, statement: &str) -> Result<PlanLookup> {
    let row = conn
        .query_one(
            "may the role read the server log",
            "SELECT has_function_privilege('pg_current_logfile()', 'EXECUTE') \
                    AND has_function_privilege('pg_stat_file(text)', 'EXECUTE') \
                    AND has_function_privilege('pg_read_binary_file(text, bigint, bigint)', 'EXECUTE')",
            &[],
        )
        .await?;
    let may: Option<bool> = row.get(0);
    if may != Some(true) {
        return Ok(PlanLookup::NotFound(
            "the role may not read the server log: grant it pg_monitor and \
             pg_read_server_files (or EXECUTE on pg_current_logfile, pg_stat_file and \
             pg_read_binary_file), or look for auto_explain's entry in the log yourself"
                .into(),
        ));
    }
    let row = conn
        .query_one("the current log file", "SELECT pg_current_logfile()", &[])
        .await?;
    let Some(file): Option<String> = row.get(0) else {
        return Ok(PlanLookup::NotFound(
            "the server does not run logging_collector, so its log cannot be read through \
             it: turn logging_collector on, or look for auto_explain's entry where the log goes"
                .into(),
        ));
    };
    let row = conn
        .query_one(
            "the log file's size",
            "SELECT size FROM pg_stat_file($1)",
            &[&file],
        )
        .await?;
    let size: i64 = row.get(0);
    let offset = (size - TAIL_BYTES).max(0);
    let row = conn
        .query_one(
            "the end of the log file",
            "SELECT pg_read_binary_file($1, $2, $3)",
            &[&file, &offset, &TAIL_BYTES],
        )
        .await?;
    let bytes: Vec<u8> = row.get(0);
    let log = String::from_utf8_lossy(&bytes);
    Ok(match find_plan(&log, statement) {
        Some(entry) => PlanLookup::Found(entry),
        None => PlanLookup::NotFound(
            "auto_explain logged no plan for this statement in the end of the current log: \
             load auto_explain (shared_preload_libraries or session_preload_libraries) and set \
             auto_explain.log_min_duration below the statement's time"
                .into(),
        ),
    })
}

/// The last auto_explain entry (text format) in `log` whose text matches `statement`:
/// its constants may stand where the normalized text has `$1`, `$2`...
pub fn find_plan(log: &str, statement: &str) -> Option<String> {
    let fragments: Vec<String> = split_placeholders(statement)
        .iter()
        .map(|f| squash(f))
        .filter(|f| !f.is_empty())
        .collect();
    if fragments.is_empty() {
        return None;
    }
    let mut found = None;
    let mut lines = log.lines().peekable();
    while let Some(line) = lines.next() {
        if !(line.contains("duration: ") && line.trim_end().ends_with("plan:")) {
            continue;
        }
        let mut entry = line.to_string();
        while let Some(next) = lines.peek() {
            if !next.starts_with(['\t', ' ']) {
                break;
            }
            if entry.len() < MAX_ENTRY_BYTES {
                entry.push('\n');
                entry.push_str(next);
            }
            lines.next();
        }
        let body = squash(&entry);
        let mut from = 0;
        let matched = fragments
            .iter()
            .all(|f| match body[from..].find(f.as_str()) {
                Some(at) => {
                    from += at + f.len();
                    true
                }
                None => false,
            });
        if matched {
            found = Some(entry);
        }
    }
    found.map(|mut e| {
        if e.len() > MAX_ENTRY_BYTES {
            let mut cut = MAX_ENTRY_BYTES;
            while !e.is_char_boundary(cut) {
                cut -= 1;
            }
            e.truncate(cut);
        }
        e
    })
}

/// The text between `$N` placeholders.
fn split_placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            out.push(&text[start..i]);
            i += 1;
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&text[start..]);
    out
}

/// Whitespace runs as one space.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-12-05 09:00:00.100 UTC [10] LOG:  duration: 5.1 ms  plan:
\tQuery Text: SELECT * FROM users WHERE email = 'a@b.c'
\tSeq Scan on users  (cost=0.00..35.50 rows=1 width=64)
\t  Filter: (email = 'a@b.c'::text)
2026-12-05 09:00:01.000 UTC [11] LOG:  checkpoint starting: time
2026-12-05 09:00:02.100 UTC [10] LOG:  duration: 0.1 ms  plan:
\tQuery Text: SELECT * FROM users WHERE email = 'x@y.z'
\tIndex Scan using users_email on users  (cost=0.29..8.30 rows=1 width=64)
\t  Index Cond: (email = 'x@y.z'::text)
2026-12-05 09:00:03.100 UTC [12] LOG:  duration: 9.0 ms  plan:
\tQuery Text: SELECT count(*) FROM audit_logs
\tAggregate  (cost=1.00..1.01 rows=1 width=8)
";

    #[test]
    fn finds_the_latest_entry_whose_text_matches_the_normalized_statement() {
        let e = find_plan(LOG, "SELECT * FROM users WHERE email = $1").unwrap();
        assert!(
            e.contains("09:00:02.100") && e.contains("Index Scan"),
            "{e}"
        );
        assert!(
            !e.contains("checkpoint") && !e.contains("audit_logs"),
            "{e}"
        );
        let e = find_plan(LOG, "SELECT count(*)\n  FROM audit_logs").unwrap();
        assert!(e.contains("Aggregate"), "{e}");
    }

    #[test]
    fn no_entry_for_another_statement_or_an_empty_text() {
        assert_eq!(
            find_plan(LOG, "SELECT * FROM policy_rules WHERE id = $1"),
            None
        );
        assert_eq!(find_plan(LOG, "$1"), None);
        assert_eq!(find_plan("", "SELECT 1"), None);
    }

    #[test]
    fn placeholders_split_the_text() {
        assert_eq!(
            split_placeholders("a = $1 AND b IN ($2, $13)"),
            vec!["a = ", " AND b IN (", ", ", ")"]
        );
        assert_eq!(split_placeholders("price > $"), vec!["price > $"]);
    }
}
