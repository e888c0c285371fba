//! optimize's report.html in a real browser: headless Chromium (Debian's `chromium`) opens
//! the full fixture's page, logs no console message (the page has no script, and its
//! Content-Security-Policy makes any attempt to load something a logged violation), builds
//! every chart's bars in its DOM, and renders a screenshot, kept at
//! `target/test-outputs/report.png` for people to look at.
//!
//! Chromium missing is a failure, not a skip: CI (`.ci/run`) installs it.

mod browser;
mod report_fixture;

use std::path::Path;

use browser::{console_lines, Run};

use pgopt::report::optimize::html;

/// Where outputs worth keeping go: `target/test-outputs/`.
fn outputs() -> std::path::PathBuf {
    browser::outputs("test-outputs")
}

/// Chromium on the file `page` in the report's window size.
fn run_chromium(page: &Path, action: &str) -> Run {
    browser::run_chromium(&format!("file://{}", page.display()), action, "1280,3000")
}

/// The `<rect data-bar=…>` elements inside chart `name`'s figure in a dumped DOM.
fn bars(dom: &str, name: &str) -> usize {
    let open = format!("data-chart=\"{name}\"");
    let Some(start) = dom.find(&open) else {
        return 0;
    };
    let end = start + dom[start..].find("</figure>").expect("figure closed");
    dom[start..end].matches("<rect data-bar=").count()
}

#[test]
fn the_console_check_sees_what_this_chromium_logs() {
    // The check below relies on how Chromium reports console errors: a page that logs one
    // and throws must be caught by it, or the test proves nothing.
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head>\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         script-src 'unsafe-inline'\"></head><body>\
         <script>console.error('deliberate error');</script>\
         <img src=\"http://example.invalid/x.png\">\
         <script>throw new Error('deliberate throw');</script></body></html>",
    )
    .unwrap();
    let run = run_chromium(&page, "--dump-dom");
    let lines = console_lines(&run.stderr);
    assert!(
        lines.iter().any(|l| l.contains("deliberate error")),
        "console.error not seen: {}",
        run.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Uncaught") && l.contains("deliberate throw")),
        "an uncaught exception not seen: {}",
        run.stderr
    );
    assert!(
        lines.iter().any(|l| l.contains("Content Security Policy")),
        "a blocked load not seen: {}",
        run.stderr
    );
}

#[test]
fn the_html_report_opens_in_chromium_with_its_charts_and_no_console_error() {
    let out = outputs();
    let page = out.join("report.html");
    std::fs::write(&page, html(&report_fixture::full())).unwrap();
    let png = out.join("report.png");
    let _ = std::fs::remove_file(&png);

    let shot = run_chromium(&page, &format!("--screenshot={}", png.display()));
    let console = console_lines(&shot.stderr);
    assert!(
        console.is_empty(),
        "console output:\n{}",
        console.join("\n")
    );
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 3000));
    // Tables, text and four charts in colour: far more than a blank page's few kB.
    assert!(bytes.len() > 100_000, "{} bytes", bytes.len());
    println!("screenshot: {}", png.display());

    let dom = run_chromium(&page, "--dump-dom");
    let console = console_lines(&dom.stderr);
    assert!(
        console.is_empty(),
        "console output:\n{}",
        console.join("\n")
    );
    let dom = dom.stdout;
    assert!(dom.contains("<h2>Phases: 4/5 phases done</h2>"), "{dom}");
    assert!(!dom.contains("<script"), "a script element in the DOM");
    let ops = report_fixture::OPERATIONS.len();
    assert_eq!(dom.matches("<svg").count(), 4);
    assert_eq!(bars(&dom, "latency"), ops * 6);
    assert_eq!(bars(&dom, "throughput"), (ops + 1) * 2);
    assert_eq!(bars(&dom, "statements"), 3);
    assert_eq!(bars(&dom, "indexes"), 2);
    // The hostile operation name stayed text: an attribute value (this Chromium serializes
    // `<` and `>` in attributes as entities too) and a tooltip, never an element.
    assert!(
        dom.contains("data-row=\"&lt;op&gt; &amp; &quot;policy&quot;\""),
        "{dom}"
    );
    assert!(dom.contains("<title>&lt;op&gt; &amp; \"policy\", p50 before: 0.350</title>"));
    assert!(!dom.contains("<op>"));
}
