/* pgopt: extensions installed in this database, with version and schema */
SELECT e.extname::text AS name, e.extversion AS version, n.nspname::text AS schema
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
ORDER BY e.extname
