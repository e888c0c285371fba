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

/// The server programs of one PostgreSQL installation.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub bindir: PathBuf,
    pub version: String,
}

impl Binaries {
    /// Finds the server programs: `PGOPT_PG_BINDIR`, `pg_config --bindir`, the newest
    /// /usr/lib/postgresql/*/bin, then PATH.
    pub fn find() -> Result<Self> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(dir) = std::env::var_os("PGOPT_PG_BINDIR") {
            candidates.push(dir.into());
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            if out.status.success() {
                candidates.push(String::from_utf8_lossy(&out.stdout).trim().into());
            }
        }
        if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
            let mut versions: Vec<(u32, PathBuf)> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    Some((v, e.path().join("bin")))
                })
                .collect();
            versions.sort();
            candidates.extend(versions.into_iter().rev().map(|(_, p)| p));
        }
        if let Some(path) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&path));
        }
        for dir in candidates {
            if dir.join("postgres").is_file() && dir.join("initdb").is_file() {
                let out = Command::new(dir.join("postgres"))
                    .arg("--version")
                    .output()
                    .map_err(|e| Error::Embedded(format!("cannot run postgres --version: {e}")))?;
                // "postgres (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)": the first number.
                let version = String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
                    .unwrap_or("unknown")
                    .to_string();
                return Ok(Binaries {
                    bindir: dir,
                    version,
                });
            }
        }
        Err(Error::Embedded(
            "no PostgreSQL server programs found (postgres, initdb). Install them \
             (Debian: apt-get install postgresql postgresql-contrib) or set PGOPT_PG_BINDIR"
                .into(),
        ))
    }

    pub fn program(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// Major version, e.g. 15.
    pub fn major(&self) -> u32 {
        self.version
            .split('.')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// The OS user that runs the server: ourselves, or `postgres` when we are root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
    switch: bool,
}

impl RunAs {
    fn detect() -> Result<Self> {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        if uid != 0 {
            // SAFETY: as above.
            let gid = unsafe { libc::getgid() };
            return Ok(RunAs {
                uid,
                gid,
                switch: false,
            });
        }
        let name = std::ffi::CString::new(SUPERUSER).expect("no NUL");
        // SAFETY: getpwnam returns NULL or a pointer to static storage that we read at once.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if pw.is_null() {
            return Err(Error::Embedded(
                "running as root, and PostgreSQL refuses to run as root; there is no `postgres` \
                 OS user to run it as. Create one (useradd --system postgres) or run as an \
                 ordinary user"
                    .into(),
            ));
        }
        // SAFETY: pw is non-null and points to a valid passwd record.
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        Ok(RunAs {
            uid,
            gid,
            switch: true,
        })
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        if self.switch {
            cmd.uid(self.uid).gid(self.gid);
            // std drops root's supplementary groups itself when uid is set.
        }
        cmd.env_remove("PGDATA")
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env("LC_ALL", "C");
        cmd
    }

    fn own(&self, path: &Path) -> Result<()> {
        if self.switch {
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
                .map_err(|e| Error::io(path, e))?;
        }
        Ok(())
    }

    /// chown -R, for files we wrote into a directory the server owns.
    fn own_tree(&self, path: &Path) -> Result<()> {
        if !self.switch {
            return Ok(());
        }
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .map_err(|e| Error::io(path, e))?;
        if !status.success() {
            return Err(Error::Embedded(format!(
                "chown -R {} failed",
                path.display()
            )));
        }
        Ok(())
    }
}

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

/// Serialises template building across threads and processes (flock on a lock file).
struct FileLock(fs::File);

