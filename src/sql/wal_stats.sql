/* pgopt: WAL written since pg_stat_wal's reset (PostgreSQL 14+) */
SELECT wal_bytes::bigint AS wal_bytes,
       stats_reset
FROM pg_catalog.pg_stat_wal
