/* pgopt: for every row of pg_settings this role may read: its range, enum values and source file */
SELECT s.name::text AS name,
       s.min_val,
       s.max_val,
       s.enumvals,
       s.sourcefile
FROM pg_catalog.pg_settings s
ORDER BY s.name
