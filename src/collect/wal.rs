//! The WAL directory and the archiver: how big pg_wal is, how archiving goes and how many
//! segments wait for it. pg_ls_waldir() and pg_ls_archive_statusdir() need a superuser or
//! pg_monitor; without them their sections are skipped with that next step.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::{Archiver, WalDirectory};

const WAL_DIRECTORY_SQL: &str = include_str!("../sql/wal_directory.sql");
const ARCHIVER_SQL: &str = include_str!("../sql/archiver.sql");
const ARCHIVE_STATUS_SQL: &str = include_str!("../sql/archive_status.sql");
const S: &str = "wal";

pub(crate) async fn collect_directory(conn: &Conn) -> Result<Outcome<WalDirectory>> {
    let row = conn
        .query_one("listing pg_wal (pg_ls_waldir)", WAL_DIRECTORY_SQL, &[])
        .await?;
    Ok(Outcome::Collected(WalDirectory {
        size_bytes: get(&row, S, "size_bytes")?,
        file_count: get(&row, S, "file_count")?,
        segment_bytes: get(&row, S, "segment_bytes")?,
    }))
}

/// pg_stat_archiver; `ready_files` is left None for [`collect_ready`] to fill in.
pub(crate) async fn collect_archiver(conn: &Conn) -> Result<Outcome<Archiver>> {
    let row = conn
        .query_one("reading pg_stat_archiver", ARCHIVER_SQL, &[])
        .await?;
    Ok(Outcome::Collected(Archiver {
        archived_count: get(&row, S, "archived_count")?,
        last_archived_wal: get(&row, S, "last_archived_wal")?,
        last_archived_time: get(&row, S, "last_archived_time")?,
        failed_count: get(&row, S, "failed_count")?,
        last_failed_wal: get(&row, S, "last_failed_wal")?,
        last_failed_time: get(&row, S, "last_failed_time")?,
        stats_reset: get(&row, S, "stats_reset")?,
        ready_files: None,
        oldest_ready_time: None,
    }))
}

/// The `.ready` files of pg_wal/archive_status: their number and the oldest one's time.
pub(crate) async fn collect_ready(
    conn: &Conn,
) -> Result<Outcome<(i64, Option<chrono::DateTime<chrono::Utc>>)>> {
    let row = conn
        .query_one(
            "listing pg_wal/archive_status (pg_ls_archive_statusdir)",
            ARCHIVE_STATUS_SQL,
            &[],
        )
        .await?;
    Ok(Outcome::Collected((
        get(&row, S, "ready_files")?,
        get(&row, S, "oldest_ready_time")?,
    )))
}
