/* pgopt: one row: version(), server_version_num, postmaster start, uptime in seconds, in recovery, data_directory when this role may read it */
SELECT version() AS version,
       current_setting('server_version_num')::int AS version_num,
       pg_postmaster_start_time() AS started_at,
       extract(epoch FROM now() - pg_postmaster_start_time())::float8 AS uptime_seconds,
       pg_is_in_recovery() AS in_recovery,
       -- pg_settings leaves out the rows this role may not read, so no privilege error here.
       (SELECT s.setting FROM pg_catalog.pg_settings s WHERE s.name = 'data_directory') AS data_directory
