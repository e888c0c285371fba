//! `pgopt tune --apply --restart` and `--rollback --restart` on real clusters: a pgopt embedded
//! (detached) cluster is restarted without asking and the settings that waited for the
//! restart are verified in effect, then the rollback restores pg_settings exactly; any other
//! server needs `--yes-restart HOST:PORT` off a terminal; and every refusal exits 2 with
//! nothing changed and the postmaster still the same process. (A server on another machine
//! is refused by the plan itself: unit tests in src/apply/restart.rs.) The restart is a step
//! of the executor, recorded in the journal.

mod cli_support;

use cli_support::{pgopt_tune, stderr, stdout};
use std::path::{Path, PathBuf};

use pgopt::apply::{Journal, StepState};
use pgopt::db::{connect, Target};
use pgopt::embedded::{Cluster, ClusterOptions, Detached, DETACHED_MARKER};
use pgopt::plan::Action;

const SETTINGS: &str =
    "SELECT name || '=' || setting || ' ' || source || ' ' || pending_restart::text \
     FROM pg_settings ORDER BY name";
const AUTO_CONF: &str = "SELECT pg_read_file('postgresql.auto.conf')";
const HARDWARE: &[&str] = &["--method", "pgtune", "--memory", "1GB", "--cpus", "2"];

/// One SQL query's rows, one text column each, joined by newlines (a fresh connection).
fn query(dsn: &str, sql: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = connect(&Target::parse(dsn).unwrap()).await.unwrap();
        let rows = conn.query("test query", sql, &[]).await.unwrap();
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn postmaster_pid(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

/// A detached embedded cluster in a temporary directory, removed (server stopped, files
/// deleted) when the guard drops, a failed assertion included.
struct Embedded {
    data_dir: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Embedded {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The server runs as the `postgres` OS user when the tests run as root: it must be able
        // to reach its data directory.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data_dir = dir.path().join("data");
        let mut guard = Embedded {
            data_dir: data_dir.clone(),
            port: 0,
            _dir: dir,
        };
        let st = Detached::new(Some(data_dir)).unwrap().start().unwrap();
        guard.port = st.port.expect("running");
        guard
    }

    fn dsn(&self) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Ok(d) = Detached::new(Some(self.data_dir.clone())) {
            if let Err(e) = d.remove() {
                eprintln!("removing the test cluster: {e}");
            }
        }
    }
}

/// pg_settings (one `name=setting source pending` line each) as before, naming what differs.
fn assert_same_settings(before: &str, after: &str) {
    let diff: Vec<String> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("before {a} / after {b}"))
        .collect();
    assert!(
        diff.is_empty() && before.lines().count() == after.lines().count(),
        "pg_settings not restored exactly: {diff:?}"
    );
}

fn with_hardware<'a>(first: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = first.to_vec();
    v.extend_from_slice(HARDWARE);
    v.extend_from_slice(rest);
    v
}

#[test]
fn embedded_cluster_is_restarted_for_pending_settings_and_rollback_restores_exactly() {
    let c = Embedded::start();
    let dsn = c.dsn();
    assert!(c.data_dir.join(DETACHED_MARKER).is_file(), "marker written");
    let before = query(&dsn, SETTINGS);
    let auto_before = query(&dsn, AUTO_CONF);
    let pid_before = postmaster_pid(&c.data_dir);
    let journal = c._dir.path().join("journal.json");
    let j = journal.to_str().unwrap();

    let o = pgopt_tune(&with_hardware(
        &[&dsn],
        &["--apply", "--restart", "--journal", j],
    ));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is a pgopt embedded cluster: it is restarted without asking"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("applied shared_buffers = 256MB: in effect after the restart"),
        "{}",
        stdout(&o)
    );
    assert_ne!(postmaster_pid(&c.data_dir), pid_before, "restarted");
    assert_eq!(
        query(
            &dsn,
            "SELECT current_setting('shared_buffers') || ' ' || pending_restart::text \
             FROM pg_settings WHERE name = 'shared_buffers'"
        ),
        "256MB false"
    );
    assert_eq!(
        query(
            &dsn,
            "SELECT count(*)::text FROM pg_settings WHERE pending_restart"
        ),
        "0",
        "nothing waits for a restart any more"
    );

    let o = pgopt_tune(&["--rollback", j, "--restart"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("restored shared_buffers = 128MB: in effect after the restart"),
        "{}",
        stdout(&o)
    );
    assert_same_settings(&before, &query(&dsn, SETTINGS));
    assert_eq!(query(&dsn, AUTO_CONF), auto_before);
}

