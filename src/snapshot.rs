//! The snapshot: everything pgopt knows about one server at one moment.
//!
//! Plain serde data, collected once (src/collect/) in one REPEATABLE READ READ ONLY
//! transaction, then handed to the pure advisors and renderers. `pgopt analyze --save`
//! writes it and `--from` reads it back, so it is versioned: bump [`SCHEMA_VERSION`] and
//! note the change below whenever a field changes meaning or is removed.
//!
//! Changelog:
//! - 1: first version. Later in 1, without a bump (old files read as `false`):
//!   `Table::locked` and `Index::locked`. Later still, also without a bump (old files read as
//!   `None`, "not collected"): `Snapshot::hba_rules` and `Snapshot::roles`, for the security
//!   review. No password hash is ever stored, only its kind. Later still, also without a bump,
//!   for the xmin horizon: `Session::backend_xid_age` and `ReplicationSender::backend_xmin_age`
//!   (old files read as `None`) and `Snapshot::prepared_xacts` (`None`, "not collected").
//!   Later, also without a bump (old files read as `None` / not collected):
//!   `Snapshot::wal_directory`, `Snapshot::archiver`, `Snapshot::triggers`,
//!   `HostInfo::wal_disk` and `HostInfo::wal_directory`,
//!   `ReplicationSlot::wal_status` and `ReplicationSlot::safe_wal_size_bytes`. Later still,
//!   also without a bump (old files read as `None`): `Snapshot::bloat`, table and btree index
//!   bloat.
//! - 2: what `pgopt tune` needs, so that it advises from the snapshot alone (`tune --from`):
//!   `Snapshot::setting_domains` (pg_settings' min_val, max_val, enumvals, sourcefile); `Snapshot::role_settings`
//!   (pg_db_role_setting); `Snapshot::data_storage` (the storage under the data directory and
//!   how that was found); `Snapshot::stats_window` (how long the cumulative statistics have
//!   counted). Version 1 files still load: the new fields read as absent ("not collected"),
//!   and [`Snapshot::lacks_for_tune`] names them.
//!
//! This module does no I/O beyond reading and writing the file it is asked to.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use compact_str::CompactString;
pub use smallvec::SmallVec;

/// A catalog name (schema, relation, access method, operator class, ...). Names of up to 24
/// bytes, which are nearly all of them, are stored inline with no allocation of their own:
/// at 100,000 tables and 200,000 indexes that is most of the snapshot's memory.
pub type Name = CompactString;

/// The key or INCLUDE columns (or operator classes) of an index: a single one, the usual
/// case, is stored inline.
pub type Names = SmallVec<[Name; 1]>;

/// Version of the snapshot file format. Files from a newer version are refused.
pub const SCHEMA_VERSION: u32 = 2;
/// The oldest schema version still read; its missing fields load as "not collected".
pub const OLDEST_READABLE_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub schema_version: u32,
    pub pgopt_version: String,
    /// Server clock at the start of the collecting transaction (`now()`).
    pub collected_at: DateTime<Utc>,
    pub target: TargetInfo,
    pub server: Option<ServerInfo>,
    pub settings: Vec<Setting>,
    pub host: Option<HostInfo>,
    /// pg_stat_database rows, one per database (the connected one is `target.database`).
    pub databases: Vec<DatabaseStats>,
    pub activity: Option<Activity>,
    pub tables: Vec<Table>,
    pub indexes: Vec<Index>,
    pub foreign_keys: Vec<ForeignKey>,
    pub sequences: Vec<Sequence>,
    pub statements: Option<Statements>,
    pub replication: Option<Replication>,
    pub extensions: Extensions,
    pub privileges: Option<Privileges>,
    /// pg_hba_file_rules, in file order; None when not collected (it needs a superuser or a
    /// GRANT SELECT on the view).
    #[serde(default)]
    pub hba_rules: Option<Vec<HbaRule>>,
    /// Every role of pg_roles with how its password is stored; None when not collected.
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    /// Checkpoint and WAL counters (pg_stat_bgwriter or pg_stat_checkpointer, pg_stat_wal);
    /// None when not collected.
    #[serde(default)]
    pub checkpoints: Option<Checkpoints>,
    /// Whether the server accepts `wal_compression = lz4` (tried with SET LOCAL in a savepoint
    /// rolled back at once; PostgreSQL 15+ built with lz4); None when not checked (before 15,
    /// or the role may not set it).
    #[serde(default)]
    pub wal_compression_lz4: Option<bool>,
    /// Prepared transactions (pg_prepared_xacts), oldest first; None when not collected.
    #[serde(default)]
    pub prepared_xacts: Option<Vec<PreparedXact>>,
    /// pg_wal's size and file count (pg_ls_waldir(): superuser or pg_monitor); None when not
    /// collected.
    #[serde(default)]
    pub wal_directory: Option<WalDirectory>,
    /// pg_stat_archiver with the `.ready` files waiting; None when not collected.
    #[serde(default)]
    pub archiver: Option<Archiver>,
    /// Triggers written by users (not internal ones such as foreign-key triggers) on user
    /// tables of the connected database; None when not collected.
    #[serde(default)]
    pub triggers: Option<Vec<Trigger>>,
    /// Table and btree index bloat, estimated and (with pgstattuple) measured; None when not
    /// collected.
    #[serde(default)]
    pub bloat: Option<Bloat>,
    /// The range, enum values and source file of each setting of `settings`, same order;
    /// None when not collected (schema version 1).
    #[serde(default)]
    pub setting_domains: Option<Vec<SettingDomain>>,
    /// Settings of roles in databases (pg_db_role_setting): `ALTER ROLE r [IN DATABASE d] SET
    /// ...`; None when not collected (schema version 1).
    #[serde(default)]
    pub role_settings: Option<Vec<RoleSetting>>,
    /// The storage under the data directory and how that was found (sysfs of this machine);
    /// None when not collected (schema version 1).
    #[serde(default)]
    pub data_storage: Option<StorageSource>,
    /// How long the cumulative statistics of the connected database have counted; None when
    /// not collected (schema version 1) or unknown.
    #[serde(default)]
    pub stats_window: Option<StatsWindow>,
    /// What each section did: collected, skipped (with the reason and the next step) or failed.
    pub sections: Vec<SectionStatus>,
}

