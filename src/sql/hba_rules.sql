/* pgopt: pg_hba_file_rules in file order: line number, connection type, databases, users, address, netmask, auth method and any error */
SELECT r.line_number,
       r.type AS conn_type,
       COALESCE(r.database, '{}'::text[]) AS databases,
       COALESCE(r.user_name, '{}'::text[]) AS users,
       r.address,
       r.netmask,
       r.auth_method,
       r.error
FROM pg_catalog.pg_hba_file_rules r
ORDER BY r.line_number
