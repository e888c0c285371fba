//! The bench's lean connection (`pgopt::bench::wire`) against real embedded clusters, held to
//! the same results as tokio-postgres (the standard path): authentication (trust, cleartext,
//! md5, SCRAM), rows and counts, error classification, transaction status, timeouts, cancel,
//! a server that dies, and TLS sending the caller back to the standard path.

mod cli_support;

use cli_support::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgopt::bench::wire::{ConnectError, TxStatus, Value, WireConn, WireError};
use pgopt::bench::BenchResult;
use pgopt::db::{connect, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::Error;

mod hermetic;
use hermetic::target;

const PASSWORD: &str = "W1re-S3cret-pw";

fn start(opts: ClusterOptions) -> Cluster {
    Cluster::start(opts).expect("starting an embedded cluster")
}

async fn wire(t: &Target) -> WireConn {
    WireConn::connect(t, &t.hosts[0])
        .await
        .unwrap_or_else(|e| panic!("lean connect: {e}"))
}

async fn text(conn: &mut WireConn, sql: &str) -> String {
    let rows = conn.query_rows(sql, &[], &[]).await.unwrap();
    rows[0][0].clone().unwrap()
}

fn failed_code(e: &ConnectError) -> &str {
    e.code()
        .unwrap_or_else(|| panic!("expected a server error: {e:?}"))
}

#[tokio::test]
async fn trust_over_tcp_and_unix_socket_sets_the_session_up_as_db_connect_does() {
    let c = start(ClusterOptions::default());
    for dsn in [c.dsn("postgres"), c.socket_dsn("postgres")] {
        let t = target(&dsn);
        let mut w = wire(&t).await;
        assert_eq!(text(&mut w, "SHOW application_name").await, "pgopt");
        assert_eq!(text(&mut w, "SHOW statement_timeout").await, "30s");
        assert_eq!(text(&mut w, "SELECT current_user").await, "postgres");
        assert!(w.server_version_num() >= 130000);
        assert!(!w.in_recovery());
        assert_eq!(w.transaction_status(), TxStatus::Idle);
        w.close().await;
    }
    // Options reach the server as they do on the standard path.
    let t = target(&format!(
        "{}&options=-c%20work_mem%3D7MB",
        c.dsn("postgres")
    ));
    let mut w = wire(&t).await;
    assert_eq!(text(&mut w, "SHOW work_mem").await, "7MB");
}

#[tokio::test]
async fn a_role_that_does_not_exist_fails_with_28000() {
    let c = start(ClusterOptions::default());
    let t = target(&format!(
        "postgresql://nobody@127.0.0.1:{}/postgres?sslmode=disable",
        c.port()
    ));
    let e = WireConn::connect(&t, &t.hosts[0]).await.unwrap_err();
    assert_eq!(failed_code(&e), "28000");
    let msg = e.to_string();
    assert!(msg.contains("\"nobody\" does not exist"), "{msg}");
    assert!(matches!(Error::from(e), Error::Auth { .. }));
}

#[tokio::test]
async fn scram_connects_and_a_wrong_password_fails_with_28p01_without_showing_it() {
    let c = start(ClusterOptions {
        password: Some(PASSWORD.into()),
        ..Default::default()
    });
    let t = target(&c.dsn("postgres"));
    let mut w = wire(&t).await;
    assert_eq!(text(&mut w, "SELECT 1").await, "1");

    let wrong = "not-the-Pa55word";
    let t = target(&format!(
        "postgresql://postgres:{wrong}@127.0.0.1:{}/postgres?sslmode=disable",
        c.port()
    ));
    let e = WireConn::connect(&t, &t.hosts[0]).await.unwrap_err();
    assert_eq!(failed_code(&e), "28P01");
    let msg = e.to_string();
    assert!(msg.contains("password authentication failed"), "{msg}");
    assert!(msg.contains("Check the password"), "{msg}");
    assert!(
        !msg.contains(wrong) && !format!("{e:?}").contains(wrong),
        "{msg}"
    );

    // No password at all: said so, before the server is asked anything more.
    let t = target(&format!(
        "postgresql://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        c.port()
    ));
    let e = WireConn::connect(&t, &t.hosts[0]).await.unwrap_err();
    assert!(e.to_string().contains("none was given"), "{e}");
}

#[tokio::test]
async fn md5_and_cleartext_passwords_connect_by_the_method_pg_hba_names() {
    let mut c = start(ClusterOptions {
        password: Some(PASSWORD.into()),
        // The server logs the method of each authentication (PostgreSQL 14+).
        settings: vec![
            ("log_connections".into(), "on".into()),
            ("log_min_messages".into(), "log".into()),
        ],
        ..Default::default()
    });
    c.psql(
        "postgres",
        "SET password_encryption = 'md5'; \
         CREATE ROLE md5user LOGIN PASSWORD 'md5-pw'; \
         SET password_encryption = 'scram-sha-256'; \
         CREATE ROLE plainuser LOGIN PASSWORD 'plain-pw';",
    )
    .unwrap();
    let hba = c.data_dir().join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!(
            "host all md5user 127.0.0.1/32 md5\nhost all plainuser 127.0.0.1/32 password\n{old}"
        ),
    )
    .unwrap();
    // A restart loads pg_hba.conf for certain (a reload is asynchronous).
    c.restart().unwrap();
    for (user, pw, method) in [
        ("md5user", "md5-pw", "md5"),
        ("plainuser", "plain-pw", "password"),
    ] {
        let t = target(&format!(
            "postgresql://{user}:{pw}@127.0.0.1:{}/postgres?sslmode=disable",
            c.port()
        ));
        let mut w = wire(&t).await;
        assert_eq!(text(&mut w, "SELECT current_user").await, user);
        let log = std::fs::read_to_string(c.log_file()).unwrap();
        assert!(
            log.contains(&format!("identity=\"{user}\" method={method}")),
            "{user} did not authenticate by {method}:\n{log}"
        );
        let t = target(&format!(
            "postgresql://{user}:wrong@127.0.0.1:{}/postgres?sslmode=disable",
            c.port()
        ));
        let e = WireConn::connect(&t, &t.hosts[0]).await.unwrap_err();
        assert_eq!(failed_code(&e), "28P01", "{user}");
    }
}

