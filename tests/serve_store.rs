//! The history store of `pgopt serve`: every test body runs against both backends, the
//! SQLite file and a PostgreSQL store on an embedded cluster, so that both keep the same
//! promises: round trips, rollups and retention at chosen times (no sleeping), the choice
//! of resolution, restarts, refusing what is not a store, and a writer that keeps points
//! in memory while the store fails.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pgopt::db::Secret;
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::serve::config::{Config, Intervals, Regressions, DEFAULT_LISTEN};
use pgopt::serve::model::{Event, EventKind, Point};
use pgopt::serve::state::Fleet;
use pgopt::serve::store::postgres::PgStore;
use pgopt::serve::store::sqlite::{SqliteStore, FILE};
use pgopt::serve::store::writer::Writer;
use pgopt::serve::store::{self, Query, Resolution, Retention, Store, StoreError};
use tokio::runtime::Runtime;

enum Kind {
    Sqlite(tempfile::TempDir),
    Postgres(Box<Cluster>),
}

/// One backend: how to open its store, and how to make it fail and come back.
struct Backend {
    rt: Runtime,
    kind: Kind,
}

impl Backend {
    fn sqlite() -> Self {
        Self {
            rt: runtime(),
            kind: Kind::Sqlite(tempfile::tempdir().unwrap()),
        }
    }

    fn postgres() -> Self {
        Self {
            rt: runtime(),
            kind: Kind::Postgres(Box::new(Cluster::start(ClusterOptions::default()).unwrap())),
        }
    }

    fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        match &self.kind {
            Kind::Sqlite(dir) => Ok(Arc::new(SqliteStore::open(dir.path())?)),
            Kind::Postgres(c) => {
                let dsn = Secret::new(c.dsn("postgres"));
                Ok(Arc::new(self.rt.block_on(PgStore::connect(&dsn))?))
            }
        }
    }

    fn sqlite_file(&self) -> Option<PathBuf> {
        match &self.kind {
            Kind::Sqlite(dir) => Some(dir.path().join(FILE)),
            Kind::Postgres(_) => None,
        }
    }

    /// SQLite: the file moved away; PostgreSQL: the cluster stopped.
    fn break_store(&mut self) {
        match &mut self.kind {
            Kind::Sqlite(dir) => {
                let f = dir.path().join(FILE);
                std::fs::rename(&f, f.with_extension("moved")).unwrap();
            }
            Kind::Postgres(c) => c.kill(),
        }
    }

    fn repair_store(&mut self) {
        match &mut self.kind {
            Kind::Sqlite(dir) => {
                let f = dir.path().join(FILE);
                std::fs::rename(f.with_extension("moved"), &f).unwrap();
            }
            Kind::Postgres(c) => c.restart().unwrap(),
        }
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Each body against both backends: `name::sqlite` and `name::postgres`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(super::Backend::sqlite())
            }
            #[test]
            fn postgres() {
                super::$name(super::Backend::postgres())
            }
        }
    )*};
}

