/* pgopt: query texts of the statements whose queryid is in $1 (reads the query-text file once) */
SELECT s.queryid::bigint AS queryid, s.query
FROM pg_stat_statements(true) s
WHERE s.queryid = ANY($1::bigint[])
