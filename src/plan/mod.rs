//! What pgopt would change on a server, as data: a [`Step`] says what it does, the lock it
//! takes, whether it may run inside a transaction, what must still be true before it runs,
//! how to check that it worked, how to undo it and, where known, what it costs. A [`Plan`] is
//! steps in order with their dependencies.
//!
//! Pure: no I/O, no clock. Findings carry steps as their fix and reports print the SQL
//! text rendered here; [`crate::apply`] is the one place that runs them. Every catalog name
//! reaches SQL through [`Ident`]/[`QualifiedName`] and every value through
//! [`quote_literal`] (the statements that take no bind parameters).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ident::{quote_literal, Ident, QualifiedName};

/// The object a per-object setting is set on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Object {
    /// A table's storage parameter: `ALTER TABLE s.t SET (name = value)`. `schema` None:
    /// the name alone (the search path finds it).
    Table {
        schema: Option<String>,
        name: String,
    },
    /// A role's own setting: `ALTER ROLE r SET name = value`.
    Role { name: String },
    /// A database's own setting: `ALTER DATABASE d SET name = value`.
    Database { name: String },
}

impl Object {
    /// `table s.t`, `role r`, `database d`, for people.
    pub fn label(&self) -> String {
        match self {
            Object::Table {
                schema: Some(s),
                name,
            } => format!("table {s}.{name}"),
            Object::Table { schema: None, name } => format!("table {name}"),
            Object::Role { name } => format!("role {name}"),
            Object::Database { name } => format!("database {name}"),
        }
    }

    fn sql_name(&self) -> String {
        match self {
            Object::Table {
                schema: Some(s),
                name,
            } => QualifiedName::new(s, name).to_string(),
            Object::Table { schema: None, name }
            | Object::Role { name }
            | Object::Database { name } => Ident::new(name).to_string(),
        }
    }

    fn keyword(&self) -> &'static str {
        match self {
            Object::Table { .. } => "TABLE",
            Object::Role { .. } => "ROLE",
            Object::Database { .. } => "DATABASE",
        }
    }
}

/// What a step does. Each is one statement (a restart is none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    /// One SQL statement, every name in it already quoted.
    Sql { sql: String },
    /// `ALTER SYSTEM SET name = value`, or `ALTER SYSTEM RESET name` when `value` is None;
    /// the executor reloads the configuration after it.
    SetSystem { name: String, value: Option<String> },
    /// `ALTER TABLE .. SET (..)`, `ALTER ROLE/DATABASE .. SET ..`, or their RESET when
    /// `value` is None.
    SetObject {
        object: Object,
        name: String,
        value: Option<String>,
    },
    /// Restart the server (`pg_ctl restart -m fast`) so that postmaster settings take effect.
    Restart,
    /// Something for a person to do or decide, with no statement pgopt could run (a value
    /// only they can pick). Printed as comment lines; the executor refuses it.
    Manual { text: String },
}

/// Settings whose value is a list with each element quoted (GUC_LIST_QUOTE): one quoted
/// literal `'a,b'` would be a single element named `a,b`.
const QUOTED_LISTS: &[&str] = &[
    "shared_preload_libraries",
    "session_preload_libraries",
    "local_preload_libraries",
];

