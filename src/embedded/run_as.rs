//! Running the server programs as the `postgres` OS user when we are root.

use super::*;

/// The OS user that runs the server: ourselves, or `postgres` when we are root.
#[derive(Debug, Clone, Copy)]
pub(super) struct RunAs {
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) switch: bool,
}

impl RunAs {
    pub(super) fn detect() -> Result<Self> {
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

    pub(super) fn command(&self, program: &Path) -> Command {
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

    pub(super) fn own(&self, path: &Path) -> Result<()> {
        if self.switch {
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
                .map_err(|e| Error::io(path, e))?;
        }
        Ok(())
    }

    /// chown -R, for files we wrote into a directory the server owns.
    pub(super) fn own_tree(&self, path: &Path) -> Result<()> {
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
