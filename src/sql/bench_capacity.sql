/* pgopt: one row: server_version, max_connections, superuser_reserved_connections, reserved_connections (0 before PG 16) and the other client backends connected now */
SELECT current_setting('server_version') AS server_version,
       current_setting('max_connections')::bigint AS max_connections,
       current_setting('superuser_reserved_connections')::bigint AS superuser_reserved_connections,
       coalesce(current_setting('reserved_connections', true)::bigint, 0) AS reserved_connections,
       (SELECT count(*) FROM pg_catalog.pg_stat_activity a
         WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid())::bigint AS other_connections
