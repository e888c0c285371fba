//! `--method pgopt`: PGTune's baseline, changed where a server's statistics contradict it.
//!
//! Pure: takes the baseline ([`super::pgtune::pgtune`]), the inputs and a [`Snapshot`], and
//! returns the changed settings plus, for every change, the rule, the reason (citing the
//! numbers) and the evidence. Values are written in the form `compare` and `apply` understand:
//! memory as `NNMB`/`NNkB`, times as a bare number in the setting's unit (ms or s).

use std::collections::BTreeMap;

use chrono::Duration;
use serde::Serialize;
use serde_json::{json, Value};

use super::pgtune::{format_kb, PgTuneOutput, Setting};
use super::{compare, Profile, TuneInput};
use crate::snapshot::Snapshot;

/// Smallest number of connections the work_mem budget is planned for.
pub const CONNECTION_FLOOR: i64 = 20;
/// Share of memory that work_mem × connections × 2 may take.
pub const WORK_MEM_SHARE: f64 = 0.25;
/// Largest share of memory shared_buffers is raised to.
pub const SHARED_BUFFERS_SHARE: f64 = 0.40;
/// Temp files per day (since stats_reset) from which spills count as a pattern.
pub const TEMP_FILES_PER_DAY: f64 = 10.0;
/// Cache hit ratio under which shared_buffers is raised.
pub const HIT_RATIO: f64 = 0.99;
/// Dead tuples above which a table not autovacuumed for a day counts as falling behind.
pub const DEAD_TUPLES: i64 = 10_000;

/// One change pgopt made to the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub rule: &'static str,
    pub name: &'static str,
    /// PGTune's value; None when PGTune does not set it.
    pub baseline: Option<String>,
    pub value: String,
    pub reason: String,
    pub evidence: BTreeMap<String, Value>,
}

/// The pgopt recommendation: the settings (baseline with changes, in PGTune's order, added
/// settings after) and the changes with their evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PgoptOutput {
    pub output: PgTuneOutput,
    pub changes: Vec<Change>,
}

impl PgoptOutput {
    pub fn change(&self, name: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.name == name)
    }
    pub fn value(&self, name: &str) -> Option<&str> {
        self.output
            .settings
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value.as_str())
    }
}

struct Builder {
    out: PgTuneOutput,
    changes: Vec<Change>,
}

impl Builder {
    fn get(&self, name: &str) -> Option<&str> {
        self.out
            .settings
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value.as_str())
    }

    fn set(
        &mut self,
        rule: &'static str,
        name: &'static str,
        value: String,
        reason: String,
        evidence: BTreeMap<String, Value>,
    ) {
        let baseline = self.get(name).map(str::to_string);
        match self.out.settings.iter_mut().find(|s| s.name == name) {
            Some(s) => {
                s.value = value.clone();
                s.reason = reason.clone();
            }
            None => self.out.settings.push(Setting {
                name,
                value: value.clone(),
                reason: reason.clone(),
            }),
        }
        self.changes.retain(|c| c.name != name);
        self.changes.push(Change {
            rule,
            name,
            baseline,
            value,
            reason,
            evidence,
        });
    }
}

fn ev(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// A memory value as printed (`4MB`, `512kB`) in kB.
fn kb(value: &str) -> Option<u64> {
    compare::value_kb(value, 1.0).map(|k| k as u64)
}

/// kB rounded down to whole MB when at least 1MB.
fn round_kb(k: u64) -> u64 {
    if k >= 1024 {
        k / 1024 * 1024
    } else {
        k
    }
}

fn snap_setting<'a>(snap: &'a Snapshot, name: &str) -> Option<&'a str> {
    snap.settings
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.setting.as_str())
}

/// Applies the evidence rules to PGTune's baseline.
pub fn pgopt_method(base: &PgTuneOutput, input: &TuneInput, snap: &Snapshot) -> PgoptOutput {
    let mut b = Builder {
        out: base.clone(),
        changes: Vec::new(),
    };
    let mem_kb = input.memory.kb();
    temp_spills(&mut b, mem_kb, snap);
    connections(&mut b, snap);
    cache(&mut b, mem_kb, snap);
    autovacuum(&mut b, snap);
    observability(&mut b, snap);
    if input.profile == Profile::Governance {
        governance(&mut b);
    }
    PgoptOutput {
        output: b.out,
        changes: b.changes,
    }
}

/// Connections actually used: the observed total, at least [`CONNECTION_FLOOR`].
fn active_connections(snap: &Snapshot) -> (i64, Option<i64>) {
    let observed = snap.activity.as_ref().map(|a| a.total_connections);
    (observed.unwrap_or(0).max(CONNECTION_FLOOR), observed)
}