/// Runs the same statements through tokio-postgres (table `a`) and the lean path (table `b`):
/// same counts, same table contents.
#[tokio::test]
async fn prepare_and_execute_give_the_same_counts_and_rows_as_tokio_postgres() {
    let c = start(ClusterOptions::default());
    let t = target(&c.dsn("postgres"));
    c.psql(
        "postgres",
        "CREATE TABLE a (id int PRIMARY KEY, name text, score double precision); \
         CREATE TABLE b (LIKE a INCLUDING ALL); CREATE TABLE c (LIKE a INCLUDING ALL);",
    )
    .unwrap();
    let std_conn = connect(&t).await.unwrap();
    let client = std_conn.client();
    let mut w = wire(&t).await;

    let rows: [(i32, Option<&str>, f64); 4] = [
        (1, Some("alice"), 1.5),
        (2, Some("bob's"), -0.25),
        (3, None, 1e300),
        (4, Some("ünïcode"), 0.1),
    ];
    let mut std_counts = Vec::new();
    let mut wire_counts = Vec::new();
    // Table c: the lean path with tokio-postgres's own parameter values (binary encodings).
    let mut tosql_counts = Vec::new();
    let mut w2 = wire(&t).await;

    let s = client.prepare("SELECT 1").await.unwrap();
    std_counts.push(client.execute(&s, &[]).await.unwrap());
    let p = w.prepare("SELECT 1").await.unwrap();
    assert!(p.returns_rows && p.param_types.is_empty());
    wire_counts.push(w.execute(&p, &[]).await.unwrap());

    let s = client
        .prepare("INSERT INTO a VALUES ($1, $2, $3)")
        .await
        .unwrap();
    let p = w
        .prepare("INSERT INTO b VALUES ($1, $2, $3)")
        .await
        .unwrap();
    // int4, text, float8: what the server inferred, as tokio-postgres sees them.
    assert_eq!(
        p.param_types,
        s.params().iter().map(|t| t.oid()).collect::<Vec<_>>()
    );
    assert!(!p.returns_rows);
    for (id, name, score) in rows {
        std_counts.push(client.execute(&s, &[&id, &name, &score]).await.unwrap());
        let name = name.map_or(Value::Null, Value::Text);
        wire_counts.push(
            w.execute(&p, &[Value::Int(id.into()), name, Value::Float(score)])
                .await
                .unwrap(),
        );
    }
    let p = w2
        .prepare("INSERT INTO c VALUES ($1, $2, $3)")
        .await
        .unwrap();
    assert_eq!(p.params(), s.params());
    for (id, name, score) in rows {
        tosql_counts.push(w2.execute_params(&p, &[&id, &name, &score]).await.unwrap());
    }
    // A value of the wrong type is refused before anything is sent, as on the standard path.
    let e = w2
        .execute_params(&p, &[&"x", &name_of(1), &1.0f64])
        .await
        .unwrap_err();
    assert_eq!((e.code.as_str(), e.broken), ("client_error", false));
    assert!(client
        .execute(&s, &[&"x", &name_of(1), &1.0f64])
        .await
        .is_err());

    let s = client
        .prepare("UPDATE a SET score = score * $1, name = coalesce(name, $3) WHERE id <= $2")
        .await
        .unwrap();
    std_counts.push(
        client
            .execute(&s, &[&2.0f64, &3i32, &"filled"])
            .await
            .unwrap(),
    );
    let p = w
        .prepare("UPDATE b SET score = score * $1, name = coalesce(name, $3) WHERE id <= $2")
        .await
        .unwrap();
    wire_counts.push(
        w.execute(
            &p,
            &[Value::Float(2.0), Value::Int(3), Value::Text("filled")],
        )
        .await
        .unwrap(),
    );

    for sql in [
        "SELECT * FROM a WHERE id > $1",
        "DELETE FROM a WHERE id = $1",
    ] {
        let s = client.prepare(sql).await.unwrap();
        std_counts.push(client.execute(&s, &[&3i32]).await.unwrap());
        let p = w.prepare(&sql.replace(" a ", " b ")).await.unwrap();
        wire_counts.push(w.execute(&p, &[Value::Int(3)]).await.unwrap());
    }
    // A statement run many times on one prepared statement keeps giving the same answer.
    let s = client.prepare("SELECT * FROM a").await.unwrap();
    let p = w.prepare("SELECT * FROM b").await.unwrap();
    for _ in 0..100 {
        std_counts.push(client.execute(&s, &[]).await.unwrap());
        wire_counts.push(w.execute(&p, &[]).await.unwrap());
    }

    let p = w2
        .prepare("UPDATE c SET score = score * $1, name = coalesce(name, $3) WHERE id <= $2")
        .await
        .unwrap();
    tosql_counts.push(
        w2.execute_params(&p, &[&2.0f64, &3i32, &"filled"])
            .await
            .unwrap(),
    );
    assert_eq!(&tosql_counts[..], &std_counts[1..6]);

    assert_eq!(std_counts, wire_counts);
    assert_eq!(&wire_counts[..8], &[1, 1, 1, 1, 1, 3, 1, 1]);
    let dump = |table: &str| {
        c.psql(
            "postgres",
            &format!("SELECT id, name, score::text FROM {table} ORDER BY id"),
        )
        .unwrap()
    };
    assert_eq!(dump("a"), dump("b"));
    c.psql("postgres", "DELETE FROM c WHERE id = 3").unwrap();
    assert_eq!(dump("a"), dump("c"));
    assert!(dump("b").contains("bob's"), "{}", dump("b"));
}

