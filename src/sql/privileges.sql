/* pgopt: one row: the current role, whether it is superuser, and whether it has the privileges of pg_monitor, pg_read_all_stats and pg_read_all_settings */
SELECT current_user::text AS role,
       r.rolsuper AS is_superuser,
       pg_has_role(current_user, 'pg_monitor', 'MEMBER') AS pg_monitor,
       pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER') AS pg_read_all_stats,
       pg_has_role(current_user, 'pg_read_all_settings', 'MEMBER') AS pg_read_all_settings
FROM pg_catalog.pg_roles r
WHERE r.rolname = current_user
