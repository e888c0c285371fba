//! The history store: one trait, two backends (SQLite by default, PostgreSQL for teams
//! running several daemons), the same tests run against both.
//!
//! Points are stored at three resolutions: raw samples, 5-minute rollups and hourly
//! rollups (average and maximum of each bucket). [`Store::maintain`] makes the rollups
//! of closed buckets and deletes what is past each resolution's retention. Reads pick
//! the finest resolution that still covers the range asked for.
//!
//! The trait is synchronous: the daemon calls it from `spawn_blocking`, batching writes.
//! A write either lands whole or not at all (one transaction per batch).

pub mod memory;
pub mod postgres;
mod sql;
pub mod sqlite;
pub mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::Config;
use super::model::{Event, Point, Ts};

/// How long each resolution is kept (`[retention]` in pgopt.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub raw: Duration,
    pub five_minutes: Duration,
    pub hourly: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const HOUR: u64 = 3600;
        Self {
            raw: Duration::from_secs(48 * HOUR),
            five_minutes: Duration::from_secs(30 * 24 * HOUR),
            hourly: Duration::from_secs(365 * 24 * HOUR),
        }
    }
}

/// A resolution points are kept at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Raw,
    FiveMinutes,
    Hourly,
}

impl Resolution {
    /// The bucket width in seconds (0 for raw).
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Raw => 0,
            Resolution::FiveMinutes => 300,
            Resolution::Hourly => 3600,
        }
    }
}

/// A read of one series (or, with `key: None`, of every key of a keyed metric).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub target: String,
    pub metric: String,
    /// `Some("")` for a server-wide metric; `Some(queryid)`; `None`: every key.
    pub key: Option<String>,
    pub from: Ts,
    pub to: Ts,
    /// `None`: the finest resolution whose retention still covers `from`.
    pub resolution: Option<Resolution>,
}

/// One point read back: for rollups, `value` is the bucket's average and `max` its
/// maximum; the bucket's start is `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub key: String,
    pub at: Ts,
    pub value: f64,
    pub max: f64,
}

/// What [`Store::maintain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintainStats {
    pub rolled_up: u64,
    pub deleted: u64,
}

/// Why a store operation failed. The message never holds a password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or database is not a pgopt store (nothing was written to it).
    #[error("{0}")]
    NotAStore(String),
    /// Written by a newer pgopt (nothing was written to it).
    #[error("{0}")]
    TooNew(String),
    /// Disk full, permissions, a lost connection: the daemon keeps the batch in memory and
    /// tries again.
    #[error("{0}")]
    Io(String),
}

/// What the writer hands a store at once: points, statement texts by target and
/// queryid, events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub points: Vec<Point>,
    pub statements: BTreeMap<String, BTreeMap<i64, String>>,
    pub events: Vec<Event>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.statements.is_empty() && self.events.is_empty()
    }
}

/// The history store.
pub trait Store: Send + Sync {
    /// Writes a batch of points in one transaction.
    fn write(&self, points: &[Point]) -> Result<(), StoreError>;
    /// Remembers statement texts by (target, queryid); a later text replaces an earlier.
    fn put_statements(&self, target: &str, texts: &[(i64, String)]) -> Result<(), StoreError>;
    /// Appends events.
    fn put_events(&self, events: &[Event]) -> Result<(), StoreError>;
    /// Reads points, ordered by key then time.
    fn query(&self, q: &Query) -> Result<Vec<Row>, StoreError>;
    /// The text of a statement, if it was stored.
    fn statement(&self, target: &str, queryid: i64) -> Result<Option<String>, StoreError>;
    /// Events of one target (or all with `None`) in `[from, to)`, newest first, at most `limit`.
    fn events(
        &self,
        target: Option<&str>,
        from: Ts,
        to: Ts,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;
    /// The newest point's time per target (a restarted daemon resumes from there).
    fn last_points(&self) -> Result<Vec<(String, Ts)>, StoreError>;
    /// Makes the rollups of buckets closed before `now` and deletes what is past retention.
    fn maintain(&self, now: Ts, retention: &Retention) -> Result<MaintainStats, StoreError>;
    /// Bytes the store takes (file size, or the tables' size).
    fn size_bytes(&self) -> Result<u64, StoreError>;
    /// Writes points, statement texts and events. The SQLite and PostgreSQL stores do it in
    /// one transaction; rewriting a batch that landed already changes nothing (a point is
    /// keyed by series and time).
    fn write_batch(&self, batch: &Batch) -> Result<(), StoreError> {
        self.write(&batch.points)?;
        for (target, texts) in &batch.statements {
            let texts: Vec<(i64, String)> = texts.iter().map(|(q, t)| (*q, t.clone())).collect();
            self.put_statements(target, &texts)?;
        }
        self.put_events(&batch.events)
    }
}

/// The daemon's store: PostgreSQL when `config.store` is set, else the SQLite file in
/// `config.data_dir`.
pub async fn open(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    match &config.store {
        Some(dsn) if dsn.expose() == "memory" => Ok(Arc::new(memory::MemoryStore::new())),
        Some(dsn) => Ok(Arc::new(postgres::PgStore::connect(dsn).await?)),
        None => {
            let dir = config.data_dir.clone();
            let store = tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(&dir))
                .await
                .map_err(|e| StoreError::Io(format!("opening the SQLite store: {e}")))??;
            Ok(Arc::new(store))
        }
    }
}