/// The right-hand side of `ALTER SYSTEM SET name = ...`: one literal, or for a quoted list
/// one literal per element (`'auto_explain', 'pg_stat_statements'`).
pub fn setting_value_sql(name: &str, value: &str) -> String {
    let items: Vec<&str> = value
        .split(',')
        .map(|v| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
        .collect();
    if QUOTED_LISTS.contains(&name) && !items.is_empty() {
        items
            .iter()
            .map(|v| quote_literal(v))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        quote_literal(value)
    }
}

impl Action {
    /// The statement, without a final `;`. None for a restart (not SQL).
    pub fn sql(&self) -> Option<String> {
        match self {
            Action::Sql { sql } => Some(sql.clone()),
            Action::SetSystem {
                name,
                value: Some(v),
            } => Some(format!(
                "ALTER SYSTEM SET {} = {}",
                Ident::new(name),
                setting_value_sql(name, v)
            )),
            Action::SetSystem { name, value: None } => {
                Some(format!("ALTER SYSTEM RESET {}", Ident::new(name)))
            }
            Action::SetObject {
                object,
                name,
                value,
            } => Some(match (object, value) {
                (Object::Table { .. }, Some(v)) => format!(
                    "ALTER TABLE {} SET ({} = {})",
                    object.sql_name(),
                    Ident::new(name),
                    quote_literal(v)
                ),
                (Object::Table { .. }, None) => format!(
                    "ALTER TABLE {} RESET ({})",
                    object.sql_name(),
                    Ident::new(name)
                ),
                (_, Some(v)) => format!(
                    "ALTER {} {} SET {} = {}",
                    object.keyword(),
                    object.sql_name(),
                    Ident::new(name),
                    quote_literal(v)
                ),
                (_, None) => format!(
                    "ALTER {} {} RESET {}",
                    object.keyword(),
                    object.sql_name(),
                    Ident::new(name)
                ),
            }),
            Action::Restart | Action::Manual { .. } => None,
        }
    }

    /// Builds an index (CREATE [UNIQUE] INDEX [CONCURRENTLY], REINDEX): its progress shows in
    /// `pg_stat_progress_create_index`.
    pub fn builds_index(&self) -> bool {
        let Action::Sql { sql } = self else {
            return false;
        };
        let words: Vec<String> = sql
            .split_whitespace()
            .take(3)
            .map(str::to_ascii_uppercase)
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        matches!(
            words.as_slice(),
            ["CREATE", "INDEX", ..] | ["CREATE", "UNIQUE", "INDEX"] | ["REINDEX", ..]
        )
    }

    /// One line for people: the statement, or what is done instead of one.
    pub fn describe(&self) -> String {
        match self {
            Action::Restart => "restart the server (pg_ctl restart -m fast)".to_string(),
            Action::Manual { text } => text.clone(),
            other => other.sql().unwrap_or_default(),
        }
    }
}

/// The strongest lock a step takes (PostgreSQL's table-level lock modes, plus the two things
/// that are not locks but stop the world the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lock {
    /// No lock on user data (ALTER SYSTEM, ALTER ROLE, a function call).
    None,
    /// Reads go on, writes go on (ANALYZE, VACUUM, CREATE INDEX CONCURRENTLY, ALTER TABLE
    /// SET of autovacuum parameters).
    ShareUpdateExclusive,
    /// Blocks writes (CREATE INDEX without CONCURRENTLY).
    Share,
    /// Blocks writes and other such locks (ALTER TABLE .. ENABLE TRIGGER).
    ShareRowExclusive,
    /// Blocks everything on the table (DROP INDEX, most ALTER TABLE, VACUUM FULL).
    AccessExclusive,
    /// Every session is disconnected.
    Restart,
}

/// What must still be true when the step is about to run; re-checked under the executor's
/// lock. When it no longer holds, the step is skipped with that reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Precondition {
    /// No index of this name exists in its schema (an invalid leftover counts as absent: the
    /// executor drops it first).
    IndexAbsent { index: QualifiedName },
    /// The index exists (for a DROP or a REINDEX).
    IndexExists { index: QualifiedName },
    /// As [`Precondition::IndexAbsent`] for `index`, and no valid index of `table` is the same
    /// index under another name: the same `keys` (the DDL's `USING method (keys) [INCLUDE
    /// (..)]`, names quoted) and the same `predicate` (SQL text, None: not partial), compared
    /// as the parser reads them (quoting and parentheses aside).
    NoEquivalentIndex {
        index: QualifiedName,
        table: QualifiedName,
        keys: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        predicate: Option<String>,
    },
    /// pg_settings still shows `value` for `name` (compared in the setting's units).
    SettingIs { name: String, value: String },
    /// The object's own value of `name` is still `value` (None: it has none).
    ObjectSettingIs {
        object: Object,
        name: String,
        value: Option<String>,
    },
}

