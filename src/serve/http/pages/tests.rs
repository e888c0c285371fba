//! The pages through their router, as the HTTP layer mounts them: generated history in a
//! memory store, hostile names and texts, bad input.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, Utc};
use tower::ServiceExt;

use super::history::{self, Spec};
use super::{path_segment, target_href, Range};
use crate::serve::http::AppState;
use crate::serve::store::memory::MemoryStore;

const HOSTILE_TARGET: &str = "<script>alert(\"t\")<script> & 'db' 1";
const HOSTILE_TEXT: &str =
    "SELECT '<img src=x onerror=alert(1)>' FROM \"</pre><script>x()</script>\"";
const HOSTILE_ERROR: &str = "FATAL: <b onmouseover=alert(2)>no</b> pg_hba.conf entry";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn spec() -> Spec {
    let mut statements = history::default_statements();
    statements[1].1 = HOSTILE_TEXT.to_string();
    Spec {
        targets: vec![
            HOSTILE_TARGET.into(),
            "replica-2".into(),
            "analytics".into(),
        ],
        span: Duration::hours(8),
        sample_seconds: 60,
        raw: Duration::hours(4),
        rollup_seconds: 300,
        statements,
        gap: Some((Duration::hours(3), Duration::minutes(20))),
    }
}

fn app_in(data_dir: std::path::PathBuf) -> AppState {
    let spec = spec();
    let store = Arc::new(MemoryStore::new());
    history::fill(store.as_ref(), &spec, now()).unwrap();
    history::app(&spec, now(), store, data_dir, HOSTILE_ERROR)
}

fn app() -> AppState {
    app_in(std::env::temp_dir().join("pgopt-pages-test-no-such-dir"))
}

