/* pgopt: the indexes of the tables $1 (oids), in the columns of indexes.sql: key and INCLUDE columns from the catalog (an expression key as its text), opclasses, collations, expressions, predicate, the definition, the exact size, scans and flags; locked is always false here (the transaction's lock_timeout bounds the wait for a locked one) */
SELECT i.indexrelid::oid AS oid,
       n.nspname::text AS schema,
       t.relname::text AS "table",
       ic.relname::text AS name,
       pg_catalog.pg_get_indexdef(i.indexrelid) AS definition,
       am.amname::text AS access_method,
       ARRAY(SELECT CASE WHEN i.indkey[k - 1] <> 0
                           THEN (SELECT a.attname::text FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[k - 1])
                         ELSE pg_catalog.pg_get_indexdef(i.indexrelid, k, true) END
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
       pg_catalog.pg_get_expr(i.indexprs, i.indrelid) AS expressions,
       pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS predicate,
       pg_catalog.pg_relation_size(i.indexrelid)::bigint AS size_bytes,
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
       false AS locked
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
WHERE i.indrelid = ANY($1::oid[])
ORDER BY n.nspname, t.relname, ic.relname
