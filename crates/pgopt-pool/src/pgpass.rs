//! The password file (`~/.pgpass`, `passfile`, `PGPASSFILE`), read as libpq reads it.
//!
//! Each line is `hostname:port:database:username:password`; `*` as a whole field matches
//! anything; `\:` and `\\` stand for a literal colon and backslash. Lines starting with `#`
//! are comments. A file that group or others can read is skipped with a warning, as libpq does.

use std::path::Path;

use super::secret::Secret;

/// The default unix socket directory whose connections match the host name `localhost`.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Splits one line into its fields, undoing `\:` and `\\`. `None` for comments and lines
/// with fewer than five fields.
fn fields(line: &str) -> Option<[String; 5]> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(5);
    let mut cur = String::new();
    let mut chars = line.chars();
    // The current field as written (escapes kept), to tell a wildcard `*` from `\*`; a
    // wildcard is stored as NUL + `*`, which no real value contains.
    let mut raw = String::new();
    while let Some(c) = chars.next() {
        if out.len() == 4 {
            // The password: everything left, with escapes undone.
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                c => cur.push(c),
            }
            continue;
        }
        match c {
            '\\' => {
                raw.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                    raw.push(n);
                }
            }
            ':' => {
                out.push(if raw == "*" {
                    "\u{0}*".to_string()
                } else {
                    std::mem::take(&mut cur)
                });
                cur.clear();
                raw.clear();
            }
            c => {
                cur.push(c);
                raw.push(c);
            }
        }
    }
    if out.len() != 4 {
        return None;
    }
    out.push(cur);
    out.try_into().ok()
}

/// A field matches when it is an unescaped `*` or equals the value exactly.
fn matches(field: &str, value: &str) -> bool {
    field == "\u{0}*" || field == value
}

/// The password of the first line of `contents` matching host, port, database and user.
/// `host` is the name used for matching: pass it through [`match_host`] first. Lines that
/// are not five fields are skipped, never an error (as libpq does); `None` when no line
/// matches.
///
/// ```
/// use pgopt_pool::pgpass::lookup;
///
/// let file = "# comment\ndb1:5432:*:app:s\\:cret\n*:*:*:*:fallback\n";
/// assert_eq!(lookup(file, "db1", 5432, "acgs", "app").unwrap().expose(), "s:cret");
/// assert_eq!(lookup(file, "db2", 5433, "x", "y").unwrap().expose(), "fallback");
/// ```
pub fn lookup(contents: &str, host: &str, port: u16, dbname: &str, user: &str) -> Option<Secret> {
    let port = port.to_string();
    contents.lines().filter_map(fields).find_map(|f| {
        (matches(&f[0], host) && matches(&f[1], &port) && matches(&f[2], dbname))
            .then_some(())
            .filter(|_| matches(&f[3], user))
            .map(|_| Secret::new(f[4].clone()))
    })
}

/// The host name libpq matches against: `localhost` for the default socket directory,
/// otherwise the host (or, without one, the hostaddr).
pub fn match_host(host: &str) -> &str {
    if host.is_empty() || host.trim_end_matches('/') == DEFAULT_SOCKET_DIR {
        "localhost"
    } else {
        host
    }
}

/// Reads `path` and looks the password up. A missing file gives `None` silently; a file
/// readable by group or others gives `None` with a warning (libpq does the same).
pub fn lookup_file(path: &Path, host: &str, port: u16, dbname: &str, user: &str) -> Option<Secret> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        tracing::warn!(
            "password file {} is not a plain file; ignoring it",
            path.display()
        );
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "password file {} has group or world access; permissions should be u=rw (0600) or less. Ignoring it",
            path.display()
        );
        return None;
    }
    let contents = match std::fs::read_to_string(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cannot read password file {}: {e}", path.display());
            return None;
        }
    };
    lookup(&contents, match_host(host), port, dbname, user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(contents: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
        lookup(contents, host, port, db, user).map(|s| s.expose().to_string())
    }

    #[test]
    fn first_matching_line_wins_with_wildcards() {
        let f = "# comment\n\
                 db1.example:5432:app:alice:first\n\
                 *:5432:*:alice:second\n\
                 *:*:*:*:fallback\n";
        assert_eq!(
            pw(f, "db1.example", 5432, "app", "alice").as_deref(),
            Some("first")
        );
        assert_eq!(
            pw(f, "db2.example", 5432, "app", "alice").as_deref(),
            Some("second")
        );
        assert_eq!(
            pw(f, "db2.example", 5433, "app", "alice").as_deref(),
            Some("fallback")
        );
    }

    #[test]
    fn escapes_in_fields_and_password() {
        let f = "h:5432:we\\:ird\\\\db:bob:pa\\:ss\\\\word\n";
        assert_eq!(
            pw(f, "h", 5432, "we:ird\\db", "bob").as_deref(),
            Some("pa:ss\\word")
        );
        // An escaped star is a literal star, not a wildcard.
        let f = "\\*:5432:*:*:literal\n";
        assert_eq!(pw(f, "*", 5432, "x", "y").as_deref(), Some("literal"));
        assert_eq!(pw(f, "other", 5432, "x", "y"), None);
    }

    #[test]
    fn password_may_contain_colons_and_short_lines_are_skipped() {
        let f = "h:5432:db\nh:5432:db:u:a:b:c\n";
        assert_eq!(pw(f, "h", 5432, "db", "u").as_deref(), Some("a:b:c"));
        assert_eq!(pw("", "h", 5432, "db", "u"), None);
    }

    #[test]
    fn default_socket_dir_matches_localhost() {
        assert_eq!(match_host("/var/run/postgresql"), "localhost");
        assert_eq!(match_host("/tmp"), "/tmp");
        assert_eq!(match_host("db"), "db");
    }

    #[test]
    fn group_readable_file_is_skipped() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pgpass");
        std::fs::write(&p, "*:*:*:*:s3cret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(lookup_file(&p, "h", 5432, "d", "u").is_none());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            lookup_file(&p, "h", 5432, "d", "u").unwrap().expose(),
            "s3cret"
        );
        assert!(lookup_file(&dir.path().join("missing"), "h", 5432, "d", "u").is_none());
    }
}
