//! The journal of a run: every step of the plan with its state, written before and after
//! each step (atomically), so that `--rollback JOURNAL` can take back what a run did even
//! after the process was killed mid-step.
//!
//! One format for every kind of step, versioned. A checksum over the content catches a
//! truncated or hand-edited file; a journal of a newer pgopt is refused; the settings journal
//! of `pgopt tune --apply` before version 2 is converted on read.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plan::{Action, Object, Step};

/// The version this pgopt writes and the newest it reads.
pub const JOURNAL_VERSION: u32 = 2;

/// The server a journal belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerId {
    /// How pgopt reached it.
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    /// pg_control_system().system_identifier; None when unreadable (or an old journal).
    pub system_identifier: Option<String>,
    /// The server's own `port` setting; None in an old journal.
    pub server_port: Option<u16>,
}

/// Where a step got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not reached.
    Pending,
    /// Begun and not known to have finished: the process may have died here.
    Started,
    Done,
    /// Not run: its precondition no longer held, or a step it depends on did not run.
    Skipped,
    /// Ran and failed; cleaned up.
    Failed,
    /// Done, then taken back.
    Undone,
}

/// One step in the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalStep {
    pub step: Step,
    pub state: StepState,
    /// Why it was skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What takes it back, as known when it started (the old value read then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Action>,
    /// When the state last changed (RFC 3339).
    pub at: String,
}

/// A run's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub journal_version: u32,
    pub pgopt_version: String,
    pub created_at: String,
    pub server: ServerId,
    pub steps: Vec<JournalStep>,
    /// FNV-1a 64 of the rest of the journal as written, in hex: a truncated or edited file
    /// does not match. Absent in converted old journals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl Journal {
    pub fn new(server: ServerId, steps: &[Step]) -> Journal {
        let now = now();
        Journal {
            journal_version: JOURNAL_VERSION,
            pgopt_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: now.clone(),
            server,
            steps: steps
                .iter()
                .map(|s| JournalStep {
                    step: s.clone(),
                    state: StepState::Pending,
                    reason: None,
                    undo: s.undo.clone(),
                    at: now.clone(),
                })
                .collect(),
            checksum: None,
        }
    }

    /// Sets step `i`'s state (and reason), with the time.
    pub fn mark(&mut self, i: usize, state: StepState, reason: Option<String>) {
        let s = &mut self.steps[i];
        s.state = state;
        s.reason = reason;
        s.at = now();
    }

    fn content_checksum(&self) -> String {
        let body = Journal {
            checksum: None,
            ..self.clone()
        };
        let text = serde_json::to_string(&body).expect("a journal serialises");
        format!("{:016x}", crate::hash::fnv1a64(text.as_bytes()))
    }

    /// Writes the journal atomically (a temporary file renamed over `path`), synced, with
    /// its checksum.
    pub fn save(&mut self, path: &Path) -> Result<()> {
        self.checksum = Some(self.content_checksum());
        let text = serde_json::to_string_pretty(&*self)
            .map_err(|e| Error::Internal(format!("journal: {e}")))?;
        crate::files::write_atomically(path, &text)
    }

    /// Reads a journal of any version this pgopt knows; an old tune journal is converted.
    /// Anything else is bad input saying what is wrong with the file.
    pub fn load(path: &Path) -> Result<Journal> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::input_file(path, &e))?;
        Journal::parse(&text).map_err(|why| {
            Error::BadInput(format!("{}: {why}; nothing was changed", path.display()))
        })
    }

    /// [`Journal::load`] on text; the error says what is wrong with it.
    pub fn parse(text: &str) -> std::result::Result<Journal, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            format!(
                "not a complete pgopt journal ({e}): the file is truncated or damaged; give \
                 the file the run wrote"
            )
        })?;
        let version = value
            .get("journal_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or("not a pgopt journal (no journal_version); give the file the run wrote")?;
        match version {
            1 => {
                let old: JournalV1 = serde_json::from_value(value)
                    .map_err(|e| format!("not a readable version 1 tune journal ({e})"))?;
                Ok(Journal::from_v1(old))
            }
            v if v == u64::from(JOURNAL_VERSION) => {
                let j: Journal = serde_json::from_value(value)
                    .map_err(|e| format!("not a readable version 2 journal ({e})"))?;
                match &j.checksum {
                    Some(sum) if *sum == j.content_checksum() => Ok(j),
                    Some(_) => Err("the journal was edited by hand or damaged (its checksum \
                         does not match its content); pgopt replays only the journal it wrote"
                        .to_string()),
                    None => Err("the journal has no checksum: it was edited by hand; pgopt \
                         replays only the journal it wrote"
                        .to_string()),
                }
            }
            v if v > u64::from(JOURNAL_VERSION) => Err(format!(
                "journal version {v} was written by a newer pgopt (this one reads up to \
                 {JOURNAL_VERSION}); roll back with the pgopt that wrote it"
            )),
            v => Err(format!("journal version {v} is not one pgopt ever wrote")),
        }
    }

    /// The settings journal of `pgopt tune --apply` before version 2: every entry was done.
    pub fn from_v1(old: JournalV1) -> Journal {
        let server = ServerId {
            host: old.host,
            port: old.port,
            database: old.database,
            user: old.user,
            system_identifier: None,
            server_port: None,
        };
        let mut steps = Vec::new();
        for e in old.entries {
            let mut step = Step::set_system(&e.name, &e.new, None, false);
            step.undo = Some(Action::SetSystem {
                name: e.name.clone(),
                value: e.old_auto_conf.clone(),
            });
            steps.push(step);
        }
        for o in old.objects {
            let object = match o.kind {
                crate::tune::evidence::ObjectKind::Table => Object::Table {
                    schema: o.schema.clone(),
                    name: o.object.clone(),
                },
                crate::tune::evidence::ObjectKind::Role => Object::Role {
                    name: o.object.clone(),
                },
            };
            steps.push(Step::set_object(object, &o.name, &o.new, o.old.as_deref()));
        }
        let mut j = Journal::new(server, &steps);
        j.created_at = old.created_at;
        j.pgopt_version = old.pgopt_version;
        for s in &mut j.steps {
            s.state = StepState::Done;
        }
        j
    }

    /// The steps still to take back, newest first: done, or started and perhaps done.
    pub fn to_undo(&self) -> Vec<usize> {
        (0..self.steps.len())
            .rev()
            .filter(|i| matches!(self.steps[*i].state, StepState::Done | StepState::Started))
            .collect()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

/// One setting in the journal: its value in postgresql.auto.conf before the change (None when
/// it was not set there, so rollback RESETs it) and the value applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntryV1 {
    pub name: String,
    pub old_auto_conf: Option<String>,
    pub new: String,
}