both!(
    round_trip_of_points_keys_statements_and_events_survives_a_reopen,
    rollups_and_retention_at_chosen_times_and_the_resolution_each_range_reads,
    points_that_come_late_are_rolled_up_again,
    a_writer_keeps_points_in_memory_while_the_store_fails_and_writes_them_all_after,
    a_store_of_a_newer_version_is_refused_and_left_as_it_was,
    store_open_takes_postgresql_when_configured_else_sqlite_in_the_data_dir,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

fn point(target: &str, metric: &str, key: &str, at: DateTime<Utc>, value: f64) -> Point {
    Point {
        target: target.into(),
        metric: metric.into(),
        key: key.into(),
        at,
        value,
    }
}

fn query(
    target: &str,
    metric: &str,
    key: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    resolution: Option<Resolution>,
) -> Query {
    Query {
        target: target.into(),
        metric: metric.into(),
        key: key.map(str::to_string),
        from,
        to,
        resolution,
    }
}

fn event(target: &str, at: DateTime<Utc>, kind: EventKind, message: &str) -> Event {
    Event {
        target: target.into(),
        at,
        kind,
        message: message.into(),
        details: BTreeMap::from([("rule".to_string(), serde_json::json!("cache"))]),
    }
}

fn round_trip_of_points_keys_statements_and_events_survives_a_reopen(b: Backend) {
    let store = b.open().unwrap();
    let t = t0();
    let ms = Duration::milliseconds(250);
    store
        .write(&[
            point("db1", "tps", "", t, 10.0),
            point("db1", "tps", "", t + Duration::seconds(10) + ms, 12.5),
            point("db1", "connections_by_state", "active", t, 3.0),
            point("db1", "connections_by_state", "idle", t, 7.0),
            point("db2", "tps", "", t + Duration::seconds(20), 1.0),
            // Not finite: never stored.
            point("db2", "tps", "", t + Duration::seconds(30), f64::NAN),
        ])
        .unwrap();
    // A point written again replaces the first (a batch retried after a doubtful commit).
    store.write(&[point("db1", "tps", "", t, 11.0)]).unwrap();
    store
        .put_statements("db1", &[(42, "select 1".into()), (-7, "select $1".into())])
        .unwrap();
    store
        .put_statements("db1", &[(42, "select 1 -- newer".into())])
        .unwrap();
    store
        .put_events(&[
            event("db1", t, EventKind::Down, "db1 is down"),
            event(
                "db1",
                t + Duration::seconds(30),
                EventKind::Up,
                "db1 is back",
            ),
            event(
                "db2",
                t + Duration::seconds(5),
                EventKind::AlertFiring,
                "cache",
            ),
        ])
        .unwrap();

    let check = |store: &dyn Store| {
        let hour = t + Duration::hours(1);
        let tps = store
            .query(&query(
                "db1",
                "tps",
                Some(""),
                t,
                hour,
                Some(Resolution::Raw),
            ))
            .unwrap();
        let got: Vec<(DateTime<Utc>, f64)> = tps.iter().map(|r| (r.at, r.value)).collect();
        assert_eq!(got, vec![(t, 11.0), (t + Duration::seconds(10) + ms, 12.5)]);
        assert!(tps.iter().all(|r| r.max == r.value && r.key.is_empty()));
        // Every key of a keyed metric, ordered by key.
        let states = store
            .query(&query("db1", "connections_by_state", None, t, hour, None))
            .unwrap();
        let got: Vec<(&str, f64)> = states.iter().map(|r| (r.key.as_str(), r.value)).collect();
        assert_eq!(got, vec![("active", 3.0), ("idle", 7.0)]);
        // [from, to): the end is left out; other targets and metrics are not mixed in.
        let db2 = store
            .query(&query(
                "db2",
                "tps",
                Some(""),
                t,
                t + Duration::seconds(20),
                None,
            ))
            .unwrap();
        assert!(db2.is_empty(), "{db2:?}");
        assert!(store
            .query(&query("db3", "tps", None, t, hour, None))
            .unwrap()
            .is_empty());

        assert_eq!(
            store.statement("db1", 42).unwrap().as_deref(),
            Some("select 1 -- newer")
        );
        assert_eq!(
            store.statement("db1", -7).unwrap().as_deref(),
            Some("select $1")
        );
        assert_eq!(store.statement("db2", 42).unwrap(), None);

        let all = store.events(None, t, hour, 10).unwrap();
        let kinds: Vec<EventKind> = all.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![EventKind::Up, EventKind::AlertFiring, EventKind::Down],
            "newest first"
        );
        assert_eq!(all[0].details["rule"], serde_json::json!("cache"));
        let db1 = store.events(Some("db1"), t, hour, 1).unwrap();
        assert_eq!(db1.len(), 1);
        assert_eq!(db1[0].message, "db1 is back");
        assert_eq!(db1[0].at, t + Duration::seconds(30));

        assert_eq!(
            store.last_points().unwrap(),
            vec![
                ("db1".to_string(), t + Duration::seconds(10) + ms),
                ("db2".to_string(), t + Duration::seconds(20)),
            ]
        );
    };
    check(&*store);
    assert!(store.size_bytes().unwrap() > 0);
    drop(store);
    // A restarted daemon finds everything again.
    let reopened = b.open().unwrap();
    check(&*reopened);
}

