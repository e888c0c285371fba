/* pgopt: one row: size in bytes and number of the files in pg_wal (pg_ls_waldir(): superuser or pg_monitor), and wal_segment_size in bytes */
SELECT coalesce(sum(w.size), 0)::bigint AS size_bytes,
       count(*)::bigint AS file_count,
       pg_catalog.pg_size_bytes(pg_catalog.current_setting('wal_segment_size'))::bigint AS segment_bytes
FROM pg_catalog.pg_ls_waldir() w
