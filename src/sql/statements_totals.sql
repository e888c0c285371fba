/* pgopt: one row: statements tracked by pg_stat_statements and the sum of their total_exec_time in ms, read without query texts (extension 1.8+, PostgreSQL 13+) */
SELECT count(*)::bigint AS tracked,
       coalesce(sum(s.total_exec_time), 0)::float8 AS total_exec_time_ms
FROM pg_stat_statements(false) s
