//! `pgopt tune` over a snapshot: the inputs the snapshot shows, and the advice. Pure.
//!
//! The command collects one snapshot (or loads a saved one, `--from`), takes the inputs it
//! shows ([`detected`]: version, memory and CPUs of the machine, the storage under the data
//! directory), lets the flags win ([`merge_detected`]) and calls [`advise`]. Nothing here
//! reads the server or this machine: a saved snapshot gives the same advice as the live run it
//! was saved from.

use serde::Serialize;

use super::compare::{self, Comparison, ServerSetting};
use super::evidence::{self, Change, ObjectSetting};
use super::pgtune::{self, PgTuneOutput};
use super::{Method, Os, RawInput, TuneInput};
use crate::advise::{Finding, ReviewPart, Thresholds};
use crate::error::{Error, Result};
use crate::snapshot::{Setting, SettingDomain, Snapshot, StorageSource};

/// What the snapshot says about the inputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detected {
    pub version_num: Option<i32>,
    /// Effective memory (the cgroup limit when lower), when the server is on the machine that
    /// collected the snapshot.
    pub memory_bytes: Option<u64>,
    pub cpus: Option<u32>,
    pub local: bool,
    /// The server's data directory, when this role may read it.
    pub data_directory: Option<String>,
    /// The storage under the data directory; None when `--storage` was given.
    pub storage: Option<StorageSource>,
}

impl Detected {
    /// Where the storage input came from: the flag, or what the snapshot recorded.
    pub fn storage_source(&self) -> StorageSource {
        self.storage.clone().unwrap_or(StorageSource::Flag)
    }
}

/// The inputs a snapshot shows: its server's version, and when the server runs on the machine
/// that collected it, memory and CPUs (its host section) and the storage under its data
/// directory. `storage_given`: `--storage` was given, so the snapshot's storage is not used.
pub fn detected(snap: &Snapshot, storage_given: bool) -> Detected {
    let storage = if storage_given {
        None
    } else {
        Some(
            snap.data_storage
                .clone()
                .unwrap_or_else(|| StorageSource::NotDetected {
                    reason: match snap.section("data_storage") {
                        Some(s) => format!(
                            "it was not collected ({})",
                            s.reason.as_deref().unwrap_or("no reason recorded")
                        ),
                        None => format!(
                            "this snapshot (schema version {}) does not record it",
                            snap.schema_version
                        ),
                    },
                }),
        )
    };
    let host = snap.host.as_ref();
    Detected {
        version_num: snap.server.as_ref().map(|s| s.version_num),
        memory_bytes: host.map(|h| h.effective_memory_bytes()),
        cpus: host.map(|h| h.cpus as u32),
        local: snap.target.is_local(),
        data_directory: snap.server.as_ref().and_then(|s| s.data_directory.clone()),
        storage,
    }
}

/// Fills what the flags leave out from what was detected; flags win. Memory and CPUs that
/// cannot be detected must be given.
pub fn merge_detected(mut raw: RawInput, d: &Detected) -> Result<RawInput> {
    if raw.pg_version.is_none() {
        raw.pg_version = d.version_num.map(|v| (v / 10000) as u32);
    }
    if raw.memory.is_none() {
        match d.memory_bytes {
            Some(b) => raw.memory = Some(format!("{}MB", b / (1024 * 1024))),
            None => {
                return Err(Error::BadInput(
                    "cannot detect the server's memory (it is not on this machine, or host \
                     facts could not be read): pass --memory, e.g. --memory 16GB"
                        .into(),
                ))
            }
        }
    }
    if raw.cpus.is_none() {
        match d.cpus {
            Some(c) => raw.cpus = Some(c),
            None => {
                return Err(Error::BadInput(
                    "cannot detect the server's CPUs (it is not on this machine, or host \
                     facts could not be read): pass --cpus, e.g. --cpus 8"
                        .into(),
                ))
            }
        }
    }
    if raw.storage.is_none() {
        raw.storage = d.storage.as_ref().and_then(StorageSource::storage);
    }
    if raw.os.is_none() && d.local && cfg!(target_os = "linux") {
        raw.os = Some(Os::Linux);
    }
    Ok(raw)
}

/// The validated inputs for a snapshot: the flags in `raw`, the gaps filled from the
/// snapshot; with what was detected.
pub fn inputs(snap: &Snapshot, raw: RawInput) -> Result<(TuneInput, Detected)> {
    let detected = detected(snap, raw.storage.is_some());
    let input = TuneInput::validate(&merge_detected(raw, &detected)?)?;
    Ok((input, detected))
}

/// The server's settings as comparing and validating need them, from the snapshot (ranges
/// and enum values absent from a snapshot that lacks them).
pub fn server_settings(snap: &Snapshot) -> Vec<ServerSetting> {
    let domains: std::collections::HashMap<&str, &SettingDomain> = snap
        .setting_domains
        .iter()
        .flatten()
        .map(|d| (d.name.as_str(), d))
        .collect();
    snap.settings
        .iter()
        .map(|s| server_setting(s, domains.get(s.name.as_str()).copied()))
        .collect()
}

fn server_setting(s: &Setting, d: Option<&SettingDomain>) -> ServerSetting {
    ServerSetting {
        name: s.name.clone(),
        setting: s.setting.clone(),
        unit: s.unit.clone(),
        vartype: s.vartype.clone(),
        context: s.context.clone(),
        source: s.source.clone(),
        sourcefile: d.and_then(|d| d.sourcefile.clone()),
        min_val: d.and_then(|d| d.min_val.clone()),
        max_val: d.and_then(|d| d.max_val.clone()),
        enumvals: d.and_then(|d| d.enumvals.clone()),
        pending_restart: s.pending_restart,
    }
}

