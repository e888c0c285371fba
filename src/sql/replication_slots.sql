/* pgopt: replication slots with the ages of the xmin and catalog_xmin they hold back, the WAL they retain in bytes, wal_status and safe_wal_size (13+) */
SELECT s.slot_name::text AS name,
       s.slot_type AS slot_type,
       s.active,
       age(s.xmin)::bigint AS xmin_age,
       age(s.catalog_xmin)::bigint AS catalog_xmin_age,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                            ELSE pg_current_wal_lsn() END,
                       s.restart_lsn)::bigint AS retained_bytes,
       s.wal_status,
       s.safe_wal_size::bigint AS safe_wal_size_bytes
FROM pg_catalog.pg_replication_slots s
ORDER BY s.slot_name