#[test]
fn another_local_server_is_restarted_only_with_yes_restart_naming_it() {
    let c = Embedded::start();
    // Without the marker this is just a PostgreSQL server on this machine.
    std::fs::remove_file(c.data_dir.join(DETACHED_MARKER)).unwrap();
    let dsn = c.dsn();
    let target = format!("127.0.0.1:{}", c.port);
    let before = query(&dsn, SETTINGS);
    let pid_before = postmaster_pid(&c.data_dir);
    let journal = c._dir.path().join("journal.json");
    let j = journal.to_str().unwrap();

    let o = pgopt_tune(&with_hardware(
        &[&dsn],
        &["--apply", "--restart", "--journal", j],
    ));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("needs confirmation")
            && stderr(&o).contains(&format!("--yes-restart {target}")),
        "{}",
        stderr(&o)
    );
    assert!(!journal.exists(), "nothing applied");
    assert_eq!(postmaster_pid(&c.data_dir), pid_before);

    let o = pgopt_tune(&with_hardware(
        &[&dsn],
        &[
            "--apply",
            "--restart",
            "--yes-restart",
            &target,
            "--journal",
            j,
        ],
    ));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("applied wal_buffers = 7864kB: in effect after the restart"),
        "{}",
        stdout(&o)
    );
    assert_ne!(postmaster_pid(&c.data_dir), pid_before, "restarted");

    let o = pgopt_tune(&["--rollback", j, "--restart", "--yes-restart", &target]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_same_settings(&before, &query(&dsn, SETTINGS));
}

#[test]
fn refusals_exit_2_and_leave_the_server_untouched() {
    // An in-process test cluster has no marker: not an embedded cluster pgopt may restart.
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dsn = c.dsn("postgres");
    let target = format!("127.0.0.1:{}", c.port());
    let pid = postmaster_pid(&c.data_dir());
    let auto_before = c.psql("postgres", AUTO_CONF).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.json");
    let j = journal.to_str().unwrap();

    // --restart alone: a dry run never restarts.
    let o = pgopt_tune(&with_hardware(&[&dsn], &["--restart"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--restart restarts the server after --apply or --rollback"),
        "{}",
        stderr(&o)
    );

    // A --yes-restart that names another server.
    let wrong = format!("127.0.0.1:{}", c.port().wrapping_add(1));
    let o = pgopt_tune(&with_hardware(
        &[&dsn],
        &[
            "--apply",
            "--restart",
            "--yes-restart",
            &wrong,
            "--journal",
            j,
        ],
    ));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "--yes-restart {wrong} does not name the target, which is {target}"
        )),
        "{}",
        stderr(&o)
    );

    // Not embedded, no terminal, no --yes-restart.
    let o = pgopt_tune(&with_hardware(
        &[&dsn],
        &["--apply", "--restart", "--journal", j],
    ));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("needs confirmation") && stderr(&o).contains("nothing was changed"),
        "{}",
        stderr(&o)
    );

    // --yes-restart without --restart is a usage error.
    let o = pgopt_tune(&with_hardware(
        &[&dsn],
        &["--apply", "--yes-restart", &target],
    ));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    assert!(!journal.exists(), "nothing was applied");
    assert_eq!(c.psql("postgres", AUTO_CONF).unwrap(), auto_before);
    assert_eq!(postmaster_pid(&c.data_dir()), pid, "not restarted");

    // A rollback asks the same: apply without restarting, then refuse the rollback's restart.
    let o = pgopt_tune(&with_hardware(&[&dsn], &["--apply", "--journal", j]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("or run again with --restart"),
        "{}",
        stderr(&o)
    );
    let o = pgopt_tune(&["--rollback", j, "--restart"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("needs confirmation"), "{}", stderr(&o));
    assert_eq!(postmaster_pid(&c.data_dir()), pid, "not restarted");
    let o = pgopt_tune(&["--rollback", j]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(c.psql("postgres", AUTO_CONF).unwrap(), auto_before);
}

#[test]
fn the_journal_records_the_restart_and_a_rollback_without_restart_says_what_waits() {
    let c = Embedded::start();
    let dsn = c.dsn();
    let journal = c._dir.path().join("journal.json");
    let j = journal.to_str().unwrap();
    let o = pgopt_tune(&with_hardware(
        &[&dsn],
        &["--apply", "--restart", "--journal", j],
    ));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("restarting the server at 127.0.0.1:"),
        "{}",
        stderr(&o)
    );
    let recorded = Journal::load(&journal).unwrap();
    let last = recorded.steps.last().unwrap();
    assert_eq!(last.step.action, Action::Restart, "the restart is a step");
    assert_eq!(last.state, StepState::Done);

    let o = pgopt_tune(&["--rollback", j]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("restored shared_buffers = 128MB: waits for a restart"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("shared_buffers")
            && stderr(&o).contains("is restored at the next restart of the server"),
        "{}",
        stderr(&o)
    );
    assert!(
        !stdout(&o).contains("restart the server (pg_ctl"),
        "the restart step is not reported as something to undo: {}",
        stdout(&o)
    );
    assert_eq!(
        query(
            &dsn,
            "SELECT pending_restart::text FROM pg_settings WHERE name = 'shared_buffers'"
        ),
        "true"
    );
}
