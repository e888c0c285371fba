/* pgopt: every row of pg_settings this role may read */
SELECT s.name::text AS name,
       coalesce(s.setting, '') AS setting,
       s.unit,
       s.vartype,
       s.source,
       s.context,
       s.boot_val,
       s.reset_val,
       s.pending_restart
FROM pg_catalog.pg_settings s
ORDER BY s.name
