//! `/`: every target in one table — up or down (with the error), throughput,
//! connections, cache hit ratio, firing alerts, findings by severity — and a link to each.

use super::layout::{self, or_dash, page, ratio};
use super::{target_href, PageError};
use crate::advise::Severity;
use crate::report::html::esc;
use crate::serve::http::AppState;
use crate::serve::model::m;
use crate::serve::state::{AlertState, Health, TargetView};

/// The fleet page.
pub fn render(app: &AppState) -> Result<String, PageError> {
    let targets = app.fleet.views();
    let alerts = app
        .fleet
        .alerts
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let store = app
        .fleet
        .store
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let now = app.clock.now();
    let mut body = String::new();
    let down = targets
        .iter()
        .filter(|t| matches!(t.health, Health::Down { .. }))
        .count();
    let firing = alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .count();
    body.push_str(&format!(
        "<p>{} targets, {} down, {} alerts firing. As of {}.</p>\n",
        targets.len(),
        down,
        firing,
        layout::time(now)
    ));
    if let Some(e) = &store.error {
        body.push_str(&format!(
            "<p class=\"error\">The history store fails: {} ({} points held in memory until \
             it can write again). Charts miss the latest points meanwhile.</p>\n",
            esc(e),
            store.pending_points
        ));
    }
    body.push_str(
        "<table class=\"fleet\">\n<tr><th>Target</th><th>Status</th><th>TPS</th>\
         <th>Connections</th><th>Used</th><th>Cache hit</th><th>Alerts firing</th>\
         <th>Critical</th><th>Warning</th><th>Info</th></tr>\n",
    );
    for t in &targets {
        body.push_str(&row(t, &alerts));
    }
    body.push_str("</table>\n");
    if targets.is_empty() {
        body.push_str("<p class=\"note\">No target is configured.</p>\n");
    }
    body.push_str(&layout::act(
        "open a target for its charts, findings and the commands that act on them \
         (<code class=\"command\">pgopt maintain</code>, <code class=\"command\">pgopt \
         indexes</code>, <code class=\"command\">pgopt tune</code>); a target down: check \
         the error shown, the server and the network from this host.",
    ));
    Ok(page("Fleet", &body, Some(layout::REFRESH_SECONDS)))
}

fn row(t: &TargetView, alerts: &[crate::serve::state::AlertStatus]) -> String {
    let value = |name: &str| {
        t.last_sample
            .as_ref()
            .and_then(|s| s.values.get(name).copied())
    };
    let status = match &t.health {
        Health::Unknown => "<span class=\"unknown\">not collected yet</span>".to_string(),
        Health::Up { since } => format!(
            "<span class=\"up\">up</span> since {}",
            esc(&layout::time(*since))
        ),
        Health::Down {
            since,
            error,
            attempts,
        } => format!(
            "<span class=\"down\">down</span> since {} ({} attempts): <span class=\"error\">{}\
             </span>",
            esc(&layout::time(*since)),
            attempts,
            esc(error)
        ),
    };
    let connections = match (value(m::CONNECTIONS), value(m::MAX_CONNECTIONS)) {
        (Some(c), Some(max)) => format!("{c:.0} / {max:.0}"),
        (Some(c), None) => format!("{c:.0}"),
        _ => "–".to_string(),
    };
    let firing: Vec<&str> = alerts
        .iter()
        .filter(|a| a.target == t.name && a.state == AlertState::Firing)
        .map(|a| a.rule.as_str())
        .collect();
    let firing = if firing.is_empty() {
        "0".to_string()
    } else {
        format!(
            "<span class=\"firing\">{}</span>: {}",
            firing.len(),
            esc(&firing.join(", "))
        )
    };
    let by = |s: Severity| t.findings.iter().filter(|f| f.severity == s).count();
    let server = t
        .server
        .as_deref()
        .map(|s| format!("<br><small>{}</small>", esc(s)))
        .unwrap_or_default();
    format!(
        "<tr><td><a href=\"{href}\">{name}</a>{server}</td><td class=\"text\">{status}</td>\
         <td>{tps}</td><td>{connections}</td><td>{used}</td><td>{hit}</td>\
         <td class=\"text\">{firing}</td><td class=\"critical\">{c}</td>\
         <td class=\"warning\">{w}</td><td>{i}</td></tr>\n",
        href = esc(&target_href(&t.name)),
        name = esc(&t.name),
        tps = or_dash(value(m::TPS), layout::rate),
        used = or_dash(value(m::CONNECTIONS_USED_RATIO), ratio),
        hit = or_dash(value(m::CACHE_HIT_RATIO), ratio),
        c = by(Severity::Critical),
        w = by(Severity::Warning),
        i = by(Severity::Info),
    )
}
