/* pgopt: one row: whether the current role may read pg_hba_file_rules (the view and the function behind it) */
SELECT pg_catalog.has_table_privilege('pg_catalog.pg_hba_file_rules', 'SELECT')
       AND pg_catalog.has_function_privilege('pg_catalog.pg_hba_file_rules()', 'EXECUTE') AS allowed