async fn get(app: &AppState, uri: &str) -> (StatusCode, String) {
    let response = crate::serve::http::router(app.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 10 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn queryid(i: usize) -> i64 {
    history::default_statements()[i].0
}

/// Every page of the generated fleet.
fn pages() -> Vec<String> {
    let t = target_href(HOSTILE_TARGET);
    vec![
        "/".into(),
        "/alerts".into(),
        t.clone(),
        format!("{t}?range=1h"),
        format!("{t}/statements/{}", queryid(0)),
        format!("{t}/statements/{}", queryid(1)),
        "/targets/replica-2".into(),
    ]
}

/// Points of chart `id` in a page.
fn points(page: &str, id: &str) -> usize {
    let open = format!("data-chart=\"{id}\"");
    let Some(start) = page.find(&open) else {
        return 0;
    };
    let end = start + page[start..].find("</figure>").unwrap();
    page[start..end].matches("<circle data-point=").count()
}

/// The `on...=` attributes of the page's elements (escaped text holds no `<`, so every
/// `<` opens an element).
fn handlers(page: &str) -> Vec<String> {
    page.split('<')
        .skip(1)
        .filter_map(|tag| tag.split('>').next())
        .flat_map(|tag| tag.split_whitespace().skip(1))
        .filter(|attr| attr.starts_with("on") && attr.contains('='))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_page_answers_with_html_that_loads_nothing_inline() {
    let app = app();
    for uri in pages() {
        let (status, page) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {page}");
        assert!(page.starts_with("<!DOCTYPE html>"), "{uri}");
        assert!(page.contains("<script src=\"/static/pgopt.js\" defer></script>"));
        // The one script element is the embedded file; no inline script, style or handler.
        assert_eq!(page.matches("<script").count(), 1, "{uri}: {page}");
        assert!(!page.contains(" style="), "{uri}: an inline style");
        assert_eq!(
            handlers(&page),
            Vec::<String>::new(),
            "{uri}: an inline handler"
        );
        for remote in ["src=\"http", "href=\"http", "url(", "//cdn"] {
            assert!(!page.contains(remote), "{uri}: {remote}");
        }
    }
}

#[tokio::test]
async fn the_server_page_charts_have_data_points_and_the_gap_shows() {
    let app = app();
    let (status, page) = get(&app, &target_href(HOSTILE_TARGET)).await;
    assert_eq!(status, StatusCode::OK);
    for id in [
        "throughput",
        "connections",
        "cache",
        "replication",
        "wal",
        "statements",
    ] {
        assert!(points(&page, id) > 0, "chart {id} has no point");
    }
    // Six hours in 120 buckets of 3 minutes, three lines: the last 4 hours sampled every
    // minute (less 20 minutes of gap: ~7 buckets), the 2 hours before every 5 minutes.
    let throughput = points(&page, "throughput");
    assert!((3 * 90..3 * 110).contains(&throughput), "{throughput}");
    assert!(page.contains("title=\"") || page.contains("<title>"));
    assert!(page.contains("transactions per second (1/s)"));
    assert!(page.contains("time (UTC)"));
    // The default range is 6h; the others are links.
    assert!(page.contains("<strong>6h</strong>"));
    assert!(page.contains("?range=7d\">7d</a>"));
}

#[tokio::test]
async fn hostile_names_texts_and_errors_are_escaped_everywhere() {
    let app = app();
    for uri in pages() {
        let (_, page) = get(&app, &uri).await;
        assert!(!page.contains("<script>alert"), "{uri}: {page}");
        assert!(!page.contains("<img src=x"), "{uri}");
        assert!(!page.contains("<b onmouseover"), "{uri}");
        assert!(!page.contains("</pre><script>"), "{uri}");
    }
    let (_, fleet) = get(&app, "/").await;
    assert!(fleet.contains("&lt;script&gt;alert(&quot;t&quot;)&lt;script&gt; &amp; &#39;db&#39; 1"));
    assert!(
        fleet.contains("&lt;b onmouseover=alert(2)&gt;no&lt;/b&gt;"),
        "the error shows"
    );
    // The link to the hostile target is percent-encoded and leads to its page.
    assert!(fleet.contains(
        "href=\"/targets/%3Cscript%3Ealert%28%22t%22%29%3Cscript%3E%20%26%20%27db%27%201\""
    ));
    let (_, statement) = get(
        &app,
        &format!("{}/statements/{}", target_href(HOSTILE_TARGET), queryid(1)),
    )
    .await;
    assert!(
        statement.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{statement}"
    );
}

#[tokio::test]
async fn no_page_shows_a_password_from_the_config() {
    let app = app();
    for uri in pages() {
        let (_, page) = get(&app, &uri).await;
        assert!(!page.contains("hunter2"), "{uri}");
        assert!(!page.contains(".invalid"), "{uri}: a DSN's host");
    }
}

#[tokio::test]
async fn an_unknown_target_is_404() {
    let app = app();
    for uri in [
        "/targets/nope".to_string(),
        format!("/targets/nope/statements/{}", queryid(0)),
        "/targets/..%2F..%2Fetc%2Fpasswd".to_string(),
    ] {
        let (status, page) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        // The traversal is refused by the HTTP layer before the pages see it.
        if !uri.contains("%2F") {
            assert!(page.contains("the fleet page lists the targets"), "{page}");
        }
    }
    let (status, _) = get(&app, "/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bad_range_is_400_and_names_the_good_ones() {
    let app = app();
    for uri in [
        "/targets/analytics?range=2h".to_string(),
        "/alerts?range=%3Cscript%3E".to_string(),
        format!("/targets/analytics/statements/{}?range=1y", queryid(0)),
    ] {
        let (status, page) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(page.contains("use one of 1h, 6h, 24h, 7d, 30d"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
    }
    // A query string past the HTTP layer's bound is refused before any page sees it.
    let huge = format!("/alerts?range={}", "x".repeat(60_000));
    assert_eq!(get(&app, &huge).await.0, StatusCode::URI_TOO_LONG);
    let (status, _) = get(&app, "/alerts?range=7d&other=ignored").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_bad_queryid_is_400_and_an_unknown_one_404() {
    let app = app();
    let (status, page) = get(&app, "/targets/analytics/statements/12ab").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("is not a queryid"), "{page}");
    let (status, _) = get(
        &app,
        "/targets/analytics/statements/99999999999999999999999",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, page) = get(&app, "/targets/analytics/statements/42").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("has no statement with queryid 42"), "{page}");
}

#[tokio::test]
async fn the_statement_page_shows_its_trend_and_regression() {
    let app = app();
    let uri = format!("{}/statements/{}", target_href(HOSTILE_TARGET), queryid(0));
    let (status, page) = get(&app, &uri).await;
    assert_eq!(status, StatusCode::OK);
    for id in ["mean", "calls", "rows", "temp"] {
        assert!(points(&page, id) > 0, "chart {id} has no point");
    }
    assert!(
        page.contains("regressed: mean 2.0 ms, baseline 0.5 ms"),
        "{page}"
    );
    assert!(page.contains("Seq Scan on orders"), "the plan shows");
    assert!(page.contains("pgopt indexes TARGET"));
    assert!(page.contains("Alert regression firing"));
    // Another statement: no regression.
    let uri = format!("/targets/analytics/statements/{}", queryid(2));
    let (_, page) = get(&app, &uri).await;
    assert!(page.contains("None seen in the last 30 days"), "{page}");
}

#[tokio::test]
async fn the_server_page_gives_findings_advice_commands_and_applied_changes() {
    let data = tempfile::tempdir().unwrap();
    let journals = data.path().join("journals").join("analytics");
    std::fs::create_dir_all(&journals).unwrap();
    std::fs::write(journals.join("pgopt-maintain-journal-1.json"), "{}").unwrap();
    let app = app_in(data.path().to_path_buf());
    let (_, page) = get(&app, &target_href(HOSTILE_TARGET)).await;
    assert!(
        page.contains("VACUUM it, then check autovacuum_vacuum_scale_factor"),
        "next step"
    );
    for command in [
        "pgopt indexes TARGET",
        "pgopt maintain TARGET",
        "pgopt tune TARGET",
    ] {
        assert!(page.contains(command), "{command}");
    }
    assert!(page.contains("1 critical: act soon."));
    assert!(page.contains("VACUUM (FREEZE) public.events;"));
    assert!(page.contains("maintenance window: VACUUM (ANALYZE) public.orders"));
    // The hostile name is not a directory name: no journal looked up for it.
    assert!(!page.contains("Journals in the data directory"));
    let (_, page) = get(&app, "/targets/analytics").await;
    assert!(page.contains("pgopt-maintain-journal-1.json"), "{page}");
    assert!(page.contains("No finding: nothing to do on this server now."));
}

#[tokio::test]
async fn the_fleet_page_shows_each_target_state_and_the_alerts_page_now_and_history() {
    let app = app();
    let (_, fleet) = get(&app, "/").await;
    assert!(
        fleet.contains("3 targets, 1 down, 1 alerts firing."),
        "{fleet}"
    );
    assert_eq!(fleet.matches("<span class=\"up\">up</span>").count(), 2);
    assert!(fleet.contains("<span class=\"down\">down</span>"));
    assert!(fleet.contains("<td class=\"critical\">1</td><td class=\"warning\">3</td><td>1</td>"));
    assert!(fleet.contains("How to act:"));
    let (_, alerts) = get(&app, "/alerts").await;
    assert!(
        alerts.contains("<td class=\"firing\">firing</td><td>regression</td>"),
        "{alerts}"
    );
    assert!(alerts.contains("<td class=\"pending\">pending</td><td>connections</td>"));
    assert!(alerts.contains("alert_resolved"));
    assert!(
        alerts.contains("<strong>24h</strong>"),
        "the alerts page's default range"
    );
}

#[tokio::test]
async fn the_static_files_are_embedded_and_nothing_else_is_served() {
    let app = app();
    let response = crate::serve::http::router(app.clone())
        .oneshot(
            Request::get("/static/pgopt.js")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let (status, css) = get(&app, "/static/pgopt.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(css.contains("figure.chart"));
    for uri in ["/static/..%2FCargo.toml", "/static/other.js", "/static/"] {
        assert_eq!(get(&app, uri).await.0, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[test]
fn ranges_and_path_segments() {
    assert_eq!(Range::parse("7d"), Some(Range::Week));
    assert_eq!(Range::parse("7D"), None);
    assert_eq!(Range::Month.duration(), Duration::days(30));
    assert_eq!(path_segment("a-b_c.d~1"), "a-b_c.d~1");
    assert_eq!(path_segment("a b/ü"), "a%20b%2F%C3%BC");
}