/// One method's recommendation against the server's values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    pub method: Method,
    /// The settings recommended (PGTune's order, added settings after), warnings and notes.
    pub output: PgTuneOutput,
    /// What `--method pgopt` changed in PGTune's baseline, with the evidence (empty for
    /// pgtune).
    pub changes: Vec<Change>,
    /// Settings of single tables and roles (empty for pgtune).
    pub objects: Vec<ObjectSetting>,
    /// Current against recommended, one row per recommended setting.
    pub rows: Vec<Comparison>,
}

impl Recommendation {
    /// (name, value) of each setting that differs from the server's.
    pub fn to_change(&self) -> Vec<(&str, &str)> {
        self.rows
            .iter()
            .filter(|r| r.change)
            .map(|r| (r.name.as_str(), r.recommended.as_str()))
            .collect()
    }

    /// Recommended settings this server does not know.
    pub fn unknown(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r.current.is_none())
            .map(|r| r.name.as_str())
            .collect()
    }

    /// Settings to change that wait for a restart.
    pub fn restart(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r.change && r.needs_restart)
            .map(|r| r.name.as_str())
            .collect()
    }
}

/// Everything `pgopt tune` says about one server: both methods' recommendations, the security
/// review, and what the snapshot lacked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuneAdvice {
    pub input: TuneInput,
    /// PGTune's calculator, with what the server was seen to accept (lz4).
    pub pgtune: Recommendation,
    /// PGTune's baseline changed by the evidence rules.
    pub pgopt: Recommendation,
    /// The server's settings (pg_settings of the snapshot).
    pub server: Vec<ServerSetting>,
    pub security: Vec<Finding>,
    pub security_coverage: Vec<ReviewPart>,
    /// What the snapshot lacks that tune would read (an older schema, a section not
    /// collected), one line each.
    pub lacks: Vec<String>,
}

impl TuneAdvice {
    pub fn recommendation(&self, method: Method) -> &Recommendation {
        match method {
            Method::Pgopt => &self.pgopt,
            Method::Pgtune => &self.pgtune,
        }
    }
}

/// The advice for the server of `snap`, for `input`, judged by `th`. No I/O.
pub fn advise(snap: &Snapshot, input: &TuneInput, th: &Thresholds) -> TuneAdvice {
    let server = server_settings(snap);
    let mut baseline = pgtune::pgtune(input);
    evidence::server_checks(&mut baseline, snap);
    let p = evidence::pgopt_method_with(&baseline, input, snap, th);
    let pgtune_rows = compare::compare(&server, &baseline.settings);
    let pgopt_rows = compare::compare(&server, &p.output.settings);
    TuneAdvice {
        input: input.clone(),
        pgtune: Recommendation {
            method: Method::Pgtune,
            output: baseline,
            changes: Vec::new(),
            objects: Vec::new(),
            rows: pgtune_rows,
        },
        pgopt: Recommendation {
            method: Method::Pgopt,
            output: p.output,
            changes: p.changes,
            objects: p.objects,
            rows: pgopt_rows,
        },
        server,
        security: crate::advise::security_review(snap),
        security_coverage: crate::advise::review_coverage(snap),
        lacks: snap.lacks_for_tune(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn detected_inputs_fill_gaps_and_flags_win() {
        let d = Detected {
            version_num: Some(150008),
            memory_bytes: Some(8 * GB),
            cpus: Some(6),
            local: true,
            data_directory: None,
            storage: None,
        };
        let raw = merge_detected(RawInput::default(), &d).unwrap();
        assert_eq!(raw.pg_version, Some(15));
        assert_eq!(raw.memory.as_deref(), Some("8192MB"));
        assert_eq!(raw.cpus, Some(6));
        assert_eq!(raw.os, Some(Os::Linux));
        assert_eq!(raw.connections, None, "PGTune's default unless given");
        let given = RawInput {
            memory: Some("2GB".into()),
            cpus: Some(2),
            pg_version: Some(13),
            os: Some(Os::Windows),
            ..RawInput::default()
        };
        let raw = merge_detected(given, &d).unwrap();
        assert_eq!(
            (raw.memory.as_deref(), raw.cpus, raw.pg_version, raw.os),
            (Some("2GB"), Some(2), Some(13), Some(Os::Windows))
        );
    }

    #[test]
    fn remote_server_needs_memory_and_cpus_flags() {
        let remote = Detected {
            version_num: Some(160002),
            ..Detected::default()
        };
        let e = merge_detected(RawInput::default(), &remote).unwrap_err();
        assert!(
            e.is_bad_input() && e.to_string().contains("--memory"),
            "{e}"
        );
        let with_memory = RawInput {
            memory: Some("16GB".into()),
            ..RawInput::default()
        };
        let e = merge_detected(with_memory.clone(), &remote).unwrap_err();
        assert!(e.to_string().contains("--cpus"), "{e}");
        let raw = merge_detected(
            RawInput {
                cpus: Some(4),
                ..with_memory
            },
            &remote,
        )
        .unwrap();
        assert_eq!((raw.pg_version, raw.os), (Some(16), None));
    }
}
