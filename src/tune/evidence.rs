//! `--method pgopt`: PGTune's baseline, changed where a server's statistics contradict it.
//!
//! Pure: takes the baseline ([`super::pgtune::pgtune`]), the inputs and a [`Snapshot`], and
//! returns the changed settings plus, for every change, the rule, the reason (citing the
//! numbers) and the evidence. Values are written in the form `compare` and `apply` understand:
//! memory as `NNMB`/`NNkB`, times as a bare number in the setting's unit (ms or s).

use std::collections::BTreeMap;

use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::pgtune::{format_kb, PgTuneOutput, Setting};
use super::{compare, Profile, TuneInput};
use crate::advise::{count, duration};
use crate::ident::{quote_literal, Ident, QualifiedName};
use crate::snapshot::{Snapshot, Table};

/// Smallest number of connections the work_mem budget is planned for.
pub const CONNECTION_FLOOR: i64 = 20;
/// Share of max_connections (less the superuser reserve) in use from which a pooler is urged.
pub const NEAR_MAX_CONNECTIONS: f64 = 0.8;
/// Share of memory that work_mem × connections × 2 may take.
pub const WORK_MEM_SHARE: f64 = 0.25;
/// Largest share of memory shared_buffers is raised to.
pub const SHARED_BUFFERS_SHARE: f64 = 0.40;
/// Temp files per day (since stats_reset) from which spills count as a pattern.
pub const TEMP_FILES_PER_DAY: f64 = 10.0;
/// Statistics window (s) below which no temp-file rate is stated: a rate over minutes says
/// nothing about a day.
pub const TEMP_RATE_MIN_WINDOW_S: f64 = 3600.0;
/// Cache hit ratio under which shared_buffers is raised.
pub const HIT_RATIO: f64 = 0.99;
/// Dead tuples above which a table not autovacuumed for a day counts as falling behind.
pub const DEAD_TUPLES: i64 = 10_000;
/// Live rows from which a table falling behind gets scale factors of its own.
pub const LARGE_TABLE_ROWS: i64 = 1_000_000;
/// Dead tuples a large table's own scale factor aims to start autovacuum at.
pub const TARGET_DEAD_ROWS: f64 = 100_000.0;
/// Tables falling behind above which the global autovacuum settings change too.
pub const PER_TABLE_MAX: usize = 3;
/// Requested checkpoints below this count say nothing.
pub const MIN_REQUESTED_CHECKPOINTS: i64 = 3;
/// Share of checkpoints requested (not timed) from which max_wal_size is looked at.
pub const REQUESTED_SHARE: f64 = 0.2;
/// Statistics window (s) below which no WAL rate or checkpoint interval is stated.
pub const CHECKPOINT_MIN_WINDOW_S: f64 = 60.0;
/// Headroom on the WAL a checkpoint_timeout interval needs.
pub const WAL_HEADROOM: f64 = 1.25;
/// Share of the data disk's free space max_wal_size may take.
pub const WAL_DISK_SHARE: f64 = 0.25;
/// statement_timeout given to application roles by the governance profile.
pub const APP_STATEMENT_TIMEOUT: &str = "30s";
/// auto_explain.log_min_duration (ms): plans of statements slower than this are logged.
pub const AUTO_EXPLAIN_MS: &str = "3000";

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

/// What a per-object setting is set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A storage parameter: `ALTER TABLE s.t SET (name = value)`.
    Table,
    /// A role's own setting: `ALTER ROLE r SET name = value`.
    Role,
}

/// A setting for one table or role rather than the whole server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectSetting {
    pub rule: &'static str,
    pub kind: ObjectKind,
    /// The table's schema; None for a role.
    pub schema: Option<String>,
    pub object: String,
    pub name: &'static str,
    pub value: String,
    /// The object's own value now, when it has one.
    pub current: Option<String>,
    pub reason: String,
    pub evidence: BTreeMap<String, Value>,
}

impl ObjectSetting {
    /// `table s.t` or `role r`, for people.
    pub fn label(&self) -> String {
        object_label(self.kind, self.schema.as_deref(), &self.object)
    }

