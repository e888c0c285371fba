//! Restarting the server so that settings waiting for a restart take effect (I/O): the
//! executor's [`crate::plan::Action::Restart`] step.
//!
//! Only a server on this machine, whose data directory pgopt can read, is restarted, with
//! `pg_ctl restart -m fast -w -t 60` run as the data directory's owner. [`plan`] checks all
//! of that before anything changes and tells a pgopt embedded cluster (its marker file) from
//! any other server: the command restarts the first directly and asks before restarting the
//! second. A server run by a systemd unit is refused (systemctl must restart it, or the unit
//! loses its server). This module never asks for confirmation (the command does, before
//! anything changes); [`restart_and_reconnect`] restarts, waits (bounded) for the server to
//! accept connections and takes the pgopt advisory lock again on the new session.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{lock, Reconnect};
use crate::db::Conn;
use crate::embedded::{Binaries, Detached};
use crate::error::{Error, Result};

/// pg_ctl's wait for each half of the restart, in seconds.
pub const PG_CTL_WAIT_S: u64 = 60;

/// A restart that [`plan`] found possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// A pgopt embedded cluster: restarted without asking.
    pub embedded: bool,
    /// The running postmaster's pid (postmaster.pid).
    pub postmaster_pid: i32,
    /// Where the restarted server's output goes (pg_ctl -l).
    pub log: PathBuf,
    /// OS user and group that own the data directory; the server runs as them.
    pub owner: (u32, u32),
}

impl Plan {
    /// `HOST:PORT`, as `--yes-restart` takes it.
    pub fn target(&self) -> String {
        host_port(&self.host, self.port)
    }
}

/// `HOST:PORT` (an IPv6 address in brackets).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// True when `given` (`HOST:PORT`, `[v6]:PORT`) names exactly `host` and `port`.
pub fn names_target(given: &str, host: &str, port: u16) -> bool {
    let Some((h, p)) = given.trim().rsplit_once(':') else {
        return false;
    };
    let h = h
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h);
    p.parse::<u16>() == Ok(port) && h == host
}

/// The reasons a server cannot be restarted by pgopt, each with what to do instead.
fn refuse(why: String) -> Error {
    Error::BadInput(format!("{why}; nothing was changed"))
}

/// Checks that the server at `host:port` with `data_directory` (as the server reports it)
/// can be restarted from here: on this machine (`local`), its postmaster.pid readable and
/// naming the same port, its data directory owned by us (or we are root), no systemd unit.
pub fn plan(host: &str, port: u16, data_directory: Option<&str>, local: bool) -> Result<Plan> {
    let target = host_port(host, port);
    let yourself = "restart it yourself (pg_ctl restart -D DATADIR -m fast, or systemctl \
                    restart postgresql...), then run `pgopt tune` on the same TARGET to verify";
    if !local {
        return Err(refuse(format!(
            "pgopt cannot restart the server at {target}: it is on another machine; {yourself}"
        )));
    }
    let Some(dir) = data_directory else {
        return Err(refuse(format!(
            "cannot restart the server at {target}: this role may not read data_directory \
             (connect as a superuser or a role with pg_read_all_settings), or {yourself}"
        )));
    };
    let data_dir = PathBuf::from(dir);
    let pid_file = data_dir.join("postmaster.pid");
    let text = fs::read_to_string(&pid_file).map_err(|e| {
        refuse(format!(
            "cannot restart the server at {target}: cannot read {} ({e}); run pgopt as the \
             server's OS user or root, or {yourself}",
            pid_file.display()
        ))
    })?;
    let lines: Vec<&str> = text.lines().collect();
    let pid = lines.first().and_then(|l| l.trim().parse::<i32>().ok());
    let pid_port = lines.get(3).and_then(|l| l.trim().parse::<u16>().ok());
    let Some(pid) = pid.filter(|p| *p > 0) else {
        return Err(refuse(format!(
            "cannot restart the server at {target}: {} names no postmaster",
            pid_file.display()
        )));
    };
    if pid_port != Some(port) {
        return Err(refuse(format!(
            "cannot restart the server at {target}: {} is of a server on port {}, so the \
             target is not the server in {} (a container, a tunnel?); {yourself}",
            pid_file.display(),
            pid_port.map_or("?".to_string(), |p| p.to_string()),
            data_dir.display()
        )));
    }
    let meta = fs::metadata(&data_dir).map_err(|e| Error::io(&data_dir, e))?;
    let owner = (meta.uid(), meta.gid());
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    if me != 0 && me != owner.0 {
        return Err(refuse(format!(
            "cannot restart the server at {target}: {} belongs to uid {}, and pgopt runs as \
             uid {me}; run pgopt as that user (e.g. sudo -u postgres pgopt tune ...) or {yourself}",
            data_dir.display(),
            owner.0
        )));
    }
    let embedded = Detached::is_detached(&data_dir);
    if !embedded {
        if let Some(unit) = systemd_unit(pid) {
            return Err(refuse(format!(
                "the server at {target} is run by the systemd unit {unit}: restart it with \
                 `systemctl restart {unit}` (pg_ctl would take the server away from the unit), \
                 then run `pgopt tune` on the same TARGET to verify"
            )));
        }
    }
    let log = if embedded {
        data_dir.join("server.log")
    } else {
        current_log(pid).unwrap_or_else(|| data_dir.join("pgopt-restart.log"))
    };
    Ok(Plan {
        host: host.to_string(),
        port,
        data_dir,
        embedded,
        postmaster_pid: pid,
        log,
        owner,
    })
}

