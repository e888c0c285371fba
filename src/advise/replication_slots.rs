//! Replication slots and the WAL they keep: a slot holds every WAL segment from its
//! restart_lsn on until its consumer (a standby, a logical subscriber) confirms it. A slot
//! whose consumer is gone keeps WAL until the disk of pg_wal is full, unless
//! max_slot_wal_keep_size caps it; past that cap the slot is invalidated ("lost") and its
//! consumer must be re-seeded.
//!
//! The xmin and catalog_xmin a slot holds back are the xmin-horizon rules' business; here
//! they are evidence only.

use super::{bytes, setting_bytes, Finding, Severity, Thresholds};
use crate::ident::quote_literal;
use crate::plan::{Lock, Step};
use crate::snapshot::{ReplicationSlot, Snapshot};

pub const LOST_RULE: &str = "replication_slot_lost";
pub const RETAINING_RULE: &str = "replication_slot_retaining_wal";
const DOCS: &str = "https://www.postgresql.org/docs/current/view-pg-replication-slots.html";
const KEEP_DOCS: &str =
    "https://www.postgresql.org/docs/current/runtime-config-replication.html#GUC-MAX-SLOT-WAL-KEEP-SIZE";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(rep) = &snap.replication else {
        return Vec::new();
    };
    // -1 (unlimited) is the default; an unreadable setting is treated the same way.
    let keep = setting_bytes(snap, "max_slot_wal_keep_size").unwrap_or(-1.0);
    let wal_disk_free = snap
        .host
        .as_ref()
        .and_then(|h| h.wal_disk.as_ref().or(h.data_disk.as_ref()))
        .map(|d| d.available_bytes);
    let mut out = Vec::new();
    for slot in &rep.slots {
        if slot.wal_status.as_deref() == Some("lost") {
            out.push(lost(slot, keep));
        } else if let Some(f) = retaining(slot, keep, wal_disk_free, th) {
            out.push(f);
        }
    }
    out
}

fn describe(slot: &ReplicationSlot) -> String {
    format!(
        "replication slot {} ({}, {})",
        slot.name,
        slot.slot_type,
        if slot.active { "active" } else { "inactive" }
    )
}

fn with_slot_evidence(f: Finding, slot: &ReplicationSlot, keep: f64) -> Finding {
    f.evidence("slot_type", slot.slot_type.as_str())
        .evidence("active", slot.active)
        .evidence("retained_bytes", slot.retained_bytes)
        .evidence("wal_status", slot.wal_status.as_deref())
        .evidence("safe_wal_size_bytes", slot.safe_wal_size_bytes)
        .evidence("max_slot_wal_keep_size_bytes", keep as i64)
        .evidence("xmin_age", slot.xmin_age)
        .evidence("catalog_xmin_age", slot.catalog_xmin_age)
}

fn drop_slot(slot: &ReplicationSlot) -> Step {
    Step::call(format!(
        "SELECT pg_drop_replication_slot({})",
        quote_literal(&slot.name)
    ))
}

fn lost(slot: &ReplicationSlot, keep: f64) -> Finding {
    let consumer = if slot.slot_type == "logical" {
        "re-create the subscription's slot and copy its tables again (or resynchronise \
         the logical consumer from a fresh snapshot)"
    } else {
        "re-seed the standby from a new base backup (pg_basebackup)"
    };
    let f = Finding::new(
        LOST_RULE,
        Severity::Critical,
        format!("replication slot {}", slot.name),
        format!(
            "{} is lost (wal_status = lost): the WAL its consumer needs was removed, past \
             max_slot_wal_keep_size, and the consumer can no longer catch up from it",
            describe(slot)
        ),
    );
    with_slot_evidence(f, slot, keep)
        .next_step(format!(
            "Its consumer cannot resume: {consumer}, then drop this slot; if the consumer is \
             gone for good, just drop the slot"
        ))
        .fix(drop_slot(slot))
        .docs(DOCS)
}

