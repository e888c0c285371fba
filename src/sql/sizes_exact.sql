/* pgopt: the exact pass: measured sizes of the relations in $1 (tables: heap with its free space and visibility maps, and TOAST with its index; indexes: the index), and the definition of each index (pg_get_indexdef); relations in $2 (under a granted AccessExclusiveLock) are left out, and a relation dropped since the cheap pass gives NULL sizes (the caller skips it) */
SELECT c.oid::oid AS oid,
       (c.relkind IN ('i', 'I')) AS is_index,
       CASE WHEN c.relkind IN ('i', 'I') THEN pg_relation_size(c.oid)
            ELSE pg_table_size(c.oid) END::bigint AS bytes,
       CASE WHEN c.relkind IN ('i', 'I') OR c.reltoastrelid = 0 THEN 0
            ELSE pg_total_relation_size(c.reltoastrelid) END::bigint AS toast_bytes,
       CASE WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid) END AS definition
FROM pg_catalog.pg_class c
WHERE c.oid = ANY ($1::oid[])
  AND NOT c.oid = ANY ($2::oid[])
  AND NOT (c.reltoastrelid <> 0 AND c.reltoastrelid = ANY ($2::oid[]))
