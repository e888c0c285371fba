/* pgopt: one row of pg_stat_archiver: segments archived and failed, the last of each and when */
SELECT a.archived_count,
       a.last_archived_wal,
       a.last_archived_time,
       a.failed_count,
       a.last_failed_wal,
       a.last_failed_time,
       a.stats_reset
FROM pg_catalog.pg_stat_archiver a
