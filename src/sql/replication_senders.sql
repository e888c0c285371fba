/* pgopt: pg_stat_replication: one row per WAL sender, with the replay gap in bytes (on a primary only), the lags in seconds and the age of the xmin the standby reports (hot_standby_feedback) */
SELECT r.pid,
       r.application_name,
       host(r.client_addr) AS client_addr,
       r.state,
       r.sync_state,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn) END::bigint AS replay_lag_bytes,
       extract(epoch FROM r.write_lag)::float8 AS write_lag_seconds,
       extract(epoch FROM r.flush_lag)::float8 AS flush_lag_seconds,
       extract(epoch FROM r.replay_lag)::float8 AS replay_lag_seconds,
       age(r.backend_xmin)::bigint AS backend_xmin_age
FROM pg_catalog.pg_stat_replication r
ORDER BY r.pid
