/* pgopt: triggers written by users (not internal) on tables outside the system schemas: table, name, tgenabled, the function it runs, whether it is a constraint trigger; a partition's clone of its parent's trigger only where its state differs from the parent's */
SELECT n.nspname::text AS schema,
       c.relname::text AS "table",
       t.tgname::text AS name,
       t.tgenabled::text AS enabled,
       pn.nspname::text || '.' || p.proname::text AS function,
       t.tgconstraint <> 0 AS is_constraint
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
WHERE NOT t.tgisinternal
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
  AND n.nspname NOT LIKE 'pg\_temp\_%'
  -- ALTER TABLE parent DISABLE TRIGGER disables the partitions' clones too: one finding for
  -- the parent, not one per partition.
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger pt
                  WHERE pt.oid = t.tgparentid AND pt.tgenabled = t.tgenabled)
ORDER BY n.nspname, c.relname, t.tgname
