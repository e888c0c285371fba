//! The daemon's current state, in memory: what the pages and `/metrics` show between
//! reads of the store. Written by the scheduler, the writer and the alerts; read by HTTP.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::Serialize;

use super::model::{Sample, Ts};
use crate::advise::Finding;

/// Whether a target answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Health {
    /// Not collected yet.
    Unknown,
    Up {
        since: Ts,
    },
    /// The last collection failed: `error` says why (redacted: no password, no DSN).
    Down {
        since: Ts,
        error: String,
        attempts: u32,
    },
}

/// One alert's state on one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertStatus {
    /// The rule's name from the config.
    pub rule: String,
    pub target: String,
    /// For statement rules and regressions: the queryid; else "".
    pub key: String,
    pub state: AlertState,
    /// When the condition first held (pending) or the alert fired.
    pub since: Ts,
    pub value: f64,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

/// What the daemon knows now about one target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetView {
    pub name: String,
    /// Groups and labels from the config.
    pub labels: BTreeMap<String, String>,
    pub health: Health,
    pub last_sample: Option<Sample>,
    /// Findings of the last full snapshot, and when it was taken.
    pub findings: Vec<Finding>,
    pub snapshot_at: Option<Ts>,
    /// The server's version and role (primary / standby) as last seen.
    pub server: Option<String>,
}

impl TargetView {
    pub fn new(name: &str, labels: BTreeMap<String, String>) -> Self {
        Self {
            name: name.to_string(),
            labels,
            health: Health::Unknown,
            last_sample: None,
            findings: Vec::new(),
            snapshot_at: None,
            server: None,
        }
    }
}

/// The store's health as the writer last saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreHealth {
    /// The last error, while writes fail.
    pub error: Option<String>,
    /// Points held in memory, waiting for the store.
    pub pending_points: usize,
    pub last_write: Option<Ts>,
}

/// The whole fleet's state.
#[derive(Debug, Default)]
pub struct Fleet {
    pub targets: RwLock<Vec<TargetView>>,
    pub alerts: RwLock<Vec<AlertStatus>>,
    pub store: RwLock<StoreHealth>,
    /// Failed collections per target since the daemon started (`/metrics`'
    /// `pgopt_collection_errors_total`); see [`Fleet::count_error`].
    pub collection_errors: RwLock<BTreeMap<String, u64>>,
}

impl Fleet {
    pub fn new(targets: Vec<TargetView>) -> Self {
        Self {
            targets: RwLock::new(targets),
            ..Self::default()
        }
    }

    /// Runs `f` on the view of `name`, if there is one.
    pub fn update<R>(&self, name: &str, f: impl FnOnce(&mut TargetView) -> R) -> Option<R> {
        let mut targets = self.targets.write().unwrap_or_else(|p| p.into_inner());
        targets.iter_mut().find(|t| t.name == name).map(f)
    }

    /// Counts one failed collection of `target`.
    pub fn count_error(&self, target: &str) {
        let mut errors = self
            .collection_errors
            .write()
            .unwrap_or_else(|p| p.into_inner());
        *errors.entry(target.to_string()).or_insert(0) += 1;
    }

    /// Failed collections per target since the start.
    pub fn errors_total(&self) -> BTreeMap<String, u64> {
        self.collection_errors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A copy of every target's view.
    pub fn views(&self) -> Vec<TargetView> {
        self.targets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
