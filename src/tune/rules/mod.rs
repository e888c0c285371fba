//! The evidence rules of `--method pgopt`, one file per rule (as `advise/` keeps its rules).
//!
//! Each rule reads the [`Snapshot`] and the [`Thresholds`] and changes the recommendation in
//! the [`Builder`]: a setting with its reason and evidence, a per-table or per-role setting,
//! or a note. Pure: no I/O, no database layer.

mod autovacuum;
pub(crate) use autovacuum::table_scale_factors;
mod cache;
mod checkpoints;
mod connections;
mod governance;
mod huge_pages;
mod observability;
mod temp_spills;

pub(crate) use std::collections::BTreeMap;

pub(crate) use chrono::Duration;
pub(crate) use serde_json::{json, Value};

pub(crate) use super::evidence::{
    table_name, Change, ObjectKind, ObjectSetting, APP_STATEMENT_TIMEOUT, AUTO_EXPLAIN_MS,
};
pub(crate) use super::pgtune::{format_kb, PgTuneOutput, Setting};
pub(crate) use super::{compare, Profile, TuneInput};
pub(crate) use crate::advise::{count, duration, Thresholds};
pub(crate) use crate::snapshot::{Snapshot, Table};

/// Every rule in order, on `b` (PGTune's baseline after the server checks).
pub(crate) fn apply_all(b: &mut Builder, input: &TuneInput, snap: &Snapshot, th: &Thresholds) {
    let mem_kb = input.memory.kb();
    temp_spills::temp_spills(b, mem_kb, snap, th);
    connections::connections(b, snap, th);
    cache::cache(b, mem_kb, snap, th);
    checkpoints::checkpoints(b, snap, th);
    autovacuum::autovacuum(b, input, snap, th);
    huge_pages::huge_pages(b, snap);
    observability::observability(b, snap);
    if input.profile == Profile::Governance {
        governance::governance(b, snap);
    }
}

pub(crate) struct Builder {
    pub(crate) out: PgTuneOutput,
    pub(crate) changes: Vec<Change>,
    pub(crate) objects: Vec<ObjectSetting>,
}

impl Builder {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.out.value(name)
    }

    pub(crate) fn set(
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

pub(crate) fn ev(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// A memory value as printed (`4MB`, `512kB`) in kB.
pub(crate) fn kb(value: &str) -> Option<u64> {
    compare::value_kb(value, 1.0).map(|k| k as u64)
}

/// kB rounded down to whole MB when at least 1MB.
pub(crate) fn round_kb(k: u64) -> u64 {
    if k >= 1024 {
        k / 1024 * 1024
    } else {
        k
    }
}

/// A memory setting of the server in kB (its value times its unit).
pub(crate) fn snap_kb(snap: &Snapshot, name: &str) -> Option<f64> {
    let s = snap.setting(name)?;
    let value: f64 = s.setting.parse().ok()?;
    Some(value * compare::unit_kb(s.unit.as_deref().unwrap_or("kB"))?)
}

/// Seconds the cumulative statistics cover: since `reset`, else since the server started
/// (None when neither is known). Callers compare it with their own floor: below it no rate is
/// stated.
pub(crate) fn stats_window(
    snap: &Snapshot,
    reset: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<f64> {
    match reset {
        Some(r) => Some((snap.collected_at - r).num_milliseconds() as f64 / 1000.0),
        None => snap.server.as_ref().map(|s| s.uptime_seconds),
    }
    .map(|w| w.max(0.0))
}

/// Connections actually used: the observed total, at least `tune_connection_floor`.
pub(crate) fn active_connections(snap: &Snapshot, th: &Thresholds) -> (i64, Option<i64>) {
    let observed = snap.activity.as_ref().map(|a| a.total_connections);
    (
        observed.unwrap_or(0).max(th.tune_connection_floor as i64),
        observed,
    )
}

/// A fraction as a percentage for a reason, without float noise: 0.99 -> `99`, 0.995 -> `99.5`.
pub(crate) fn percent(fraction: f64) -> String {
    let p = (fraction * 10_000.0).round() / 100.0;
    format!("{p}")
}
