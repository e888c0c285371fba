//! `pgopt.toml` → [`Config`]: parsing and validation. Every error names the file and the
//! line it is about, and says what to write instead; no error, log or summary shows a
//! password, a token or a webhook's query string.
//!
//! Reads the files the configuration points at (the token file, password files) so that a
//! missing one stops the daemon at start, not at the first login or connect.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{
    AlertRule, Auth, Config, Intervals, Regressions, TargetConfig, Tls, Webhook, DEFAULT_LISTEN,
};
use crate::db::secret::Secret;
use crate::db::Target;
use crate::maintain::window::{self, parse_duration};
use crate::serve::store::Retention;

/// The longest a target name may be (it is a metric label and part of page addresses).
pub const MAX_NAME_LEN: usize = 64;
/// The shortest sample interval: collecting more often than this loads the servers watched.
const MIN_SAMPLE: Duration = Duration::from_secs(1);
/// The longest sample interval still worth calling monitoring.
const MAX_SAMPLE: Duration = Duration::from_secs(3600);
/// The longest full-snapshot interval.
const MAX_SNAPSHOT: Duration = Duration::from_secs(7 * 24 * 3600);
/// A webhook may take this long at most per attempt.
const MAX_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_WEBHOOK_RETRIES: u32 = 10;
const MAX_CONCURRENCY: usize = 256;
const MAX_TOP_STATEMENTS: usize = 1000;
/// The alert severities (those of the findings).
const SEVERITIES: &[&str] = &["info", "warning", "critical"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    listen: Option<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
    store: Option<Spanned<String>>,
    auth: Option<Spanned<RawAuth>>,
    tls: Option<Spanned<RawTls>>,
    intervals: Option<RawIntervals>,
    retention: Option<Spanned<RawRetention>>,
    #[serde(default)]
    target: Vec<Spanned<RawTarget>>,
    #[serde(default)]
    alert: Vec<Spanned<RawAlert>>,
    regressions: Option<RawRegressions>,
    notify: Option<RawNotify>,
    /// Parsed (and its errors reported) by `maintain::window::parse`.
    #[allow(dead_code)]
    maintenance: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    token_file: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntervals {
    sample: Option<Spanned<String>>,
    snapshot: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    concurrency: Option<Spanned<i64>>,
    top_statements: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    raw: Option<Spanned<String>>,
    five_minutes: Option<Spanned<String>>,
    hourly: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Spanned<String>,
    dsn: Spanned<String>,
    password_file: Option<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, Spanned<String>>,
    maintenance: Option<RawTargetMaintenance>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTargetMaintenance {
    #[serde(default)]
    apply: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlert {
    name: Spanned<String>,
    when: Spanned<String>,
    severity: Option<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegressions {
    factor: Option<Spanned<f64>>,
    min_calls: Option<Spanned<i64>>,
    min_increase_ms: Option<Spanned<f64>>,
    window: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    #[serde(default)]
    webhook: Vec<Spanned<RawWebhook>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Spanned<String>,
    timeout: Option<Spanned<String>>,
    retries: Option<Spanned<i64>>,
}

/// The 1-based line of byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Builds messages that start with `origin line N:`.
struct At<'a> {
    text: &'a str,
    origin: &'a str,
}

impl At<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    fn err(&self, span: Range<usize>, message: impl std::fmt::Display) -> String {
        format!("{} line {}: {message}", self.origin, self.line(span))
    }

    /// A duration field: positive, within `min..=max`.
    fn duration(
        &self,
        field: &Spanned<String>,
        what: &str,
        min: Duration,
        max: Duration,
    ) -> Result<Duration, String> {
        let d = parse_duration(field.get_ref())
            .map_err(|e| self.err(field.span(), format!("{what}: {e}")))?
            .to_std()
            .map_err(|_| self.err(field.span(), format!("{what} must be positive")))?;
        if !(min..=max).contains(&d) {
            return Err(self.err(
                field.span(),
                format!(
                    "{what} {:?} is out of range: give {} to {}",
                    field.get_ref(),
                    human(min),
                    human(max)
                ),
            ));
        }
        Ok(d)
    }
}

/// `90s`, `15m`, `48h`, `30d`: the shortest exact spelling of a duration, for messages and
/// the `--check-config` summary.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s.is_multiple_of(n) {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

/// serde's "unknown field `x`, expected one of `a`, `b`" in this file's words.
fn toml_message(message: &str) -> String {
    let m = message.trim();
    if let Some(rest) = m.strip_prefix("unknown field `") {
        if let Some((key, expected)) = rest.split_once('`') {
            let expected = expected
                .trim_start_matches(',')
                .trim()
                .replace('`', "\"")
                .replace("expected one of", "expected one of:")
                .replace("expected nothing", "this table takes no keys");
            return format!("unknown key \"{key}\"; {expected}");
        }
    }
    m.to_string()
}

/// Parses and validates `text`, the contents of the configuration file that `origin` names
/// in errors (`pgopt.toml`). Reads the token file and password files it points at (to check
/// them, not to print them).
pub fn parse(text: &str, origin: &str) -> Result<Config, String> {
    let (config, listen_at) = parse_unchecked(text, origin)?;
    config
        .check_exposure()
        .map_err(|e| format!("{listen_at}: {e}"))?;
    Ok(config)
}

/// [`parse`] without the last check (a non-loopback address needs auth), for the command
/// line whose flags may still add the token or change the address: the config, and where
/// its `listen` is (`pgopt.toml line 3`, or `pgopt.toml` when left out) for the message.
pub fn parse_unchecked(text: &str, origin: &str) -> Result<(Config, String), String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(" line {}", line_of(text, s.start)))
            .unwrap_or_default();
        format!("{origin}{at}: {}", toml_message(e.message()))
    })?;
    let at = At { text, origin };

    let listen = match &raw.listen {
        Some(l) => parse_listen(l.get_ref()).map_err(|e| at.err(l.span(), e))?,
        None => DEFAULT_LISTEN.parse().expect("the default address parses"),
    };
    let data_dir = match &raw.data_dir {
        Some(d) if d.get_ref().trim().is_empty() => {
            return Err(at.err(
                d.span(),
                "data_dir is empty: give a directory or leave it out",
            ))
        }
        Some(d) => PathBuf::from(d.get_ref()),
        None => default_data_dir()?,
    };
    let store = match &raw.store {
        Some(s) => Some(parse_store(s.get_ref()).map_err(|e| at.err(s.span(), e))?),
        None => None,
    };
    let auth = match &raw.auth {
        Some(a) => {
            let f = &a.get_ref().token_file;
            let token = read_token(Path::new(f.get_ref()))
                .map_err(|e| at.err(f.span(), format!("auth.token_file: {e}")))?;
            Some(Auth { token })
        }
        None => None,
    };
    let tls = match &raw.tls {
        Some(t) => {
            let r = t.get_ref();
            let cert = r.cert.as_ref().map(|c| PathBuf::from(c.get_ref()));
            let key = r.key.as_ref().map(|k| PathBuf::from(k.get_ref()));
            tls_pair(cert, key).map_err(|e| at.err(t.span(), e))?
        }
        None => None,
    };

    let intervals = parse_intervals(&at, raw.intervals.as_ref())?;
    let retention = parse_retention(&at, raw.retention.as_ref(), intervals.sample)?;

    if raw.target.is_empty() {
        return Err(format!(
            "{origin}: no target: add at least one\n  [[target]]\n  name = \"primary\"\n  \
             dsn = \"host=db1 dbname=app user=pgopt\""
        ));
    }
    let mut targets: Vec<TargetConfig> = Vec::new();
    for t in &raw.target {
        let target = parse_target(&at, t)?;
        if let Some(first) = targets.iter().find(|o| o.name == target.name) {
            return Err(at.err(
                t.get_ref().name.span(),
                format!(
                    "duplicate target name \"{}\" (first at line {}): each target needs its \
                     own name",
                    target.name, first.line
                ),
            ));
        }
        targets.push(target);
    }
    let groups: BTreeSet<&str> = targets
        .iter()
        .flat_map(|t| t.groups.iter().map(String::as_str))
        .collect();

    let mut alerts: Vec<AlertRule> = Vec::new();
    for a in &raw.alert {
        let rule = parse_alert(&at, a, &groups)?;
        if let Some(first) = alerts.iter().find(|o| o.name == rule.name) {
            return Err(at.err(
                a.get_ref().name.span(),
                format!(
                    "duplicate alert name \"{}\" (first at line {}): each alert needs its own \
                     name",
                    rule.name, first.line
                ),
            ));
        }
        alerts.push(rule);
    }

    let regressions = parse_regressions(&at, raw.regressions.as_ref(), intervals.sample)?;
    let webhooks = match &raw.notify {
        Some(n) => n
            .webhook
            .iter()
            .map(|w| parse_webhook(&at, w))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let windows = window::parse(text, origin)?.windows;
    if !windows.is_empty() && !targets.iter().any(|t| t.maintenance_apply) {
        tracing::warn!(
            "{origin}: maintenance windows are set but no target has maintenance = {{ apply = \
             true }}: no maintenance will run"
        );
    }

    let config = Config {
        listen,
        data_dir,
        store,
        auth,
        tls,
        intervals,
        retention,
        targets,
        alerts,
        regressions,
        webhooks,
        windows,
    };
    let listen_at = match &raw.listen {
        Some(l) => format!("{origin} line {}", at.line(l.span())),
        None => origin.to_string(),
    };
    Ok((config, listen_at))
}

