/* pgopt: checkpoints before PostgreSQL 17: pg_stat_bgwriter's checkpoint counters */
SELECT checkpoints_timed AS timed,
       checkpoints_req AS requested,
       checkpoint_write_time AS write_time_ms,
       checkpoint_sync_time AS sync_time_ms,
       buffers_checkpoint AS buffers_written,
       buffers_backend,
       stats_reset
FROM pg_catalog.pg_stat_bgwriter
