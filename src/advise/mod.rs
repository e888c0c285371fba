//! The advisors: pure functions from a [`Snapshot`] and [`Thresholds`] to [`Finding`]s.
//!
//! Each rule lives in its own file as `fn check(snap, th) -> Vec<Finding>` and reads only the
//! snapshot: no I/O, no clock (ages are measured against `snap.collected_at`), no server. A
//! finding names its object, gives the numbers it used (with units in the evidence keys) and
//! the next step; suggested SQL quotes every name through [`crate::ident`].
//!
//! Section status (skipped or failed collectors) is the report's business, not a finding,
//! with one exception: pg_stat_statements missing is a finding because fixing it is advice.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::plan::Step;
use crate::snapshot::Snapshot;

mod archiving;
mod autovacuum_off;
mod blocking;
mod cache_hit;
mod checkpoints;
mod connections;
mod dead_tuples;
mod disabled_triggers;
mod disk_space;
pub(crate) mod duplicate_indexes;
mod fk_indexes;
pub mod horizon;
mod idle_in_transaction;
mod index_bloat;
mod insert_vacuum;
pub(crate) mod invalid_indexes;
mod long_running;
mod prepared_xacts;
mod replication_slots;
pub(crate) mod security;
mod seq_scans;
mod sequences;
mod slow_statements;
mod stale_stats;
mod stat_statements;
mod table_bloat;
mod temp_files;
pub mod thresholds;
pub(crate) mod unused_indexes;
mod wal_directory;
mod wraparound;

pub use security::{review_coverage, review_coverage_text, ReviewPart};
pub use thresholds::Thresholds;

/// How urgent a finding is. Ordered: `Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity {other:?}: expected one of info, warning, critical"
            )),
        }
    }
}

/// One thing worth doing, with the evidence that led to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id, e.g. `unused_index` (see [`RULES`]).
    pub rule: String,
    pub severity: Severity,
    /// What it is about: `public.users`, `database postgres`, `pid 4242`, `queryid 17`.
    pub object: String,
    /// One concrete sentence: the object, the number and the threshold.
    pub message: String,
    /// The numbers the rule used; units are in the key names (`size_bytes`, `age_seconds`).
    pub evidence: BTreeMap<String, serde_json::Value>,
    pub next_step: String,
    /// The fix as steps ([`crate::plan::Step`]): what each does, its lock, whether it may
    /// run in a transaction, how to check and undo it. Empty: no statement fixes it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fix: Vec<Step>,
    /// The fix's SQL text as reports print it, rendered from `fix` (kept beside it for
    /// readers of the JSON report).
    pub sql: Option<String>,
    /// The PostgreSQL documentation page behind the advice.
    pub docs: Option<String>,
}

impl Finding {
    pub(crate) fn new(
        rule: &str,
        severity: Severity,
        object: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            rule: rule.to_string(),
            severity,
            object: object.into(),
            message: message.into(),
            evidence: BTreeMap::new(),
            next_step: String::new(),
            fix: Vec::new(),
            sql: None,
            docs: None,
        }
    }

    pub(crate) fn evidence(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.evidence.insert(key.to_string(), value.into());
        self
    }

    pub(crate) fn next_step(mut self, step: impl Into<String>) -> Self {
        self.next_step = step.into();
        self
    }

    /// The fix: one step.
    pub(crate) fn fix(self, step: Step) -> Self {
        self.fixes(vec![step])
    }

    /// The fix: steps in order; the SQL text is rendered from them.
    pub(crate) fn fixes(mut self, steps: Vec<Step>) -> Self {
        self.sql = (!steps.is_empty()).then(|| crate::plan::script(&steps));
        self.fix = steps;
        self
    }

    pub(crate) fn docs(mut self, url: &str) -> Self {
        self.docs = Some(url.to_string());
        self
    }
}

/// A rule id and what it checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    pub id: &'static str,
    pub description: &'static str,
}

