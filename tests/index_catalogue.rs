//! The index advisor's catalogue: (schema, data, statement -> expected index, or none with
//! the reason) on one embedded cluster with HypoPG.
//!
//! The expected answer is what the planner prefers when the real index exists: each case's
//! expected index is built for real (in a rolled-back transaction) and must lower the
//! statement's plan cost; pgopt's answer is accepted when its own indexes, built the same
//! way, give a plan cost within a small tolerance of that (so `(a)` and `(a) INCLUDE (b)` may
//! both be right where the planner costs them alike). Cases with no index expect the reason.

use std::sync::OnceLock;

use pgopt::advise::Thresholds;
use pgopt::db::{self, Conn, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::indexes::advisor::{self, AdviseOptions};
use pgopt::indexes::model::{PatternLimit, Query, Reason, Source};
use pgopt::progress::NoProgress;
use serde_json::Value;

/// pgopt's indexes may cost this much more than the expected one (relative), and still be
/// right.
const TOLERANCE: f64 = 0.10;

const SCHEMA: &str = r#"
CREATE EXTENSION hypopg;
CREATE TABLE customers (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    phone text,
    country text NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO customers
SELECT g, 'user' || g || '@example.org', '+1-555-' || lpad(g::text, 7, '0'),
       (ARRAY['de','fr','us','jp','br'])[1 + g % 5],
       timestamptz '2025-01-01' + (g % 10000) * interval '1 hour'
FROM generate_series(1, 50000) g;

CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers,
    sku text NOT NULL,
    status text NOT NULL,
    region int NOT NULL,
    channel int NOT NULL,
    total numeric(12,2) NOT NULL,
    note text,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz
);
INSERT INTO orders
SELECT g, 1 + (g * 7919) % 50000, 'sku-' || (g % 20000),
       CASE WHEN g % 200 = 0 THEN 'failed' ELSE (ARRAY['paid','shipped','done','open'])[1 + g % 4] END,
       g % 100, (g / 100) % 100,
       (g % 1000) / 10.0, repeat('x', 60),
       timestamptz '2025-01-01' + g * interval '1 minute',
       CASE WHEN g % 50 = 0 THEN NULL ELSE timestamptz '2025-06-01' END
FROM generate_series(1, 200000) g;
CREATE INDEX orders_sku_idx ON orders (sku);
CREATE TABLE ledger (id bigint PRIMARY KEY, account int NOT NULL, booked_at timestamptz NOT NULL, amount numeric NOT NULL);
INSERT INTO ledger SELECT g, g % 5000, timestamptz '2025-01-01' + g * interval '1 second', g % 100
FROM generate_series(1, 100000) g;
CREATE INDEX ledger_account_booked_idx ON ledger (account, booked_at);

CREATE TABLE settings_small (key text PRIMARY KEY, value text, scope int);
INSERT INTO settings_small SELECT 'k' || g, 'v', g % 3 FROM generate_series(1, 40) g;

-- A column sorting by an ICU collation (not C): only a text_pattern_ops btree serves a LIKE
-- prefix on it. The database's own collation is C (initdb --no-locale): customers.email is
-- served by a plain btree.
CREATE TABLE people (
    id bigint PRIMARY KEY,
    name text COLLATE "und-x-icu" NOT NULL,
    team int NOT NULL,
    bio text NOT NULL
);
INSERT INTO people SELECT g, 'name' || lpad(g::text, 6, '0'), g % 10, repeat('b', 400)
FROM generate_series(1, 100000) g;

-- GROUP BY over a wide table (an index-only scan of the grouping key reads a fraction of
-- its pages) and over a narrow one (the index is about as big as the table).
CREATE TABLE visits (id bigint NOT NULL, site int NOT NULL, ms int NOT NULL, page text NOT NULL);
INSERT INTO visits SELECT g, g % 20, g % 1000, repeat('p', 300) FROM generate_series(1, 100000) g;
CREATE TABLE taps (device int NOT NULL, at int NOT NULL);
INSERT INTO taps SELECT g % 20, g FROM generate_series(1, 200000) g;
VACUUM ANALYZE visits;
VACUUM ANALYZE taps;
ANALYZE;
"#;

struct Db {
    _cluster: Cluster,
    dsn: String,
}

fn db() -> &'static Db {
    static DB: OnceLock<Db> = OnceLock::new();
    DB.get_or_init(|| {
        let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
        let dsn = cluster.dsn("postgres");
        cluster.psql("postgres", SCHEMA).expect("catalogue schema");
        Db {
            _cluster: cluster,
            dsn,
        }
    })
}

