//! The xmin horizon: what really holds back VACUUM, and what only looks as if it did.
//!
//! VACUUM can neither remove a row deleted after, nor freeze a row written after, the oldest
//! transaction some snapshot may still need: the xmin horizon. It is held by every running
//! transaction ID (a session's `backend_xid` once it has written, a prepared transaction's
//! XID), every snapshot (`backend_xmin`), replication slots (`xmin`, `catalog_xmin`) and
//! standbys reporting their snapshots with hot_standby_feedback.
//!
//! A snapshot's xmin is the oldest XID running when it was taken. So a session whose
//! backend_xmin equals an XID still held by another session or a prepared transaction is a
//! victim, not a cause: ending it frees nothing (a session waiting on a writer's row lock is
//! the classic case). [`Horizon`] keeps the causes, oldest first, and the victims apart, with
//! the statement that releases each cause. The rules that say "held back by" all read it.
//!
//! Pure: built from the snapshot alone.

use super::{duration, Thresholds};
use crate::ident::quote_literal;
use crate::snapshot::{Session, Snapshot};

/// Holders whose ages differ by no more than this many XIDs are "at the horizon" together:
/// transactions that began a moment apart on a busy server. Ending only the oldest of them
/// moves the horizon by at most this much.
pub const AT_HORIZON_TOLERANCE_XIDS: i64 = 1_000;

/// A holder whose open time is unknown (a slot, a standby's feedback) counts as holding the
/// horizon back for long from this XID age: a million transactions are hours of a busy
/// server's writes. Sessions and prepared transactions are judged by their open time instead
/// (`long_transaction_warning_seconds`).
/// <https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-SPACE-RECOVERY>
pub const LONG_HELD_XIDS: i64 = 1_000_000;

/// What holds the horizon.
#[derive(Debug, Clone, PartialEq)]
pub enum HolderKind {
    /// A session: its XID, or a snapshot of its own that no other holder explains (older
    /// than its XID when it has one). `holds_xid`: it has written, and stays a holder after
    /// its next statement.
    Session { pid: i32, holds_xid: bool },
    /// A prepared transaction waiting for COMMIT / ROLLBACK PREPARED.
    Prepared { gid: String },
    /// A replication slot's xmin or catalog_xmin.
    Slot { name: String, active: bool },
    /// A standby's snapshot, reported through hot_standby_feedback to its walsender.
    StandbyFeedback { pid: i32 },
}

/// One cause of the horizon, with its age and how to release it.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub kind: HolderKind,
    /// How old the XID or xmin it holds is, in transaction IDs.
    pub age: i64,
    /// Seconds it has been open, when known (sessions, prepared transactions).
    pub age_seconds: Option<f64>,
    /// Who it is: `session pid 42`, `prepared transaction 'tx1'`, `replication slot s1`.
    pub name: String,
    /// What it holds and what it is doing, for messages.
    pub what: String,
    /// How to release it, in words, SQL included.
    pub release: String,
    /// The statement that releases it, when there is one to run on this server.
    pub release_sql: Option<String>,
}

impl Holder {
    /// `name (what)` for messages.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.what)
    }

    /// Whether it has held the horizon back for long: open at least
    /// `long_transaction_warning_seconds` when its open time is known, else at least
    /// [`LONG_HELD_XIDS`] old.
    pub fn is_long_held(&self, th: &Thresholds) -> bool {
        match self.age_seconds {
            Some(s) => s >= th.long_transaction_warning_seconds,
            None => self.age >= LONG_HELD_XIDS,
        }
    }
}

/// A holder whose old xmin only follows an older XID held by a cause.
#[derive(Debug, Clone, PartialEq)]
pub struct Victim {
    pub kind: HolderKind,
    pub age: i64,
    pub name: String,
    /// The name of the cause it follows.
    pub follows: String,
}

/// The xmin horizon of one snapshot: causes oldest first, and the victims.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Horizon {
    pub causes: Vec<Holder>,
    pub victims: Vec<Victim>,
}

/// What the horizon model says about one session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionRole<'a> {
    /// It holds the horizon (as [`Holder`]); `at_horizon` when it is among the oldest.
    Cause {
        holder: &'a Holder,
        at_horizon: bool,
    },
    /// Its snapshot is old only because of `follows`.
    Victim(&'a Victim),
    /// It holds neither an XID nor a snapshot.
    Free,
}

/// A running XID held by someone: (age, holder name, session pid if a session).
struct XidHolder {
    age: i64,
    name: String,
    pid: Option<i32>,
}