/// Every rule pgopt runs, by id.
pub const RULES: &[RuleInfo] = &[
    RuleInfo {
        id: insert_vacuum::RULE,
        description: "Rows inserted since the last vacuum far past the insert threshold (visibility map, freezing)",
    },
    RuleInfo {
        id: cache_hit::RULE,
        description: "Buffer cache hit ratio of the current database is low",
    },
    RuleInfo {
        id: checkpoints::RULE,
        description: "Checkpoints requested early (WAL fills max_wal_size) rather than timed",
    },
    RuleInfo {
        id: connections::RULE,
        description: "Client connections are close to max_connections",
    },
    RuleInfo {
        id: idle_in_transaction::RULE,
        description: "Sessions idle in transaction hold locks and hold back vacuum",
    },
    RuleInfo {
        id: prepared_xacts::RULE,
        description: "Prepared transactions left open (holding their XID and locks)",
    },
    RuleInfo {
        id: long_running::QUERY_RULE,
        description: "Queries running for a long time",
    },
    RuleInfo {
        id: long_running::XACT_RULE,
        description: "Transactions open for a long time (holding back vacuum)",
    },
    RuleInfo {
        id: blocking::BLOCKED_RULE,
        description: "Sessions waiting for a lock held by another session",
    },
    RuleInfo {
        id: blocking::BLOCKING_RULE,
        description: "Sessions at the root of a lock-wait chain",
    },
    RuleInfo {
        id: unused_indexes::RULE,
        description: "Indexes never scanned since the statistics reset",
    },
    RuleInfo {
        id: unused_indexes::WINDOW_RULE,
        description:
            "Indexes not scanned yet, while the statistics window is too short to call them unused",
    },
    RuleInfo {
        id: duplicate_indexes::DUPLICATE_RULE,
        description: "Indexes identical to another index on the same table",
    },
    RuleInfo {
        id: duplicate_indexes::REDUNDANT_RULE,
        description: "Indexes whose keys are a left prefix of another index's keys",
    },
    RuleInfo {
        id: invalid_indexes::RULE,
        description: "Invalid indexes left by a failed CREATE INDEX CONCURRENTLY",
    },
    RuleInfo {
        id: fk_indexes::RULE,
        description: "Foreign keys without an index on the referencing columns",
    },
    RuleInfo {
        id: seq_scans::RULE,
        description: "Large tables read mostly by sequential scans",
    },
    RuleInfo {
        id: dead_tuples::RULE,
        description: "Dead tuples past the autovacuum threshold with vacuum overdue",
    },
    RuleInfo {
        id: table_bloat::RULE,
        description: "Tables wasting much of their size (free space VACUUM does not give back)",
    },
    RuleInfo {
        id: index_bloat::RULE,
        description: "Btree indexes wasting much of their size (low leaf density)",
    },
    RuleInfo {
        id: stale_stats::RULE,
        description: "Planner statistics never gathered or far out of date",
    },
    RuleInfo {
        id: wraparound::XID_RULE,
        description: "Transaction ID age approaching wraparound",
    },
    RuleInfo {
        id: wraparound::MULTIXACT_RULE,
        description: "Multixact ID age approaching wraparound",
    },
    RuleInfo {
        id: sequences::RULE,
        description: "Sequences close to the limit of their sequence or column type",
    },
    RuleInfo {
        id: temp_files::DATABASE_RULE,
        description:
            "Database writing many bytes of temporary files (sorts and hashes spilling to disk)",
    },
    RuleInfo {
        id: temp_files::STATEMENT_RULE,
        description: "Top statements spilling to temporary files",
    },
    RuleInfo {
        id: stat_statements::NOT_PRELOADED_RULE,
        description: "pg_stat_statements is not in shared_preload_libraries",
    },
    RuleInfo {
        id: stat_statements::NOT_INSTALLED_RULE,
        description: "The pg_stat_statements extension is not created in this database",
    },
    RuleInfo {
        id: slow_statements::TOTAL_RULE,
        description: "Statements taking a large share of total execution time",
    },
    RuleInfo {
        id: slow_statements::MEAN_RULE,
        description: "Statements with a high mean execution time",
    },
    RuleInfo {
        id: security::SSL_OFF_RULE,
        description: "ssl is off while the server listens beyond loopback",
    },
    RuleInfo {
        id: security::PASSWORD_ENCRYPTION_RULE,
        description: "password_encryption is not scram-sha-256",
    },
    RuleInfo {
        id: security::LISTEN_ALL_RULE,
        description: "listen_addresses accepts connections on every interface",
    },
    RuleInfo {
        id: security::HBA_TRUST_RULE,
        description: "pg_hba.conf lines with trust for addresses beyond loopback",
    },
    RuleInfo {
        id: security::HBA_WEAK_METHOD_RULE,
        description: "pg_hba.conf lines using the md5 or password method",
    },
    RuleInfo {
        id: security::HBA_OPEN_RULE,
        description: "pg_hba.conf lines open to every address (0.0.0.0/0, ::/0, all)",
    },
    RuleInfo {
        id: security::SUPERUSER_RULE,
        description: "Superuser roles besides the bootstrap superuser",
    },
    RuleInfo {
        id: security::NO_PASSWORD_RULE,
        description: "Login roles without a password while remote clients authenticate by password",
    },
    RuleInfo {
        id: security::MD5_PASSWORDS_RULE,
        description: "Roles whose password is stored as an MD5 hash",
    },
    RuleInfo {
        id: replication_slots::LOST_RULE,
        description:
            "Replication slots lost (wal_status = lost): their consumers must be re-seeded",
    },
    RuleInfo {
        id: replication_slots::RETAINING_RULE,
        description: "Replication slots retaining much WAL (inactive, or a consumer behind)",
    },
    RuleInfo {
        id: wal_directory::RULE,
        description: "pg_wal holds well beyond max_wal_size (slots, archiving, wal_keep_size)",
    },
    RuleInfo {
        id: archiving::FAILING_RULE,
        description: "WAL archiving failing (or not configured) while archive_mode is on",
    },
    RuleInfo {
        id: archiving::BEHIND_RULE,
        description: "WAL segments piling up to be archived without failures",
    },
    RuleInfo {
        id: autovacuum_off::AUTOVACUUM_RULE,
        description: "autovacuum is off server-wide",
    },
    RuleInfo {
        id: autovacuum_off::TRACK_COUNTS_RULE,
        description: "track_counts is off, which stops autovacuum",
    },
    RuleInfo {
        id: disabled_triggers::RULE,
        description: "User triggers left disabled on user tables",
    },
    RuleInfo {
        id: disk_space::RULE,
        description: "Little free space on the disk of the data or WAL directory",
    },
];

