/* the invalid indexes (schema, name) of the table that index $2 in schema $1 is on: where a cancelled REINDEX CONCURRENTLY leaves its copy */
SELECT n.nspname, c.relname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
  AND i.indrelid = (
    SELECT x.indrelid
    FROM pg_index x
    JOIN pg_class xc ON xc.oid = x.indexrelid
    JOIN pg_namespace xn ON xn.oid = xc.relnamespace
    WHERE xn.nspname = $1 AND xc.relname = $2
  )
ORDER BY c.relname
