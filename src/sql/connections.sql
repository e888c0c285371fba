/* pgopt: one row: max_connections, superuser_reserved_connections and the number of client backends */
SELECT current_setting('max_connections')::bigint AS max_connections,
       current_setting('superuser_reserved_connections')::bigint AS superuser_reserved_connections,
       (SELECT count(*) FROM pg_catalog.pg_stat_activity a
         WHERE a.backend_type = 'client backend')::bigint AS total_connections