impl Precondition {
    /// The index a step with this precondition creates, when it creates one: the executor
    /// drops an invalid leftover of it before the step and after a failed attempt.
    pub fn index_to_create(&self) -> Option<&QualifiedName> {
        match self {
            Precondition::IndexAbsent { index } | Precondition::NoEquivalentIndex { index, .. } => {
                Some(index)
            }
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Precondition::IndexAbsent { index } => format!("index {index} is absent"),
            Precondition::IndexExists { index } => format!("index {index} exists"),
            Precondition::NoEquivalentIndex { index, table, .. } => {
                format!("index {index} is absent and no index of {table} is the same")
            }
            Precondition::SettingIs { name, value } => format!("{name} is still {value}"),
            Precondition::ObjectSettingIs {
                object,
                name,
                value,
            } => format!(
                "{} {name} is still {}",
                object.label(),
                value.as_deref().unwrap_or("unset")
            ),
        }
    }
}

/// How the executor checks that a step worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Verify {
    /// pg_index.indisvalid of the index is true.
    IndexValid { index: QualifiedName },
    /// The index is gone.
    IndexAbsent { index: QualifiedName },
    /// pg_settings shows `value` (None: whatever the files give, only checked not to be
    /// stuck) for `name`, or pending_restart for a postmaster setting.
    Setting { name: String, value: Option<String> },
    /// The object's own value of `name` is `value` (None: it has none).
    ObjectSetting {
        object: Object,
        name: String,
        value: Option<String>,
    },
}

/// What a step is expected to cost, where it can be told in advance.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cost {
    /// Bytes the step writes or reads in full (the table an index is built from, ...).
    pub bytes: Option<u64>,
    /// Whether it needs a restart to take effect.
    pub needs_restart: bool,
}

/// One change to a server, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub action: Action,
    pub lock: Lock,
    /// False for the statements PostgreSQL refuses inside a transaction block (CREATE/DROP
    /// INDEX CONCURRENTLY, VACUUM, REINDEX CONCURRENTLY, ALTER SYSTEM).
    pub transactional: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precondition: Option<Precondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
    /// The action that takes it back; None when it cannot be undone (VACUUM, a cancel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// A remark printed after the statement (`-- then re-set passwords`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A warning printed on its own comment line before the statement (`-- blocks writes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caution: Option<String>,
}

impl Step {
    fn of(action: Action, lock: Lock, transactional: bool) -> Step {
        Step {
            action,
            lock,
            transactional,
            precondition: None,
            verify: None,
            undo: None,
            cost: None,
            note: None,
            caution: None,
        }
    }

    /// A statement the executor runs as given; `transactional` false when PostgreSQL refuses
    /// it in a transaction. Use the typed constructors where one fits.
    pub fn sql(sql: impl Into<String>, lock: Lock, transactional: bool) -> Step {
        Step::of(Action::Sql { sql: sql.into() }, lock, transactional)
    }

    /// A function call or other statement that takes no lock on user data (`SELECT
    /// pg_reload_conf()`, `SELECT pg_cancel_backend(42)`).
    pub fn call(sql: impl Into<String>) -> Step {
        Step::sql(sql, Lock::None, true)
    }