/// Where the snapshot came from. Never holds a password.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TargetInfo {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
}

impl TargetInfo {
    /// The server runs on the machine that collected: a unix socket directory, localhost or
    /// a loopback address.
    pub fn is_local(&self) -> bool {
        is_local_host(&self.host)
    }
}

/// A unix socket directory, localhost or a loopback address.
pub fn is_local_host(host: &str) -> bool {
    if host.starts_with('/') || host.starts_with('@') || host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerInfo {
    /// `version()`
    pub version: String,
    /// `server_version_num`, e.g. 150008.
    pub version_num: i32,
    pub started_at: DateTime<Utc>,
    pub uptime_seconds: f64,
    pub in_recovery: bool,
    /// The data directory, when the role may read it (superuser or pg_read_all_settings).
    pub data_directory: Option<String>,
    pub database_sizes: Vec<DatabaseSize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatabaseSize {
    pub name: String,
    pub size_bytes: i64,
}

/// One row of pg_settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Setting {
    pub name: String,
    pub setting: String,
    pub unit: Option<String>,
    pub vartype: String,
    pub source: String,
    pub context: String,
    pub boot_val: Option<String>,
    pub reset_val: Option<String>,
    pub pending_restart: bool,
}

/// What values a setting takes and which file sets it: the rest of its pg_settings row,
/// kept apart from [`Setting`] (schema version 2).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SettingDomain {
    pub name: String,
    /// Smallest value the server takes (numeric settings).
    pub min_val: Option<String>,
    pub max_val: Option<String>,
    /// The values an enum setting takes.
    pub enumvals: Option<Vec<String>>,
    /// The file that sets it (superusers and pg_read_all_settings only).
    pub sourcefile: Option<String>,
}

/// One row of pg_db_role_setting: settings of a role, of a database, or of a role in one
/// database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoleSetting {
    /// None: every database.
    pub database: Option<String>,
    /// None: every role.
    pub role: Option<String>,
    /// `name=value` as stored.
    pub config: Vec<String>,
}

/// How long the cumulative statistics have counted, and since what.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatsWindow {
    pub seconds: f64,
    /// `stats_reset` (pg_stat_database of the connected database) or `server start`.
    pub since: String,
}

/// The storage the data lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    Hdd,
    Ssd,
    San,
    Nvme,
}

/// A whole disk under the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub name: String,
    /// `queue/rotational`; None when it could not be read.
    pub rotational: Option<bool>,
    /// Why this looks like a virtual disk (whose rotational flag is unreliable), when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_disk: Option<String>,
}

/// The block device holding the data directory and the disks under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDevice {
    /// As sysfs names it: a partition (`vda1`), `dm-0`, `md0` or a disk (`vda`).
    pub device: String,
    pub disks: Vec<Disk>,
}

