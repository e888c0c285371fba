/* pgopt: every role but the predefined pg_* ones: name, superuser, can log in, valid until (NULL when unset or infinite), bootstrap superuser, replication, its own settings */
SELECT r.rolname::text AS name,
       r.rolsuper AS superuser,
       r.rolcanlogin AS can_login,
       CASE WHEN pg_catalog.isfinite(r.rolvaliduntil) THEN r.rolvaliduntil END AS valid_until,
       r.oid = 10 AS bootstrap,
       r.rolreplication AS replication,
       coalesce(r.rolconfig, '{}')::text[] AS config
FROM pg_catalog.pg_roles r
WHERE r.rolname !~ '^pg_'
ORDER BY r.rolname