fn name_of(i: i32) -> Option<String> {
    Some(format!("n{i}"))
}

/// The error the runner would record for a tokio-postgres error: `CODE: message`.
fn std_error(e: &tokio_postgres::Error) -> (String, String) {
    let db = e.as_db_error().expect("a server error");
    (
        db.code().code().to_string(),
        format!("{}: {}", db.code().code(), db.message()),
    )
}

fn same(wire: &WireError, std: &(String, String)) {
    assert_eq!((&wire.code, &wire.message), (&std.0, &std.1));
    assert!(!wire.broken, "{wire:?}");
}

#[tokio::test]
async fn errors_are_classified_as_on_the_standard_path_and_the_connection_goes_on() {
    let c = start(ClusterOptions::default());
    let t = target(&c.dsn("postgres"));
    let std_conn = connect(&t).await.unwrap();
    let client = std_conn.client();
    let mut w = wire(&t).await;

    let std = std_error(&client.prepare("SELEC 1").await.unwrap_err());
    assert_eq!(std.0, "42601");
    same(&w.prepare("SELEC 1").await.unwrap_err(), &std);

    let std = std_error(&client.prepare("SELECT * FROM missing").await.unwrap_err());
    same(&w.prepare("SELECT * FROM missing").await.unwrap_err(), &std);

    let s = client.prepare("SELECT 1 / $1::int").await.unwrap();
    let std = std_error(&client.execute(&s, &[&0i32]).await.unwrap_err());
    assert_eq!(std.0, "22012");
    let p = w.prepare("SELECT 1 / $1::int").await.unwrap();
    same(&w.execute(&p, &[Value::Int(0)]).await.unwrap_err(), &std);

    // A value the server cannot read as the parameter's type: its error, not ours.
    let e = w.execute(&p, &[Value::Text("x")]).await.unwrap_err();
    assert_eq!(e.code, "22P02");

    // Still usable, still idle.
    assert_eq!(w.execute(&p, &[Value::Int(1)]).await.unwrap(), 1);
    assert_eq!(w.transaction_status(), TxStatus::Idle);
    assert!(!w.is_broken());
}

