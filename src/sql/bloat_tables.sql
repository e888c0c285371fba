/* pgopt: tables and materialized views of at least $2 pages not under an AccessExclusiveLock ($1), with what the row-width estimate of their bloat needs: relpages, reltuples, fillfactor, and over their live columns the expected stored width (avg_width of pg_stats weighted by the share of non-null values), whether any column holds nulls, and how many columns have a pg_stats row this role can see */
WITH locked AS (SELECT unnest($1::oid[]) AS relation),
candidate AS MATERIALIZED (
  SELECT c.oid, n.nspname, c.relname, c.relpages, c.reltuples, c.reloptions
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'm')
    AND c.relpages >= $2
    AND c.oid NOT IN (SELECT relation FROM locked)
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%'
    AND n.nspname NOT LIKE 'pg\_temp\_%'
),
width AS (
  -- Per candidate, so that the pg_stats view is read through its indexes for that table only
  -- (a join against the whole view is planned as a nested loop, quadratic in relations).
  -- One row per live column; pg_stats shows a row only to roles that may read the column,
  -- and avg_width is the stored width (a TOAST pointer or a compressed value, not the value).
  SELECT k.oid, w.*
  FROM candidate k
  CROSS JOIN LATERAL (
    SELECT count(*) AS columns,
           count(s.attname) AS columns_with_stats,
           sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)) AS data_width,
           bool_or(coalesce(s.null_frac, 0) > 0) AS has_nulls
    FROM pg_catalog.pg_attribute a
    LEFT JOIN pg_catalog.pg_stats s
      ON s.schemaname = k.nspname AND s.tablename = k.relname AND s.attname = a.attname
     AND NOT s.inherited
    WHERE a.attrelid = k.oid AND a.attnum > 0 AND NOT a.attisdropped
  ) w
)
SELECT k.oid::oid AS oid,
       k.nspname::text AS schema,
       k.relname::text AS name,
       k.relpages::bigint AS relpages,
       k.reltuples::float8 AS reltuples,
       coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(k.reloptions) o
                 WHERE o LIKE 'fillfactor=%'), 100) AS fillfactor,
       coalesce(w.columns, 0)::bigint AS columns,
       coalesce(w.columns_with_stats, 0)::bigint AS columns_with_stats,
       coalesce(w.data_width, 0)::float8 AS data_width,
       coalesce(w.has_nulls, false) AS has_nulls
FROM candidate k
LEFT JOIN width w ON w.oid = k.oid
ORDER BY k.nspname, k.relname