async fn connect(dsn: &str) -> Conn {
    db::connect(&Target::parse(dsn).unwrap())
        .await
        .expect("connect")
}

fn query(sql: &str) -> Query {
    Query {
        fingerprint: pg_query::fingerprint(sql)
            .map(|f| f.hex)
            .unwrap_or_default(),
        text: sql.to_string(),
        calls: 1000,
        mean_ms: Some(5.0),
        source: Source::Argument,
    }
}

/// The plan cost of `sql` with the indexes `ddl` built for real, in a transaction that is
/// rolled back.
async fn planner_cost(conn: &Conn, sql: &str, ddl: &[String]) -> f64 {
    conn.batch("test", "BEGIN").await.unwrap();
    for d in ddl {
        conn.batch("test", d).await.expect(d);
    }
    let row = conn
        .query_one("test", &format!("EXPLAIN (FORMAT JSON) {sql}"), &[])
        .await
        .expect(sql);
    conn.batch("test", "ROLLBACK").await.unwrap();
    let plan: serde_json::Value = row.get(0);
    plan[0]["Plan"]["Total Cost"].as_f64().unwrap()
}

/// pgopt's answer for one statement alone.
async fn advise(conn: &Conn, sql: &str) -> advisor::Run {
    let opts = AdviseOptions {
        thresholds: Thresholds::default(),
        ..AdviseOptions::default()
    };
    advisor::advise(conn, vec![query(sql)], &opts, &NoProgress)
        .await
        .expect("advise")
}

/// A case whose right answer is an index: `expected` is checked to be what the planner
/// prefers (it lowers the cost), then pgopt's suggestions must cost within TOLERANCE of it.
async fn expect_index(sql: &str, expected: &[&str]) {
    let conn = connect(&db().dsn).await;
    let base = planner_cost(&conn, sql, &[]).await;
    let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    let best = planner_cost(&conn, sql, &expected).await;
    assert!(
        best < base * 0.9,
        "the catalogue's own expectation must help: {sql}: {base} -> {best} with {expected:?}"
    );
    let run = advise(&conn, sql).await;
    let ddl: Vec<String> = run
        .advice
        .suggestions
        .iter()
        .map(|s| s.candidate.ddl(&s.name, false))
        .collect();
    assert!(
        !ddl.is_empty(),
        "{sql}: no suggestion; left alone: {:?}; dropped: {:?}",
        run.advice.left_alone,
        run.advice.dropped
    );
    let got = planner_cost(&conn, sql, &ddl).await;
    assert!(
        got <= best * (1.0 + TOLERANCE) + 1.0,
        "{sql}: pgopt's {ddl:?} costs {got}, the expected {expected:?} costs {best} (base {base}); \
         dropped: {:?}; candidates: {:?}; costs: {:?}",
        run.advice.dropped,
        run.set.candidates,
        run.costs
    );
}