/// Where the storage input came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum StorageSource {
    /// `--storage` was given (never in a snapshot).
    Flag,
    /// Read from the sysfs of the machine the server runs on.
    Detected {
        storage: Storage,
        data_directory: String,
        device: BlockDevice,
    },
    /// Not detected: the default is used.
    NotDetected { reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostInfo {
    pub cpus: usize,
    /// Physical memory of the machine.
    pub memory_bytes: u64,
    /// The cgroup memory limit, when one is set below physical memory.
    pub cgroup_memory_limit_bytes: Option<u64>,
    /// Disk holding the data directory, when known.
    pub data_disk: Option<DiskInfo>,
    /// The WAL directory with its symlink resolved (pg_wal may live on another filesystem),
    /// when pgopt may read the data directory.
    #[serde(default)]
    pub wal_directory: Option<String>,
    /// Disk holding the resolved WAL directory, when known (the same as `data_disk` unless
    /// pg_wal is a symlink to another filesystem).
    #[serde(default)]
    pub wal_disk: Option<DiskInfo>,
    /// Huge pages of this machine (/proc/meminfo); None off Linux or when unreadable.
    #[serde(default)]
    pub huge_pages: Option<HugePages>,
}

/// HugePages_Total, HugePages_Free and Hugepagesize of /proc/meminfo.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HugePages {
    pub total: u64,
    pub free: u64,
    pub page_size_kb: u64,
}

/// Checkpoints since the counters' reset, and WAL written since pg_stat_wal's reset.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Checkpoints {
    /// Scheduled by checkpoint_timeout (checkpoints_timed, num_timed on 17+).
    pub timed: i64,
    /// Requested: max_wal_size reached, CHECKPOINT, a base backup, ... (checkpoints_req).
    pub requested: i64,
    pub write_time_ms: f64,
    pub sync_time_ms: f64,
    /// Buffers written by checkpoints.
    pub buffers_written: i64,
    /// Buffers backends had to write themselves (before 17).
    pub buffers_backend: Option<i64>,
    pub stats_reset: Option<DateTime<Utc>>,
    /// WAL bytes since pg_stat_wal's reset (14+).
    pub wal_bytes: Option<i64>,
    pub wal_stats_reset: Option<DateTime<Utc>>,
}

