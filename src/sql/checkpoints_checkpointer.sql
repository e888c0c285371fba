/* pgopt: checkpoints from PostgreSQL 17: pg_stat_checkpointer (backends' own writes moved to pg_stat_io) */
SELECT num_timed AS timed,
       num_requested AS requested,
       write_time AS write_time_ms,
       sync_time AS sync_time_ms,
       buffers_written,
       NULL::bigint AS buffers_backend,
       stats_reset
FROM pg_catalog.pg_stat_checkpointer
