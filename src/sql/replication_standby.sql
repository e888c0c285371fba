/* pgopt: one row on a standby: bytes received but not yet replayed, and seconds since the last replayed transaction (raw, not forced to zero) */
SELECT pg_is_in_recovery() AS in_recovery,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint AS replay_gap_bytes,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS last_replay_age_seconds
