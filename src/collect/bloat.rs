//! Table and btree index bloat: space a relation holds beyond what its rows need.
//!
//! Two sections. `bloat` estimates, for every table and btree index of at least
//! [`CollectOptions::bloat_min_pages`] pages, the pages its rows would fill when packed as
//! PostgreSQL packs them, from the catalog alone (pg_class, pg_attribute, pg_stats) in one
//! set-based query, and calls the rest wasted:
//!
//! - heap: a tuple is the 23-byte header plus the null bitmap, MAXALIGNed, plus the average
//!   stored width of the row (each column's `avg_width` times its non-null share; avg_width is
//!   the stored width, so a value moved to TOAST counts as its 18-byte pointer), MAXALIGNed;
//!   each takes a 4-byte line pointer; a page has a 24-byte header and keeps the fillfactor's
//!   share free; tuples never span pages.
//! - btree: an index tuple is the 8-byte header (16 with a null bitmap) plus its column
//!   widths, MAXALIGNed, plus a line pointer; a leaf page has the page header and 16 bytes of
//!   special space, keeps (100 − fillfactor) % free (fillfactor 90 by default) and one high
//!   key; internal pages are filled to 70 %; one metapage.
//!
//! The estimate is as good as ANALYZE: within a few points of pgstattuple on fresh statistics,
//! far off (tens of points) on stale ones; deduplication (PostgreSQL 13+) packs repeated keys
//! tighter than the model, so index bloat is then under-estimated, never invented. It is
//! marked untrustworthy, and carries no number, when a column has no pg_stats row (never
//! analyzed, or a role that may not read the column sees none), when the table was never
//! vacuumed or analyzed, and for partial and expression indexes.
//!
//! `bloat_measured` runs only where the `pgstattuple` extension is installed: for the top
//! candidates by estimated waste (and the untrustworthy ones) it calls `pgstattuple_approx`
//! on tables and `pgstatindex` on indexes, within a budget of relations, bytes and time, each
//! call under its own statement_timeout. Those functions READ the relation (pgstatindex the
//! whole index; pgstattuple_approx the pages not all-visible), so this is I/O on the server.
//!
//! Relations under an AccessExclusiveLock are left out, as everywhere in collect.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use super::{get, CollectOptions, Outcome, SET_LOCAL_SQL};
use crate::db::Conn;
use crate::error::Result;
use crate::ident::Ident;
use crate::snapshot::{Bloat, BloatFigure, Extensions, RelationBloat};

const TABLES_SQL: &str = include_str!("../sql/bloat_tables.sql");
const INDEXES_SQL: &str = include_str!("../sql/bloat_indexes.sql");
const MEASURE_TABLE_SQL: &str = include_str!("../sql/bloat_measure_table.sql");
const MEASURE_INDEX_SQL: &str = include_str!("../sql/bloat_measure_index.sql");
const S: &str = "bloat";

const SAVEPOINT: &str = "SAVEPOINT pgopt_measure";
const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT pgopt_measure";
const RELEASE: &str = "RELEASE SAVEPOINT pgopt_measure";

/// Candidates for measuring: an estimated waste of at least this share (or no trustworthy
/// estimate at all). Well below any sensible rule threshold, so that an estimate a little low
/// still gets measured.
const MEASURE_MIN_RATIO: f64 = 0.10;

const PAGE_HEADER: f64 = 24.0;
const HEAP_TUPLE_HEADER: f64 = 23.0;
const LINE_POINTER: f64 = 4.0;
const BTREE_SPECIAL: f64 = 16.0;
const BTREE_INTERNAL_FILLFACTOR: f64 = 70.0;

fn maxalign(n: f64) -> f64 {
    (n / 8.0).ceil() * 8.0
}

/// Heap pages `reltuples` rows of `data_width` average bytes fill when packed.
pub(crate) fn heap_expected_pages(
    reltuples: f64,
    data_width: f64,
    columns: i64,
    has_nulls: bool,
    fillfactor: i32,
    block_size: i64,
) -> i64 {
    let bs = block_size as f64;
    let bitmap = if has_nulls {
        (columns as f64 / 8.0).ceil()
    } else {
        0.0
    };
    let tuple = maxalign(HEAP_TUPLE_HEADER + bitmap) + maxalign(data_width);
    let reserve = (bs * f64::from(100 - fillfactor.clamp(10, 100)) / 100.0).floor();
    let max_per_page = ((bs - PAGE_HEADER) / (maxalign(HEAP_TUPLE_HEADER) + LINE_POINTER)).floor();
    let per_page = ((bs - PAGE_HEADER - reserve) / (tuple + LINE_POINTER))
        .floor()
        .clamp(1.0, max_per_page);
    (reltuples.max(0.0) / per_page).ceil() as i64
}