impl Horizon {
    pub fn of(snap: &Snapshot) -> Horizon {
        // A parallel worker shares its leader's snapshot and XID: the leader is the holder.
        let sessions: Vec<&Session> = snap
            .activity
            .as_ref()
            .map_or(&[][..], |a| &a.sessions)
            .iter()
            .filter(|s| s.backend_type.as_deref() != Some("parallel worker"))
            .collect();
        let prepared = snap.prepared_xacts.as_deref().unwrap_or(&[]);

        // Every running XID: only these can explain an old snapshot.
        let mut xids: Vec<XidHolder> = Vec::new();
        for s in &sessions {
            if let Some(age) = s.backend_xid_age {
                xids.push(XidHolder {
                    age,
                    name: format!("session pid {}", s.pid),
                    pid: Some(s.pid),
                });
            }
        }
        for p in prepared {
            if let Some(age) = p.xid_age {
                xids.push(XidHolder {
                    age,
                    name: prepared_name(&p.gid),
                    pid: None,
                });
            }
        }
        // The youngest XID at least as old as `age` held by someone other than `pid`: the one
        // an xmin of that age was taken behind.
        let explained_by = |age: i64, pid: Option<i32>| -> Option<&XidHolder> {
            xids.iter()
                .filter(|x| x.age >= age && (pid.is_none() || x.pid != pid))
                .min_by_key(|x| x.age)
        };

        let mut h = Horizon::default();
        for p in prepared {
            let Some(age) = p.xid_age else { continue };
            let db = p.database.as_deref().unwrap_or("?");
            let sql = format!("ROLLBACK PREPARED {}", quote_literal(&p.gid));
            h.causes.push(Holder {
                kind: HolderKind::Prepared { gid: p.gid.clone() },
                age,
                age_seconds: Some(p.age_seconds),
                name: prepared_name(&p.gid),
                what: format!(
                    "XID age {age}, prepared {} ago by {} in database {db}, holding {}",
                    duration(p.age_seconds),
                    p.owner.as_deref().unwrap_or("?"),
                    super::count(p.locks, "lock", "locks")
                ),
                release: format!(
                    "{sql} in database {db}, or COMMIT PREPARED {} there if its other participants committed",
                    quote_literal(&p.gid)
                ),
                release_sql: Some(format!("{sql};")),
            });
        }
        for s in &sessions {
            let xid = s.backend_xid_age;
            let mut own = xid;
            if let Some(xmin) = s.backend_xmin_age {
                let own_explains = xid.is_some_and(|x| x >= xmin);
                if !own_explains {
                    match explained_by(xmin, Some(s.pid)) {
                        // Its snapshot follows another's XID; an XID of its own (younger)
                        // still makes it a cause below.
                        Some(cause) => h.victims.push(Victim {
                            kind: HolderKind::Session {
                                pid: s.pid,
                                holds_xid: xid.is_some(),
                            },
                            age: xmin,
                            name: format!("session pid {}", s.pid),
                            follows: cause.name.clone(),
                        }),
                        None => own = Some(xmin),
                    }
                }
            }
            let Some(age) = own else { continue };
            let holds_xid = xid.is_some();
            let sql = format!("SELECT pg_terminate_backend({})", s.pid);
            h.causes.push(Holder {
                kind: HolderKind::Session {
                    pid: s.pid,
                    holds_xid,
                },
                age,
                age_seconds: s.xact_age_seconds,
                name: format!("session pid {}", s.pid),
                what: session_what(s, age, holds_xid),
                release: format!(
                    "end its transaction in the application, or end the session: {sql}"
                ),
                release_sql: Some(format!("{sql};")),
            });
        }
        if let Some(rep) = &snap.replication {
            for slot in &rep.slots {
                let (age, which) = match (slot.xmin_age, slot.catalog_xmin_age) {
                    (Some(x), Some(c)) if c > x => (c, "catalog_xmin"),
                    (Some(x), _) => (x, "xmin"),
                    (None, Some(c)) => (c, "catalog_xmin"),
                    (None, None) => continue,
                };
                let name = format!("replication slot {}", slot.name);
                if slot.active {
                    if let Some(cause) = explained_by(age, None) {
                        h.victims.push(Victim {
                            kind: HolderKind::Slot {
                                name: slot.name.clone(),
                                active: true,
                            },
                            age,
                            name,
                            follows: cause.name.clone(),
                        });
                        continue;
                    }
                }
                let drop = format!(
                    "SELECT pg_drop_replication_slot({})",
                    quote_literal(&slot.name)
                );
                let release = match (slot.active, slot.slot_type.as_str()) {
                    (false, _) => format!(
                        "nothing consumes it: drop it if its consumer is gone for good ({drop}), \
                         else bring the consumer back so that it advances"
                    ),
                    (true, "logical") => format!(
                        "its consumer is behind: let it catch up, or skip ahead with \
                         pg_replication_slot_advance(); drop it if it is not needed ({drop})"
                    ),
                    (true, _) => "the standby streaming from it reports an old snapshot \
                         (hot_standby_feedback): end the long queries on that standby, or turn \
                         hot_standby_feedback off there (its queries may then be cancelled)"
                        .to_string(),
                };
                h.causes.push(Holder {
                    kind: HolderKind::Slot {
                        name: slot.name.clone(),
                        active: slot.active,
                    },
                    age,
                    age_seconds: None,
                    name,
                    what: format!(
                        "{} {} slot, {which} age {age}",
                        if slot.active { "active" } else { "inactive" },
                        slot.slot_type
                    ),
                    release,
                    release_sql: (!slot.active).then(|| format!("{drop};")),
                });
            }
            for sender in &rep.senders {
                let Some(age) = sender.backend_xmin_age else {
                    continue;
                };
                let name = format!(
                    "standby {} (walsender pid {})",
                    sender
                        .application_name
                        .as_deref()
                        .filter(|a| !a.is_empty())
                        .or(sender.client_addr.as_deref())
                        .unwrap_or("?"),
                    sender.pid
                );
                if let Some(cause) = explained_by(age, None) {
                    h.victims.push(Victim {
                        kind: HolderKind::StandbyFeedback { pid: sender.pid },
                        age,
                        name,
                        follows: cause.name.clone(),
                    });
                    continue;
                }
                h.causes.push(Holder {
                    kind: HolderKind::StandbyFeedback { pid: sender.pid },
                    age,
                    age_seconds: None,
                    name,
                    what: format!("hot_standby_feedback xmin age {age}"),
                    release: "a query on the standby holds an old snapshot: end the long \
                              queries there (pg_stat_activity on the standby), or turn \
                              hot_standby_feedback off there (its queries may then be cancelled)"
                        .to_string(),
                    release_sql: None,
                });
            }
        }
        h.causes
            .sort_by(|a, b| b.age.cmp(&a.age).then_with(|| a.name.cmp(&b.name)));
        h.victims
            .sort_by(|a, b| b.age.cmp(&a.age).then_with(|| a.name.cmp(&b.name)));
        h
    }