/// 3 days of one series at 10 s, value = the sample's index within its 5 minutes (0..29),
/// so each 5-minute bucket has mean 14.5, max 29, 30 points.
fn three_days_at_10s() -> Vec<Point> {
    (0..3 * 8640)
        .map(|i: i64| {
            point(
                "db1",
                "tps",
                "",
                t0() + Duration::seconds(10 * i),
                (i % 30) as f64,
            )
        })
        .collect()
}

fn spacing(rows: &[pgopt::serve::store::Row]) -> Option<i64> {
    rows.windows(2)
        .map(|w| (w[1].at - w[0].at).num_seconds())
        .min()
}

fn rollups_and_retention_at_chosen_times_and_the_resolution_each_range_reads(b: Backend) {
    let store = b.open().unwrap();
    store.write(&three_days_at_10s()).unwrap();
    let now = t0() + Duration::days(3);
    let before = now - Duration::days(70);

    // Before any maintenance, 5-minute reads are made from the raw points.
    let five = store
        .query(&query(
            "db1",
            "tps",
            Some(""),
            before,
            now,
            Some(Resolution::FiveMinutes),
        ))
        .unwrap();
    assert_eq!(five.len(), 3 * 288);
    assert!(five.iter().all(|r| r.value == 14.5 && r.max == 29.0));

    let stats = store.maintain(now, &Retention::default()).unwrap();
    assert_eq!(stats.rolled_up, 3 * 288 + 3 * 24, "{stats:?}");
    assert_eq!(
        stats.deleted, 8640,
        "the first day of raw points: {stats:?}"
    );
    // Idempotent: a second run adds nothing and deletes nothing.
    let again = store.maintain(now, &Retention::default()).unwrap();
    assert_eq!((again.rolled_up, again.deleted), (0, 0), "{again:?}");

    // Raw: only the last 48 h.
    let raw = store
        .query(&query(
            "db1",
            "tps",
            Some(""),
            before,
            now,
            Some(Resolution::Raw),
        ))
        .unwrap();
    assert_eq!(raw.len(), 2 * 8640);
    assert_eq!(raw[0].at, now - Duration::hours(48));
    // 5 minutes: all 3 days, mean and max right.
    let five = store
        .query(&query(
            "db1",
            "tps",
            Some(""),
            before,
            now,
            Some(Resolution::FiveMinutes),
        ))
        .unwrap();
    assert_eq!(five.len(), 3 * 288);
    assert_eq!(five[0].at, t0());
    assert!(
        five.iter().all(|r| r.value == 14.5 && r.max == 29.0),
        "{:?}",
        &five[..2]
    );
    // Hourly: 72 buckets of 360 points each.
    let hourly = store
        .query(&query(
            "db1",
            "tps",
            Some(""),
            before,
            now,
            Some(Resolution::Hourly),
        ))
        .unwrap();
    assert_eq!(hourly.len(), 72);
    assert!(hourly.iter().all(|r| r.value == 14.5 && r.max == 29.0));

    // The resolution a range reads without asking: 1 h raw, 7 d 5 minutes, 60 d hourly.
    let pick = |from: DateTime<Utc>| {
        store
            .query(&query("db1", "tps", Some(""), from, now, None))
            .unwrap()
    };
    assert_eq!(spacing(&pick(now - Duration::hours(1))), Some(10));
    assert_eq!(spacing(&pick(now - Duration::days(7))), Some(300));
    assert_eq!(spacing(&pick(now - Duration::days(60))), Some(3600));
    // One hour whose raw points are gone already: read from the 5-minute rollups.
    let old = store
        .query(&query(
            "db1",
            "tps",
            Some(""),
            t0() + Duration::hours(2),
            t0() + Duration::hours(3),
            None,
        ))
        .unwrap();
    assert_eq!((old.len(), spacing(&old)), (12, Some(300)));

    // 40 days later: the 5-minute rollups are past 30 days, the hourly ones stay.
    let later = now + Duration::days(40);
    let stats = store.maintain(later, &Retention::default()).unwrap();
    assert_eq!(stats.rolled_up, 0, "{stats:?}");
    assert_eq!(stats.deleted, 2 * 8640 + 3 * 288, "{stats:?}");
    let hourly = store
        .query(&query(
            "db1",
            "tps",
            Some(""),
            before,
            later,
            Some(Resolution::Hourly),
        ))
        .unwrap();
    assert_eq!(hourly.len(), 72);
    // A restart keeps the rollups and what retention did.
    drop(store);
    let store = b.open().unwrap();
    let rows = store
        .query(&query(
            "db1",
            "tps",
            Some(""),
            later - Duration::days(60),
            later,
            None,
        ))
        .unwrap();
    assert_eq!((rows.len(), spacing(&rows)), (72, Some(3600)));
}

