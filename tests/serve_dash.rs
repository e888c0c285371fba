//! The dashboard in a real browser: the pages' router served on a local listener
//! (`axum::serve` on a TcpListener) over generated history, every page opened in headless
//! Chromium (Debian's `chromium`): no console message (a CSP violation, a failed load or a
//! script error would log one), the charts' data points in the DOM, the refresh script run,
//! a screenshot of each page kept at `target/serve-screens/*.png`. Login by the form and
//! logout from a page's header, driven through ChromeDriver (Debian's `chromium-driver`,
//! WebDriver by the fantoccini crate): a wrong token, the right one, the session cookie
//! (HttpOnly, SameSite=Strict, unseen by scripts), the logout, the pages closed again.
//! And the time a server page takes over seven days of history at the default
//! resolution, printed (not asserted: the machine is shared).
//!
//! Chromium or ChromeDriver missing is a failure, not a skip: CI (`.ci/run`) installs them.

mod browser;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pgopt::serve::http::pages::history;
use pgopt::serve::http::AppState;
use pgopt::serve::store::memory::MemoryStore;

const HOSTILE_TARGET: &str = "<script>alert(\"t\")<script> & 'db' 1";
const HOSTILE_TEXT: &str =
    "SELECT '<img src=x onerror=alert(1)>' FROM \"</pre><script>x()</script>\"";

/// Where the screenshots go: `target/serve-screens/`.
fn screens() -> PathBuf {
    browser::outputs("serve-screens")
}

/// Chromium on `url` in the dashboard's window size.
fn run_chromium(url: &str, action: &str) -> browser::Run {
    browser::run_chromium(url, action, "1400,2400")
}

