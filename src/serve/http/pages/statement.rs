//! `/targets/{name}/statements/{queryid}`: one statement — its text, the trend of its mean
//! time, calls, rows and temp spills over the range, and its regression if one was seen.

use super::layout::{self, command, page};
use super::series::{self, figure, ChartSpec, Window};
use super::{target, target_href, PageError, Range};
use crate::report::html::esc;
use crate::serve::http::AppState;
use crate::serve::model::{m, Event, EventKind};
use crate::serve::state::AlertState;

/// The statement page of `queryid` on `name` over `range`.
pub fn render(app: &AppState, name: &str, queryid: i64, range: Range) -> Result<String, PageError> {
    target(app, name)?;
    let store = app.store.as_ref();
    let now = app.clock.now();
    let w = Window::ending(now, range);
    let key = queryid.to_string();
    let text = store.statement(name, queryid)?;
    let read = |metric: &str| -> Result<Vec<(i64, f64)>, PageError> {
        Ok(series::read(store, name, metric, Some(&key), w)?
            .into_values()
            .next()
            .unwrap_or_default())
    };
    let mean = read(m::STATEMENT_MEAN_SECONDS)?;
    let calls = read(m::STATEMENT_CALLS_PER_SECOND)?;
    let rows = read(m::STATEMENT_ROWS_PER_SECOND)?;
    let temp = read(m::STATEMENT_TEMP_BYTES_PER_SECOND)?;
    if text.is_none() && mean.is_empty() && calls.is_empty() {
        return Err(PageError::not_found(format!(
            "{name:?} has no statement with queryid {queryid} in its history: its server \
             page lists the top statements"
        )));
    }
    let href = target_href(name);
    let mut body = format!(
        "<p>On <a href=\"{}\">{}</a>, queryid {queryid}.</p>\n",
        esc(&href),
        esc(name)
    );
    body.push_str(&layout::range_links(
        &format!("{href}/statements/{queryid}"),
        range,
    ));
    match &text {
        Some(t) => body.push_str(&format!("<pre class=\"statement\">{}</pre>\n", esc(t))),
        None => body.push_str("<p class=\"note\">Its text was not kept.</p>\n"),
    }

    // The regression, and alerts on it now.
    let regressions: Vec<Event> = store
        .events(Some(name), now - Range::Month.duration(), now, 1000)?
        .into_iter()
        .filter(|e| e.kind == EventKind::Regression && is_about(e, queryid))
        .take(10)
        .collect();
    body.push_str("<h2>Regression</h2>\n");
    if regressions.is_empty() {
        body.push_str(
            "<p class=\"note\">None seen in the last 30 days: its mean time stayed within its \
             baseline.</p>\n",
        );
    } else {
        body.push_str("<table>\n<tr><th>When</th><th>What</th><th>Details</th></tr>\n");
        for e in &regressions {
            let details = e
                .details
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}: {s}"),
                    v => format!("{k}: {v}"),
                })
                .collect::<Vec<_>>()
                .join("\n");
            body.push_str(&format!(
                "<tr><td>{}</td><td class=\"text\">{}</td><td class=\"text\"><pre>{}</pre>\
                 </td></tr>\n",
                esc(&layout::time(e.at)),
                esc(&e.message),
                esc(&details)
            ));
        }
        body.push_str("</table>\n");
        body.push_str(&layout::act(&format!(
            "look at its plan (the auto_explain entry above if there is one, else EXPLAIN of \
             the statement in psql with real parameters), then {} for the index it may \
             have lost, where TARGET is the connection string of {}.",
            command("pgopt indexes TARGET"),
            esc(&format!("{name:?}"))
        )));
    }
    let alerts = app
        .fleet
        .alerts
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mine: Vec<_> = alerts
        .iter()
        .filter(|a| a.target == name && a.key == key && a.state != AlertState::Resolved)
        .collect();
    for a in mine {
        body.push_str(&format!(
            "<p class=\"firing\">Alert {} {} since {}: {}</p>\n",
            esc(&a.rule),
            if a.state == AlertState::Firing {
                "firing"
            } else {
                "pending"
            },
            esc(&layout::time(a.since)),
            esc(&a.message)
        ));
    }

    body.push_str("<h2>Trend</h2>\n<div class=\"charts\">\n");
    let one = |label: &str, points: Vec<(i64, f64)>| vec![(label.to_string(), points)];
    body.push_str(&figure(
        &ChartSpec {
            id: "mean",
            title: "Mean time",
            axis: "mean execution time (ms)",
            max: None,
            format: layout::millis,
            scale: 1000.0,
        },
        w,
        one("mean time", mean),
    ));
    body.push_str(&figure(
        &ChartSpec {
            id: "calls",
            title: "Calls",
            axis: "calls per second (1/s)",
            max: None,
            format: layout::rate,
            scale: 1.0,
        },
        w,
        one("calls", calls),
    ));
    body.push_str(&figure(
        &ChartSpec {
            id: "rows",
            title: "Rows",
            axis: "rows per second (1/s)",
            max: None,
            format: layout::rate,
            scale: 1.0,
        },
        w,
        one("rows", rows),
    ));
    body.push_str(&figure(
        &ChartSpec {
            id: "temp",
            title: "Temp spills",
            axis: "temporary files written (bytes per second)",
            max: None,
            format: layout::bytes_per_second,
            scale: 1.0,
        },
        w,
        one("temp bytes", temp),
    ));
    body.push_str("</div>\n");
    Ok(page(
        &format!("Statement {queryid} on {name}"),
        &body,
        Some(layout::REFRESH_SECONDS),
    ))
}

/// Whether a regression event is about `queryid` (its details' `queryid`, a number or a
/// string).
fn is_about(e: &Event, queryid: i64) -> bool {
    match e.details.get("queryid") {
        Some(serde_json::Value::Number(n)) => n.as_i64() == Some(queryid),
        Some(serde_json::Value::String(s)) => s.parse::<i64>().ok() == Some(queryid),
        _ => false,
    }
}