fn points_that_come_late_are_rolled_up_again(b: Backend) {
    let store = b.open().unwrap();
    let t = t0();
    store
        .write(&[
            point("db1", "tps", "", t, 1.0),
            point("db1", "tps", "", t + Duration::seconds(10), 3.0),
        ])
        .unwrap();
    let now = t + Duration::hours(2);
    let stats = store.maintain(now, &Retention::default()).unwrap();
    assert_eq!(stats.rolled_up, 2, "one 5-minute and one hourly bucket");
    // A writer that could not write for a while delivers an old point.
    store
        .write(&[point("db1", "tps", "", t + Duration::seconds(20), 8.0)])
        .unwrap();
    let stats = store.maintain(now, &Retention::default()).unwrap();
    assert_eq!(stats.rolled_up, 2, "both buckets redone: {stats:?}");
    for res in [Resolution::FiveMinutes, Resolution::Hourly] {
        let rows = store
            .query(&query("db1", "tps", Some(""), t, now, Some(res)))
            .unwrap();
        assert_eq!(rows.len(), 1, "{res:?}");
        assert_eq!((rows[0].value, rows[0].max), (4.0, 8.0), "{res:?}");
    }
}

fn a_writer_keeps_points_in_memory_while_the_store_fails_and_writes_them_all_after(mut b: Backend) {
    let store = b.open().unwrap();
    let fleet = Arc::new(Fleet::default());
    let mut w = Writer::new(Arc::clone(&store), Arc::clone(&fleet), 10_000);
    let t = t0();
    let batch = |from: i64| -> Vec<Point> {
        (from..from + 100)
            .map(|i| point("db1", "tps", "", t + Duration::seconds(10 * i), i as f64))
            .collect()
    };
    w.push(
        batch(0),
        vec![("db1".into(), vec![(1, "select 1".into())])],
        vec![],
    );
    assert_eq!(b.rt.block_on(w.flush()).unwrap(), 100);
    assert!(fleet.store.read().unwrap().last_write.is_some());

    b.break_store();
    w.push(
        batch(100),
        vec![],
        vec![event("db1", t, EventKind::Down, "down")],
    );
    let err = b.rt.block_on(w.flush()).unwrap_err();
    assert!(matches!(err, StoreError::Io(_)), "{err:?}");
    w.push(
        batch(200),
        vec![("db1".into(), vec![(2, "select 2".into())])],
        vec![],
    );
    assert!(b.rt.block_on(w.flush()).is_err());
    {
        let health = fleet.store.read().unwrap().clone();
        assert_eq!(health.pending_points, 200);
        let shown = health.error.expect("the error is shown");
        assert!(!shown.is_empty());
    }
    assert_eq!(w.pending(), 200);

    b.repair_store();
    assert_eq!(b.rt.block_on(w.flush()).unwrap(), 200);
    let health = fleet.store.read().unwrap().clone();
    assert_eq!((health.error, health.pending_points), (None, 0));
    let rows = store
        .query(&query(
            "db1",
            "tps",
            Some(""),
            t,
            t + Duration::days(1),
            Some(Resolution::Raw),
        ))
        .unwrap();
    assert_eq!(rows.len(), 300);
    assert_eq!(
        store.statement("db1", 2).unwrap().as_deref(),
        Some("select 2")
    );
    let events = store
        .events(None, t, Utc::now() + Duration::days(1), 10)
        .unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::Down));
    // The store's failure is kept as an event, once.
    let notes: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::StoreError)
        .collect();
    assert_eq!(notes.len(), 1, "{events:?}");
    assert!(
        notes[0].message.contains("0 point(s) were dropped"),
        "{}",
        notes[0].message
    );
}