/// `ADDR:PORT` (`[::1]:8432` for IPv6).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "listen {text:?} is not ADDR:PORT: write e.g. \"127.0.0.1:8432\", \"0.0.0.0:8432\" \
             or \"[::1]:8432\" (an IP address, not a host name)"
        )
    })
}

/// The PostgreSQL store's conninfo, checked like a target's (`memory` keeps history in
/// memory only).
pub fn parse_store(text: &str) -> Result<Secret, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(
            "store is empty: give a PostgreSQL connection string or leave it out \
                    for the SQLite file in the data directory"
                .into(),
        );
    }
    if t != "memory" {
        Target::parse(t).map_err(|e| format!("store: {e}"))?;
    }
    Ok(Secret::new(t))
}

/// The token: the file's first line, trimmed. Never printed.
pub fn read_token(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the token file {}: {e}; create it with one line of at least 16 \
             random characters (e.g. `openssl rand -hex 32 > {}`)",
            path.display(),
            path.display()
        )
    })?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(format!(
            "the token file {} is empty: write one line of at least 16 random characters \
             (e.g. `openssl rand -hex 32 > {}`)",
            path.display(),
            path.display()
        ));
    }
    if token.chars().count() < 16 {
        return Err(format!(
            "the token in {} is shorter than 16 characters: use a longer random one \
             (e.g. `openssl rand -hex 32 > {}`)",
            path.display(),
            path.display()
        ));
    }
    Ok(Secret::new(token))
}