/// (a) temp-file spills → raise work_mem within the budget, hash_mem_multiplier = 2.
fn temp_spills(b: &mut Builder, mem_kb: u64, snap: &Snapshot) {
    let Some(db) = snap
        .databases
        .iter()
        .find(|d| d.name == snap.target.database)
    else {
        return;
    };
    let window_secs = match db.stats_reset {
        Some(r) => (snap.collected_at - r).num_seconds() as f64,
        None => snap
            .server
            .as_ref()
            .map(|s| s.uptime_seconds)
            .unwrap_or(86_400.0),
    }
    .max(3600.0);
    let days = window_secs / 86_400.0;
    let per_day = db.temp_files as f64 / days;
    if db.temp_files <= 0 || per_day < TEMP_FILES_PER_DAY {
        return;
    }
    let Some(base_kb) = b.get("work_mem").and_then(kb) else {
        return;
    };
    let (active, observed) = active_connections(snap);
    let budget_kb = (mem_kb as f64 * WORK_MEM_SHARE / (active as f64 * 2.0)) as u64;
    let avg_file_kb = (db.temp_bytes.max(0) as u64 / db.temp_files as u64) / 1024;
    let wanted = (base_kb * 2).max(avg_file_kb.next_power_of_two());
    let target = round_kb(wanted.min(budget_kb));
    let spilling: Vec<&crate::snapshot::Statement> = snap
        .statements
        .as_ref()
        .map(|s| s.top.iter().filter(|s| s.temp_blks_written > 0).collect())
        .unwrap_or_default();
    let stmt_blocks: i64 = spilling.iter().map(|s| s.temp_blks_written).sum();
    let evidence = ev(&[
        ("database", json!(db.name)),
        ("temp_files", json!(db.temp_files)),
        ("temp_bytes", json!(db.temp_bytes)),
        ("window_days", json!((days * 100.0).round() / 100.0)),
        ("temp_files_per_day", json!((per_day * 10.0).round() / 10.0)),
        ("avg_temp_file_kb", json!(avg_file_kb)),
        ("statements_spilling", json!(spilling.len())),
        ("statement_temp_blks_written", json!(stmt_blocks)),
        ("connections_observed", json!(observed)),
        ("connections_planned", json!(active)),
        ("work_mem_budget_kb", json!(budget_kb)),
        ("baseline_kb", json!(base_kb)),
    ]);
    if target <= base_kb {
        b.out.notes.push(format!(
            "temp files spill ({} files, {} MB in {:.1} days) but work_mem cannot be raised \
             above {} within 25% of memory for {active} connections",
            db.temp_files,
            db.temp_bytes / (1024 * 1024),
            days,
            format_kb(base_kb)
        ));
        return;
    }
    let reason = format!(
        "temp files spill: {} temp files ({} MB, {:.1}/day over {:.1} days, avg {} kB each) \
         in {}{}; raised from {} within the budget 25% of memory / ({active} connections x 2) \
         = {} kB",
        db.temp_files,
        db.temp_bytes / (1024 * 1024),
        per_day,
        days,
        avg_file_kb,
        db.name,
        if spilling.is_empty() {
            String::new()
        } else {
            format!(
                ", {} statements wrote {stmt_blocks} temp blocks",
                spilling.len()
            )
        },
        format_kb(base_kb),
        budget_kb
    );
    b.set(
        "temp_spills",
        "work_mem",
        format_kb(target),
        reason,
        evidence.clone(),
    );
    b.set(
        "temp_spills",
        "hash_mem_multiplier",
        "2".into(),
        format!(
            "work_mem raised for temp-file spills ({} temp files): hash tables get 2x work_mem",
            db.temp_files
        ),
        evidence,
    );
}

/// (b) max_connections far above what is used → a note (pooler), no change.
fn connections(b: &mut Builder, snap: &Snapshot) {
    let Some(observed) = snap.activity.as_ref().map(|a| a.total_connections) else {
        return;
    };
    let Some(max) = b.get("max_connections").and_then(|v| v.parse::<i64>().ok()) else {
        return;
    };
    if max >= 10 * observed.max(1) {
        b.out.notes.push(format!(
            "max_connections {max} is {}x the {observed} connections seen; work_mem is sized \
             on the observed peak x2; consider a lower max_connections or a pooler (PgBouncer)",
            max / observed.max(1)
        ));
    }
}

