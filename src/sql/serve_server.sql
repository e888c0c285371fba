/* pgopt: one row per light sample: the server's identity (start time, recovery, the timeline (a primary: of its WAL insert position, which moves at once on a promotion, unlike the last checkpoint's; a standby: of its last restartpoint, when this role may read pg_control) and the system identifier when this role may read pg_control), its clock, connection limits, locks not granted, the oldest open transaction, replication lag (a primary: its standbys' largest replay lag; a standby: its own replay delay, 0 when it has replayed all it received) and the WAL insert position in bytes (a primary) */
SELECT pg_catalog.pg_postmaster_start_time() AS postmaster_start,
       pg_catalog.pg_is_in_recovery() AS in_recovery,
       CASE WHEN NOT pg_catalog.pg_is_in_recovery()
            THEN ('x' || substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_insert_lsn()), 1, 8))::bit(32)::bigint
            WHEN pg_catalog.has_function_privilege('pg_catalog.pg_control_checkpoint()', 'EXECUTE')
            THEN (SELECT c.timeline_id::bigint FROM pg_catalog.pg_control_checkpoint() c)
       END AS timeline,
       CASE WHEN pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')
            THEN (SELECT c.system_identifier::bigint FROM pg_catalog.pg_control_system() c)
       END AS system_identifier,
       pg_catalog.current_setting('server_version') AS version,
       pg_catalog.clock_timestamp() AS server_now,
       pg_catalog.current_setting('max_connections')::float8 AS max_connections,
       pg_catalog.current_setting('superuser_reserved_connections')::float8 AS reserved_connections,
       pg_catalog.current_setting('block_size')::bigint AS block_size,
       (SELECT count(*) FROM pg_catalog.pg_locks l WHERE NOT l.granted)::float8 AS locks_waiting,
       (SELECT extract(epoch FROM max(pg_catalog.clock_timestamp() - a.xact_start))
        FROM pg_catalog.pg_stat_activity a
        WHERE a.xact_start IS NOT NULL AND a.pid <> pg_catalog.pg_backend_pid())::float8 AS oldest_xact_seconds,
       (CASE WHEN pg_catalog.pg_is_in_recovery() THEN
               CASE WHEN pg_catalog.pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_catalog.pg_last_wal_replay_lsn()
                    THEN 0
                    ELSE extract(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.pg_last_xact_replay_timestamp())
               END
             ELSE (SELECT extract(epoch FROM max(r.replay_lag)) FROM pg_catalog.pg_stat_replication r)
        END)::float8 AS replication_lag_seconds,
       CASE WHEN NOT pg_catalog.pg_is_in_recovery()
            THEN (pg_catalog.pg_current_wal_insert_lsn() - '0/0'::pg_catalog.pg_lsn)::float8
       END AS wal_bytes
