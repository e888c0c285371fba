/* pgopt: the statements pg_stat_statements counted in the current database, called at least $1 times, by total execution time, the first $2 (the extension's schema is on the transaction's search_path) */
SELECT s.queryid::bigint AS queryid,
       s.query,
       s.calls::bigint AS calls,
       s.mean_exec_time::float8 AS mean_exec_time_ms,
       s.total_exec_time::float8 AS total_exec_time_ms
FROM pg_stat_statements(true) s
WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d
                WHERE d.datname = pg_catalog.current_database())
  AND s.queryid IS NOT NULL
  AND s.calls >= $1
ORDER BY s.total_exec_time DESC, s.queryid
LIMIT $2
