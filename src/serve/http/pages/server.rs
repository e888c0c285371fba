//! `/targets/{name}`: one server over a range — charts of throughput, connections by
//! state, cache hit ratio, replication lag, WAL rate and the top statements' mean time;
//! its current findings with their next steps; the index, maintenance and settings
//! advice they carry, with the command that acts on it; the changes applied (maintenance
//! events and journals).

use std::path::{Path, PathBuf};

use super::layout::{self, command, page};
use super::series::{self, figure, ChartSpec, Window};
use super::{path_segment, target, target_href, PageError, Range};
use crate::advise::{Finding, Severity};
use crate::report::html::esc;
use crate::serve::http::AppState;
use crate::serve::model::{m, EventKind};
use crate::serve::state::Health;

/// Statements on the mean-time chart and in the table.
const TOP_STATEMENTS: usize = 5;
/// Journals listed at most.
const JOURNALS: usize = 20;

/// What a group of findings is acted on with.
struct Advice {
    title: &'static str,
    /// The analyze rules whose findings belong here.
    rules: &'static [&'static str],
    /// The pgopt command (without its TARGET).
    command: &'static str,
    what: &'static str,
}

/// Index, maintenance and settings advice, as far as the findings carry it.
const ADVICE: &[Advice] = &[
    Advice {
        title: "Index advice",
        rules: &[
            "unused_index",
            "duplicate_index",
            "redundant_index",
            "invalid_index",
            "fk_missing_index",
            "seq_scan_heavy_table",
            "slow_statement_total_time",
            "slow_statement_mean_time",
        ],
        command: "pgopt indexes",
        what: "costs indexes for the workload with hypothetical indexes and lists the drops; \
               --apply builds them concurrently (journaled)",
    },
    Advice {
        title: "Maintenance advice",
        rules: &[
            "xid_wraparound",
            "multixact_wraparound",
            "autovacuum_behind",
            "vacuum_after_inserts",
            "stale_statistics",
            "index_bloat",
            "table_bloat",
        ],
        command: "pgopt maintain",
        what: "plans VACUUM, ANALYZE, freezes and REINDEX CONCURRENTLY from these findings; \
               --apply runs them within a budget (journaled)",
    },
    Advice {
        title: "Settings advice",
        rules: &[
            "cache_hit_ratio",
            "checkpoints_requested",
            "connections_near_max",
            "temp_file_spills",
            "autovacuum_off",
            "track_counts_off",
            "pg_stat_statements_not_preloaded",
        ],
        command: "pgopt tune",
        what: "compares the settings with what the server shows; --apply changes them \
               (journaled, --rollback JOURNAL undoes)",
    },
];