#[test]
fn a_writer_over_its_bound_drops_the_oldest_points_and_counts_them() {
    let b = Backend::sqlite();
    let store = b.open().unwrap();
    let fleet = Arc::new(Fleet::default());
    let mut w = Writer::new(Arc::clone(&store), Arc::clone(&fleet), 50);
    let t = t0();
    let points: Vec<Point> = (0..80)
        .map(|i| point("db1", "tps", "", t + Duration::seconds(i), i as f64))
        .collect();
    w.push(points, vec![], vec![]);
    assert_eq!((w.pending(), w.dropped()), (50, 30));
    assert_eq!(fleet.store.read().unwrap().pending_points, 50);
    assert_eq!(b.rt.block_on(w.flush()).unwrap(), 50);
    let rows = store
        .query(&query(
            "db1",
            "tps",
            Some(""),
            t,
            t + Duration::hours(1),
            None,
        ))
        .unwrap();
    assert_eq!(
        rows.first().map(|r| r.value),
        Some(30.0),
        "the newest are kept"
    );
}

fn a_store_of_a_newer_version_is_refused_and_left_as_it_was(b: Backend) {
    let store = b.open().unwrap();
    store.write(&[point("db1", "tps", "", t0(), 1.0)]).unwrap();
    drop(store);
    match &b.kind {
        Kind::Sqlite(_) => {
            let f = b.sqlite_file().unwrap();
            let c = rusqlite::Connection::open(&f).unwrap();
            c.execute("UPDATE meta SET value = '99' WHERE key = 'version'", [])
                .unwrap();
            drop(c);
            let before = std::fs::read(&f).unwrap();
            let err = b.open().err().expect("refused");
            assert!(matches!(err, StoreError::TooNew(_)), "{err:?}");
            assert!(err.to_string().contains("newer pgopt"), "{err}");
            assert_eq!(std::fs::read(&f).unwrap(), before, "the file is untouched");
        }
        Kind::Postgres(c) => {
            c.psql(
                "postgres",
                "UPDATE pgopt_history.meta SET value = '99' WHERE key = 'version'",
            )
            .unwrap();
            let err = b.open().err().expect("refused");
            assert!(matches!(err, StoreError::TooNew(_)), "{err:?}");
            let left = c
                .psql(
                    "postgres",
                    "SELECT value FROM pgopt_history.meta WHERE key = 'version'; \
                     SELECT count(*) FROM pgopt_history.points",
                )
                .unwrap();
            assert_eq!(left.lines().collect::<Vec<_>>(), vec!["99", "1"]);
        }
    }
}

#[test]
fn a_file_that_is_not_a_sqlite_store_is_refused_and_left_byte_identical() {
    // Not SQLite at all.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join(FILE);
    let junk: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&f, &junk).unwrap();
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore(_)), "{err:?}");
    assert!(
        err.to_string().contains("not a pgopt history store"),
        "{err}"
    );
    assert_eq!(std::fs::read(&f).unwrap(), junk);

    // Another program's SQLite database.
    let other = tempfile::tempdir().unwrap();
    let f = other.path().join(FILE);
    let c = rusqlite::Connection::open(&f).unwrap();
    c.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');")
        .unwrap();
    drop(c);
    let before = std::fs::read(&f).unwrap();
    let err = SqliteStore::open(other.path()).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore(_)), "{err:?}");
    assert_eq!(std::fs::read(&f).unwrap(), before);
}

