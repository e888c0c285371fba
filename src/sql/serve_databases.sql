/* pgopt: pg_stat_database's cumulative counters of every database (datid 0: shared objects), with when each was last reset */
SELECT coalesce(s.datid, 0)::bigint AS datid,
       coalesce(s.xact_commit, 0)::bigint AS xact_commit,
       coalesce(s.xact_rollback, 0)::bigint AS xact_rollback,
       coalesce(s.blks_read, 0)::bigint AS blks_read,
       coalesce(s.blks_hit, 0)::bigint AS blks_hit,
       coalesce(s.tup_returned, 0)::bigint AS tup_returned,
       coalesce(s.tup_inserted, 0)::bigint AS tup_inserted,
       coalesce(s.tup_updated, 0)::bigint AS tup_updated,
       coalesce(s.tup_deleted, 0)::bigint AS tup_deleted,
       coalesce(s.deadlocks, 0)::bigint AS deadlocks,
       coalesce(s.temp_bytes, 0)::bigint AS temp_bytes,
       s.stats_reset
FROM pg_catalog.pg_stat_database s