fn retaining(
    slot: &ReplicationSlot,
    keep: f64,
    wal_disk_free: Option<u64>,
    th: &Thresholds,
) -> Option<Finding> {
    let retained = slot.retained_bytes.unwrap_or(0);
    let unreserved = slot.wal_status.as_deref() == Some("unreserved");
    if (retained as f64) < th.slot_retained_warning_bytes as f64 && !unreserved {
        return None;
    }
    // How much more WAL before the slot is lost, and whether that is little.
    let near_loss = keep > 0.0
        && slot
            .safe_wal_size_bytes
            .is_some_and(|s| (s as f64) < th.slot_safe_wal_critical_ratio * keep);
    let severity =
        if unreserved || near_loss || retained as f64 >= th.slot_retained_critical_bytes as f64 {
            Severity::Critical
        } else {
            Severity::Warning
        };
    let status = match slot.wal_status.as_deref() {
        Some("extended") => " (wal_status = extended: beyond max_wal_size)".to_string(),
        Some("unreserved") => " (wal_status = unreserved: the next checkpoint may remove \
                                WAL it needs and the slot is then lost)"
            .to_string(),
        _ => String::new(),
    };
    let limit = if keep < 0.0 {
        format!(
            "nothing caps it (max_slot_wal_keep_size = -1): it keeps WAL until the disk \
             holding pg_wal is full{}",
            wal_disk_free
                .map(|b| format!(" ({} free on it now)", bytes(b as i64)))
                .unwrap_or_default()
        )
    } else {
        format!(
            "max_slot_wal_keep_size ({}) caps it; {} more WAL and the slot is lost",
            bytes(keep as i64),
            slot.safe_wal_size_bytes
                .map(|s| bytes(s.max(0)))
                .unwrap_or_else(|| "an unknown amount of".to_string())
        )
    };
    let why = if slot.active {
        "its consumer is connected but behind"
    } else {
        "no consumer is connected to it"
    };
    let message = format!(
        "{} retains {} of WAL{status}; {why}; {limit}",
        describe(slot),
        bytes(retained)
    );
    let mut step = if slot.active {
        "Find out why its consumer lags (network, a slow standby or subscriber, a long \
         transaction on the subscriber) and let it catch up"
            .to_string()
    } else {
        "If its consumer (a standby or a logical subscriber) is gone for good, drop the slot; \
         if it is coming back, bring it back before the disk fills"
            .to_string()
    };
    let mut sql = if slot.active {
        Vec::new()
    } else {
        vec![drop_slot(slot)]
    };
    if keep < 0.0 {
        step.push_str(
            ". Set max_slot_wal_keep_size so that one forgotten slot cannot fill the disk \
             (the slot is then invalidated instead, and its consumer must be re-seeded)",
        );
        let cap = wal_disk_free
            .map(|free| (((free as f64 + retained as f64) / 2.0) / (1u64 << 30) as f64) as u64)
            .filter(|gb| *gb > 0);
        match cap {
            Some(gb) => sql.extend([
                Step::sql(
                    format!(
                        "ALTER SYSTEM SET max_slot_wal_keep_size = {}",
                        quote_literal(&format!("{gb}GB"))
                    ),
                    Lock::None,
                    false,
                )
                .with_caution(
                    "half of the free space of pg_wal's disk plus what this slot retains",
                ),
                Step::call("SELECT pg_reload_conf()"),
            ]),
            None => sql.push(Step::manual(
                "pick a cap that fits the free space of pg_wal's disk (unknown from here):\n\
                 ALTER SYSTEM SET max_slot_wal_keep_size = '...GB';\n\
                 SELECT pg_reload_conf();",
            )),
        }
    }
    let f = Finding::new(
        RETAINING_RULE,
        severity,
        format!("replication slot {}", slot.name),
        message,
    );
    let f = with_slot_evidence(f, slot, keep)
        .evidence("warning_bytes", th.slot_retained_warning_bytes)
        .evidence("critical_bytes", th.slot_retained_critical_bytes)
        .evidence("wal_disk_available_bytes", wal_disk_free)
        .next_step(step)
        .docs(if keep < 0.0 { KEEP_DOCS } else { DOCS });
    Some(if sql.is_empty() { f } else { f.fixes(sql) })
}
