//! A target resolved from a DSN alone: no PG* variables, no password file, OS user
//! `postgres`, so that a test means the same on every machine.

use pgopt::db::{SystemDefaults, Target};

/// Resolves `dsn` with no PG* variables and no password file.
pub fn target(dsn: &str) -> Target {
    let defaults = SystemDefaults {
        socket_dir: None,
        os_user: Some("postgres".into()),
        home: None,
    };
    Target::resolve_with(Some(dsn), &|_| None, &defaults).unwrap()
}