/// The service unit whose cgroup holds `pid`, when it looks like PostgreSQL's
/// (`postgresql@15-main.service`, `postgresql-16.service`).
fn systemd_unit(pid: i32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .filter_map(|l| l.rsplit('/').next())
        .find(|u| u.ends_with(".service") && u.contains("postgres"))
        .map(str::to_string)
}

/// The file the running postmaster writes its output to (its stderr), so that the restarted
/// server keeps logging there. None for a pipe or socket (a service manager's journal).
fn current_log(pid: i32) -> Option<PathBuf> {
    let target = fs::read_link(format!("/proc/{pid}/fd/2")).ok()?;
    let is_file = fs::metadata(&target).is_ok_and(|m| m.is_file());
    (is_file || target == Path::new("/dev/null")).then_some(target)
}

/// pg_ctl of the running server's installation: beside its executable, else the one pgopt
/// finds, when its major version is the data directory's.
fn pg_ctl(plan: &Plan) -> Result<PathBuf> {
    if let Ok(exe) = fs::read_link(format!("/proc/{}/exe", plan.postmaster_pid)) {
        if let Some(p) = exe
            .parent()
            .map(|d| d.join("pg_ctl"))
            .filter(|p| p.is_file())
        {
            return Ok(p);
        }
    }
    let bin = Binaries::find()?;
    let want = fs::read_to_string(plan.data_dir.join("PG_VERSION")).unwrap_or_default();
    if want.trim() != bin.major().to_string() {
        return Err(Error::Restart(format!(
            "no pg_ctl for PostgreSQL {} found (found {}); set PGOPT_PG_BINDIR to its bin \
             directory",
            want.trim(),
            bin.version
        )));
    }
    Ok(bin.program("pg_ctl"))
}

/// Restarts the server of `plan` and waits for it (pg_ctl -w, up to [`PG_CTL_WAIT_S`] per
/// half). Blocking.
pub fn restart(plan: &Plan) -> Result<()> {
    if plan.embedded {
        Detached::new(Some(plan.data_dir.clone()))?.restart()?;
        return Ok(());
    }
    let mut cmd = Command::new(pg_ctl(plan)?);
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 && plan.owner.0 != 0 {
        cmd.uid(plan.owner.0).gid(plan.owner.1);
    }
    cmd.env_remove("PGDATA").env("LC_ALL", "C");
    crate::embedded::pg_ctl_restart(cmd, &plan.data_dir, &plan.log, PG_CTL_WAIT_S).map_err(|e| {
        match e {
            Error::Embedded(msg) => Error::Restart(msg),
            other => other,
        }
    })
}

/// How long the server may take to accept connections again after pg_ctl said it started.
pub const RECONNECT_WITHIN: Duration = Duration::from_secs(60);

/// Restarts the server of `plan` (pg_ctl on a blocking thread), connects again through
/// `reconnect` within [`RECONNECT_WITHIN`] and takes the pgopt advisory lock on the new
/// session (waiting up to `lock_wait`). `undo` says how to go back, for the errors.
pub async fn restart_and_reconnect(
    plan: &Plan,
    reconnect: &dyn Reconnect,
    lock_wait: Duration,
    undo: &str,
) -> Result<Conn> {
    let p = plan.clone();
    tokio::task::spawn_blocking(move || restart(&p))
        .await
        .map_err(|e| Error::Internal(format!("restart: {e}")))?
        .map_err(|e| {
            Error::Restart(format!(
                "{e}. Look at {} and the server's log. {undo}",
                plan.log.display()
            ))
        })?;
    let start = Instant::now();
    let conn = loop {
        match reconnect.connect().await {
            Ok(c) => break c,
            Err(e) if start.elapsed() > RECONNECT_WITHIN => {
                return Err(Error::Restart(format!(
                    "the server at {} did not accept connections within {} s of the restart \
                     ({e}). Look at {} and the server's log. {undo}",
                    plan.target(),
                    RECONNECT_WITHIN.as_secs(),
                    plan.log.display()
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    lock::acquire(&conn, lock_wait).await?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_restart_must_name_the_exact_host_and_port() {
        assert!(names_target("127.0.0.1:5432", "127.0.0.1", 5432));
        assert!(names_target(
            "/var/run/postgresql:5433",
            "/var/run/postgresql",
            5433
        ));
        assert!(names_target("[::1]:5432", "::1", 5432));
        assert!(!names_target("127.0.0.1:5433", "127.0.0.1", 5432));
        assert!(!names_target("localhost:5432", "127.0.0.1", 5432));
        assert!(!names_target("127.0.0.1", "127.0.0.1", 5432));
        assert_eq!(host_port("::1", 5432), "[::1]:5432");
        assert_eq!(host_port("db1", 5432), "db1:5432");
    }

    #[test]
    fn a_remote_server_or_an_unreadable_data_directory_is_refused_as_bad_input() {
        let e = plan("db.example.com", 5432, Some("/var/lib/pg"), false).unwrap_err();
        assert!(e.is_bad_input(), "{e}");
        assert!(e.to_string().contains("another machine"), "{e}");
        assert!(e.to_string().contains("pgopt tune"), "{e}");
        let e = plan("127.0.0.1", 5432, None, true).unwrap_err();
        assert!(e.to_string().contains("pg_read_all_settings"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = plan("127.0.0.1", 5432, dir.path().to_str(), true).unwrap_err();
        assert!(
            e.is_bad_input() && e.to_string().contains("postmaster.pid"),
            "{e}"
        );
    }
}
