/* pgopt: one row: number of .ready files in pg_wal/archive_status (segments waiting to be archived) and the oldest one's modification time (pg_ls_archive_statusdir(): superuser or pg_monitor, 12+) */
SELECT count(*)::bigint AS ready_files,
       min(a.modification) AS oldest_ready_time
FROM pg_catalog.pg_ls_archive_statusdir() a
WHERE a.name LIKE '%.ready'