#[test]
fn a_postgres_schema_holding_other_tables_is_refused_and_left_as_it_was() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "CREATE SCHEMA pgopt_history; CREATE TABLE pgopt_history.orders (id int); \
         INSERT INTO pgopt_history.orders VALUES (1)",
    )
    .unwrap();
    let rt = runtime();
    let err = rt
        .block_on(PgStore::connect(&Secret::new(c.dsn("postgres"))))
        .unwrap_err();
    assert!(matches!(err, StoreError::NotAStore(_)), "{err:?}");
    let tables = c
        .psql(
            "postgres",
            "SELECT string_agg(relname, ',') FROM pg_class WHERE relnamespace = 'pgopt_history'::regnamespace AND relkind = 'r'",
        )
        .unwrap();
    assert_eq!(tables, "orders");
}

#[test]
fn the_sqlite_store_is_created_in_a_private_directory_in_wal_mode() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("state").join("pgopt");
    let store = SqliteStore::open(&dir).unwrap();
    store.write(&[point("db1", "tps", "", t0(), 1.0)]).unwrap();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    drop(store);
    let c = rusqlite::Connection::open(dir.join(FILE)).unwrap();
    let journal: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let app: i32 = c
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(app, pgopt::serve::store::sqlite::APPLICATION_ID);
}

/// Bytes per target per day for a realistic sample: 30 server-wide points plus 50
/// statements × 5 metrics every 10 s. Prints, asserts nothing about the size:
/// `cargo test --release --test serve_store -- --ignored --nocapture bytes_per_target`.
/// SQLite is measured over a whole day; PostgreSQL over 3 hours, times 8.
#[test]
#[ignore]
fn bytes_per_target_per_day() {
    measure(Backend::sqlite(), 8640);
    measure(Backend::postgres(), 8640 / 8);
}

fn measure(b: Backend, samples: i64) {
    let name = match b.kind {
        Kind::Sqlite(_) => "SQLite",
        Kind::Postgres(_) => "PostgreSQL",
    };
    let store = b.open().unwrap();
    let t = t0();
    let empty = store.size_bytes().unwrap();
    let mut batch = Vec::new();
    for i in 0..samples {
        let at = t + Duration::seconds(10 * i);
        for m in 0..30 {
            batch.push(point(
                "db1",
                &format!("metric_{m}"),
                "",
                at,
                (i * m) as f64 * 0.37,
            ));
        }
        for s in 0..50 {
            for m in 0..5 {
                batch.push(point(
                    "db1",
                    &format!("statement_{m}"),
                    &format!("{}", -4_000_000_000_000_000_000i64 + s * 977_000_000_001),
                    at,
                    1.0 / ((i + s + m) as f64 + 1.0),
                ));
            }
        }
        // A flush every 30 s, as the daemon would.
        if batch.len() >= 280 * 3 {
            store.write(&batch).unwrap();
            batch.clear();
        }
    }
    store.write(&batch).unwrap();
    let texts: Vec<(i64, String)> = (0..50)
        .map(|s| (s, format!("SELECT * FROM t{s} WHERE id = $1")))
        .collect();
    store.put_statements("db1", &texts).unwrap();
    let scale = 8640.0 / samples as f64;
    let raw = (store.size_bytes().unwrap() - empty) as f64 * scale;
    store
        .maintain(t + Duration::seconds(10 * samples), &Retention::default())
        .unwrap();
    let rolled = (store.size_bytes().unwrap() - empty) as f64 * scale - raw;
    let points = 8640.0 * 280.0;
    println!(
        "{name}, one target, one day at 10 s ({points} points): raw {:.1} MB ({:.1} bytes/point); \
         5-minute + hourly rollups of that day {:.2} MB; at the default retention \
         (48 h raw, 30 d 5 min, 365 d hourly) about {:.0} MB per target",
        raw / 1e6,
        raw / points,
        rolled / 1e6,
        (2.0 * raw + 30.0 * rolled * 12.0 / 13.0 + 365.0 * rolled / 13.0) / 1e6
    );
}