    /// The statement that sets it, every name quoted and the value a literal.
    pub fn set_sql(&self) -> String {
        set_object_sql(
            self.kind,
            self.schema.as_deref(),
            &self.object,
            self.name,
            &self.value,
        )
    }
}

/// `table s.t` or `role r`, for people.
pub fn object_label(kind: ObjectKind, schema: Option<&str>, object: &str) -> String {
    match (kind, schema) {
        (ObjectKind::Table, Some(schema)) => format!("table {schema}.{object}"),
        (ObjectKind::Table, None) => format!("table {object}"),
        (ObjectKind::Role, _) => format!("role {object}"),
    }
}

/// `ALTER TABLE "s"."t" SET ("name" = 'v')` or `ALTER ROLE "r" SET "name" = 'v'`.
pub fn set_object_sql(
    kind: ObjectKind,
    schema: Option<&str>,
    object: &str,
    name: &str,
    value: &str,
) -> String {
    match kind {
        ObjectKind::Table => format!(
            "ALTER TABLE {} SET ({} = {})",
            table_name(schema, object),
            Ident::new(name),
            quote_literal(value)
        ),
        ObjectKind::Role => format!(
            "ALTER ROLE {} SET {} = {}",
            Ident::new(object),
            Ident::new(name),
            quote_literal(value)
        ),
    }
}

/// `ALTER TABLE "s"."t" RESET ("name")` or `ALTER ROLE "r" RESET "name"`.
pub fn reset_object_sql(
    kind: ObjectKind,
    schema: Option<&str>,
    object: &str,
    name: &str,
) -> String {
    match kind {
        ObjectKind::Table => format!(
            "ALTER TABLE {} RESET ({})",
            table_name(schema, object),
            Ident::new(name)
        ),
        ObjectKind::Role => format!(
            "ALTER ROLE {} RESET {}",
            Ident::new(object),
            Ident::new(name)
        ),
    }
}

fn table_name(schema: Option<&str>, object: &str) -> String {
    match schema {
        Some(schema) => QualifiedName::new(schema, object).to_string(),
        None => Ident::new(object).to_string(),
    }
}

/// The pgopt recommendation: the settings (baseline with changes, in PGTune's order, added
/// settings after), the changes with their evidence, and settings for single tables and
/// roles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PgoptOutput {
    pub output: PgTuneOutput,
    pub changes: Vec<Change>,
    pub objects: Vec<ObjectSetting>,
}

impl PgoptOutput {
    pub fn change(&self, name: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.name == name)
    }
    pub fn value(&self, name: &str) -> Option<&str> {
        self.output.value(name)
    }
}

struct Builder {
    out: PgTuneOutput,
    changes: Vec<Change>,
    objects: Vec<ObjectSetting>,
}