#[tokio::test]
async fn an_error_inside_a_block_leaves_status_failed_until_rollback() {
    let c = start(ClusterOptions::default());
    let t = target(&c.dsn("postgres"));
    let mut w = wire(&t).await;
    let div = w.prepare("SELECT 1 / $1::int").await.unwrap();

    w.simple_query("BEGIN").await.unwrap();
    assert_eq!(w.transaction_status(), TxStatus::InBlock);
    assert_eq!(w.execute(&div, &[Value::Int(1)]).await.unwrap(), 1);
    assert_eq!(w.transaction_status(), TxStatus::InBlock);
    let e = w.execute(&div, &[Value::Int(0)]).await.unwrap_err();
    assert_eq!(e.code, "22012");
    assert_eq!(w.transaction_status(), TxStatus::Failed);
    let e = w.execute(&div, &[Value::Int(1)]).await.unwrap_err();
    assert_eq!(e.code, "25P02");
    assert!(!e.broken);
    w.simple_query("ROLLBACK").await.unwrap();
    assert_eq!(w.transaction_status(), TxStatus::Idle);
    assert_eq!(w.execute(&div, &[Value::Int(1)]).await.unwrap(), 1);
}

#[tokio::test]
async fn statement_timeout_gives_57014_and_the_client_bound_cancels() {
    let c = start(ClusterOptions::default());
    let mut t = target(&c.dsn("postgres"));
    t.statement_timeout = Duration::from_secs(1);
    let mut w = wire(&t).await;
    assert_eq!(text(&mut w, "SHOW statement_timeout").await, "1s");
    let sleep = w.prepare("SELECT pg_sleep($1)").await.unwrap();
    let e = w.execute(&sleep, &[Value::Float(30.0)]).await.unwrap_err();
    assert_eq!(e.code, "57014");
    assert!(
        !e.broken && e.message.contains("statement timeout"),
        "{e:?}"
    );
    assert_eq!(w.execute(&sleep, &[Value::Int(0)]).await.unwrap(), 1);

    // A caller's bound shorter than the server's: pgopt cancels, the server answers 57014.
    t.statement_timeout = Duration::from_secs(60);
    let mut w = wire(&t).await;
    let sleep = w.prepare("SELECT pg_sleep($1)").await.unwrap();
    let e = w
        .execute_within(&sleep, &[Value::Int(30)], Duration::from_millis(500))
        .await
        .unwrap_err();
    assert_eq!(e.code, "57014");
    assert!(e.message.contains("cancelled by pgopt"), "{e:?}");
    assert!(!w.is_broken());
    assert_eq!(w.execute(&sleep, &[Value::Int(0)]).await.unwrap(), 1);
}

