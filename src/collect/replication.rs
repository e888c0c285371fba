//! Streaming replication as this server sees it: WAL senders and slots on a primary, the
//! replay gap and age on a standby. Slots carry the WAL they retain, their wal_status and
//! safe_wal_size, for the slot rules.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::{Replication, ReplicationSender, ReplicationSlot, StandbyStatus};

const SENDERS_SQL: &str = include_str!("../sql/replication_senders.sql");
const SLOTS_SQL: &str = include_str!("../sql/replication_slots.sql");
const STANDBY_SQL: &str = include_str!("../sql/replication_standby.sql");
const S: &str = "replication";

pub(crate) async fn collect(conn: &Conn) -> Result<Outcome<Replication>> {
    let standby_row = conn
        .query_one("reading the recovery state", STANDBY_SQL, &[])
        .await?;
    let in_recovery: bool = get(&standby_row, S, "in_recovery")?;
    let standby = if in_recovery {
        Some(StandbyStatus {
            replay_gap_bytes: get(&standby_row, S, "replay_gap_bytes")?,
            last_replay_age_seconds: get(&standby_row, S, "last_replay_age_seconds")?,
        })
    } else {
        None
    };
    let senders = conn
        .query("reading pg_stat_replication", SENDERS_SQL, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(ReplicationSender {
                pid: get(r, S, "pid")?,
                application_name: get(r, S, "application_name")?,
                client_addr: get(r, S, "client_addr")?,
                state: get(r, S, "state")?,
                sync_state: get(r, S, "sync_state")?,
                replay_lag_bytes: get(r, S, "replay_lag_bytes")?,
                write_lag_seconds: get(r, S, "write_lag_seconds")?,
                flush_lag_seconds: get(r, S, "flush_lag_seconds")?,
                replay_lag_seconds: get(r, S, "replay_lag_seconds")?,
                backend_xmin_age: get(r, S, "backend_xmin_age")?,
            })
        })
        .collect::<Result<_>>()?;
    let slots = conn
        .query("reading replication slots", SLOTS_SQL, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(ReplicationSlot {
                name: get(r, S, "name")?,
                slot_type: get(r, S, "slot_type")?,
                active: get(r, S, "active")?,
                xmin_age: get(r, S, "xmin_age")?,
                catalog_xmin_age: get(r, S, "catalog_xmin_age")?,
                retained_bytes: get(r, S, "retained_bytes")?,
                wal_status: get(r, S, "wal_status")?,
                safe_wal_size_bytes: get(r, S, "safe_wal_size_bytes")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Outcome::Collected(Replication {
        in_recovery,
        senders,
        slots,
        standby,
    }))
}