fn config(data_dir: PathBuf, store: Option<Secret>) -> Config {
    Config {
        listen: DEFAULT_LISTEN.parse().unwrap(),
        data_dir,
        store,
        auth: None,
        tls: None,
        intervals: Intervals::default(),
        retention: Retention::default(),
        targets: Vec::new(),
        alerts: Vec::new(),
        regressions: Regressions::default(),
        webhooks: Vec::new(),
        windows: Vec::new(),
    }
}

fn store_open_takes_postgresql_when_configured_else_sqlite_in_the_data_dir(b: Backend) {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("data");
    let dsn = match &b.kind {
        Kind::Sqlite(_) => None,
        Kind::Postgres(c) => Some(Secret::new(c.dsn("postgres"))),
    };
    let pg = dsn.is_some();
    let store =
        b.rt.block_on(store::open(&config(dir.clone(), dsn)))
            .unwrap();
    store.write(&[point("db1", "tps", "", t0(), 1.0)]).unwrap();
    assert_eq!(dir.join(FILE).exists(), !pg);
    if let Kind::Postgres(c) = &b.kind {
        let n = c
            .psql("postgres", "SELECT count(*) FROM pgopt_history.points")
            .unwrap();
        assert_eq!(n, "1");
    }
}

/// The child of [`a_daemon_killed_while_writing_leaves_a_sound_store_with_whole_batches`]:
/// writes batches of 1,000 points until it is killed.
#[test]
#[ignore]
fn crash_child_writes_until_killed() {
    let Ok(dir) = std::env::var("PGOPT_STORE_CRASH_DIR") else {
        return;
    };
    let store = SqliteStore::open(std::path::Path::new(&dir)).unwrap();
    for n in 0i64.. {
        let batch: Vec<Point> = (0..1000)
            .map(|i| {
                point(
                    "db1",
                    "tps",
                    "",
                    t0() + Duration::seconds(n * 1000 + i),
                    1.0,
                )
            })
            .collect();
        store.write(&batch).unwrap();
    }
}

#[test]
fn a_daemon_killed_while_writing_leaves_a_sound_store_with_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    // Made first, so that the child and this test open the same store.
    drop(SqliteStore::open(dir.path()).unwrap());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child_writes_until_killed",
            "--nocapture",
        ])
        .env("PGOPT_STORE_CRASH_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until a few batches landed, then kill it mid-write.
    let wal = dir.path().join(format!("{FILE}-wal"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) < 2_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the child wrote nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the child must still be writing when it is killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let store = SqliteStore::open(dir.path()).unwrap();
    let rows = store
        .query(&query(
            "db1",
            "tps",
            Some(""),
            t0(),
            t0() + Duration::days(365),
            Some(Resolution::Raw),
        ))
        .unwrap();
    assert!(!rows.is_empty());
    assert_eq!(rows.len() % 1000, 0, "only whole batches: {}", rows.len());
    drop(store);
    let c = rusqlite::Connection::open(dir.path().join(FILE)).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn a_postgres_store_writes_on_after_its_server_restarted_without_a_failed_batch() {
    let mut b = Backend::postgres();
    let store = b.open().unwrap();
    store.write(&[point("db1", "tps", "", t0(), 1.0)]).unwrap();
    if let Kind::Postgres(c) = &mut b.kind {
        c.restart().unwrap();
    }
    // The dropped connection is noticed at BEGIN and made again: this write succeeds.
    store
        .write(&[point("db1", "tps", "", t0() + Duration::seconds(10), 2.0)])
        .unwrap();
    let rows = store
        .query(&query(
            "db1",
            "tps",
            Some(""),
            t0(),
            t0() + Duration::hours(1),
            None,
        ))
        .unwrap();
    assert_eq!(rows.len(), 2);
}
