/* pgopt: indexes of the tables outside the system schemas: key and INCLUDE columns from the catalog, opclasses, collations, expressions, predicate, size, scans, flags and the constraint it backs. Where the index or its table is under a granted AccessExclusiveLock (locked = true) nothing is deparsed (pg_get_indexdef and pg_get_expr would wait for the lock): definition and expression key columns are empty, expressions and predicate NULL, and the size, like every index's size here, is an estimate from relpages (the exact pass measures the indexes that need it) */
WITH locked AS (SELECT unnest($1::oid[]) AS relation),
ix AS (
  SELECT i.*, n.nspname, t.relname AS table_name, ic.relname AS index_name, ic.relpages,
         t.reltuples AS table_reltuples,
         am.amname,
         (i.indexrelid IN (SELECT relation FROM locked)
          OR i.indrelid IN (SELECT relation FROM locked)) AS locked
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_catalog.pg_am am ON am.oid = ic.relam
  WHERE t.relkind IN ('r', 'p', 'm')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%'
    AND n.nspname NOT LIKE 'pg\_temp\_%'
)
SELECT i.indexrelid::oid AS oid,
       i.nspname::text AS schema,
       i.table_name::text AS "table",
       i.index_name::text AS name,
       -- pg_get_indexdef costs ~50 us an index: the exact pass deparses the indexes it
       -- measures (see sizes_exact.sql); every other definition stays empty.
       '' AS definition,
       i.amname::text AS access_method,
       ARRAY(SELECT CASE WHEN i.indkey[k - 1] <> 0
                           THEN (SELECT a.attname::text FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[k - 1])
                         WHEN i.locked THEN ''
                         ELSE pg_get_indexdef(i.indexrelid, k, true) END
             FROM generate_series(1, i.indnkeyatts::int) AS k ORDER BY k)::text[] AS key_columns,
       ARRAY(SELECT i.indkey[k - 1] FROM generate_series(1, i.indnkeyatts::int) AS k
             ORDER BY k)::int2[] AS key_attnums,
       ARRAY(SELECT a.attname::text
             FROM generate_series(i.indnkeyatts::int + 1, i.indnatts::int) AS k
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k - 1]
             ORDER BY k)::text[] AS include_columns,
       ARRAY(SELECT opc.opcname::text
             FROM generate_series(1, i.indnkeyatts::int) AS k
             JOIN pg_catalog.pg_opclass opc ON opc.oid = i.indclass[k - 1]
             ORDER BY k)::text[] AS opclasses,
       ARRAY(SELECT i.indcollation[k - 1] FROM generate_series(1, i.indnkeyatts::int) AS k
             ORDER BY k)::oid[] AS collations,
       CASE WHEN NOT i.locked THEN pg_get_expr(i.indexprs, i.indrelid) END AS expressions,
       CASE WHEN NOT i.locked THEN pg_get_expr(i.indpred, i.indrelid) END AS predicate,
       -- Estimated from pg_class, as the tables' sizes are (see tables.sql): pages as of the
       -- last VACUUM, ANALYZE or CREATE INDEX, scaled by the table's rows counted since.
       ((i.relpages::float8
         * CASE WHEN i.table_reltuples > 0 AND NOT i.locked
                  THEN greatest(1.0, (pg_catalog.pg_stat_get_live_tuples(i.indrelid)
                                      + pg_catalog.pg_stat_get_dead_tuples(i.indrelid))::float8
                                     / i.table_reltuples::float8)
                ELSE 1.0 END)::bigint * current_setting('block_size')::bigint)::bigint AS size_bytes,
       -- The functions behind pg_stat_user_indexes, called directly: joining the view made
       -- the planner rebuild it per index (quadratic in the number of indexes).
       pg_catalog.pg_stat_get_numscans(i.indexrelid)::bigint AS idx_scan,
       pg_catalog.pg_stat_get_tuples_returned(i.indexrelid)::bigint AS idx_tup_read,
       pg_catalog.pg_stat_get_tuples_fetched(i.indexrelid)::bigint AS idx_tup_fetch,
       i.indisvalid AS is_valid,
       i.indisready AS is_ready,
       i.indislive AS is_live,
       i.indisunique AS is_unique,
       i.indisprimary AS is_primary,
       i.indisexclusion AS is_exclusion,
       i.indisreplident AS is_replica_identity,
       (SELECT con.conname::text FROM pg_catalog.pg_constraint con
        WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid
          AND con.contype IN ('p', 'u', 'x')
        ORDER BY con.oid LIMIT 1) AS constraint_name,
       i.locked
FROM ix i
ORDER BY i.nspname, i.table_name, i.index_name
