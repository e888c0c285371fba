//! `--method pgopt`: PGTune's baseline, changed where a server's statistics contradict it.
//!
//! Pure: takes the baseline ([`super::pgtune::pgtune`]), the inputs and a [`Snapshot`], and
//! returns the changed settings plus, for every change, the rule, the reason (citing the
//! numbers) and the evidence. The rules themselves are in `tune/rules/`, one per file. Values are written in the form `compare` and `apply` understand:
//! memory as `NNMB`/`NNkB`, times as a bare number in the setting's unit (ms or s).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pgtune::PgTuneOutput;
use super::rules::{self, Builder};
use super::TuneInput;
use crate::advise::Thresholds;
use crate::ident::{quote_literal, Ident, QualifiedName};
use crate::snapshot::Snapshot;

/// statement_timeout given to application roles by the governance profile.
pub const APP_STATEMENT_TIMEOUT: &str = "30s";
/// auto_explain.log_min_duration (ms): plans of statements slower than this are logged.
pub const AUTO_EXPLAIN_MS: &str = "3000";

/// One change pgopt made to the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub rule: &'static str,
    pub name: &'static str,
    /// PGTune's value; None when PGTune does not set it.
    pub baseline: Option<String>,
    pub value: String,
    pub reason: String,
    pub evidence: BTreeMap<String, Value>,
}

/// What a per-object setting is set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A storage parameter: `ALTER TABLE s.t SET (name = value)`.
    Table,
    /// A role's own setting: `ALTER ROLE r SET name = value`.
    Role,
}

/// A setting for one table or role rather than the whole server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectSetting {
    pub rule: &'static str,
    pub kind: ObjectKind,
    /// The table's schema; None for a role.
    pub schema: Option<String>,
    pub object: String,
    pub name: &'static str,
    pub value: String,
    /// The object's own value now, when it has one.
    pub current: Option<String>,
    pub reason: String,
    pub evidence: BTreeMap<String, Value>,
}

impl ObjectSetting {
    /// `table s.t` or `role r`, for people.
    pub fn label(&self) -> String {
        object_label(self.kind, self.schema.as_deref(), &self.object)
    }

    /// The statement that sets it, every name quoted and the value a literal.
    pub fn set_sql(&self) -> String {
        set_object_sql(
            self.kind,
            self.schema.as_deref(),
            &self.object,
            self.name,
            &self.value,
        )
    }
}

/// `table s.t` or `role r`, for people.
pub fn object_label(kind: ObjectKind, schema: Option<&str>, object: &str) -> String {
    match (kind, schema) {
        (ObjectKind::Table, Some(schema)) => format!("table {schema}.{object}"),
        (ObjectKind::Table, None) => format!("table {object}"),
        (ObjectKind::Role, _) => format!("role {object}"),
    }
}

/// `ALTER TABLE "s"."t" SET ("name" = 'v')` or `ALTER ROLE "r" SET "name" = 'v'`.
pub fn set_object_sql(
    kind: ObjectKind,
    schema: Option<&str>,
    object: &str,
    name: &str,
    value: &str,
) -> String {
    match kind {
        ObjectKind::Table => format!(
            "ALTER TABLE {} SET ({} = {})",
            table_name(schema, object),
            Ident::new(name),
            quote_literal(value)
        ),
        ObjectKind::Role => format!(
            "ALTER ROLE {} SET {} = {}",
            Ident::new(object),
            Ident::new(name),
            quote_literal(value)
        ),
    }
}

/// `ALTER TABLE "s"."t" RESET ("name")` or `ALTER ROLE "r" RESET "name"`.
pub fn reset_object_sql(
    kind: ObjectKind,
    schema: Option<&str>,
    object: &str,
    name: &str,
) -> String {
    match kind {
        ObjectKind::Table => format!(
            "ALTER TABLE {} RESET ({})",
            table_name(schema, object),
            Ident::new(name)
        ),
        ObjectKind::Role => format!(
            "ALTER ROLE {} RESET {}",
            Ident::new(object),
            Ident::new(name)
        ),
    }
}

/// `"s"."t"` (or `"t"`), quoted.
pub(crate) fn table_name(schema: Option<&str>, object: &str) -> String {
    match schema {
        Some(schema) => QualifiedName::new(schema, object).to_string(),
        None => Ident::new(object).to_string(),
    }
}

/// The pgopt recommendation: the settings (baseline with changes, in PGTune's order, added
/// settings after), the changes with their evidence, and settings for single tables and
/// roles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PgoptOutput {
    pub output: PgTuneOutput,
    pub changes: Vec<Change>,
    pub objects: Vec<ObjectSetting>,
}

impl PgoptOutput {
    pub fn change(&self, name: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.name == name)
    }
    pub fn value(&self, name: &str) -> Option<&str> {
        self.output.value(name)
    }
}

/// What the connected server was seen to accept, applied to PGTune's output: PGTune's
/// `wal_compression = lz4` (15+) warns that lz4 needs a server built with it; the snapshot
/// tried it (SET LOCAL, rolled back). Accepted: no warning. Rejected: pglz instead, saying
/// why. Not tried (the role may not set it): the warning stays. Idempotent.
pub fn server_checks(out: &mut PgTuneOutput, snap: &Snapshot) {
    if out.value("wal_compression") != Some("lz4") {
        return;
    }
    let is_lz4_warning = |w: &String| w.starts_with("wal_compression = lz4");
    match snap.wal_compression_lz4 {
        None => {}
        Some(true) => {
            out.warnings.retain(|w| !is_lz4_warning(w));
            let note =
                "wal_compression = lz4: this server accepts it (tried with SET LOCAL, rolled back)";
            if !out.notes.iter().any(|n| n == note) {
                out.notes.push(note.to_string());
            }
        }
        Some(false) => {
            out.warnings.retain(|w| !is_lz4_warning(w));
            out.warnings.push(
                "this server rejects wal_compression = lz4 (it was built without lz4): pglz is \
                 recommended instead (wal_compression = on means pglz too)"
                    .to_string(),
            );
            if let Some(s) = out
                .settings
                .iter_mut()
                .find(|s| s.name == "wal_compression")
            {
                s.value = "pglz".to_string();
                s.reason = "lz4 rejected by this server (built without lz4)".to_string();
            }
        }
    }
}

/// Applies the evidence rules to PGTune's baseline, with the default thresholds.
pub fn pgopt_method(base: &PgTuneOutput, input: &TuneInput, snap: &Snapshot) -> PgoptOutput {
    pgopt_method_with(base, input, snap, &Thresholds::default())
}

/// Applies the evidence rules (`tune/rules/`) to PGTune's baseline, judged by `th`.
pub fn pgopt_method_with(
    base: &PgTuneOutput,
    input: &TuneInput,
    snap: &Snapshot,
    th: &Thresholds,
) -> PgoptOutput {
    let mut base = base.clone();
    server_checks(&mut base, snap);
    let mut b = Builder {
        out: base,
        changes: Vec::new(),
        objects: Vec::new(),
    };
    rules::apply_all(&mut b, input, snap, th);
    PgoptOutput {
        output: b.out,
        changes: b.changes,
        objects: b.objects,
    }
}
