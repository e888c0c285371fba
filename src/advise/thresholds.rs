//! The numbers the rules compare against, each named, documented and overridable.
//!
//! Every field cites the PostgreSQL documentation its meaning comes from. `pgopt` takes
//! overrides as `--threshold name=value` through [`Thresholds::set`]; ratios are fractions
//! (`0.99`, not `99`), durations seconds, sizes bytes.

/// Declares the struct, its `Default`, `names()` and `set()` from one list, so a threshold
/// cannot be added to one and forgotten in another.
macro_rules! thresholds {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty = $default:expr, $desc:literal; )*) => {
        /// Thresholds of every rule. See [`Thresholds::names`] for the list with defaults.
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct Thresholds {
            $( $(#[$doc])* pub $name: $ty, )*
        }

        impl Default for Thresholds {
            fn default() -> Self {
                Thresholds { $( $name: $default, )* }
            }
        }

        impl Thresholds {
            /// Every threshold: name, default value, description.
            pub fn names() -> Vec<(&'static str, String, &'static str)> {
                let d = Thresholds::default();
                vec![ $( (stringify!($name), d.$name.to_string(), $desc), )* ]
            }

            /// Overrides one threshold by field name, e.g. `set("long_query_warning_seconds", "30")`.
            pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
                match name.trim() {
                    $( stringify!($name) => {
                        self.$name = parse_value::<$ty>(name, value)?;
                        Ok(())
                    } )*
                    other => Err(format!(
                        "unknown threshold {other:?}; valid names: {}",
                        [$( stringify!($name) ),*].join(", ")
                    )),
                }
            }
        }
    };
}

/// A threshold value: a finite, non-negative number. Underscores are allowed (`1_048_576`).
trait ThresholdValue: Sized {
    fn parse_threshold(text: &str) -> Option<Self>;
}

impl ThresholdValue for f64 {
    fn parse_threshold(text: &str) -> Option<Self> {
        text.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    }
}

