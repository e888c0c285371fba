//! What to connect to, resolved the way libpq resolves it.
//!
//! A target comes from a connection string (`key=value` pairs or a `postgresql://` URI),
//! then the `PG*` environment variables for whatever the string leaves out, then the
//! password file, then defaults (socket directory or localhost, port 5432, the OS user, a
//! database named after the user). The password is a [`Secret`]: it never shows in Debug,
//! Display or error messages.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::pgpass;
use super::secret::Secret;
use crate::error::{Error, Result};

/// Default for the whole connect to one host.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default server-side statement_timeout.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// libpq's smallest connect_timeout.
pub const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The application_name pgopt sets unless told otherwise.
pub const DEFAULT_APPLICATION_NAME: &str = "pgopt";

/// Which server of a multi-host target is wanted (libpq's target_session_attrs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetRole {
    /// The first server that accepts the connection.
    #[default]
    Any,
    /// A server that accepts writes: not in recovery and transaction_read_only off
    /// (`primary`, `read-write`).
    Primary,
    /// A server in recovery (`standby`, `read-only`).
    Standby,
    /// A standby if any host is one, otherwise any server.
    PreferStandby,
}

impl TargetRole {
    /// Parses a target_session_attrs value.
    pub fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "any" => TargetRole::Any,
            "primary" | "read-write" => TargetRole::Primary,
            "standby" | "read-only" => TargetRole::Standby,
            "prefer-standby" => TargetRole::PreferStandby,
            other => {
                return Err(Error::BadInput(format!(
                    "invalid target_session_attrs value \"{other}\": use any, read-write, \
                     read-only, primary, standby or prefer-standby"
                )))
            }
        })
    }

    /// The value as `target_session_attrs` writes it (`any`, `primary`, `standby`,
    /// `prefer-standby`); [`TargetRole::parse`] reads it back.
    pub fn as_str(&self) -> &'static str {
        match self {
            TargetRole::Any => "any",
            TargetRole::Primary => "primary",
            TargetRole::Standby => "standby",
            TargetRole::PreferStandby => "prefer-standby",
        }
    }
}

/// libpq's sslmode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// Treated as `prefer` (TLS when the server offers it, never verified).
    Allow,
    /// TLS when the server offers it, never verified; plain otherwise (the default).
    #[default]
    Prefer,
    /// TLS, certificate not verified (unless sslrootcert is given: then as verify-ca).
    Require,
    /// TLS, chain verified against sslrootcert (or the system roots), host name not checked.
    VerifyCa,
    /// TLS, chain and host name verified.
    VerifyFull,
}

impl SslMode {
    /// Parses an sslmode value (`disable`, `allow`, `prefer`, `require`, `verify-ca`,
    /// `verify-full`); anything else is [`Error::BadInput`] listing them.
    pub fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::BadInput(format!(
                    "invalid sslmode value \"{other}\": use disable, allow, prefer, require, \
                     verify-ca or verify-full"
                )))
            }
        })
    }

    /// The value as `sslmode` writes it; [`SslMode::parse`] reads it back.
    pub fn as_str(&self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// One host of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Host name, IP address, or (starting with `/`) a unix socket directory. The name is
    /// what TLS verifies and what the password file matches.
    pub host: String,
    /// Where to connect instead of resolving `host` (libpq's hostaddr).
    pub hostaddr: Option<IpAddr>,
    /// The TCP port (or the socket's `.s.PGSQL.<port>` suffix).
    pub port: u16,
}