impl FileLock {
    fn acquire(path: &Path) -> Result<Self> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        use std::os::fd::AsRawFd;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            // SAFETY: flock on a file descriptor we own.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(FileLock(f));
            }
            if Instant::now() > deadline {
                return Err(Error::Embedded(format!(
                    "waited 120 s for the template lock {}; remove it if no pgopt is running",
                    path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocking our own descriptor.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Everything needed to make and run clusters on this machine.
#[derive(Debug, Clone)]
pub struct Installation {
    pub bin: Binaries,
    run_as: RunAs,
}

impl Installation {
    pub fn detect() -> Result<Self> {
        Ok(Installation {
            bin: Binaries::find()?,
            run_as: RunAs::detect()?,
        })
    }

    /// psql with every wait bounded: the connect (PGCONNECT_TIMEOUT) and each statement,
    /// lock waits included (statement_timeout through PGOPTIONS).
    fn psql_command(&self) -> Command {
        let mut cmd = self.run_as.command(&self.bin.program("psql"));
        cmd.env("PGCONNECT_TIMEOUT", PSQL_CONNECT_TIMEOUT_S.to_string())
            .env(
                "PGOPTIONS",
                format!("-c statement_timeout={}s", PSQL_STATEMENT_TIMEOUT_S),
            );
        cmd
    }

    /// The template data directory, built on first use.
    pub fn template(&self) -> Result<PathBuf> {
        let root = scratch_root();
        let name = format!(
            "pgopt-template-v{TEMPLATE_VERSION}-pg{}-u{}",
            self.bin.version, self.run_as.uid
        );
        let dir = root.join(&name);
        let ready = dir.join("pgopt-template-ready");
        if ready.exists() {
            return Ok(dir);
        }
        let _lock = FileLock::acquire(&root.join(format!("{name}.lock")))?;
        if ready.exists() {
            return Ok(dir);
        }
        // Under the lock, any half-built template is a leftover of a process that died.
        if let Ok(entries) = fs::read_dir(&root) {
            let prefix = format!("{name}.building-");
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let building = root.join(format!("{name}.building-{}", std::process::id()));
        fs::create_dir(&building).map_err(|e| Error::io(&building, e))?;
        fs::set_permissions(&building, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(&building, e))?;
        self.run_as.own(&building)?;
        let data = building.join("data");
        let mut initdb = self.run_as.command(&self.bin.program("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-N",
            "-E",
            "UTF8",
            "--no-locale",
        ]);
        run_checked(initdb, "initdb")?;
        let mut conf = String::from("\n# pgopt embedded cluster\n");
        for (k, v) in BASE_SETTINGS {
            conf.push_str(&format!("{k} = {v}\n"));
        }
        append(&data.join("postgresql.conf"), &conf)?;
        // Create the extensions once, in template1 (inherited by new databases) and postgres.
        let mut server = Server::start(self, &data, &building, free_port()?)?;
        for db in ["template1", "postgres"] {
            let mut psql = self.psql_command();
            psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg(&building)
                .args([
                    "-p",
                    &server.port.to_string(),
                    "-U",
                    SUPERUSER,
                    "-d",
                    db,
                    "-c",
                ])
                .arg("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
            if let Err(e) = run_checked(psql, "creating pg_stat_statements in the template") {
                server.stop();
                return Err(e);
            }
        }
        server.stop_fast();
        let _ = fs::remove_file(data.join("postmaster.pid"));
        fs::write(data.join("pgopt-template-ready"), "").map_err(|e| Error::io(&data, e))?;
        self.run_as.own(&data.join("pgopt-template-ready"))?;
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&data, &dir).map_err(|e| Error::io(&dir, e))?;
        let _ = fs::remove_dir_all(&building);
        Ok(dir)
    }

    /// Copies the template into `dest` (which must not exist), writes the options' settings.
    fn make_data_dir(&self, dest: &Path, opts: &ClusterOptions) -> Result<Option<PathBuf>> {
        let template = self.template()?;
        let mut cp = Command::new("cp");
        cp.arg("-a").arg(&template).arg(dest);
        run_checked(cp, "copying the template cluster")?;
        let _ = fs::remove_file(dest.join("pgopt-template-ready"));
        let mut conf = String::new();
        let mut ca = None;
        if opts.ssl {
            ca = Some(write_certificates(dest)?);
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        if opts.password.is_some() {
            fs::write(
                dest.join("pg_hba.conf"),
                "local all all trust\nlocal replication all trust\n\
                 host all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n\
                 host replication all 127.0.0.1/32 scram-sha-256\n",
            )
            .map_err(|e| Error::io(dest, e))?;
            conf.push_str("password_encryption = 'scram-sha-256'\n");
        }
        for (k, v) in &opts.settings {
            if k.contains(['\n', '=']) || v.contains('\n') {
                return Err(Error::BadInput(format!("bad embedded setting {k:?}")));
            }
            conf.push_str(&format!("{k} = {v}\n"));
        }
        if !conf.is_empty() {
            append(&dest.join("postgresql.conf"), &conf)?;
        }
        self.run_as.own_tree(dest)?;
        Ok(ca)
    }
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
}

/// Writes ca.crt, server.crt and server.key into `data`; returns the CA certificate's path.
fn write_certificates(data: &Path) -> Result<PathBuf> {
    let err = |e: rcgen::Error| Error::Embedded(format!("making a test certificate: {e}"));
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pgopt embedded test CA");
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(err)?;
    let write = |name: &str, text: String, mode: u32| -> Result<PathBuf> {
        let p = data.join(name);
        fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(|e| Error::io(&p, e))?;
        Ok(p)
    };
    write("server.crt", cert.pem(), 0o644)?;
    write("server.key", key.serialize_pem(), 0o600)?;
    write("ca.crt", ca.pem(), 0o644)
}

/// A running postmaster we spawned.
struct Server {
    child: Option<Child>,
    data_dir: PathBuf,
    port: u16,
    log: PathBuf,
}

impl Server {
    /// Spawns `postgres` on `port` with its socket in `socket_dir` and waits until it is ready.
    fn start(inst: &Installation, data_dir: &Path, socket_dir: &Path, port: u16) -> Result<Self> {
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

    fn wait_ready(&mut self) -> Result<()> {
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

    fn signal_and_wait(&mut self, sig: i32) {
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
    fn stop(&mut self) {
        self.signal_and_wait(libc::SIGQUIT);
    }

    /// Fast shutdown: a clean checkpoint, for data we keep (the template).
    fn stop_fast(&mut self) {
        self.signal_and_wait(libc::SIGINT);
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running throw-away cluster. Dropping it stops the server and deletes its files.
pub struct Cluster {
    inst: Installation,
    server: Server,
    /// Holds data/, the unix socket and server.log; removed on drop.
    _dir: tempfile::TempDir,
    path: PathBuf,
    ca_cert: Option<PathBuf>,
    password: Option<String>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("port", &self.server.port)
            .field("dir", &self.path)
            .finish_non_exhaustive()
    }
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
                    crate::db::ident::quote_literal(pw)
                ),
            )?;
        }
        Ok(cluster)
    }

    /// A streaming standby of this cluster (pg_basebackup -R), started and ready.
    pub fn standby(&self) -> Result<Cluster> {
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
fn remove_stale_cluster_dirs(root: &Path) {
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

fn new_cluster_dir(inst: &Installation) -> Result<tempfile::TempDir> {
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

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// Starts on a free port, retrying when another process took the port first.
fn start_on_free_port(inst: &Installation, data: &Path, socket_dir: &Path) -> Result<Server> {
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

/// A cluster in a named directory that outlives pgopt (`pgopt embedded start|stop|status`),
/// run with pg_ctl.
pub struct Detached {
    inst: Installation,
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
        pg_ctl_restart(cmd, &self.data_dir, &self.log_file(), 60)?;
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