/// (c) cache hit ratio and database size against memory.
fn cache(b: &mut Builder, mem_kb: u64, snap: &Snapshot) {
    let db_bytes: i64 = snap
        .server
        .as_ref()
        .map(|s| s.database_sizes.iter().map(|d| d.size_bytes).sum())
        .unwrap_or(0);
    if db_bytes <= 0 {
        return;
    }
    let db_kb = db_bytes as u64 / 1024;
    let ecs_kb = b.get("effective_cache_size").and_then(kb);
    if let Some(ecs) = ecs_kb {
        if db_kb <= ecs && b.get("random_page_cost") != Some("1.1") {
            let reason = format!(
                "the databases ({} MB) fit in effective_cache_size ({}): reads come from \
                 memory, random reads cost about as much as sequential ones",
                db_kb / 1024,
                format_kb(ecs)
            );
            b.set(
                "cache",
                "random_page_cost",
                "1.1".into(),
                reason,
                ev(&[
                    ("database_bytes", json!(db_bytes)),
                    ("effective_cache_size_kb", json!(ecs)),
                ]),
            );
        }
    }
    let (hit, read) = snap
        .databases
        .iter()
        .fold((0i64, 0i64), |(h, r), d| (h + d.blks_hit, r + d.blks_read));
    if hit + read <= 0 {
        return;
    }
    let ratio = hit as f64 / (hit + read) as f64;
    let Some(sb_kb) = b.get("shared_buffers").and_then(kb) else {
        return;
    };
    if ratio >= HIT_RATIO || db_kb <= sb_kb {
        return;
    }
    let cap = (mem_kb as f64 * SHARED_BUFFERS_SHARE) as u64;
    let target = round_kb(cap.min(db_kb));
    if target <= sb_kb {
        return;
    }
    let reason = format!(
        "cache hit ratio {:.2}% (< 99%) with {} MB of databases above shared_buffers {}: \
         raised to min(40% of memory, database size)",
        ratio * 100.0,
        db_kb / 1024,
        format_kb(sb_kb)
    );
    b.set(
        "cache",
        "shared_buffers",
        format_kb(target),
        reason,
        ev(&[
            ("hit_ratio", json!((ratio * 10_000.0).round() / 10_000.0)),
            ("blks_hit", json!(hit)),
            ("blks_read", json!(read)),
            ("database_bytes", json!(db_bytes)),
            ("cap_kb", json!(cap)),
        ]),
    );
}

/// (d) autovacuum falling behind.
fn autovacuum(b: &mut Builder, snap: &Snapshot) {
    let day_ago = snap.collected_at - Duration::days(1);
    let behind: Vec<String> = snap
        .tables
        .iter()
        .filter(|t| {
            t.n_dead_tup > DEAD_TUPLES
                && t.n_dead_tup as f64 > 0.1 * t.n_live_tup.max(0) as f64
                && t.last_autovacuum.map_or(true, |v| v < day_ago)
        })
        .map(|t| format!("{}.{} ({} dead)", t.schema, t.name, t.n_dead_tup))
        .collect();
    if behind.is_empty() {
        return;
    }
    let evidence = ev(&[("tables", json!(behind))]);
    let why = format!(
        "autovacuum falls behind: {} table(s) with over {DEAD_TUPLES} dead tuples (>10% of \
         live) not autovacuumed for over a day: {}",
        behind.len(),
        behind
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, value) in [
        ("autovacuum_vacuum_cost_limit", "2000"),
        ("autovacuum_naptime", "15"),
        ("autovacuum_vacuum_scale_factor", "0.05"),
    ] {
        b.set(
            "autovacuum",
            name,
            value.into(),
            why.clone(),
            evidence.clone(),
        );
    }
}

/// (e) observability, always.
fn observability(b: &mut Builder, snap: &Snapshot) {
    let why = "observability: pgopt's analysis needs it";
    for (name, value, reason) in [
        (
            "track_io_timing",
            "on",
            "I/O timings in pg_stat_statements and EXPLAIN",
        ),
        (
            "log_min_duration_statement",
            "1000",
            "log statements slower than 1 s",
        ),
        (
            "log_lock_waits",
            "on",
            "log lock waits longer than deadlock_timeout",
        ),
        (
            "log_autovacuum_min_duration",
            "10000",
            "log autovacuum runs longer than 10 s",
        ),
        ("log_temp_files", "0", "log every temp file (spills)"),
    ] {
        b.set(
            "observability",
            name,
            value.into(),
            format!("{why}: {reason}"),
            BTreeMap::new(),
        );
    }
    let current = snap_setting(snap, "shared_preload_libraries").unwrap_or("");
    let mut libs: Vec<&str> = current
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let had = libs.contains(&"pg_stat_statements");
    if !had {
        libs.push("pg_stat_statements");
    }
    b.set(
        "observability",
        "shared_preload_libraries",
        libs.join(","),
        if had {
            format!("{why}: pg_stat_statements already loaded (kept)")
        } else {
            format!("{why}: load pg_stat_statements, keeping {current:?}")
        },
        ev(&[("current", json!(current))]),
    );
}

/// (f) the governance profile's own settings.
fn governance(b: &mut Builder) {
    for (name, value, reason) in [
        (
            "synchronous_commit",
            "on",
            "a committed decision must survive a crash",
        ),
        (
            "wal_level",
            "replica",
            "WAL for a standby and point-in-time recovery",
        ),
        (
            "max_wal_senders",
            "10",
            "room for standbys and base backups",
        ),
        (
            "idle_in_transaction_session_timeout",
            "60000",
            "end sessions idle in a transaction for 60 s (value in ms)",
        ),
    ] {
        b.set(
            "governance",
            name,
            value.into(),
            format!("governance profile: {reason}"),
            ev(&[("profile", json!("governance"))]),
        );
    }
}
