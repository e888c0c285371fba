//! What the executor reads from the server around a step: whether its precondition still
//! holds, whether it worked, the old value its undo restores, and which server this is.

use std::time::{Duration, Instant};

use super::settings::read_settings;
use crate::db::Conn;
use crate::error::Result;
use crate::ident::QualifiedName;
use crate::plan::{Object, Precondition, Verify};
use crate::tune::compare::same_value;

use super::journal::ServerId;

/// How long a reload may take to reach this session before a setting counts as unverified.
const VERIFY_WITHIN: Duration = Duration::from_secs(10);

const INDEX_STATE_SQL: &str = include_str!("sql/index_state.sql");
const REINDEX_LEFTOVERS_SQL: &str = include_str!("sql/reindex_leftovers.sql");

/// Some(valid) when the index exists.
pub async fn index_state(conn: &Conn, index: &QualifiedName) -> Result<Option<bool>> {
    Ok(conn
        .query_opt(
            "checking the index",
            INDEX_STATE_SQL,
            &[&index.schema.as_str(), &index.name.as_str()],
        )
        .await?
        .map(|r| r.get(0)))
}

/// The invalid copies a cancelled or failed `REINDEX INDEX CONCURRENTLY` of `index` left on
/// its table (`<index>_ccnew`, `<index>_ccold`, with a number when the name was taken).
pub async fn reindex_leftovers(conn: &Conn, index: &QualifiedName) -> Result<Vec<QualifiedName>> {
    let rows = conn
        .query(
            "looking for what a REINDEX CONCURRENTLY left",
            REINDEX_LEFTOVERS_SQL,
            &[&index.schema.as_str(), &index.name.as_str()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        .filter(|(_, name)| is_reindex_leftover(index.name.as_str(), name))
        .map(|(schema, name)| QualifiedName::new(schema, name))
        .collect())
}

/// Whether `candidate` is a name REINDEX CONCURRENTLY gives the copies of `index`: the index
/// name (cut so that the whole fits in 63 bytes) + `_ccnew` or `_ccold` + an optional number.
pub fn is_reindex_leftover(index: &str, candidate: &str) -> bool {
    ["_ccnew", "_ccold"].iter().any(|label| {
        let Some(at) = candidate.rfind(label) else {
            return false;
        };
        let (prefix, rest) = (&candidate[..at], &candidate[at + label.len()..]);
        !prefix.is_empty()
            && rest.chars().all(|c| c.is_ascii_digit())
            && index.starts_with(prefix)
            // A shorter prefix only when the name was cut at PostgreSQL's 63 bytes.
            && (prefix.len() == index.len() || candidate.len() >= 63 - 4)
    })
}

/// The object's own value of `name` now; None when it has none (or the object is gone).
pub async fn object_value(conn: &Conn, object: &Object, name: &str) -> Result<Option<String>> {
    let row = match object {
        Object::Table { schema, name: t } => {
            conn.query_opt(
                "reading a table's storage parameters",
                "SELECT coalesce(c.reloptions, '{}')::text[] FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&schema.as_deref().unwrap_or("public"), t],
            )
            .await?
        }
        Object::Role { name: r } => {
            conn.query_opt(
                "reading a role's settings",
                "SELECT coalesce(rolconfig, '{}')::text[] FROM pg_catalog.pg_roles \
                 WHERE rolname = $1",
                &[r],
            )
            .await?
        }
        Object::Database { name: d } => {
            conn.query_opt(
                "reading a database's settings",
                "SELECT coalesce((SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s \
                 WHERE s.setrole = 0 AND s.setdatabase = d.oid), '{}')::text[] \
                 FROM pg_catalog.pg_database d WHERE d.datname = $1",
                &[d],
            )
            .await?
        }
    };
    let options: Vec<String> = row.map(|r| r.get(0)).unwrap_or_default();
    Ok(options.iter().find_map(|o| {
        let (k, v) = o.split_once('=')?;
        (k == name).then(|| v.to_string())
    }))
}

const INDEX_DEFINITIONS_SQL: &str = include_str!("sql/index_definitions.sql");

/// The name of a valid index of `table` that is the index `keys` and `predicate` describe
/// (compared as the parser reads them), if one exists.
async fn equivalent_index(
    conn: &Conn,
    table: &QualifiedName,
    keys: &str,
    predicate: Option<&str>,
) -> Result<Option<String>> {
    let Some(planned) = crate::indexes::steps::planned_signature(table, keys, predicate) else {
        return Ok(None);
    };
    let rows = conn
        .query(
            "reading the table's indexes",
            INDEX_DEFINITIONS_SQL,
            &[&table.schema.as_str(), &table.name.as_str()],
        )
        .await?;
    Ok(rows.iter().find_map(|r| {
        let definition: String = r.get("definition");
        (crate::indexes::steps::index_signature(&definition).as_ref() == Some(&planned))
            .then(|| r.get::<_, String>("name"))
    }))
}

/// None when `object`'s setting `name` is `value` now; otherwise "<object> <name> is <now>".
async fn object_differs(
    conn: &Conn,
    object: &Object,
    name: &str,
    value: &Option<String>,
) -> Result<Option<String>> {
    let now = object_value(conn, object, name).await?;
    Ok((now != *value).then(|| {
        format!(
            "{} {name} is {}",
            object.label(),
            now.as_deref().unwrap_or("unset")
        )
    }))
}

/// What a precondition check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    Yes,
    /// Yes, once the invalid leftover of an earlier build of the index is dropped.
    AfterDroppingLeftover,
    /// No longer: the reason.
    No(String),
}

