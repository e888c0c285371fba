/* pgopt: one row: when pg_stat_statements was last reset (pg_stat_statements_info, extension 1.9+, PostgreSQL 14+) */
SELECT i.stats_reset FROM pg_stat_statements_info i
