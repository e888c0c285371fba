//! One light sample's raw reading of a server, as it came: gauges, and the cumulative
//! counters that [`super::delta`] turns into rates against the previous reading.
//!
//! Plain data: filled by [`super::sample`] (I/O), read by the pure delta code and its tests.

use std::collections::{BTreeMap, HashMap};

use crate::serve::model::Ts;

/// What says which server, and which life of it, answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `pg_postmaster_start_time()`: moves on a restart or a crash recovery.
    pub postmaster_start: Ts,
    /// `pg_is_in_recovery()`.
    pub in_recovery: bool,
    /// The timeline of the last checkpoint (`pg_control_checkpoint()`), when this role may
    /// read it: rises on a promotion.
    pub timeline: Option<i64>,
    /// `pg_control_system().system_identifier`, when this role may read it: another value
    /// means another cluster (a physical standby shares its primary's).
    pub system_identifier: Option<i64>,
    /// `server_version` as the server spells it.
    pub version: String,
}

/// Cumulative counters of one database (`pg_stat_database`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DbCounters {
    pub xact_commit: i64,
    pub xact_rollback: i64,
    pub blks_read: i64,
    pub blks_hit: i64,
    pub tup_returned: i64,
    pub tup_inserted: i64,
    pub tup_updated: i64,
    pub tup_deleted: i64,
    pub deadlocks: i64,
    pub temp_bytes: i64,
    /// Set by `pg_stat_reset()` in that database.
    pub stats_reset: Option<Ts>,
}

impl DbCounters {
    /// The counters in a fixed order, to compare them all at once.
    pub fn counters(&self) -> [i64; 10] {
        [
            self.xact_commit,
            self.xact_rollback,
            self.blks_read,
            self.blks_hit,
            self.tup_returned,
            self.tup_inserted,
            self.tup_updated,
            self.tup_deleted,
            self.deadlocks,
            self.temp_bytes,
        ]
    }
}

/// Cumulative counters of one statement (every pg_stat_statements entry of that queryid,
/// all users and databases, summed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatementCounters {
    pub calls: i64,
    pub total_exec_ms: f64,
    pub rows: i64,
    pub temp_blks_written: i64,
}

/// pg_stat_statements as one sample saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatementsRaw {
    /// `pg_stat_statements_info.stats_reset` (extension 1.9+): moves on a full reset.
    pub stats_reset: Option<Ts>,
    /// `pg_stat_statements_info.dealloc`: entries evicted to make room.
    pub dealloc: Option<i64>,
    pub entries: HashMap<i64, StatementCounters>,
}

/// One light sample's reading, before deltas.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    /// When the daemon took it (the sample's timestamp).
    pub at: Ts,
    /// `clock_timestamp()` on the server: rates are over the server's interval, the clock
    /// the counters were counted by.
    pub server_now: Ts,
    pub identity: Identity,
    /// Gauges by metric name (connections, lag, ...), as they go into the sample.
    pub values: BTreeMap<String, f64>,
    /// Keyed gauges (connections by state, ...).
    pub keyed: BTreeMap<String, BTreeMap<String, f64>>,
    /// `pg_stat_database` by database oid (0: shared objects).
    pub databases: BTreeMap<i64, DbCounters>,
    /// The WAL insert position in bytes, on a primary.
    pub wal_bytes: Option<f64>,
    /// `block_size`, for temp_blks_written in bytes.
    pub block_size: i64,
    /// None when pg_stat_statements is not installed (or not loaded) in the database.
    pub statements: Option<StatementsRaw>,
}