/// Certificate and key: both or neither; both readable.
pub fn tls_pair(cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<Tls>, String> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(_), None) | (None, Some(_)) => Err(
            "TLS needs both a certificate and its key (tls.cert and tls.key, or --tls-cert and \
             --tls-key)"
                .into(),
        ),
        (Some(cert), Some(key)) => {
            for (what, p) in [("certificate", &cert), ("key", &key)] {
                std::fs::File::open(p)
                    .map_err(|e| format!("cannot read the TLS {what} {}: {e}", p.display()))?;
            }
            Ok(Some(Tls { cert, key }))
        }
    }
}

/// Where the SQLite store goes when no data directory is given: the user's state directory
/// (`$XDG_STATE_HOME/pgopt`, `~/.local/state/pgopt`), else the local data directory.
pub fn default_data_dir() -> Result<PathBuf, String> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("pgopt"))
        .ok_or_else(|| {
            "no state directory is known for this user (no HOME?): give --data-dir or \
             data_dir in the configuration"
                .to_string()
        })
}

/// A target name: a metric label and a page title.
pub fn check_name(name: &str, what: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!(
            "{what} name is empty: give it a short name (e.g. \"primary\")"
        ));
    }
    if name.trim() != name {
        return Err(format!(
            "{what} name {name:?} starts or ends with spaces: remove them"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "{what} name {name:?} holds control characters: use letters, digits, '-', '_' or \
             '.'"
        ));
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(format!(
            "{what} name {name:?} is a path, or holds '/' or '\\' (it is part of the pages' \
             addresses): use letters, digits, '-', '_' or '.'"
        ));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!(
            "{what} name {name:?} is longer than {MAX_NAME_LEN} characters: shorten it"
        ));
    }
    Ok(())
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_intervals(at: &At, raw: Option<&RawIntervals>) -> Result<Intervals, String> {
    let mut iv = Intervals::default();
    let Some(r) = raw else {
        return Ok(iv);
    };
    if let Some(s) = &r.sample {
        iv.sample = at.duration(s, "intervals.sample", MIN_SAMPLE, MAX_SAMPLE)?;
    }
    if let Some(s) = &r.snapshot {
        iv.snapshot = at.duration(s, "intervals.snapshot", MIN_SAMPLE, MAX_SNAPSHOT)?;
    }
    if let Some(t) = &r.timeout {
        iv.timeout = at.duration(t, "intervals.timeout", Duration::from_secs(1), MAX_SAMPLE)?;
    }
    if iv.snapshot < iv.sample {
        let span = r
            .snapshot
            .as_ref()
            .or(r.sample.as_ref())
            .expect("one was set")
            .span();
        return Err(at.err(
            span,
            format!(
                "intervals.snapshot ({}) is shorter than intervals.sample ({}): a full \
                 snapshot is taken at most once per sample",
                human(iv.snapshot),
                human(iv.sample)
            ),
        ));
    }
    if iv.timeout >= iv.sample {
        let span = r
            .timeout
            .as_ref()
            .or(r.sample.as_ref())
            .expect("one was set");
        // The defaults (5 s < 10 s) hold, so one of the two was given.
        return Err(at.err(
            span.span(),
            format!(
                "intervals.timeout ({}) must be shorter than intervals.sample ({}), or a slow \
                 target would still be collected when its next sample is due",
                human(iv.timeout),
                human(iv.sample)
            ),
        ));
    }
    if let Some(c) = &r.concurrency {
        let n = *c.get_ref();
        if !(1..=MAX_CONCURRENCY as i64).contains(&n) {
            return Err(at.err(
                c.span(),
                format!("intervals.concurrency {n} is out of range: give 1 to {MAX_CONCURRENCY}"),
            ));
        }
        iv.concurrency = n as usize;
    }
    if let Some(c) = &r.top_statements {
        let n = *c.get_ref();
        if !(1..=MAX_TOP_STATEMENTS as i64).contains(&n) {
            return Err(at.err(
                c.span(),
                format!(
                    "intervals.top_statements {n} is out of range: give 1 to \
                     {MAX_TOP_STATEMENTS}"
                ),
            ));
        }
        iv.top_statements = n as usize;
    }
    Ok(iv)
}