impl HostInfo {
    /// Memory the server can really use: the cgroup limit when there is one.
    pub fn effective_memory_bytes(&self) -> u64 {
        match self.cgroup_memory_limit_bytes {
            Some(limit) if limit < self.memory_bytes => limit,
            _ => self.memory_bytes,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DiskInfo {
    pub mount_point: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// One row of pg_stat_database, with the wraparound ages of pg_database.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DatabaseStats {
    pub name: String,
    pub numbackends: i64,
    pub xact_commit: i64,
    pub xact_rollback: i64,
    pub blks_read: i64,
    pub blks_hit: i64,
    pub temp_files: i64,
    pub temp_bytes: i64,
    pub deadlocks: i64,
    pub conflicts: i64,
    pub stats_reset: Option<DateTime<Utc>>,
    /// age(datfrozenxid)
    pub frozenxid_age: i64,
    /// mxid_age(datminmxid)
    pub minmxid_age: i64,
    /// pg_database.datallowconn (false for template0): nobody can connect to vacuum it by
    /// hand. Snapshots written before it was collected load as true.
    #[serde(default = "live_by_default")]
    pub allow_connections: bool,
}

impl DatabaseStats {
    /// blks_hit / (blks_hit + blks_read), or None before any block was read.
    pub fn cache_hit_ratio(&self) -> Option<f64> {
        let total = self.blks_hit + self.blks_read;
        (total > 0).then(|| self.blks_hit as f64 / total as f64)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Activity {
    pub max_connections: i64,
    pub superuser_reserved_connections: i64,
    /// Client backends (all databases), pgopt's own connection included.
    pub total_connections: i64,
    pub by_state: Vec<StateCount>,
    /// Backends worth looking at: active, idle in transaction, waiting. pgopt's own left out.
    pub sessions: Vec<Session>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StateCount {
    pub state: String,
    pub wait_event_type: Option<String>,
    pub wait_event: Option<String>,
    pub count: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub pid: i32,
    pub database: Option<String>,
    pub user: Option<String>,
    pub application_name: Option<String>,
    pub client_addr: Option<String>,
    pub backend_type: Option<String>,
    pub state: Option<String>,
    pub wait_event_type: Option<String>,
    pub wait_event: Option<String>,
    /// Seconds since the transaction started.
    pub xact_age_seconds: Option<f64>,
    /// Seconds since the current (or last) query started.
    pub query_age_seconds: Option<f64>,
    /// Seconds since the state last changed (how long idle in transaction).
    pub state_age_seconds: Option<f64>,
    /// age(backend_xmin): how far this backend's snapshot holds back vacuum.
    pub backend_xmin_age: Option<i64>,
    /// age(backend_xid): the age of the transaction ID this backend holds, set once its
    /// transaction has written. A held XID holds back the horizon of every other snapshot.
    #[serde(default)]
    pub backend_xid_age: Option<i64>,
    /// pg_blocking_pids(pid)
    pub blocked_by: Vec<i32>,
    /// Query text, cut to a bounded length.
    pub query: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Table {
    pub oid: u32,
    pub schema: Name,
    pub name: Name,
    /// pg_class.relkind: r (table), p (partitioned), m (materialized view).
    pub kind: Name,
    pub heap_bytes: i64,
    pub indexes_bytes: i64,
    pub toast_bytes: i64,
    pub total_bytes: i64,
    pub reltuples: f64,
    pub relpages: i64,
    pub seq_scan: i64,
    pub seq_tup_read: i64,
    pub idx_scan: Option<i64>,
    pub idx_tup_fetch: Option<i64>,
    pub n_live_tup: i64,
    pub n_dead_tup: i64,
    pub n_mod_since_analyze: i64,
    pub n_ins_since_vacuum: i64,
    pub last_vacuum: Option<DateTime<Utc>>,
    pub last_autovacuum: Option<DateTime<Utc>>,
    pub last_analyze: Option<DateTime<Utc>>,
    pub last_autoanalyze: Option<DateTime<Utc>>,
    /// The larger of age(relfrozenxid) of the table and of its TOAST table.
    pub frozenxid_age: i64,
    /// The larger of mxid_age(relminmxid) of the table and of its TOAST table.
    pub minmxid_age: i64,
    /// pg_class.reloptions as `name=value` (per-table autovacuum settings win over globals).
    pub reloptions: Vec<String>,
    /// Under a granted AccessExclusiveLock while collecting (an ALTER TABLE, VACUUM FULL, ...):
    /// the sizes are relpages × block size, not measured.
    #[serde(default)]
    pub locked: bool,
    /// `heap_bytes` and `toast_bytes` are estimates from pg_class (relpages × block size,
    /// scaled by the rows counted since: see [`crate::collect`]), not measured on disk. The
    /// largest relations, those findings are about and those pg_class cannot size are
    /// measured. Snapshots written before this was collected load as measured.
    #[serde(default)]
    pub size_estimated: bool,
}

impl Table {
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// A per-table storage option (`autovacuum_vacuum_scale_factor`, ...), when set.
    pub fn reloption(&self, name: &str) -> Option<&str> {
        self.reloptions.iter().find_map(|opt| {
            let (k, v) = opt.split_once('=')?;
            (k == name).then_some(v)
        })
    }

    /// The newest of last_vacuum and last_autovacuum.
    pub fn last_any_vacuum(&self) -> Option<DateTime<Utc>> {
        self.last_vacuum.max(self.last_autovacuum)
    }

    /// The newest of last_analyze and last_autoanalyze.
    pub fn last_any_analyze(&self) -> Option<DateTime<Utc>> {
        self.last_analyze.max(self.last_autoanalyze)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Index {
    pub oid: u32,
    pub schema: Name,
    pub table: Name,
    pub name: Name,
    /// pg_get_indexdef(), for the indexes the exact pass measured (the largest, and those of
    /// the tables and indexes findings are about); empty for the others and for locked ones.
    pub definition: Name,
    /// Access method: btree, hash, gin, gist, brin, ...
    pub access_method: Name,
    /// Key columns, in order; an expression column shows as its expression text.
    pub key_columns: Names,
    /// pg_index.indkey for the key columns (0 marks an expression).
    pub key_attnums: SmallVec<[i16; 8]>,
    /// INCLUDE columns.
    pub include_columns: Names,
    /// Operator classes of the key columns, by name.
    pub opclasses: Names,
    /// Collation OIDs of the key columns (0 where not collatable).
    pub collations: SmallVec<[u32; 4]>,
    /// pg_get_expr(indexprs) when the index has expression columns.
    pub expressions: Option<String>,
    /// pg_get_expr(indpred) for a partial index.
    pub predicate: Option<String>,
    pub size_bytes: i64,
    pub idx_scan: i64,
    pub idx_tup_read: i64,
    pub idx_tup_fetch: i64,
    pub is_valid: bool,
    pub is_ready: bool,
    /// pg_index.indislive: false while (or after a failed) DROP INDEX CONCURRENTLY. Snapshots
    /// written before it was collected load as live.
    #[serde(default = "live_by_default")]
    pub is_live: bool,
    pub is_unique: bool,
    pub is_primary: bool,
    pub is_exclusion: bool,
    pub is_replica_identity: bool,
    /// The constraint this index backs, if any.
    pub constraint_name: Option<Name>,
    /// The index or its table was under a granted AccessExclusiveLock while collecting, so it
    /// could not be deparsed without waiting: `definition` and expression key columns are
    /// empty, `expressions` and `predicate` are None whatever the index has, and the size is
    /// relpages × block size. Rules comparing definitions must leave such indexes alone.
    #[serde(default)]
    pub locked: bool,
    /// `size_bytes` is an estimate from pg_class, not measured (see [`Table::size_estimated`]).
    #[serde(default)]
    pub size_estimated: bool,
}

impl Index {
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
    pub fn table_qualified_name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ForeignKey {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub columns: Vec<String>,
    pub attnums: Vec<i16>,
    pub ref_schema: String,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Sequence {
    pub schema: String,
    pub name: String,
    /// smallint, integer or bigint.
    pub data_type: String,
    /// NULL before first use or without privilege to read it.
    pub last_value: Option<i64>,
    pub min_value: i64,
    pub max_value: i64,
    pub increment_by: i64,
    pub cycle: bool,
    /// The column fed by this sequence (serial, identity, or a nextval() default).
    pub column: Option<SequenceColumn>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SequenceColumn {
    pub schema: String,
    pub table: String,
    pub column: String,
    /// smallint, integer, bigint, numeric, ...
    pub data_type: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Statements {
    /// Version of the installed pg_stat_statements extension.
    pub extension_version: String,
    /// Statements tracked in all (before keeping the top N).
    pub tracked: i64,
    /// Sum of total_exec_time over all tracked statements, ms.
    pub total_exec_time_ms: f64,
    /// Top statements by total time, then by mean time, deduplicated.
    pub top: Vec<Statement>,
    pub stats_reset: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Statement {
    pub queryid: i64,
    pub user: Option<String>,
    pub database: Option<String>,
    pub query: String,
    pub calls: i64,
    pub total_exec_time_ms: f64,
    pub mean_exec_time_ms: f64,
    pub stddev_exec_time_ms: f64,
    pub rows: i64,
    pub shared_blks_hit: i64,
    pub shared_blks_read: i64,
    pub temp_blks_read: i64,
    pub temp_blks_written: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Replication {
    pub in_recovery: bool,
    pub senders: Vec<ReplicationSender>,
    pub slots: Vec<ReplicationSlot>,
    /// Set on a standby.
    pub standby: Option<StandbyStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReplicationSender {
    pub pid: i32,
    pub application_name: Option<String>,
    pub client_addr: Option<String>,
    pub state: Option<String>,
    pub sync_state: Option<String>,
    /// pg_current_wal_lsn() - replay_lsn, bytes.
    pub replay_lag_bytes: Option<i64>,
    pub write_lag_seconds: Option<f64>,
    pub flush_lag_seconds: Option<f64>,
    pub replay_lag_seconds: Option<f64>,
    /// age(backend_xmin): the xmin the standby reports with hot_standby_feedback (without a
    /// slot; with one, the slot's xmin carries it).
    #[serde(default)]
    pub backend_xmin_age: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReplicationSlot {
    pub name: String,
    pub slot_type: String,
    pub active: bool,
    pub xmin_age: Option<i64>,
    pub catalog_xmin_age: Option<i64>,
    /// WAL kept for this slot, bytes.
    pub retained_bytes: Option<i64>,
    /// reserved, extended, unreserved or lost (pg_replication_slots.wal_status, 13+); None
    /// when the slot never reserved WAL or in snapshots from before it was collected.
    #[serde(default)]
    pub wal_status: Option<String>,
    /// WAL that can still be written before this slot is in danger of losing what it needs
    /// (safe_wal_size); None when max_slot_wal_keep_size is -1 (unlimited) or not collected.
    #[serde(default)]
    pub safe_wal_size_bytes: Option<i64>,
}

/// The WAL directory as the server lists it (pg_ls_waldir()).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WalDirectory {
    /// Sum of the sizes of the files in pg_wal (segments, history files, not subdirectories).
    pub size_bytes: i64,
    pub file_count: i64,
    /// wal_segment_size, bytes.
    pub segment_bytes: i64,
}

/// pg_stat_archiver, and the WAL segments waiting to be archived.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Archiver {
    pub archived_count: i64,
    pub last_archived_wal: Option<String>,
    pub last_archived_time: Option<DateTime<Utc>>,
    pub failed_count: i64,
    pub last_failed_wal: Option<String>,
    pub last_failed_time: Option<DateTime<Utc>>,
    pub stats_reset: Option<DateTime<Utc>>,
    /// `.ready` files in pg_wal/archive_status (pg_ls_archive_statusdir(): superuser or
    /// pg_monitor); None when not read.
    pub ready_files: Option<i64>,
    /// Modification time of the oldest `.ready` file: how long the oldest segment has waited.
    pub oldest_ready_time: Option<DateTime<Utc>>,
}

/// One trigger of a user table (pg_trigger, tgisinternal = false).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Trigger {
    pub schema: String,
    pub table: String,
    pub name: String,
    /// pg_trigger.tgenabled: O (fires in origin and local mode), D (disabled), R (replica
    /// mode only), A (always).
    pub enabled: String,
    /// The function it runs, schema-qualified.
    pub function: String,
    /// A constraint trigger (CREATE CONSTRAINT TRIGGER).
    pub is_constraint: bool,
}

/// One prepared transaction (PREPARE TRANSACTION, two-phase commit) waiting for its COMMIT
/// PREPARED or ROLLBACK PREPARED. It keeps its XID and its locks until then, even across a
/// restart.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PreparedXact {
    /// The global transaction identifier given to PREPARE TRANSACTION.
    pub gid: String,
    pub owner: Option<String>,
    /// The database it was prepared in: COMMIT / ROLLBACK PREPARED must run there.
    pub database: Option<String>,
    /// Seconds since it was prepared.
    pub age_seconds: f64,
    /// age(transaction): how far it holds back the xmin horizon.
    pub xid_age: Option<i64>,
    /// Locks it holds (pg_locks rows of its dummy backend).
    pub locks: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StandbyStatus {
    /// receive LSN - replay LSN, bytes.
    pub replay_gap_bytes: Option<i64>,
    /// Seconds since the last replayed transaction (raw, not forced to zero).
    pub last_replay_age_seconds: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Extensions {
    pub installed: Vec<InstalledExtension>,
    /// Extensions the server could install (pg_available_extensions), by name.
    pub available: Vec<String>,
    /// shared_preload_libraries, split.
    pub preloaded: Vec<String>,
}

impl Extensions {
    pub fn is_installed(&self, name: &str) -> bool {
        self.installed.iter().any(|e| e.name == name)
    }
    pub fn is_preloaded(&self, name: &str) -> bool {
        self.preloaded.iter().any(|l| l == name)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InstalledExtension {
    pub name: String,
    pub version: String,
    pub schema: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Privileges {
    pub role: String,
    pub is_superuser: bool,
    pub pg_monitor: bool,
    pub pg_read_all_stats: bool,
    pub pg_read_all_settings: bool,
}

impl Privileges {
    /// Whether the role sees other roles' query texts and activity.
    pub fn sees_all_stats(&self) -> bool {
        self.is_superuser || self.pg_monitor || self.pg_read_all_stats
    }
}

/// One line of pg_hba.conf as the server parsed it (pg_hba_file_rules).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HbaRule {
    pub line_number: i32,
    /// local, host, hostssl, hostnossl, hostgssenc, hostnogssenc.
    pub conn_type: String,
    pub databases: Vec<String>,
    pub users: Vec<String>,
    /// An IP address, a host name or a keyword (all, samehost, samenet); None for local.
    pub address: Option<String>,
    pub netmask: Option<String>,
    /// trust, reject, scram-sha-256, md5, password, peer, ident, cert, ...
    pub auth_method: Option<String>,
    /// Why the server could not use this line, when it could not.
    pub error: Option<String>,
}

impl HbaRule {
    /// A TCP line (host, hostssl, hostnossl, hostgssenc, hostnogssenc), not a unix socket one.
    pub fn is_host(&self) -> bool {
        self.conn_type.starts_with("host")
    }

    /// A TCP line that only admits this machine (127.0.0.0/8, ::1, localhost, samehost).
    pub fn is_loopback_only(&self) -> bool {
        let Some(addr) = self.address.as_deref() else {
            return false;
        };
        match addr {
            "localhost" | "samehost" => return true,
            _ => {}
        }
        let (ip, prefix) = match parse_cidr(addr, self.netmask.as_deref()) {
            Some(v) => v,
            None => return false,
        };
        match ip {
            std::net::IpAddr::V4(v4) => v4.is_loopback() && prefix >= 8,
            std::net::IpAddr::V6(v6) => v6.is_loopback() && prefix == 128,
        }
    }

    /// A TCP line that admits every address (all, 0.0.0.0/0, ::/0).
    pub fn is_open_to_all(&self) -> bool {
        match self.address.as_deref() {
            Some("all") => true,
            Some(addr) => matches!(parse_cidr(addr, self.netmask.as_deref()), Some((_, 0))),
            None => false,
        }
    }
}

/// An address and its netmask (or a CIDR address) as (address, prefix length).
fn parse_cidr(addr: &str, netmask: Option<&str>) -> Option<(std::net::IpAddr, u32)> {
    let (ip_text, cidr) = match addr.split_once('/') {
        Some((ip, len)) => (ip, Some(len.parse::<u32>().ok()?)),
        None => (addr, None),
    };
    let ip: std::net::IpAddr = ip_text.parse().ok()?;
    let prefix = match (cidr, netmask) {
        (Some(len), _) => len,
        (None, Some(mask)) => match mask.parse::<std::net::IpAddr>().ok()? {
            std::net::IpAddr::V4(m) => u32::from(m).leading_ones(),
            std::net::IpAddr::V6(m) => u128::from(m).leading_ones(),
        },
        (None, None) => {
            if ip.is_ipv4() {
                32
            } else {
                128
            }
        }
    };
    Some((ip, prefix))
}

/// How a role's password is stored. The hash itself is never collected.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PasswordKind {
    /// No password: the role cannot log in by password.
    Missing,
    /// An MD5 hash (`md5...`), deprecated and crackable.
    Md5,
    /// A SCRAM-SHA-256 verifier.
    ScramSha256,
    /// Anything else (a plain-text password stored by an ancient server).
    Other,
}

/// One role of pg_roles.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Role {
    pub name: String,
    pub superuser: bool,
    pub can_login: bool,
    /// rolvaliduntil; None when unset or infinity.
    pub valid_until: Option<DateTime<Utc>>,
    /// The bootstrap superuser made by initdb (oid 10).
    pub bootstrap: bool,
    /// How the password is stored; None when unknown (pg_authid is readable by superusers only).
    pub password: Option<PasswordKind>,
    /// The role's own settings (rolconfig, `name=value`), for every database.
    #[serde(default)]
    pub config: Vec<String>,
    /// May start replication (rolreplication).
    #[serde(default)]
    pub replication: bool,
}

/// Space tables and btree indexes hold beyond what their rows need.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Bloat {
    /// Tables and materialized views big enough to judge (at least the collect's minimum
    /// pages), not under an AccessExclusiveLock.
    pub tables: Vec<RelationBloat>,
    /// Valid btree indexes big enough to judge.
    pub indexes: Vec<RelationBloat>,
    /// The server's block size, bytes.
    pub block_size: i64,
    /// Candidates left unmeasured by pgstattuple, each with why (time budget, timeout, ...).
    #[serde(default)]
    pub measure_notes: Vec<String>,
}

/// Bloat of one table or btree index.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RelationBloat {
    pub oid: u32,
    pub schema: String,
    /// The table (for an index, its table).
    pub table: String,
    /// The index name; None for a table.
    pub index: Option<String>,
    /// relpages × block size.
    pub size_bytes: i64,
    /// The fillfactor in force (heap default 100, btree 90): its free share is not waste.
    pub fillfactor: i32,
    /// The row-width estimate from the statistics; None when it cannot be trusted.
    pub estimate: Option<BloatFigure>,
    /// Why there is no estimate (no pg_stats rows, never analyzed, partial or expression
    /// index).
    pub untrusted: Option<String>,
    /// Measured by pgstattuple (pgstattuple_approx for tables, pgstatindex for indexes);
    /// None when not measured.
    pub measured: Option<BloatFigure>,
}

impl RelationBloat {
    /// `schema.table` or `schema.index`, unquoted, for messages.
    pub fn qualified_name(&self) -> String {
        format!(
            "{}.{}",
            self.schema,
            self.index.as_deref().unwrap_or(&self.table)
        )
    }
}

/// Wasted space of a relation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BloatFigure {
    pub wasted_bytes: i64,
    /// wasted_bytes over the relation's size.
    pub wasted_ratio: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SectionState {
    Collected,
    Skipped,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SectionStatus {
    pub section: String,
    pub state: SectionState,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// What to do so that it is collected next time.
    pub next_step: Option<String>,
    pub elapsed_ms: f64,
}

impl Snapshot {
    /// An empty snapshot of `target`, taken at `collected_at`; collectors fill it in.
    pub fn new(target: TargetInfo, collected_at: DateTime<Utc>) -> Self {
        Snapshot {
            schema_version: SCHEMA_VERSION,
            pgopt_version: env!("CARGO_PKG_VERSION").to_string(),
            collected_at,
            target,
            server: None,
            settings: Vec::new(),
            host: None,
            databases: Vec::new(),
            activity: None,
            tables: Vec::new(),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
            sequences: Vec::new(),
            statements: None,
            replication: None,
            extensions: Extensions::default(),
            privileges: None,
            hba_rules: None,
            roles: None,
            checkpoints: None,
            wal_compression_lz4: None,
            prepared_xacts: None,
            wal_directory: None,
            archiver: None,
            triggers: None,
            bloat: None,
            setting_domains: None,
            role_settings: None,
            data_storage: None,
            stats_window: None,
            sections: Vec::new(),
        }
    }

    pub fn setting(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().find(|s| s.name == name)
    }

    /// A setting parsed as a number (in its own unit), when present and numeric.
    pub fn setting_f64(&self, name: &str) -> Option<f64> {
        self.setting(name)?.setting.parse().ok()
    }

    /// The statistics row of the database pgopt connected to.
    pub fn current_database(&self) -> Option<&DatabaseStats> {
        self.databases
            .iter()
            .find(|d| d.name == self.target.database)
    }

    /// What `pgopt tune` would read from this snapshot and cannot, one line each (empty for a
    /// snapshot of the current schema with every tune section collected). A snapshot of an
    /// older schema loads with these fields absent; tune then says what it went without.
    pub fn lacks_for_tune(&self) -> Vec<String> {
        let old = self.schema_version < SCHEMA_VERSION;
        let why = |what: &str| {
            if old {
                format!(
                    "{what}: not in this snapshot (schema version {}; collect it again for them)",
                    self.schema_version
                )
            } else {
                format!("{what}: not collected")
            }
        };
        let mut lacks = Vec::new();
        if self.data_storage.is_none() {
            lacks.push(why("the storage under the data directory (the default ssd is used unless --storage is given)"));
        }
        if self.role_settings.is_none() {
            lacks.push(why(
                "role settings of pg_db_role_setting (only pg_roles.rolconfig is read)",
            ));
        }
        if self.stats_window.is_none() {
            lacks.push(why(
                "the statistics window (derived from stats_reset or the server start instead)",
            ));
        }
        if self.setting_domains.is_none() {
            lacks.push(why(
                "the ranges and enum values of pg_settings (values are not checked against them)",
            ));
        }
        lacks
    }

    pub fn section(&self, name: &str) -> Option<&SectionStatus> {
        self.sections.iter().find(|s| s.section == name)
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Parses a saved snapshot, refusing files of another schema version with a clear error.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::SnapshotFile {
                path: origin.to_string(),
                reason: format!(
                    "not a pgopt snapshot ({e}); was the file cut short? Save it again with `pgopt analyze --save FILE`"
                ),
            })?;
        let version = value
            .get("schema_version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| Error::SnapshotFile {
                path: origin.to_string(),
                reason: "it has no schema_version: not a pgopt snapshot".to_string(),
            })?;
        if version > SCHEMA_VERSION as u64 {
            return Err(Error::SnapshotFile {
                path: origin.to_string(),
                reason: format!(
                    "it is schema version {version}, newer than the {SCHEMA_VERSION} this pgopt {} reads; upgrade pgopt",
                    env!("CARGO_PKG_VERSION")
                ),
            });
        }
        if version < OLDEST_READABLE_VERSION as u64 {
            return Err(Error::SnapshotFile {
                path: origin.to_string(),
                reason: format!(
                    "it is schema version {version}, older than {OLDEST_READABLE_VERSION}; collect it again"
                ),
            });
        }
        serde_json::from_value(value).map_err(|e| Error::SnapshotFile {
            path: origin.to_string(),
            reason: format!("it does not match schema version {SCHEMA_VERSION}: {e}"),
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::files::write_atomically(path, &self.to_json()?)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::SnapshotFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_json(&text, &path.display().to_string())
    }
}

/// The default of flags that older snapshots did not collect and that are true on almost
/// every object (indislive, datallowconn).
fn live_by_default() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_and_columns_keep_their_json_shape_inline_or_not() {
        let long = "an_index_name_longer_than_twenty_four_bytes";
        let index = Index {
            schema: "public".into(),
            table: "t".into(),
            name: long.into(),
            key_columns: ["a".into(), "b".into(), "lower(c)".into()]
                .into_iter()
                .collect(),
            key_attnums: [1, 2, 0].into_iter().collect(),
            opclasses: ["int4_ops".into()].into_iter().collect(),
            collations: [0, 0, 100].into_iter().collect(),
            constraint_name: Some(long.into()),
            ..Default::default()
        };
        let json = serde_json::to_value(&index).unwrap();
        assert_eq!(json["name"], long);
        assert_eq!(
            json["key_columns"],
            serde_json::json!(["a", "b", "lower(c)"])
        );
        assert_eq!(json["key_attnums"], serde_json::json!([1, 2, 0]));
        assert_eq!(json["include_columns"], serde_json::json!([]));
        assert_eq!(json["collations"], serde_json::json!([0, 0, 100]));
        let back: Index = serde_json::from_value(json).unwrap();
        assert_eq!(back, index);
    }

    fn host(address: &str, netmask: Option<&str>) -> HbaRule {
        HbaRule {
            conn_type: "host".to_string(),
            address: Some(address.to_string()),
            netmask: netmask.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn hba_addresses_are_classified_as_the_server_parses_them() {
        let v6_all_ones = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        assert!(host("127.0.0.1", Some("255.255.255.255")).is_loopback_only());
        assert!(host("127.0.0.0", Some("255.0.0.0")).is_loopback_only());
        assert!(!host("127.0.0.0", Some("254.0.0.0")).is_loopback_only());
        assert!(host("::1", Some(v6_all_ones)).is_loopback_only());
        assert!(!host("::1", Some("ffff::")).is_loopback_only());
        assert!(host("localhost", None).is_loopback_only());
        assert!(!host("db.example.com", None).is_loopback_only());

        assert!(host("0.0.0.0", Some("0.0.0.0")).is_open_to_all());
        assert!(host("::", Some("::")).is_open_to_all());
        assert!(host("all", None).is_open_to_all());
        assert!(host("10.0.0.0/0", None).is_open_to_all());
        assert!(!host("10.0.0.0", Some("255.0.0.0")).is_open_to_all());
        assert!(!host("samenet", None).is_open_to_all());

        let local = HbaRule {
            conn_type: "local".to_string(),
            ..Default::default()
        };
        assert!(!local.is_host() && !local.is_loopback_only() && !local.is_open_to_all());
    }
}
