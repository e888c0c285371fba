/* pgopt: one row: whether the current role may read pg_authid (how passwords are stored) */
SELECT pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS allowed