impl ThresholdValue for u64 {
    fn parse_threshold(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

impl ThresholdValue for usize {
    fn parse_threshold(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

fn parse_value<T: ThresholdValue>(name: &str, value: &str) -> Result<T, String> {
    let cleaned: String = value.trim().chars().filter(|c| *c != '_').collect();
    T::parse_threshold(&cleaned).ok_or_else(|| {
        format!(
            "threshold {name}: {value:?} is not a valid value (expected a non-negative {})",
            std::any::type_name::<T>()
                .replace("f64", "number")
                .replace("u64", "whole number")
                .replace("usize", "whole number")
        )
    })
}

impl Thresholds {
    /// The defaults with `NAME=VALUE` overrides (`--threshold`, for `analyze` and `tune`
    /// alike); an error names the bad item and points at `--threshold list`.
    pub fn with_overrides(items: &[String]) -> crate::error::Result<Thresholds> {
        let mut th = Thresholds::default();
        for item in items {
            let (name, value) = item.split_once('=').ok_or_else(|| {
                crate::error::Error::BadInput(format!(
                    "--threshold {item:?}: expected NAME=VALUE (see --threshold list)"
                ))
            })?;
            th.set(name.trim(), value.trim())
                .map_err(|e| crate::error::Error::BadInput(format!("--threshold {item:?}: {e}")))?;
        }
        Ok(th)
    }
}

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

thresholds! {
    /// Warn when the current database's cache hit ratio (blks_hit / (blks_hit + blks_read)) is
    /// below this. <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW>
    cache_hit_ratio_warning: f64 = 0.99, "warn when the cache hit ratio is below this (fraction)";
    /// Critical below this cache hit ratio.
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW>
    cache_hit_ratio_critical: f64 = 0.95, "critical when the cache hit ratio is below this (fraction)";
    /// The ratio is judged only once blks_hit + blks_read reaches this many blocks: right
    /// after a restart or stats reset it says nothing.
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW>
    cache_hit_min_blocks: u64 = 100_000, "blocks read or hit before the cache hit ratio is judged";

    /// Warn when client connections reach this share of max_connections minus the reserved
    /// slots. <https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-MAX-CONNECTIONS>
    connections_warning_ratio: f64 = 0.80, "warn when connections use this share of the available slots";
    /// Critical at this share of the available connection slots.
    /// <https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-SUPERUSER-RESERVED-CONNECTIONS>
    connections_critical_ratio: f64 = 0.95, "critical when connections use this share of the available slots";

    /// Warn when a session has been idle in transaction this long.
    /// <https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-IDLE-IN-TRANSACTION-SESSION-TIMEOUT>
    idle_in_transaction_warning_seconds: f64 = 60.0, "warn when a session is idle in transaction this long (s)";
    /// Critical when idle in transaction this long.
    /// <https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-IDLE-IN-TRANSACTION-SESSION-TIMEOUT>
    idle_in_transaction_critical_seconds: f64 = 600.0, "critical when a session is idle in transaction this long (s)";

    /// Warn when an active query has run this long.
    /// <https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-STATEMENT-TIMEOUT>
    long_query_warning_seconds: f64 = 60.0, "warn when an active query runs this long (s)";
    /// Critical when an active query has run this long.
    /// <https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-STATEMENT-TIMEOUT>
    long_query_critical_seconds: f64 = 600.0, "critical when an active query runs this long (s)";
    /// Warn when a transaction has been open this long: it holds back vacuum's cleanup horizon.
    /// <https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-SPACE-RECOVERY>
    long_transaction_warning_seconds: f64 = 600.0, "warn when a transaction is open this long (s)";
    /// Critical when a transaction has been open this long.
    /// <https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-SPACE-RECOVERY>
    long_transaction_critical_seconds: f64 = 3600.0, "critical when a transaction is open this long (s)";

    /// A prepared transaction (two-phase commit) waiting this long for its COMMIT or ROLLBACK
    /// PREPARED is reported. A transaction manager finishes the second phase within seconds;
    /// five minutes leaves room for one retrying after a network failure or a restart, while
    /// one older has most likely lost track of it (it holds its XID and locks until then).
    /// <https://www.postgresql.org/docs/current/sql-prepare-transaction.html>
    prepared_transaction_warning_seconds: f64 = 300.0, "report a prepared transaction this long after PREPARE TRANSACTION (s)";

    /// A root blocker holding up this many sessions (directly or through a chain) is critical.
    /// <https://www.postgresql.org/docs/current/functions-info.html#FUNCTIONS-INFO-SESSION-TABLE>
    blocking_critical_sessions: u64 = 5, "a blocker holding up this many sessions is critical";

    /// Indexes smaller than this are not reported as unused (tiny indexes are noise).
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-INDEXES-VIEW>
    unused_index_min_bytes: u64 = MIB, "smallest index reported as unused (bytes)";
    /// An index is called unused only when the statistics have been counting at least this
    /// long (since the database's stats_reset, or the server start when never reset): a scan
    /// count of zero over a few hours says nothing about the weekly report or the month-end
    /// job. Below it, pgopt says how long the statistics have run and waits.
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW>
    unused_index_min_stats_seconds: f64 = 7.0 * 86_400.0, "statistics window (s) needed before an index is called unused";

    /// Tables whose heap is smaller than this are not reported for sequential scans.
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-TABLES-VIEW>
    seq_scan_min_table_bytes: u64 = 10 * MIB, "smallest table (heap bytes) reported for sequential scans";
    /// Report when sequential scans are more than this share of all scans of the table.
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-TABLES-VIEW>
    seq_scan_min_share: f64 = 0.5, "report when seq_scan / (seq_scan + idx_scan) exceeds this";
    /// ... and each sequential scan read at least this many rows on average.
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-TABLES-VIEW>
    seq_scan_min_rows_per_scan: f64 = 10_000.0, "report when seq_tup_read / seq_scan is at least this";
    /// ... and the table was sequentially scanned at least this many times (one pg_dump is not a pattern).
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-TABLES-VIEW>
    seq_scan_min_scans: u64 = 50, "report only tables sequentially scanned at least this often";

    /// Dead tuples past the autovacuum threshold are reported only when the last vacuum is
    /// older than this (or never happened): then autovacuum is behind.
    /// <https://www.postgresql.org/docs/current/routine-vacuuming.html#AUTOVACUUM>
    vacuum_overdue_seconds: f64 = 86_400.0, "dead tuples past the threshold matter when the last vacuum is older than this (s)";

    /// Rows inserted since the last vacuum are reported when they exceed this multiple of the
    /// insert vacuum threshold (autovacuum_vacuum_insert_threshold +
    /// autovacuum_vacuum_insert_scale_factor × reltuples) and the last vacuum is overdue.
    /// <https://www.postgresql.org/docs/current/routine-vacuuming.html#AUTOVACUUM>
    vacuum_inserts_factor: f64 = 2.0, "report inserts since vacuum past this multiple of the insert vacuum threshold";

    /// A table is reported as bloated when it wastes at least this many bytes (measured by
    /// pgstattuple, else estimated from its statistics) ... A rewrite of a small table gains
    /// nothing worth its lock or its disk space.
    /// <https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-SPACE-RECOVERY>
    table_bloat_min_wasted_bytes: u64 = 100 * MIB, "report a table wasting at least this many bytes (bytes)";
    /// ... and at least this share of its size: below it, new rows refill the free space
    /// soon enough, and an estimate is within its own error.
    /// <https://www.postgresql.org/docs/current/pgstattuple.html>
    table_bloat_min_wasted_ratio: f64 = 0.30, "report a table wasting at least this share of its size";
    /// A btree index is reported as bloated when it wastes at least this many bytes.
    /// <https://www.postgresql.org/docs/current/btree-implementation.html>
    index_bloat_min_wasted_bytes: u64 = 50 * MIB, "report a btree index wasting at least this many bytes (bytes)";
    /// ... and at least this share of its size (leaves are built 90 % full; that is not waste).
    /// <https://www.postgresql.org/docs/current/sql-createindex.html#INDEX-RELOPTION-FILLFACTOR>
    index_bloat_min_wasted_ratio: f64 = 0.30, "report a btree index wasting at least this share of its size";

    /// Statistics are stale when n_mod_since_analyze exceeds this multiple of the autoanalyze
    /// threshold (autovacuum_analyze_threshold + autovacuum_analyze_scale_factor × reltuples).
    /// <https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-STATISTICS>
    stale_stats_factor: f64 = 2.0, "stale when modifications since analyze exceed this multiple of the autoanalyze threshold";

    /// Warn when a database's or table's XID age reaches this share of autovacuum_freeze_max_age.
    /// <https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-WRAPAROUND>
    xid_age_warning_ratio: f64 = 0.90, "warn at this share of autovacuum_freeze_max_age";
    /// Critical at this XID age (wraparound stops the server about 2^31 XIDs out).
    /// <https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-WRAPAROUND>
    xid_age_critical: u64 = 1_400_000_000, "critical at this XID age";
    /// Warn when the multixact age reaches this share of autovacuum_multixact_freeze_max_age.
    /// <https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-MULTIXACT-WRAPAROUND>
    multixact_age_warning_ratio: f64 = 0.90, "warn at this share of autovacuum_multixact_freeze_max_age";
    /// Critical at this multixact age.
    /// <https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-MULTIXACT-WRAPAROUND>
    multixact_age_critical: u64 = 1_400_000_000, "critical at this multixact age";

    /// Warn when a sequence has used this share of its limit (sequence or column type).
    /// <https://www.postgresql.org/docs/current/datatype-numeric.html#DATATYPE-INT>
    sequence_warning_ratio: f64 = 0.75, "warn when a sequence used this share of its limit";
    /// Critical at this share of the limit.
    /// <https://www.postgresql.org/docs/current/sql-altersequence.html>
    sequence_critical_ratio: f64 = 0.90, "critical when a sequence used this share of its limit";

    /// Warn when the current database wrote this many bytes of temporary files since the stats reset.
    /// <https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-WORK-MEM>
    temp_bytes_warning: u64 = GIB, "warn when the database wrote this many temp file bytes";

    /// Warn when this share of checkpoints was requested rather than timed: WAL fills
    /// max_wal_size before checkpoint_timeout comes round.
    /// <https://www.postgresql.org/docs/current/wal-configuration.html>
    checkpoints_requested_ratio: f64 = 0.2, "warn when this share of checkpoints was requested (max_wal_size reached) rather than timed";
    /// ... and at least this many checkpoints were requested.
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-BGWRITER-VIEW>
    checkpoints_requested_min: u64 = 3, "report requested checkpoints from this many";

    /// A statement taking this share of all execution time is reported.
    /// <https://www.postgresql.org/docs/current/pgstatstatements.html>
    slow_statement_min_total_share: f64 = 0.10, "report statements taking this share of total execution time";
    /// ... and only when each call is not trivially fast: some statement always leads the
    /// total, and a 0.1 ms lookup run a million times is a caching question, not a slow one
    /// (PgHero calls a query slow from 20 ms mean).
    /// <https://www.postgresql.org/docs/current/pgstatstatements.html>
    slow_statement_total_min_mean_ms: f64 = 10.0, "a statement reported by total time must also average this many ms per call";
    /// ... and have run for at least this long in all (ms): on a quiet or freshly reset
    /// server some statement leads the total with a few milliseconds.
    /// <https://www.postgresql.org/docs/current/pgstatstatements.html>
    slow_statement_total_min_ms: f64 = 1000.0, "a statement reported by total time must have run this many ms in all";
    /// A statement with at least this mean execution time (ms) is reported.
    /// <https://www.postgresql.org/docs/current/pgstatstatements.html>
    slow_statement_min_mean_ms: f64 = 100.0, "report statements with this mean execution time (ms)";
    /// At most this many statements per list (by total time, by mean time).
    /// <https://www.postgresql.org/docs/current/pgstatstatements.html>
    slow_statement_limit: usize = 5, "at most this many statements reported per list";

    /// Warn when a replication slot retains this much WAL (bytes): as much as the default
    /// max_wal_size, WAL that checkpoints can no longer recycle.
    /// <https://www.postgresql.org/docs/current/warm-standby.html#STREAMING-REPLICATION-SLOTS>
    slot_retained_warning_bytes: u64 = GIB, "warn when a replication slot retains this much WAL (bytes)";
    /// Critical when a slot retains this much WAL (bytes).
    /// <https://www.postgresql.org/docs/current/view-pg-replication-slots.html>
    slot_retained_critical_bytes: u64 = 16 * GIB, "critical when a replication slot retains this much WAL (bytes)";
    /// Critical when a slot's safe_wal_size is below this share of max_slot_wal_keep_size:
    /// that little more WAL and the slot is lost.
    /// <https://www.postgresql.org/docs/current/runtime-config-replication.html#GUC-MAX-SLOT-WAL-KEEP-SIZE>
    slot_safe_wal_critical_ratio: f64 = 0.2, "critical when safe_wal_size is below this share of max_slot_wal_keep_size";

    /// Warn when pg_wal holds more than this multiple of max_wal_size (or of wal_keep_size when
    /// that is larger): past it something keeps WAL that checkpoints would recycle.
    /// <https://www.postgresql.org/docs/current/wal-configuration.html>
    wal_directory_max_wal_size_ratio: f64 = 2.0, "warn when pg_wal holds this multiple of max_wal_size";

    /// Warn when this many segments wait to be archived (.ready files) while archiving does not
    /// fail: the archiver is falling behind (16 × 16 MB segments = 256 MB).
    /// <https://www.postgresql.org/docs/current/continuous-archiving.html#BACKUP-ARCHIVING-WAL>
    archive_ready_warning_files: u64 = 16, "warn when this many WAL segments wait to be archived";
    /// Failing archiving is critical from this many waiting segments (1 GB of 16 MB segments)...
    /// <https://www.postgresql.org/docs/current/continuous-archiving.html#BACKUP-ARCHIVING-WAL>
    archive_ready_critical_files: u64 = 64, "failing archiving is critical from this many waiting segments";
    /// ... or once nothing was archived for this long (s).
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ARCHIVER-VIEW>
    archive_failing_critical_seconds: f64 = 3600.0, "failing archiving is critical after this long without a success (s)";

    /// Warn when a disk of the data or WAL directory has less than this share free (the
    /// default of check_postgres's disk_space check is of the same order). A full WAL disk
    /// stops the server.
    /// <https://www.postgresql.org/docs/current/disk-full.html>
    disk_free_warning_ratio: f64 = 0.15, "warn when the data or WAL disk has less than this share free";
    /// Critical below this share free (also when the WAL disk has less free than max_wal_size,
    /// the WAL one checkpoint cycle may need).
    /// <https://www.postgresql.org/docs/current/disk-full.html>
    disk_free_critical_ratio: f64 = 0.05, "critical when the data or WAL disk has less than this share free";

    /// `pgopt tune`: the work_mem budget is planned for at least this many connections, however
    /// few were seen. <https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-WORK-MEM>
    tune_connection_floor: u64 = 20, "tune: plan the work_mem budget for at least this many connections";
    /// `pgopt tune`: a pooler is urged from this share of max_connections (less the reserved
    /// slots) in use. <https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-MAX-CONNECTIONS>
    tune_near_max_connections_ratio: f64 = 0.8, "tune: urge a pooler from this share of the available connection slots in use";
    /// `pgopt tune`: work_mem × connections × 2 may take this share of memory (a sort or hash
    /// node may use work_mem, several per query). <https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-WORK-MEM>
    tune_work_mem_memory_share: f64 = 0.25, "tune: share of memory work_mem x connections x 2 may take";
    /// `pgopt tune`: max_connections this many times the connections seen earns a note (lower
    /// it, or a pooler). <https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-MAX-CONNECTIONS>
    tune_max_connections_unused_factor: f64 = 10.0, "tune: note max_connections at this multiple of the connections seen";
    /// `pgopt tune`: largest share of memory shared_buffers is raised to.
    /// <https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-SHARED-BUFFERS>
    tune_shared_buffers_max_share: f64 = 0.40, "tune: largest share of memory shared_buffers is raised to";
    /// `pgopt tune`: temp files per day (over the statistics window) from which spills count
    /// as a pattern and work_mem is raised.
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW>
    tune_temp_files_per_day: f64 = 10.0, "tune: temp files per day from which work_mem is raised";
    /// `pgopt tune`: statistics window (s) below which no temp-file rate is stated: a rate over
    /// minutes says nothing about a day.
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW>
    tune_temp_rate_min_window_seconds: f64 = 3600.0, "tune: statistics window (s) needed before a temp-file rate is stated";
    /// `pgopt tune`: cache hit ratio under which shared_buffers is raised.
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW>
    tune_cache_hit_ratio: f64 = 0.99, "tune: raise shared_buffers when the cache hit ratio is below this (fraction)";
    /// `pgopt tune`: dead tuples above which a table not autovacuumed for a day counts as
    /// falling behind. <https://www.postgresql.org/docs/current/routine-vacuuming.html#AUTOVACUUM>
    tune_dead_tuples: u64 = 10_000, "tune: dead tuples from which a table not vacuumed for a day falls behind";
    /// `pgopt tune`: ... and more dead tuples than this share of its live ones (with no
    /// autovacuum for `vacuum_overdue_seconds`).
    /// <https://www.postgresql.org/docs/current/routine-vacuuming.html#AUTOVACUUM>
    tune_dead_tuples_live_share: f64 = 0.1, "tune: ... and dead tuples above this share of the live ones";
    /// `pgopt tune`: live rows from which a table falling behind gets scale factors of its own.
    /// <https://www.postgresql.org/docs/current/sql-createtable.html#SQL-CREATETABLE-STORAGE-PARAMETERS>
    tune_large_table_rows: u64 = 1_000_000, "tune: live rows from which a table falling behind gets its own scale factors";
    /// `pgopt tune`: dead tuples a large table's own scale factor aims to start autovacuum at.
    /// <https://www.postgresql.org/docs/current/runtime-config-autovacuum.html#GUC-AUTOVACUUM-VACUUM-SCALE-FACTOR>
    tune_target_dead_rows: f64 = 100_000.0, "tune: dead tuples a large table's own scale factor starts autovacuum at";
    /// `pgopt tune`: tables falling behind above which the global autovacuum settings change
    /// too. <https://www.postgresql.org/docs/current/runtime-config-autovacuum.html>
    tune_per_table_max: usize = 3, "tune: tables falling behind above which the global autovacuum settings change";
    /// `pgopt tune`: requested checkpoints below this count say nothing.
    /// <https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-CHECKPOINTER-VIEW>
    tune_checkpoints_requested_min: u64 = 3, "tune: requested checkpoints from which max_wal_size is looked at";
    /// `pgopt tune`: share of checkpoints requested (not timed) from which max_wal_size is
    /// looked at. <https://www.postgresql.org/docs/current/wal-configuration.html>
    tune_checkpoints_requested_ratio: f64 = 0.2, "tune: share of requested checkpoints from which max_wal_size is looked at";
    /// `pgopt tune`: checkpoint statistics window (s) below which no WAL rate or checkpoint
    /// interval is stated. <https://www.postgresql.org/docs/current/wal-configuration.html>
    tune_checkpoint_min_window_seconds: f64 = 60.0, "tune: checkpoint statistics window (s) needed before a WAL rate is stated";
    /// `pgopt tune`: headroom on the WAL one checkpoint_timeout interval needs.
    /// <https://www.postgresql.org/docs/current/runtime-config-wal.html#GUC-MAX-WAL-SIZE>
    tune_wal_headroom: f64 = 1.25, "tune: headroom on the WAL a checkpoint_timeout interval needs";
    /// `pgopt tune`: share of the data disk's free space max_wal_size may take.
    /// <https://www.postgresql.org/docs/current/disk-full.html>
    tune_wal_disk_share: f64 = 0.25, "tune: share of the data disk's free space max_wal_size may take";
    // index advisor: candidates
    /// `pgopt indexes`: a table with fewer rows than this (pg_class.reltuples), and fewer
    /// pages than `index_tiny_table_pages`, gets no index: reading it whole is as cheap.
    /// <https://www.postgresql.org/docs/current/indexes-intro.html>
    index_tiny_table_rows: f64 = 1_000.0, "indexes: tables with fewer rows (and pages) than this get no index";
    /// `pgopt indexes`: the page count (pg_class.relpages) below which, with
    /// `index_tiny_table_rows`, a table is too small to index.
    /// <https://www.postgresql.org/docs/current/storage-page-layout.html>
    index_tiny_table_pages: u64 = 10, "indexes: tables with fewer pages (and rows) than this get no index";
    /// `pgopt indexes`: a lone equality column whose value keeps more than this share of the
    /// rows (pg_stats most_common_freqs / n_distinct) is not indexed: the planner reads the
    /// table instead. <https://www.postgresql.org/docs/current/planner-stats-details.html>
    index_low_selectivity_share: f64 = 0.1, "indexes: a lone equality keeping more than this share of rows is too unselective";
    /// `pgopt indexes`: a constant condition (a boolean, IS NULL, a common value) keeping at
    /// most this share of the rows becomes a partial index's WHERE.
    /// <https://www.postgresql.org/docs/current/indexes-partial.html>
    index_partial_max_share: f64 = 0.1, "indexes: constant conditions keeping at most this share of rows make a partial index";
    /// `pgopt indexes`: an equality constant makes a partial index only on a column with at
    /// most this many distinct values (an enum-like status, not an id).
    /// <https://www.postgresql.org/docs/current/indexes-partial.html>
    index_partial_max_distinct: f64 = 100.0, "indexes: partial indexes on equality constants only for columns with at most this many distinct values";
    /// `pgopt indexes`: a covering index INCLUDEs at most this many columns the statement
    /// reads. <https://www.postgresql.org/docs/current/indexes-index-only-scans.html>
    index_include_max_columns: usize = 3, "indexes: most columns a covering index INCLUDEs";
    /// `pgopt indexes`: a covering index INCLUDEs columns of at most this many bytes in all
    /// (pg_stats.avg_width). <https://www.postgresql.org/docs/current/indexes-index-only-scans.html>
    index_include_max_bytes: f64 = 64.0, "indexes: most bytes (average width) a covering index INCLUDEs";
    /// `pgopt indexes`: most equality columns put before the range or sort column of one
    /// candidate. <https://www.postgresql.org/docs/current/indexes-multicolumn.html>
    index_max_key_columns: usize = 4, "indexes: most key columns of one candidate";

    // index advisor: select
    /// `pgopt indexes`: a statement whose plan costs less than this (planner cost units, one
    /// run) is left alone: there is too little to win (Dexter's "low initial cost" is 100 too).
    /// <https://www.postgresql.org/docs/current/runtime-config-query.html#RUNTIME-CONFIG-QUERY-CONSTANTS>
    index_min_initial_cost: f64 = 100.0, "indexes: leave alone statements whose plan costs less than this (plan cost units)";
    /// `pgopt indexes`: an index must cut the plan cost of at least one statement by this much
    /// (planner cost units, one run; about one random page read is 4).
    /// <https://www.postgresql.org/docs/current/runtime-config-query.html#GUC-RANDOM-PAGE-COST>
    index_min_gain_cost: f64 = 10.0, "indexes: least plan cost an index must save a statement (plan cost units per run)";
    /// `pgopt indexes`: ... and by at least this share of that statement's plan cost without
    /// new indexes (Dexter asks for half; lower, so that an index that cuts a statement by a
    /// third is still proposed).
    /// <https://www.postgresql.org/docs/current/using-explain.html>
    index_min_gain_ratio: f64 = 0.2, "indexes: least share of a statement's plan cost an index must save";
    /// `pgopt indexes`: what keeping one index up to date costs per row written to its table,
    /// in planner cost units: about the plan cost of one single-row index lookup (a descent to
    /// a leaf page: 8 at the default random_page_cost), plus the dirtied page and its WAL.
    /// An index is refused when the table's writes over the statistics window cost more than
    /// the index saves the pg_stat_statements workload over that window.
    /// <https://www.postgresql.org/docs/current/btree-implementation.html>
    index_write_cost_per_row: f64 = 10.0, "indexes: maintenance cost of an index per row written to its table (plan cost units)";
    /// `pgopt indexes`: a statement under `index_min_initial_cost` is still worked for when it
    /// takes more than this share of the workload's time (calls × mean time): a cheap lookup
    /// run thousands of times a second is where an index pays most.
    /// <https://www.postgresql.org/docs/current/pgstatstatements.html>
    index_cheap_statement_min_share: f64 = 0.001, "indexes: share of the workload's time that makes a cheap statement worth an index";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_overrides_by_name() {
        let mut th = Thresholds::default();
        th.set("long_query_warning_seconds", "30").unwrap();
        assert_eq!(th.long_query_warning_seconds, 30.0);
        th.set("unused_index_min_bytes", "2_097_152").unwrap();
        assert_eq!(th.unused_index_min_bytes, 2 * MIB);
        th.set("slow_statement_limit", "3").unwrap();
        assert_eq!(th.slow_statement_limit, 3);
    }

    #[test]
    fn set_rejects_unknown_names_listing_valid_ones() {
        let err = Thresholds::default().set("cache_hit", "0.5").unwrap_err();
        assert!(err.contains("unknown threshold"), "{err}");
        assert!(err.contains("cache_hit_ratio_warning"), "{err}");
    }

    #[test]
    fn set_rejects_bad_values() {
        let mut th = Thresholds::default();
        assert!(th.set("cache_hit_ratio_warning", "abc").is_err());
        assert!(th.set("cache_hit_ratio_warning", "-1").is_err());
        assert!(th.set("cache_hit_ratio_warning", "NaN").is_err());
        assert!(th.set("unused_index_min_bytes", "1.5").is_err());
        assert_eq!(th, Thresholds::default(), "failed sets change nothing");
    }

    #[test]
    fn names_lists_every_field_with_its_default() {
        let names = Thresholds::names();
        let json = serde_json::to_value(Thresholds::default()).unwrap();
        assert_eq!(names.len(), json.as_object().unwrap().len());
        let (_, default, desc) = names
            .iter()
            .find(|(n, _, _)| *n == "cache_hit_ratio_warning")
            .unwrap();
        assert_eq!(default, "0.99");
        assert!(!desc.is_empty());
    }
}
