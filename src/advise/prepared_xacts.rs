//! Prepared transactions left open: each keeps its XID (VACUUM can neither remove nor freeze
//! rows past it) and its locks (DDL on what it touched waits) until COMMIT PREPARED or ROLLBACK
//! PREPARED, across restarts, with no session to end.

use super::horizon::Horizon;
use super::{count, duration, num, Finding, Severity, Thresholds};
use crate::ident::quote_literal;
use crate::plan::{Lock, Step};
use crate::snapshot::Snapshot;

pub const RULE: &str = "prepared_transaction";
const DOCS: &str = "https://www.postgresql.org/docs/current/sql-prepare-transaction.html";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(prepared) = &snap.prepared_xacts else {
        return Vec::new();
    };
    let horizon = Horizon::of(snap);
    prepared
        .iter()
        .filter(|p| p.age_seconds >= th.prepared_transaction_warning_seconds)
        .map(|p| {
            let gid = quote_literal(&p.gid);
            let db = p.database.as_deref().unwrap_or("?");
            let owner = p.owner.as_deref().unwrap_or("?");
            let at_horizon = horizon.at_horizon().any(|h| {
                matches!(&h.kind, super::horizon::HolderKind::Prepared { gid } if *gid == p.gid)
            });
            let xid = match p.xid_age {
                Some(age) => format!("XID age {age}"),
                None => "an XID".to_string(),
            };
            let mut message = format!(
                "prepared transaction {gid} (owner {owner}, database {db}) has waited {} for COMMIT PREPARED or ROLLBACK PREPARED (threshold {}); it holds {xid} and {}: VACUUM cannot remove or freeze rows past it, and DDL on what it locked waits",
                duration(p.age_seconds),
                duration(th.prepared_transaction_warning_seconds),
                count(p.locks, "lock", "locks"),
            );
            if at_horizon {
                message.push_str("; it is the oldest holder of the xmin horizon");
            }
            Finding::new(RULE, Severity::Warning, format!("prepared transaction {gid}"), message)
                .evidence("gid", p.gid.clone())
                .evidence("owner", p.owner.clone())
                .evidence("database", p.database.clone())
                .evidence("age_seconds", num(p.age_seconds))
                .evidence("threshold_seconds", num(th.prepared_transaction_warning_seconds))
                .evidence("xid_age", p.xid_age)
                .evidence("locks", p.locks)
                .evidence("at_horizon", at_horizon)
                .next_step(format!(
                    "Ask the transaction manager that prepared it to finish it; if it is lost, connect to database {db} (as {owner} or a superuser) and run ROLLBACK PREPARED {gid}, or COMMIT PREPARED {gid} if its other participants committed. No session holds it: ending backends does not release it, and a restart keeps it"
                ))
                .fix(Step::sql(format!("ROLLBACK PREPARED {gid}"), Lock::None, false))
                .docs(DOCS)
        })
        .collect()
}
