/* pgopt: every row of pg_db_role_setting: database (NULL: all), role (NULL: all), its settings as name=value */
SELECT d.datname::text AS database,
       r.rolname::text AS role,
       s.setconfig AS config
FROM pg_catalog.pg_db_role_setting s
LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
ORDER BY 1 NULLS FIRST, 2 NULLS FIRST
