//! Checkpoints and WAL volume: how often checkpoints ran, how many were requested rather than
//! timed (max_wal_size reached, CHECKPOINT, a base backup), and how much WAL was written.
//! pg_stat_bgwriter holds the counters before 17, pg_stat_checkpointer from 17; pg_stat_wal
//! exists from 14.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::Checkpoints;

const BGWRITER_SQL: &str = include_str!("../sql/checkpoints_bgwriter.sql");
const CHECKPOINTER_SQL: &str = include_str!("../sql/checkpoints_checkpointer.sql");
const WAL_SQL: &str = include_str!("../sql/wal_stats.sql");
const S: &str = "checkpoints";

pub(crate) async fn collect(conn: &Conn) -> Result<Outcome<Checkpoints>> {
    let sql = if conn.server_version_num >= 170000 {
        CHECKPOINTER_SQL
    } else {
        BGWRITER_SQL
    };
    let row = conn
        .query_one("reading the checkpoint counters", sql, &[])
        .await?;
    let mut c = Checkpoints {
        timed: get(&row, S, "timed")?,
        requested: get(&row, S, "requested")?,
        write_time_ms: get(&row, S, "write_time_ms")?,
        sync_time_ms: get(&row, S, "sync_time_ms")?,
        buffers_written: get(&row, S, "buffers_written")?,
        buffers_backend: get(&row, S, "buffers_backend")?,
        stats_reset: get(&row, S, "stats_reset")?,
        wal_bytes: None,
        wal_stats_reset: None,
    };
    if conn.server_version_num >= 140000 {
        let wal = conn.query_one("reading pg_stat_wal", WAL_SQL, &[]).await?;
        c.wal_bytes = get(&wal, S, "wal_bytes")?;
        c.wal_stats_reset = get(&wal, S, "stats_reset")?;
    }
    Ok(Outcome::Collected(c))
}
