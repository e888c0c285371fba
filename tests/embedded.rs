//! The embedded-cluster module: start from the template, standby and promotion, clean-up.

use std::time::Duration;

use pgopt::embedded::{Cluster, ClusterOptions, Detached};

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn postmaster_pid(c: &Cluster) -> i32 {
    let text = std::fs::read_to_string(c.data_dir().join("postmaster.pid")).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

#[test]
fn cluster_starts_with_preloaded_extensions_and_is_removed_on_drop() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    assert_eq!(
        c.psql("postgres", "SHOW shared_preload_libraries").unwrap(),
        "pg_stat_statements,auto_explain"
    );
    assert_eq!(
        c.psql(
            "postgres",
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
        )
        .unwrap(),
        "1"
    );
    // New databases inherit the extension from template1.
    c.psql("postgres", "CREATE DATABASE app").unwrap();
    assert_eq!(
        c.psql("app", "SELECT count(*) FROM pg_stat_statements WHERE false")
            .unwrap(),
        "0"
    );
    let pid = postmaster_pid(&c);
    let dir = c.socket_dir().to_path_buf();
    assert!(pid_alive(pid));
    drop(c);
    assert!(!pid_alive(pid), "server still running after drop");
    assert!(!dir.exists(), "cluster directory left behind");
}

#[test]
fn extra_settings_are_applied() {
    let c = Cluster::start(ClusterOptions {
        settings: vec![("work_mem".into(), "'7MB'".into())],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.psql("postgres", "SHOW work_mem").unwrap(), "7MB");
}

#[test]
fn standby_streams_and_promotes() {
    let primary = Cluster::start(ClusterOptions::default()).unwrap();
    primary
        .psql(
            "postgres",
            "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)",
        )
        .unwrap();
    let standby = primary.standby().unwrap();
    assert_eq!(
        standby
            .psql("postgres", "SELECT pg_is_in_recovery()")
            .unwrap(),
        "t"
    );
    primary
        .psql("postgres", "INSERT INTO t VALUES (3)")
        .unwrap();
    let mut seen = String::new();
    for _ in 0..200 {
        seen = standby.psql("postgres", "SELECT count(*) FROM t").unwrap();
        if seen == "3" {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(seen, "3", "the standby did not replay the insert");
    standby.promote().unwrap();
    assert_eq!(
        standby
            .psql("postgres", "SELECT pg_is_in_recovery()")
            .unwrap(),
        "f"
    );
    standby
        .psql("postgres", "INSERT INTO t VALUES (4)")
        .unwrap();
}

#[test]
fn killed_cluster_reports_not_running() {
    let mut c = Cluster::start(ClusterOptions::default()).unwrap();
    assert!(c.is_running());
    c.kill();
    assert!(!c.is_running());
    assert!(c.psql("postgres", "SELECT 1").is_err());
}

#[test]
fn detached_cluster_starts_reports_and_stops() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("pg");
    let d = Detached::new(Some(dir.clone())).unwrap();
    assert!(!d.status().running);
    let st = d.start().unwrap();
    assert!(st.running && st.port.is_some());
    // Starting again is a no-op that reports the same server.
    assert_eq!(d.start().unwrap().pid, st.pid);
    assert!(d.stop().unwrap());
    assert!(!d.status().running);
    d.remove().unwrap();
}

#[test]
fn a_panicking_test_leaves_no_server_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let c = Cluster::start(ClusterOptions::default()).unwrap();
        tx.send((postmaster_pid(&c), c.socket_dir().to_path_buf()))
            .unwrap();
        panic!("a test failing with a cluster in hand");
    });
    assert!(worker.join().is_err());
    let (pid, dir) = rx.recv().unwrap();
    assert!(!pid_alive(pid), "server {pid} outlived the panic");
    assert!(!dir.exists(), "cluster directory left behind");
}

