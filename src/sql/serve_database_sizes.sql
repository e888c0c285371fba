/* pgopt: one row: the size in bytes of every database this role may connect to (pg_database_size needs CONNECT) */
SELECT coalesce(sum(pg_catalog.pg_database_size(d.oid)), 0)::float8 AS bytes
FROM pg_catalog.pg_database d
WHERE d.datallowconn
  AND pg_catalog.has_database_privilege(d.oid, 'CONNECT')
