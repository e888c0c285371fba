//! How close a table is to transaction-ID or multixact wraparound, by the limits the
//! PostgreSQL documentation names, for ordering freezes (the closest first) and saying why.
//!
//! <https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-WRAPAROUND>:
//! past autovacuum_freeze_max_age (autovacuum_multixact_freeze_max_age) autovacuum forces an
//! anti-wraparound vacuum; past vacuum_failsafe_age (vacuum_multixact_failsafe_age,
//! PostgreSQL 14+) VACUUM drops its cost delay and index cleanup to finish; 40 million IDs
//! before wraparound the server logs warnings; 3 million before, it refuses to assign new IDs
//! until the database is vacuumed.

use serde::{Deserialize, Serialize};

use crate::advise::Finding;
use crate::snapshot::Snapshot;

/// 2^31: the distance at which IDs wrap around.
const WRAP_LIMIT: i64 = 1 << 31;
/// IDs left when the server starts logging wraparound warnings.
pub const WARNING_IDS_LEFT: i64 = 40_000_000;
/// IDs left when the server stops assigning new ones.
pub const STOP_IDS_LEFT: i64 = 3_000_000;
/// The default of vacuum_failsafe_age and vacuum_multixact_failsafe_age.
const DEFAULT_FAILSAFE_AGE: f64 = 1_600_000_000.0;

/// The documentation's limits, least urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Past analyze's warning share of the freeze max age, not yet at it.
    Approaching,
    /// Past autovacuum_freeze_max_age: autovacuum forces an anti-wraparound vacuum.
    ForcedVacuum,
    /// Past vacuum_failsafe_age: VACUUM's failsafe skips index cleanup and cost delays.
    Failsafe,
    /// Within 40 million IDs of wraparound: the server logs warnings.
    Warnings,
    /// Within 3 million: the server assigns no new IDs.
    Stopped,
}

/// One freeze's urgency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Urgency {
    pub level: Level,
    /// `transaction ID` or `multixact ID`.
    pub what: String,
    pub age: i64,
    pub ids_left: i64,
    /// The limit passed, with its number.
    pub text: String,
}

/// The urgency of a wraparound finding (its `age` evidence), None for any other finding.
pub fn of(snap: &Snapshot, f: &Finding) -> Option<Urgency> {
    let xid = match f.rule.as_str() {
        "xid_wraparound" => true,
        "multixact_wraparound" => false,
        _ => return None,
    };
    let age = f.evidence.get("age")?.as_i64()?;
    let (max_name, max_default, failsafe_name) = if xid {
        (
            "autovacuum_freeze_max_age",
            200_000_000.0,
            "vacuum_failsafe_age",
        )
    } else {
        (
            "autovacuum_multixact_freeze_max_age",
            400_000_000.0,
            "vacuum_multixact_failsafe_age",
        )
    };
    let max_age = snap.setting_f64(max_name).unwrap_or(max_default);
    // The failsafe never starts before the freeze max age's 105 % (PostgreSQL clamps it).
    let failsafe = snap
        .setting_f64(failsafe_name)
        .unwrap_or(DEFAULT_FAILSAFE_AGE)
        .max(1.05 * max_age);
    Some(classify(
        xid,
        age,
        max_name,
        max_age,
        failsafe_name,
        failsafe,
    ))
}

/// The level of `age` against the limits.
pub fn classify(
    xid: bool,
    age: i64,
    max_name: &str,
    max_age: f64,
    failsafe_name: &str,
    failsafe_age: f64,
) -> Urgency {
    let ids_left = WRAP_LIMIT - age;
    let (level, text) = if ids_left <= STOP_IDS_LEFT {
        (
            Level::Stopped,
            format!(
                "{ids_left} IDs left: the server assigns no new ones (stop limit {STOP_IDS_LEFT})"
            ),
        )
    } else if ids_left <= WARNING_IDS_LEFT {
        (
            Level::Warnings,
            format!("{ids_left} IDs left: the server warns from {WARNING_IDS_LEFT}"),
        )
    } else if age as f64 >= failsafe_age {
        (
            Level::Failsafe,
            format!("past {failsafe_name} {failsafe_age:.0}: vacuum's failsafe is on"),
        )
    } else if age as f64 >= max_age {
        (
            Level::ForcedVacuum,
            format!("past {max_name} {max_age:.0}: autovacuum forces an anti-wraparound vacuum"),
        )
    } else {
        (
            Level::Approaching,
            format!(
                "{:.0} % of {max_name} {max_age:.0}",
                100.0 * age as f64 / max_age
            ),
        )
    };
    Urgency {
        level,
        what: if xid {
            "transaction ID"
        } else {
            "multixact ID"
        }
        .to_string(),
        age,
        ids_left,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(age: i64) -> Level {
        classify(
            true,
            age,
            "autovacuum_freeze_max_age",
            200_000_000.0,
            "vacuum_failsafe_age",
            1_600_000_000.0,
        )
        .level
    }

    #[test]
    fn levels_follow_the_documented_limits() {
        assert_eq!(level(185_000_000), Level::Approaching);
        assert_eq!(level(200_000_000), Level::ForcedVacuum);
        assert_eq!(level(1_599_999_999), Level::ForcedVacuum);
        assert_eq!(level(1_600_000_000), Level::Failsafe);
        assert_eq!(level(WRAP_LIMIT - WARNING_IDS_LEFT), Level::Warnings);
        assert_eq!(level(WRAP_LIMIT - WARNING_IDS_LEFT - 1), Level::Failsafe);
        assert_eq!(level(WRAP_LIMIT - STOP_IDS_LEFT), Level::Stopped);
        assert_eq!(level(WRAP_LIMIT - STOP_IDS_LEFT - 1), Level::Warnings);
    }
}
