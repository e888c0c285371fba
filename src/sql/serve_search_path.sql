/* pgopt: sets this session's search_path to $1 (pg_catalog first, then pg_stat_statements' schema) */
SELECT pg_catalog.set_config('search_path', $1, false)
