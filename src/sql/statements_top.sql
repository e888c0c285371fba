/* pgopt: the top $1 statements by total_exec_time together with the top $1 by mean_exec_time (calls >= 1), read without query texts (extension 1.8+, PostgreSQL 13+); rows whose queryid this role may not see are left out */
WITH s AS MATERIALIZED (
  SELECT row_number() OVER () AS rn, s.*
  FROM pg_stat_statements(false) s
  WHERE s.queryid IS NOT NULL
),
kept AS (
  (SELECT rn FROM s ORDER BY total_exec_time DESC LIMIT $1)
  UNION
  (SELECT rn FROM s WHERE calls >= 1 ORDER BY mean_exec_time DESC LIMIT $1)
)
SELECT s.queryid::bigint AS queryid,
       r.rolname::text AS "user",
       d.datname::text AS database,
       s.calls::bigint AS calls,
       s.total_exec_time::float8 AS total_exec_time_ms,
       s.mean_exec_time::float8 AS mean_exec_time_ms,
       s.stddev_exec_time::float8 AS stddev_exec_time_ms,
       s.rows::bigint AS rows,
       s.shared_blks_hit::bigint AS shared_blks_hit,
       s.shared_blks_read::bigint AS shared_blks_read,
       s.temp_blks_read::bigint AS temp_blks_read,
       s.temp_blks_written::bigint AS temp_blks_written
FROM s
JOIN kept USING (rn)
LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid
LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
ORDER BY s.total_exec_time DESC, s.queryid
