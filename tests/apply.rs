//! The executor (`pgopt::apply`) on real clusters: a step failing midway undoes the earlier
//! ones; a CREATE INDEX CONCURRENTLY cancelled from another session, or interrupted, leaves no
//! invalid index; a second run is refused after its bounded wait, naming the holder; a
//! precondition that stopped holding skips its step with the reason; the journal of a killed
//! run is replayed; a journal of another server, or with an old value the server rejects,
//! changes nothing. A run reports its steps as progress events, and an index build its
//! phase, read from a second session.

mod cli_support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgopt::apply::{self, checks, Journal, StepState};
use pgopt::db::{self, Conn, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::plan::{Action, Plan, Step};
use pgopt::progress::{Collect, Event, Kind, Progress, Unit};

async fn connect(c: &Cluster) -> Conn {
    db::connect(&Target::parse(&c.dsn("postgres")).unwrap())
        .await
        .expect("connect")
}

/// A cluster with a table `public.t (a int, b int)` holding a few rows.
async fn start() -> (Cluster, Conn) {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    let conn = connect(&c).await;
    conn.batch("test", "CREATE TABLE t (a int, b int)")
        .await
        .unwrap();
    conn.batch(
        "test",
        "INSERT INTO t SELECT g, g % 7 FROM generate_series(1, 1000) g",
    )
    .await
    .unwrap();
    (c, conn)
}

async fn index_state(conn: &Conn, name: &str) -> Option<bool> {
    checks::index_state(conn, &pgopt::ident::QualifiedName::new("public", name))
        .await
        .unwrap()
}

async fn auto_conf(conn: &Conn) -> String {
    conn.query_one("test", "SELECT pg_read_file('postgresql.auto.conf')", &[])
        .await
        .unwrap()
        .get(0)
}

fn opts() -> apply::Options {
    apply::Options {
        lock_wait: Duration::from_secs(1),
        ..apply::Options::default()
    }
}

fn states(path: &Path) -> Vec<StepState> {
    Journal::load(path)
        .unwrap()
        .steps
        .iter()
        .map(|s| s.state)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_failing_midway_undoes_the_earlier_steps() {
    let (_c, conn) = start().await;
    let before = auto_conf(&conn).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let mut plan = Plan::new();
    plan.push(Step::create_index("public", "t_a", "t", &["a"], None));
    plan.push(Step::set_system("work_mem", "64MB", Some("4MB"), false));
    plan.push(Step::set_system("max_connections", "banana", None, true));

    let e = apply::run(&conn, &plan, Some(&journal), &opts())
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(e.is_bad_input(), "{msg}");
    assert!(msg.contains("step 3"), "{msg}");
    assert!(msg.contains("nothing was left changed"), "{msg}");
    assert_eq!(
        index_state(&conn, "t_a").await,
        None,
        "the index is dropped"
    );
    assert_eq!(auto_conf(&conn).await, before, "work_mem is reset");
    let show: String = conn
        .query_one("test", "SELECT current_setting('work_mem')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(show, "4MB");
    assert_eq!(
        states(&journal),
        vec![StepState::Undone, StepState::Undone, StepState::Failed]
    );
}

/// Opens a transaction holding a snapshot (touching no table of ours): CREATE INDEX
/// CONCURRENTLY waits for it after it has created its (still invalid) index.
async fn hold_snapshot(c: &Cluster) -> Conn {
    let holder = connect(c).await;
    holder
        .batch("test", "BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    holder.query("test", "SELECT 1", &[]).await.unwrap();
    holder
}

/// Waits (bounded) until a CREATE INDEX CONCURRENTLY of `t_a` waits on a lock with its
/// invalid index in place; returns its pid.
async fn waiting_build(conn: &Conn) -> i32 {
    let start = Instant::now();
    loop {
        let row = conn
            .query_opt(
                "test",
                "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap();
        if let Some(r) = row {
            if index_state(conn, "t_a").await == Some(false) {
                return r.get(0);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the build never waited"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_index_concurrently_cancelled_from_another_session_leaves_no_invalid_index() {
    let (c, conn) = start().await;
    let holder = hold_snapshot(&c).await;
    let watcher = connect(&c).await;
    let plan = {
        let mut p = Plan::new();
        p.push(Step::create_index("public", "t_a", "t", &["a"], None));
        p
    };
    let run = tokio::spawn(async move {
        let r = apply::run(&conn, &plan, None, &opts()).await;
        (r, conn)
    });
    let pid = waiting_build(&watcher).await;
    watcher
        .query("test", "SELECT pg_cancel_backend($1)", &[&pid])
        .await
        .unwrap();
    let (r, conn) = run.await.unwrap();
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("dropped"), "{msg}");
    assert_eq!(
        index_state(&conn, "t_a").await,
        None,
        "no invalid index left"
    );
    holder.batch("test", "COMMIT").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_during_create_index_concurrently_cancels_it_and_completes_the_journal() {
    let (c, conn) = start().await;
    let holder = hold_snapshot(&c).await;
    let watcher = connect(&c).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let (stop, interrupt) = tokio::sync::watch::channel(false);
    let mut plan = Plan::new();
    plan.push(Step::create_index("public", "t_a", "t", &["a"], None));
    plan.push(Step::create_index("public", "t_b", "t", &["b"], None));
    let j = journal.clone();
    let run = tokio::spawn(async move {
        let o = apply::Options {
            interrupt: Some(interrupt),
            ..opts()
        };
        let r = apply::run(&conn, &plan, Some(&j), &o).await;
        (r, conn)
    });
    waiting_build(&watcher).await;
    stop.send(true).unwrap();
    let (r, conn) = run.await.unwrap();
    let report = r.unwrap();
    assert!(report.interrupted);
    assert_eq!(report.steps.len(), 1, "the second build never started");
    assert_eq!(report.steps[0].state, StepState::Failed);
    assert_eq!(
        index_state(&conn, "t_a").await,
        None,
        "no invalid index left"
    );
    assert_eq!(index_state(&conn, "t_b").await, None);
    assert_eq!(
        states(&journal),
        vec![StepState::Failed, StepState::Pending]
    );
    holder.batch("test", "COMMIT").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_is_refused_after_its_wait_naming_the_holder() {
    let (c, conn) = start().await;
    let first = connect(&c).await;
    first
        .query(
            "test",
            "SELECT set_config('application_name', 'first run', false)",
            &[],
        )
        .await
        .unwrap();
    let pid: i32 = first
        .query_one("test", "SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    apply::lock::acquire(&first, Duration::from_secs(1))
        .await
        .unwrap();
    let before = auto_conf(&conn).await;
    let mut plan = Plan::new();
    plan.push(Step::set_system("work_mem", "64MB", None, false));
    let e = apply::run(&conn, &plan, None, &opts()).await.unwrap_err();
    let msg = e.to_string();
    assert!(e.is_bad_input(), "exit code 2: {msg}");
    assert!(msg.contains(&format!("pid {pid}")), "{msg}");
    assert!(msg.contains("'first run'"), "{msg}");
    assert!(msg.contains("nothing was changed"), "{msg}");
    assert_eq!(auto_conf(&conn).await, before);

    // Once the first run ends, the second goes through.
    apply::lock::release(&first).await;
    let report = apply::run(&conn, &plan, None, &opts()).await.unwrap();
    assert_eq!(report.steps[0].state, StepState::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_precondition_that_no_longer_holds_skips_the_step_with_its_reason() {
    let (_c, conn) = start().await;
    let mut plan = Plan::new();
    let build = plan.push(Step::create_index("public", "t_a", "t", &["a"], None));
    plan.push_after(
        Step::set_object(
            pgopt::plan::Object::Table {
                schema: Some("public".into()),
                name: "t".into(),
            },
            "fillfactor",
            "90",
            None,
        ),
        &[build],
    );
    plan.push(Step::set_system("work_mem", "64MB", Some("1MB"), false));
    // Someone builds the index and nobody set work_mem to 1MB.
    conn.batch("test", "CREATE INDEX t_a ON t (a)")
        .await
        .unwrap();

    let report = apply::run(&conn, &plan, None, &opts()).await.unwrap();
    let s = &report.steps;
    assert_eq!(s[0].state, StepState::Skipped);
    assert!(
        s[0].reason.as_deref().unwrap().contains("exists already"),
        "{:?}",
        s[0].reason
    );
    assert_eq!(s[1].state, StepState::Skipped, "it depends on the build");
    assert!(s[1].reason.as_deref().unwrap().contains("step 1"));
    assert_eq!(s[2].state, StepState::Skipped);
    assert!(
        s[2].reason.as_deref().unwrap().contains("4MB now"),
        "{:?}",
        s[2].reason
    );
    assert_eq!(
        index_state(&conn, "t_a").await,
        Some(true),
        "theirs is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_of_a_killed_run_is_replayed_by_rollback() {
    let (_c, conn) = start().await;
    let before = auto_conf(&conn).await;
    // What a run killed during its second step leaves: the index built, work_mem written,
    // the journal saying the first step is done and the second started.
    conn.batch("test", "CREATE INDEX CONCURRENTLY t_a ON t (a)")
        .await
        .unwrap();
    conn.batch("test", "ALTER SYSTEM SET work_mem = '64MB'")
        .await
        .unwrap();
    let server = checks::server_id(&conn).await.unwrap();
    let mut j = Journal::new(
        server,
        &[
            Step::create_index("public", "t_a", "t", &["a"], None),
            Step::set_system("work_mem", "64MB", None, false),
        ],
    );
    j.steps[1].undo = Some(Action::SetSystem {
        name: "work_mem".into(),
        value: None,
    });
    j.mark(0, StepState::Done, None);
    j.mark(1, StepState::Started, None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    j.save(&path).unwrap();

    let loaded = Journal::load(&path).unwrap();
    let report = apply::rollback(&conn, loaded, Some(&path), &opts())
        .await
        .unwrap();
    assert_eq!(report.steps.len(), 2);
    assert_eq!(index_state(&conn, "t_a").await, None);
    assert_eq!(auto_conf(&conn).await, before);
    assert_eq!(states(&path), vec![StepState::Undone, StepState::Undone]);
    // Replaying it again changes nothing more.
    let again = apply::rollback(&conn, Journal::load(&path).unwrap(), Some(&path), &opts())
        .await
        .unwrap();
    assert!(again.steps.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_of_another_server_or_with_a_rejected_old_value_changes_nothing() {
    let (_c, conn) = start().await;
    conn.batch("test", "ALTER SYSTEM SET work_mem = '64MB'")
        .await
        .unwrap();
    let before = auto_conf(&conn).await;
    let server = checks::server_id(&conn).await.unwrap();
    let step = |name: &str, old: Option<&str>| {
        let mut s = Step::set_system(name, "64MB", None, false);
        s.undo = Some(Action::SetSystem {
            name: name.into(),
            value: old.map(str::to_string),
        });
        s
    };
    let done = |server: apply::ServerId, steps: &[Step]| {
        let mut j = Journal::new(server, steps);
        for i in 0..steps.len() {
            j.mark(i, StepState::Done, None);
        }
        j
    };

    let mut other = server.clone();
    other.system_identifier = Some("1".into());
    let e = apply::rollback(&conn, done(other, &[step("work_mem", None)]), None, &opts())
        .await
        .unwrap_err();
    assert!(
        e.is_bad_input() && e.to_string().contains("another server"),
        "{e}"
    );
    let mut other_port = server.clone();
    other_port.server_port = Some(1);
    let e = apply::rollback(
        &conn,
        done(other_port, &[step("work_mem", None)]),
        None,
        &opts(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("port"), "{e}");

    let rejected = done(
        server,
        &[
            step("work_mem", None),
            step("max_connections", Some("banana")),
        ],
    );
    let e = apply::rollback(&conn, rejected, None, &opts())
        .await
        .unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    assert!(e.to_string().contains("max_connections"), "{e}");
    assert!(e.to_string().contains("nothing was changed"), "{e}");
    assert_eq!(auto_conf(&conn).await, before, "work_mem was not reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tune_rollback_replays_an_executor_journal_and_refuses_one_of_another_server() {
    let (_c, conn) = start().await;
    conn.batch("test", "CREATE INDEX CONCURRENTLY t_a ON t (a)")
        .await
        .unwrap();
    let server = checks::server_id(&conn).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |server: apply::ServerId, name: &str| {
        let mut j = Journal::new(
            server,
            &[Step::create_index("public", "t_a", "t", &["a"], None)],
        );
        j.mark(0, StepState::Done, None);
        let path = dir.path().join(name);
        j.save(&path).unwrap();
        path
    };
    let mut other = server.clone();
    other.system_identifier = Some("1".into());
    let foreign = write(other, "foreign.json");
    let o = cli_support::pgopt(&["tune", "--rollback", foreign.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", cli_support::stderr(&o));
    assert!(cli_support::stderr(&o).contains("another server"));
    assert_eq!(
        index_state(&conn, "t_a").await,
        Some(true),
        "nothing changed"
    );

    let ours = write(server, "ours.json");
    let o = cli_support::pgopt(&["tune", "--rollback", ours.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", cli_support::stderr(&o));
    assert!(
        cli_support::stdout(&o).contains("DROP INDEX CONCURRENTLY"),
        "{}",
        cli_support::stdout(&o)
    );
    assert_eq!(index_state(&conn, "t_a").await, None);
    assert_eq!(states(&ours), vec![StepState::Undone]);
}

fn collector() -> (Arc<Collect>, Arc<dyn Progress>) {
    let c = Arc::new(Collect::new());
    let sink: Arc<dyn Progress> = c.clone();
    (c, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executor_reports_its_start_each_step_and_its_finish() {
    let (c, conn) = start().await;
    let (events, sink) = collector();
    let mut plan = Plan::new();
    plan.push(Step::create_index("public", "t_a", "t", &["a"], None));
    plan.push(Step::set_system("work_mem", "64MB", Some("4MB"), false));
    let o = apply::Options {
        progress: Some(sink),
        reconnect: Some(Arc::new(Target::parse(&c.dsn("postgres")).unwrap())),
        ..opts()
    };
    let report = apply::run(&conn, &plan, None, &o).await.unwrap();
    assert_eq!(report.with_state(StepState::Done).len(), 2);
    let steps: Vec<_> = events
        .events()
        .into_iter()
        .filter(|e| e.phase == apply::progress::PHASE)
        .collect();
    let first = steps.first().expect("events");
    assert_eq!((first.kind, first.unit), (Kind::Update, Unit::Steps));
    assert_eq!((first.done, first.total), (0, Some(2)));
    for (i, step) in plan.steps.iter().enumerate() {
        let what = step.action.describe();
        let of_step: Vec<_> = steps
            .iter()
            .filter(|e| e.message.as_deref() == Some(what.as_str()))
            .collect();
        assert_eq!(of_step.len(), 2, "step {i} begun and ended: {steps:?}");
        assert_eq!((of_step[0].done, of_step[1].done), (i as u64, i as u64 + 1));
    }
    let last = steps.last().unwrap();
    assert_eq!(
        (last.kind, last.done, last.total),
        (Kind::Finish, 2, Some(2))
    );
    conn.batch("test", "ALTER SYSTEM RESET work_mem")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_index_build_reports_its_phase_from_a_second_session() {
    let (c, conn) = start().await;
    // Big enough for a build that takes a while; the held snapshot keeps it going (waiting
    // for old snapshots) until a reading was seen, so no timing decides the test.
    conn.batch(
        "test",
        "INSERT INTO t SELECT g, g % 7 FROM generate_series(1, 2000000) g",
    )
    .await
    .unwrap();
    let holder = hold_snapshot(&c).await;
    let (events, sink) = collector();
    let mut plan = Plan::new();
    plan.push(Step::create_index("public", "t_a", "t", &["a"], None));
    let o = apply::Options {
        progress: Some(sink),
        reconnect: Some(Arc::new(Target::parse(&c.dsn("postgres")).unwrap())),
        ..opts()
    };
    let run = tokio::spawn(async move {
        let r = apply::run(&conn, &plan, None, &o).await;
        (r, conn)
    });
    let builds = |events: &Collect| -> Vec<Event> {
        events
            .events()
            .into_iter()
            .filter(|e| e.phase == apply::progress::INDEX_PHASE && e.kind == Kind::Update)
            .collect()
    };
    let start = Instant::now();
    while builds(&events).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no index build progress was reported: {:?}",
            events.events()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    holder.batch("test", "COMMIT").await.unwrap();
    let (r, conn) = run.await.unwrap();
    assert_eq!(r.unwrap().with_state(StepState::Done).len(), 1);
    assert_eq!(index_state(&conn, "t_a").await, Some(true));
    let seen = builds(&events);
    let e = &seen[0];
    let phase = e.step.as_deref().unwrap_or_default();
    assert!(
        phase.starts_with("building index")
            || phase.starts_with("waiting")
            || phase.starts_with("index validation"),
        "a phase name of pg_stat_progress_create_index: {e:?}"
    );
    assert!(matches!(e.unit, Unit::Blocks | Unit::Tuples), "{e:?}");
    assert!(
        e.message
            .as_deref()
            .unwrap_or_default()
            .contains("CREATE INDEX CONCURRENTLY"),
        "{e:?}"
    );
    assert!(
        events
            .events()
            .iter()
            .any(|e| e.phase == apply::progress::INDEX_PHASE && e.kind == Kind::Finish),
        "the build's display is ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_step_without_a_checked_restart_is_refused_before_anything_changes() {
    let (_c, conn) = start().await;
    let before = auto_conf(&conn).await;
    let mut plan = Plan::new();
    plan.push(Step::set_system("shared_buffers", "256MB", None, true));
    plan.push(Step::restart());
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let e = apply::run(&conn, &plan, Some(&journal), &opts())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nothing was changed"), "{e}");
    assert!(!journal.exists(), "no journal: nothing ran");
    assert_eq!(auto_conf(&conn).await, before);
}