/// Pages a freshly built btree of `reltuples` entries of `data_width` bytes fills, the
/// metapage included.
pub(crate) fn btree_expected_pages(
    reltuples: f64,
    data_width: f64,
    has_nulls: bool,
    fillfactor: i32,
    block_size: i64,
) -> i64 {
    let bs = block_size as f64;
    let header = if has_nulls { 16.0 } else { 8.0 };
    let item = maxalign(header + data_width) + LINE_POINTER;
    let avail = bs - PAGE_HEADER - BTREE_SPECIAL;
    let leaf_reserve = (bs * f64::from(100 - fillfactor.clamp(10, 100)) / 100.0).floor();
    // One slot of each leaf goes to the high key.
    let per_leaf = (((avail - leaf_reserve) / item).floor() - 1.0).max(2.0);
    let leaves = (reltuples.max(0.0) / per_leaf).ceil().max(1.0);
    let internal_reserve = (bs * (100.0 - BTREE_INTERNAL_FILLFACTOR) / 100.0).floor();
    let fanout = ((avail - internal_reserve) / item).floor().max(2.0);
    let mut level = leaves;
    let mut internal = 0.0;
    while level > 1.0 {
        level = (level / fanout).ceil();
        internal += level;
    }
    (leaves + internal + 1.0) as i64
}

/// Wasted bytes and share of a relation of `relpages` that would need `expected` pages.
fn waste(relpages: i64, expected: i64, block_size: i64) -> BloatFigure {
    let size = relpages * block_size;
    let wasted = (relpages - expected).max(0) * block_size;
    BloatFigure {
        wasted_bytes: wasted,
        wasted_ratio: if size > 0 {
            wasted as f64 / size as f64
        } else {
            0.0
        },
    }
}

/// Why a heap estimate cannot be trusted, or None.
fn heap_distrust(reltuples: f64, columns: i64, with_stats: i64) -> Option<String> {
    if reltuples < 0.0 {
        return Some("the table was never vacuumed or analyzed".to_string());
    }
    if with_stats < columns {
        return Some(format!(
            "{} of its {} columns have no pg_stats row (never analyzed, or this role may not read them)",
            columns - with_stats,
            columns
        ));
    }
    None
}

/// The estimate section: one query for tables, one for indexes.
pub(crate) async fn estimate(
    conn: &Conn,
    locked: &[u32],
    block_size: i64,
    min_pages: i64,
) -> Result<Outcome<Bloat>> {
    let min_pages = i32::try_from(min_pages).unwrap_or(i32::MAX);
    let mut bloat = Bloat {
        block_size,
        ..Bloat::default()
    };
    for r in conn
        .query("estimating table bloat", TABLES_SQL, &[&locked, &min_pages])
        .await?
    {
        let relpages: i64 = get(&r, S, "relpages")?;
        let reltuples: f64 = get(&r, S, "reltuples")?;
        let fillfactor: i32 = get(&r, S, "fillfactor")?;
        let columns: i64 = get(&r, S, "columns")?;
        let with_stats: i64 = get(&r, S, "columns_with_stats")?;
        let data_width: f64 = get(&r, S, "data_width")?;
        let has_nulls: bool = get(&r, S, "has_nulls")?;
        let untrusted = heap_distrust(reltuples, columns, with_stats);
        let estimate = untrusted.is_none().then(|| {
            let expected = heap_expected_pages(
                reltuples, data_width, columns, has_nulls, fillfactor, block_size,
            );
            waste(relpages, expected, block_size)
        });
        bloat.tables.push(RelationBloat {
            oid: get(&r, S, "oid")?,
            schema: get(&r, S, "schema")?,
            table: get(&r, S, "name")?,
            index: None,
            size_bytes: relpages * block_size,
            fillfactor,
            estimate,
            untrusted,
            measured: None,
        });
    }
    for r in conn
        .query(
            "estimating btree index bloat",
            INDEXES_SQL,
            &[&locked, &min_pages],
        )
        .await?
    {
        let relpages: i64 = get(&r, S, "relpages")?;
        let reltuples: f64 = get(&r, S, "reltuples")?;
        let fillfactor: i32 = get(&r, S, "fillfactor")?;
        let columns: i64 = get(&r, S, "columns")?;
        let with_stats: i64 = get(&r, S, "columns_with_stats")?;
        let untrusted = if get::<bool>(&r, S, "partial")? {
            Some("a partial index: how many rows it holds is not in the statistics".to_string())
        } else if get::<i64>(&r, S, "expressions")? > 0 {
            Some("an expression index: its key width is not in its table's statistics".to_string())
        } else {
            heap_distrust(reltuples, columns, with_stats)
        };
        let data_width: f64 = get(&r, S, "data_width")?;
        let has_nulls: bool = get(&r, S, "has_nulls")?;
        let estimate = untrusted.is_none().then(|| {
            let expected =
                btree_expected_pages(reltuples, data_width, has_nulls, fillfactor, block_size);
            waste(relpages, expected, block_size)
        });
        bloat.indexes.push(RelationBloat {
            oid: get(&r, S, "oid")?,
            schema: get(&r, S, "schema")?,
            table: get(&r, S, "table_name")?,
            index: Some(get(&r, S, "index_name")?),
            size_bytes: relpages * block_size,
            fillfactor,
            estimate,
            untrusted,
            measured: None,
        });
    }
    Ok(Outcome::Collected(bloat))
}

