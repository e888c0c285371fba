//! Throw-away clusters spawned directly and stopped on Drop.

use super::*;

/// A running postmaster we spawned.
pub(super) struct Server {
    pub(super) child: Option<Child>,
    pub(super) data_dir: PathBuf,
    pub(super) port: u16,
    pub(super) log: PathBuf,
}

impl Server {
    /// Spawns `postgres` on `port` with its socket in `socket_dir` and waits until it is ready.
    pub(super) fn start(
        inst: &Installation,
        data_dir: &Path,
        socket_dir: &Path,
        port: u16,
    ) -> Result<Self> {
        let log = socket_dir.join("server.log");
        let logf = fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
        inst.run_as.own(&log)?;
        let mut cmd = inst.run_as.command(&inst.bin.program("postgres"));
        cmd.arg("-D")
            .arg(data_dir)
            .args(["-p", &port.to_string(), "-k"])
            .arg(socket_dir)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().map_err(|e| Error::io(&log, e))?)
            .stderr(logf);
        let child = spawn_server(cmd)?;
        let mut server = Server {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            port,
            log,
        };
        server.wait_ready()?;
        Ok(server)
    }

    pub(super) fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = postmaster_status(&self.data_dir) {
                if status == "ready" || status == "standby" {
                    return Ok(());
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(exit)) = child.try_wait() {
                    self.child = None;
                    return Err(Error::Embedded(format!(
                        "the server exited ({exit}) while starting:\n{}",
                        tail(&self.log, 2000)
                    )));
                }
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(Error::Embedded(format!(
                    "the server did not become ready in {} s:\n{}",
                    START_TIMEOUT.as_secs(),
                    tail(&self.log, 2000)
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub(super) fn signal_and_wait(&mut self, sig: i32) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill on the pid of a child we have not reaped yet.
        unsafe { libc::kill(child.id() as i32, sig) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Immediate shutdown: fine for throw-away data.
    pub(super) fn stop(&mut self) {
        self.signal_and_wait(libc::SIGQUIT);
    }

    /// Fast shutdown: a clean checkpoint, for data we keep (the template).
    pub(super) fn stop_fast(&mut self) {
        self.signal_and_wait(libc::SIGINT);
    }

    pub(super) fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How [`Cluster::standby_with`] sets a standby up.
#[derive(Debug, Clone, Default)]
pub struct StandbyOptions {
    /// `application_name` in the standby's primary_conninfo: what the primary's
    /// `synchronous_standby_names` names (none: PostgreSQL's default, `walreceiver`).
    pub application_name: Option<String>,
    /// Extra `name = value` lines for the standby's postgresql.conf (after the ones copied
    /// from the primary, so they win).
    pub settings: Vec<(String, String)>,
}

/// A running throw-away cluster. Dropping it stops the server and deletes its files.
pub struct Cluster {
    pub(super) inst: Installation,
    pub(super) server: Server,
    /// Holds data/, the unix socket and server.log; removed on drop.
    pub(super) _dir: tempfile::TempDir,
    pub(super) path: PathBuf,
    pub(super) ca_cert: Option<PathBuf>,
    pub(super) password: Option<String>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("port", &self.server.port)
            .field("dir", &self.path)
            .finish_non_exhaustive()
    }
}

/// The target of a cluster this process started, listening on `port` (the superuser over
/// TCP, no TLS, trust): built from the cluster alone, never from the user's PG* variables or
/// password file, which may point somewhere else entirely.
pub fn local_target(port: u16, dbname: &str) -> Result<crate::db::Target> {
    let dsn = format!("postgresql://{SUPERUSER}@127.0.0.1:{port}/{dbname}?sslmode=disable");
    let defaults = crate::db::SystemDefaults {
        socket_dir: None,
        os_user: Some(SUPERUSER.to_string()),
        home: None,
    };
    crate::db::Target::resolve_with(Some(&dsn), &|_| None, &defaults)
}

impl Cluster {
    /// Starts a new cluster copied from the template.
    pub fn start(opts: ClusterOptions) -> Result<Self> {
        let inst = Installation::detect()?;
        let dir = new_cluster_dir(&inst)?;
        let data = dir.path().join("data");
        let ca_cert = inst.make_data_dir(&data, &opts)?;
        let server = start_on_free_port(&inst, &data, dir.path())?;
        let cluster = Cluster {
            inst,
            server,
            path: dir.path().to_path_buf(),
            _dir: dir,
            ca_cert,
            password: opts.password.clone(),
        };
        if let Some(pw) = &opts.password {
            cluster.psql(
                "postgres",
                &format!(
                    "ALTER ROLE {SUPERUSER} PASSWORD {}",
                    crate::ident::quote_literal(pw)
                ),
            )?;
        }
        Ok(cluster)
    }

    /// A streaming standby of this cluster (pg_basebackup -R), started and ready.
    pub fn standby(&self) -> Result<Cluster> {
        self.standby_with(&StandbyOptions::default())
    }

    /// [`Cluster::standby`] with an `application_name` in its primary_conninfo (the name the
    /// primary's `synchronous_standby_names` refers to) and settings of its own. A name that
    /// is not a plain identifier (letters, digits, `_`) is refused.
    pub fn standby_with(&self, opts: &StandbyOptions) -> Result<Cluster> {
        let dir = new_cluster_dir(&self.inst)?;
        let data = dir.path().join("data");
        let mut bb = self
            .inst
            .run_as
            .command(&self.inst.bin.program("pg_basebackup"));
        bb.arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &self.port().to_string(), "-U", SUPERUSER, "-D"])
            .arg(&data)
            .args(["-R", "-X", "stream", "-c", "fast"])
            .env("PGCONNECT_TIMEOUT", PSQL_CONNECT_TIMEOUT_S.to_string());
        run_checked(bb, "pg_basebackup")?;
        if let Some(name) = &opts.application_name {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::BadInput(format!(
                    "standby application_name {name:?}: use letters, digits and _ only"
                )));
            }
            // pg_basebackup -R writes primary_conninfo without one (the standby then reports
            // "walreceiver"); a later keyword wins in a conninfo, so it goes first.
            let auto = data.join("postgresql.auto.conf");
            let text = fs::read_to_string(&auto).map_err(|e| Error::io(&auto, e))?;
            let key = "primary_conninfo = '";
            if !text.contains(key) {
                return Err(Error::Embedded(
                    "pg_basebackup -R wrote no primary_conninfo".into(),
                ));
            }
            let text = text.replacen(key, &format!("{key}application_name={name} "), 1);
            fs::write(&auto, text).map_err(|e| Error::io(&auto, e))?;
        }
        let mut conf = String::new();
        for (k, v) in &opts.settings {
            if k.contains(['\n', '=']) || v.contains('\n') {
                return Err(Error::BadInput(format!("bad embedded setting {k:?}")));
            }
            conf.push_str(&format!("{k} = {v}\n"));
        }
        if !conf.is_empty() {
            append(&data.join("postgresql.conf"), &conf)?;
        }
        // The primary's socket directory is written into primary_conninfo; that's what we want.
        let server = start_on_free_port(&self.inst, &data, dir.path())?;
        Ok(Cluster {
            inst: self.inst.clone(),
            server,
            path: dir.path().to_path_buf(),
            _dir: dir,
            ca_cert: self.ca_cert.clone(),
            password: self.password.clone(),
        })
    }

    /// Promotes a standby to primary and waits until it accepts writes.
    pub fn promote(&self) -> Result<()> {
        let mut cmd = self.inst.run_as.command(&self.inst.bin.program("pg_ctl"));
        cmd.arg("promote")
            .args(["-w", "-t", "60", "-D"])
            .arg(self.data_dir());
        run_checked(cmd, "pg_ctl promote")
    }

    /// Restarts the server (fast shutdown, then start on the same port), so that settings
    /// waiting for a restart take effect.
    pub fn restart(&mut self) -> Result<()> {
        let port = self.server.port;
        self.server.stop_fast();
        let data = self.data_dir();
        self.server = Server::start(&self.inst, &data, &self.path, port)?;
        Ok(())
    }

    /// Stops the server now (immediate shutdown), keeping the files until drop: for tests of
    /// a server that dies mid-run.
    pub fn kill(&mut self) {
        self.server.stop();
    }

    pub fn is_running(&mut self) -> bool {
        self.server.is_running()
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    pub fn socket_dir(&self) -> &Path {
        &self.path
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path.join("data")
    }

    pub fn log_file(&self) -> &Path {
        &self.server.log
    }

    /// The CA certificate that signed the server certificate (when started with `ssl`).
    pub fn ca_cert(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// A libpq URI over TCP to `dbname` as the superuser (with the password when one is set).
    pub fn dsn(&self, dbname: &str) -> String {
        match &self.password {
            Some(pw) => format!(
                "postgresql://{SUPERUSER}:{}@127.0.0.1:{}/{dbname}?sslmode=disable",
                percent_encode(pw),
                self.port()
            ),
            None => format!(
                "postgresql://{SUPERUSER}@127.0.0.1:{}/{dbname}?sslmode=disable",
                self.port()
            ),
        }
    }

    /// Connection settings over the private unix socket (always trust).
    pub fn socket_dsn(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user={SUPERUSER} dbname={dbname}",
            self.socket_dir().display(),
            self.port()
        )
    }

    /// Runs SQL with psql over the unix socket (set-up only; pgopt itself uses tokio-postgres).
    pub fn psql(&self, dbname: &str, sql: &str) -> Result<String> {
        let mut cmd = self.inst.psql_command();
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args([
                "-p",
                &self.port().to_string(),
                "-U",
                SUPERUSER,
                "-d",
                dbname,
            ]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::Embedded(format!("cannot run psql: {e}")))?;
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("piped");
            stdin
                .write_all(sql.as_bytes())
                .map_err(|e| Error::Embedded(format!("writing to psql: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::Embedded(format!("psql: {e}")))?;
        if !out.status.success() {
            return Err(Error::Embedded(format!(
                "psql failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn installation(&self) -> &Installation {
        &self.inst
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The server first, then (by field order) the directory.
        self.server.stop();
    }
}

/// Removes cluster directories left by processes that were killed (no Drop ran): older than
/// ten minutes, with no live postmaster. They sit in /dev/shm, which is memory.
pub(super) fn remove_stale_cluster_dirs(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // tempfile names: "pgopt-" and six random characters; nothing else of ours matches.
        if !(name.starts_with("pgopt-") && name.len() == 12 && !name.contains('.')) {
            continue;
        }
        let path = e.path();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(600));
        if !old {
            continue;
        }
        let pid = fs::read_to_string(path.join("data").join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        // SAFETY: signal 0 only checks that the process exists.
        let alive = pid.is_some_and(|p| unsafe { libc::kill(p, 0) } == 0);
        if !alive {
            tracing::debug!("removing stale cluster directory {}", path.display());
            let _ = fs::remove_dir_all(&path);
        }
    }
}

pub(super) fn new_cluster_dir(inst: &Installation) -> Result<tempfile::TempDir> {
    remove_stale_cluster_dirs(&scratch_root());
    // Short, because a unix socket path is limited to 107 bytes.
    let dir = tempfile::Builder::new()
        .prefix("pgopt-")
        .tempdir_in(scratch_root())
        .map_err(|e| Error::Embedded(format!("cannot make a temp directory: {e}")))?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(dir.path(), e))?;
    inst.run_as.own(dir.path())?;
    Ok(dir)
}

/// Where throw-away clusters and the template live: `PGOPT_TMPDIR`, else /dev/shm when it is
/// a writable directory (copying the template there takes ~40 ms against ~300 ms on disk),
/// else the system temp directory.
pub fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("PGOPT_TMPDIR") {
        return dir.into();
    }
    let shm = Path::new("/dev/shm");
    let writable = shm.is_dir()
        && fs::metadata(shm)
            .map(|m| m.permissions().mode() & 0o002 != 0 || m.uid() == current_uid())
            .unwrap_or(false);
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Removes what throw-away clusters leave in [`scratch_root`]: this user's template copies
/// (`pgopt-template-*`, with their lock files and half-built leftovers) and cluster
/// directories of killed processes (older than ten minutes, no live server). A cluster that runs is never touched (it is a
/// copy and does not need the template); the template lock is held while removing, so no
/// template is being built meanwhile. The next cluster builds a new template (about a
/// second). Returns what was removed.
pub fn clean() -> Result<Vec<PathBuf>> {
    let root = scratch_root();
    // Templates are named after the user that runs the servers (`postgres` when pgopt runs
    // as root).
    let uid = RunAs::detect().map_or_else(|_| current_uid(), |r| r.uid);
    let mut removed = Vec::new();
    let entries = match fs::read_dir(&root) {
        Ok(e) => e,
        Err(_) => return Ok(removed),
    };
    let mut names: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    names.sort();
    let ours = format!("-u{uid}");
    for (name, path) in &names {
        if !name.starts_with("pgopt-template-v") || !name.contains(&ours) {
            continue;
        }
        // Lock files stay (empty; another process may hold one).
        if name.ends_with(".lock") {
            continue;
        }
        let base = name.split(".building-").next().unwrap_or(name);
        let _lock = FileLock::acquire(&root.join(format!("{base}.lock")))?;
        fs::remove_dir_all(path).map_err(|e| Error::io(path, e))?;
        removed.push(path.clone());
    }
    remove_stale_cluster_dirs(&root);
    Ok(removed)
}

/// Starts on a free port, retrying when another process took the port first.
pub(super) fn start_on_free_port(
    inst: &Installation,
    data: &Path,
    socket_dir: &Path,
) -> Result<Server> {
    let mut last = None;
    for _ in 0..5 {
        match Server::start(inst, data, socket_dir, free_port()?) {
            Ok(s) => return Ok(s),
            Err(e) => {
                let msg = e.to_string();
                if msg.contains("could not bind") || msg.contains("Address already in use") {
                    let _ = fs::remove_file(data.join("postmaster.pid"));
                    last = Some(e);
                    continue;
                }
                return Err(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::Embedded("no free port".into())))
}