type Check = fn(&Snapshot, &Thresholds) -> Vec<Finding>;

const CHECKS: &[Check] = &[
    cache_hit::check,
    checkpoints::check,
    connections::check,
    idle_in_transaction::check,
    prepared_xacts::check,
    long_running::check,
    blocking::check,
    unused_indexes::check,
    duplicate_indexes::check,
    invalid_indexes::check,
    fk_indexes::check,
    seq_scans::check,
    dead_tuples::check,
    insert_vacuum::check,
    table_bloat::check,
    index_bloat::check,
    stale_stats::check,
    wraparound::check,
    sequences::check,
    temp_files::check,
    stat_statements::check,
    slow_statements::check,
    security::check,
    replication_slots::check,
    wal_directory::check,
    archiving::check,
    autovacuum_off::check,
    disabled_triggers::check,
    disk_space::check,
];

/// Runs every rule; findings sorted by severity (critical first), then rule, then object.
pub fn advise(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let mut findings: Vec<Finding> = CHECKS.iter().flat_map(|check| check(snap, th)).collect();
    sort(&mut findings);
    findings
}

/// The security rules only (ssl, password_encryption, listen_addresses, pg_hba.conf, roles),
/// sorted as [`advise`] sorts; for reports that show the security review on its own.
pub fn security_review(snap: &Snapshot) -> Vec<Finding> {
    let mut findings = security::check(snap, &Thresholds::default());
    sort(&mut findings);
    findings
}

/// The ids of the rules [`security_review`] runs.
pub const SECURITY_RULES: &[&str] = &[
    security::SSL_OFF_RULE,
    security::PASSWORD_ENCRYPTION_RULE,
    security::LISTEN_ALL_RULE,
    security::HBA_TRUST_RULE,
    security::HBA_WEAK_METHOD_RULE,
    security::HBA_OPEN_RULE,
    security::SUPERUSER_RULE,
    security::NO_PASSWORD_RULE,
    security::MD5_PASSWORDS_RULE,
];

fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.object.cmp(&b.object))
    });
}

// ---- helpers shared by the rules ----

