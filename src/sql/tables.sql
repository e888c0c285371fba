/* pgopt: tables, partitioned tables and materialized views outside the system schemas, with heap and TOAST sizes estimated from pg_class (index sizes come from the indexes section; exact sizes from sizes_exact.sql for the relations that need them), statistics counters and wraparound ages */
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
  -- The cheap pass: no size function (each opens the relation on the server: relcache and
  -- a file per fork). Heap and TOAST from pg_class pages, as of the last VACUUM, ANALYZE or
  -- CREATE INDEX, scaled up by the rows counted since (live + dead over reltuples), the way
  -- the planner scales reltuples by the pages it finds. The collector measures the largest
  -- relations, and those findings are about, exactly afterwards.
  SELECT r.*, bs.b AS block_size,
         (coalesce(t.relpages, 0)::bigint
          + coalesce((SELECT sum(ti.relpages)::bigint FROM pg_catalog.pg_index ix
                      JOIN pg_catalog.pg_class ti ON ti.oid = ix.indexrelid
                      WHERE ix.indrelid = r.reltoastrelid AND r.reltoastrelid <> 0), 0)) * bs.b AS toast_estimate,
         t.relfrozenxid AS toast_frozenxid, t.relminmxid AS toast_minmxid
  FROM rel r
  CROSS JOIN bs
  LEFT JOIN pg_catalog.pg_class t ON t.oid = r.reltoastrelid
)
SELECT z.oid::oid AS oid,
       z.schema,
       z.name,
       z.kind,
       ((z.relpages::float8
         * CASE WHEN z.reltuples > 0 AND NOT z.locked
                  THEN greatest(1.0, (coalesce(s.n_live_tup, 0) + coalesce(s.n_dead_tup, 0))::float8
                                     / z.reltuples::float8)
                ELSE 1.0 END)::bigint * z.block_size)::bigint AS heap_bytes,
       z.toast_estimate::bigint AS toast_bytes,
       -- pg_class cannot size it: no pages recorded, yet the statistics count rows in it
       -- (loaded and never vacuumed or analyzed). The exact pass measures it.
       (z.kind IN ('r', 'm') AND z.relpages = 0 AND NOT z.locked
        AND coalesce(s.n_live_tup, 0) + coalesce(s.n_dead_tup, 0)
            + coalesce(s.n_ins_since_vacuum, 0) + coalesce(s.n_mod_since_analyze, 0) > 0) AS unmeasured,
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