fn parse_retention(
    at: &At,
    raw: Option<&Spanned<RawRetention>>,
    sample: Duration,
) -> Result<Retention, String> {
    let mut ret = Retention::default();
    let Some(spanned) = raw else {
        return Ok(ret);
    };
    let r = spanned.get_ref();
    let ten_years = Duration::from_secs(10 * 366 * 86_400);
    if let Some(d) = &r.raw {
        ret.raw = at.duration(d, "retention.raw", Duration::from_secs(3600), ten_years)?;
    }
    if let Some(d) = &r.five_minutes {
        ret.five_minutes = at.duration(
            d,
            "retention.five_minutes",
            Duration::from_secs(3600),
            ten_years,
        )?;
    }
    if let Some(d) = &r.hourly {
        ret.hourly = at.duration(
            d,
            "retention.hourly",
            Duration::from_secs(86_400),
            ten_years,
        )?;
    }
    if ret.raw < sample {
        return Err(at.err(
            spanned.span(),
            "retention.raw is shorter than one sample interval",
        ));
    }
    if !(ret.raw <= ret.five_minutes && ret.five_minutes <= ret.hourly) {
        let span = r
            .five_minutes
            .as_ref()
            .or(r.hourly.as_ref())
            .or(r.raw.as_ref())
            .map(|s| s.span())
            .unwrap_or_else(|| spanned.span());
        return Err(at.err(
            span,
            format!(
                "retention must grow with coarser resolutions: raw ({}) <= five_minutes ({}) <= \
                 hourly ({})",
                human(ret.raw),
                human(ret.five_minutes),
                human(ret.hourly)
            ),
        ));
    }
    Ok(ret)
}

fn parse_target(at: &At, t: &Spanned<RawTarget>) -> Result<TargetConfig, String> {
    let r = t.get_ref();
    let name = r.name.get_ref().clone();
    check_name(&name, "target").map_err(|e| at.err(r.name.span(), e))?;
    Target::parse(r.dsn.get_ref()).map_err(|e| {
        at.err(
            r.dsn.span(),
            format!("target \"{name}\": dsn: {e} (the value is not shown: it may hold a password)"),
        )
    })?;
    let password_file = match &r.password_file {
        Some(p) => {
            let path = PathBuf::from(p.get_ref());
            check_password_file(&path)
                .map_err(|e| at.err(p.span(), format!("target \"{name}\": password_file: {e}")))?;
            Some(path)
        }
        None => None,
    };
    let mut groups = Vec::new();
    for g in &r.groups {
        check_name(g.get_ref(), "group").map_err(|e| at.err(g.span(), e))?;
        if !groups.contains(g.get_ref()) {
            groups.push(g.get_ref().clone());
        }
    }
    let mut labels = BTreeMap::new();
    for (k, v) in &r.labels {
        if !is_label_name(k) || k == "target" || k.starts_with("__") {
            return Err(at.err(
                v.span(),
                format!(
                    "target \"{name}\": label {k:?} is not usable as a Prometheus label: use \
                     letters, digits and '_', not starting with a digit or \"__\", and not \
                     \"target\""
                ),
            ));
        }
        if v.get_ref().chars().any(char::is_control) {
            return Err(at.err(
                v.span(),
                format!("target \"{name}\": label {k:?} holds control characters"),
            ));
        }
        labels.insert(k.clone(), v.get_ref().clone());
    }
    Ok(TargetConfig {
        name,
        dsn: Secret::new(r.dsn.get_ref().clone()),
        password_file,
        groups,
        labels,
        maintenance_apply: r.maintenance.as_ref().is_some_and(|m| m.apply),
        line: at.line(t.span()),
    })
}

/// A password file: readable, with a non-empty first line.
fn check_password_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.lines().next().unwrap_or("").is_empty() {
        return Err(format!(
            "{} is empty: its first line must be the password",
            path.display()
        ));
    }
    Ok(())
}