#[tokio::test]
async fn a_cancel_from_another_task_stops_a_running_statement() {
    let c = start(ClusterOptions::default());
    let t = target(&c.dsn("postgres"));
    let mut w = wire(&t).await;
    let cancel = w.cancel_handle();
    let sleep = w.prepare("SELECT pg_sleep($1)").await.unwrap();
    let running = tokio::spawn(async move {
        let r = w.execute(&sleep, &[Value::Int(30)]).await;
        (r, w)
    });
    // Wait (bounded) until the server runs it, then cancel from here.
    let std_conn = connect(&t).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = std_conn
            .query_one(
                "test",
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep($1)' \
                 AND state = 'active'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the sleep never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    cancel.cancel().await.unwrap();
    let (r, mut w) = running.await.unwrap();
    let e = r.unwrap_err();
    assert_eq!(e.code, "57014");
    assert!(
        e.message
            .contains("canceling statement due to user request"),
        "{e:?}"
    );
    assert!(!e.broken);
    // Well before the 30 s sleep would have ended ("does not hang", not a timing claim).
    assert!(started.elapsed() < Duration::from_secs(25));
    assert_eq!(text(&mut w, "SELECT 1").await, "1");
}

#[tokio::test]
async fn a_server_stopped_mid_run_breaks_the_connection() {
    let mut c = start(ClusterOptions::default());
    let t = target(&c.dsn("postgres"));
    let done = Arc::new(AtomicU64::new(0));
    let counter = done.clone();
    // On a thread of its own (whose runtime owns the socket: a tokio socket is driven by the
    // runtime it was made in), so that this test's thread can stop the server meanwhile.
    let runner = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut w = wire(&t).await;
            let one = w.prepare("SELECT 1").await.unwrap();
            loop {
                match w.execute(&one, &[]).await {
                    Ok(_) => counter.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        // Further requests fail at once, broken too.
                        let again = w.prepare("SELECT 1").await;
                        return (e, w.is_broken(), again.is_err_and(|e| e.broken));
                    }
                };
            }
        })
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while done.load(Ordering::Relaxed) < 100 {
        assert!(Instant::now() < deadline, "the loop never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    c.kill();
    let (e, marked_broken, again_broken) = runner.join().unwrap();
    assert!(e.broken, "{e:?}");
    assert!(
        e.code == "08006" || e.code.starts_with("57P"),
        "unexpected code: {e:?}"
    );
    assert!(marked_broken && again_broken);
}

/// The bound of the blocking requests in the tests below: far beyond any of their answers.
const BLOCKING_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn blocking_requests_answer_as_the_async_ones_and_mix_with_them_on_one_connection() {
    let c = start(ClusterOptions::default());
    for dsn in [c.dsn("postgres"), c.socket_dsn("postgres")] {
        let t = target(&dsn);
        let mut w = wire(&t).await;
        let one = w.prepare("SELECT 1").await.unwrap();
        let series = w
            .prepare("SELECT g, repeat('x', 100) FROM generate_series(1, $1) g")
            .await
            .unwrap();
        let div = w.prepare("SELECT 1 / $1::int").await.unwrap();
        let n = 100_000i32;
        for _ in 0..3 {
            // Blocking and async requests in turn: neither loses an answer of the other.
            assert_eq!(
                w.blocking_execute_params(&one, &[], BLOCKING_LIMIT)
                    .unwrap(),
                1
            );
            assert_eq!(w.execute(&one, &[]).await.unwrap(), 1);
            // An answer of some MB: many reads on the blocking path.
            assert_eq!(
                w.blocking_execute_params(&series, &[&n], BLOCKING_LIMIT)
                    .unwrap(),
                n as u64
            );
            assert_eq!(
                w.execute(&series, &[Value::Int(n.into())]).await.unwrap(),
                n as u64
            );
            assert_eq!(
                w.blocking_execute(&series, &[Value::Int(3)], BLOCKING_LIMIT)
                    .unwrap(),
                3
            );
            assert_eq!(text(&mut w, "SELECT 'async'").await, "async");
        }

        // Errors and transaction status as on the async path; ROLLBACK through the simple
        // protocol.
        assert_eq!(w.blocking_simple_query("BEGIN", BLOCKING_LIMIT).unwrap(), 0);
        assert_eq!(w.transaction_status(), TxStatus::InBlock);
        let e = w
            .blocking_execute(&div, &[Value::Int(0)], BLOCKING_LIMIT)
            .unwrap_err();
        assert_eq!((e.code.as_str(), e.broken), ("22012", false), "{e:?}");
        assert_eq!(w.transaction_status(), TxStatus::Failed);
        let e = w
            .blocking_execute_params(&div, &[&1i32], BLOCKING_LIMIT)
            .unwrap_err();
        assert_eq!(e.code, "25P02");
        w.blocking_simple_query("ROLLBACK", BLOCKING_LIMIT).unwrap();
        assert_eq!(w.transaction_status(), TxStatus::Idle);
        assert_eq!(
            w.blocking_execute(&div, &[Value::Int(1)], BLOCKING_LIMIT)
                .unwrap(),
            1
        );
        // A value that does not fit is the client's error, and the connection goes on.
        let e = w
            .blocking_execute_params(&div, &[&"x"], BLOCKING_LIMIT)
            .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.broken),
            ("client_error", false),
            "{e:?}"
        );
        assert_eq!(
            w.blocking_execute_params(&one, &[], BLOCKING_LIMIT)
                .unwrap(),
            1
        );
        assert!(!w.is_broken());
    }
}

