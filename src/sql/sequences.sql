/* pgopt: sequences with their limits, last_value (NULL without privilege, before first use, or under a granted AccessExclusiveLock) and the column each feeds: serial or identity through pg_depend, else a column default that calls nextval() on it (the default depends on the sequence in pg_depend) */
WITH locked AS (SELECT unnest($1::oid[]) AS relation),
owned AS (
  SELECT DISTINCT ON (d.objid) d.objid AS seq, d.refobjid AS tab, d.refobjsubid AS attnum
  FROM pg_catalog.pg_depend d
  WHERE d.classid = 'pg_catalog.pg_class'::regclass
    AND d.refclassid = 'pg_catalog.pg_class'::regclass
    AND d.refobjsubid > 0
    AND d.deptype IN ('a', 'i')
    AND d.objid IN (SELECT seqrelid FROM pg_catalog.pg_sequence)
  ORDER BY d.objid, d.deptype DESC, d.refobjid, d.refobjsubid
),
defaulted AS (
  SELECT DISTINCT ON (d.refobjid) d.refobjid AS seq, ad.adrelid AS tab, ad.adnum AS attnum
  FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_attrdef ad ON ad.oid = d.objid
  WHERE d.classid = 'pg_catalog.pg_attrdef'::regclass
    AND d.refclassid = 'pg_catalog.pg_class'::regclass
  ORDER BY d.refobjid, ad.adrelid, ad.adnum
)
SELECT n.nspname::text AS schema,
       c.relname::text AS name,
       format_type(s.seqtypid, NULL) AS data_type,
       CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE')
                 AND c.oid NOT IN (SELECT relation FROM locked)
            THEN pg_sequence_last_value(c.oid) END::bigint AS last_value,
       s.seqmin::bigint AS min_value,
       s.seqmax::bigint AS max_value,
       s.seqincrement::bigint AS increment_by,
       s.seqcycle AS cycle,
       tn.nspname::text AS column_schema,
       t.relname::text AS column_table,
       a.attname::text AS column_name,
       format_type(a.atttypid, NULL) AS column_type
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN owned o ON o.seq = c.oid
LEFT JOIN defaulted df ON df.seq = c.oid
LEFT JOIN pg_catalog.pg_class t ON t.oid = coalesce(o.tab, df.tab)
LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = coalesce(o.attnum, df.attnum)
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_temp\_%'
ORDER BY n.nspname, c.relname