impl HostSpec {
    /// A host and port, without a hostaddr.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        HostSpec {
            host: host.into(),
            hostaddr: None,
            port,
        }
    }

    /// True for a unix socket directory (never TLS).
    pub fn is_unix(&self) -> bool {
        self.hostaddr.is_none() && self.host.starts_with('/')
    }

    /// `host:port` (`[v6]:port` for IPv6 literals).
    pub fn label(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('/') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Everything needed to connect. Debug never shows the password.
#[derive(Debug, Clone)]
pub struct Target {
    /// Tried in order.
    pub hosts: Vec<HostSpec>,
    /// The database (default: the user name).
    pub dbname: String,
    /// The role to log in as (default: the OS user).
    pub user: String,
    /// The password given in the connection string or PGPASSWORD.
    pub password: Option<Secret>,
    /// The password file to look in when no password was given (checked per host at connect).
    pub passfile: Option<PathBuf>,
    /// Which server of the hosts is wanted (target_session_attrs).
    pub role: TargetRole,
    /// libpq's sslmode.
    pub ssl_mode: SslMode,
    /// CA certificates to verify the server against (`system` = the system's roots).
    pub ssl_root_cert: Option<PathBuf>,
    /// Sent at start-up; shows in pg_stat_activity.
    pub application_name: String,
    /// Server options sent at start-up (libpq's `options`, e.g. `-c search_path=x`).
    pub options: Option<String>,
    /// The whole connect to one host: TCP, TLS, authentication and role check.
    pub connect_timeout: Duration,
    /// Server-side statement_timeout, set right after connecting.
    pub statement_timeout: Duration,
}

/// What the target's defaults come from, apart from the PG* variables. [`Target::resolve`]
/// uses the real system; tests pass their own.
#[derive(Debug, Clone)]
pub struct SystemDefaults {
    /// The default unix socket directory when it exists (else `localhost` is the default).
    pub socket_dir: Option<PathBuf>,
    /// The OS user name (default user).
    pub os_user: Option<String>,
    /// Home directory, for `~/.pgpass` and `~/.postgresql/root.crt`.
    pub home: Option<PathBuf>,
}

impl SystemDefaults {
    /// What libpq would use on this machine.
    pub fn system(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let port = env("PGPORT")
            .and_then(|p| p.split(',').next().map(|p| p.trim().to_string()))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "5432".to_string());
        let (pw_user, pw_home) = passwd_entry();
        SystemDefaults {
            socket_dir: default_socket_dir(&port),
            os_user: pw_user.or_else(|| env("USER")),
            home: env("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .or(pw_home),
        }
    }
}

/// Where the server's socket is looked for when no host is given: the first of
/// [`SOCKET_DIRS`] that holds `.s.PGSQL.<port>`, else the first that exists (libpq builds
/// in one of them: Debian's /var/run/postgresql, upstream's /tmp).
fn default_socket_dir(port: &str) -> Option<PathBuf> {
    let socket = format!(".s.PGSQL.{port}");
    SOCKET_DIRS
        .iter()
        .map(Path::new)
        .find(|d| d.join(&socket).exists())
        .or_else(|| SOCKET_DIRS.iter().map(Path::new).find(|d| d.is_dir()))
        .map(Path::to_path_buf)
}

/// The socket directories psql is built with: Debian's and Red Hat's first, upstream's second.
pub const SOCKET_DIRS: [&str; 2] = [pgpass::DEFAULT_SOCKET_DIR, "/tmp"];

/// The effective user's name and home directory from the password database.
fn passwd_entry() -> (Option<String>, Option<PathBuf>) {
    // SAFETY: getpwuid_r writes into our buffer and pwd; we read them only on success.
    unsafe {
        let uid = libc::geteuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() {
            return (None, None);
        }
        let s = |p: *const libc::c_char| {
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        (s(pwd.pw_name), s(pwd.pw_dir).map(PathBuf::from))
    }
}

/// Options pgopt understands, and the variable that fills each in.
const KEYS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("dbname", Some("PGDATABASE")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("sslmode", Some("PGSSLMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("options", Some("PGOPTIONS")),
];

/// libpq options that pgopt does not implement: named as such in the error.
const UNSUPPORTED_LIBPQ_KEYS: &[&str] = &[
    "service",
    "channel_binding",
    "client_encoding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "gsslib",
    "gssdelegation",
    "krbsrvname",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "requirepeer",
    "require_auth",
    "load_balance_hosts",
];

fn check_key(key: &str, after_password: bool) -> Result<()> {
    if KEYS.iter().any(|(k, _)| *k == key) {
        return Ok(());
    }
    if after_password {
        // The "key" may well be the rest of a password with a space in it: don't echo it.
        return Err(Error::BadInput(
            "the connection string has an unknown option right after the password; \
             quote a password that contains spaces: password='...'"
                .into(),
        ));
    }
    if UNSUPPORTED_LIBPQ_KEYS.contains(&key) {
        return Err(Error::BadInput(format!(
            "the connection option \"{key}\" is not supported by pgopt; remove it \
             (supported: {})",
            supported_list()
        )));
    }
    Err(Error::BadInput(format!(
        "unknown connection option \"{key}\" (supported: {})",
        supported_list()
    )))
}

fn supported_list() -> String {
    KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

/// Splits `key=value` pairs (libpq conninfo). Values may be single-quoted; a backslash
/// escapes the next character, quoted or not. `''` is an empty value.
///
/// Bad input is [`Error::BadInput`] saying what to fix: a word without `=`, an unknown or
/// unsupported option (listing the supported ones), an unterminated quote. An error right
/// after a password never repeats the text (it may be the rest of the password).
/// [`render_conninfo`] writes pairs back.
///
/// ```
/// use pgopt_pool::target::parse_conninfo;
///
/// let pairs = parse_conninfo("host=db1 password='a b'").unwrap();
/// assert_eq!(pairs[1], ("password".to_string(), "a b".to_string()));
/// assert!(parse_conninfo("host=db1 frobnicate=1").is_err());
/// ```
pub fn parse_conninfo(s: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    let mut last_key: Option<String> = None;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let after_password = last_key.as_deref() == Some("password");
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(Error::BadInput(if after_password {
                "the connection string has a word without \"=\" right after the password; \
                 quote a password that contains spaces: password='...'"
                    .to_string()
            } else {
                match &last_key {
                    Some(k) => format!(
                        "the connection string has a word without \"=\" after the value of \
                         \"{k}\"; write key=value pairs and quote values with spaces: key='a b'"
                    ),
                    None => "the target is neither key=value pairs (host=... dbname=...) nor \
                             a postgresql:// URI"
                        .to_string(),
                }
            }));
        }
        check_key(&key, after_password)?;
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(Error::BadInput(format!(
                    "unterminated quoted value for \"{key}\" in the connection string"
                )));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        last_key = Some(key.clone());
        out.push((key, value));
    }
    Ok(out)
}

/// Renders `key=value` pairs as a conninfo string that [`parse_conninfo`] reads back to the
/// same pairs: each value single-quoted, with `'` and `\` escaped by a backslash, as libpq
/// quotes (an empty value is `''`). Keys are written as given, unchecked.
///
/// ```
/// use pgopt_pool::target::{parse_conninfo, render_conninfo};
///
/// let pairs = vec![("host".to_string(), "db1".to_string()),
///                  ("password".to_string(), "it's a secret".to_string())];
/// let text = render_conninfo(&pairs);
/// assert_eq!(text, r"host='db1' password='it\'s a secret'");
/// assert_eq!(parse_conninfo(&text).unwrap(), pairs);
/// ```
pub fn render_conninfo(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(key);
        out.push_str("='");
        for c in value.chars() {
            if c == '\\' || c == '\'' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('\'');
    }
    out
}

fn percent_decode(s: &str, what: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => out.push(b),
                None => {
                    return Err(Error::BadInput(format!(
                        "invalid percent-encoding in the {what} of the connection URI"
                    )))
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        Error::BadInput(format!(
            "the {what} of the connection URI is not valid UTF-8 after percent-decoding"
        ))
    })
}

/// Splits a `postgresql://` or `postgres://` URI into the same pairs as [`parse_conninfo`]:
/// user and password, hosts and ports (comma lists, `[v6]` literals), the database, and the
/// query's options, all percent-decoded.
///
/// Bad input is [`Error::BadInput`]: another scheme, bad percent-encoding, an unterminated
/// `[`, a query parameter without `=` or an unknown option.
///
/// ```
/// use pgopt_pool::target::parse_uri;
///
/// let pairs = parse_uri("postgresql://alice@h1:5433,h2/app?sslmode=require").unwrap();
/// assert!(pairs.contains(&("host".to_string(), "h1,h2".to_string())));
/// assert!(pairs.contains(&("port".to_string(), "5433,".to_string())));
/// ```
pub fn parse_uri(uri: &str) -> Result<Vec<(String, String)>> {
    let rest = uri
        .strip_prefix("postgresql://")
        .or_else(|| uri.strip_prefix("postgres://"))
        .ok_or_else(|| {
            Error::BadInput("a connection URI must start with postgresql:// or postgres://".into())
        })?;
    let mut out = Vec::new();
    // userinfo: up to the first '@' before any '/' or '?'.
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (mut authority, tail) = rest.split_at(authority_end);
    if let Some(at) = authority.rfind('@') {
        let userinfo = &authority[..at];
        authority = &authority[at + 1..];
        let (user, password) = match userinfo.find(':') {
            Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            out.push(("user".into(), percent_decode(user, "user name")?));
        }
        if let Some(p) = password {
            out.push(("password".into(), percent_decode(p, "password")?));
        }
    }
    if !authority.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for spec in authority.split(',') {
            let (host, port) = if let Some(v6) = spec.strip_prefix('[') {
                let end = v6.find(']').ok_or_else(|| {
                    Error::BadInput(
                        "unterminated IPv6 address in the connection URI (missing \"]\")".into(),
                    )
                })?;
                let after = &v6[end + 1..];
                let port = match after.strip_prefix(':') {
                    Some(p) => p,
                    None if after.is_empty() => "",
                    None => {
                        return Err(Error::BadInput(
                            "unexpected text after an IPv6 address in the connection URI".into(),
                        ))
                    }
                };
                (v6[..end].to_string(), port)
            } else {
                match spec.rfind(':') {
                    Some(c) => (percent_decode(&spec[..c], "host")?, &spec[c + 1..]),
                    None => (percent_decode(spec, "host")?, ""),
                }
            };
            hosts.push(host);
            ports.push(percent_decode(port, "port")?);
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            out.push(("host".into(), hosts.join(",")));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            out.push(("port".into(), ports.join(",")));
        }
    }
    let (path, query) = match tail.find('?') {
        Some(q) => (&tail[..q], Some(&tail[q + 1..])),
        None => (tail, None),
    };
    if let Some(db) = path.strip_prefix('/') {
        if !db.is_empty() {
            out.push(("dbname".into(), percent_decode(db, "database name")?));
        }
    }
    if let Some(query) = query {
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = param.split_once('=').ok_or_else(|| {
                Error::BadInput(
                    "a parameter in the connection URI's query has no \"=\" (use ?key=value)"
                        .into(),
                )
            })?;
            let k = percent_decode(k, "query")?;
            let v = percent_decode(v, "query")?;
            // JDBC-style ssl=true, which libpq accepts too.
            if k == "ssl" && v == "true" {
                out.push(("sslmode".into(), "require".into()));
                continue;
            }
            check_key(&k, false)?;
            out.push((k, v));
        }
    }
    Ok(out)
}