#[tokio::test]
async fn a_blocking_request_without_an_answer_within_its_limit_gives_the_connection_up() {
    let c = start(ClusterOptions::default());
    let t = target(&c.dsn("postgres"));
    let mut w = wire(&t).await;
    let sleep = w.prepare("SELECT pg_sleep($1)").await.unwrap();
    let e = w
        .blocking_execute(&sleep, &[Value::Int(30)], Duration::from_millis(300))
        .unwrap_err();
    assert!(e.broken, "{e:?}");
    assert_eq!(e.code, "08006");
    assert!(e.message.contains("no answer within 0.3s"), "{e:?}");
    assert!(w.is_broken());
    // Given up for good: later requests fail at once instead of reading a stale answer.
    let e = w
        .blocking_simple_query("ROLLBACK", BLOCKING_LIMIT)
        .unwrap_err();
    assert!(e.broken, "{e:?}");
    assert!(w.prepare("SELECT 1").await.unwrap_err().broken);
}

#[tokio::test]
async fn a_blocking_request_on_a_terminated_session_breaks_the_connection() {
    let c = start(ClusterOptions::default());
    let t = target(&c.dsn("postgres"));
    let mut w = wire(&t).await;
    let one = w.prepare("SELECT 1").await.unwrap();
    let pid: i32 = text(&mut w, "SELECT pg_backend_pid()")
        .await
        .parse()
        .unwrap();
    let std_conn = connect(&t).await.unwrap();
    std_conn
        .execute("test", "SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    // The server's FATAL 57P01, or the closed socket when that was read first.
    let e = w
        .blocking_execute_params(&one, &[], BLOCKING_LIMIT)
        .unwrap_err();
    assert!(e.broken, "{e:?}");
    assert!(e.code == "57P01" || e.code == "08006", "{e:?}");
    assert!(w.is_broken());
}

#[tokio::test]
async fn targets_that_need_tls_are_sent_to_the_standard_path() {
    // sslmode=require: refused before any connect (nothing listens there).
    let port = pgopt::embedded::free_port().unwrap();
    let t = target(&format!(
        "postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=require"
    ));
    let e = WireConn::connect(&t, &t.hosts[0]).await.unwrap_err();
    assert!(matches!(e, ConnectError::NeedsTls(_)), "{e:?}");
    assert!(
        e.to_string().starts_with("TLS: use the standard path"),
        "{e}"
    );

    let c = start(ClusterOptions {
        ssl: true,
        ..Default::default()
    });
    // prefer, and the server offers TLS: the standard path takes it.
    let t = target(&format!(
        "postgresql://postgres@127.0.0.1:{}/postgres?sslmode=prefer",
        c.port()
    ));
    let e = WireConn::connect(&t, &t.hosts[0]).await.unwrap_err();
    assert!(matches!(e, ConnectError::NeedsTls(_)), "{e:?}");
    // disable: plaintext, on the lean path.
    let t = target(&format!(
        "postgresql://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        c.port()
    ));
    let mut w = wire(&t).await;
    assert_eq!(
        text(
            &mut w,
            "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        .await,
        "false"
    );
    // A unix socket never uses TLS, whatever sslmode says (as the standard path).
    let t = target(&format!(
        "host={} port={} user=postgres sslmode=require",
        c.socket_dir().display(),
        c.port()
    ));
    let mut w = wire(&t).await;
    assert_eq!(text(&mut w, "SELECT 1").await, "1");

    // prefer on a server without TLS: plaintext after the server says no.
    let plain = start(ClusterOptions::default());
    let t = target(&format!(
        "postgresql://postgres@127.0.0.1:{}/postgres?sslmode=prefer",
        plain.port()
    ));
    let mut w = wire(&t).await;
    assert_eq!(text(&mut w, "SELECT 1").await, "1");
}

/// Runs `script` through `pgopt bench` with one client on `path`; returns the result, the
/// tables' contents and pgopt's log.
fn bench_on_path(c: &Cluster, script: &str, path: &str) -> (BenchResult, String, String) {
    c.psql(
        "postgres",
        "DROP TABLE IF EXISTS acc, hist; \
         CREATE TABLE acc (id int PRIMARY KEY, bal bigint NOT NULL); \
         INSERT INTO acc SELECT g, 0 FROM generate_series(1, 10) g; \
         CREATE TABLE hist (id int, delta double precision, note text);",
    )
    .unwrap();
    let dsn = c.dsn("postgres");
    let o = pgopt_cmd(&[
        "bench",
        &dsn,
        "--workload",
        script,
        "--clients",
        "1",
        "--transactions",
        "300",
        "--seed",
        "7",
        "--format",
        "json",
        "--client-path",
        path,
    ])
    .env("PGOPT_LOG", "pgopt=info")
    .output()
    .expect("run pgopt");
    let result: BenchResult = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not a bench result ({e}):\nstdout: {}\nstderr: {}",
            stdout(&o),
            stderr(&o)
        )
    });
    let tables = c
        .psql(
            "postgres",
            "SELECT id, bal FROM acc ORDER BY id; \
             SELECT id, delta, note, count(*) FROM hist GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;",
        )
        .unwrap();
    (result, tables, stderr(&o))
}