/// Run by `a_killed_test_process_takes_its_server_with_it` in a child process of its own.
#[test]
fn child_holding_a_cluster_until_killed() {
    if std::env::var_os("PGOPT_TEST_CHILD").is_none() {
        return;
    }
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    println!(
        "PID {} DIR {}",
        postmaster_pid(&c),
        c.socket_dir().display()
    );
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_test_process_takes_its_server_with_it() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holding_a_cluster_until_killed",
            "--nocapture",
        ])
        .env("PGOPT_TEST_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (pid, dir): (i32, String) = std::io::BufReader::new(stdout)
        .lines()
        .map_while(|l| l.ok())
        .find_map(|l| {
            let rest = l.strip_prefix("PID ")?;
            let (pid, dir) = rest.split_once(" DIR ")?;
            Some((pid.trim().parse().unwrap(), dir.trim().to_string()))
        })
        .expect("the child printed its server's pid");
    assert!(pid_alive(pid));
    child.kill().unwrap();
    child.wait().unwrap();
    // PR_SET_PDEATHSIG sends SIGQUIT; give the postmaster a moment to go.
    let mut alive = true;
    for _ in 0..200 {
        // A zombie still answers kill(0); read its state to tell.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        alive = !stat.is_empty() && !stat.contains(") Z ");
        if !alive {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(!alive, "server {pid} outlived its killed parent");
    // A killed process runs no Drop: its files are ours to remove.
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn restart_brings_pending_settings_into_effect() {
    let mut c = Cluster::start(ClusterOptions::default()).unwrap();
    let port = c.port();
    c.psql("postgres", "ALTER SYSTEM SET shared_buffers = '64MB'")
        .unwrap();
    c.psql("postgres", "SELECT pg_reload_conf()").unwrap();
    assert_eq!(c.psql("postgres", "SHOW shared_buffers").unwrap(), "128MB");
    c.restart().unwrap();
    assert_eq!(c.port(), port);
    assert_eq!(c.psql("postgres", "SHOW shared_buffers").unwrap(), "64MB");
}

mod cli_support;

/// The `postgres` OS user's uid (the servers' user when the tests run as root).
fn postgres_uid() -> u32 {
    let o = std::process::Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

/// The port in `postgresql://postgres@127.0.0.1:PORT/postgres` of `pgopt embedded start`.
fn port_in(out: &str) -> u16 {
    let url = out
        .lines()
        .find(|l| l.starts_with("postgresql://"))
        .unwrap_or_else(|| panic!("no connection string in {out}"));
    url.rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

#[test]
fn embedded_keeps_its_port_across_stop_and_start_and_status_has_exit_codes() {
    use cli_support::{pgopt, stderr, stdout};
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("pg");
    let d = dir.to_str().unwrap();
    let embedded = |action: &str| pgopt(&["embedded", action, "--data-dir", d]);

    let o = embedded("status");
    assert_eq!(o.status.code(), Some(4), "missing: {}", stdout(&o));
    assert!(stdout(&o).contains("no cluster"), "{}", stdout(&o));

    let o = embedded("start");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let port = port_in(&stdout(&o));
    assert_eq!(embedded("status").status.code(), Some(0));

    assert_eq!(embedded("stop").status.code(), Some(0));
    let o = embedded("status");
    assert_eq!(o.status.code(), Some(3), "stopped: {}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("port {port}")),
        "{}",
        stdout(&o)
    );

    // Started again: the same port, so saved connection strings keep working.
    let o = embedded("start");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(port_in(&stdout(&o)), port);

    // The port taken by someone else meanwhile: refused, saying how to pick another.
    assert_eq!(embedded("stop").status.code(), Some(0));
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let o = embedded("start");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("port {port}")),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--port"), "{}", stderr(&o));
    drop(squatter);

    assert_eq!(embedded("remove").status.code(), Some(0));
    assert_eq!(embedded("status").status.code(), Some(4));
}

#[test]
fn embedded_clean_removes_the_template_and_nothing_else() {
    use cli_support::{pgopt_cmd, stderr, stdout};
    // A private scratch root: the real template stays for the tests running alongside.
    let root = tempfile::tempdir().unwrap();
    // Named after the user that runs the servers: `postgres` when the tests run as root.
    let uid = if unsafe { libc::getuid() } == 0 {
        postgres_uid()
    } else {
        unsafe { libc::getuid() }
    };
    let template = root.path().join(format!("pgopt-template-v9-pg15-u{uid}"));
    std::fs::create_dir_all(template.join("base")).unwrap();
    std::fs::write(template.join("pgopt-template-ready"), "").unwrap();
    let leftover = root
        .path()
        .join(format!("pgopt-template-v9-pg15-u{uid}.building-42"));
    std::fs::create_dir_all(&leftover).unwrap();
    let someone_else = root.path().join("pgopt-template-v9-pg15-u99999");
    std::fs::create_dir_all(&someone_else).unwrap();
    let unrelated = root.path().join("keep-me");
    std::fs::create_dir_all(&unrelated).unwrap();

    let o = pgopt_cmd(&["embedded", "clean"])
        .env("PGOPT_TMPDIR", root.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!template.exists(), "{}", stdout(&o));
    assert!(!leftover.exists(), "{}", stdout(&o));
    assert!(stdout(&o).contains("removed"), "{}", stdout(&o));
    assert!(someone_else.exists(), "another user's template stays");
    assert!(unrelated.exists());

    let o = pgopt_cmd(&["embedded", "clean"])
        .env("PGOPT_TMPDIR", root.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing to remove"), "{}", stdout(&o));
}
