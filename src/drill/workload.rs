//! The drill's clients: each inserts rows with ids it makes itself through the failover-aware
//! pool, keeps an id as acknowledged only when its INSERT returned Ok, and now and then reads
//! one back. What they see (first successes after the event and after the promotion, errors
//! by SQLSTATE) goes to a shared [`Recorder`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::Error;
use crate::ident::QualifiedName;
use pgopt_pool::{PgPool, Retry};

/// The table the drill writes to.
pub fn table() -> QualifiedName {
    QualifiedName::new("public", "pgopt_drill_writes")
}

/// Creates the drill's table when missing (run on the primary before the load).
pub fn create_table_sql() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (run_id bigint NOT NULL, id bigint NOT NULL, \
         client int NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp(), \
         PRIMARY KEY (run_id, id))",
        table()
    )
}

/// The ids of `$2` (a bigint[]) of run `$1` that are in the table.
pub fn verify_sql() -> String {
    format!(
        "SELECT id FROM {} WHERE run_id = $1 AND id = ANY($2)",
        table()
    )
}

/// A client's id for its `seq`-th write: the client in the high 32 bits.
pub fn write_id(client: u32, seq: u32) -> i64 {
    (i64::from(client) << 32) | i64::from(seq)
}

/// How an error is counted: its SQLSTATE, else a label for errors that carry none.
pub fn error_label(e: &Error) -> String {
    if let Some(code) = e.sqlstate() {
        return code.code().to_string();
    }
    match e {
        Error::ConnectionLost { .. } => "connection_lost".into(),
        Error::Timeout { .. } => "timeout".into(),
        Error::Connect(_) => "no_primary".into(),
        Error::Query { .. } => "query_no_sqlstate".into(),
        _ => "other".into(),
    }
}

/// When the first operations after the event and after the promotion succeeded.
#[derive(Debug, Default, Clone, Copy)]
pub struct Firsts {
    /// Completion of the first success that started after the event.
    pub after_event: Option<Instant>,
    /// Completion of the first success that started after the event and ended after the
    /// promotion began.
    pub after_promote: Option<Instant>,
}

/// What every client reports to, shared.
#[derive(Debug, Default)]
pub struct Recorder {
    /// When the kill, restart or cut began.
    pub event_at: OnceLock<Instant>,
    /// When the promotion began.
    pub promote_at: OnceLock<Instant>,
    writes: Mutex<Firsts>,
    reads: Mutex<Firsts>,
    errors_after: Mutex<BTreeMap<String, u64>>,
    errors_before: AtomicU64,
    /// Acknowledged writes so far (all clients).
    pub acked: AtomicU64,
    /// Reads that came back.
    pub reads_ok: AtomicU64,
    /// Reads of an acknowledged id that found no row.
    pub reads_missing: AtomicU64,
    /// Errors so far (all clients, whole run).
    pub errors: AtomicU64,
    /// Every acknowledged id (kept here, not in the client task, so that a client cut
    /// short at the end loses none).
    acked_ids: Mutex<Vec<i64>>,
}

impl Recorder {
    fn success(&self, which: &Mutex<Firsts>, started: Instant, ended: Instant) {
        let Some(&event) = self.event_at.get() else {
            return;
        };
        if started < event {
            return;
        }
        let mut f = which.lock().expect("not poisoned");
        if f.after_event.is_none() {
            f.after_event = Some(ended);
        }
        if f.after_promote.is_none() && self.promote_at.get().is_some_and(|&p| ended >= p) {
            f.after_promote = Some(ended);
        }
    }