#[test]
fn a_script_gives_the_same_counts_and_table_state_on_the_lean_and_the_standard_path() {
    let c = start(ClusterOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("transfer.sql");
    // A transaction of several statements with int, double and text values, and a division
    // by zero whenever id is 3 (rolled back, counted under 22012).
    std::fs::write(
        &script,
        "\\set id random(1, 10)\n\
         \\set delta random(-50, 50)\n\
         BEGIN;\n\
         UPDATE acc SET bal = bal + :delta WHERE id = :id;\n\
         SELECT 10 / (:id - 3);\n\
         INSERT INTO hist (id, delta, note) VALUES (:id, :delta * 0.5, 'c' || CAST(:id AS text));\n\
         END;\n",
    )
    .unwrap();
    let script = script.display().to_string();
    let (standard, std_tables, std_log) = bench_on_path(&c, &script, "standard");
    let (lean, lean_tables, lean_log) = bench_on_path(&c, &script, "lean");
    assert!(std_log.contains("on tokio-postgres"), "{std_log}");
    assert!(lean_log.contains("lean protocol path"), "{lean_log}");

    assert_eq!(lean.transactions, standard.transactions);
    assert_eq!(lean.errors, standard.errors);
    let per_statement = |r: &BenchResult| -> Vec<(u64, Vec<(String, u64)>)> {
        r.scripts[0]
            .statements
            .iter()
            .map(|s| (s.count, s.errors.clone().into_iter().collect()))
            .collect()
    };
    assert_eq!(per_statement(&lean), per_statement(&standard));
    assert_eq!(lean.scripts[0].errors, standard.scripts[0].errors);
    assert_eq!(lean_tables, std_tables);
    // The script did what it says: some transactions failed and left nothing behind.
    let failed = standard.scripts[0]
        .errors
        .get("22012")
        .copied()
        .unwrap_or(0);
    assert!(
        failed > 0 && failed < 300,
        "{:?}",
        standard.scripts[0].errors
    );
    let rows: u64 = c
        .psql("postgres", "SELECT count(*) FROM hist")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(rows, 300 - failed);
}

#[test]
fn a_lean_client_whose_backend_stops_answering_gives_it_up_replaces_it_and_goes_on() {
    let c = start(ClusterOptions::default());
    let dsn = c.dsn("postgres");
    let mut run = pgopt_cmd(&[
        "bench",
        &dsn,
        "--workload",
        "select1",
        "--clients",
        "1",
        "--duration",
        "12s",
        "--statement-timeout",
        "1",
        "--format",
        "json",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // The client's backend, once the run is going.
    let find = "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgopt' \
                AND backend_type = 'client backend' AND query = 'SELECT 1'";
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid: i32 = loop {
        let out = c.psql("postgres", find).unwrap();
        if let Ok(pid) = out.trim().parse() {
            break pid;
        }
        assert!(Instant::now() < deadline, "the run never got going: {out}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Stopped, it answers neither the statement, nor statement_timeout, nor a cancel request.
    // SAFETY: signals a process of this test's own cluster by its pid.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let waited = Instant::now();
    let out = loop {
        if run.try_wait().unwrap().is_some() {
            break run.wait_with_output().unwrap();
        }
        if waited.elapsed() > Duration::from_secs(60) {
            let _ = run.kill();
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGCONT) };
            panic!("pgopt bench hangs on a backend that stopped answering");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // SAFETY: as above; it finds its client gone and exits.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: BenchResult = serde_json::from_slice(&out.stdout).unwrap();
    // The lost execution is counted as a lost connection's (08006) and the run went on, on
    // a new connection, after the bound (statement_timeout 1 s + slack + the cancel's grace).
    assert_eq!(
        r.errors_by_code().get("08006").copied(),
        Some(1),
        "{:?}",
        r.errors_by_code()
    );
    assert!(r.transactions > 0);
    assert_eq!(r.connections_lost, 0, "the connection was replaced");
}
