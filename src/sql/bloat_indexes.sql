/* pgopt: valid btree indexes of at least $2 pages where neither the index nor its table is under an AccessExclusiveLock ($1), with what the btree estimate of their bloat needs: relpages, the table's reltuples, fillfactor, whether the index is partial or has expression columns, and over its stored columns (keys and INCLUDE) the expected width from the table's pg_stats, whether any holds nulls, and how many have a pg_stats row this role can see */
WITH locked AS (SELECT unnest($1::oid[]) AS relation),
candidate AS MATERIALIZED (
  SELECT ic.oid, n.nspname, t.relname AS table_name, ic.relname AS index_name,
         ic.relpages, t.reltuples, ic.reloptions, x.indrelid,
         x.indkey::int2[] AS attnums, x.indpred IS NOT NULL AS partial
  FROM pg_catalog.pg_index x
  JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
  JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_catalog.pg_am am ON am.oid = ic.relam
  WHERE am.amname = 'btree'
    AND ic.relkind = 'i'
    AND x.indisvalid
    AND ic.relpages >= $2
    AND ic.oid NOT IN (SELECT relation FROM locked)
    AND t.oid NOT IN (SELECT relation FROM locked)
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%'
    AND n.nspname NOT LIKE 'pg\_temp\_%'
),
width AS (
  -- Per candidate, so that the pg_stats view is read through its indexes for that table only
  -- (a join against the whole view is planned as a nested loop, quadratic in relations).
  SELECT k.oid, w.*
  FROM candidate k
  CROSS JOIN LATERAL (
    SELECT count(*) AS columns,
           count(*) FILTER (WHERE col.attnum = 0) AS expressions,
           count(s.attname) AS columns_with_stats,
           sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)) AS data_width,
           bool_or(coalesce(s.null_frac, 0) > 0) AS has_nulls
    FROM unnest(k.attnums) AS col(attnum)
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = k.indrelid AND a.attnum = col.attnum
    LEFT JOIN pg_catalog.pg_stats s
      ON s.schemaname = k.nspname AND s.tablename = k.table_name AND s.attname = a.attname
     AND NOT s.inherited
  ) w
)
SELECT k.oid::oid AS oid,
       k.nspname::text AS schema,
       k.table_name::text AS table_name,
       k.index_name::text AS index_name,
       k.relpages::bigint AS relpages,
       k.reltuples::float8 AS reltuples,
       coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(k.reloptions) o
                 WHERE o LIKE 'fillfactor=%'), 90) AS fillfactor,
       k.partial,
       coalesce(w.expressions, 0)::bigint AS expressions,
       coalesce(w.columns, 0)::bigint AS columns,
       coalesce(w.columns_with_stats, 0)::bigint AS columns_with_stats,
       coalesce(w.data_width, 0)::float8 AS data_width,
       coalesce(w.has_nulls, false) AS has_nulls
FROM candidate k
LEFT JOIN width w ON w.oid = k.oid
ORDER BY k.nspname, k.table_name, k.index_name
