//! The exact pass: measured sizes for the relations that need them, after the cheap pass.
//!
//! The tables and indexes sections estimate every size from pg_class (pages as of the last
//! VACUUM, ANALYZE or CREATE INDEX, scaled by the rows counted since), because a size
//! function opens the relation on the server and, at tens of thousands of relations, that is
//! most of what a snapshot costs. This pass then measures, in the same transaction:
//! - the largest tables and indexes by estimate ([`super::CollectOptions::exact_sizes_top`]
//!   of each), where size thresholds and totals matter most;
//! - the tables pg_class cannot size (no pages recorded, rows counted by the statistics:
//!   loaded and never vacuumed or analyzed), with their indexes;
//! - the tables and indexes the findings are about (when the caller gives thresholds, the
//!   advisors run on the estimates first), a table with its indexes.
//!
//! Index definitions (pg_get_indexdef, ~50 us an index) are deparsed here too, for the
//! indexes measured: the others keep an empty definition.
//!
//! Relations under a granted AccessExclusiveLock are not measured (a size function would
//! wait for the lock); a relation dropped since the cheap pass measures as NULL and keeps its
//! estimate. Anything measured loses its `size_estimated` mark.

use std::collections::{HashMap, HashSet};

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::Snapshot;

const SQL: &str = include_str!("../sql/sizes_exact.sql");
const S: &str = "sizes";

/// One measured relation.
pub(crate) struct Measured {
    oid: u32,
    is_index: bool,
    bytes: i64,
    toast_bytes: i64,
    definition: Option<String>,
}

/// The relations to measure: the `top` largest tables and indexes by estimate, the tables in
/// `unmeasured`, and the tables and indexes named by `about` (finding objects, qualified names);
/// a table brings its indexes. Locked relations are left out. Sorted, without repeats.
pub(crate) fn candidates(
    snap: &Snapshot,
    unmeasured: &[u32],
    top: usize,
    about: &[String],
) -> Vec<u32> {
    let mut picked: HashSet<u32> = HashSet::new();
    let mut tables: Vec<_> = snap.tables.iter().filter(|t| !t.locked).collect();
    tables.sort_by_key(|t| std::cmp::Reverse(t.total_bytes));
    let mut with_indexes: HashSet<(&str, &str)> = HashSet::new();
    for t in tables.iter().take(top) {
        picked.insert(t.oid);
    }
    let unmeasured: HashSet<u32> = unmeasured.iter().copied().collect();
    let named: HashSet<&str> = about
        .iter()
        .map(|o| o.rsplit(' ').next().unwrap_or(o))
        .collect();
    // A named index brings its table's indexes: the one it duplicates or is covered by is
    // named in its evidence, with its definition.
    for i in &snap.indexes {
        if named.contains(i.qualified_name().as_str()) {
            with_indexes.insert((i.schema.as_str(), i.table.as_str()));
        }
    }
    for t in &tables {
        if unmeasured.contains(&t.oid) || named.contains(t.qualified_name().as_str()) {
            picked.insert(t.oid);
            with_indexes.insert((t.schema.as_str(), t.name.as_str()));
        }
    }
    let mut indexes: Vec<_> = snap.indexes.iter().filter(|i| !i.locked).collect();
    indexes.sort_by_key(|i| std::cmp::Reverse(i.size_bytes));
    for i in indexes.iter().take(top) {
        picked.insert(i.oid);
    }
    for i in &indexes {
        if with_indexes.contains(&(i.schema.as_str(), i.table.as_str()))
            || named.contains(i.qualified_name().as_str())
        {
            picked.insert(i.oid);
        }
    }
    let mut out: Vec<u32> = picked.into_iter().collect();
    out.sort_unstable();
    out
}

/// Measures `oids` (leaving out `locked`). Relations dropped since the cheap pass are skipped.
pub(crate) async fn measure(
    conn: &Conn,
    oids: &[u32],
    locked: &[u32],
) -> Result<Outcome<Vec<Measured>>> {
    let rows = conn
        .query("measuring relation sizes", SQL, &[&oids, &locked])
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let bytes: Option<i64> = get(r, S, "bytes")?;
        let toast_bytes: Option<i64> = get(r, S, "toast_bytes")?;
        // NULL: dropped since the cheap pass (the size functions find no relation).
        let (Some(bytes), Some(toast_bytes)) = (bytes, toast_bytes) else {
            continue;
        };
        out.push(Measured {
            oid: get(r, S, "oid")?,
            is_index: get(r, S, "is_index")?,
            bytes,
            toast_bytes,
            definition: get(r, S, "definition")?,
        });
    }
    Ok(Outcome::Collected(out))
}

