//! `pgopt serve` through the binary: `--check-config` (exit codes, the line, no secret in
//! the output), flags over the file, and the daemon's life cycle (runs until SIGTERM or
//! Ctrl-C and exits 0; a second daemon on the same data directory refuses).
//!
//! The daemon here has no part plugged in that connects (the collector is wired by the
//! lead), so the target is a DSN that no server answers: the daemon must start anyway.

mod cli_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cli_support::{pgopt, pgopt_cmd, stderr, stdout};

const TOKEN: &str = "tok-0123456789abcdef-secret";
const PASSWORD: &str = "hunter2-pw";

/// A config file with secrets in every place one can be: a DSN password, a token file, a
/// webhook query string.
fn write_config(dir: &Path, listen: &str, with_auth: bool) -> std::path::PathBuf {
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let auth = if with_auth {
        format!("[auth]\ntoken_file = \"{}\"\n", token.display())
    } else {
        String::new()
    };
    let text = format!(
        r#"listen = "{listen}"
data_dir = "{data}"
{auth}
[[target]]
name = "governance-primary"
dsn = "host=db1 dbname=acgs user=pgopt password={PASSWORD}"
groups = ["prod"]

[[target]]
name = "governance-standby"
dsn = "postgresql://pgopt:{PASSWORD}@db2:5433/acgs"

[[alert]]
name = "cache"
when = "cache_hit_ratio < 0.99 for 10m"

[[notify.webhook]]
url = "https://hooks.example.com/pgopt?key=webhook-secret"

[[maintenance.window]]
cron = "0 2 * * 6"
duration = "3h"
"#,
        data = dir.join("data").display(),
    );
    let path = dir.join("pgopt.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_no_secret(text: &str) {
    for secret in [TOKEN, PASSWORD, "webhook-secret", "dbname=acgs", "db2:5433"] {
        assert!(!text.contains(secret), "{secret:?} shown in:\n{text}");
    }
}

#[test]
fn check_config_of_a_good_file_exits_0_and_shows_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "0.0.0.0:8432", true);
    let out = pgopt(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--check-config",
    ]);
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{o}\n{e}");
    assert!(o.contains("configuration is valid"), "{o}");
    assert!(o.contains("governance-primary"), "{o}");
    assert!(o.contains("governance-standby"), "{o}");
    assert!(o.contains("sample every 10s"), "{o}");
    assert!(o.contains("alerts:     1"), "{o}");
    assert!(o.contains("\"0 2 * * 6\" for 3h"), "{o}");
    assert!(o.contains("https://hooks.example.com"), "{o}");
    assert!(o.contains("token required"), "{o}");
    assert_no_secret(&o);
    assert_no_secret(&e);
    assert!(
        !dir.path().join("data").exists(),
        "--check-config must not create the data directory"
    );
}

#[test]
fn check_config_of_a_bad_file_exits_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pgopt.toml");
    std::fs::write(
        &path,
        "[intervals]\nsample = \"10s\"\nintervl = \"5s\"\n[[target]]\nname = \"a\"\n\
         dsn = \"host=db1 password=hunter2-pw\"\n",
    )
    .unwrap();
    let out = pgopt(&[
        "serve",
        "--config",
        path.to_str().unwrap(),
        "--check-config",
    ]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains("pgopt.toml line 3: unknown key \"intervl\""),
        "{e}"
    );
    assert!(e.contains("expected one of"), "{e}");
    assert_no_secret(&e);
}

#[test]
fn token_file_flag_lets_a_file_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "0.0.0.0:8432", false);
    let c = config.to_str().unwrap();
    let out = pgopt(&["serve", "--config", c, "--check-config"]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains("pgopt.toml line 1: listen 0.0.0.0:8432 is not a loopback"),
        "{e}"
    );
    assert!(e.contains("--token-file"), "{e}");

    let token = dir.path().join("token");
    let out = pgopt(&[
        "serve",
        "--config",
        c,
        "--token-file",
        token.to_str().unwrap(),
        "--check-config",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("token required"));
    assert_no_secret(&stdout(&out));

    // --listen over the file's address: loopback needs no token.
    let out = pgopt(&[
        "serve",
        "--config",
        c,
        "--listen",
        "127.0.0.1:9999",
        "--check-config",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("http://127.0.0.1:9999"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn one_target_on_a_public_address_without_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = pgopt(&[
        "serve",
        "host=127.0.0.1 port=1 dbname=x user=u",
        "--listen",
        "0.0.0.0:8432",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains("--listen: listen 0.0.0.0:8432 is not a loopback"),
        "{e}"
    );
    assert!(
        !data.exists(),
        "nothing created before the configuration is valid"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon for one unreachable target, and its stderr lines as they come.
fn start_daemon(data: &Path) -> (Child, mpsc::Receiver<String>) {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = pgopt_cmd(&[
        "serve",
        &format!("host=127.0.0.1 port=1 dbname=x user=u password={PASSWORD}"),
        "--listen",
        &listen,
        "--data-dir",
        data.to_str().unwrap(),
        "--log-format",
        "json",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start pgopt serve");
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits (bounded) for a stderr line holding `what`; all lines seen so far on failure.
fn wait_for_line(rx: &mpsc::Receiver<String>, what: &str, seen: &mut Vec<String>) {
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let hit = line.contains(what);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(e) => panic!(
                "no line with {what:?} ({e}); stderr so far:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// Waits for the child to exit, at most `bound` (then kills it and fails).
fn wait_exit(child: &mut Child, bound: Duration) -> std::process::ExitStatus {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if waited >= bound {
            let _ = child.kill();
            panic!("pgopt serve did not exit within {bound:?} of the signal");
        }
        std::thread::sleep(step);
        waited += step;
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child we started and have not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill failed");
}

#[test]
fn serve_runs_until_sigterm_exits_0_and_a_second_daemon_on_its_data_dir_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state").join("pgopt");
    let (mut child, lines) = start_daemon(&data);
    let mut seen = Vec::new();
    wait_for_line(&lines, "pgopt serve: watching 1 target(s)", &mut seen);
    wait_for_line(&lines, "pgopt serve started", &mut seen);
    assert!(
        seen.iter()
            .any(|l| l.starts_with('{') && l.contains("\"level\":\"INFO\"")),
        "JSON log lines expected:\n{}",
        seen.join("\n")
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&data).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the data directory is private");

    let second = pgopt(&[
        "serve",
        "host=127.0.0.1 port=1 dbname=x user=u",
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let e = stderr(&second);
    assert_eq!(second.status.code(), Some(2), "{e}");
    assert!(
        e.contains(&format!("another pgopt serve (pid {})", child.id())),
        "{e}"
    );
    assert!(e.contains("--data-dir"), "{e}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first daemon keeps running"
    );

    signal(&child, libc::SIGTERM);
    // The daemon's own bound is 10 s; 15 s is systemd's TimeoutStopSec in contrib/.
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "exit 0 after SIGTERM");
    wait_for_line(&lines, "pgopt serve stopped", &mut seen);
    let all = seen.join("\n");
    assert!(!all.contains(PASSWORD), "{all}");

    // The lock went with the process: a new daemon may start on the same directory.
    let (mut again, lines) = start_daemon(&data);
    let mut seen = Vec::new();
    wait_for_line(&lines, "pgopt serve started", &mut seen);
    signal(&again, libc::SIGINT);
    let status = wait_exit(&mut again, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "exit 0 after Ctrl-C (SIGINT)");
}
