/* pgopt: sessions worth a look: active, idle in transaction, waiting or holding an XID or xmin, plus client sessions whose state this role may not see; pgopt's own, autovacuum workers and walsenders left out. $1: max query characters */
WITH a AS (
  SELECT a.*,
         -- What pg_stat_activity shows in full: own roles' sessions, or all with pg_read_all_stats.
         CASE WHEN r.oid IS NULL THEN pg_has_role('pg_read_all_stats', 'USAGE')
              ELSE pg_has_role(r.oid, 'USAGE') OR pg_has_role('pg_read_all_stats', 'USAGE')
         END AS visible
  FROM pg_catalog.pg_stat_activity a
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.usesysid
  WHERE a.pid <> pg_backend_pid()
)
SELECT a.pid,
       a.datname::text AS database,
       a.usename::text AS "user",
       a.application_name,
       host(a.client_addr) AS client_addr,
       a.backend_type,
       a.state,
       a.wait_event_type,
       a.wait_event,
       extract(epoch FROM now() - a.xact_start)::float8 AS xact_age_seconds,
       extract(epoch FROM now() - a.query_start)::float8 AS query_age_seconds,
       extract(epoch FROM now() - a.state_change)::float8 AS state_age_seconds,
       age(a.backend_xmin)::bigint AS backend_xmin_age,
       age(a.backend_xid)::bigint AS backend_xid_age,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid)
            ELSE '{}'::int[] END AS blocked_by,
       CASE WHEN a.visible THEN left(a.query, $1::int) END AS query
FROM a
WHERE coalesce(a.backend_type, '') NOT IN ('autovacuum worker', 'walsender')
  AND (a.state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')
       OR a.wait_event_type = 'Lock'
       OR a.backend_xid IS NOT NULL OR a.backend_xmin IS NOT NULL
       OR (NOT a.visible AND a.usesysid IS NOT NULL AND a.datid IS NOT NULL
           AND coalesce(a.backend_type, 'client backend') = 'client backend'))
ORDER BY a.xact_start NULLS LAST, a.pid