pub async fn precondition(conn: &Conn, p: &Precondition) -> Result<Holds> {
    Ok(match p {
        Precondition::IndexAbsent { index } => match index_state(conn, index).await? {
            None => Holds::Yes,
            Some(false) => Holds::AfterDroppingLeftover,
            Some(true) => Holds::No(format!(
                "index {index} exists already (valid): created meanwhile, nothing to do"
            )),
        },
        Precondition::NoEquivalentIndex {
            index,
            table,
            keys,
            predicate,
        } => {
            let named = index_state(conn, index).await?;
            if named == Some(true) {
                return Ok(Holds::No(format!(
                    "index {index} exists already (valid): created meanwhile, nothing to do"
                )));
            }
            if let Some(other) = equivalent_index(conn, table, keys, predicate.as_deref()).await? {
                return Ok(Holds::No(format!(
                    "index {other} of {table} is the same index under another name: \
                     created meanwhile, nothing to do"
                )));
            }
            match named {
                Some(_) => Holds::AfterDroppingLeftover,
                None => Holds::Yes,
            }
        }
        Precondition::IndexExists { index } => match index_state(conn, index).await? {
            Some(_) => Holds::Yes,
            None => Holds::No(format!("index {index} no longer exists")),
        },
        Precondition::SettingIs { name, value } => {
            let settings = read_settings(conn).await?;
            match settings.iter().find(|s| s.name == *name) {
                None => Holds::No(format!("{name} is unknown to this server")),
                Some(s) if same_value(s, value) => Holds::Yes,
                Some(s) => Holds::No(format!(
                    "{name} is {} now, not {value} as planned: changed meanwhile",
                    s.display_value()
                )),
            }
        }
        Precondition::ObjectSettingIs {
            object,
            name,
            value,
        } => match object_differs(conn, object, name, value).await? {
            None => Holds::Yes,
            Some(is) => Holds::No(format!(
                "{is} now, not {} as planned: changed meanwhile",
                value.as_deref().unwrap_or("unset")
            )),
        },
    })
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    Yes,
    /// Written, in effect after a restart (pending_restart).
    PendingRestart,
    No(String),
}

pub async fn verify(conn: &Conn, v: &Verify) -> Result<Verified> {
    Ok(match v {
        Verify::IndexValid { index } => match index_state(conn, index).await? {
            Some(true) => Verified::Yes,
            Some(false) => Verified::No(format!("index {index} is not valid in pg_index")),
            None => Verified::No(format!("index {index} does not exist")),
        },
        Verify::IndexAbsent { index } => match index_state(conn, index).await? {
            None => Verified::Yes,
            Some(_) => Verified::No(format!("index {index} still exists")),
        },
        Verify::Setting { name, value } => {
            // A reload reaches this session in its own time: poll, bounded.
            let start = Instant::now();
            loop {
                let settings = read_settings(conn).await?;
                let found = match settings.iter().find(|s| s.name == *name) {
                    None => Verified::No(format!("{name} is unknown to this server")),
                    Some(s) if s.pending_restart => Verified::PendingRestart,
                    Some(s) => match value {
                        Some(v) if !same_value(s, v) => Verified::No(format!(
                            "{name} shows {} (source {}), not {v}",
                            s.display_value(),
                            s.source
                        )),
                        _ => Verified::Yes,
                    },
                };
                if !matches!(found, Verified::No(_)) || start.elapsed() > VERIFY_WITHIN {
                    break found;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Verify::ObjectSetting {
            object,
            name,
            value,
        } => match object_differs(conn, object, name, value).await? {
            None => Verified::Yes,
            Some(is) => Verified::No(format!("{is}, not {}", value.as_deref().unwrap_or("unset"))),
        },
    })
}

/// The server behind `conn`: how it was reached, its system identifier (when this role may
/// read pg_control_system()) and its own port.
pub async fn server_id(conn: &Conn) -> Result<ServerId> {
    let sysid = conn
        .query_opt(
            "reading the system identifier",
            "SELECT system_identifier::text FROM pg_catalog.pg_control_system()",
            &[],
        )
        .await;
    let system_identifier = match sysid {
        Ok(r) => r.map(|r| r.get::<_, String>(0)),
        Err(e) if e.is_connection_lost() => return Err(e),
        Err(_) => None,
    };
    let port: i32 = conn
        .query_one(
            "reading the server's port",
            "SELECT current_setting('port')::int",
            &[],
        )
        .await?
        .get(0);
    Ok(ServerId {
        host: conn.host.clone(),
        port: conn.port,
        database: conn.database.clone(),
        user: conn.user.clone(),
        system_identifier,
        server_port: u16::try_from(port).ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::is_reindex_leftover;

    #[test]
    fn reindex_leftovers_are_the_ccnew_and_ccold_copies_of_that_index_only() {
        assert!(is_reindex_leftover("refilled_pkey", "refilled_pkey_ccnew"));
        assert!(is_reindex_leftover("refilled_pkey", "refilled_pkey_ccnew1"));
        assert!(is_reindex_leftover("refilled_pkey", "refilled_pkey_ccold"));
        assert!(!is_reindex_leftover("refilled_pkey", "refilled_pkey"));
        assert!(!is_reindex_leftover("refilled_pkey", "other_pkey_ccnew"));
        assert!(!is_reindex_leftover("refilled_pkey", "refilled_ccnew"));
        assert!(!is_reindex_leftover(
            "refilled_pkey",
            "refilled_pkey_ccnewer"
        ));
        assert!(!is_reindex_leftover("refilled_pkey", "_ccnew"));
        // A 63-byte name is cut to make room for the label.
        let long = "a".repeat(63);
        let copy = format!("{}_ccnew", &long[..57]);
        assert_eq!(copy.len(), 63);
        assert!(is_reindex_leftover(&long, &copy));
    }
}
