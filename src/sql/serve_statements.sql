/* pgopt: pg_stat_statements' counters without the query texts, summed per queryid over users and databases (the extension's schema is on search_path after pg_catalog) */
SELECT s.queryid::bigint AS queryid,
       sum(s.calls)::bigint AS calls,
       sum(s.total_exec_time)::float8 AS total_exec_ms,
       sum(s.rows)::bigint AS rows,
       sum(s.temp_blks_written)::bigint AS temp_blks_written
FROM pg_stat_statements(false) s
WHERE s.queryid IS NOT NULL
GROUP BY s.queryid