/// The server page of `name` over `range`.
pub fn render(app: &AppState, name: &str, range: Range) -> Result<String, PageError> {
    let t = target(app, name)?;
    let now = app.clock.now();
    let w = Window::ending(now, range);
    let store = app.store.as_ref();
    let href = target_href(name);
    let mut body = String::new();

    body.push_str(&status(&t.health, t.server.as_deref()));
    body.push_str(&layout::range_links(&href, range));

    // Charts.
    let mut charts = String::new();
    let throughput = series::read(store, name, m::TPS, Some(""), w)?;
    let commits = series::read(store, name, m::COMMITS_PER_SECOND, Some(""), w)?;
    let rollbacks = series::read(store, name, m::ROLLBACKS_PER_SECOND, Some(""), w)?;
    charts.push_str(&figure(
        &ChartSpec {
            id: "throughput",
            title: "Throughput",
            axis: "transactions per second (1/s)",
            max: None,
            format: layout::rate,
            scale: 1.0,
        },
        w,
        vec![
            ("transactions".into(), flat(throughput)),
            ("commits".into(), flat(commits)),
            ("rollbacks".into(), flat(rollbacks)),
        ],
    ));
    let states = series::read(store, name, m::CONNECTIONS_BY_STATE, None, w)?;
    charts.push_str(&figure(
        &ChartSpec {
            id: "connections",
            title: "Connections by state",
            axis: "client connections",
            max: None,
            format: layout::count,
            scale: 1.0,
        },
        w,
        states.into_iter().collect(),
    ));
    for (id, title, metric, axis, max, format) in [
        (
            "cache",
            "Cache hit ratio",
            m::CACHE_HIT_RATIO,
            "shared-buffer hits (ratio, 0–1)",
            Some(1.0),
            (|v: f64| format!("{v:.3}")) as fn(f64) -> String,
        ),
        (
            "replication",
            "Replication lag",
            m::REPLICATION_LAG_SECONDS,
            "replay lag (s)",
            None,
            layout::rate,
        ),
        (
            "wal",
            "WAL rate",
            m::WAL_BYTES_PER_SECOND,
            "WAL written (bytes per second)",
            None,
            layout::bytes_per_second,
        ),
    ] {
        let s = series::read(store, name, metric, Some(""), w)?;
        charts.push_str(&figure(
            &ChartSpec {
                id,
                title,
                axis,
                max,
                format,
                scale: 1.0,
            },
            w,
            vec![(metric.replace('_', " "), flat(s))],
        ));
    }

    // The top statements by total time over the range.
    let time = series::read(store, name, m::STATEMENT_TIME_RATIO, None, w)?;
    let mut top: Vec<(String, f64)> = time
        .iter()
        .map(|(k, p)| (k.clone(), series::mean(p)))
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(TOP_STATEMENTS);
    let means = series::read(store, name, m::STATEMENT_MEAN_SECONDS, None, w)?;
    let calls = series::read(store, name, m::STATEMENT_CALLS_PER_SECOND, None, w)?;
    charts.push_str(&figure(
        &ChartSpec {
            id: "statements",
            title: "Top statements: mean time",
            axis: "mean execution time (ms)",
            max: None,
            format: layout::millis,
            scale: 1000.0,
        },
        w,
        top.iter()
            .map(|(k, _)| {
                (
                    format!("queryid {k}"),
                    means.get(k).cloned().unwrap_or_default(),
                )
            })
            .collect(),
    ));
    body.push_str("<h2>Charts</h2>\n<div class=\"charts\">\n");
    body.push_str(&charts);
    body.push_str("</div>\n");

    body.push_str(&format!(
        "<h2>Top statements ({})</h2>\n",
        esc(range.as_str())
    ));
    if top.is_empty() {
        body.push_str(
            "<p class=\"note\">No statement in this range (pg_stat_statements missing, or no \
             activity).</p>\n",
        );
    } else {
        body.push_str(
            "<table>\n<tr><th>Statement</th><th>Text</th><th>Calls/s</th><th>Mean (ms)</th>\
             <th>Time (s/s)</th></tr>\n",
        );
        for (k, ratio) in &top {
            let text = k
                .parse::<i64>()
                .ok()
                .map(|id| store.statement(name, id))
                .transpose()?
                .flatten()
                .unwrap_or_default();
            body.push_str(&format!(
                "<tr><td><a href=\"{href}/statements/{seg}?range={r}\">{k}</a></td>\
                 <td class=\"text\"><code>{text}</code></td><td>{calls}</td><td>{mean}</td>\
                 <td>{ratio:.3}</td></tr>\n",
                href = esc(&href),
                seg = path_segment(k),
                r = range.as_str(),
                k = esc(k),
                text = esc(&short(&text, 160)),
                calls = layout::rate(calls.get(k).map(|p| series::mean(p)).unwrap_or(0.0)),
                mean = layout::millis(means.get(k).map(|p| series::mean(p)).unwrap_or(0.0) * 1e3),
            ));
        }
        body.push_str("</table>\n");
    }

    body.push_str(&findings(&t.findings, t.snapshot_at));
    body.push_str(&advice(&t.findings, name));

    // Changes applied.
    body.push_str("<h2>Changes applied</h2>\n");
    let events = store.events(Some(name), now - Range::Month.duration(), now, 1000)?;
    let maintenance: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Maintenance)
        .take(50)
        .collect();
    if maintenance.is_empty() {
        body.push_str("<p class=\"note\">No maintenance run recorded in the last 30 days.</p>\n");
    } else {
        body.push_str("<table>\n<tr><th>When</th><th>What</th><th>Details</th></tr>\n");
        for e in maintenance {
            body.push_str(&format!(
                "<tr><td>{}</td><td class=\"text\">{}</td><td class=\"text\">{}</td></tr>\n",
                esc(&layout::time(e.at)),
                esc(&e.message),
                esc(&details(&e.details))
            ));
        }
        body.push_str("</table>\n");
    }
    let journals = journals(&app.config.data_dir, name);
    if !journals.is_empty() {
        body.push_str("<p>Journals in the data directory (newest first):</p>\n<ul>\n");
        for j in journals {
            body.push_str(&format!("<li><code>{}</code></li>\n", esc(&j)));
        }
        body.push_str("</ul>\n");
    }

    // Recent events of the target.
    let others: Vec<_> = events
        .iter()
        .filter(|e| e.kind != EventKind::Maintenance && e.at >= w.from)
        .take(50)
        .collect();
    if !others.is_empty() {
        body.push_str(&format!(
            "<h2>Events ({})</h2>\n<table>\n<tr><th>When</th><th>Kind</th><th>What</th></tr>\n",
            esc(range.as_str())
        ));
        for e in others {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>\n",
                esc(&layout::time(e.at)),
                esc(e.kind.as_str()),
                esc(&e.message)
            ));
        }
        body.push_str("</table>\n");
    }
    Ok(page(name, &body, Some(layout::REFRESH_SECONDS)))
}