/// The `<circle data-point=…>` elements inside chart `id`'s figure in a dumped DOM.
fn points(dom: &str, id: &str) -> usize {
    let open = format!("data-chart=\"{id}\"");
    let Some(start) = dom.find(&open) else {
        return 0;
    };
    let end = start + dom[start..].find("</figure>").expect("figure closed");
    dom[start..end].matches("<circle data-point=").count()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A path segment percent-encoded (what the pages' links do).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The pages' router served on 127.0.0.1 (a free port) on `rt`; its base URL.
fn serve(rt: &tokio::runtime::Runtime, app: AppState) -> String {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let router = pgopt::serve::http::router(app);
    rt.spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A GET over a plain TCP connection (HTTP/1.1, `Connection: close`): the status line and
/// the body. Bounded by read and write timeouts.
fn http_get(base: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}

#[test]
fn every_page_opens_in_chromium_with_its_charts_and_no_console_message() {
    let mut spec = history::Spec {
        targets: vec![
            HOSTILE_TARGET.into(),
            "replica-2".into(),
            "analytics".into(),
        ],
        span: chrono::Duration::hours(26),
        sample_seconds: 60,
        ..history::Spec::default()
    };
    spec.statements[1].1 = HOSTILE_TEXT.into();
    let store = Arc::new(MemoryStore::new());
    history::fill(store.as_ref(), &spec, now()).unwrap();
    let data = tempfile::tempdir().unwrap();
    let app = history::app(
        &spec,
        now(),
        store,
        data.path().to_path_buf(),
        "FATAL: <b onmouseover=alert(2)>no</b> pg_hba.conf entry",
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = serve(&rt, app);
    let target = format!("/targets/{}", segment(HOSTILE_TARGET));
    let q0 = spec.statements[0].0;
    let q1 = spec.statements[1].0;
    // (screenshot name, path, charts that must have points)
    let pages: Vec<(&str, String, Vec<&str>)> = vec![
        ("fleet", "/".into(), vec![]),
        (
            "server",
            target.clone(),
            vec![
                "throughput",
                "connections",
                "cache",
                "replication",
                "wal",
                "statements",
            ],
        ),
        (
            "server-24h",
            format!("{target}?range=24h"),
            vec!["throughput", "statements"],
        ),
        (
            "statement",
            format!("{target}/statements/{q0}"),
            vec!["mean", "calls", "rows"],
        ),
        (
            "statement-hostile-text",
            format!("{target}/statements/{q1}"),
            vec!["mean", "calls", "rows"],
        ),
        ("server-down", "/targets/replica-2".into(), vec![]),
        ("alerts", "/alerts".into(), vec![]),
    ];
    let out = screens();
    for (name, path, charts) in &pages {
        let url = format!("{base}{path}");
        let png = out.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        let shot = run_chromium(&url, &format!("--screenshot={}", png.display()));
        let console = browser::console_lines(&shot.stderr);
        assert!(
            console.is_empty(),
            "{name}: console:\n{}",
            console.join("\n")
        );
        let bytes = std::fs::read(&png).expect("the screenshot was written");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name}: a PNG");
        assert!(bytes.len() > 20_000, "{name}: {} bytes", bytes.len());

        let dom = run_chromium(&url, "--dump-dom");
        let console = browser::console_lines(&dom.stderr);
        assert!(
            console.is_empty(),
            "{name}: console:\n{}",
            console.join("\n")
        );
        let dom = dom.stdout;
        // The script was loaded from /static/ and ran under the page's policy.
        assert!(
            dom.contains("data-refresh-armed=\"on\""),
            "{name}: the refresh script did not run: {dom}"
        );
        assert_eq!(dom.matches("<script").count(), 1, "{name}");
        assert!(
            !dom.contains("<script>alert"),
            "{name}: a hostile name became markup"
        );
        assert!(
            !dom.contains("<img src=\"x\""),
            "{name}: a hostile text became markup"
        );
        for chart in charts {
            let n = points(&dom, chart);
            assert!(n > 0, "{name}: chart {chart} has no data point");
            println!("{name}: chart {chart}: {n} points");
        }
        println!("{name}: {}", png.display());
    }
    // The hostile target's name is text on the fleet page and its link leads to its page.
    let fleet = run_chromium(&format!("{base}/"), "--dump-dom").stdout;
    assert!(
        fleet.contains("&lt;script&gt;alert(\"t\")&lt;script&gt; &amp; 'db' 1"),
        "{fleet}"
    );
    assert!(fleet.contains("<span class=\"down\">down</span>"));
    let page = run_chromium(&format!("{base}/targets/no-such"), "--dump-dom").stdout;
    assert!(page.contains("no target is called"), "{page}");
}

#[test]
fn a_server_page_over_seven_days_of_history_renders_and_says_how_long_it_took() {
    let spec = history::Spec::default();
    let store = Arc::new(MemoryStore::new());
    let started = Instant::now();
    let filled = history::fill(store.as_ref(), &spec, now()).unwrap();
    let fill_time = started.elapsed();
    let data = tempfile::tempdir().unwrap();
    let app = history::app(&spec, now(), store, data.path().to_path_buf(), "");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = serve(&rt, app);
    for range in ["6h", "7d"] {
        let path = format!("/targets/primary?range={range}");
        let started = Instant::now();
        let (status, body) = http_get(&base, &path);
        let took = started.elapsed();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}: {body}");
        assert!(points(&body, "throughput") > 0);
        assert!(points(&body, "statements") > 0);
        println!(
            "server page, {range} of a 7-day history ({} samples, {} points in a memory \
             store, filled in {:.1} s): {} ms, {} kB",
            filled.samples,
            filled.points,
            fill_time.as_secs_f64(),
            took.as_millis(),
            body.len() / 1024
        );
    }
}

/// chromedriver (Debian's `chromium-driver`) on a free loopback port, killed on drop.
struct Driver {
    child: std::process::Child,
    url: String,
    _log: tempfile::TempDir,
}

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

impl Driver {
    fn start() -> Driver {
        assert!(
            Path::new(CHROMEDRIVER).exists(),
            "{CHROMEDRIVER} is missing: install ChromeDriver (as root: apt-get install -y \
             chromium-driver; .ci/run installs it) to drive the login form"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = tempfile::tempdir().unwrap();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(File::create(log.path().join("stdout")).unwrap())
            .stderr(File::create(log.path().join("stderr")).unwrap())
            .spawn()
            .expect("start chromedriver");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not listen on {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _log: log,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of the page the browser shows.
async fn at(client: &fantoccini::Client) -> String {
    step("the current URL", client.current_url())
        .await
        .path()
        .to_string()
}

/// Waits (bounded: 30 s) until the browser shows the page at `path`: a click on a form's
/// button may return before the navigation it starts has finished.
async fn wait_at(client: &fantoccini::Client, path: &str) {
    let started = Instant::now();
    loop {
        let now_at = at(client).await;
        if now_at == path {
            let ready = step(
                "document.readyState",
                client.execute("return document.readyState", vec![]),
            )
            .await;
            if ready.as_str() == Some("complete") {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the browser is at {now_at}, not {path}, 30 s on"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One WebDriver step, bounded.
async fn step<T, E: std::fmt::Debug>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> T {
    match tokio::time::timeout(Duration::from_secs(60), f).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: {e:?}"),
        Err(_) => panic!("{what}: no answer within 60 s"),
    }
}

#[test]
fn login_by_the_form_and_logout_in_chromium() {
    use fantoccini::{ClientBuilder, Locator};

    const TOKEN: &str = "a-test-token-of-enough-length-42";
    let spec = history::Spec {
        targets: vec!["primary".into()],
        span: chrono::Duration::hours(2),
        sample_seconds: 60,
        ..history::Spec::default()
    };
    let store = Arc::new(MemoryStore::new());
    history::fill(store.as_ref(), &spec, now()).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut app = history::app(&spec, now(), store, data.path().to_path_buf(), "");
    let mut config = (*app.config).clone();
    config.auth = Some(pgopt::serve::config::Auth {
        token: pgopt::db::secret::Secret::new(TOKEN),
    });
    app.config = Arc::new(config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = serve(&rt, app);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let out = screens();

    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": browser::chromium(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = step(
            "a WebDriver session",
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&driver.url),
        )
        .await;

        // A page without a session leads to the login form.
        step("open /", client.goto(&format!("{base}/"))).await;
        wait_at(&client, "/login").await;
        let png = step("screenshot", client.screenshot()).await;
        std::fs::write(out.join("login.png"), &png).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

        // A wrong token: the form again, saying so, and no session.
        let field = step(
            "the token field",
            client.find(Locator::Css("input[name=password]")),
        )
        .await;
        step("type", field.send_keys("not-the-token")).await;
        step("submit", client.find(Locator::Css("button[type=submit]")))
            .await
            .click()
            .await
            .unwrap();
        // The same address before and after: wait for the answer's text.
        let started = Instant::now();
        loop {
            let body = step("the page", client.source()).await;
            if body.contains("Wrong token.") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no \"Wrong token.\" 30 s after the submit: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        wait_at(&client, "/login").await;
        let cookies = step("cookies", client.get_all_cookies()).await;
        assert!(
            !cookies.iter().any(|c| c.name() == "pgopt_session"),
            "{cookies:?}"
        );

        // The right token: the fleet, with a session cookie the page's scripts cannot read.
        let field = step(
            "the token field",
            client.find(Locator::Css("input[name=password]")),
        )
        .await;
        step("type", field.send_keys(TOKEN)).await;
        step("submit", client.find(Locator::Css("button[type=submit]")))
            .await
            .click()
            .await
            .unwrap();
        wait_at(&client, "/").await;
        let body = step("the page", client.source()).await;
        assert!(body.contains("<h1>Fleet</h1>"), "{body}");
        let cookies = step("cookies", client.get_all_cookies()).await;
        let session = cookies
            .iter()
            .find(|c| c.name() == "pgopt_session")
            .unwrap_or_else(|| panic!("no session cookie: {cookies:?}"));
        assert_eq!(session.http_only(), Some(true), "{session:?}");
        assert_eq!(
            session.same_site().map(|s| s.to_string()).as_deref(),
            Some("Strict"),
            "{session:?}"
        );
        let seen = step(
            "document.cookie",
            client.execute("return document.cookie", vec![]),
        )
        .await;
        assert!(
            !seen.as_str().unwrap_or_default().contains("pgopt_session"),
            "{seen}"
        );

        // The session opens the other pages too.
        step(
            "open the server page",
            client.goto(&format!("{base}/targets/primary")),
        )
        .await;
        wait_at(&client, "/targets/primary").await;
        let png = step("screenshot", client.screenshot()).await;
        std::fs::write(out.join("logged-in-server.png"), &png).unwrap();

        // Log out from the page's header: back to the login form, and the pages are
        // closed again.
        step("log out", client.find(Locator::Css("form.logout button")))
            .await
            .click()
            .await
            .unwrap();
        wait_at(&client, "/login").await;
        let cookies = step("cookies", client.get_all_cookies()).await;
        assert!(
            !cookies.iter().any(|c| c.name() == "pgopt_session"),
            "{cookies:?}"
        );
        step("open /alerts", client.goto(&format!("{base}/alerts"))).await;
        wait_at(&client, "/login").await;
        step("close", client.close()).await;
    });
    drop(driver);
}
