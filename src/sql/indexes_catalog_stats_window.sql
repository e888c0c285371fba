/* pgopt: how long the statistics of this database have been counting, in seconds: since pg_stat_database.stats_reset, or since the server started when they were never reset; and the session's search path (the schemas an unqualified name is looked up in, without the implicit ones) */
SELECT extract(epoch FROM pg_catalog.now()
               - coalesce((SELECT d.stats_reset FROM pg_catalog.pg_stat_database d
                           WHERE d.datname = pg_catalog.current_database()),
                          pg_catalog.pg_postmaster_start_time()))::float8 AS window_seconds,
       pg_catalog.current_schemas(false)::text[] AS search_path
