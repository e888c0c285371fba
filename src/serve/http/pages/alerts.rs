//! `/alerts`: the alerts firing and pending now, and the recent history (alerts fired and
//! resolved, query regressions) over the range.

use super::layout::{self, page};
use super::{target_href, PageError, Range};
use crate::report::html::esc;
use crate::serve::http::AppState;
use crate::serve::model::EventKind;
use crate::serve::state::AlertState;

/// History rows shown at most.
const HISTORY: usize = 200;

/// The alerts page over `range`.
pub fn render(app: &AppState, range: Range) -> Result<String, PageError> {
    let now = app.clock.now();
    let mut alerts = app
        .fleet
        .alerts
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    alerts.retain(|a| a.state != AlertState::Resolved);
    alerts.sort_by(|a, b| {
        (a.state != AlertState::Firing)
            .cmp(&(b.state != AlertState::Firing))
            .then(a.since.cmp(&b.since))
    });
    let mut body = layout::range_links("/alerts", range);
    body.push_str("<h2>Now</h2>\n");
    if alerts.is_empty() {
        body.push_str("<p class=\"note\">No alert is firing or pending.</p>\n");
    } else {
        body.push_str(
            "<table>\n<tr><th>State</th><th>Rule</th><th>Target</th><th>Statement</th>\
             <th>Since</th><th>Value</th><th>What</th></tr>\n",
        );
        for a in &alerts {
            let state = if a.state == AlertState::Firing {
                "firing"
            } else {
                "pending"
            };
            let href = target_href(&a.target);
            let statement = match a.key.parse::<i64>() {
                Ok(id) => format!("<a href=\"{}/statements/{id}\">{id}</a>", esc(&href)),
                Err(_) => esc(&a.key),
            };
            body.push_str(&format!(
                "<tr><td class=\"{state}\">{state}</td><td>{}</td><td><a href=\"{}\">{}</a></td>\
                 <td>{statement}</td><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>\n",
                esc(&a.rule),
                esc(&href),
                esc(&a.target),
                esc(&layout::time(a.since)),
                layout::rate(a.value),
                esc(&a.message),
            ));
        }
        body.push_str("</table>\n");
    }
    body.push_str(&layout::act(
        "open the target named to see the metric behind an alert; a regression links to its \
         statement, whose page says what to look at. Rules and webhooks are set in the \
         daemon's configuration ([[alert]], [[notify.webhook]]).",
    ));

    let history: Vec<_> = app
        .store
        .events(None, now - range.duration(), now, 5000)?
        .into_iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::AlertFiring | EventKind::AlertResolved | EventKind::Regression
            )
        })
        .take(HISTORY)
        .collect();
    body.push_str(&format!("<h2>History ({})</h2>\n", esc(range.as_str())));
    if history.is_empty() {
        body.push_str("<p class=\"note\">No alert fired or resolved in this range.</p>\n");
    } else {
        body.push_str(
            "<table>\n<tr><th>When</th><th>Event</th><th>Target</th><th>What</th></tr>\n",
        );
        for e in &history {
            let class = match e.kind {
                EventKind::AlertResolved => "resolved",
                _ => "firing",
            };
            body.push_str(&format!(
                "<tr><td>{}</td><td class=\"{class}\">{}</td><td><a href=\"{}\">{}</a></td>\
                 <td class=\"text\">{}</td></tr>\n",
                esc(&layout::time(e.at)),
                esc(e.kind.as_str()),
                esc(&target_href(&e.target)),
                esc(&e.target),
                esc(&e.message),
            ));
        }
        body.push_str("</table>\n");
    }
    Ok(page("Alerts", &body, Some(layout::REFRESH_SECONDS)))
}