    fn error(&self, e: &Error, at: Instant) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        match self.event_at.get() {
            Some(&event) if at >= event => {
                *self
                    .errors_after
                    .lock()
                    .expect("not poisoned")
                    .entry(error_label(e))
                    .or_default() += 1;
            }
            _ => {
                self.errors_before.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// First writes after the event and the promotion.
    pub fn writes(&self) -> Firsts {
        *self.writes.lock().expect("not poisoned")
    }

    /// First reads after the event and the promotion.
    pub fn reads(&self) -> Firsts {
        *self.reads.lock().expect("not poisoned")
    }

    /// Errors from the event on, by SQLSTATE or label.
    pub fn errors_after_event(&self) -> BTreeMap<String, u64> {
        self.errors_after.lock().expect("not poisoned").clone()
    }

    /// Errors before the event (a healthy set-up has none).
    pub fn errors_before_event(&self) -> u64 {
        self.errors_before.load(Ordering::Relaxed)
    }

    /// Every id acknowledged to a client so far.
    pub fn acked_ids(&self) -> Vec<i64> {
        self.acked_ids.lock().expect("not poisoned").clone()
    }
}

/// One client: writes until `stop` turns true; each acknowledged id goes to `rec`.
pub async fn client(
    pool: PgPool,
    client: u32,
    run_id: i64,
    rec: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) {
    let insert: Arc<str> = format!(
        "INSERT INTO {} (run_id, id, client) VALUES ($1, $2, $3)",
        table()
    )
    .into();
    let select: Arc<str> =
        format!("SELECT 1 FROM {} WHERE run_id = $1 AND id = $2", table()).into();
    let client_i32 = client as i32;
    let mut seq: u32 = 0;
    while !*stop.borrow() {
        seq += 1;
        let id = write_id(client, seq);
        let started = Instant::now();
        let written = pool
            .op("drill_insert")
            .run(Retry::Never, |c| {
                let sql = insert.clone();
                Box::pin(async move {
                    c.execute("the drill's insert", &sql, &[&run_id, &id, &client_i32])
                        .await
                })
            })
            .await;
        let ended = Instant::now();
        match written {
            Ok(_) => {
                rec.acked_ids.lock().expect("not poisoned").push(id);
                rec.acked.fetch_add(1, Ordering::Relaxed);
                rec.success(&rec.writes, started, ended);
            }
            Err(e) => {
                tracing::debug!("drill client {client}: {e}");
                rec.error(&e, ended);
                pause(&mut stop).await;
                continue;
            }
        }
        // Now and then, read back the write just acknowledged.
        if seq.is_multiple_of(4) {
            let last = id;
            let started = Instant::now();
            let read = pool
                .op("drill_read")
                .run(Retry::Once, |c| {
                    let sql = select.clone();
                    Box::pin(async move {
                        c.query_opt("the drill's read", &sql, &[&run_id, &last])
                            .await
                    })
                })
                .await;
            let ended = Instant::now();
            match read {
                Ok(row) => {
                    rec.reads_ok.fetch_add(1, Ordering::Relaxed);
                    if row.is_none() {
                        rec.reads_missing.fetch_add(1, Ordering::Relaxed);
                    }
                    rec.success(&rec.reads, started, ended);
                }
                Err(e) => {
                    rec.error(&e, ended);
                    pause(&mut stop).await;
                }
            }
        }
    }
}

/// After an error: a short pause (an error that comes back at once must not spin a core),
/// cut short by the stop.
async fn pause(stop: &mut watch::Receiver<bool>) {
    let _ = tokio::time::timeout(Duration::from_millis(50), stop.wait_for(|s| *s)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_ids_of_two_clients_never_collide() {
        assert_ne!(write_id(1, 7), write_id(7, 1));
        assert_eq!(write_id(0, 5), 5);
        assert_eq!(write_id(3, u32::MAX) >> 32, 3);
    }

    #[test]
    fn errors_without_a_sqlstate_get_a_clear_label() {
        let lost = Error::ConnectionLost {
            context: "x".into(),
            message: "y".into(),
        };
        assert_eq!(error_label(&lost), "connection_lost");
        let t = Error::Timeout {
            what: "x".into(),
            after: Duration::from_secs(1),
            next_step: None,
        };
        assert_eq!(error_label(&t), "timeout");
        assert_eq!(error_label(&Error::Connect("no".into())), "no_primary");
        let ro = Error::Query {
            context: "x".into(),
            code: Some(tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION),
            message: "read only".into(),
            next_step: None,
        };
        assert_eq!(error_label(&ro), "25006");
    }

    #[test]
    fn only_operations_started_after_the_event_count_as_resumed() {
        let rec = Recorder::default();
        let t0 = Instant::now();
        let event = t0 + Duration::from_secs(1);
        rec.event_at.set(event).unwrap();
        // In flight across the event: not a resumption.
        rec.success(&rec.writes, t0, event + Duration::from_millis(10));
        assert!(rec.writes().after_event.is_none());
        let first = event + Duration::from_secs(2);
        rec.success(&rec.writes, event + Duration::from_secs(1), first);
        assert_eq!(rec.writes().after_event, Some(first));
        assert!(rec.writes().after_promote.is_none());
        let promote = event + Duration::from_secs(3);
        rec.promote_at.set(promote).unwrap();
        let later = promote + Duration::from_millis(500);
        rec.success(&rec.writes, promote, later);
        assert_eq!(rec.writes().after_event, Some(first));
        assert_eq!(rec.writes().after_promote, Some(later));
    }
}
