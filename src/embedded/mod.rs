//! Throw-away local PostgreSQL clusters, for the demo, the tests and the benchmarks.
//!
//! A template cluster is initdb-ed once per machine (per server version and user), with
//! pg_stat_statements created in template1, and copied for every new cluster: a start from
//! the template costs about a tenth of a second where a fresh initdb costs most of one.
//!
//! Servers are spawned directly (no pg_ctl polling) from one long-lived thread with
//! `PR_SET_PDEATHSIG`, so a test process that dies takes its servers with it; [`Cluster`]'s
//! Drop stops the server and removes its files. PostgreSQL refuses to run as root: as root,
//! every server program runs as the `postgres` OS user in directories it owns.
//!
//! [`Detached`] clusters (for `pgopt embedded start`) are started with pg_ctl instead and
//! outlive pgopt on purpose. Their data directory holds a marker file ([`DETACHED_MARKER`]):
//! `pgopt tune --restart` restarts such a cluster without asking.
//!
//! This module starts processes and writes files; it never connects to a server except to
//! set a password when asked to.
//!
//! - [`binaries`]: finding the server programs.
//! - [`run_as`]: running them as the `postgres` OS user when we are root.
//! - [`template`]: the template cluster every new one is copied from ([`Installation`]).
//! - [`cluster`]: clusters spawned directly, stopped on Drop ([`Cluster`]).
//! - [`detached`]: clusters started with pg_ctl that outlive pgopt ([`Detached`]).

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a server may take to accept connections before we give up.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to stop before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bump when the template's contents change, so old templates are not reused.
const TEMPLATE_VERSION: u32 = 1;
/// Bounds of the set-up SQL run through psql (tests load data with it: minutes, not hours).
const PSQL_CONNECT_TIMEOUT_S: u64 = 10;
const PSQL_STATEMENT_TIMEOUT_S: u64 = 600;
/// The superuser of every embedded cluster.
pub const SUPERUSER: &str = "postgres";
/// The file in the data directory of a [`Detached`] cluster that marks it as pgopt's own.
pub const DETACHED_MARKER: &str = "pgopt-embedded";
/// In a [`Detached`] cluster's data directory: the port it runs on, kept across stop/start.
pub const PORT_FILE: &str = "pgopt-port";

/// Settings every embedded cluster starts with (written to postgresql.conf of the template).
const BASE_SETTINGS: &[(&str, &str)] = &[
    (
        "shared_preload_libraries",
        "'pg_stat_statements,auto_explain'",
    ),
    ("listen_addresses", "'127.0.0.1'"),
    ("fsync", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "200"),
    ("pg_stat_statements.max", "10000"),
    ("track_io_timing", "on"),
    ("log_min_messages", "warning"),
    ("max_wal_senders", "10"),
    ("wal_level", "replica"),
    ("hot_standby", "on"),
];

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Extra `name = value` lines for postgresql.conf (values as PostgreSQL writes them,
    /// strings in single quotes).
    pub settings: Vec<(String, String)>,
    /// Make a self-signed CA and server certificate (CN and SAN localhost, 127.0.0.1) and
    /// turn ssl on; [`Cluster::ca_cert`] is the CA to verify against.
    pub ssl: bool,
    /// Give the superuser this password and require scram-sha-256 over TCP (the unix socket
    /// stays trust, for pgopt's own set-up).
    pub password: Option<String>,
}

mod binaries;
mod cluster;
mod detached;
mod run_as;
mod template;

pub use binaries::Binaries;
use cluster::*;
pub use cluster::{clean, local_target, scratch_root, Cluster, StandbyOptions};
pub use detached::{Detached, DetachedStatus};
use run_as::*;
pub use template::Installation;
use template::*;

fn run_checked(mut cmd: Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| Error::Embedded(format!("cannot run {what}: {e}")))?;
    if !out.status.success() {
        return Err(Error::Embedded(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )));
    }
    Ok(())
}

/// `pg_ctl restart` of `data_dir`: fast shutdown, waiting up to `wait_s` for each half, the
/// server's output to `log`. The one way pgopt restarts a server; `cmd` is pg_ctl, set up to
/// run as the data directory's owner.
pub(crate) fn pg_ctl_restart(
    mut cmd: Command,
    data_dir: &Path,
    log: &Path,
    wait_s: u64,
) -> Result<()> {
    cmd.arg("restart")
        .args(["-w", "-t", &wait_s.to_string(), "-m", "fast", "-D"])
        .arg(data_dir)
        .arg("-l")
        .arg(log)
        .stdin(Stdio::null());
    run_checked(cmd, "pg_ctl restart")
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::Embedded(format!("cannot find a free port: {e}")))?;
    Ok(l.local_addr()
        .map_err(|e| Error::Embedded(e.to_string()))?
        .port())
}

/// Spawns server processes from one thread that lives as long as the process, with
/// PR_SET_PDEATHSIG: the signal fires when the *thread* that forked exits, so it must not be
/// a short-lived test thread.
fn spawn_server(cmd: Command) -> Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("pgopt-embedded-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    // SAFETY: prctl is async-signal-safe; called between fork and exec.
                    unsafe {
                        cmd.pre_exec(|| {
                            // SIGQUIT: the postmaster's immediate shutdown, which ends its children.
                            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.lock()
        .map_err(|_| Error::Embedded("spawner lock poisoned".into()))?
        .send((cmd, reply_tx))
        .map_err(|_| Error::Embedded("spawner thread is gone".into()))?;
    reply_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| Error::Embedded("spawning the server did not finish in 10 s".into()))?
        .map_err(|e| Error::Embedded(format!("cannot start postgres: {e}")))
}

/// Reads postmaster.pid line 8 (the status) — what pg_ctl waits on.
fn postmaster_status(data_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines().nth(7).map(|s| s.trim().to_string())
}

fn tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s.trim().to_string()
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
