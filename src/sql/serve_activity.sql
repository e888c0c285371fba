/* pgopt: client backends other than this one, counted by state ('unknown' where the state is hidden from this role) and wait event type */
SELECT coalesce(a.state, 'unknown') AS state,
       a.wait_event_type,
       count(*)::float8 AS count
FROM pg_catalog.pg_stat_activity a
WHERE a.backend_type = 'client backend'
  AND a.pid <> pg_catalog.pg_backend_pid()
GROUP BY 1, 2
