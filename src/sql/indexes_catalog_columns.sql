/* pgopt: the columns of the tables $1 (oids), in order: type, NOT NULL, and the planner statistics of pg_stats where this role may read them (has_stats false otherwise, or before the first ANALYZE); most_common_vals and histogram_bounds as text arrays. Of a partitioned table's two rows the one with inheritance, of a plain table's the one without. And what the column sorts by: the LC_COLLATE of its libc collation, the database's (datcollate) for the default one, an ICU collation's name; NULL when its type has no collation */
SELECT a.attrelid::oid AS table_oid,
       a.attname::text AS name,
       a.attnum AS attnum,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name,
       a.attnotnull AS not_null,
       s.attname IS NOT NULL AS has_stats,
       s.null_frac::float8 AS null_frac,
       s.avg_width AS avg_width,
       s.n_distinct::float8 AS n_distinct,
       s.most_common_vals::text::text[] AS most_common_vals,
       s.most_common_freqs::float8[] AS most_common_freqs,
       s.correlation::float8 AS correlation,
       s.histogram_bounds::text::text[] AS histogram_bounds,
       CASE WHEN a.attcollation = 0 THEN NULL
            WHEN co.collprovider = 'd' THEN
              (SELECT d.datcollate::text FROM pg_catalog.pg_database d
               WHERE d.datname = pg_catalog.current_database())
            WHEN co.collprovider = 'c' THEN co.collcollate::text
            ELSE co.collname::text
       END AS collation
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN LATERAL (
  SELECT st.*
  FROM pg_catalog.pg_stats st
  WHERE st.schemaname = n.nspname AND st.tablename = c.relname AND st.attname = a.attname
  ORDER BY st.inherited = (c.relkind = 'p') DESC
  LIMIT 1
) s ON true
WHERE a.attrelid = ANY($1::oid[])
  AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
