/* pgopt: one row: when pg_stat_statements was last reset and how many entries it evicted (extension 1.9+) */
SELECT i.stats_reset, i.dealloc::bigint AS dealloc FROM pg_stat_statements_info i
