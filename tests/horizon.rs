//! The xmin horizon: the model on snapshots built in code, and the issue's case (a prepared
//! transaction, an idle writer and a session waiting on the writer's row lock) on a real
//! cluster. The holders named are the prepared transaction and the writer, never the waiter.

mod common;

use std::time::Duration;

use common::*;
use pgopt::advise::horizon::{HolderKind, Horizon, SessionRole, AT_HORIZON_TOLERANCE_XIDS};
use pgopt::advise::{advise, Finding, Severity, Thresholds};
use pgopt::collect::CollectOptions;
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::snapshot::{PreparedXact, ReplicationSender, ReplicationSlot, Snapshot};
use tokio_postgres::{Client, NoTls};

// ---------- the model, on snapshots built in code ----------

fn prepared(gid: &str, xid_age: i64, age_seconds: f64) -> PreparedXact {
    PreparedXact {
        gid: gid.to_string(),
        owner: Some("app_user".to_string()),
        database: Some("app".to_string()),
        age_seconds,
        xid_age: Some(xid_age),
        locks: 3,
    }
}

fn slot(name: &str, active: bool, xmin_age: Option<i64>, catalog: Option<i64>) -> ReplicationSlot {
    ReplicationSlot {
        name: name.to_string(),
        slot_type: if catalog.is_some() {
            "logical"
        } else {
            "physical"
        }
        .to_string(),
        active,
        xmin_age,
        catalog_xmin_age: catalog,
        retained_bytes: Some(MIB),
        ..Default::default()
    }
}

/// The issue's case on the clean snapshot: prepared transaction 'lost' (XID age `age`), an
/// idle writer pid 201 (XID age `age` - 2, no snapshot), and pid 202 waiting on the writer
/// with the snapshot it took behind the prepared transaction (xmin age `age`).
fn issue_case(age: i64) -> Snapshot {
    let mut snap = clean_snapshot();
    snap.prepared_xacts = Some(vec![prepared("lost", age, 3600.0)]);
    let mut writer = session(201, "idle in transaction");
    writer.backend_xmin_age = None;
    writer.backend_xid_age = Some(age - 2);
    writer.xact_age_seconds = Some(3500.0);
    writer.state_age_seconds = Some(3500.0);
    writer.query = Some("UPDATE accounts SET balance = balance - 1 WHERE id = 1".to_string());
    let mut waiter = session(202, "active");
    waiter.backend_xmin_age = Some(age);
    waiter.backend_xid_age = Some(40);
    waiter.xact_age_seconds = Some(3000.0);
    waiter.query_age_seconds = Some(3000.0);
    waiter.wait_event_type = Some("Lock".to_string());
    waiter.wait_event = Some("transactionid".to_string());
    waiter.blocked_by = vec![201];
    sessions_mut(&mut snap).extend([writer, waiter]);
    snap
}

