/* tables, partitioned tables and materialized views outside the system schemas, with heap and TOAST sizes (index sizes come from the indexes section), statistics counters and wraparound ages; relations under a granted AccessExclusiveLock get sizes from relpages so that no size function waits on them */
WITH locked AS (SELECT unnest($1::oid[]) AS relation),
bs AS (SELECT current_setting('block_size')::bigint AS b),
rel AS (
  SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, c.relkind::text AS kind,
         c.reltoastrelid, c.reltuples, c.relpages, c.reloptions, c.relfrozenxid, c.relminmxid,
         c.oid IN (SELECT relation FROM locked) AS locked
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'm')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%'
    AND n.nspname NOT LIKE 'pg\_temp\_%'
),
sized AS (
  -- pg_table_size is heap + free space map + visibility map + TOAST in one call; the TOAST
  -- part is measured once more alone so that the heap is what remains. Index sizes are not
  -- measured here: the indexes section measures each index, and the collector adds them up.
  SELECT r.*,
         CASE WHEN r.locked OR r.reltoastrelid IN (SELECT relation FROM locked)
                THEN r.relpages::bigint * bs.b
                     + coalesce((SELECT tc.relpages::bigint * bs.b FROM pg_catalog.pg_class tc
                                 WHERE tc.oid = r.reltoastrelid AND r.reltoastrelid <> 0), 0)
              ELSE pg_table_size(r.oid) END AS table_bytes,
         CASE WHEN r.reltoastrelid = 0 THEN 0
              WHEN r.locked OR r.reltoastrelid IN (SELECT relation FROM locked)
                THEN (SELECT tc.relpages::bigint * bs.b FROM pg_catalog.pg_class tc WHERE tc.oid = r.reltoastrelid)
              ELSE pg_total_relation_size(r.reltoastrelid) END AS toast_bytes,
         t.relfrozenxid AS toast_frozenxid, t.relminmxid AS toast_minmxid
  FROM rel r
  CROSS JOIN bs
  LEFT JOIN pg_catalog.pg_class t ON t.oid = r.reltoastrelid
)
SELECT z.oid::oid AS oid,
       z.schema,
       z.name,
       z.kind,
       greatest(z.table_bytes - z.toast_bytes, 0)::bigint AS heap_bytes,
       z.toast_bytes::bigint AS toast_bytes,
       z.reltuples::float8 AS reltuples,
       z.relpages::bigint AS relpages,
       coalesce(s.seq_scan, 0)::bigint AS seq_scan,
       coalesce(s.seq_tup_read, 0)::bigint AS seq_tup_read,
       s.idx_scan::bigint AS idx_scan,
       s.idx_tup_fetch::bigint AS idx_tup_fetch,
       coalesce(s.n_live_tup, 0)::bigint AS n_live_tup,
       coalesce(s.n_dead_tup, 0)::bigint AS n_dead_tup,
       coalesce(s.n_mod_since_analyze, 0)::bigint AS n_mod_since_analyze,
       coalesce(s.n_ins_since_vacuum, 0)::bigint AS n_ins_since_vacuum,
       s.last_vacuum,
       s.last_autovacuum,
       s.last_analyze,
       s.last_autoanalyze,
       -- A partitioned table has no relfrozenxid of its own (age() of it would read 2^31-1).
       greatest(CASE WHEN z.kind IN ('r', 'm') THEN age(z.relfrozenxid) ELSE 0 END,
                CASE WHEN z.toast_frozenxid IS NOT NULL THEN age(z.toast_frozenxid) ELSE 0 END)::bigint AS frozenxid_age,
       greatest(CASE WHEN z.kind IN ('r', 'm') THEN mxid_age(z.relminmxid) ELSE 0 END,
                CASE WHEN z.toast_minmxid IS NOT NULL THEN mxid_age(z.toast_minmxid) ELSE 0 END)::bigint AS minmxid_age,
       coalesce(z.reloptions, '{}')::text[] AS reloptions,
       z.locked
FROM sized z
LEFT JOIN pg_catalog.pg_stat_user_tables s ON s.relid = z.oid
ORDER BY z.schema, z.name
