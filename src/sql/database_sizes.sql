/* pgopt: name and size in bytes of every database this role may connect to */
SELECT d.datname::text AS name,
       pg_database_size(d.oid)::bigint AS size_bytes
FROM pg_catalog.pg_database d
WHERE d.datallowconn
  AND has_database_privilege(d.oid, 'CONNECT')
ORDER BY d.datname
