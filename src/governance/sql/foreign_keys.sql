/* the foreign keys of the tables in schema $1: table, constraint name and the server's own definition */
SELECT t.relname::text AS table_name,
       c.conname::text AS name,
       pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1 AND c.contype = 'f'
ORDER BY t.relname, c.conname
