//! What-if costing against real clusters: HypoPG hypothetical indexes (and trial real ones
//! rolled back), generic plans for `$n` statements, failures recorded per statement, a
//! read-only session, and the messages when HypoPG is not there.

use pgopt::db::{self, Conn, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::indexes::model::{
    Candidate, CandidateSet, Costs, KeyExpr, Query, Reason, SortKey, Source,
};
use pgopt::indexes::whatif::{self, Mode, WhatIfOptions};
use pgopt::progress::{Collect, Kind, NoProgress};

/// t: 100,000 rows, `a` unique, `b` 1,000 values, `flag` two; "Order""s" with a hostile
/// name; `gone`, dropped after the workload was read.
const SCHEMA: &str = "
    CREATE TABLE t (id int PRIMARY KEY, a int NOT NULL, b int NOT NULL, flag bool NOT NULL,
                    pad text NOT NULL);
    INSERT INTO t SELECT g, g * 7 % 100003, g % 1000, g % 2 = 0, repeat('x', 40)
      FROM generate_series(1, 100000) g;
    CREATE TABLE \"Order\"\"s\" (\"tenant id\" int NOT NULL, total numeric NOT NULL);
    INSERT INTO \"Order\"\"s\" SELECT g % 5000, g FROM generate_series(1, 50000) g;
    CREATE TABLE gone (x int);
    VACUUM ANALYZE;";

fn query(text: &str) -> Query {
    Query {
        fingerprint: String::new(),
        text: text.to_string(),
        calls: 1,
        mean_ms: None,
        source: Source::Argument,
    }
}

fn btree(table: &str, columns: &[&str]) -> Candidate {
    Candidate::btree(
        "public",
        table,
        columns
            .iter()
            .map(|c| SortKey {
                key: KeyExpr::column(*c),
                desc: false,
                nulls_first: None,
            })
            .collect(),
    )
}

async fn start(with_hypopg: bool) -> (Cluster, Conn) {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql("postgres", SCHEMA).unwrap();
    if with_hypopg {
        c.psql("postgres", "CREATE EXTENSION hypopg").unwrap();
    }
    let conn = db::connect(&Target::parse(&c.dsn("postgres")).unwrap())
        .await
        .unwrap();
    (c, conn)
}

fn set(candidates: Vec<Candidate>, per_query: Vec<Vec<usize>>) -> CandidateSet {
    CandidateSet {
        candidates,
        per_query,
        ..CandidateSet::default()
    }
}

fn with(costs: &Costs, q: usize, s: &[usize]) -> (f64, Vec<usize>) {
    let c = costs
        .with
        .get(&(q, s.to_vec()))
        .unwrap_or_else(|| panic!("({q}, {s:?}) costed: {costs:#?}"));
    (c.cost, c.used.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seq_scan_gets_cheaper_with_its_candidate_and_a_useless_one_is_not_used() {
    let (_c, conn) = start(true).await;
    let queries = vec![
        query("SELECT * FROM t WHERE a = 4242;"),
        query("SELECT sum(total) FROM \"Order\"\"s\" WHERE \"tenant id\" = 17"),
    ];
    let candidates = vec![
        btree("t", &["a"]),
        btree("t", &["flag"]),
        btree("Order\"s", &["tenant id"]),
    ];
    let s = set(candidates, vec![vec![0, 1], vec![2]]);
    let progress = Collect::new();
    let costs = whatif::cost(&conn, &queries, &s, &WhatIfOptions::default(), &progress)
        .await
        .unwrap();

    assert!(costs.failed.is_empty(), "{costs:#?}");
    let base = costs.base[0].unwrap();
    let (cost_a, used_a) = with(&costs, 0, &[0]);
    assert!(cost_a < base / 10.0, "base {base}, with (a) {cost_a}");
    assert_eq!(used_a, vec![0]);
    let (cost_flag, used_flag) = with(&costs, 0, &[1]);
    assert!(used_flag.is_empty(), "the flag index is useless here");
    assert!((cost_flag - base).abs() < 1e-6, "{cost_flag} vs {base}");
    // All at once: the plan uses (a) only, so no pair is asked for.
    let (cost_all, used_all) = with(&costs, 0, &[0, 1]);
    assert_eq!(used_all, vec![0]);
    assert!((cost_all - cost_a).abs() < 1e-6);
    assert_eq!(costs.with.keys().filter(|(q, _)| *q == 0).count(), 3);
    assert_eq!(costs.estimate(0, &[0, 1]), Some(cost_a.min(cost_all)));

    // A hostile table and column name stays one name.
    let (cost_o, used_o) = with(&costs, 1, &[2]);
    assert!(cost_o < costs.base[1].unwrap(), "{costs:#?}");
    assert_eq!(used_o, vec![2]);

    for c in 0..3 {
        assert!(costs.size_bytes[&c] > 8192, "size of {c}: {costs:#?}");
    }
    let events = progress.events();
    assert!(events.iter().all(|e| e.phase == "costing"));
    assert_eq!(events.last().unwrap().kind, Kind::Finish);
    assert_eq!(events.last().unwrap().done, 2);

    // Nothing is left in the session: no hypothetical index, settings as they were.
    let row = conn
        .query_one(
            "t",
            "SELECT count(*) FROM hypopg_list_indexes, \
             current_setting('default_transaction_read_only') r, \
             current_setting('plan_cache_mode') p",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
    let row = conn
        .query_one(
            "t",
            "SELECT current_setting('default_transaction_read_only'), \
             current_setting('plan_cache_mode')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "off");
    assert_eq!(row.get::<_, String>(1), "auto");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_with_parameters_is_costed_with_a_generic_plan() {
    let (_c, conn) = start(true).await;
    let queries = vec![query("SELECT id FROM t WHERE a = $1 AND b < $2")];
    let s = set(vec![btree("t", &["a"])], vec![vec![0]]);
    let costs = whatif::cost(&conn, &queries, &s, &WhatIfOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(costs.failed.is_empty(), "{costs:#?}");
    let base = costs.base[0].unwrap();
    let (cost, used) = with(&costs, 0, &[0]);
    assert_eq!(used, vec![0]);
    assert!(cost < base / 10.0, "base {base}, with (a) {cost}");
    let row = conn
        .query_one(
            "t",
            "SELECT count(*) FROM pg_prepared_statements WHERE from_sql",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, i64>(0),
        0,
        "every prepared statement deallocated"
    );
}

/// Why every index set gets a PREPARE of its own: a generic plan cached by a prepared
/// statement does not see a hypothetical index made after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_generic_plan_does_not_see_a_later_hypothetical_index() {
    let (_c, conn) = start(true).await;
    let plan = |sql: &'static str| {
        let conn = &conn;
        async move {
            let rows = conn.query("t", sql, &[]).await.unwrap();
            let json: serde_json::Value = rows[0].get(0);
            json[0]["Plan"]["Node Type"].as_str().unwrap().to_string()
        }
    };
    conn.batch("t", "SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    conn.batch("t", "PREPARE p AS SELECT * FROM t WHERE a = $1")
        .await
        .unwrap();
    assert_eq!(
        plan("EXPLAIN (FORMAT JSON) EXECUTE p(NULL)").await,
        "Seq Scan"
    );
    conn.query(
        "t",
        "SELECT * FROM hypopg_create_index('CREATE INDEX ON t (a)')",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        plan("EXPLAIN (FORMAT JSON) EXECUTE p(NULL)").await,
        "Seq Scan",
        "the cached generic plan stays"
    );
    conn.batch("t", "DEALLOCATE p").await.unwrap();
    conn.batch("t", "PREPARE p AS SELECT * FROM t WHERE a = $1")
        .await
        .unwrap();
    assert_eq!(
        plan("EXPLAIN (FORMAT JSON) EXECUTE p(NULL)").await,
        "Index Scan",
        "prepared again, it sees the hypothetical index"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_explain_is_recorded_and_the_other_statements_are_still_costed() {
    let (c, conn) = start(true).await;
    let queries = vec![
        query("SELECT * FROM gone WHERE x = 1"),
        query("SELECT * FROM t WHERE a = 'not a number'::int"),
        query("SELECT * FROM t WHERE a = 99"),
        query("SELECT * FROM t WHERE b = $1::text::int AND a = $2 AND 1/0 = 1"),
        query("SELEC what"),
    ];
    // The table is dropped between reading the workload and costing it.
    c.psql("postgres", "DROP TABLE gone").unwrap();
    // A candidate HypoPG refuses (its expression names no function there).
    let mut refused = btree("t", &["a"]);
    refused.keys[0].key = KeyExpr::Expression {
        sql: "no_such_function(a)".into(),
        columns: vec!["a".into()],
    };
    let mut s = set(
        vec![btree("gone", &["x"]), btree("t", &["a"]), refused],
        vec![vec![0], vec![1], vec![2, 1], vec![1], vec![]],
    );
    // What the candidate stage could not parse is not planned at all.
    s.left_alone.push((
        4,
        Reason::NotParseable {
            error: "syntax error".into(),
        },
    ));
    let costs = whatif::cost(&conn, &queries, &s, &WhatIfOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(costs.failed[&0].contains("gone"), "{costs:#?}");
    assert!(costs.failed[&1].contains("not a number"), "{costs:#?}");
    assert_eq!(costs.base[0], None);
    assert_eq!(costs.base[1], None);
    assert!(costs.base[2].is_some());
    assert_eq!(with(&costs, 2, &[1]).1, vec![1]);
    assert!(
        costs.candidate_failed[&2].contains("no_such_function"),
        "{costs:#?}"
    );
    assert!(!costs.with.keys().any(|(_, s)| s.contains(&2)));
    // A generic plan whose constant expression fails while planning (1/0 is folded then).
    assert!(costs.failed[&3].contains("division by zero"), "{costs:#?}");
    assert!(!costs.failed.contains_key(&4) && costs.base[4].is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_is_read_only_and_explain_of_writes_and_hypopg_work_there() {
    let (_c, conn) = start(true).await;
    let queries = vec![
        query("UPDATE t SET pad = 'y' WHERE a = 5"),
        query("DELETE FROM t WHERE a = $1"),
        query("INSERT INTO t SELECT id + 200000, a, b, flag, pad FROM t WHERE a = 6"),
    ];
    let s = set(vec![btree("t", &["a"])], vec![vec![0], vec![0], vec![0]]);
    let costs = whatif::cost(&conn, &queries, &s, &WhatIfOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(costs.failed.is_empty(), "{costs:#?}");
    for q in 0..3 {
        let (cost, used) = with(&costs, q, &[0]);
        assert_eq!(used, vec![0], "statement {q}");
        assert!(cost < costs.base[q].unwrap());
    }
    // The same statements run for real in a read-only session are refused: the costing
    // session could not have written.
    conn.batch("t", "SET default_transaction_read_only = on")
        .await
        .unwrap();
    let err = conn
        .execute("t", "UPDATE t SET pad = 'y' WHERE a = 5", &[])
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate().unwrap().code(), "25006", "{err}");
    conn.batch("t", "SET default_transaction_read_only = off")
        .await
        .unwrap();
    let row = conn
        .query_one(
            "t",
            "SELECT count(*) FROM t WHERE pad <> repeat('x', 40)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_or_across_two_columns_is_costed_with_the_pair_its_plan_used() {
    let (_c, conn) = start(true).await;
    let queries = vec![query("SELECT * FROM t WHERE a = 5 OR b = 7")];
    let s = set(
        vec![
            btree("t", &["a"]),
            btree("t", &["b"]),
            btree("t", &["flag"]),
        ],
        vec![vec![0, 1, 2]],
    );
    let costs = whatif::cost(&conn, &queries, &s, &WhatIfOptions::default(), &NoProgress)
        .await
        .unwrap();
    let base = costs.base[0].unwrap();
    let (all, used) = with(&costs, 0, &[0, 1, 2]);
    assert_eq!(used, vec![0, 1], "a BitmapOr of (a) and (b)");
    let (pair, pair_used) = with(&costs, 0, &[0, 1]);
    assert_eq!(pair_used, vec![0, 1]);
    assert!((pair - all).abs() < 1e-6);
    assert!(pair < base / 2.0, "base {base}, pair {pair}");
    // Alone, neither index serves the OR.
    assert!(with(&costs, 0, &[0]).1.is_empty());
    assert_eq!(costs.estimate(0, &[0]), Some(base));
    assert_eq!(costs.estimate(0, &[1, 0]), Some(pair));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trial_real_indexes_cost_close_to_hypothetical_ones_and_leave_nothing_behind() {
    let (_c, conn) = start(true).await;
    let queries = vec![
        query("SELECT * FROM t WHERE a = 4242"),
        query("SELECT id FROM t WHERE b = $1"),
    ];
    let s = set(
        vec![btree("t", &["a"]), btree("t", &["b"])],
        vec![vec![0], vec![1]],
    );
    let hypo = whatif::cost(&conn, &queries, &s, &WhatIfOptions::default(), &NoProgress)
        .await
        .unwrap();
    let trial_opts = WhatIfOptions {
        mode: Mode::TrialReal,
        ..WhatIfOptions::default()
    };
    let trial = whatif::cost(&conn, &queries, &s, &trial_opts, &NoProgress)
        .await
        .unwrap();
    assert!(trial.failed.is_empty(), "{trial:#?}");
    for q in 0..2 {
        assert_eq!(trial.base[q], hypo.base[q]);
        let (h, hu) = with(&hypo, q, &[q]);
        let (r, ru) = with(&trial, q, &[q]);
        assert_eq!(hu, ru);
        assert!(
            (h - r).abs() <= 0.25 * r.max(h),
            "statement {q}: hypothetical {h}, real {r}"
        );
    }
    // Sizes: close for a unique column; HypoPG does not model btree deduplication
    // (PostgreSQL 13+), so for a column with few values it estimates more than the real
    // index takes.
    let (hs, rs) = (hypo.size_bytes[&0] as f64, trial.size_bytes[&0] as f64);
    assert!(rs > 0.0 && (hs - rs).abs() <= 0.5 * rs, "(a): {hs} vs {rs}");
    let (hs, rs) = (hypo.size_bytes[&1] as f64, trial.size_bytes[&1] as f64);
    assert!(rs > 0.0 && hs >= rs, "(b): {hs} vs {rs}");
    let row = conn
        .query_one(
            "t",
            "SELECT count(*) FROM pg_indexes WHERE tablename = 't'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1, "only the primary key is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_extension_the_error_says_create_extension_and_trial_real_indexes() {
    let (_c, conn) = start(false).await;
    let err = whatif::check_hypopg(&conn).await.unwrap_err().to_string();
    assert!(err.contains("CREATE EXTENSION hypopg;"), "{err}");
    assert!(err.contains("--trial-real-indexes"), "{err}");
    let queries = vec![query("SELECT * FROM t WHERE a = 1")];
    let s = set(vec![btree("t", &["a"])], vec![vec![0]]);
    let err = whatif::cost(&conn, &queries, &s, &WhatIfOptions::default(), &NoProgress)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("CREATE EXTENSION hypopg;"), "{err}");
    // Trial real indexes need no extension.
    let trial_opts = WhatIfOptions {
        mode: Mode::TrialReal,
        ..WhatIfOptions::default()
    };
    let costs = whatif::cost(&conn, &queries, &s, &trial_opts, &NoProgress)
        .await
        .unwrap();
    assert_eq!(with(&costs, 0, &[0]).1, vec![0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explain_past_its_timeout_is_recorded_and_the_next_statement_is_costed() {
    let (c, conn) = start(true).await;
    // An IMMUTABLE function is run while planning (constant folding): it holds the EXPLAIN.
    c.psql(
        "postgres",
        "CREATE FUNCTION slow() RETURNS int IMMUTABLE LANGUAGE plpgsql \
         AS $$ BEGIN PERFORM pg_sleep(30); RETURN 1; END $$",
    )
    .unwrap();
    let queries = vec![
        query("SELECT * FROM t WHERE a = slow()"),
        query("SELECT * FROM t WHERE a = 7"),
    ];
    let s = set(vec![btree("t", &["a"])], vec![vec![0], vec![0]]);
    let opts = WhatIfOptions {
        statement_timeout: std::time::Duration::from_millis(500),
        ..WhatIfOptions::default()
    };
    let costs = whatif::cost(&conn, &queries, &s, &opts, &NoProgress)
        .await
        .unwrap();
    assert!(costs.failed[&0].contains("statement timeout"), "{costs:#?}");
    assert_eq!(with(&costs, 1, &[0]).1, vec![0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costing_in_small_batches_resets_hypopg_and_gives_the_same_costs() {
    let (_c, conn) = start(true).await;
    let queries = vec![
        query("SELECT * FROM t WHERE a = 1 OR b = 2"),
        query("SELECT * FROM t WHERE b = 3 AND a > 5"),
        query("SELECT id FROM t WHERE a = $1 OR b = $2"),
    ];
    let s = set(
        vec![
            btree("t", &["a"]),
            btree("t", &["b"]),
            btree("t", &["flag"]),
        ],
        vec![vec![0, 1], vec![1, 2], vec![0, 1, 2]],
    );
    let whole = whatif::cost(&conn, &queries, &s, &WhatIfOptions::default(), &NoProgress)
        .await
        .unwrap();
    // Three at a time: every set fits, and HypoPG is reset several times on the way.
    let small = WhatIfOptions {
        batch: 3,
        ..WhatIfOptions::default()
    };
    let batched = whatif::cost(&conn, &queries, &s, &small, &NoProgress)
        .await
        .unwrap();
    assert!(whole.failed.is_empty(), "{whole:#?}");
    assert_eq!(whole.base, batched.base);
    assert_eq!(whole.with, batched.with);
    assert_eq!(whole.size_bytes, batched.size_bytes);
    // Two at a time: the set of three exceeds a batch; that set is left out, not the run.
    let tiny = WhatIfOptions {
        batch: 2,
        ..WhatIfOptions::default()
    };
    let batched = whatif::cost(&conn, &queries, &s, &tiny, &NoProgress)
        .await
        .unwrap();
    assert!(batched.failed.is_empty());
    assert!(!batched.with.contains_key(&(2, vec![0, 1, 2])));
    assert_eq!(batched.with[&(2, vec![0])], whole.with[&(2, vec![0])]);
    assert_eq!(batched.with[&(0, vec![0, 1])], whole.with[&(0, vec![0, 1])]);
}