/// A case whose right answer is no index, for `reason`.
async fn expect_none(sql: &str, reason: fn(&Reason) -> bool) {
    let conn = connect(&db().dsn).await;
    let run = advise(&conn, sql).await;
    assert!(
        run.advice.suggestions.is_empty(),
        "{sql}: expected no index, got {:?}",
        run.advice
            .suggestions
            .iter()
            .map(|s| &s.ddl)
            .collect::<Vec<_>>()
    );
    let reasons: Vec<&Reason> = run
        .advice
        .left_alone
        .iter()
        .map(|l| &l.reason)
        .chain(run.advice.dropped.iter().map(|d| &d.reason))
        .collect();
    assert!(
        reasons.iter().any(|r| reason(r)),
        "{sql}: the reason given is not the expected one: {reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn equality() {
    expect_index(
        "SELECT * FROM orders WHERE customer_id = 4242",
        &["CREATE INDEX ON orders (customer_id)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn range() {
    expect_index(
        "SELECT id, total FROM orders WHERE created_at >= '2025-04-01' AND created_at < '2025-04-02'",
        &["CREATE INDEX ON orders (created_at)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn equality_then_range_in_that_order() {
    expect_index(
        "SELECT * FROM orders WHERE region = 7 AND created_at >= '2025-03-01' AND created_at < '2025-03-08'",
        &["CREATE INDEX ON orders (region, created_at)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn order_by_limit_ascending() {
    expect_index(
        "SELECT * FROM orders WHERE region = 3 ORDER BY created_at LIMIT 20",
        &["CREATE INDEX ON orders (region, created_at)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn order_by_limit_descending() {
    expect_index(
        "SELECT * FROM orders WHERE region = 3 ORDER BY created_at DESC LIMIT 20",
        &["CREATE INDEX ON orders (region, created_at DESC)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pure_top_n() {
    expect_index(
        "SELECT * FROM orders ORDER BY created_at DESC LIMIT 50",
        &["CREATE INDEX ON orders (created_at)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_equalities() {
    expect_index(
        "SELECT * FROM orders WHERE region = 12 AND channel = 34",
        &["CREATE INDEX ON orders (region, channel)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_very_selective_column_is_enough() {
    expect_index(
        "SELECT * FROM customers WHERE email = 'user77@example.org' AND country = 'de'",
        &["CREATE INDEX ON customers (email)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_index_for_a_rare_constant() {
    expect_index(
        "SELECT id, customer_id FROM orders WHERE status = 'failed' AND created_at >= '2025-02-01'",
        &["CREATE INDEX ON orders (created_at) WHERE status = 'failed'"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn covering_index_for_an_index_only_scan() {
    expect_index(
        "SELECT customer_id, total FROM orders WHERE customer_id BETWEEN 1000 AND 3000",
        &["CREATE INDEX ON orders (customer_id) INCLUDE (total)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn join_keys_on_the_inner_side() {
    expect_index(
        "SELECT o.id, o.total FROM customers c JOIN orders o ON o.customer_id = c.id \
         WHERE c.phone = '+1-555-0000777'",
        &[
            "CREATE INDEX ON customers (phone)",
            "CREATE INDEX ON orders (customer_id)",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expression() {
    expect_index(
        "SELECT * FROM customers WHERE lower(email) = 'user99@example.org'",
        &["CREATE INDEX ON customers (lower(email))"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn or_across_two_columns() {
    expect_index(
        "SELECT * FROM customers WHERE email = 'user5@example.org' OR phone = '+1-555-0000009'",
        &[
            "CREATE INDEX ON customers (email)",
            "CREATE INDEX ON customers (phone)",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tiny_table_gets_nothing() {
    expect_none("SELECT * FROM settings_small WHERE scope = 2", |r| {
        matches!(r, Reason::TinyTable { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn primary_key_already_serves() {
    expect_none("SELECT * FROM orders WHERE id = 77", |r| {
        matches!(r, Reason::AlreadyIndexed { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secondary_index_already_serves() {
    expect_none("SELECT * FROM orders WHERE sku = 'sku-17'", |r| {
        matches!(r, Reason::AlreadyIndexed { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prefix_of_a_composite_already_serves() {
    expect_none("SELECT * FROM ledger WHERE account = 17", |r| {
        matches!(r, Reason::AlreadyIndexed { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn low_selectivity_column_gets_nothing() {
    expect_none("SELECT * FROM orders WHERE status = 'paid'", |r| {
        matches!(
            r,
            Reason::LowSelectivity { .. } | Reason::GainBelowThreshold { .. }
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn statement_that_does_not_parse() {
    expect_none("SELEC * FORM orders WHERE", |r| {
        matches!(r, Reason::NotParseable { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn like_prefix_on_a_c_column_takes_a_plain_btree() {
    expect_index(
        "SELECT * FROM customers WHERE email LIKE 'user123%'",
        &["CREATE INDEX ON customers (email)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn like_prefix_on_a_column_not_sorting_as_c_takes_text_pattern_ops() {
    let sql = "SELECT id, name FROM people WHERE name LIKE 'name00012%'";
    // The planner's own word that a plain btree does not serve it there.
    let conn = connect(&db().dsn).await;
    let base = planner_cost(&conn, sql, &[]).await;
    let plain = planner_cost(&conn, sql, &["CREATE INDEX ON people (name)".into()]).await;
    assert!(
        plain > base * 0.9,
        "a plain btree on an ICU column must not serve LIKE: {base} -> {plain}"
    );
    expect_index(sql, &["CREATE INDEX ON people (name text_pattern_ops)"]).await;
    let run = advise(&conn, sql).await;
    assert_eq!(
        run.advice.suggestions[0]
            .candidate
            .opclass(0)
            .map(|o| o.as_str()),
        Some("text_pattern_ops"),
        "{:?}",
        run.advice.suggestions
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn like_with_a_parameter_gets_nothing_with_the_reason() {
    expect_none("SELECT * FROM people WHERE name LIKE $1", |r| {
        matches!(
            r,
            Reason::UnsearchablePattern {
                why: PatternLimit::Parameter,
                ..
            }
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ilike_gets_nothing_with_the_reason() {
    expect_none("SELECT * FROM people WHERE name ILIKE 'name00012%'", |r| {
        matches!(
            r,
            Reason::UnsearchablePattern {
                why: PatternLimit::CaseInsensitive,
                ..
            }
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn group_by_on_a_wide_table_reads_the_groups_from_an_index() {
    expect_index(
        "SELECT site, count(*) FROM visits GROUP BY site ORDER BY site",
        &["CREATE INDEX ON visits (site)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn min_max_per_group_reads_an_index_including_the_aggregated_column() {
    expect_index(
        "SELECT site, min(ms), max(ms) FROM visits GROUP BY site",
        &["CREATE INDEX ON visits (site) INCLUDE (ms)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn group_by_on_a_narrow_table_gets_nothing() {
    let sql = "SELECT device, count(*) FROM taps GROUP BY device";
    // The planner's own word: even the real index does not make it much cheaper.
    let conn = connect(&db().dsn).await;
    let base = planner_cost(&conn, sql, &[]).await;
    let real = planner_cost(&conn, sql, &["CREATE INDEX ON taps (device)".into()]).await;
    assert!(real > base * 0.8, "{sql}: {base} -> {real} with the index");
    expect_none(sql, |r| matches!(r, Reason::GainBelowThreshold { .. })).await;
    let run = advise(&conn, sql).await;
    assert!(
        run.set
            .candidates
            .iter()
            .any(|c| c.keys.len() == 1 && c.keys[0].key.as_column() == Some("device")),
        "the candidate was costed, and lost: {:?}",
        run.set.candidates
    );
}

/// The catalogue's write-heavy case, from pg_stat_statements (the write-cost model weighs
/// call counts against the table's writes over one statistics window): the same statement
/// gets its index on a table that is read, and none, for its write cost, on one written
/// far more than the statement is run.
#[test]
fn write_heavy_table_gets_no_index_where_a_read_heavy_one_does() {
    let advise = |reads: usize, writes: usize| -> Value {
        let c = Cluster::start(ClusterOptions::default()).expect("cluster");
        c.psql(
            "postgres",
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; \
             CREATE EXTENSION IF NOT EXISTS hypopg; \
             CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
                                  kind int NOT NULL, body text); \
             INSERT INTO events (kind, body) SELECT g % 5000, 'x' FROM generate_series(1, 100000) g; \
             ANALYZE events;",
        )
        .expect("schema");
        c.psql(
            "postgres",
            "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset();",
        )
        .expect("reset");
        let mut script = String::new();
        for i in 0..writes {
            script.push_str(&format!(
                "INSERT INTO events (kind, body) SELECT {i} % 5000, 'y' FROM generate_series(1, 100);\n"
            ));
        }
        for i in 0..reads {
            script.push_str(&format!(
                "SELECT id FROM events WHERE kind = {};\n",
                i % 5000
            ));
        }
        c.psql("postgres", &script).expect("workload");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgopt"))
            .args([
                "indexes",
                &c.dsn("postgres"),
                "--format",
                "json",
                "--no-progress",
            ])
            .output()
            .expect("pgopt");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let read_heavy = advise(200, 2);
    assert_eq!(
        read_heavy["suggestions"][0]["columns"][0], "kind",
        "{read_heavy:#}"
    );
    let write_heavy = advise(1, 500);
    assert!(
        write_heavy["suggestions"].as_array().unwrap().is_empty(),
        "{write_heavy:#}"
    );
    let reasons: Vec<&str> = write_heavy["left_alone"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"write_cost"), "{write_heavy:#}");
}