/// What the measuring section found: figures by oid, and what it left unmeasured and why.
pub(crate) struct Measurements {
    tables: Vec<(u32, BloatFigure)>,
    indexes: Vec<(u32, BloatFigure)>,
    notes: Vec<String>,
}

/// The relations worth measuring, in order: trustworthy estimates of at least
/// [`MEASURE_MIN_RATIO`] by wasted bytes, then the untrustworthy ones by size; at most `max`
/// of them and at most `budget` bytes in all (a relation that does not fit is passed over).
pub(crate) fn measure_candidates(
    relations: &[RelationBloat],
    max: usize,
    budget: &mut i64,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..relations.len())
        .filter(|&i| {
            let r = &relations[i];
            r.estimate
                .as_ref()
                .is_none_or(|e| e.wasted_ratio >= MEASURE_MIN_RATIO)
        })
        .collect();
    order.sort_by_key(|&i| {
        let r = &relations[i];
        match &r.estimate {
            Some(e) => (0, -e.wasted_bytes),
            None => (1, -r.size_bytes),
        }
    });
    let mut picked = Vec::new();
    for i in order {
        if picked.len() >= max {
            break;
        }
        if relations[i].size_bytes <= *budget {
            *budget -= relations[i].size_bytes;
            picked.push(i);
        }
    }
    picked
}

/// The measuring section. Skipped when pgstattuple is not installed in this database.
pub(crate) async fn measure(
    conn: &Conn,
    bloat: Option<&Bloat>,
    extensions: Option<&Extensions>,
    opts: &CollectOptions,
) -> Result<Outcome<Measurements>> {
    let Some(bloat) = bloat else {
        return Ok(Outcome::skipped(
            "the bloat estimate was not collected, so there are no candidates to measure",
            "see the bloat section's reason",
        ));
    };
    let Some(extensions) = extensions else {
        return Ok(Outcome::skipped(
            "the installed extensions could not be read, so pgstattuple cannot be found",
            "see the extensions section's reason",
        ));
    };
    let Some(ext) = extensions
        .installed
        .iter()
        .find(|e| e.name == "pgstattuple")
    else {
        return Ok(Outcome::skipped(
            "pgstattuple is not installed in this database: bloat figures are estimates only",
            "for measured figures run CREATE EXTENSION pgstattuple (contrib) and grant pg_stat_scan_tables to the role; measuring reads the largest candidates",
        ));
    };
    if opts.bloat_measure_max_relations == 0 {
        return Ok(Outcome::skipped(
            "measuring is turned off (no relation allowed)",
            "allow some relations to be measured",
        ));
    }
    let schema = Ident::new(ext.schema.as_str()).to_string();
    let table_sql = MEASURE_TABLE_SQL.replace("{schema}", &schema);
    let index_sql = MEASURE_INDEX_SQL.replace("{schema}", &schema);

    let mut budget = opts.bloat_measure_max_bytes;
    let tables = measure_candidates(&bloat.tables, opts.bloat_measure_max_relations, &mut budget);
    let indexes = measure_candidates(
        &bloat.indexes,
        opts.bloat_measure_max_relations,
        &mut budget,
    );
    let started = Instant::now();
    let mut out = Measurements {
        tables: Vec::new(),
        indexes: Vec::new(),
        notes: Vec::new(),
    };
    let jobs = tables
        .into_iter()
        .map(|i| (false, &bloat.tables[i]))
        .chain(indexes.into_iter().map(|i| (true, &bloat.indexes[i])));
    for (is_index, rel) in jobs {
        let left = opts.bloat_measure_total.saturating_sub(started.elapsed());
        if left < Duration::from_millis(100) {
            out.notes.push(format!(
                "{}: not measured, the measuring time budget of {} s was spent",
                rel.qualified_name(),
                opts.bloat_measure_total.as_secs()
            ));
            continue;
        }
        let timeout = opts.bloat_measure_timeout.min(left);
        let timeout_text = format!("{}ms", timeout.as_millis().max(1));
        conn.query_one(
            "setting statement_timeout for measuring",
            SET_LOCAL_SQL,
            &[&"statement_timeout", &timeout_text],
        )
        .await?;
        conn.batch("measuring bloat", SAVEPOINT).await?;
        let result = if is_index {
            measure_index(conn, &index_sql, rel, bloat.block_size).await
        } else {
            measure_table(conn, &table_sql, rel).await
        };
        match result {
            Ok(figure) => {
                conn.batch("measuring bloat", RELEASE).await?;
                if is_index {
                    out.indexes.push((rel.oid, figure));
                } else {
                    out.tables.push((rel.oid, figure));
                }
            }
            Err(e) if e.is_connection_lost() => return Err(e),
            Err(e) => {
                conn.batch("measuring bloat", ROLLBACK_TO).await?;
                conn.batch("measuring bloat", RELEASE).await?;
                // No privilege is the same for every relation: the section says so.
                if e.sqlstate() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                    return Err(e);
                }
                let why = if e.sqlstate() == Some(&SqlState::QUERY_CANCELED) {
                    format!("it took longer than {} ms", timeout.as_millis())
                } else if e.sqlstate() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
                    "its lock was not granted in time".to_string()
                } else {
                    e.to_string()
                };
                out.notes
                    .push(format!("{}: not measured, {why}", rel.qualified_name()));
            }
        }
    }
    Ok(Outcome::Collected(out))
}

