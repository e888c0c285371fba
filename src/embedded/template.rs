//! The template cluster: initdb-ed once per machine and server version, copied for every
//! new cluster; certificates for clusters with TLS.

use super::*;

/// Serialises template building across threads and processes (flock on a lock file).
pub(super) struct FileLock(fs::File);

impl FileLock {
    pub(super) fn acquire(path: &Path) -> Result<Self> {
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
    pub(super) run_as: RunAs,
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
    pub(super) fn psql_command(&self) -> Command {
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
    pub(super) fn make_data_dir(
        &self,
        dest: &Path,
        opts: &ClusterOptions,
    ) -> Result<Option<PathBuf>> {
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

/// Writes ca.crt, server.crt and server.key into `data`; returns the CA certificate's path.
pub(super) fn write_certificates(data: &Path) -> Result<PathBuf> {
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
