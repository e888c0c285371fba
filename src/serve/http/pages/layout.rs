//! The frame every page shares: head (style sheet, the refresh script, a
//! Content-Security-Policy of its own), navigation, and the figures' formatting.

use crate::report::html::esc;

/// Seconds between reloads when the user left auto-refresh on.
pub const REFRESH_SECONDS: u32 = 30;

/// The page's own policy (the HTTP layer sends a header too; a browser enforces both):
/// scripts and styles from this server only, nothing inline, nothing remote.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                       form-action 'self'";

/// The whole page: `title` (escaped) as title and heading, `body` (already HTML) under
/// it. `refresh`: reload every so many seconds (unless the user turned it off).
pub fn page(title: &str, body: &str, refresh: Option<u32>) -> String {
    let refresh_attr = refresh
        .map(|s| format!(" data-refresh=\"{s}\""))
        .unwrap_or_default();
    let toggle = if refresh.is_some() {
        format!(
            "<label class=\"refresh\"><input type=\"checkbox\" id=\"auto-refresh\" checked> \
             refresh every {} s</label>",
            refresh.unwrap_or(REFRESH_SECONDS)
        )
    } else {
        String::new()
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t} · pgopt</title>\n<link rel=\"icon\" href=\"data:,\">\n\
         <link rel=\"stylesheet\" href=\"/static/pgopt.css\">\n\
         <script src=\"/static/pgopt.js\" defer></script>\n</head>\n\
         <body{refresh_attr}>\n<header><nav><a href=\"/\">Fleet</a> \
         <a href=\"/alerts\">Alerts</a></nav>{toggle}{HEADER_END}\n<main>\n<h1>{t}</h1>\n{body}\
         </main>\n<footer>pgopt serve: these pages only read. Changes are made with the \
         pgopt commands they show.</footer>\n</body>\n</html>\n",
        t = esc(title)
    )
}

/// Where a page's header ends: [`page`] writes it once.
const HEADER_END: &str = "</header>";

/// `page` (from [`page`]) with `html` (already HTML: the session's logout button) at the
/// end of its header; unchanged when `html` is empty.
pub fn with_header_item(page: String, html: &str) -> String {
    if html.is_empty() {
        return page;
    }
    page.replacen(HEADER_END, &format!("{html}{HEADER_END}"), 1)
}

/// The "how to act" line.
pub fn act(html: &str) -> String {
    format!("<p class=\"act\"><strong>How to act:</strong> {html}</p>\n")
}

/// A command to copy (escaped).
pub fn command(text: &str) -> String {
    format!("<code class=\"command\">{}</code>", esc(text))
}

/// A figure that may be missing.
pub fn or_dash(v: Option<f64>, f: fn(f64) -> String) -> String {
    v.filter(|v| v.is_finite())
        .map(f)
        .unwrap_or_else(|| "–".to_string())
}

pub fn rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn ratio(v: f64) -> String {
    format!("{:.2} %", v * 100.0)
}

pub fn millis(v: f64) -> String {
    crate::report::chart::ms(v)
}

pub fn bytes_per_second(v: f64) -> String {
    format!("{}/s", crate::report::bytes(v.round() as i64))
}

pub fn count(v: f64) -> String {
    format!("{v:.0}")
}

/// A time as the pages show it (UTC).
pub fn time(at: crate::serve::model::Ts) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The range links of a page at `base` (already a path), the current one marked.
pub fn range_links(base: &str, current: super::Range) -> String {
    let mut out = String::from("<p class=\"ranges\">Range:");
    for r in super::Range::ALL {
        if r == current {
            out.push_str(&format!(" <strong>{}</strong>", r.as_str()));
        } else {
            out.push_str(&format!(
                " <a href=\"{}?range={r}\">{r}</a>",
                esc(base),
                r = r.as_str()
            ));
        }
    }
    out.push_str("</p>\n");
    out
}