    /// The age of the horizon (its oldest cause), when anything holds it.
    pub fn age(&self) -> Option<i64> {
        self.causes.first().map(|c| c.age)
    }

    /// The causes within [`AT_HORIZON_TOLERANCE_XIDS`] of the oldest, oldest first.
    pub fn at_horizon(&self) -> impl Iterator<Item = &Holder> {
        let oldest = self.age().unwrap_or(i64::MAX);
        self.causes
            .iter()
            .take_while(move |c| c.age >= oldest - AT_HORIZON_TOLERANCE_XIDS)
    }

    /// The causes to name when everything at least `min_age` XIDs old must go, oldest first:
    /// those at the horizon, and behind them the ones that stay stuck until released (XIDs,
    /// prepared transactions, slots, standbys). A session holding only a snapshot newer than
    /// the horizon is never named: its snapshot moves on with its next statement.
    pub fn named_older_than(&self, min_age: i64) -> impl Iterator<Item = &Holder> {
        let oldest = self.age().unwrap_or(i64::MAX);
        self.causes
            .iter()
            .take_while(move |c| c.age >= min_age)
            .filter(move |c| {
                c.age >= oldest - AT_HORIZON_TOLERANCE_XIDS
                    || !matches!(
                        c.kind,
                        HolderKind::Session {
                            holds_xid: false,
                            ..
                        }
                    )
            })
    }

    /// What the model says about session `pid`: at the horizon, a cause; else, when its old
    /// snapshot follows another holder, a victim (even with a younger XID of its own); else a
    /// cause behind the horizon, or free.
    pub fn session(&self, pid: i32) -> SessionRole<'_> {
        let is = |k: &HolderKind| matches!(k, HolderKind::Session { pid: p, .. } if *p == pid);
        let cause = self.causes.iter().find(|c| is(&c.kind));
        let at_horizon = self.at_horizon().any(|c| is(&c.kind));
        match (cause, self.victims.iter().find(|v| is(&v.kind))) {
            (Some(holder), _) if at_horizon => SessionRole::Cause { holder, at_horizon },
            (_, Some(v)) => SessionRole::Victim(v),
            (Some(holder), None) => SessionRole::Cause { holder, at_horizon },
            (None, None) => SessionRole::Free,
        }
    }
}

fn prepared_name(gid: &str) -> String {
    format!("prepared transaction {}", quote_literal(gid))
}

/// What a holding session holds and does: `XID age 900, idle in transaction for 5.0 min
/// (app@db, web), last query: UPDATE ...`.
fn session_what(s: &Session, age: i64, holds_xid: bool) -> String {
    let mut out = match s.backend_xid_age {
        Some(xid) if xid == age => format!("XID age {age}"),
        Some(xid) => format!("backend_xmin age {age}, XID age {xid}"),
        None => format!("backend_xmin age {age}"),
    };
    if let Some(state) = s.state.as_deref() {
        out.push_str(", ");
        out.push_str(state);
        if let Some(t) = s.state_age_seconds {
            out.push_str(&format!(" for {}", duration(t)));
        }
        if holds_xid && state.starts_with("idle in transaction") {
            out.push_str(" after writing");
        }
    }
    out.push_str(&format!(", {}", super::long_running::who(s)));
    if let Some(q) = s.query.as_deref().filter(|q| !q.trim().is_empty()) {
        let q = q.split_whitespace().collect::<Vec<_>>().join(" ");
        match q.char_indices().nth(60) {
            Some((i, _)) => out.push_str(&format!(", last query: {}…", &q[..i])),
            None => out.push_str(&format!(", last query: {q}")),
        }
    }
    out
}
