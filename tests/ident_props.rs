//! Identifier quoting round trip through a real server: a table created under any quoted
//! name (quotes, spaces, semicolons, non-ASCII) is found in pg_class under exactly that name,
//! and a quoted literal reads back as the same text.

use pgopt::db::{connect, SystemDefaults, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::ident::{quote_literal, QualifiedName};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Names PostgreSQL keeps whole: no NUL, at most 63 bytes (NAMEDATALEN - 1).
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 \"';\\\\.$_\\-é中]{1,20}",
        "[^\\x00]{1,15}",
        Just("x\"; DROP TABLE users; --".to_string()),
    ]
    .prop_filter("at most 63 bytes", |n| n.len() <= 63)
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

#[test]
fn quoted_identifiers_and_literals_round_trip_through_the_server() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("starting an embedded cluster");
    let defaults = SystemDefaults {
        socket_dir: None,
        os_user: Some("postgres".into()),
        home: None,
    };
    let target = Target::resolve_with(Some(&cluster.dsn("postgres")), &|_| None, &defaults)
        .expect("the cluster's dsn");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let conn = rt.block_on(connect(&target)).expect("connecting");
    rt.block_on(conn.batch("schema", "CREATE SCHEMA props"))
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&name(), |name| {
            rt.block_on(async {
                let table = QualifiedName::new("props", &name);
                conn.batch("create", &format!("CREATE TABLE {table} ()"))
                    .await
                    .map_err(fail)?;
                let rows = conn
                    .query(
                        "read back",
                        "SELECT relname::text FROM pg_class \
                         WHERE relnamespace = 'props'::regnamespace",
                        &[],
                    )
                    .await
                    .map_err(fail)?;
                let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                conn.batch("drop", &format!("DROP TABLE {table}"))
                    .await
                    .map_err(fail)?;
                prop_assert_eq!(names, vec![name.clone()]);
                let literal: String = conn
                    .query_one(
                        "literal",
                        &format!("SELECT {}::text", quote_literal(&name)),
                        &[],
                    )
                    .await
                    .map_err(fail)?
                    .get(0);
                prop_assert_eq!(literal, name);
                Ok(())
            })
        })
        .unwrap();
}
