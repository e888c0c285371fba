//! Installed and available extensions, and shared_preload_libraries.
//!
//! shared_preload_libraries is readable only by superusers and pg_read_all_settings; for
//! other roles its own section is recorded as skipped instead of guessing an empty list.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::{Extensions, InstalledExtension};

const INSTALLED_SQL: &str = include_str!("../sql/extensions_installed.sql");
const AVAILABLE_SQL: &str = include_str!("../sql/extensions_available.sql");
const PRELOAD_SQL: &str = include_str!("../sql/preload_libraries.sql");
const S: &str = "extensions";

pub(crate) async fn collect(conn: &Conn) -> Result<Outcome<Extensions>> {
    let installed = conn
        .query("reading installed extensions", INSTALLED_SQL, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(InstalledExtension {
                name: get(r, S, "name")?,
                version: get(r, S, "version")?,
                schema: get(r, S, "schema")?,
            })
        })
        .collect::<Result<_>>()?;
    let available = conn
        .query("reading available extensions", AVAILABLE_SQL, &[])
        .await?
        .iter()
        .map(|r| get(r, S, "name"))
        .collect::<Result<_>>()?;
    Ok(Outcome::Collected(Extensions {
        installed,
        available,
        preloaded: Vec::new(),
    }))
}

pub(crate) async fn collect_preloaded(conn: &Conn) -> Result<Outcome<Vec<String>>> {
    let row = conn
        .query_opt("reading shared_preload_libraries", PRELOAD_SQL, &[])
        .await?;
    let Some(row) = row else {
        return Ok(Outcome::skipped(
            "shared_preload_libraries is not readable by this role",
            "GRANT pg_read_all_settings (or pg_monitor) to the role pgopt connects as",
        ));
    };
    let setting: String = get(&row, "preloaded_libraries", "setting")?;
    Ok(Outcome::Collected(split_libraries(&setting)))
}

/// `'a, "b" ,c'` -> [a, b, c].
pub(crate) fn split_libraries(setting: &str) -> Vec<String> {
    setting
        .split(',')
        .map(|l| l.trim().trim_matches('"').trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_are_split_and_trimmed() {
        assert_eq!(
            split_libraries("pg_stat_statements, \"auto_explain\" ,"),
            vec!["pg_stat_statements", "auto_explain"]
        );
        assert!(split_libraries("").is_empty());
    }
}