/// Puts the measured sizes into the snapshot and recomputes the tables' totals.
pub(crate) fn apply(snap: &mut Snapshot, measured: &[Measured]) {
    let by_oid: HashMap<u32, &Measured> = measured.iter().map(|m| (m.oid, m)).collect();
    for t in &mut snap.tables {
        if let Some(m) = by_oid.get(&t.oid).filter(|m| !m.is_index) {
            t.toast_bytes = m.toast_bytes;
            t.heap_bytes = (m.bytes - m.toast_bytes).max(0);
            t.size_estimated = false;
        }
    }
    for i in &mut snap.indexes {
        if let Some(m) = by_oid.get(&i.oid).filter(|m| m.is_index) {
            i.size_bytes = m.bytes;
            i.size_estimated = false;
            if let Some(d) = &m.definition {
                i.definition = d.as_str().into();
            }
        }
    }
    super::tables::add_index_sizes(&mut snap.tables, &snap.indexes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{connect, Target};
    use crate::embedded::{Cluster, ClusterOptions};

    #[tokio::test]
    async fn a_relation_dropped_since_the_cheap_pass_is_skipped_not_an_error() {
        let c = Cluster::start(ClusterOptions::default()).unwrap();
        c.psql(
            "postgres",
            "CREATE TABLE kept (id int PRIMARY KEY); CREATE TABLE gone (id int);",
        )
        .unwrap();
        let oid = |name: &str| -> u32 {
            c.psql("postgres", &format!("SELECT '{name}'::regclass::oid"))
                .unwrap()
                .parse()
                .unwrap()
        };
        let (kept, gone) = (oid("kept"), oid("gone"));
        c.psql("postgres", "DROP TABLE gone").unwrap();
        let conn = connect(&Target::parse(&c.dsn("postgres")).unwrap())
            .await
            .unwrap();
        let Outcome::Collected(measured) = measure(&conn, &[kept, gone, 4_000_000_000], &[])
            .await
            .unwrap()
        else {
            panic!("measured");
        };
        let oids: Vec<u32> = measured.iter().map(|m| m.oid).collect();
        assert_eq!(oids, vec![kept]);
        // A locked relation is left out.
        let Outcome::Collected(measured) = measure(&conn, &[kept], &[kept]).await.unwrap() else {
            panic!("measured");
        };
        assert!(measured.is_empty());
    }

    #[test]
    fn candidates_are_the_largest_the_unmeasured_and_the_named_with_their_indexes() {
        use crate::snapshot::{Index, Table};
        let table = |oid, name: &str, bytes| Table {
            oid,
            schema: "s".into(),
            name: name.into(),
            total_bytes: bytes,
            ..Default::default()
        };
        let index = |oid, table: &str, name: &str, bytes| Index {
            oid,
            schema: "s".into(),
            table: table.into(),
            name: name.into(),
            size_bytes: bytes,
            ..Default::default()
        };
        let target = crate::snapshot::TargetInfo {
            host: "h".into(),
            port: 5432,
            database: "d".into(),
            user: "u".into(),
        };
        let mut snap = Snapshot::new(target, chrono::Utc::now());
        snap.tables = vec![
            table(1, "huge", 1_000),
            table(2, "tiny", 1),
            table(3, "loaded", 0),
            table(4, "named", 2),
            Table {
                locked: true,
                ..table(5, "locked", 5_000)
            },
        ];
        snap.indexes = vec![
            index(11, "huge", "huge_pkey", 500),
            index(12, "tiny", "tiny_pkey", 1),
            index(13, "loaded", "loaded_idx", 0),
            index(14, "named", "named_a", 1),
            index(15, "named", "named_b", 1),
        ];
        let got = candidates(&snap, &[3], 1, &["s.named_a".to_string()]);
        // huge (largest table), huge_pkey (largest index), loaded with its index, and the
        // named index with its sibling — but not the locked table nor tiny.
        assert_eq!(got, vec![1, 3, 11, 13, 14, 15]);
    }
}
