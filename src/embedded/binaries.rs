//! Finding the server programs of a PostgreSQL installation.

use super::*;

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
