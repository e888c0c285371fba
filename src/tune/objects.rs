//! Settings of single tables and roles (`ALTER TABLE ... SET (...)`, `ALTER ROLE ... SET`)
//! as data: what `--apply` journals for each and how each ended. Pure: reading and changing
//! them on a server is [`crate::apply::objects`], rendering them `crate::report::tune`.

use serde::{Deserialize, Serialize};

use super::evidence::{object_label, ObjectKind};
use crate::plan::Object;

/// One object setting in the journal: its own value before (None: it had none, so rollback
/// RESETs it) and the value applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectEntry {
    pub kind: ObjectKind,
    pub schema: Option<String>,
    pub object: String,
    pub name: String,
    pub old: Option<String>,
    pub new: String,
}

impl ObjectEntry {
    pub fn label(&self) -> String {
        object_label(self.kind, self.schema.as_deref(), &self.object)
    }

    /// The object as the plan names it.
    pub fn plan_object(&self) -> Object {
        match self.kind {
            ObjectKind::Table => Object::Table {
                schema: self.schema.clone(),
                name: self.object.clone(),
            },
            ObjectKind::Role => Object::Role {
                name: self.object.clone(),
            },
        }
    }
}

/// How one object setting ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectOutcome {
    pub object: String,
    pub name: String,
    pub value: Option<String>,
    pub verified: bool,
}