fn parse_alert(
    at: &At,
    a: &Spanned<RawAlert>,
    groups: &BTreeSet<&str>,
) -> Result<AlertRule, String> {
    let r = a.get_ref();
    let name = r.name.get_ref().clone();
    check_name(&name, "alert").map_err(|e| at.err(r.name.span(), e))?;
    let when = r.when.get_ref().trim().to_string();
    if when.is_empty() {
        return Err(at.err(
            r.when.span(),
            format!(
                "alert \"{name}\": when is empty: write a condition such as \"cache_hit_ratio < \
                 0.99 for 10m\" or \"finding:xid_wraparound >= warning\""
            ),
        ));
    }
    crate::serve::alerts::Condition::parse(&when)
        .map_err(|e| at.err(r.when.span(), format!("alert \"{name}\": {e}")))?;
    let severity = match &r.severity {
        Some(s) => {
            let v = s.get_ref().trim().to_ascii_lowercase();
            if !SEVERITIES.contains(&v.as_str()) {
                return Err(at.err(
                    s.span(),
                    format!(
                        "alert \"{name}\": severity {:?} is not one of {}",
                        s.get_ref(),
                        SEVERITIES.join(", ")
                    ),
                ));
            }
            v
        }
        None => "warning".to_string(),
    };
    let mut rule_groups = Vec::new();
    for g in &r.groups {
        if !groups.contains(g.get_ref().as_str()) {
            return Err(at.err(
                g.span(),
                format!(
                    "alert \"{name}\": group \"{}\" is not a group of any target (targets' \
                     groups: {})",
                    g.get_ref(),
                    if groups.is_empty() {
                        "none".to_string()
                    } else {
                        groups.iter().copied().collect::<Vec<_>>().join(", ")
                    }
                ),
            ));
        }
        rule_groups.push(g.get_ref().clone());
    }
    Ok(AlertRule {
        name,
        when,
        severity,
        groups: rule_groups,
        line: at.line(a.span()),
    })
}

fn parse_regressions(
    at: &At,
    raw: Option<&RawRegressions>,
    sample: Duration,
) -> Result<Regressions, String> {
    let mut reg = Regressions::default();
    let Some(r) = raw else {
        return Ok(reg);
    };
    if let Some(f) = &r.factor {
        let v = *f.get_ref();
        if !(v.is_finite() && v > 1.0 && v <= 1000.0) {
            return Err(at.err(
                f.span(),
                format!("regressions.factor {v} is out of range: give more than 1 (e.g. 2.0)"),
            ));
        }
        reg.factor = v;
    }
    if let Some(c) = &r.min_calls {
        let v = *c.get_ref();
        if v < 1 {
            return Err(at.err(
                c.span(),
                format!("regressions.min_calls {v} must be at least 1"),
            ));
        }
        reg.min_calls = v as u64;
    }
    if let Some(ms) = &r.min_increase_ms {
        let v = *ms.get_ref();
        if !(v.is_finite() && (0.0..=3_600_000.0).contains(&v)) {
            return Err(at.err(
                ms.span(),
                format!(
                    "regressions.min_increase_ms {v} is out of range: give milliseconds from 0 \
                     to 3600000 (e.g. 1.0)"
                ),
            ));
        }
        reg.min_increase = Duration::from_secs_f64(v / 1000.0);
    }
    if let Some(w) = &r.window {
        reg.window = at.duration(
            w,
            "regressions.window",
            sample.max(Duration::from_secs(60)),
            Duration::from_secs(86_400),
        )?;
    }
    Ok(reg)
}

fn parse_webhook(at: &At, w: &Spanned<RawWebhook>) -> Result<Webhook, String> {
    let r = w.get_ref();
    check_webhook_url(r.url.get_ref()).map_err(|e| at.err(r.url.span(), e))?;
    let timeout = match &r.timeout {
        Some(t) => at.duration(
            t,
            "notify.webhook timeout",
            Duration::from_secs(1),
            MAX_WEBHOOK_TIMEOUT,
        )?,
        None => Duration::from_secs(5),
    };
    let retries = match &r.retries {
        Some(n) => {
            let v = *n.get_ref();
            if !(0..=MAX_WEBHOOK_RETRIES as i64).contains(&v) {
                return Err(at.err(
                    n.span(),
                    format!("notify.webhook retries {v} is out of range: give 0 to {MAX_WEBHOOK_RETRIES}"),
                ));
            }
            v as u32
        }
        None => 3,
    };
    Ok(Webhook {
        url: Secret::new(r.url.get_ref().trim()),
        timeout,
        retries,
    })
}

