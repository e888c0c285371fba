//! The index advisor's I/O on real clusters: the catalog read (columns, statistics after
//! ANALYZE, search-path resolution, hostile names, missing tables, existing indexes) and the
//! pg_stat_statements source (the top statements of this database only, and the message when
//! the extension is missing); server logs of several databases read for one (files only, no
//! server).

use pgopt::db::{self, Conn, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::indexes::catalog;
use pgopt::indexes::model::Source;
use pgopt::indexes::sources::{self, StatOptions};

async fn connect(c: &Cluster, database: &str) -> Conn {
    db::connect(&Target::parse(&c.dsn(database)).unwrap())
        .await
        .expect("connect")
}

const HOSTILE: &str = r#"Or"ders; DROP TABLE x; --"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_reads_columns_stats_indexes_and_resolves_the_search_path() {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    let conn = connect(&c, "postgres").await;
    conn.batch(
        "test",
        &format!(
            "CREATE SCHEMA app;
             CREATE TABLE app.orders (id bigint PRIMARY KEY, status text NOT NULL,
                                      customer_id int, note text);
             INSERT INTO app.orders SELECT g, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'done' END,
                                           g % 100, NULL FROM generate_series(1, 5000) g;
             CREATE INDEX orders_customer ON app.orders (customer_id) WHERE note IS NULL;
             CREATE INDEX orders_lower ON app.orders (lower(status)) INCLUDE (customer_id);
             ALTER TABLE app.orders DROP COLUMN note;
             ANALYZE app.orders;
             CREATE TABLE public.{h} (\"we\"\"ird col\" int);
             CREATE TABLE public.orders (x int);
             SET search_path = app, public;",
            h = pgopt::ident::Ident::new(HOSTILE)
        ),
    )
    .await
    .unwrap();
    // The inserts reach the shared statistics when this session next goes idle.
    conn.batch("test", "SELECT pg_stat_force_next_flush()")
        .await
        .unwrap();
    let tables = catalog::referenced_tables(&[
        "SELECT * FROM orders WHERE status = 'open'",
        &format!("SELECT * FROM public.{}", pgopt::ident::Ident::new(HOSTILE)),
        "SELECT * FROM gone_table",
    ]);
    assert_eq!(tables.len(), 3, "{tables:?}");
    let cat = catalog::collect(&conn, &tables).await.expect("catalog");

    assert_eq!(
        cat.search_path
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        vec!["app", "public"]
    );
    // Unqualified `orders` is app.orders by the session's search path; public.orders is read
    // too, the resolution picks the first schema.
    let orders = cat.resolve(None, "orders").expect("orders resolved");
    assert_eq!(orders.schema, "app");
    assert!(cat.table("public", "orders").is_some());
    assert!(
        cat.resolve(None, "gone_table").is_none(),
        "absent, no error"
    );
    assert_eq!(orders.reltuples, 5000.0);
    assert!(orders.relpages > 0 && orders.total_bytes > orders.relpages * 8192 - 1);
    assert_eq!(orders.n_tup_ins, 5000);
    assert!(orders.stats_window_seconds.is_some_and(|w| w >= 0.0));

    let names: Vec<&str> = orders.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["id", "status", "customer_id"],
        "dropped column left out"
    );
    let status = orders.column("status").unwrap();
    assert_eq!(status.type_name, "text");
    assert!(status.not_null);
    let stats = status.stats.as_ref().expect("analyzed");
    assert_eq!(stats.n_distinct, 2.0);
    assert_eq!(stats.most_common_vals, vec!["done", "open"]);
    assert!((stats.most_common_freqs[0] - 0.9).abs() < 0.01);
    let customer = orders.column("customer_id").unwrap();
    assert!(!customer.not_null);
    assert_eq!(customer.stats.as_ref().unwrap().n_distinct, 100.0);

    let hostile = cat.table("public", HOSTILE).expect("hostile table read");
    assert_eq!(hostile.columns[0].name, "we\"ird col");
    assert!(hostile.columns[0].stats.is_none(), "never analyzed");

    let of_orders: Vec<_> = cat.indexes_of("app", "orders").collect();
    let mut idx_names: Vec<&str> = of_orders.iter().map(|i| i.name.as_str()).collect();
    idx_names.sort();
    assert_eq!(idx_names, vec!["orders_lower", "orders_pkey"]);
    let pkey = of_orders.iter().find(|i| i.name == "orders_pkey").unwrap();
    assert!(pkey.is_primary && pkey.is_unique && pkey.is_valid);
    assert_eq!(pkey.key_columns.as_slice(), ["id"]);
    assert!(pkey.definition.contains("USING btree (id)"));
    assert!(pkey.size_bytes > 0 && !pkey.size_estimated);
    let lower = of_orders.iter().find(|i| i.name == "orders_lower").unwrap();
    assert_eq!(lower.expressions.as_deref(), Some("lower(status)"));
    assert_eq!(lower.include_columns.as_slice(), ["customer_id"]);
    // The index on customer_id went with the dropped column of its predicate.
    assert!(cat.indexes.iter().all(|i| i.name != "orders_customer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_leaves_out_the_statistics_a_role_may_not_read() {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    let conn = connect(&c, "postgres").await;
    conn.batch(
        "test",
        "CREATE TABLE secrets (id int, token text);
         INSERT INTO secrets SELECT g, md5(g::text) FROM generate_series(1, 500) g;
         ANALYZE secrets;
         CREATE ROLE reader LOGIN;
         GRANT SELECT (id) ON secrets TO reader",
    )
    .await
    .unwrap();
    // The same server as the role `reader`.
    let dsn = c.dsn("postgres");
    let (scheme, rest) = dsn.split_once("//").unwrap();
    let (_, host) = rest.split_once('@').unwrap();
    let reader = db::connect(&Target::parse(&format!("{scheme}//reader@{host}")).unwrap())
        .await
        .expect("connect as reader");
    let cat = catalog::collect(&reader, &[(None, "secrets".to_string())])
        .await
        .expect("catalog");
    let t = cat.resolve(None, "secrets").expect("the table is read");
    assert!(
        t.column("id").unwrap().stats.is_some(),
        "a column it may read"
    );
    assert!(
        t.column("token").unwrap().stats.is_none(),
        "pg_stats hides a column it may not read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_of_no_tables_still_gives_the_search_path() {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    let conn = connect(&c, "postgres").await;
    let cat = catalog::collect(&conn, &[]).await.unwrap();
    assert!(cat.tables.is_empty());
    assert_eq!(cat.search_path.len(), 1, "{:?}", cat.search_path);
    assert_eq!(cat.search_path[0], "public");
    // The read-only transaction ended: the connection takes writes again.
    conn.batch("test", "CREATE TABLE after_read (a int)")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stat_statements_reads_the_top_statements_of_this_database_only() {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    c.psql("postgres", "CREATE DATABASE other").unwrap();
    let conn = connect(&c, "postgres").await;
    let other = connect(&c, "other").await;
    conn.batch(
        "test",
        "CREATE TABLE items (id int, sku text);
         INSERT INTO items SELECT g, 's' || g FROM generate_series(1, 2000) g;
         SELECT pg_stat_statements_reset();",
    )
    .await
    .unwrap();
    other
        .batch("test", "CREATE TABLE elsewhere (a int)")
        .await
        .unwrap();
    for i in 0..5 {
        conn.query(
            "test",
            "SELECT * FROM items WHERE sku = $1",
            &[&format!("s{i}")],
        )
        .await
        .unwrap();
        other
            .query("test", "SELECT * FROM elsewhere WHERE a = $1", &[&i])
            .await
            .unwrap();
    }
    conn.query("test", "SELECT count(*) FROM items WHERE id > 10", &[])
        .await
        .unwrap();
    conn.query("test", "SELECT relname FROM pg_class WHERE oid = 1259", &[])
        .await
        .unwrap();
    conn.batch("test", "BEGIN; COMMIT").await.unwrap();

    let qs = sources::stat_statements(&conn, &StatOptions::default())
        .await
        .expect("read");
    let texts: Vec<&str> = qs.iter().map(|q| q.text.as_str()).collect();
    let hot = qs
        .iter()
        .find(|q| q.text == "SELECT * FROM items WHERE sku = $1")
        .unwrap_or_else(|| panic!("{texts:?}"));
    assert_eq!(hot.calls, 5);
    assert!(hot.mean_ms.is_some_and(|m| m > 0.0));
    assert!(matches!(hot.source, Source::StatStatements { .. }));
    assert!(!hot.fingerprint.is_empty());
    assert!(texts.iter().any(|t| t.contains("count(*) FROM items")));
    assert!(!texts.iter().any(|t| t.contains("elsewhere")), "{texts:?}");
    assert!(!texts.iter().any(|t| t.contains("pg_class")), "{texts:?}");
    assert!(
        !texts
            .iter()
            .any(|t| t.contains("BEGIN") || t.contains("COMMIT")),
        "{texts:?}"
    );
    assert!(
        !texts.iter().any(|t| t.contains("CREATE TABLE")),
        "{texts:?}"
    );

    let few = sources::stat_statements(
        &conn,
        &StatOptions {
            limit: 10,
            min_calls: 2,
        },
    )
    .await
    .unwrap();
    assert_eq!(few.len(), 1, "only the statement called at least twice");
    // The read left no transaction open and the search path as it was.
    let path: String = conn
        .query_one("test", "SELECT current_setting('search_path')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(path, "\"$user\", public");
    conn.batch("test", "CREATE TABLE after_read (a int)")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stat_statements_says_how_to_enable_the_extension_when_it_is_missing() {
    let c = Cluster::start(ClusterOptions {
        settings: vec![("shared_preload_libraries".into(), "''".into())],
        ..ClusterOptions::default()
    })
    .expect("cluster");
    let conn = connect(&c, "postgres").await;
    // Created (the template has it) but not loaded.
    let e = sources::stat_statements(&conn, &StatOptions::default())
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(e.is_bad_input(), "{msg}");
    assert!(msg.contains("not loaded"), "{msg}");
    assert!(msg.contains("shared_preload_libraries"), "{msg}");
    assert!(msg.contains("CREATE EXTENSION pg_stat_statements"), "{msg}");

    conn.batch("test", "DROP EXTENSION pg_stat_statements")
        .await
        .unwrap();
    let e = sources::stat_statements(&conn, &StatOptions::default())
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("not installed in database postgres"), "{msg}");
    assert!(msg.contains("--query, --file or --log"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_reads_what_each_column_sorts_by() {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    let conn = connect(&c, "postgres").await;
    conn.batch(
        "test",
        "CREATE TABLE words (n int, plain text, c text COLLATE \"C\", posix varchar(9) COLLATE \"POSIX\",
                             icu text COLLATE \"und-x-icu\");",
    )
    .await
    .unwrap();
    let datcollate: String = conn
        .query_one(
            "test",
            "SELECT datcollate::text FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let cat = catalog::collect(&conn, &catalog::referenced_tables(&["SELECT * FROM words"]))
        .await
        .expect("catalog");
    let words = cat.resolve(None, "words").expect("words");
    let collation = |name: &str| words.column(name).unwrap().collation.clone();
    assert_eq!(collation("n"), None, "an integer has no collation");
    assert_eq!(collation("plain"), Some(datcollate), "the database's");
    assert_eq!(collation("c"), Some("C".into()));
    assert_eq!(collation("posix"), Some("POSIX".into()));
    assert_eq!(collation("icu"), Some("und-x-icu".into()));
    assert!(words.column("c").unwrap().sorts_bytewise());
    assert!(!words.column("icu").unwrap().sorts_bytewise());
}

/// A csvlog, a jsonlog and two stderr logs (one whose log_line_prefix has %d as `db=%d`, one
/// without it) of two databases, read for one of them.
#[test]
fn logs_of_every_database_are_filtered_to_the_asked_one_and_unfiltered_ones_named() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let csv = write(
        "pg.csv",
        "2026-01-02 10:00:00.123 UTC,\"app\",\"shop\",1,\"[local]\",6571,1,\"SELECT\",2026-01-02 09:00:00 UTC,3/10,0,LOG,00000,\"duration: 5.000 ms  statement: SELECT * FROM orders WHERE id = 1\",,,,,,,,,\"psql\",\"client backend\",,0\n\
         2026-01-02 10:00:00.123 UTC,\"app\",\"crm\",2,\"[local]\",6572,1,\"SELECT\",2026-01-02 09:00:00 UTC,3/11,0,LOG,00000,\"duration: 5.000 ms  statement: SELECT * FROM leads WHERE id = 1\",,,,,,,,,\"psql\",\"client backend\",,0\n",
    );
    let json = write(
        "pg.json",
        concat!(
            r#"{"dbname":"crm","error_severity":"LOG","message":"duration: 1.000 ms  statement: SELECT * FROM leads WHERE id = 2"}"#,
            "\n",
            r#"{"dbname":"shop","error_severity":"LOG","message":"duration: 1.000 ms  statement: SELECT * FROM items WHERE id = 2"}"#,
            "\n"
        ),
    );
    let tagged = write(
        "tagged.log",
        "2026-01-02 10:00:00 UTC [1] db=crm,user=app LOG:  duration: 1.000 ms  statement: SELECT * FROM leads\n\
         2026-01-02 10:00:00 UTC [2] db=shop,user=app LOG:  duration: 1.000 ms  statement: SELECT * FROM orders\n",
    );
    let plain = write(
        "plain.log",
        "2026-01-02 10:00:00 UTC [1] LOG:  duration: 1.000 ms  statement: SELECT * FROM leads\n",
    );
    let texts = |r: &sources::LogsRead| -> Vec<String> {
        r.queries.iter().map(|q| q.text.clone()).collect()
    };

    let read = sources::from_logs(&[csv.clone(), json.clone(), tagged.clone()], "shop").unwrap();
    assert_eq!(
        texts(&read),
        vec![
            "SELECT * FROM orders WHERE id = 1",
            "SELECT * FROM items WHERE id = 2",
            "SELECT * FROM orders"
        ]
    );
    assert_eq!(read.other_databases, 3);
    assert!(read.unfiltered.is_empty());
    assert_eq!(
        read.note("shop"),
        None,
        "nothing to say when every log was filtered"
    );

    let read = sources::from_logs(&[tagged, plain.clone()], "crm").unwrap();
    assert_eq!(
        texts(&read),
        vec!["SELECT * FROM leads", "SELECT * FROM leads"]
    );
    assert_eq!(read.unfiltered, vec![plain.display().to_string()]);
    let note = read.note("crm").expect("said once");
    assert!(note.starts_with(&plain.display().to_string()), "{note}");
    assert!(
        note.contains("every database") && note.contains("db=%d"),
        "{note}"
    );
}
