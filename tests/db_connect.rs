//! The connection layer against real embedded clusters: multi-host, target roles, auth,
//! timeouts, discovery, TLS modes, statement timeouts and cancel.

use std::time::{Duration, Instant};

use pgopt::db::discover::{discover, pick_primary, ProbeOutcome};
use pgopt::db::{connect, Conn, TargetRole};
use pgopt::embedded::{free_port, Cluster, ClusterOptions};
use pgopt::Error;

mod hermetic;
use hermetic::target;

const PASSWORD: &str = "Sup3r-S3cret-pw";

fn start(opts: ClusterOptions) -> Cluster {
    Cluster::start(opts).expect("starting an embedded cluster")
}

async fn sql_bool(conn: &Conn, sql: &str) -> bool {
    conn.query_one("test", sql, &[]).await.unwrap().get(0)
}

async fn sql_text(conn: &Conn, sql: &str) -> String {
    conn.query_one("test", sql, &[]).await.unwrap().get(0)
}

fn no_password(e: &Error) {
    for s in [e.to_string(), format!("{e:?}")] {
        assert!(!s.contains(PASSWORD), "password leaked: {s}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_first_host_is_skipped_and_session_is_set_up() {
    let c = start(ClusterOptions::default());
    let dead = free_port().unwrap();
    let t = target(&format!(
        "host=127.0.0.1,127.0.0.1 port={dead},{} user=postgres dbname=postgres",
        c.port()
    ));
    let conn = connect(&t).await.unwrap();
    assert_eq!(conn.port, c.port());
    assert!(!conn.in_recovery);
    assert!(conn.server_version_num >= 130000);
    assert_eq!(sql_text(&conn, "SHOW application_name").await, "pgopt");
    assert_eq!(sql_text(&conn, "SHOW statement_timeout").await, "30s");

    // Every host dead: a Connect error that lists each host and says what to do.
    let dead2 = free_port().unwrap();
    let t = target(&format!(
        "host=127.0.0.1,127.0.0.1 port={dead},{dead2} user=postgres password={PASSWORD}"
    ));
    let e = connect(&t).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Connect(_)), "{e:?}");
    assert!(text.contains(&format!("127.0.0.1:{dead}")), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{dead2}")), "{text}");
    assert!(text.contains("pgopt embedded start"), "{text}");
    no_password(&e);
}

#[tokio::test(flavor = "multi_thread")]
async fn unix_socket_host_connects_without_tls() {
    let c = start(ClusterOptions {
        ssl: true,
        ..Default::default()
    });
    let t = target(&format!(
        "host={} port={} user=postgres sslmode=require",
        c.socket_dir().display(),
        c.port()
    ));
    let conn = connect(&t).await.unwrap();
    assert_eq!(conn.database, "postgres");
    assert!(
        !sql_bool(
            &conn,
            "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)"
        )
        .await
    );
}

/// The target_session_attrs matrix of PostgreSQL's 001_stream_rep.pl.
#[tokio::test(flavor = "multi_thread")]
async fn target_roles_against_primary_and_standby() {
    let primary = start(ClusterOptions::default());
    let standby = primary.standby().unwrap();
    let (p, s) = (primary.port(), standby.port());
    let dsn = |ports: &[u16], role: &str| {
        let hosts = vec!["127.0.0.1"; ports.len()].join(",");
        let ports = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        format!(
            "host={hosts} port={ports} user=postgres dbname=postgres target_session_attrs={role}"
        )
    };
    let cases: &[(&[u16], &str, u16)] = &[
        (&[p, s], "any", p),
        (&[s, p], "any", s),
        (&[p, s], "read-write", p),
        (&[s, p], "read-write", p),
        (&[p, s], "primary", p),
        (&[s, p], "primary", p),
        (&[p, s], "read-only", s),
        (&[s, p], "read-only", s),
        (&[p, s], "standby", s),
        (&[s, p], "standby", s),
        (&[p, s], "prefer-standby", s),
        (&[s, p], "prefer-standby", s),
        // No standby at all: prefer-standby falls back to any.
        (&[p], "prefer-standby", p),
    ];
    for (ports, role, want) in cases {
        let conn = connect(&target(&dsn(ports, role)))
            .await
            .unwrap_or_else(|e| panic!("{ports:?} {role}: {e}"));
        assert_eq!(conn.port, *want, "{ports:?} {role}");
        assert_eq!(conn.in_recovery, *want == s, "{ports:?} {role}");
    }
    // A role no host has: a Connect error that says so.
    for (ports, role) in [(&[p][..], "standby"), (&[s][..], "primary")] {
        let e = connect(&target(&dsn(ports, role))).await.unwrap_err();
        assert!(matches!(e, Error::Connect(_)), "{e:?}");
        assert!(e.to_string().contains("No host has the role"), "{e}");
    }
    // A primary that is read-only (default_transaction_read_only) is not taken for writes.
    let read_only = start(ClusterOptions {
        settings: vec![("default_transaction_read_only".into(), "on".into())],
        ..Default::default()
    });
    let r = read_only.port();
    let conn = connect(&target(&dsn(&[r, p], "primary"))).await.unwrap();
    assert_eq!(conn.port, p);
    let conn = connect(&target(&dsn(&[r, p], "any"))).await.unwrap();
    assert_eq!(conn.port, r);
    assert!(conn.transaction_read_only && !conn.in_recovery);
    let e = connect(&target(&dsn(&[r], "primary"))).await.unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");

    // The role set in code wins over nothing in the DSN.
    let mut t = target(&dsn(&[p, s], "any"));
    t.role = TargetRole::Standby;
    assert_eq!(connect(&t).await.unwrap().port, s);

    // Discovery reports both, with version and role.
    for (port, in_rec) in [(p, false), (s, true)] {
        let probes = discover("127.0.0.1", port..=port, &target("user=postgres")).await;
        match &probes[0].outcome {
            ProbeOutcome::Answered {
                in_recovery,
                version_num,
                ..
            } => {
                assert_eq!(*in_recovery, in_rec);
                assert!(*version_num >= 130000);
            }
            other => panic!("{port}: {other:?}"),
        }
    }

    // After promotion the old standby serves as a primary.
    standby.promote().unwrap();
    let conn = connect(&target(&dsn(&[s], "primary"))).await.unwrap();
    assert_eq!(conn.port, s);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_stops_at_the_first_host() {
    let secured = start(ClusterOptions {
        password: Some(PASSWORD.into()),
        ..Default::default()
    });
    let open = start(ClusterOptions::default());
    // The right password works over SCRAM.
    let good = target(&format!(
        "host=127.0.0.1 port={} user=postgres password={PASSWORD}",
        secured.port()
    ));
    connect(&good).await.unwrap();
    let t = target(&secured.dsn("postgres"));
    connect(&t).await.unwrap();

    // A wrong password: Auth, and the next (good, trusting) host is not tried.
    let t = target(&format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres password=wrong-{PASSWORD}",
        secured.port(),
        open.port()
    ));
    let e = connect(&t).await.unwrap_err();
    match &e {
        Error::Auth { port, user, .. } => {
            assert_eq!(*port, secured.port());
            assert_eq!(user, "postgres");
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    no_password(&e);

    // No password at all: also Auth, with a clear message.
    let t = target(&format!(
        "host=127.0.0.1 port={} user=postgres",
        secured.port()
    ));
    let e = connect(&t).await.unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
    assert!(e.to_string().contains("no"), "{e}");

    // Discovery sees an authentication failure as such.
    let bad = target(&format!("user=postgres password=wrong-{PASSWORD}"));
    let probes = discover("127.0.0.1", secured.port()..=secured.port(), &bad).await;
    assert_eq!(probes[0].outcome, ProbeOutcome::AuthFailed);
}

#[tokio::test(flavor = "multi_thread")]
async fn password_file_supplies_the_password() {
    use std::os::unix::fs::PermissionsExt;
    let c = start(ClusterOptions {
        password: Some(PASSWORD.into()),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    std::fs::write(
        &file,
        format!("127.0.0.1:{}:*:postgres:{PASSWORD}\n", c.port()),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let t = target(&format!(
        "host=127.0.0.1 port={} user=postgres passfile={}",
        c.port(),
        file.display()
    ));
    connect(&t).await.unwrap();
    // World-readable: ignored like libpq, so the server's password request goes unanswered.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = connect(&t).await.unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
    no_password(&e);
}

/// A listener that accepts connections and never says a word.
async fn silent_listener() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_host_times_out_within_connect_timeout() {
    let (port, task) = silent_listener().await;
    let t = target(&format!(
        "host=127.0.0.1 port={port} user=postgres password={PASSWORD} connect_timeout=2"
    ));
    let started = Instant::now();
    let e = connect(&t).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(
        took < Duration::from_secs(2) + Duration::from_secs(5),
        "{took:?}"
    );
    no_password(&e);

    // The same silent host first in a list: skipped after the timeout, the next one used.
    let c = start(ClusterOptions::default());
    let t = target(&format!(
        "host=127.0.0.1,127.0.0.1 port={port},{} user=postgres connect_timeout=2 sslmode=disable",
        c.port()
    ));
    let started = Instant::now();
    let conn = connect(&t).await.unwrap();
    assert_eq!(conn.port, c.port());
    assert!(started.elapsed() < Duration::from_secs(2) + Duration::from_secs(5));
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_finds_the_cluster_in_a_range() {
    let c = start(ClusterOptions::default());
    let port = c.port();
    let from = port.saturating_sub(3).max(1);
    let to = port.saturating_add(3);
    let (silent, task) = silent_listener().await;
    let started = Instant::now();
    let probes = discover("127.0.0.1", from..=to, &target("user=postgres")).await;
    assert!(started.elapsed() < Duration::from_secs(2) + Duration::from_secs(5));
    assert_eq!(probes.len(), usize::from(to - from) + 1);
    let want = c.psql("postgres", "SHOW server_version_num").unwrap();
    let ours = probes.iter().find(|p| p.port == port).unwrap();
    match &ours.outcome {
        ProbeOutcome::Answered {
            version_num,
            in_recovery,
            version,
        } => {
            assert_eq!(version_num.to_string(), want);
            assert!(!in_recovery);
            assert!(version.starts_with(&(version_num / 10000).to_string()));
        }
        other => panic!("{other:?}"),
    }
    // Other tests' clusters may sit in the range too: the pick must be a primary that answered.
    let picked = pick_primary(&probes).unwrap();
    assert!(matches!(
        probes.iter().find(|p| p.port == picked).unwrap().outcome,
        ProbeOutcome::Answered {
            in_recovery: false,
            ..
        }
    ));
    // A port where nothing listens, and one where something silent does.
    let dead = free_port().unwrap();
    let probes = discover("127.0.0.1", dead..=dead, &target("user=postgres")).await;
    assert_eq!(probes[0].outcome, ProbeOutcome::NoServer);
    let probes = discover("127.0.0.1", silent..=silent, &target("user=postgres")).await;
    assert!(
        matches!(probes[0].outcome, ProbeOutcome::Error(_)),
        "{probes:?}"
    );
    task.abort();
}

async fn uses_tls(conn: &Conn) -> bool {
    sql_bool(
        conn,
        "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
    )
    .await
}

/// A CA certificate that signed nothing the server has.
fn other_ca(dir: &std::path::Path) -> std::path::PathBuf {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "some other CA");
    let ca = params.self_signed(&key).unwrap();
    let path = dir.join("other-ca.crt");
    std::fs::write(&path, ca.pem()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_modes_against_a_self_signed_cluster() {
    let c = start(ClusterOptions {
        ssl: true,
        ..Default::default()
    });
    let plain = start(ClusterOptions::default());
    let ca = c.ca_cert().unwrap().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let wrong_ca = other_ca(dir.path()).display().to_string();
    let port = c.port();
    let dsn = |host: &str, extra: &str| {
        format!("host={host} port={port} user=postgres dbname=postgres {extra}")
    };
    let ok = |d: String| async move {
        let conn = connect(&target(&d))
            .await
            .unwrap_or_else(|e| panic!("{d}: {e}"));
        uses_tls(&conn).await
    };
    let fails = |d: String| async move {
        let e = connect(&target(&d)).await.unwrap_err();
        assert!(matches!(e, Error::Connect(_)), "{d}: {e:?}");
        e.to_string()
    };

    assert!(!ok(dsn("127.0.0.1", "sslmode=disable")).await);
    assert!(ok(dsn("127.0.0.1", "sslmode=prefer")).await);
    assert!(ok(dsn("127.0.0.1", "sslmode=allow")).await);
    assert!(ok(dsn("127.0.0.1", "sslmode=require")).await);
    assert!(
        ok(dsn(
            "127.0.0.1",
            &format!("sslmode=verify-ca sslrootcert={ca}")
        ))
        .await
    );
    assert!(
        ok(dsn(
            "localhost",
            &format!("sslmode=verify-full sslrootcert={ca}")
        ))
        .await
    );
    assert!(
        ok(dsn(
            "127.0.0.1",
            &format!("sslmode=verify-full sslrootcert={ca}")
        ))
        .await
    );
    // verify-ca does not check the name; verify-full does.
    let wrong_name = format!("hostaddr=127.0.0.1 sslrootcert={ca}");
    assert!(
        ok(dsn(
            "wrong.example",
            &format!("{wrong_name} sslmode=verify-ca")
        ))
        .await
    );
    let e = fails(dsn(
        "wrong.example",
        &format!("{wrong_name} sslmode=verify-full"),
    ))
    .await;
    assert!(e.contains("certificate"), "{e}");
    assert!(e.contains("sslrootcert"), "{e}");
    // The wrong root fails verify-ca, and require with a root file behaves as verify-ca.
    let e = fails(dsn(
        "127.0.0.1",
        &format!("sslmode=verify-ca sslrootcert={wrong_ca}"),
    ))
    .await;
    assert!(e.contains("certificate"), "{e}");
    fails(dsn(
        "127.0.0.1",
        &format!("sslmode=require sslrootcert={wrong_ca}"),
    ))
    .await;

    // Without TLS on the server: prefer falls back to plain, require fails.
    let plain_dsn = |mode: &str| {
        format!(
            "host=127.0.0.1 port={} user=postgres sslmode={mode}",
            plain.port()
        )
    };
    assert!(!ok(plain_dsn("prefer")).await);
    fails(plain_dsn("require")).await;

    // A cancel request goes over TLS too.
    let conn = connect(&target(&dsn("127.0.0.1", "sslmode=require")))
        .await
        .unwrap();
    let started = Instant::now();
    let (res, ()) = tokio::join!(conn.query("sleeping", "SELECT pg_sleep(20)", &[]), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        conn.cancel_running().await;
    });
    let e = res.unwrap_err();
    assert_eq!(e.sqlstate().map(|c| c.code()), Some("57014"), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(uses_tls(&conn).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn statement_timeout_cancels_and_the_connection_survives() {
    let c = start(ClusterOptions::default());
    let mut t = target(&c.dsn("postgres"));
    t.statement_timeout = Duration::from_secs(1);
    let conn = connect(&t).await.unwrap();
    assert_eq!(sql_text(&conn, "SHOW statement_timeout").await, "1s");
    let started = Instant::now();
    let e = conn
        .query("a long statement", "SELECT pg_sleep(10)", &[])
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate().map(|c| c.code()), Some("57014"), "{e:?}");
    assert!(e.to_string().contains("a long statement"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(1) + Duration::from_secs(5));
    assert!(!conn.is_closed());
    let one: i32 = conn
        .query_one("after", "SELECT 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
}

/// A listener that answers every connection like a web server, then hangs up.
async fn http_listener() -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\
                          Connection: close\r\n\r\nbad request",
                    )
                    .await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_role_is_not_reported_as_a_password_problem() {
    let c = start(ClusterOptions::default());
    let t = target(&format!(
        "host=127.0.0.1 port={} user=nosuchrole dbname=postgres sslmode=disable",
        c.port()
    ));
    let e = connect(&t).await.unwrap_err();
    assert!(matches!(e, Error::NotAuthorized { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("\"nosuchrole\" does not exist"), "{text}");
    assert!(!text.contains("password"), "{text}");

    // Discovery says the same: the server refused the role, not the password.
    let probes = discover("127.0.0.1", c.port()..=c.port(), &t).await;
    match &probes[0].outcome {
        ProbeOutcome::NotAuthorized(why) => assert!(why.contains("nosuchrole"), "{why}"),
        other => panic!("expected NotAuthorized, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_that_is_not_postgresql_says_so() {
    let (port, task) = http_listener().await;
    let t = target(&format!(
        "host=127.0.0.1 port={port} user=postgres sslmode=disable connect_timeout=5"
    ));
    let e = connect(&t).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Connect(_)), "{e:?}");
    assert!(text.contains("not a PostgreSQL server"), "{text}");
    assert!(!text.contains("Is the server running"), "{text}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_name_that_does_not_resolve_says_so() {
    let t = target("host=no-such-host.invalid port=5432 user=postgres connect_timeout=5");
    let e = connect(&t).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Connect(_)), "{e:?}");
    assert!(text.contains("does not resolve"), "{text}");
    assert!(!text.contains("Is the server running"), "{text}");
}

#[tokio::test]
async fn query_each_types_rows_as_they_come_and_stops_at_the_first_error() {
    let c = start(ClusterOptions::default());
    let conn = connect(&target(&c.dsn("postgres"))).await.unwrap();
    let doubled = conn
        .query_each(
            "test",
            "SELECT g FROM generate_series(1, $1::int) g",
            &[&5i32],
            |r| Ok(r.get::<_, i32>(0) * 2),
        )
        .await
        .unwrap();
    assert_eq!(doubled, vec![2, 4, 6, 8, 10]);
    // An error from the mapping ends the read with that error...
    let mut seen = 0;
    let err = conn
        .query_each(
            "test",
            "SELECT g FROM generate_series(1, 100000) g",
            &[],
            |r| {
                seen += 1;
                if r.get::<_, i32>(0) == 3 {
                    Err(Error::Internal("row 3 is bad".into()))
                } else {
                    Ok(())
                }
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row 3 is bad"), "{err}");
    assert_eq!(seen, 3, "no row after the failing one is typed");
    // ...and the connection is usable afterwards.
    assert!(sql_bool(&conn, "SELECT true").await);
}
