/* pgopt: client backends counted by state and wait event ('unknown' where the state is hidden from this role) */
SELECT coalesce(a.state, 'unknown') AS state,
       a.wait_event_type,
       a.wait_event,
       count(*)::bigint AS count
FROM pg_catalog.pg_stat_activity a
WHERE a.backend_type = 'client backend'
GROUP BY 1, 2, 3
ORDER BY 4 DESC, 1, 2, 3
