/* replication slots with the ages of the xmin and catalog_xmin they hold back and the WAL they retain in bytes */
SELECT s.slot_name::text AS name,
       s.slot_type AS slot_type,
       s.active,
       age(s.xmin)::bigint AS xmin_age,
       age(s.catalog_xmin)::bigint AS catalog_xmin_age,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                            ELSE pg_current_wal_lsn() END,
                       s.restart_lsn)::bigint AS retained_bytes
FROM pg_catalog.pg_replication_slots s
ORDER BY s.slot_name
