/* pgopt: pg_stat_database counters of every database, with age(datfrozenxid) and mxid_age(datminmxid) */
SELECT d.datname::text AS name,
       coalesce(s.numbackends, 0)::bigint AS numbackends,
       coalesce(s.xact_commit, 0)::bigint AS xact_commit,
       coalesce(s.xact_rollback, 0)::bigint AS xact_rollback,
       coalesce(s.blks_read, 0)::bigint AS blks_read,
       coalesce(s.blks_hit, 0)::bigint AS blks_hit,
       coalesce(s.temp_files, 0)::bigint AS temp_files,
       coalesce(s.temp_bytes, 0)::bigint AS temp_bytes,
       coalesce(s.deadlocks, 0)::bigint AS deadlocks,
       coalesce(s.conflicts, 0)::bigint AS conflicts,
       s.stats_reset,
       age(d.datfrozenxid)::bigint AS frozenxid_age,
       mxid_age(d.datminmxid)::bigint AS minmxid_age,
       d.datallowconn AS allow_connections
FROM pg_catalog.pg_database d
LEFT JOIN pg_catalog.pg_stat_database s ON s.datid = d.oid
ORDER BY d.datname