fn names(f: &Finding, key: &str) -> Vec<String> {
    f.evidence[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Whether `text` names session `pid` (not a longer pid that starts with the same digits).
fn names_pid(text: &str, pid: i32) -> bool {
    let needles = [format!("pid {pid}"), format!("pg_terminate_backend({pid})")];
    needles.iter().any(|n| {
        text.match_indices(n.as_str()).any(|(i, _)| {
            !text[i + n.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
    })
}

#[test]
fn a_waiters_snapshot_behind_a_prepared_xid_is_a_victim_and_the_holders_are_named() {
    let mut snap = issue_case(150_000_000);
    db_mut(&mut snap, "app").frozenxid_age = 190_000_000;
    let h = Horizon::of(&snap);
    assert_eq!(h.age(), Some(150_000_000));
    let at: Vec<&str> = h.at_horizon().map(|c| c.name.as_str()).collect();
    assert_eq!(at, ["prepared transaction 'lost'", "session pid 201"]);
    assert!(
        matches!(h.session(202), SessionRole::Victim(v) if v.follows == "prepared transaction 'lost'")
    );
    assert!(matches!(
        h.session(201),
        SessionRole::Cause { at_horizon: true, holder } if holder.kind == HolderKind::Session { pid: 201, holds_xid: true }
    ));

    let f = single(&snap, "xid_wraparound");
    let held = names(&f, "held_back_by");
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held[0].starts_with("prepared transaction 'lost' (XID age 150000000"));
    assert!(held[1].starts_with(
        "session pid 201 (XID age 149999998, idle in transaction for 58.3 min after writing"
    ));
    for text in [&f.message, &f.next_step] {
        assert!(!names_pid(text, 202), "the waiter is named: {text}");
        assert!(names_pid(text, 201), "{text}");
    }
    assert!(
        f.next_step
            .contains("ROLLBACK PREPARED 'lost' in database app"),
        "{}",
        f.next_step
    );
    assert!(
        f.next_step.contains("SELECT pg_terminate_backend(201)"),
        "{}",
        f.next_step
    );
    // The waiter shows only as what it is: a follower.
    let followers = names(&f, "not_holding_back");
    assert_eq!(followers.len(), 1);
    assert!(followers[0].contains("only follows prepared transaction 'lost'"));
}

#[test]
fn holders_are_ranked_oldest_first_and_ties_within_the_tolerance_share_the_horizon() {
    let mut snap = clean_snapshot();
    let s = sessions_mut(&mut snap);
    s[0].backend_xmin_age = None;
    s[0].backend_xid_age = Some(50_000);
    s[1].backend_xmin_age = None;
    s[1].backend_xid_age = Some(50_000 - AT_HORIZON_TOLERANCE_XIDS);
    let mut late = session(103, "active");
    late.backend_xid_age = Some(50_000 - AT_HORIZON_TOLERANCE_XIDS - 1);
    late.backend_xmin_age = None;
    s.push(late);
    snap.prepared_xacts = Some(vec![
        prepared("b", 50_000, 10.0),
        prepared("a", 50_000, 10.0),
    ]);
    let h = Horizon::of(&snap);
    let all: Vec<(&str, i64)> = h.causes.iter().map(|c| (c.name.as_str(), c.age)).collect();
    assert_eq!(
        &all[..5],
        [
            ("prepared transaction 'a'", 50_000),
            ("prepared transaction 'b'", 50_000),
            ("session pid 101", 50_000),
            ("session pid 102", 49_000),
            ("session pid 103", 48_999),
        ]
    );
    let at: Vec<&str> = h.at_horizon().map(|c| c.name.as_str()).collect();
    assert_eq!(
        at,
        [
            "prepared transaction 'a'",
            "prepared transaction 'b'",
            "session pid 101",
            "session pid 102"
        ]
    );
    assert!(matches!(
        h.session(103),
        SessionRole::Cause {
            at_horizon: false,
            ..
        }
    ));
}

#[test]
fn a_snapshot_newer_than_the_horizon_is_never_named_as_a_cause() {
    // The horizon is an inactive slot; a session's snapshot is newer; a writer's XID is newer
    // too but stays stuck until released.
    let mut snap = clean_snapshot();
    table_mut(&mut snap, "orders").frozenxid_age = 190_000_000;
    snap.replication.as_mut().unwrap().slots =
        vec![slot("old_sub", false, None, Some(180_000_000))];
    let s = sessions_mut(&mut snap);
    s[0].backend_xmin_age = Some(150_000_000);
    s[1].backend_xmin_age = None;
    s[1].backend_xid_age = Some(140_000_000);
    let h = Horizon::of(&snap);
    assert_eq!(h.causes[0].name, "replication slot old_sub");
    assert_eq!(
        h.causes[0].release_sql.as_deref(),
        Some("SELECT pg_drop_replication_slot('old_sub');")
    );
    assert!(matches!(
        h.session(101),
        SessionRole::Cause {
            at_horizon: false,
            ..
        }
    ));
    let all = run(&snap);
    let f = of_rule(&all, "xid_wraparound")
        .into_iter()
        .find(|f| f.object == "public.orders")
        .unwrap();
    let held = names(f, "held_back_by");
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held[0].starts_with(
        "replication slot old_sub (inactive logical slot, catalog_xmin age 180000000"
    ));
    assert!(held[1].starts_with("session pid 102 (XID age 140000000"));
    assert!(
        !names_pid(&f.message, 101) && !names_pid(&f.next_step, 101),
        "{f:#?}"
    );
}

#[test]
fn slots_and_standbys_are_released_by_what_fits_them() {
    let mut snap = clean_snapshot();
    {
        let rep = snap.replication.as_mut().unwrap();
        rep.slots = vec![
            slot("it's gone", false, Some(9_000), None),
            slot("sub", true, None, Some(8_000)),
            slot("standby1", true, Some(5_000), None),
        ];
        rep.senders = vec![ReplicationSender {
            pid: 77,
            application_name: Some("replica2".to_string()),
            backend_xmin_age: Some(7_000),
            ..Default::default()
        }];
    }
    // A writer whose XID is exactly standby1's xmin: the standby follows it.
    let s = sessions_mut(&mut snap);
    s[0].backend_xmin_age = None;
    s[0].backend_xid_age = Some(5_000);
    let h = Horizon::of(&snap);
    let c: Vec<&str> = h.causes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        &c[..4],
        [
            "replication slot it's gone",
            "replication slot sub",
            "standby replica2 (walsender pid 77)",
            "session pid 101"
        ]
    );
    // The name is quoted as a literal.
    assert_eq!(
        h.causes[0].release_sql.as_deref(),
        Some("SELECT pg_drop_replication_slot('it''s gone');")
    );
    assert!(h.causes[1].release.contains("pg_replication_slot_advance"));
    assert!(h.causes[2].release.contains("hot_standby_feedback"));
    assert!(h.causes[2].release_sql.is_none());
    assert!(h
        .victims
        .iter()
        .any(|v| v.name == "replication slot standby1" && v.follows == "session pid 101"));
}

#[test]
fn a_prepared_transaction_past_five_minutes_is_reported_with_its_fix() {
    let mut snap = clean_snapshot();
    snap.prepared_xacts = Some(vec![prepared("pay-'42'", 9_000, 400.0)]);
    let f = single(&snap, "prepared_transaction");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.object, "prepared transaction 'pay-''42'''");
    assert_eq!(f.sql.as_deref(), Some("ROLLBACK PREPARED 'pay-''42''';"));
    assert!(
        f.message.contains("owner app_user, database app"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("XID age 9000 and 3 locks"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("VACUUM cannot remove or freeze"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("oldest holder of the xmin horizon"),
        "{}",
        f.message
    );
    assert!(
        f.next_step.contains("connect to database app"),
        "{}",
        f.next_step
    );
    assert!(f.next_step.contains("COMMIT PREPARED"), "{}", f.next_step);
    assert_eq!(ev_i64(&f, "locks"), 3);
    assert_eq!(ev_f64(&f, "threshold_seconds"), 300.0);

    // Near miss: a second old.
    snap.prepared_xacts = Some(vec![prepared("fresh", 9_000, 1.0)]);
    assert_silent(&snap, "prepared_transaction");
}

#[test]
fn a_long_transaction_says_whether_it_holds_the_horizon_or_only_follows() {
    let mut snap = issue_case(50_000);
    let th = Thresholds::default();
    let all = advise(&snap, &th);
    let idle = of_rule(&all, "idle_in_transaction");
    let writer = idle.iter().find(|f| f.object == "pid 201").unwrap();
    assert!(
        writer
            .message
            .contains("it holds the xmin horizon (XID age 49998)"),
        "{}",
        writer.message
    );
    assert_eq!(writer.evidence["horizon"], "holds_horizon");
    let long = of_rule(&all, "long_running_query");
    let waiter = long.iter().find(|f| f.object == "pid 202");
    assert!(waiter.is_some(), "{all:#?}");
    // A long transaction holding nothing does not claim to hold back vacuum.
    let s = sessions_mut(&mut snap);
    let mut free = session(300, "idle in transaction");
    free.backend_xmin_age = None;
    free.xact_age_seconds = Some(4000.0);
    free.state_age_seconds = Some(1.0);
    s.push(free);
    let mut follower = session(301, "active");
    follower.backend_xmin_age = Some(50_000);
    follower.xact_age_seconds = Some(4000.0);
    follower.query_age_seconds = Some(1.0);
    s.push(follower);
    let all = advise(&snap, &th);
    let xact = of_rule(&all, "long_transaction");
    let free = xact.iter().find(|f| f.object == "pid 300").unwrap();
    assert!(
        free.message.contains("does not hold back vacuum"),
        "{}",
        free.message
    );
    assert_eq!(free.evidence["horizon"], "free");
    let follower = xact.iter().find(|f| f.object == "pid 301").unwrap();
    assert!(
        follower
            .message
            .contains("only follows prepared transaction 'lost'"),
        "{}",
        follower.message
    );
    assert_eq!(follower.evidence["horizon"], "follows");
}

#[test]
fn dead_rows_vacuum_cannot_remove_name_the_long_held_horizon() {
    let mut snap = issue_case(50_000);
    {
        let t = table_mut(&mut snap, "orders");
        t.n_dead_tup = 2_000_000;
        t.last_autovacuum = None;
    }
    let f = single(&snap, "autovacuum_behind");
    let held = names(&f, "held_back_by");
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(f
        .message
        .contains("VACUUM cannot remove rows that died after the xmin horizon"));
    assert!(f.next_step.starts_with("Release what holds back the xmin horizon first — prepared transaction 'lost': ROLLBACK PREPARED 'lost'"), "{}", f.next_step);
    assert!(!names_pid(&f.message, 202) && !names_pid(&f.next_step, 202));

    // Holders open only a moment are not blamed.
    let mut snap = clean_snapshot();
    {
        let t = table_mut(&mut snap, "orders");
        t.n_dead_tup = 2_000_000;
        t.last_autovacuum = None;
    }
    let f = single(&snap, "autovacuum_behind");
    assert!(names(&f, "held_back_by").is_empty());
    assert!(!f.message.contains("xmin horizon"), "{}", f.message);
}

#[test]
fn snapshots_saved_before_the_horizon_fields_still_load() {
    let snap = clean_snapshot();
    let mut json: serde_json::Value = serde_json::from_str(&snap.to_json().unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("prepared_xacts");
    for s in json["activity"]["sessions"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("backend_xid_age");
    }
    let back = Snapshot::from_json(&json.to_string(), "old.json").unwrap();
    assert_eq!(back.prepared_xacts, None);
    assert_eq!(back.activity.unwrap().sessions[0].backend_xid_age, None);
}

// ---------- the issue's case on a real cluster ----------

async fn client(c: &Cluster) -> Client {
    let (client, conn) = tokio_postgres::connect(&c.dsn("postgres"), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

async fn pid_of(cl: &Client) -> i32 {
    cl.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

async fn snapshot(c: &Cluster) -> Snapshot {
    common::live_snapshot(&c.dsn("postgres"), &CollectOptions::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_transaction_and_an_idle_writer_are_named_never_the_waiter() {
    let c = Cluster::start(ClusterOptions {
        settings: vec![
            ("max_prepared_transactions".into(), "5".into()),
            ("autovacuum".into(), "off".into()),
            ("autovacuum_freeze_max_age".into(), "100000".into()),
        ],
        ..Default::default()
    })
    .unwrap();
    c.psql(
        "postgres",
        "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
         INSERT INTO accounts VALUES (1, 100), (2, 100);",
    )
    .unwrap();
    // The prepared transaction: written, prepared, forgotten.
    c.psql(
        "postgres",
        "BEGIN; UPDATE accounts SET balance = 0 WHERE id = 2; PREPARE TRANSACTION 'hz-lost';",
    )
    .unwrap();
    // The writer: holds an XID and a row lock, idle in transaction, no snapshot.
    let writer = client(&c).await;
    let writer_pid = pid_of(&writer).await;
    writer
        .batch_execute("BEGIN; UPDATE accounts SET balance = balance - 1 WHERE id = 1")
        .await
        .unwrap();
    // 92,000 transaction IDs: past 90 % of autovacuum_freeze_max_age.
    c.psql(
        "postgres",
        "DO $$ BEGIN FOR i IN 1..92000 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$;",
    )
    .unwrap();
    // The waiter: its snapshot is taken now, behind the prepared transaction's XID, and it
    // waits on the writer's row lock.
    let waiter = client(&c).await;
    let waiter_pid = pid_of(&waiter).await;
    let waiting = tokio::spawn(async move {
        waiter
            .execute(
                "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
                &[],
            )
            .await
    });
    let watcher = client(&c).await;
    let mut blocked = false;
    for _ in 0..200 {
        let row = watcher
            .query_one(
                "SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1",
                &[&waiter_pid],
            )
            .await
            .unwrap();
        if row.get::<_, bool>(0) {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(blocked, "the waiter never waited on the writer's lock");

    let snap = snapshot(&c).await;
    let prepared = snap
        .prepared_xacts
        .as_ref()
        .expect("prepared_xacts collected");
    assert_eq!(prepared.len(), 1, "{prepared:#?}");
    assert_eq!(prepared[0].gid, "hz-lost");
    assert_eq!(prepared[0].database.as_deref(), Some("postgres"));
    assert!(prepared[0].xid_age.unwrap() >= 92_000, "{prepared:#?}");
    // Its XID, RowExclusiveLock on the table and on its primary key.
    assert_eq!(prepared[0].locks, 3, "{prepared:#?}");
    let sessions = &snap.activity.as_ref().unwrap().sessions;
    let w = sessions.iter().find(|s| s.pid == writer_pid).unwrap();
    assert!(
        w.backend_xid_age.unwrap() >= 92_000 && w.backend_xmin_age.is_none(),
        "{w:#?}"
    );
    let v = sessions.iter().find(|s| s.pid == waiter_pid).unwrap();
    assert_eq!(v.backend_xmin_age, prepared[0].xid_age, "{v:#?}");

    let h = Horizon::of(&snap);
    let at: Vec<&str> = h.at_horizon().map(|c| c.name.as_str()).collect();
    assert_eq!(
        at,
        [
            "prepared transaction 'hz-lost'".to_string(),
            format!("session pid {writer_pid}")
        ],
        "{h:#?}"
    );
    assert!(
        matches!(h.session(waiter_pid), SessionRole::Victim(_)),
        "{h:#?}"
    );

    // A threshold of 0 s: the prepared transaction is seconds old.
    let th = {
        let mut th = Thresholds::default();
        th.set("prepared_transaction_warning_seconds", "0").unwrap();
        th
    };
    let findings = advise(&snap, &th);
    let xid: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule == "xid_wraparound")
        .collect();
    assert!(
        xid.iter().any(|f| f.object == "public.accounts"),
        "{findings:#?}"
    );
    assert!(
        xid.iter().any(|f| f.object == "database postgres"),
        "{findings:#?}"
    );
    for f in &xid {
        let held = names(f, "held_back_by");
        assert_eq!(held.len(), 2, "{f:#?}");
        assert!(
            held[0].starts_with("prepared transaction 'hz-lost'"),
            "{held:?}"
        );
        assert!(
            held[1].starts_with(&format!("session pid {writer_pid} (XID age")),
            "{held:?}"
        );
        assert!(
            f.next_step
                .contains("ROLLBACK PREPARED 'hz-lost' in database postgres"),
            "{}",
            f.next_step
        );
        assert!(
            f.next_step
                .contains(&format!("pg_terminate_backend({writer_pid})")),
            "{}",
            f.next_step
        );
    }
    for f in &findings {
        let text = format!(
            "{} {} {}",
            f.message,
            f.next_step,
            f.sql.as_deref().unwrap_or("")
        );
        if f.rule != "blocked_session" && f.rule != "long_running_query" {
            assert!(
                !names_pid(&text, waiter_pid),
                "the waiter is named as a holder: {f:#?}"
            );
        }
    }
    let p: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule == "prepared_transaction")
        .collect();
    assert_eq!(p.len(), 1, "{findings:#?}");
    assert_eq!(p[0].sql.as_deref(), Some("ROLLBACK PREPARED 'hz-lost';"));
    assert_eq!(p[0].evidence["at_horizon"], true);
    // Near miss: with the default five minutes, a prepared transaction seconds old is silent.
    let defaults = advise(&snap, &Thresholds::default());
    assert!(
        !defaults.iter().any(|f| f.rule == "prepared_transaction"),
        "{defaults:#?}"
    );

    // Releasing the two holders lets VACUUM (FREEZE) advance; the waiter finishes.
    writer.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), 1);
    for step in ["ROLLBACK PREPARED 'hz-lost'", "VACUUM (FREEZE) accounts"] {
        watcher.batch_execute(step).await.unwrap();
    }
    let after = snapshot(&c).await;
    assert_eq!(after.prepared_xacts.as_deref(), Some(&[][..]));
    let findings = advise(&after, &Thresholds::default());
    assert!(
        !findings
            .iter()
            .any(|f| f.rule == "xid_wraparound" && f.object == "public.accounts"),
        "{findings:#?}"
    );
}

#[test]
fn a_writer_whose_snapshot_predates_its_xid_holds_the_horizon_at_its_snapshot() {
    // REPEATABLE READ: the snapshot was taken before the first write.
    let mut snap = clean_snapshot();
    let s = sessions_mut(&mut snap);
    s[1].backend_xmin_age = Some(800);
    s[1].backend_xid_age = Some(500);
    let h = Horizon::of(&snap);
    let first = &h.causes[0];
    assert_eq!(first.name, "session pid 102");
    assert_eq!(first.age, 800);
    assert_eq!(
        first.kind,
        HolderKind::Session {
            pid: 102,
            holds_xid: true
        }
    );
    assert!(
        first.what.starts_with("backend_xmin age 800, XID age 500"),
        "{}",
        first.what
    );
    // Younger snapshots (pid 101's, the standby slot's) follow its XID.
    assert!(matches!(
        h.session(102),
        SessionRole::Cause {
            at_horizon: true,
            ..
        }
    ));
    assert!(matches!(h.session(101), SessionRole::Victim(v) if v.follows == "session pid 102"));
}

#[test]
fn a_parallel_worker_is_not_named_beside_its_leader() {
    let mut snap = clean_snapshot();
    let s = sessions_mut(&mut snap);
    s[0].backend_xmin_age = Some(70_000);
    let mut worker = session(110, "active");
    worker.backend_type = Some("parallel worker".to_string());
    worker.backend_xmin_age = Some(70_000);
    s.push(worker);
    let h = Horizon::of(&snap);
    let at: Vec<&str> = h.at_horizon().map(|c| c.name.as_str()).collect();
    assert_eq!(at, ["session pid 101"]);
    assert_eq!(h.session(110), SessionRole::Free);
}