/// `1 connection`, `2 connections`: a count with the noun agreeing with it.
pub fn count<N>(n: N, one: &str, many: &str) -> String
where
    N: fmt::Display + PartialEq + From<u8>,
{
    let noun = if n == N::from(1) { one } else { many };
    format!("{n} {noun}")
}

/// `12.3 %` from a ratio.
pub(crate) fn pct(ratio: f64) -> String {
    format!("{:.1} %", ratio * 100.0)
}

/// `ratio` and `limit` as percentages with the fewest decimals (1 to 4) that keep them apart,
/// so that a comparison is visible: 98.95 % below 99.0 %, not 99.0 % below 99.0 %.
pub(crate) fn pct_beside(ratio: f64, limit: f64) -> (String, String) {
    let mut decimals = 1;
    while decimals < 4
        && format!("{:.*}", decimals, ratio * 100.0) == format!("{:.*}", decimals, limit * 100.0)
    {
        decimals += 1;
    }
    (
        format!("{:.*} %", decimals, ratio * 100.0),
        format!("{:.*} %", decimals, limit * 100.0),
    )
}

/// Human size for messages (evidence keeps bytes).
/// A relation's size for a message: marked when it is a pg_class estimate, not measured.
pub(crate) fn size(n: i64, estimated: bool) -> String {
    if estimated {
        format!("~{} estimated", bytes(n))
    } else {
        bytes(n)
    }
}

pub(crate) fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Human duration for messages (evidence keeps seconds).
pub fn duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7200.0 {
        format!("{:.1} min", seconds / 60.0)
    } else if seconds < 172_800.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86_400.0)
    }
}

/// An RFC 3339 timestamp as JSON, or null.
pub(crate) fn time_value(t: Option<chrono::DateTime<chrono::Utc>>) -> serde_json::Value {
    t.map(|t| serde_json::Value::String(t.to_rfc3339()))
        .unwrap_or(serde_json::Value::Null)
}

/// A float as JSON (NaN and infinities become null rather than failing).
pub(crate) fn num(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

/// Indexes grouped by (schema, table), so that per-table comparisons stay linear in the
/// number of tables rather than quadratic in the number of indexes.
pub(crate) fn indexes_by_table(snap: &Snapshot) -> IndexesByTable<'_> {
    IndexesByTable::new(&snap.indexes)
}

fn table_key(idx: &crate::snapshot::Index) -> (&str, &str) {
    (idx.schema.as_str(), idx.table.as_str())
}

/// The snapshot's indexes sorted by (schema, table), looked up by binary search: one
/// reference per index (1.6 MB at 200,000 indexes, where a map of vectors took ten times
/// that).
pub(crate) struct IndexesByTable<'a> {
    sorted: Vec<&'a crate::snapshot::Index>,
}

impl<'a> IndexesByTable<'a> {
    fn new(indexes: &'a [crate::snapshot::Index]) -> Self {
        let mut sorted: Vec<&crate::snapshot::Index> = indexes.iter().collect();
        // Stable: a table's indexes keep their snapshot order.
        sorted.sort_by(|a, b| table_key(a).cmp(&table_key(b)));
        IndexesByTable { sorted }
    }

    /// The indexes of one table, in snapshot order; empty when it has none.
    pub(crate) fn get(&self, schema: &str, table: &str) -> &[&'a crate::snapshot::Index] {
        let key = (schema, table);
        let start = self.sorted.partition_point(|i| table_key(i) < key);
        let len = self.sorted[start..].partition_point(|i| table_key(i) == key);
        &self.sorted[start..start + len]
    }

    /// Each table's indexes, tables in (schema, table) order.
    pub(crate) fn groups(&self) -> impl Iterator<Item = &[&'a crate::snapshot::Index]> {
        self.sorted.chunk_by(|a, b| table_key(a) == table_key(b))
    }
}