/// The journal `pgopt tune --apply` wrote before version 2; read only, converted by
/// [`Journal::from_v1`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalV1 {
    pub journal_version: u32,
    pub pgopt_version: String,
    pub created_at: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub entries: Vec<JournalEntryV1>,
    /// Settings of single tables and roles, applied after `entries`.
    #[serde(default)]
    pub objects: Vec<crate::tune::objects::ObjectEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> ServerId {
        ServerId {
            host: "127.0.0.1".into(),
            port: 5432,
            database: "postgres".into(),
            user: "u".into(),
            system_identifier: Some("7300000000000000001".into()),
            server_port: Some(5432),
        }
    }

    fn saved() -> (tempfile::TempDir, std::path::PathBuf, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.json");
        let mut j = Journal::new(
            server(),
            &[
                Step::set_system("work_mem", "64MB", Some("4MB"), false),
                Step::create_index("s", "i", "t", &["a"], None),
            ],
        );
        j.mark(0, StepState::Done, None);
        j.save(&path).unwrap();
        (dir, path, j)
    }

    #[test]
    fn a_saved_journal_loads_back_equal() {
        let (_d, path, j) = saved();
        assert_eq!(Journal::load(&path).unwrap(), j);
    }

    #[test]
    fn a_truncated_journal_is_bad_input_naming_the_damage() {
        let (_d, path, _) = saved();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let e = Journal::load(&path).unwrap_err();
        assert!(e.is_bad_input(), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(e.to_string().contains("nothing was changed"), "{e}");
    }

    #[test]
    fn a_hand_edited_journal_is_refused() {
        let (_d, path, _) = saved();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("64MB", "640MB")).unwrap();
        let e = Journal::load(&path).unwrap_err();
        assert!(e.is_bad_input() && e.to_string().contains("edited"), "{e}");
    }

    #[test]
    fn a_journal_of_a_newer_version_is_refused() {
        let e = Journal::parse(r#"{"journal_version": 3, "steps": []}"#).unwrap_err();
        assert!(e.contains("newer pgopt"), "{e}");
        let e = Journal::parse(r#"{"steps": []}"#).unwrap_err();
        assert!(e.contains("journal_version"), "{e}");
    }

    #[test]
    fn an_old_tune_journal_converts_to_done_steps_with_their_undo() {
        let v1 = r#"{
          "journal_version": 1, "pgopt_version": "0.1.0",
          "created_at": "2026-01-01T00:00:00+00:00",
          "host": "127.0.0.1", "port": 5433, "database": "postgres", "user": "u",
          "entries": [
            {"name": "work_mem", "old_auto_conf": null, "new": "64MB"},
            {"name": "shared_buffers", "old_auto_conf": "256MB", "new": "1GB"}
          ],
          "objects": [
            {"kind": "table", "schema": "public", "object": "t",
             "name": "autovacuum_vacuum_scale_factor", "old": null, "new": "0.01"}
          ]
        }"#;
        let j = Journal::parse(v1).unwrap();
        assert_eq!(j.server.port, 5433);
        assert_eq!(j.server.system_identifier, None);
        assert_eq!(j.steps.len(), 3);
        assert!(j.steps.iter().all(|s| s.state == StepState::Done));
        assert_eq!(
            j.steps[0].undo,
            Some(Action::SetSystem {
                name: "work_mem".into(),
                value: None
            })
        );
        assert_eq!(
            j.steps[1].undo.as_ref().unwrap().sql().unwrap(),
            r#"ALTER SYSTEM SET "shared_buffers" = '256MB'"#
        );
        assert_eq!(
            j.steps[2].undo.as_ref().unwrap().sql().unwrap(),
            r#"ALTER TABLE "public"."t" RESET ("autovacuum_vacuum_scale_factor")"#
        );
        assert_eq!(j.to_undo(), vec![2, 1, 0]);
    }
}