/// A series without its key (server-wide metrics have one, `""`).
fn flat(s: series::Series) -> Vec<(i64, f64)> {
    s.into_values().next().unwrap_or_default()
}

fn short(s: &str, max: usize) -> String {
    let one = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= max {
        one
    } else {
        format!("{}…", one.chars().take(max - 1).collect::<String>())
    }
}

fn status(h: &Health, server: Option<&str>) -> String {
    let server = server.map(|s| format!(" — {}", esc(s))).unwrap_or_default();
    match h {
        Health::Unknown => {
            format!("<p><span class=\"unknown\">not collected yet</span>{server}</p>\n")
        }
        Health::Up { since } => format!(
            "<p><span class=\"up\">up</span> since {}{server}</p>\n",
            esc(&layout::time(*since))
        ),
        Health::Down {
            since,
            error,
            attempts,
        } => format!(
            "<p><span class=\"down\">down</span> since {} after {attempts} attempts: \
             <span class=\"error\">{}</span>{server}</p>\n{}",
            esc(&layout::time(*since)),
            esc(error),
            layout::act(
                "check that the server runs and accepts connections from this host \
                 (pg_hba.conf, the network, the credentials in the daemon's config); \
                 the daemon retries with backoff."
            )
        ),
    }
}

/// The current findings, most severe first, with their next steps.
fn findings(findings: &[Finding], at: Option<crate::serve::model::Ts>) -> String {
    let mut out = String::from("<h2>Findings</h2>\n");
    let Some(at) = at else {
        return out
            + "<p class=\"note\">No full snapshot yet (one is taken every 15 minutes \
                      by default).</p>\n";
    };
    out.push_str(&format!(
        "<p>From the snapshot of {}.</p>\n",
        esc(&layout::time(at))
    ));
    if findings.is_empty() {
        return out + "<p class=\"note\">No finding: nothing to do on this server now.</p>\n";
    }
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule.cmp(&b.rule)));
    out.push_str(
        "<table>\n<tr><th>Severity</th><th>Rule</th><th>Object</th><th>Finding</th>\
         <th>Next step</th></tr>\n",
    );
    for f in sorted {
        out.push_str(&format!(
            "<tr><td class=\"{s}\">{s}</td><td>{}</td><td class=\"text\">{}</td>\
             <td class=\"text\">{}</td><td class=\"text\">{}</td></tr>\n",
            esc(&f.rule),
            esc(&f.object),
            esc(&f.message),
            esc(&f.next_step),
            s = f.severity.as_str(),
        ));
    }
    out.push_str("</table>\n");
    out
}

/// Index, maintenance and settings advice from the findings, with the command to run.
fn advice(findings: &[Finding], name: &str) -> String {
    let mut out = String::new();
    for a in ADVICE {
        let mine: Vec<&Finding> = findings
            .iter()
            .filter(|f| a.rules.contains(&f.rule.as_str()))
            .collect();
        out.push_str(&format!("<h2>{}</h2>\n", esc(a.title)));
        if mine.is_empty() {
            out.push_str("<p class=\"note\">None from the last snapshot.</p>\n");
            continue;
        }
        let critical = mine
            .iter()
            .filter(|f| f.severity == Severity::Critical)
            .count();
        out.push_str("<ul>\n");
        for f in &mine {
            let sql = f
                .sql
                .as_deref()
                .map(|s| format!("<pre class=\"statement\">{}</pre>", esc(s)))
                .unwrap_or_default();
            out.push_str(&format!(
                "<li><span class=\"{s}\">{s}</span> {}: {}{sql}</li>\n",
                esc(&f.object),
                esc(&f.message),
                s = f.severity.as_str()
            ));
        }
        out.push_str("</ul>\n");
        out.push_str(&layout::act(&format!(
            "run {} (a dry run; it {}), where TARGET is the connection string of {} \
             from the daemon's configuration.{}",
            command(&format!("{} TARGET", a.command)),
            esc(a.what),
            esc(&format!("{name:?}")),
            if critical > 0 {
                format!(" {critical} critical: act soon.")
            } else {
                String::new()
            }
        )));
    }
    out
}

/// An event's details as one line.
fn details(d: &std::collections::BTreeMap<String, serde_json::Value>) -> String {
    d.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}: {s}"),
            v => format!("{k}: {v}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The journals the daemon's maintenance wrote for `name`: `*.json` files under
/// `DATA_DIR/journals/NAME/` (a name that is not a plain file name is not looked up),
/// newest first. Read errors mean none.
fn journals(data_dir: &Path, name: &str) -> Vec<String> {
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    if !plain {
        return Vec::new();
    }
    let dir: PathBuf = data_dir.join("journals").join(name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, String)> = entries
        .flatten()
        .take(10_000)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let modified = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (modified, e.path().display().to_string())
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    files.into_iter().take(JOURNALS).map(|f| f.1).collect()
}