async fn measure_table(conn: &Conn, sql: &str, rel: &RelationBloat) -> Result<BloatFigure> {
    let r = conn
        .query_one(
            "measuring a table with pgstattuple_approx",
            sql,
            &[&rel.oid],
        )
        .await?;
    let len: i64 = get(&r, S, "table_len")?;
    let free: i64 = get(&r, S, "free_space")?;
    let dead: i64 = get(&r, S, "dead_tuple_len")?;
    // The fillfactor's reserve is free by design, not waste.
    let reserve = len as f64 * f64::from(100 - rel.fillfactor.clamp(10, 100)) / 100.0;
    let wasted = ((free + dead) as f64 - reserve).max(0.0) as i64;
    Ok(BloatFigure {
        wasted_bytes: wasted,
        wasted_ratio: ratio(wasted, len),
    })
}

async fn measure_index(
    conn: &Conn,
    sql: &str,
    rel: &RelationBloat,
    block_size: i64,
) -> Result<BloatFigure> {
    let r = conn
        .query_one("measuring a btree index with pgstatindex", sql, &[&rel.oid])
        .await?;
    let size: i64 = get(&r, S, "index_size")?;
    let leaves: i64 = get(&r, S, "leaf_pages")?;
    let density: f64 = get(&r, S, "avg_leaf_density")?;
    let empty: i64 = get(&r, S, "empty_pages")?;
    let deleted: i64 = get(&r, S, "deleted_pages")?;
    Ok(index_waste(
        size,
        leaves,
        density,
        empty + deleted,
        rel.fillfactor,
        block_size,
    ))
}

/// Waste of a btree from pgstatindex: the leaves' room below the fillfactor's density, plus
/// empty and deleted pages.
pub(crate) fn index_waste(
    size: i64,
    leaves: i64,
    density_pct: f64,
    empty_pages: i64,
    fillfactor: i32,
    block_size: i64,
) -> BloatFigure {
    let target = f64::from(fillfactor.clamp(10, 100));
    let density = if density_pct.is_finite() {
        density_pct
    } else {
        target
    };
    let leaf_waste = (leaves * block_size) as f64 * (1.0 - density / target).max(0.0);
    let wasted = (leaf_waste as i64 + empty_pages * block_size).min(size);
    BloatFigure {
        wasted_bytes: wasted,
        wasted_ratio: ratio(wasted, size),
    }
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole > 0 {
        part as f64 / whole as f64
    } else {
        0.0
    }
}