impl Builder {
    fn get(&self, name: &str) -> Option<&str> {
        self.out.value(name)
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

/// A memory setting of the server in kB (its value times its unit).
fn snap_kb(snap: &Snapshot, name: &str) -> Option<f64> {
    let s = snap.setting(name)?;
    let value: f64 = s.setting.parse().ok()?;
    Some(value * compare::unit_kb(s.unit.as_deref().unwrap_or("kB"))?)
}

/// Seconds the cumulative statistics cover: since `reset`, else since the server started
/// (None when neither is known). Callers compare it with their own floor: below it no rate is
/// stated.
fn stats_window(snap: &Snapshot, reset: Option<chrono::DateTime<chrono::Utc>>) -> Option<f64> {
    match reset {
        Some(r) => Some((snap.collected_at - r).num_milliseconds() as f64 / 1000.0),
        None => snap.server.as_ref().map(|s| s.uptime_seconds),
    }
    .map(|w| w.max(0.0))
}

/// What the connected server was seen to accept, applied to PGTune's output: PGTune's
/// `wal_compression = lz4` (15+) warns that lz4 needs a server built with it; the snapshot
/// tried it (SET LOCAL, rolled back). Accepted: no warning. Rejected: pglz instead, saying
/// why. Not tried (the role may not set it): the warning stays. Idempotent.
pub fn server_checks(out: &mut PgTuneOutput, snap: &Snapshot) {
    if out.value("wal_compression") != Some("lz4") {
        return;
    }
    let is_lz4_warning = |w: &String| w.starts_with("wal_compression = lz4");
    match snap.wal_compression_lz4 {
        None => {}
        Some(true) => {
            out.warnings.retain(|w| !is_lz4_warning(w));
            let note =
                "wal_compression = lz4: this server accepts it (tried with SET LOCAL, rolled back)";
            if !out.notes.iter().any(|n| n == note) {
                out.notes.push(note.to_string());
            }
        }
        Some(false) => {
            out.warnings.retain(|w| !is_lz4_warning(w));
            out.warnings.push(
                "this server rejects wal_compression = lz4 (it was built without lz4): pglz is \
                 recommended instead (wal_compression = on means pglz too)"
                    .to_string(),
            );
            if let Some(s) = out
                .settings
                .iter_mut()
                .find(|s| s.name == "wal_compression")
            {
                s.value = "pglz".to_string();
                s.reason = "lz4 rejected by this server (built without lz4)".to_string();
            }
        }
    }
}

/// Applies the evidence rules to PGTune's baseline.
pub fn pgopt_method(base: &PgTuneOutput, input: &TuneInput, snap: &Snapshot) -> PgoptOutput {
    let mut base = base.clone();
    server_checks(&mut base, snap);
    let mut b = Builder {
        out: base,
        changes: Vec::new(),
        objects: Vec::new(),
    };
    let mem_kb = input.memory.kb();
    temp_spills(&mut b, mem_kb, snap);
    connections(&mut b, snap);
    cache(&mut b, mem_kb, snap);
    checkpoints(&mut b, snap);
    autovacuum(&mut b, input, snap);
    huge_pages(&mut b, snap);
    observability(&mut b, snap);
    if input.profile == Profile::Governance {
        governance(&mut b, snap);
    }
    PgoptOutput {
        output: b.out,
        changes: b.changes,
        objects: b.objects,
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
    let window_secs = stats_window(snap, db.stats_reset);
    // A daily rate only over a window long enough to mean one.
    let per_day = window_secs
        .filter(|w| *w >= TEMP_RATE_MIN_WINDOW_S)
        .map(|w| db.temp_files as f64 / (w / 86_400.0));
    let spilling: Vec<&crate::snapshot::Statement> = snap
        .statements
        .as_ref()
        .map(|s| s.top.iter().filter(|s| s.temp_blks_written > 0).collect())
        .unwrap_or_default();
    let pattern = match per_day {
        Some(rate) => rate >= TEMP_FILES_PER_DAY,
        // Too short for a rate: statements seen spilling are evidence enough.
        None => !spilling.is_empty(),
    };
    if db.temp_files <= 0 || !pattern {
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
    let stmt_blocks: i64 = spilling.iter().map(|s| s.temp_blks_written).sum();
    let files = count(db.temp_files, "temp file", "temp files");
    let over = match (per_day, window_secs) {
        (Some(rate), Some(w)) => format!("{rate:.1}/day over {}", duration(w)),
        (None, Some(w)) => format!(
            "the statistics cover only {}, too short for a daily rate",
            duration(w)
        ),
        _ => "since an unknown time, so no daily rate".to_string(),
    };
    let evidence = ev(&[
        ("database", json!(db.name)),
        ("temp_files", json!(db.temp_files)),
        ("temp_bytes", json!(db.temp_bytes)),
        (
            "window_days",
            json!(window_secs.map(|w| (w / 86_400.0 * 100.0).round() / 100.0)),
        ),
        (
            "temp_files_per_day",
            json!(per_day.map(|r| (r * 10.0).round() / 10.0)),
        ),
        ("avg_temp_file_kb", json!(avg_file_kb)),
        ("statements_spilling", json!(spilling.len())),
        ("statement_temp_blks_written", json!(stmt_blocks)),
        ("connections_observed", json!(observed)),
        ("connections_planned", json!(active)),
        ("work_mem_budget_kb", json!(budget_kb)),
        ("baseline_kb", json!(base_kb)),
    ]);
    let planned = count(active, "connection", "connections");
    if target <= base_kb {
        b.out.notes.push(format!(
            "temp files spill ({files}, {} MB; {over}) but work_mem cannot be raised above {} \
             within 25% of memory for {planned}",
            db.temp_bytes / (1024 * 1024),
            format_kb(base_kb)
        ));
        return;
    }
    let reason = format!(
        "temp files spill: {files} ({} MB, {over}, avg {} kB each) in {}{}; raised from {} \
         within the budget 25% of memory / ({planned} x 2) = {} kB",
        db.temp_bytes / (1024 * 1024),
        avg_file_kb,
        db.name,
        if spilling.is_empty() {
            String::new()
        } else {
            format!(
                ", {} wrote {stmt_blocks} temp blocks",
                count(spilling.len(), "statement", "statements")
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
        format!("work_mem raised for temp-file spills ({files}): hash tables get 2x work_mem"),
        evidence,
    );
}

/// (b) connections near the server's max_connections, or max_connections far above what is
/// used → a note (pooler), no change.
fn connections(b: &mut Builder, snap: &Snapshot) {
    let Some(observed) = snap.activity.as_ref().map(|a| a.total_connections) else {
        return;
    };
    let Some(max) = b.get("max_connections").and_then(|v| v.parse::<i64>().ok()) else {
        return;
    };
    // Near the server's own limit now: more connections will be refused.
    let server_max = snap.activity.as_ref().map_or(0, |a| a.max_connections);
    let reserved = snap
        .activity
        .as_ref()
        .map_or(0, |a| a.superuser_reserved_connections);
    if server_max > 0 && observed as f64 >= NEAR_MAX_CONNECTIONS * (server_max - reserved) as f64 {
        b.out.notes.push(format!(
            "{} of max_connections {server_max} ({reserved} reserved for superusers) were open \
             when the snapshot was taken: put a pooler (PgBouncer in transaction mode) in front \
             rather than raising max_connections; every connection is a process with its own \
             work_mem, and the work_mem budget here is planned for {}",
            count(observed, "connection", "connections"),
            count(observed.max(CONNECTION_FLOOR), "connection", "connections")
        ));
        return;
    }
    if max >= 10 * observed.max(1) {
        // One momentary count, not a peak: say so.
        b.out.notes.push(format!(
            "max_connections {max} is {}x the {} open when the snapshot was taken (a single \
             count, not a peak); the work_mem budget is planned for {} x 2; if that count is \
             typical, consider a lower max_connections or a pooler (PgBouncer)",
            max / observed.max(1),
            count(observed, "connection", "connections"),
            count(observed.max(CONNECTION_FLOOR), "connection", "connections")
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

/// (c2) requested checkpoints → max_wal_size.
///
/// A checkpoint is requested early once the WAL since the last one passes about
/// max_wal_size / (1 + checkpoint_completion_target). For checkpoints to come from
/// checkpoint_timeout instead, max_wal_size must hold the WAL of one timeout interval times
/// (1 + checkpoint_completion_target), with headroom. The WAL rate is pg_stat_wal's bytes over
/// its window; before 14, what the requested checkpoints imply (each after about
/// max_wal_size / (1 + checkpoint_completion_target) of WAL).
fn checkpoints(b: &mut Builder, snap: &Snapshot) {
    let Some(c) = &snap.checkpoints else {
        return;
    };
    let total = c.timed + c.requested;
    if c.requested < MIN_REQUESTED_CHECKPOINTS
        || (c.requested as f64) < REQUESTED_SHARE * total as f64
    {
        return;
    }
    let (Some(current_kb), Some(timeout_s)) = (
        snap_kb(snap, "max_wal_size"),
        snap.setting_f64("checkpoint_timeout"),
    ) else {
        return;
    };
    let target_ratio = snap
        .setting_f64("checkpoint_completion_target")
        .unwrap_or(0.9);
    let window = match stats_window(snap, c.stats_reset) {
        Some(w) if w >= CHECKPOINT_MIN_WINDOW_S => w,
        w => {
            b.out.notes.push(format!(
                "{} of {} were requested, but the checkpoint statistics cover {}: too short \
                 to state a WAL rate; run pgopt tune again later",
                c.requested,
                count(total, "checkpoint", "checkpoints"),
                w.map_or("an unknown time".to_string(), duration)
            ));
            return;
        }
    };
    let interval = window / total as f64;
    let implied = c.requested as f64 * current_kb * 1024.0 / (1.0 + target_ratio) / window;
    let measured = c.wal_bytes.and_then(|w| {
        stats_window(snap, c.wal_stats_reset)
            .filter(|s| *s >= CHECKPOINT_MIN_WINDOW_S)
            .map(|s| w as f64 / s)
    });
    // pg_stat_wal's measurement when there is one (14+): the implied rate would count a
    // CHECKPOINT command as a max_wal_size of WAL.
    let rate = measured.unwrap_or(implied);
    let needed_kb = rate * timeout_s * (1.0 + target_ratio) * WAL_HEADROOM / 1024.0;
    let gb = 1024.0 * 1024.0;
    let mut target = if needed_kb >= gb {
        ((needed_kb / gb).ceil() * gb) as u64
    } else {
        ((needed_kb / (256.0 * 1024.0)).ceil() * 256.0 * 1024.0) as u64
    };
    let cap = snap
        .host
        .as_ref()
        .and_then(|h| h.data_disk.as_ref())
        .map(|d| (d.available_bytes as f64 * WAL_DISK_SHARE / 1024.0) as u64);
    let capped = cap.is_some_and(|cap| target > cap);
    if let Some(cap) = cap.filter(|&cap| target > cap) {
        target = round_kb(cap);
    }
    let baseline_kb = b.get("max_wal_size").and_then(kb);
    let share = c.requested as f64 / total as f64;
    let evidence = ev(&[
        ("checkpoints_timed", json!(c.timed)),
        ("checkpoints_requested", json!(c.requested)),
        ("requested_share", json!((share * 1000.0).round() / 1000.0)),
        ("window_seconds", json!(window.round())),
        (
            "seconds_between_checkpoints",
            json!((interval * 10.0).round() / 10.0),
        ),
        ("wal_bytes", json!(c.wal_bytes)),
        ("wal_bytes_per_second", json!(rate.round())),
        ("checkpoint_timeout_s", json!(timeout_s)),
        ("checkpoint_completion_target", json!(target_ratio)),
        ("max_wal_size_kb_now", json!(current_kb)),
        ("needed_kb", json!(needed_kb.round())),
        ("disk_cap_kb", json!(cap)),
    ]);
    let mb = |k: f64| (k / 1024.0).round() as u64;
    if needed_kb <= current_kb {
        b.out.notes.push(format!(
            "{} of {total} checkpoints were requested, but the average WAL rate ({:.1} MB/s) \
             fits in max_wal_size {} MB: bursts, CHECKPOINT commands or base backups; turn on \
             log_checkpoints to see which",
            c.requested,
            rate / 1_048_576.0,
            mb(current_kb)
        ));
        return;
    }
    if baseline_kb.is_some_and(|base| base >= target) {
        b.out.notes.push(format!(
            "{} of {total} checkpoints were requested with max_wal_size {} MB; the \
             recommended max_wal_size {} holds the {} MB one checkpoint_timeout needs",
            c.requested,
            mb(current_kb),
            format_kb(baseline_kb.unwrap_or(0)),
            mb(needed_kb)
        ));
        return;
    }
    let reason = format!(
        "{} of {total} checkpoints ({:.0}%) were requested, one every {:.0} s against \
         checkpoint_timeout {timeout_s} s: WAL at {:.1} MB/s fills max_wal_size {} MB early; \
         one interval needs {} MB x (1 + {target_ratio}) x {WAL_HEADROOM} headroom{}",
        c.requested,
        share * 100.0,
        interval,
        rate / 1_048_576.0,
        mb(current_kb),
        mb(rate * timeout_s / 1024.0),
        if capped {
            format!(
                ", capped at {:.0}% of the data disk's free space",
                WAL_DISK_SHARE * 100.0
            )
        } else {
            String::new()
        }
    );
    b.set(
        "checkpoints",
        "max_wal_size",
        format_kb(target),
        reason,
        evidence,
    );
}

/// The tables autovacuum falls behind on: many dead tuples (over [`DEAD_TUPLES`] and 10% of
/// the live ones) and no autovacuum for a day.
fn behind_tables(snap: &Snapshot) -> Vec<&Table> {
    let day_ago = snap.collected_at - Duration::days(1);
    snap.tables
        .iter()
        .filter(|t| {
            // A partitioned table has no rows of its own (its partitions are listed).
            t.kind != "p"
                && t.n_dead_tup > DEAD_TUPLES
                && t.n_dead_tup as f64 > 0.1 * t.n_live_tup.max(0) as f64
                && t.last_autovacuum.map_or(true, |v| v < day_ago)
        })
        .collect()
}

/// (d) autovacuum falling behind: scale factors of their own for a few large tables; the
/// global settings when more tables, or small ones, fall behind; more workers when every
/// worker is busy.
fn autovacuum(b: &mut Builder, input: &TuneInput, snap: &Snapshot) {
    // Tables with autovacuum turned off on them: no autovacuum setting reaches them.
    let (off, behind): (Vec<&Table>, Vec<&Table>) =
        behind_tables(snap).into_iter().partition(|t| {
            t.reloption("autovacuum_enabled").is_some_and(|v| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "false" | "off" | "no" | "0"
                )
            })
        });
    for t in off {
        b.out.notes.push(format!(
            "autovacuum is turned off on {}.{} (autovacuum_enabled = false) and it has {} dead \
             tuples: no autovacuum setting reaches it; ALTER TABLE {} RESET \
             (autovacuum_enabled), or VACUUM it on a schedule",
            t.schema,
            t.name,
            t.n_dead_tup,
            QualifiedName::new(&t.schema, &t.name)
        ));
    }
    if behind.is_empty() {
        return;
    }
    let global_sf = snap
        .setting_f64("autovacuum_vacuum_scale_factor")
        .unwrap_or(0.2);
    let large: Vec<&Table> = behind
        .iter()
        .copied()
        .filter(|t| t.n_live_tup >= LARGE_TABLE_ROWS)
        .collect();
    let per_table = large.len() <= PER_TABLE_MAX;
    if per_table {
        for t in &large {
            let sf = ((TARGET_DEAD_ROWS / t.n_live_tup as f64).clamp(0.001, 0.05) * 1000.0).round()
                / 1000.0;
            let own = t
                .reloption("autovacuum_vacuum_scale_factor")
                .and_then(|v| v.parse::<f64>().ok());
            if own.is_some_and(|v| v <= sf) {
                continue;
            }
            let now_sf = own.unwrap_or(global_sf);
            let evidence = ev(&[
                ("n_live_tup", json!(t.n_live_tup)),
                ("n_dead_tup", json!(t.n_dead_tup)),
                ("last_autovacuum", json!(t.last_autovacuum)),
                ("scale_factor_now", json!(now_sf)),
            ]);
            let reason = format!(
                "{} dead tuples ({:.0}% of {} live), no autovacuum for over a day: with scale \
                 factor {now_sf} autovacuum waits for about {} dead tuples; {sf} starts it at \
                 about {}",
                t.n_dead_tup,
                100.0 * t.n_dead_tup as f64 / t.n_live_tup.max(1) as f64,
                t.n_live_tup,
                (now_sf * t.n_live_tup as f64).round() as i64,
                (sf * t.n_live_tup as f64).round() as i64
            );
            for (name, value) in [
                ("autovacuum_vacuum_scale_factor", sf),
                ("autovacuum_analyze_scale_factor", (sf / 2.0).max(0.001)),
            ] {
                b.objects.push(ObjectSetting {
                    rule: "autovacuum",
                    kind: ObjectKind::Table,
                    schema: Some(t.schema.clone()),
                    object: t.name.clone(),
                    name,
                    value: format!("{value}"),
                    current: t.reloption(name).map(str::to_string),
                    reason: reason.clone(),
                    evidence: evidence.clone(),
                });
            }
        }
    }
    let small = behind.len() - large.len();
    let names: Vec<String> = behind
        .iter()
        .map(|t| format!("{}.{} ({} dead)", t.schema, t.name, t.n_dead_tup))
        .collect();
    let evidence = ev(&[("tables", json!(names))]);
    let list = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if small > 0 || !per_table {
        let why = format!(
            "autovacuum falls behind: {} with over {DEAD_TUPLES} dead tuples (>10% of \
             live) not autovacuumed for over a day: {list}",
            count(behind.len(), "table", "tables")
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
    // Every worker busy and more tables waiting than workers: more workers, and a cost limit
    // to match (it is shared among the running workers).
    let max_workers = snap
        .setting_f64("autovacuum_max_workers")
        .map(|v| v as i64)
        .unwrap_or(3);
    let running = snap
        .activity
        .as_ref()
        .map(|a| {
            a.sessions
                .iter()
                .filter(|s| s.backend_type.as_deref() == Some("autovacuum worker"))
                .count() as i64
        })
        .unwrap_or(0);
    if running >= max_workers && behind.len() as i64 > max_workers {
        let cpus = input.cpus.map_or(max_workers * 2, i64::from);
        let workers = (max_workers * 2).min(cpus.max(max_workers + 1));
        if workers > max_workers {
            let why = format!(
                "all {max_workers} autovacuum workers were busy with {} falling behind \
                 ({list}); the cost limit is shared among workers, so it rises with them",
                count(behind.len(), "table", "tables")
            );
            let ev_workers = ev(&[
                ("autovacuum_workers_running", json!(running)),
                ("autovacuum_max_workers", json!(max_workers)),
                ("tables", json!(names)),
            ]);
            b.set(
                "autovacuum",
                "autovacuum_max_workers",
                workers.to_string(),
                why.clone(),
                ev_workers.clone(),
            );
            b.set(
                "autovacuum",
                "autovacuum_vacuum_cost_limit",
                (2000 * workers / max_workers).to_string(),
                why,
                ev_workers,
            );
        }
    }
}

/// (d2) huge pages sized from the recommended shared_buffers: how many the host needs, and
/// huge_pages = try when the host has them.
fn huge_pages(b: &mut Builder, snap: &Snapshot) {
    let Some(sb_kb) = b.get("shared_buffers").and_then(kb) else {
        return;
    };
    // Shared memory beyond shared_buffers (lock tables, WAL buffers, ...): what the server
    // reports now (shared_memory_size, 15+) less its shared_buffers, else about 5% + 64MB.
    let overhead_kb = match (
        snap_kb(snap, "shared_memory_size"),
        snap_kb(snap, "shared_buffers"),
    ) {
        (Some(total), Some(sb)) if total > sb => (total - sb) as u64,
        _ => sb_kb / 20 + 64 * 1024,
    };
    let host_pages = snap.host.as_ref().and_then(|h| h.huge_pages.clone());
    let page_kb = host_pages
        .as_ref()
        .map(|h| h.page_size_kb)
        .filter(|&k| k > 0)
        .unwrap_or(2048);
    let needed = (sb_kb + overhead_kb).div_ceil(page_kb);
    let current = b.get("huge_pages").unwrap_or("try").to_string();
    let sysctl = format!(
        "sysctl -w vm.nr_hugepages={needed} (and the same line in /etc/sysctl.d/ to keep it)"
    );
    match host_pages {
        Some(h) if h.total >= needed && current == "off" => {
            b.set(
                "huge_pages",
                "huge_pages",
                "try".into(),
                format!(
                    "the host has {} huge pages of {page_kb} kB; shared memory of {} MB \
                     (shared_buffers {} + {} MB) needs {needed}: fewer TLB misses, no page \
                     tables per backend",
                    h.total,
                    (sb_kb + overhead_kb) / 1024,
                    format_kb(sb_kb),
                    overhead_kb / 1024
                ),
                ev(&[
                    ("huge_pages_total", json!(h.total)),
                    ("huge_page_kb", json!(page_kb)),
                    ("shared_memory_kb", json!(sb_kb + overhead_kb)),
                    ("huge_pages_needed", json!(needed)),
                ]),
            );
        }
        Some(h) if h.total >= needed => {}
        Some(h) if current != "off" || sb_kb >= 1024 * 1024 => b.out.notes.push(format!(
            "huge pages: shared memory of {} MB (shared_buffers {} + {} MB) needs {needed} huge \
             pages of {page_kb} kB and the host has {}{}: {sysctl}",
            (sb_kb + overhead_kb) / 1024,
            format_kb(sb_kb),
            overhead_kb / 1024,
            h.total,
            if current == "try" {
                ", so huge_pages = try falls back to normal pages"
            } else {
                ""
            }
        )),
        Some(_) => {}
        None if current != "off" => b.out.notes.push(format!(
            "huge pages: shared memory of {} MB (shared_buffers {} + {} MB) needs {needed} huge \
             pages of {page_kb} kB; on the server: {sysctl}",
            (sb_kb + overhead_kb) / 1024,
            format_kb(sb_kb),
            overhead_kb / 1024
        )),
        None => {}
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
    let current = snap
        .setting("shared_preload_libraries")
        .map_or("", |s| s.setting.as_str());
    let mut libs: Vec<&str> = current
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut added = Vec::new();
    if !libs.contains(&"pg_stat_statements") {
        libs.push("pg_stat_statements");
        added.push("pg_stat_statements");
    }
    // auto_explain ships in contrib beside pg_stat_statements: when that one is available,
    // so is this.
    let contrib = snap
        .extensions
        .available
        .iter()
        .any(|e| e == "pg_stat_statements")
        || snap.extensions.is_preloaded("auto_explain");
    if contrib && !libs.contains(&"auto_explain") {
        libs.push("auto_explain");
        added.push("auto_explain");
    }
    b.set(
        "observability",
        "shared_preload_libraries",
        libs.join(","),
        if added.is_empty() {
            format!("{why}: pg_stat_statements and auto_explain already loaded (kept)")
        } else {
            format!("{why}: load {}, keeping {current:?}", added.join(" and "))
        },
        ev(&[("current", json!(current))]),
    );
    if libs.contains(&"auto_explain") {
        b.set(
            "observability",
            "auto_explain.log_min_duration",
            AUTO_EXPLAIN_MS.into(),
            format!(
                "{why}: log the plan of statements slower than {} s (value in ms; takes \
                 effect once auto_explain is loaded)",
                AUTO_EXPLAIN_MS.parse::<u64>().unwrap_or(0) / 1000
            ),
            BTreeMap::new(),
        );
    }
}

/// (f) the governance profile's own settings, and a statement_timeout for the application
/// roles (roles that log in and are neither superusers nor replication roles).
fn governance(b: &mut Builder, snap: &Snapshot) {
    for r in snap.roles.iter().flatten() {
        if !r.can_login || r.superuser || r.replication || r.bootstrap {
            continue;
        }
        if r.config.iter().any(|c| c.starts_with("statement_timeout=")) {
            continue;
        }
        b.objects.push(ObjectSetting {
            rule: "governance",
            kind: ObjectKind::Role,
            schema: None,
            object: r.name.clone(),
            name: "statement_timeout",
            value: APP_STATEMENT_TIMEOUT.into(),
            current: None,
            reason: format!(
                "governance profile: application role {} (logs in, not a superuser) has no \
                 statement_timeout: a runaway query is cancelled after {APP_STATEMENT_TIMEOUT} \
                 instead of holding locks and a connection",
                r.name
            ),
            evidence: ev(&[("role", json!(r.name)), ("config", json!(r.config))]),
        });
    }
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