    /// `CREATE INDEX CONCURRENTLY name ON table (columns) [WHERE predicate]`: runs only while
    /// the index is absent, verified valid, undone by DROP INDEX CONCURRENTLY.
    /// `predicate` is SQL text whose names the caller quoted.
    pub fn create_index(
        schema: &str,
        name: &str,
        table: &str,
        columns: &[&str],
        predicate: Option<&str>,
    ) -> Step {
        let index = QualifiedName::new(schema, name);
        let cols = columns
            .iter()
            .map(|c| Ident::new(*c).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let predicate = predicate.map(|p| format!(" WHERE {p}")).unwrap_or_default();
        let sql = format!(
            "CREATE INDEX CONCURRENTLY {} ON {} ({cols}){predicate}",
            Ident::new(name),
            QualifiedName::new(schema, table)
        );
        Step {
            precondition: Some(Precondition::IndexAbsent {
                index: index.clone(),
            }),
            verify: Some(Verify::IndexValid {
                index: index.clone(),
            }),
            undo: Some(Action::Sql {
                sql: format!("DROP INDEX CONCURRENTLY IF EXISTS {index}"),
            }),
            ..Step::of(Action::Sql { sql }, Lock::ShareUpdateExclusive, false)
        }
    }

    /// `DROP INDEX CONCURRENTLY schema.name`: runs only while the index exists. It cannot
    /// be undone from the journal (the definition is the caller's to keep).
    pub fn drop_index(schema: &str, name: &str) -> Step {
        let index = QualifiedName::new(schema, name);
        Step {
            precondition: Some(Precondition::IndexExists {
                index: index.clone(),
            }),
            verify: Some(Verify::IndexAbsent {
                index: index.clone(),
            }),
            ..Step::sql(
                format!("DROP INDEX CONCURRENTLY {index}"),
                Lock::ShareUpdateExclusive,
                false,
            )
        }
    }

    /// `REINDEX INDEX CONCURRENTLY schema.name`.
    pub fn reindex(index: &QualifiedName) -> Step {
        Step {
            precondition: Some(Precondition::IndexExists {
                index: index.clone(),
            }),
            verify: Some(Verify::IndexValid {
                index: index.clone(),
            }),
            ..Step::sql(
                format!("REINDEX INDEX CONCURRENTLY {index}"),
                Lock::ShareUpdateExclusive,
                false,
            )
        }
    }

    /// `VACUUM (ANALYZE) table` (or with other options, e.g. `FREEZE, ANALYZE`).
    pub fn vacuum(table: &QualifiedName, options: &str) -> Step {
        Step::sql(
            format!("VACUUM ({options}) {table}"),
            Lock::ShareUpdateExclusive,
            false,
        )
    }

    /// `ANALYZE table`.
    pub fn analyze(table: &QualifiedName) -> Step {
        Step::sql(format!("ANALYZE {table}"), Lock::ShareUpdateExclusive, true)
    }

    /// `ALTER SYSTEM SET name = value`; `old` is what pg_settings shows now (the
    /// precondition) when known. Verified in pg_settings; the executor records the old
    /// postgresql.auto.conf value as the undo when it runs.
    pub fn set_system(name: &str, value: &str, old: Option<&str>, needs_restart: bool) -> Step {
        Step {
            precondition: old.map(|o| Precondition::SettingIs {
                name: name.to_string(),
                value: o.to_string(),
            }),
            verify: Some(Verify::Setting {
                name: name.to_string(),
                value: Some(value.to_string()),
            }),
            cost: needs_restart.then_some(Cost {
                bytes: None,
                needs_restart: true,
            }),
            ..Step::of(
                Action::SetSystem {
                    name: name.to_string(),
                    value: Some(value.to_string()),
                },
                Lock::None,
                false,
            )
        }
    }

    /// `ALTER TABLE/ROLE/DATABASE .. SET`, `old` the object's own value now (None: none),
    /// which is also the undo.
    pub fn set_object(object: Object, name: &str, value: &str, old: Option<&str>) -> Step {
        let lock = match object {
            Object::Table { .. } => Lock::ShareUpdateExclusive,
            _ => Lock::None,
        };
        Step {
            precondition: Some(Precondition::ObjectSettingIs {
                object: object.clone(),
                name: name.to_string(),
                value: old.map(str::to_string),
            }),
            verify: Some(Verify::ObjectSetting {
                object: object.clone(),
                name: name.to_string(),
                value: Some(value.to_string()),
            }),
            undo: Some(Action::SetObject {
                object: object.clone(),
                name: name.to_string(),
                value: old.map(str::to_string),
            }),
            ..Step::of(
                Action::SetObject {
                    object,
                    name: name.to_string(),
                    value: Some(value.to_string()),
                },
                lock,
                true,
            )
        }
    }

    /// Puts an object's own setting back to `old` (None: RESET), whatever it is now;
    /// verified, not undone.
    pub fn restore_object(object: Object, name: &str, old: Option<&str>) -> Step {
        let lock = match object {
            Object::Table { .. } => Lock::ShareUpdateExclusive,
            _ => Lock::None,
        };
        Step {
            verify: Some(Verify::ObjectSetting {
                object: object.clone(),
                name: name.to_string(),
                value: old.map(str::to_string),
            }),
            ..Step::of(
                Action::SetObject {
                    object,
                    name: name.to_string(),
                    value: old.map(str::to_string),
                },
                lock,
                true,
            )
        }
    }

    /// A server restart.
    pub fn restart() -> Step {
        Step::of(Action::Restart, Lock::Restart, false)
    }

    /// Something only a person can do: printed as comment lines, never run.
    pub fn manual(text: impl Into<String>) -> Step {
        Step::of(Action::Manual { text: text.into() }, Lock::None, true)
    }

    pub fn with_caution(mut self, caution: impl Into<String>) -> Step {
        self.caution = Some(caution.into());
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Step {
        self.note = Some(note.into());
        self
    }

    pub fn with_cost(mut self, cost: Cost) -> Step {
        self.cost = Some(cost);
        self
    }

    /// The statement as a report prints it: `-- caution` on its own line when there is one,
    /// `SQL;`, then `  -- note` when there is one. A restart or a manual step prints as
    /// comment lines.
    pub fn display_sql(&self) -> String {
        let mut out = String::new();
        if let Some(c) = &self.caution {
            for line in c.lines() {
                out.push_str(&format!("-- {line}\n"));
            }
        }
        match self.action.sql() {
            Some(sql) => out.push_str(&format!("{sql};")),
            None => {
                let lines: Vec<String> = self
                    .action
                    .describe()
                    .lines()
                    .map(|l| format!("-- {l}"))
                    .collect();
                out.push_str(&lines.join("\n"));
            }
        }
        if let Some(note) = &self.note {
            out.push_str("  -- ");
            out.push_str(&note.replace('\n', " "));
        }
        out
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_sql())
    }
}

/// The SQL text of several steps, one per line, as reports print a fix.
pub fn script(steps: &[Step]) -> String {
    steps
        .iter()
        .map(Step::display_sql)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Steps in the order they run; `after[i]` lists the steps step `i` depends on (all earlier
/// in the list): when one of them is skipped or fails, step `i` does not run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub after: Vec<Vec<usize>>,
}

impl Plan {
    pub fn new() -> Plan {
        Plan::default()
    }

    /// Adds a step that depends on nothing; returns its index.
    pub fn push(&mut self, step: Step) -> usize {
        self.push_after(step, &[])
    }

    /// Adds a step that runs only when every one of `deps` (earlier steps) ran; returns its
    /// index.
    pub fn push_after(&mut self, step: Step, deps: &[usize]) -> usize {
        let i = self.steps.len();
        assert!(
            deps.iter().all(|d| *d < i),
            "a step depends only on earlier ones"
        );
        self.steps.push(step);
        self.after.push(deps.to_vec());
        i
    }

    /// Appends `other`'s steps after these, its dependencies kept (renumbered).
    pub fn append(&mut self, other: Plan) {
        let offset = self.steps.len();
        for (step, deps) in other.steps.into_iter().zip(other.after) {
            let deps: Vec<usize> = deps.iter().map(|d| d + offset).collect();
            self.push_after(step, &deps);
        }
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The plan as SQL text, one statement per line.
    pub fn script(&self) -> String {
        script(&self.steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = r#"x"; DROP TABLE users; --"#;

    #[test]
    fn create_index_quotes_hostile_names_and_carries_its_guards() {
        let s = Step::create_index(HOSTILE, "i'dx", "t\"t", &["a\"b", "c"], Some("\"ok\""));
        assert_eq!(
            s.action.sql().unwrap(),
            r#"CREATE INDEX CONCURRENTLY "i'dx" ON "x""; DROP TABLE users; --"."t""t" ("a""b", "c") WHERE "ok""#
        );
        assert!(
            !s.transactional,
            "CONCURRENTLY may not run in a transaction"
        );
        assert_eq!(s.lock, Lock::ShareUpdateExclusive);
        let index = QualifiedName::new(HOSTILE, "i'dx");
        assert_eq!(
            s.precondition,
            Some(Precondition::IndexAbsent {
                index: index.clone()
            })
        );
        assert_eq!(
            s.verify,
            Some(Verify::IndexValid {
                index: index.clone()
            })
        );
        assert_eq!(
            s.undo.unwrap().sql().unwrap(),
            r#"DROP INDEX CONCURRENTLY IF EXISTS "x""; DROP TABLE users; --"."i'dx""#
        );
    }

    #[test]
    fn setting_values_are_literals_and_names_are_identifiers() {
        let s = Step::set_system("work_mem", "4MB'; SELECT 1; --", Some("4MB"), false);
        assert_eq!(
            s.action.sql().unwrap(),
            r#"ALTER SYSTEM SET "work_mem" = '4MB''; SELECT 1; --'"#
        );
        assert!(
            !s.transactional,
            "ALTER SYSTEM may not run in a transaction"
        );
        let reset = Action::SetSystem {
            name: "work_mem".into(),
            value: None,
        };
        assert_eq!(reset.sql().unwrap(), r#"ALTER SYSTEM RESET "work_mem""#);
        let list = Action::SetSystem {
            name: "shared_preload_libraries".into(),
            value: Some("auto_explain, \"pg_stat_statements\"".into()),
        };
        assert_eq!(
            list.sql().unwrap(),
            "ALTER SYSTEM SET \"shared_preload_libraries\" = 'auto_explain', 'pg_stat_statements'"
        );
        let backslash = Action::SetSystem {
            name: "search_path".into(),
            value: Some(r"a\b".into()),
        };
        assert_eq!(
            backslash.sql().unwrap(),
            r#"ALTER SYSTEM SET "search_path" = E'a\\b'"#
        );
    }

    #[test]
    fn object_settings_render_set_and_reset_for_tables_roles_and_databases() {
        let table = Object::Table {
            schema: Some(HOSTILE.into()),
            name: "t".into(),
        };
        let s = Step::set_object(
            table.clone(),
            "autovacuum_vacuum_scale_factor",
            "0.01",
            None,
        );
        assert_eq!(
            s.action.sql().unwrap(),
            r#"ALTER TABLE "x""; DROP TABLE users; --"."t" SET ("autovacuum_vacuum_scale_factor" = '0.01')"#
        );
        assert_eq!(
            s.undo.as_ref().unwrap().sql().unwrap(),
            r#"ALTER TABLE "x""; DROP TABLE users; --"."t" RESET ("autovacuum_vacuum_scale_factor")"#
        );
        let role = Object::Role {
            name: "app\"user".into(),
        };
        let s = Step::set_object(role, "work_mem", "64MB", Some("8MB"));
        assert_eq!(
            s.action.sql().unwrap(),
            r#"ALTER ROLE "app""user" SET "work_mem" = '64MB'"#
        );
        assert_eq!(
            s.undo.unwrap().sql().unwrap(),
            r#"ALTER ROLE "app""user" SET "work_mem" = '8MB'"#
        );
        let db = Action::SetObject {
            object: Object::Database { name: "d b".into() },
            name: "jit".into(),
            value: None,
        };
        assert_eq!(db.sql().unwrap(), r#"ALTER DATABASE "d b" RESET "jit""#);
    }

    #[test]
    fn vacuum_and_reindex_may_not_run_in_a_transaction_but_analyze_may() {
        let t = QualifiedName::new("s", "t");
        assert!(!Step::vacuum(&t, "ANALYZE").transactional);
        assert!(!Step::reindex(&QualifiedName::new("s", "i")).transactional);
        assert!(!Step::drop_index("s", "i").transactional);
        assert!(Step::analyze(&t).transactional);
        assert_eq!(
            Step::vacuum(&t, "FREEZE, ANALYZE").display_sql(),
            r#"VACUUM (FREEZE, ANALYZE) "s"."t";"#
        );
    }

    #[test]
    fn index_builds_are_told_from_other_statements() {
        let t = QualifiedName::new("s", "t");
        assert!(Step::create_index("s", "i", "t", &["a"], None)
            .action
            .builds_index());
        assert!(Step::reindex(&QualifiedName::new("s", "i"))
            .action
            .builds_index());
        assert!(Action::Sql {
            sql: "create unique index u on t (a)".into()
        }
        .builds_index());
        assert!(!Step::drop_index("s", "i").action.builds_index());
        assert!(!Step::vacuum(&t, "ANALYZE").action.builds_index());
        assert!(!Step::restart().action.builds_index());
    }

    #[test]
    fn display_sql_ends_each_statement_and_appends_the_note() {
        let steps = vec![
            Step::set_system("ssl", "on", None, false),
            Step::call("SELECT pg_reload_conf()").with_note("after editing pg_hba.conf"),
            Step::restart(),
        ];
        assert_eq!(
            script(&steps),
            "ALTER SYSTEM SET \"ssl\" = 'on';\nSELECT pg_reload_conf();  -- after editing \
             pg_hba.conf\n-- restart the server (pg_ctl restart -m fast)"
        );
    }

    #[test]
    fn a_caution_goes_before_and_a_manual_step_is_only_comments() {
        let t = QualifiedName::new("s", "t");
        let s = Step::vacuum(&t, "FULL, ANALYZE").with_caution("ACCESS EXCLUSIVE lock");
        assert_eq!(
            s.display_sql(),
            "-- ACCESS EXCLUSIVE lock\nVACUUM (FULL, ANALYZE) \"s\".\"t\";"
        );
        let m = Step::manual("pick a cap:\nALTER SYSTEM SET x = '...';");
        assert_eq!(
            m.display_sql(),
            "-- pick a cap:\n-- ALTER SYSTEM SET x = '...';"
        );
        assert_eq!(m.action.sql(), None, "nothing to run");
    }

    #[test]
    fn a_step_round_trips_through_json() {
        let s = Step::create_index("s", "i", "t", &["a"], None).with_cost(Cost {
            bytes: Some(8192),
            needs_restart: false,
        });
        let back: Step = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn plan_keeps_order_and_dependencies() {
        let mut p = Plan::new();
        let a = p.push(Step::set_system("shared_buffers", "1GB", None, true));
        let r = p.push_after(Step::restart(), &[a]);
        assert_eq!((a, r), (0, 1));
        assert_eq!(p.after, vec![vec![], vec![0]]);
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn an_appended_plan_keeps_its_dependencies_renumbered() {
        let mut p = Plan::new();
        p.push(Step::set_system("work_mem", "8MB", None, true));
        let mut q = Plan::new();
        let a = q.push(Step::set_system("shared_buffers", "1GB", None, true));
        q.push_after(Step::restart(), &[a]);
        p.append(q);
        assert_eq!(p.len(), 3);
        assert_eq!(p.after, vec![vec![], vec![], vec![1]]);
    }
}