/// Parses either form into pairs: a URI when it starts with `postgresql://` or
/// `postgres://`, else key=value pairs. Errors as [`parse_uri`] and [`parse_conninfo`].
pub fn parse_dsn(dsn: &str) -> Result<Vec<(String, String)>> {
    let t = dsn.trim();
    if t.starts_with("postgresql://") || t.starts_with("postgres://") {
        parse_uri(t)
    } else {
        parse_conninfo(t)
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(|s| s.trim().to_string()).collect()
}

impl Target {
    /// Resolves `dsn` with the process environment and the password file, as libpq does.
    ///
    /// Bad input (a string that does not parse, an invalid port, sslmode or
    /// target_session_attrs, host and port lists of different lengths) is
    /// [`Error::BadInput`] naming the value and what to write instead.
    ///
    /// ```
    /// use pgopt_pool::{Target, TargetRole};
    ///
    /// let t = Target::parse("postgresql://app@db1,db2:5433/acgs?target_session_attrs=read-write")
    ///     .unwrap();
    /// assert_eq!(t.hosts.len(), 2);
    /// assert_eq!(t.role, TargetRole::Primary);
    /// assert!(Target::parse("host=db1 port=70000").is_err());
    /// ```
    pub fn parse(dsn: &str) -> Result<Self> {
        Target::resolve(Some(dsn), &|k| std::env::var(k).ok())
    }

    /// Resolves an optional connection string, filling what it leaves out from `env`
    /// (PG* variables, HOME) and this machine's defaults.
    pub fn resolve(dsn: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        Target::resolve_with(dsn, env, &SystemDefaults::system(env))
    }

    /// As [`Target::resolve`], with the machine's defaults given: what tests and fuzzing use
    /// to resolve without the machine's socket directory, OS user or home.
    ///
    /// ```
    /// use pgopt_pool::{SystemDefaults, Target};
    ///
    /// let defaults = SystemDefaults { socket_dir: None, os_user: Some("os".into()), home: None };
    /// let env = |k: &str| (k == "PGPORT").then(|| "5433".to_string());
    /// let t = Target::resolve_with(Some("dbname=x"), &env, &defaults).unwrap();
    /// assert_eq!(t.display_safe(), "os@localhost:5433/x");
    /// ```
    pub fn resolve_with(
        dsn: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        defaults: &SystemDefaults,
    ) -> Result<Self> {
        let pairs = match dsn {
            Some(d) if !d.trim().is_empty() => parse_dsn(d)?,
            _ => Vec::new(),
        };
        // Later pairs win, as in libpq.
        let mut given: HashMap<String, String> = pairs.into_iter().collect();
        for (key, var) in KEYS {
            if given.contains_key(*key) {
                continue;
            }
            if let Some(v) = var.and_then(env) {
                given.insert(key.to_string(), v);
            }
        }
        let get = |k: &str| given.get(k).map(String::as_str).filter(|v| !v.is_empty());

        // Hosts, hostaddrs and ports.
        let hostaddrs: Vec<Option<IpAddr>> = match get("hostaddr") {
            Some(v) => split_list(v)
                .into_iter()
                .map(|a| {
                    if a.is_empty() {
                        return Ok(None);
                    }
                    a.parse::<IpAddr>().map(Some).map_err(|_| {
                        Error::BadInput(format!(
                            "invalid hostaddr \"{a}\": it must be a numeric IP address \
                             (use host= for names)"
                        ))
                    })
                })
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        let mut hosts: Vec<String> = match get("host") {
            Some(v) => split_list(v),
            None => Vec::new(),
        };
        if hosts.is_empty() {
            hosts = if hostaddrs.is_empty() {
                vec![String::new()]
            } else {
                vec![String::new(); hostaddrs.len()]
            };
        }
        if !hostaddrs.is_empty() && hostaddrs.len() != hosts.len() {
            return Err(Error::BadInput(format!(
                "{} hosts but {} hostaddrs: give one hostaddr per host",
                hosts.len(),
                hostaddrs.len()
            )));
        }
        let default_host = || match &defaults.socket_dir {
            Some(d) => d.display().to_string(),
            None => "localhost".to_string(),
        };
        let ports: Vec<u16> = match get("port") {
            Some(v) => split_list(v)
                .into_iter()
                .map(|p| {
                    if p.is_empty() {
                        return Ok(5432);
                    }
                    p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                        Error::BadInput(format!(
                            "invalid port \"{p}\": it must be a number from 1 to 65535"
                        ))
                    })
                })
                .collect::<Result<_>>()?,
            None => vec![5432],
        };
        if ports.len() != 1 && ports.len() != hosts.len() {
            return Err(Error::BadInput(format!(
                "{} hosts but {} ports: give one port for all hosts or one per host",
                hosts.len(),
                ports.len()
            )));
        }
        let hosts: Vec<HostSpec> = hosts
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let hostaddr = hostaddrs.get(i).copied().flatten();
                let host = match (h.is_empty(), hostaddr) {
                    (false, _) => h,
                    (true, Some(a)) => a.to_string(),
                    (true, None) => default_host(),
                };
                HostSpec {
                    host,
                    hostaddr,
                    port: if ports.len() == 1 { ports[0] } else { ports[i] },
                }
            })
            .collect();

        let user = match get("user") {
            Some(u) => u.to_string(),
            None => defaults.os_user.clone().ok_or_else(|| {
                Error::BadInput(
                    "no user given and the OS user is unknown: pass user=... or set PGUSER".into(),
                )
            })?,
        };
        let dbname = get("dbname").unwrap_or(&user).to_string();
        let password = given
            .get("password")
            .filter(|p| !p.is_empty())
            .map(|p| Secret::new(p.clone()));
        let passfile = match get("passfile") {
            Some(p) => Some(PathBuf::from(p)),
            None => defaults.home.as_ref().map(|h| h.join(".pgpass")),
        };
        let connect_timeout = match get("connect_timeout") {
            Some(v) => {
                let secs: i64 = v.trim().parse().map_err(|_| {
                    Error::BadInput(format!(
                        "invalid connect_timeout \"{v}\": it must be a whole number of seconds"
                    ))
                })?;
                if secs <= 0 {
                    DEFAULT_CONNECT_TIMEOUT
                } else {
                    Duration::from_secs(secs as u64).max(MIN_CONNECT_TIMEOUT)
                }
            }
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        let application_name = get("application_name")
            .or_else(|| get("fallback_application_name"))
            .unwrap_or(DEFAULT_APPLICATION_NAME)
            .to_string();
        let ssl_mode = match get("sslmode") {
            Some(v) => SslMode::parse(v)?,
            None => SslMode::default(),
        };
        let ssl_root_cert = get("sslrootcert").map(PathBuf::from);
        let ssl_root_cert = ssl_root_cert.or_else(|| {
            // libpq's default root file, when it exists.
            defaults
                .home
                .as_ref()
                .map(|h| h.join(".postgresql").join("root.crt"))
                .filter(|p| p.is_file())
        });
        let role = match get("target_session_attrs") {
            Some(v) => TargetRole::parse(v)?,
            None => TargetRole::Any,
        };
        Ok(Target {
            hosts,
            dbname,
            user,
            password,
            passfile,
            role,
            ssl_mode,
            ssl_root_cert,
            application_name,
            options: get("options").map(str::to_string),
            connect_timeout,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
        })
    }

    /// The password for one host: the one given, else the password file's entry.
    pub fn password_for(&self, host: &HostSpec) -> Option<Secret> {
        if let Some(p) = &self.password {
            return Some(p.clone());
        }
        let file = self.passfile.as_ref()?;
        pgpass::lookup_file(file, &host.host, host.port, &self.dbname, &self.user)
    }

    /// Replaces the host list with one host (after port discovery).
    pub fn set_single_host(&mut self, host: &str, port: u16) {
        self.hosts = vec![HostSpec::new(host, port)];
    }

    /// Replaces the host list with every port of `ports` on `host`, in order (port
    /// discovery, `HOST:5432-5440`, kept as a host list: a [`crate::PgPool`] probes each
    /// for the primary at the start and after every failover).
    pub fn set_port_range(&mut self, host: &str, ports: std::ops::RangeInclusive<u16>) {
        self.hosts = ports.map(|p| HostSpec::new(host, p)).collect();
    }

    /// `user@host:port/db` (hosts comma-separated), never the password.
    pub fn display_safe(&self) -> String {
        let hosts = self
            .hosts
            .iter()
            .map(HostSpec::label)
            .collect::<Vec<_>>()
            .join(",");
        format!("{}@{}/{}", self.user, hosts, self.dbname)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn defaults() -> SystemDefaults {
        SystemDefaults {
            socket_dir: None,
            os_user: Some("osuser".into()),
            home: None,
        }
    }

    fn resolve(dsn: &str) -> Result<Target> {
        Target::resolve_with(Some(dsn), &no_env, &defaults())
    }

    #[test]
    fn conninfo_quoting_and_escapes() {
        let p = parse_conninfo(r"host=db  port = 5433 password='a b\'c\\d' dbname=x\ y user=''")
            .unwrap();
        assert_eq!(
            p,
            vec![
                ("host".into(), "db".into()),
                ("port".into(), "5433".into()),
                ("password".into(), r"a b'c\d".into()),
                ("dbname".into(), "x y".into()),
                ("user".into(), "".into()),
            ]
        );
    }

    #[test]
    fn conninfo_errors_do_not_echo_the_password() {
        let e = resolve("host=h password=hunter2 oops")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2") && !e.contains("oops"), "{e}");
        let e = resolve("host=h password=hunter2 more=x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2") && !e.contains("more"), "{e}");
        let e = resolve("password='hunter2").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        let e = resolve("postgresql://u:hun%zzter2@h/db")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hun"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = resolve("host=h bogus=1").unwrap_err();
        assert!(e.is_bad_input());
        assert!(e.to_string().contains("\"bogus\""), "{e}");
        let e = resolve("host=h sslcert=/x").unwrap_err().to_string();
        assert!(
            e.contains("\"sslcert\"") && e.contains("not supported"),
            "{e}"
        );
        let e = resolve("postgresql://h/db?frobnicate=1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"frobnicate\""), "{e}");
        let e = resolve("mydb").unwrap_err().to_string();
        assert!(e.contains("neither"), "{e}");
    }

    #[test]
    fn uri_multi_host_and_ports() {
        let t = resolve("postgresql://alice:s%40cret@h1:5433,h2,[::1]:6000/my%20db?connect_timeout=1&application_name=x&target_session_attrs=read-write&sslmode=require").unwrap();
        assert_eq!(
            t.hosts,
            vec![
                HostSpec::new("h1", 5433),
                HostSpec::new("h2", 5432),
                HostSpec::new("::1", 6000)
            ]
        );
        assert_eq!(t.user, "alice");
        assert_eq!(t.password.as_ref().unwrap().expose(), "s@cret");
        assert_eq!(t.dbname, "my db");
        assert_eq!(t.connect_timeout, MIN_CONNECT_TIMEOUT);
        assert_eq!(t.application_name, "x");
        assert_eq!(t.role, TargetRole::Primary);
        assert_eq!(t.ssl_mode, SslMode::Require);
        assert_eq!(t.display_safe(), "alice@h1:5433,h2:5432,[::1]:6000/my db");
    }

    #[test]
    fn uri_forms() {
        let t = resolve("postgres://[2001:db8::1]/app").unwrap();
        assert_eq!(t.hosts, vec![HostSpec::new("2001:db8::1", 5432)]);
        assert_eq!(t.user, "osuser");
        let t = resolve("postgresql:///app?host=/tmp/sock&port=7000").unwrap();
        assert_eq!(t.hosts, vec![HostSpec::new("/tmp/sock", 7000)]);
        assert!(t.hosts[0].is_unix());
        let t = resolve("postgresql://%2Fvar%2Flib%2Fpg/app").unwrap();
        assert_eq!(t.hosts[0].host, "/var/lib/pg");
        let t = resolve("postgresql://h/db?ssl=true").unwrap();
        assert_eq!(t.ssl_mode, SslMode::Require);
        let t = resolve("postgresql://").unwrap();
        assert_eq!(t.hosts, vec![HostSpec::new("localhost", 5432)]);
        assert_eq!(t.dbname, "osuser");
        assert!(resolve("postgresql://[::1/db").is_err());
        assert!(resolve("postgresql://h:notaport/db").is_err());
    }

    #[test]
    fn port_count_must_match() {
        let t = resolve("host=a,b,c port=6000").unwrap();
        assert!(t.hosts.iter().all(|h| h.port == 6000));
        let e = resolve("host=a,b,c port=1,2").unwrap_err().to_string();
        assert!(e.contains("3 hosts but 2 ports"), "{e}");
        let t = resolve("host=a,b port=1,2").unwrap();
        assert_eq!(t.hosts[1].port, 2);
        assert!(resolve("host=a port=0").is_err());
        assert!(resolve("host=a port=70000").is_err());
    }

    #[test]
    fn hostaddr() {
        let t = resolve("host=db.example hostaddr=127.0.0.1 port=5").unwrap();
        assert_eq!(t.hosts[0].host, "db.example");
        assert_eq!(t.hosts[0].hostaddr, Some("127.0.0.1".parse().unwrap()));
        let t = resolve("hostaddr=10.0.0.1,::1").unwrap();
        assert_eq!(t.hosts[0].host, "10.0.0.1");
        assert_eq!(t.hosts[1].host, "::1");
        assert!(resolve("host=a,b hostaddr=10.0.0.1").is_err());
        assert!(resolve("hostaddr=not-an-ip").is_err());
    }

    #[test]
    fn env_fills_what_the_dsn_leaves_out() {
        let env = |k: &str| -> Option<String> {
            Some(
                match k {
                    "PGHOST" => "envhost1,envhost2",
                    "PGPORT" => "6543",
                    "PGDATABASE" => "envdb",
                    "PGUSER" => "envuser",
                    "PGPASSWORD" => "envpw",
                    "PGCONNECT_TIMEOUT" => "7",
                    "PGSSLMODE" => "verify-full",
                    "PGSSLROOTCERT" => "/certs/ca.pem",
                    "PGTARGETSESSIONATTRS" => "prefer-standby",
                    "PGAPPNAME" => "envapp",
                    "PGPASSFILE" => "/x/pgpass",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let t = Target::resolve_with(None, &env, &defaults()).unwrap();
        assert_eq!(
            t.hosts,
            vec![
                HostSpec::new("envhost1", 6543),
                HostSpec::new("envhost2", 6543)
            ]
        );
        assert_eq!(t.dbname, "envdb");
        assert_eq!(t.user, "envuser");
        assert_eq!(t.password.as_ref().unwrap().expose(), "envpw");
        assert_eq!(t.connect_timeout, Duration::from_secs(7));
        assert_eq!(t.ssl_mode, SslMode::VerifyFull);
        assert_eq!(t.ssl_root_cert.as_deref(), Some(Path::new("/certs/ca.pem")));
        assert_eq!(t.role, TargetRole::PreferStandby);
        assert_eq!(t.application_name, "envapp");
        assert_eq!(t.passfile.as_deref(), Some(Path::new("/x/pgpass")));
        // The DSN wins over the environment, key by key.
        let t = Target::resolve_with(Some("host=dsnhost user=u"), &env, &defaults()).unwrap();
        assert_eq!(t.hosts, vec![HostSpec::new("dsnhost", 6543)]);
        assert_eq!(t.user, "u");
        assert_eq!(t.dbname, "envdb");
    }

    #[test]
    fn defaults_apply() {
        let t = Target::resolve_with(None, &no_env, &defaults()).unwrap();
        assert_eq!(t.hosts, vec![HostSpec::new("localhost", 5432)]);
        assert_eq!(t.user, "osuser");
        assert_eq!(t.dbname, "osuser");
        assert_eq!(t.ssl_mode, SslMode::Prefer);
        assert_eq!(t.role, TargetRole::Any);
        assert_eq!(t.application_name, "pgopt");
        assert_eq!(t.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(t.statement_timeout, DEFAULT_STATEMENT_TIMEOUT);
        let with_socket = SystemDefaults {
            socket_dir: Some("/var/run/postgresql".into()),
            os_user: Some("me".into()),
            home: Some("/home/me".into()),
        };
        let t = Target::resolve_with(Some("port=5433"), &no_env, &with_socket).unwrap();
        assert_eq!(t.hosts, vec![HostSpec::new("/var/run/postgresql", 5433)]);
        assert_eq!(t.passfile.as_deref(), Some(Path::new("/home/me/.pgpass")));
        // connect_timeout 0 means our default, not forever; bad values are errors.
        assert_eq!(
            resolve("connect_timeout=0").unwrap().connect_timeout,
            DEFAULT_CONNECT_TIMEOUT
        );
        assert!(resolve("connect_timeout=abc").is_err());
        assert!(resolve("sslmode=maybe").is_err());
        assert!(resolve("target_session_attrs=whatever").is_err());
    }

    #[test]
    fn password_never_printed() {
        let t = resolve("host=h user=u password=hunter2 dbname=d").unwrap();
        for s in [
            format!("{t:?}"),
            format!("{:?}", t.password),
            t.password.as_ref().unwrap().to_string(),
            t.display_safe(),
        ] {
            assert!(!s.contains("hunter2"), "{s}");
        }
        assert_eq!(t.display_safe(), "u@h:5432/d");
    }

    #[test]
    fn pgpass_per_host() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "h1:5432:d:u:one\nh2:*:d:u:two\nlocalhost:5432:*:u:local\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let dsn = format!(
            "host=h1,h2,/var/run/postgresql user=u dbname=d passfile={}",
            file.display()
        );
        let t = resolve(&dsn).unwrap();
        let got: Vec<_> = t
            .hosts
            .iter()
            .map(|h| t.password_for(h).map(|s| s.expose().to_string()))
            .collect();
        assert_eq!(
            got,
            vec![Some("one".into()), Some("two".into()), Some("local".into())]
        );
        // A password given explicitly wins.
        let t = resolve(&format!("{dsn} password=given")).unwrap();
        assert_eq!(t.password_for(&t.hosts[0]).unwrap().expose(), "given");
    }

    mod props {
        use proptest::prelude::*;

        use super::super::{parse_conninfo, render_conninfo, KEYS};

        /// Values with what conninfo quoting must survive: quotes, backslashes, spaces,
        /// `=`, empty strings, and any other character.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z0-9 '\\\\=,:/@?&%\t]{0,16}",
                any::<String>(),
                Just(String::new()),
            ]
        }

        fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
            proptest::collection::vec(
                (0..KEYS.len())
                    .prop_map(|i| KEYS[i].0.to_string())
                    .prop_flat_map(|k| (Just(k), value())),
                0..6,
            )
        }

        proptest! {
            #[test]
            fn rendered_conninfo_parses_back_to_the_same_pairs(pairs in pairs()) {
                let text = render_conninfo(&pairs);
                let back = parse_conninfo(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(back, pairs, "rendered as {:?}", text);
            }

            #[test]
            fn parsed_conninfo_renders_and_parses_to_the_same_pairs(
                words in proptest::collection::vec(("[a-z_]{1,12}", "[^ ]{0,8}"), 0..5)
            ) {
                let text: Vec<String> = words.iter().map(|(k, v)| format!("{k}={v}")).collect();
                if let Ok(pairs) = parse_conninfo(&text.join(" ")) {
                    let again = parse_conninfo(&render_conninfo(&pairs)).unwrap();
                    prop_assert_eq!(again, pairs);
                }
            }
        }

        #[test]
        fn a_quote_and_a_backslash_are_escaped_as_libpq_escapes_them() {
            let pairs = vec![("password".to_string(), r"it's \ x".to_string())];
            assert_eq!(render_conninfo(&pairs), r"password='it\'s \\ x'");
        }
    }
}