/// An http(s) URL with a host. The message shows at most scheme://host: the path and query
/// may hold a token.
pub fn check_webhook_url(text: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("notify.webhook url is not a URL ({e}): write https://host/path"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "notify.webhook url: scheme \"{}\" is not allowed: use https:// (or http://)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("notify.webhook url has no host: write https://host/path".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temp dir with a token file and a password file, and their paths.
    struct Files {
        _dir: tempfile::TempDir,
        token: String,
        password: String,
        empty: String,
        missing: String,
    }

    const TOKEN: &str = "s3cr3t-token-0123456789abcdef";

    fn files() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let password = dir.path().join("pw");
        std::fs::write(&password, "hunter2\n").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        let s = |p: PathBuf| p.display().to_string();
        Files {
            token: s(token),
            password: s(password),
            empty: s(empty),
            missing: s(dir.path().join("missing")),
            _dir: dir,
        }
    }

    /// The lines joined: line N of the file is `lines[N - 1]`.
    fn text(lines: &[&str]) -> String {
        lines.join("\n") + "\n"
    }

    const TARGET: &[&str] = &[
        "[[target]]",
        "name = \"a\"",
        "dsn = \"host=db1 dbname=x user=u\"",
    ];

    fn with_target(lines: &[&str]) -> String {
        let mut all: Vec<&str> = lines.to_vec();
        all.extend_from_slice(TARGET);
        text(&all)
    }

    fn err(text: &str) -> String {
        parse(text, "pgopt.toml").expect_err("must be refused")
    }

    #[test]
    fn full_example_parses_into_the_expected_config() {
        let f = files();
        let toml = format!(
            r#"listen = "0.0.0.0:9000"
data_dir = "/var/lib/pgopt"

[auth]
token_file = "{token}"

[intervals]
sample = "15s"
snapshot = "30m"
timeout = "4s"
concurrency = 4
top_statements = 20

[retention]
raw = "24h"
five_minutes = "14d"
hourly = "180d"

[[target]]
name = "governance-primary"
dsn = "host=db1 dbname=acgs user=pgopt password=hunter2"
groups = ["acgs", "prod"]
labels = {{ region = "eu-west-1" }}
maintenance = {{ apply = true }}

[[target]]
name = "governance-standby"
dsn = "postgresql://pgopt@db2:5433/acgs"
password_file = "{password}"
groups = ["acgs"]

[[alert]]
name = "cache"
when = "cache_hit_ratio < 0.99 for 10m"
severity = "critical"
groups = ["prod"]

[[alert]]
name = "wraparound"
when = "finding:xid_wraparound >= warning"

[regressions]
factor = 3.0
min_calls = 100
min_increase_ms = 2.5
window = "30m"

[[notify.webhook]]
url = "https://hooks.example.com/pgopt?key=abc"
timeout = "10s"
retries = 5

[[maintenance.window]]
cron = "0 2 * * 6"
duration = "3h"
"#,
            token = f.token,
            password = f.password
        );
        let c = parse(&toml, "pgopt.toml").unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/pgopt"));
        assert!(c.store.is_none());
        assert_eq!(c.auth.as_ref().unwrap().token.expose(), TOKEN);
        assert!(c.tls.is_none());
        assert_eq!(
            c.intervals,
            Intervals {
                sample: Duration::from_secs(15),
                snapshot: Duration::from_secs(1800),
                timeout: Duration::from_secs(4),
                concurrency: 4,
                top_statements: 20,
            }
        );
        assert_eq!(
            c.retention,
            Retention {
                raw: Duration::from_secs(86_400),
                five_minutes: Duration::from_secs(14 * 86_400),
                hourly: Duration::from_secs(180 * 86_400),
            }
        );
        assert_eq!(c.targets.len(), 2);
        let p = &c.targets[0];
        assert_eq!(p.name, "governance-primary");
        assert_eq!(
            p.dsn.expose(),
            "host=db1 dbname=acgs user=pgopt password=hunter2"
        );
        assert_eq!(p.groups, vec!["acgs", "prod"]);
        assert_eq!(
            p.labels.get("region").map(String::as_str),
            Some("eu-west-1")
        );
        assert!(p.maintenance_apply);
        assert_eq!(p.line, 19);
        let s = &c.targets[1];
        assert_eq!(s.password_file, Some(PathBuf::from(&f.password)));
        assert!(!s.maintenance_apply);
        assert_eq!(s.line, 26);
        assert_eq!(c.alerts.len(), 2);
        assert_eq!(c.alerts[0].name, "cache");
        assert_eq!(c.alerts[0].when, "cache_hit_ratio < 0.99 for 10m");
        assert_eq!(c.alerts[0].severity, "critical");
        assert_eq!(c.alerts[0].groups, vec!["prod"]);
        assert_eq!(c.alerts[0].line, 32);
        assert_eq!(c.alerts[1].severity, "warning", "the default severity");
        assert_eq!(
            c.regressions,
            Regressions {
                factor: 3.0,
                min_calls: 100,
                min_increase: Duration::from_micros(2500),
                window: Duration::from_secs(1800),
            }
        );
        assert_eq!(c.webhooks.len(), 1);
        assert_eq!(c.webhooks[0].timeout, Duration::from_secs(10));
        assert_eq!(c.webhooks[0].retries, 5);
        assert_eq!(c.windows.len(), 1);
        assert_eq!(c.windows[0].cron_text, "0 2 * * 6");
        // Secrets never in Debug.
        let debug = format!("{c:?}");
        for secret in [TOKEN, "hunter2", "key=abc"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[test]
    fn a_minimal_file_takes_the_defaults() {
        let c = parse(&with_target(&["data_dir = \"/d\""]), "pgopt.toml").unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(c.intervals, Intervals::default());
        assert_eq!(c.retention, Retention::default());
        assert_eq!(c.regressions, Regressions::default());
        assert_eq!(c.targets[0].line, 2);
    }

    #[test]
    fn the_regression_check_runs_every_minute_or_four_times_a_shorter_window() {
        let every = |window: &str| {
            let c = parse(
                &with_target(&[
                    "data_dir = \"/d\"",
                    "[regressions]",
                    &format!("window = \"{window}\""),
                ]),
                "pgopt.toml",
            )
            .unwrap();
            c.regressions.every()
        };
        assert_eq!(Regressions::default().every(), Duration::from_secs(60));
        assert_eq!(every("1m"), Duration::from_secs(15));
        assert_eq!(every("2m"), Duration::from_secs(30));
        assert_eq!(every("4m"), Duration::from_secs(60));
        assert_eq!(every("30m"), Duration::from_secs(60));
        assert_eq!(every("24h"), Duration::from_secs(60));
    }

    #[test]
    fn unknown_key_names_its_line_and_the_keys_expected() {
        let e = err(&with_target(&[
            "data_dir = \"/d\"",
            "[intervals]",
            "sample = \"10s\"",
            "intervl = \"5s\"",
        ]));
        assert!(e.starts_with("pgopt.toml line 4: "), "{e}");
        assert!(e.contains("unknown key \"intervl\""), "{e}");
        assert!(e.contains("expected one of"), "{e}");
        assert!(e.contains("\"sample\""), "{e}");
        // In a [[target]] too.
        let e = err(&text(&[
            "data_dir = \"/d\"",
            "[[target]]",
            "name = \"a\"",
            "dsn = \"host=db1\"",
            "grups = [\"x\"]",
        ]));
        assert!(e.starts_with("pgopt.toml line 5: "), "{e}");
        assert!(e.contains("unknown key \"grups\""), "{e}");
    }

    #[test]
    fn bad_cron_names_its_line() {
        let e = err(&with_target(&[
            "data_dir = \"/d\"",
            "[[maintenance.window]]",
            "cron = \"0 25 * * *\"",
            "duration = \"1h\"",
        ]));
        assert!(e.starts_with("pgopt.toml line 3: "), "{e}");
        assert!(e.contains("cron"), "{e}");
    }

    #[test]
    fn duplicate_target_name_names_both_lines() {
        let e = err(&text(&[
            "data_dir = \"/d\"",
            "[[target]]",
            "name = \"a\"",
            "dsn = \"host=db1\"",
            "[[target]]",
            "name = \"a\"",
            "dsn = \"host=db2\"",
        ]));
        assert!(e.starts_with("pgopt.toml line 6: "), "{e}");
        assert!(
            e.contains("duplicate target name \"a\" (first at line 2)"),
            "{e}"
        );
    }

    #[test]
    fn bad_dsn_names_its_line_and_not_the_password() {
        let e = err(&text(&[
            "data_dir = \"/d\"",
            "[[target]]",
            "name = \"a\"",
            "dsn = \"host=db1 port=eighty password=hunter2\"",
        ]));
        assert!(e.starts_with("pgopt.toml line 4: "), "{e}");
        assert!(e.contains("target \"a\": dsn: invalid port"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn non_loopback_listen_without_auth_says_how_to_add_a_token() {
        let e = err(&with_target(&[
            "listen = \"0.0.0.0:8432\"",
            "data_dir = \"/d\"",
        ]));
        assert!(e.starts_with("pgopt.toml line 1: "), "{e}");
        assert!(e.contains("token_file"), "{e}");
        assert!(e.contains("--token-file"), "{e}");
        // Loopback needs none; IPv6 loopback neither.
        parse(
            &with_target(&["listen = \"[::1]:8432\"", "data_dir = \"/d\""]),
            "x",
        )
        .unwrap();
    }

    #[test]
    fn missing_or_empty_token_file_names_its_line() {
        let f = files();
        let missing = format!("token_file = \"{}\"", f.missing);
        let e = err(&with_target(&["data_dir = \"/d\"", "[auth]", &missing]));
        assert!(e.starts_with("pgopt.toml line 3: "), "{e}");
        assert!(e.contains("cannot read the token file"), "{e}");
        let empty = format!("token_file = \"{}\"", f.empty);
        let e = err(&with_target(&["data_dir = \"/d\"", "[auth]", &empty]));
        assert!(e.starts_with("pgopt.toml line 3: "), "{e}");
        assert!(e.contains("is empty"), "{e}");
    }

    #[test]
    fn bad_duration_names_its_line() {
        let e = err(&with_target(&[
            "data_dir = \"/d\"",
            "[intervals]",
            "sample = \"10 parsecs\"",
        ]));
        assert!(e.starts_with("pgopt.toml line 3: "), "{e}");
        assert!(e.contains("intervals.sample"), "{e}");
        assert!(e.contains("not a duration"), "{e}");
        let e = err(&with_target(&[
            "data_dir = \"/d\"",
            "[intervals]",
            "sample = \"0s\"",
        ]));
        assert!(e.starts_with("pgopt.toml line 3: "), "{e}");
    }

    #[test]
    fn timeout_not_shorter_than_sample_is_refused() {
        let e = err(&with_target(&[
            "data_dir = \"/d\"",
            "[intervals]",
            "sample = \"5s\"",
            "timeout = \"5s\"",
        ]));
        assert!(e.starts_with("pgopt.toml line 4: "), "{e}");
        assert!(e.contains("must be shorter than intervals.sample"), "{e}");
    }

    #[test]
    fn retention_out_of_order_is_refused() {
        let e = err(&with_target(&[
            "data_dir = \"/d\"",
            "[retention]",
            "raw = \"48h\"",
            "five_minutes = \"1d\"",
        ]));
        assert!(e.starts_with("pgopt.toml line 4: "), "{e}");
        assert!(e.contains("raw (2d) <= five_minutes (1d)"), "{e}");
    }

    #[test]
    fn no_target_is_refused_with_an_example() {
        let e = err(&text(&["data_dir = \"/d\""]));
        assert!(e.contains("no target"), "{e}");
        assert!(e.contains("[[target]]"), "{e}");
    }

    #[test]
    fn target_names_must_be_usable_as_labels() {
        let long = format!("name = \"{}\"", "x".repeat(MAX_NAME_LEN + 1));
        for (name_line, what) in [
            ("name = \"a\\tb\"", "control characters"),
            ("name = \"\"", "is empty"),
            (long.as_str(), "longer than"),
            ("name = \"eu/db1\"", "holds '/'"),
            ("name = \"..\"", "is a path"),
        ] {
            let e = err(&text(&[
                "data_dir = \"/d\"",
                "[[target]]",
                name_line,
                "dsn = \"host=db1\"",
            ]));
            assert!(e.starts_with("pgopt.toml line 3: "), "{e}");
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn webhook_must_be_http_and_its_query_is_never_shown() {
        let e = err(&with_target(&[
            "data_dir = \"/d\"",
            "[[notify.webhook]]",
            "url = \"ftp://hooks.example.com/x?key=abc\"",
        ]));
        assert!(e.starts_with("pgopt.toml line 3: "), "{e}");
        assert!(e.contains("scheme \"ftp\""), "{e}");
        assert!(!e.contains("key=abc"), "{e}");
    }

    #[test]
    fn tls_needs_both_cert_and_key() {
        let e = err(&with_target(&[
            "data_dir = \"/d\"",
            "[tls]",
            "cert = \"/etc/pgopt/cert.pem\"",
        ]));
        assert!(e.starts_with("pgopt.toml line 2: "), "{e}");
        assert!(e.contains("both a certificate and its key"), "{e}");
    }

    #[test]
    fn missing_password_file_names_its_line() {
        let f = files();
        let pw = format!("password_file = \"{}\"", f.missing);
        let e = err(&text(&[
            "data_dir = \"/d\"",
            "[[target]]",
            "name = \"a\"",
            "dsn = \"host=db1\"",
            &pw,
        ]));
        assert!(e.starts_with("pgopt.toml line 5: "), "{e}");
        assert!(e.contains("password_file"), "{e}");
    }

    #[test]
    fn alert_with_empty_condition_or_unknown_group_is_refused() {
        let mut lines: Vec<&str> = vec!["data_dir = \"/d\""];
        lines.extend_from_slice(TARGET);
        lines.extend_from_slice(&["[[alert]]", "name = \"x\"", "when = \"  \""]);
        let e = err(&text(&lines));
        assert!(e.starts_with("pgopt.toml line 7: "), "{e}");
        assert!(e.contains("when is empty"), "{e}");
        lines.truncate(4);
        lines.extend_from_slice(&[
            "[[alert]]",
            "name = \"x\"",
            "when = \"up < 1\"",
            "groups = [\"prd\"]",
        ]);
        let e = err(&text(&lines));
        assert!(e.starts_with("pgopt.toml line 8: "), "{e}");
        assert!(e.contains("group \"prd\""), "{e}");
    }

    #[test]
    fn single_target_is_named_after_its_database_and_host() {
        let c = Config::single(
            "host=db1 port=5433 dbname=acgs user=u password=hunter2",
            None,
            DEFAULT_LISTEN.parse().unwrap(),
            PathBuf::from("/d"),
        )
        .unwrap();
        assert_eq!(c.targets.len(), 1);
        assert_eq!(c.targets[0].name, "acgs@db1:5433");
        let e = Config::single(
            "host=db1 port=x password=hunter2",
            None,
            DEFAULT_LISTEN.parse().unwrap(),
            PathBuf::from("/d"),
        )
        .unwrap_err();
        assert!(e.contains("invalid port"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