/// A size setting (max_wal_size, wal_keep_size, ...) in bytes, from its value and its unit
/// (`MB`, `kB`, `8kB`, ...); None when absent or not a size. -1 stays -1 ("unlimited").
pub(crate) fn setting_bytes(snap: &Snapshot, name: &str) -> Option<f64> {
    let s = snap.setting(name)?;
    let value: f64 = s.setting.parse().ok()?;
    if value < 0.0 {
        return Some(value);
    }
    let unit = s.unit.as_deref().unwrap_or("B");
    let digits = unit.len() - unit.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let factor: f64 = if digits == 0 {
        1.0
    } else {
        unit[..digits].parse().ok()?
    };
    let scale = match &unit[digits..] {
        "B" => 1.0,
        "kB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(value * factor * scale)
}

/// Whether a table has a usable statistics row of its own (tables and materialized views;
/// partitioned parents keep no row counts).
pub(crate) fn has_own_storage(kind: &str) -> bool {
    matches!(kind, "r" | "m" | "t" | "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_by_table_finds_each_tables_indexes_in_snapshot_order_and_none_for_others() {
        let ix = |schema: &str, table: &str, name: &str| crate::snapshot::Index {
            schema: schema.into(),
            table: table.into(),
            name: name.into(),
            ..Default::default()
        };
        let indexes = [
            ix("s", "b", "b2"),
            ix("public", "a", "a1"),
            ix("s", "b", "b1"),
            ix("public", "a", "a0"),
            ix("public", "ab", "ab1"),
        ];
        let by = IndexesByTable::new(&indexes);
        let names = |l: &[&crate::snapshot::Index]| -> Vec<String> {
            l.iter().map(|i| i.name.to_string()).collect()
        };
        assert_eq!(names(by.get("public", "a")), ["a1", "a0"]);
        assert_eq!(names(by.get("s", "b")), ["b2", "b1"]);
        assert_eq!(names(by.get("public", "ab")), ["ab1"]);
        assert!(by.get("public", "b").is_empty());
        assert!(by.get("zzz", "a").is_empty());
        let groups: Vec<Vec<String>> = by.groups().map(names).collect();
        assert_eq!(groups, [vec!["a1", "a0"], vec!["ab1"], vec!["b2", "b1"]]);
    }

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
        assert_eq!("Critical".parse::<Severity>(), Ok(Severity::Critical));
        let err = "urgent".parse::<Severity>().unwrap_err();
        assert!(err.contains("info, warning, critical"), "{err}");
        assert_eq!(
            serde_json::to_string(&Severity::Warning).unwrap(),
            "\"warning\""
        );
    }

    #[test]
    fn every_check_has_a_rule_and_ids_are_unique() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate rule ids");
        assert!(ids.iter().all(|id| {
            id.starts_with(|c: char| c.is_ascii_lowercase())
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }));
        for id in SECURITY_RULES {
            assert!(ids.contains(id), "{id} not in RULES");
        }
    }

    #[test]
    fn size_settings_are_read_in_bytes_with_their_unit() {
        use crate::snapshot::{Setting, TargetInfo};
        let mut snap = Snapshot::new(TargetInfo::default(), chrono::Utc::now());
        let s = |name: &str, value: &str, unit: Option<&str>| Setting {
            name: name.to_string(),
            setting: value.to_string(),
            unit: unit.map(str::to_string),
            vartype: "integer".to_string(),
            source: "default".to_string(),
            context: "sighup".to_string(),
            boot_val: None,
            reset_val: None,
            pending_restart: false,
        };
        snap.settings = vec![
            s("max_wal_size", "1024", Some("MB")),
            s("max_slot_wal_keep_size", "-1", Some("MB")),
            s("shared_buffers", "16384", Some("8kB")),
            s("autovacuum", "on", None),
        ];
        assert_eq!(setting_bytes(&snap, "max_wal_size"), Some(GIB_F));
        assert_eq!(setting_bytes(&snap, "max_slot_wal_keep_size"), Some(-1.0));
        assert_eq!(
            setting_bytes(&snap, "shared_buffers"),
            Some(128.0 * 1024.0 * 1024.0)
        );
        assert_eq!(setting_bytes(&snap, "autovacuum"), None);
        assert_eq!(setting_bytes(&snap, "wal_keep_size"), None);
    }

    const GIB_F: f64 = 1024.0 * 1024.0 * 1024.0;

    #[test]
    fn human_units() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MB");
        assert_eq!(pct(0.912), "91.2 %");
        assert_eq!(count(1usize, "connection", "connections"), "1 connection");
        assert_eq!(count(2i64, "connection", "connections"), "2 connections");
        assert_eq!(count(0u64, "index", "indexes"), "0 indexes");
        assert_eq!(duration(90.0), "90 s");
        assert_eq!(duration(900.0), "15.0 min");
    }
}
