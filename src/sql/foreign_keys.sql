/* pgopt: foreign keys: table, constraint name, columns and attnums in key order, referenced table and columns */
SELECT n.nspname::text AS schema,
       t.relname::text AS "table",
       con.conname::text AS name,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord)::text[] AS columns,
       con.conkey::int2[] AS attnums,
       rn.nspname::text AS ref_schema,
       rt.relname::text AS ref_table,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord)::text[] AS ref_columns
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class t ON t.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
JOIN pg_catalog.pg_class rt ON rt.oid = con.confrelid
JOIN pg_catalog.pg_namespace rn ON rn.oid = rt.relnamespace
WHERE con.contype = 'f'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY n.nspname, t.relname, con.conname
