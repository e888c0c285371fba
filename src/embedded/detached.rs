//! Detached clusters (`pgopt embedded start`): started with pg_ctl, outliving pgopt.

use super::*;

/// A cluster in a named directory that outlives pgopt (`pgopt embedded start|stop|status`),
/// run with pg_ctl.
pub struct Detached {
    pub(super) inst: Installation,
    pub data_dir: PathBuf,
}

/// What `pgopt embedded status` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DetachedStatus {
    pub running: bool,
    pub pid: Option<i32>,
    pub port: Option<u16>,
    pub socket_dir: Option<String>,
}

impl Detached {
    /// The default directory: `$TMPDIR/pgopt-embedded-<uid>`.
    pub fn default_dir() -> PathBuf {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        std::env::temp_dir().join(format!("pgopt-embedded-{uid}"))
    }

    pub fn new(data_dir: Option<PathBuf>) -> Result<Self> {
        Ok(Detached {
            inst: Installation::detect()?,
            data_dir: data_dir.unwrap_or_else(Self::default_dir),
        })
    }

    /// Creates the cluster from the template if needed and starts it; returns its status.
    pub fn start(&self) -> Result<DetachedStatus> {
        self.start_on(None)
    }

    /// The port this cluster had when it last ran (saved in [`PORT_FILE`]).
    pub fn saved_port(&self) -> Option<u16> {
        fs::read_to_string(self.data_dir.join(PORT_FILE))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    }

    /// As [`Detached::start`], on `port` when given; else on the port it had before (so that
    /// saved connection strings keep working), else on a free one. A port that is taken is
    /// refused with how to pick another.
    pub fn start_on(&self, port: Option<u16>) -> Result<DetachedStatus> {
        let st = self.status();
        if st.running {
            return Ok(st);
        }
        if !self.data_dir.join("PG_VERSION").exists() {
            if self.data_dir.exists()
                && fs::read_dir(&self.data_dir)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            {
                return Err(Error::BadInput(format!(
                    "{} exists and is not a PostgreSQL data directory; give another --data-dir",
                    self.data_dir.display()
                )));
            }
            let _ = fs::remove_dir(&self.data_dir);
            if let Some(parent) = self.data_dir.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            self.inst
                .make_data_dir(&self.data_dir, &ClusterOptions::default())?;
            let marker = self.data_dir.join(DETACHED_MARKER);
            fs::write(
                &marker,
                "made by `pgopt embedded start`: a throw-away cluster that \
                 `pgopt tune --restart` may restart without asking\n",
            )
            .map_err(|e| Error::io(&marker, e))?;
            self.inst.run_as.own(&marker)?;
        }
        let meta = fs::metadata(&self.data_dir).map_err(|e| Error::io(&self.data_dir, e))?;
        if meta.uid() != self.inst.run_as.uid {
            return Err(Error::BadInput(format!(
                "{} is not owned by the user that runs the server",
                self.data_dir.display()
            )));
        }
        let port = match port.or_else(|| self.saved_port()) {
            Some(p) => {
                if std::net::TcpListener::bind(("127.0.0.1", p)).is_err() {
                    return Err(Error::BadInput(format!(
                        "port {p} (this cluster's{}) is taken by another program; free it, or \
                         start on another port with `pgopt embedded start --port N --data-dir {}` \
                         (connection strings saved with port {p} then need the new one)",
                        if port.is_some() {
                            ", as asked"
                        } else {
                            " since its first start"
                        },
                        self.data_dir.display()
                    )));
                }
                p
            }
            None => free_port()?,
        };
        let port_file = self.data_dir.join(PORT_FILE);
        fs::write(&port_file, format!("{port}\n")).map_err(|e| Error::io(&port_file, e))?;
        self.inst.run_as.own(&port_file)?;
        let mut cmd = self.inst.run_as.command(&self.inst.bin.program("pg_ctl"));
        cmd.arg("start")
            .args(["-w", "-t", "60", "-D"])
            .arg(&self.data_dir)
            .arg("-l")
            .arg(self.log_file())
            .arg("-o")
            .arg(format!("-p {port} -k {}", self.data_dir.display()))
            .stdin(Stdio::null());
        run_checked(cmd, "pg_ctl start").map_err(|e| match e {
            Error::Embedded(msg) if msg.contains("Permission denied") && self.inst.run_as.switch => {
                Error::Embedded(format!(
                    "{msg}. The server runs as the `{SUPERUSER}` OS user: every parent directory of {} must be searchable by it (chmod o+x), or pick another --data-dir",
                    self.data_dir.display()
                ))
            }
            other => other,
        })?;
        Ok(self.status())
    }

    pub fn stop(&self) -> Result<bool> {
        if !self.status().running {
            return Ok(false);
        }
        let mut cmd = self.inst.run_as.command(&self.inst.bin.program("pg_ctl"));
        cmd.arg("stop")
            .args(["-w", "-t", "60", "-m", "fast", "-D"])
            .arg(&self.data_dir);
        run_checked(cmd, "pg_ctl stop")?;
        Ok(true)
    }

    /// Restarts the running cluster (fast shutdown, same options: pg_ctl reuses
    /// postmaster.opts), waiting up to 60 s for each half; output goes to server.log.
    pub fn restart(&self) -> Result<DetachedStatus> {
        if !self.status().running {
            return Err(Error::Embedded(format!(
                "the cluster in {} is not running; start it with `pgopt embedded start`",
                self.data_dir.display()
            )));
        }
        let cmd = self.inst.run_as.command(&self.inst.bin.program("pg_ctl"));
        super::pg_ctl_restart(cmd, &self.data_dir, &self.log_file(), 60)?;
        Ok(self.status())
    }

    /// Where the server writes its output.
    pub fn log_file(&self) -> PathBuf {
        self.data_dir.join("server.log")
    }

    /// True when `data_dir` is a [`Detached`] cluster's (it holds the marker file).
    pub fn is_detached(data_dir: &Path) -> bool {
        data_dir.join(DETACHED_MARKER).is_file()
    }

    pub fn status(&self) -> DetachedStatus {
        let text = fs::read_to_string(self.data_dir.join("postmaster.pid")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let pid = lines.first().and_then(|l| l.trim().parse::<i32>().ok());
        // SAFETY: signal 0 only checks that the process exists.
        let alive = pid.is_some_and(|p| unsafe { libc::kill(p, 0) } == 0);
        DetachedStatus {
            running: alive,
            pid: pid.filter(|_| alive),
            port: lines
                .get(3)
                .and_then(|l| l.trim().parse().ok())
                .filter(|_| alive),
            socket_dir: lines.get(4).map(|l| l.trim().to_string()).filter(|_| alive),
        }
    }

    pub fn remove(&self) -> Result<()> {
        self.stop()?;
        fs::remove_dir_all(&self.data_dir).map_err(|e| Error::io(&self.data_dir, e))
    }
}
