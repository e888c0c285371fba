/* pgopt: oids of the relations of this database under a granted AccessExclusiveLock: size functions and deparsing would wait on them, so the tables, indexes and sequences queries (given this as $1) leave them be */
SELECT coalesce(array_agg(DISTINCT l.relation), '{}')::oid[] AS relations
FROM pg_catalog.pg_locks l
WHERE l.locktype = 'relation'
  AND l.mode = 'AccessExclusiveLock'
  AND l.granted
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
