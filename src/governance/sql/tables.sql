/* the ordinary tables of one schema ($1) with the planner's row estimate and total size */
SELECT c.relname::text AS name,
       c.reltuples AS reltuples,
       pg_total_relation_size(c.oid) AS total_bytes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
ORDER BY c.relname
