/* pgopt: the tables (and partitioned tables, materialized views) the workload names: $1 schemas (NULL: unqualified) and $2 names, pairwise; an unqualified name is looked up in every schema of $3 (the session's search path), the first one that has it being the one the planner takes. With rows and pages as of the last VACUUM/ANALYZE, total size, rows written since the statistics reset (the functions behind pg_stat_user_tables) */
WITH wanted AS (
  SELECT w.schema, w.name FROM unnest($1::text[], $2::text[]) AS w(schema, name)
),
found AS (
  SELECT DISTINCT c.oid
  FROM wanted w
  JOIN pg_catalog.pg_namespace n
    ON (w.schema IS NOT NULL AND n.nspname = w.schema)
    OR (w.schema IS NULL AND n.nspname = ANY($3::text[]))
  JOIN pg_catalog.pg_class c
    ON c.relnamespace = n.oid AND c.relname = w.name AND c.relkind IN ('r', 'p', 'm')
)
SELECT c.oid::oid AS oid,
       n.nspname::text AS schema,
       c.relname::text AS name,
       c.reltuples::float8 AS reltuples,
       c.relpages::bigint AS relpages,
       pg_catalog.pg_total_relation_size(c.oid)::bigint AS total_bytes,
       pg_catalog.pg_stat_get_tuples_inserted(c.oid)::bigint AS n_tup_ins,
       pg_catalog.pg_stat_get_tuples_updated(c.oid)::bigint AS n_tup_upd,
       pg_catalog.pg_stat_get_tuples_hot_updated(c.oid)::bigint AS n_tup_hot_upd,
       pg_catalog.pg_stat_get_tuples_deleted(c.oid)::bigint AS n_tup_del
FROM found f
JOIN pg_catalog.pg_class c ON c.oid = f.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
ORDER BY n.nspname, c.relname