/// Puts the measured figures into the estimate's entries.
pub(crate) fn apply(bloat: &mut Bloat, m: Measurements) {
    for (oid, figure) in m.tables {
        if let Some(r) = bloat.tables.iter_mut().find(|r| r.oid == oid) {
            r.measured = Some(figure);
        }
    }
    for (oid, figure) in m.indexes {
        if let Some(r) = bloat.indexes.iter_mut().find(|r| r.oid == oid) {
            r.measured = Some(figure);
        }
    }
    bloat.measure_notes = m.notes;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_heap_pages_follow_the_row_width() {
        // 100,000 rows of (int4, int4): 24-byte header + 8 bytes data + 4-byte pointer = 36
        // bytes, 226 rows on a page.
        assert_eq!(
            heap_expected_pages(100_000.0, 8.0, 2, false, 100, 8192),
            (100_000f64 / 226.0).ceil() as i64
        );
        // A fillfactor of 50 keeps 4096 bytes free: (8168 - 4096) / 36 = 113 rows a page.
        let half = heap_expected_pages(100_000.0, 8.0, 2, false, 50, 8192);
        assert_eq!(half, (100_000f64 / 113.0).ceil() as i64);
        // Nulls in a 9-column table make the bitmap two bytes: the header grows to 32.
        assert!(
            heap_expected_pages(100_000.0, 8.0, 9, true, 100, 8192)
                > heap_expected_pages(100_000.0, 8.0, 9, false, 100, 8192)
        );
        // Empty rows are capped at the heap's line-pointer limit (291 on 8 kB pages).
        assert_eq!(heap_expected_pages(291.0, 0.0, 0, false, 100, 8192), 1);
        assert_eq!(heap_expected_pages(0.0, 40.0, 3, false, 100, 8192), 0);
    }

    #[test]
    fn packed_btree_pages_include_internal_pages_and_the_metapage() {
        // int4 key: 8 + 4 -> 16-byte tuple + 4 = 20 bytes; leaves at 90 %: (8152 - 819) / 20
        // = 366, minus the high key = 365 per leaf.
        let leaves = (1_000_000f64 / 365.0).ceil() as i64;
        let pages = btree_expected_pages(1_000_000.0, 4.0, false, 90, 8192);
        assert!(
            pages > leaves + 1 && pages < leaves + 20,
            "{pages} vs {leaves}"
        );
        assert_eq!(btree_expected_pages(10.0, 4.0, false, 90, 8192), 2);
    }

    #[test]
    fn waste_is_never_negative() {
        let w = waste(100, 25, 8192);
        assert_eq!(w.wasted_bytes, 75 * 8192);
        assert!((w.wasted_ratio - 0.75).abs() < 1e-9);
        assert_eq!(waste(100, 130, 8192).wasted_bytes, 0);
    }

    #[test]
    fn index_waste_counts_room_below_the_fillfactor_and_empty_pages() {
        let w = index_waste(1000 * 8192, 900, 45.0, 10, 90, 8192);
        let expect = 900 * 8192 / 2 + 10 * 8192;
        assert_eq!(w.wasted_bytes, expect);
        let fresh = index_waste(1000 * 8192, 990, 90.2, 0, 90, 8192);
        assert_eq!(fresh.wasted_bytes, 0);
    }

    #[test]
    fn estimates_without_statistics_are_distrusted_with_the_reason() {
        assert!(heap_distrust(-1.0, 3, 0)
            .unwrap()
            .contains("never vacuumed"));
        let why = heap_distrust(5000.0, 3, 1).unwrap();
        assert!(why.contains("2 of its 3 columns"), "{why}");
        assert!(heap_distrust(5000.0, 3, 3).is_none());
    }

    fn rel(oid: u32, size: i64, estimate: Option<f64>) -> RelationBloat {
        RelationBloat {
            oid,
            schema: "s".into(),
            table: format!("t{oid}"),
            size_bytes: size,
            fillfactor: 100,
            estimate: estimate.map(|r| BloatFigure {
                wasted_bytes: (size as f64 * r) as i64,
                wasted_ratio: r,
            }),
            untrusted: estimate.is_none().then(|| "no stats".to_string()),
            ..RelationBloat::default()
        }
    }

    #[test]
    fn measure_candidates_take_the_largest_waste_first_within_the_budget() {
        let rels = vec![
            rel(1, 100, Some(0.5)),   // 50 wasted
            rel(2, 1000, Some(0.2)),  // 200 wasted
            rel(3, 1000, Some(0.01)), // too little to measure
            rel(4, 500, None),        // untrusted, after the estimates
            rel(5, 5000, Some(0.9)),  // over the budget
        ];
        let mut budget = 1700;
        let picked = measure_candidates(&rels, 10, &mut budget);
        let oids: Vec<u32> = picked.iter().map(|&i| rels[i].oid).collect();
        assert_eq!(oids, vec![2, 1, 4]);
        assert_eq!(budget, 100);
        let mut big = i64::MAX;
        assert_eq!(measure_candidates(&rels, 1, &mut big).len(), 1);
    }
}
