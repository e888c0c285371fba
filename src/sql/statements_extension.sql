/* pgopt: the installed pg_stat_statements extension of this database: version and schema (no row when not installed) */
SELECT e.extversion AS version, n.nspname::text AS schema
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
