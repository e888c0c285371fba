//! The index advisor's plans on real clusters through the executor: a create plan builds its
//! indexes concurrently, valid, analyzes the table and is rolled back from its journal; an
//! index built meanwhile under another name makes its step skip; a drop plan is undone by
//! building the index again.

use std::time::Duration;

use pgopt::apply::{self, checks, Journal, StepState};
use pgopt::db::{self, Conn, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::ident::QualifiedName;
use pgopt::indexes::model::{Advice, Candidate, Helped, KeyExpr, SortKey, Suggestion};
use pgopt::indexes::steps;

async fn start() -> (Cluster, Conn) {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    let conn = db::connect(&Target::parse(&c.dsn("postgres")).unwrap())
        .await
        .expect("connect");
    conn.batch(
        "test",
        "CREATE TABLE \"Or\"\"ders\" (id int, status text, created_at timestamptz);
         INSERT INTO \"Or\"\"ders\" SELECT g, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'done' END,
                now() - g * interval '1 minute' FROM generate_series(1, 2000) g",
    )
    .await
    .unwrap();
    (c, conn)
}

fn opts() -> apply::Options {
    apply::Options {
        lock_wait: Duration::from_secs(1),
        rollback_command: "pgopt indexes --rollback".into(),
        ..apply::Options::default()
    }
}

fn suggestion(keys: &[(&str, bool)], predicate: Option<&str>) -> Suggestion {
    let mut c = Candidate::btree(
        "public",
        "Or\"ders",
        keys.iter()
            .map(|(n, desc)| SortKey {
                key: KeyExpr::column(*n),
                desc: *desc,
                nulls_first: None,
            })
            .collect(),
    );
    c.predicate = predicate.map(str::to_string);
    let name = c.index_name();
    Suggestion {
        ddl: c.ddl(&name, true),
        name,
        candidate: c,
        size_bytes: 65536,
        benefit: 100.0,
        helps: vec![Helped {
            fingerprint: "f".into(),
            text: "SELECT 1".into(),
            calls: 1,
            cost_before: 10.0,
            cost_after: 1.0,
        }],
    }
}

async fn state(conn: &Conn, name: &str) -> Option<bool> {
    checks::index_state(conn, &QualifiedName::new("public", name))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_plan_builds_valid_indexes_analyzes_and_rolls_back() {
    let (_c, conn) = start().await;
    let a = suggestion(&[("status", false), ("created_at", true)], None);
    let b = suggestion(&[("created_at", false)], Some("\"status\" = 'open'"));
    let (na, nb) = (a.name.clone(), b.name.clone());
    let advice = Advice {
        suggestions: vec![a, b],
        ..Advice::default()
    };
    let plan = steps::create_plan(&advice);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let report = apply::run(&conn, &plan, Some(&journal), &opts())
        .await
        .expect("run");
    let states: Vec<StepState> = report.steps.iter().map(|s| s.state).collect();
    assert_eq!(states, vec![StepState::Done; 3], "{report:?}");
    assert_eq!(state(&conn, &na).await, Some(true));
    assert_eq!(state(&conn, &nb).await, Some(true));
    let analyzed: bool = conn
        .query_one(
            "test",
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'Or\"ders'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(analyzed, "the table was analyzed after its indexes");

    let back = apply::rollback(
        &conn,
        Journal::load(&journal).unwrap(),
        Some(&journal),
        &opts(),
    )
    .await
    .expect("rollback");
    assert_eq!(state(&conn, &na).await, None, "dropped by the rollback");
    assert_eq!(state(&conn, &nb).await, None);
    assert_eq!(back.with_state(StepState::Undone).len(), 2, "{back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivalent_index_built_meanwhile_under_another_name_skips_the_step() {
    let (_c, conn) = start().await;
    // Someone built the same indexes by hand, named otherwise and written otherwise.
    conn.batch(
        "test",
        "CREATE INDEX by_hand ON public.\"Or\"\"ders\" (created_at) WHERE (status = 'open'::text);
         CREATE INDEX prefix_only ON \"Or\"\"ders\" (status)",
    )
    .await
    .unwrap();
    let same = suggestion(&[("created_at", false)], Some("\"status\" = 'open'"));
    let other = suggestion(&[("status", false), ("created_at", true)], None);
    let (ns, no) = (same.name.clone(), other.name.clone());
    let plan = steps::create_plan(&Advice {
        suggestions: vec![same, other],
        ..Advice::default()
    });
    let report = apply::run(&conn, &plan, None, &opts()).await.expect("run");
    assert_eq!(report.steps[0].state, StepState::Skipped, "{report:?}");
    let why = report.steps[0].reason.as_deref().unwrap();
    assert!(
        why.contains("by_hand") && why.contains("another name"),
        "{why}"
    );
    assert_eq!(state(&conn, &ns).await, None, "not built twice");
    assert_eq!(
        report.steps[1].state,
        StepState::Done,
        "a prefix is not the same index"
    );
    assert_eq!(state(&conn, &no).await, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_leftover_of_the_same_name_is_dropped_before_the_build() {
    let (c, conn) = start().await;
    let s = suggestion(&[("id", false)], None);
    let name = s.name.clone();
    // An invalid index of that name, as a cancelled CREATE INDEX CONCURRENTLY leaves.
    c.psql(
        "postgres",
        &format!(
            "CREATE INDEX {} ON \"Or\"\"ders\" (id); \
             UPDATE pg_index SET indisvalid = false WHERE indexrelid = {}::regclass",
            pgopt::ident::Ident::new(&name),
            pgopt::ident::quote_literal(&pgopt::ident::Ident::new(&name).to_string())
        ),
    )
    .unwrap();
    assert_eq!(state(&conn, &name).await, Some(false));
    let plan = steps::create_plan(&Advice {
        suggestions: vec![s],
        ..Advice::default()
    });
    let report = apply::run(&conn, &plan, None, &opts()).await.expect("run");
    assert_eq!(report.steps[0].state, StepState::Done, "{report:?}");
    assert!(report.steps[0].dropped_leftover);
    assert_eq!(state(&conn, &name).await, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_plan_drops_a_duplicate_index_and_its_rollback_builds_it_again() {
    let (_c, conn) = start().await;
    conn.batch(
        "test",
        "CREATE INDEX keep_me ON \"Or\"\"ders\" (status);
         CREATE INDEX \"copy\"\"of\" ON \"Or\"\"ders\" (status)",
    )
    .await
    .unwrap();
    let th = pgopt::advise::Thresholds::default();
    let target = pgopt::snapshot::TargetInfo {
        host: conn.host.clone(),
        port: conn.port,
        database: conn.database.clone(),
        user: conn.user.clone(),
    };
    let snap = pgopt::collect::collect(
        &conn,
        target,
        &pgopt::collect::CollectOptions {
            thresholds: Some(th.clone()),
            ..pgopt::collect::CollectOptions::default()
        },
    )
    .await
    .expect("collect");
    let findings = pgopt::advise::advise(&snap, &th);
    let plan = steps::drop_plan(&findings, &snap);
    assert_eq!(plan.len(), 1, "{}", plan.script());
    let dropped = if plan.script().contains("keep_me") {
        "keep_me"
    } else {
        "copy\"of"
    };
    assert!(plan.steps[0]
        .note
        .as_deref()
        .unwrap()
        .contains("duplicate_index: returns"));
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let report = apply::run(&conn, &plan, Some(&journal), &opts())
        .await
        .expect("run");
    assert_eq!(report.steps[0].state, StepState::Done, "{report:?}");
    assert_eq!(state(&conn, dropped).await, None);
    apply::rollback(
        &conn,
        Journal::load(&journal).unwrap(),
        Some(&journal),
        &opts(),
    )
    .await
    .expect("rollback");
    assert_eq!(
        state(&conn, dropped).await,
        Some(true),
        "built again, valid"
    );
}
