//! What every HTML report shares: escaping and the page around the body. A page is
//! self-contained: inline CSS, no script, no font or image from anywhere, and a
//! Content-Security-Policy that makes a browser refuse (and log) anything else.

/// Text for HTML (element content and attribute values): `&`, `<`, `>`, `"` and `'` escaped.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Nothing may load from anywhere: styles are inline, pictures are inline SVG.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// The whole page: `title` (escaped) as title and heading, `body` (already HTML) under it.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <title>{t}</title>\n<style>\n\
         body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}\n\
         table {{ border-collapse: collapse; margin: 1em 0; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; \
         vertical-align: top; }}\n\
         th:first-child, td:first-child {{ text-align: left; }}\n\
         td.text, td.done, td.skipped, td.failed {{ text-align: left; }}\n\
         td.text {{ max-width: 40em; overflow-wrap: break-word; }}\n\
         th {{ background: #f3f3f3; }}\n\
         .better, .done {{ color: #1a7f37; }} .worse, .failed {{ color: #cf222e; }}\n\
         .skipped {{ color: #6e7781; }}\n\
         .note {{ background: #f6f8fa; border-left: 4px solid #8c959f; padding: 0.5em 1em; }}\n\
         figure.chart {{ margin: 1em 0; }}\n\
         </style>\n</head>\n<body>\n<h1>{t}</h1>\n{body}</body>\n</html>\n",
        t = esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_leaves_no_markup_or_attribute_breakout() {
        assert_eq!(
            esc("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn the_page_forbids_loading_anything() {
        let p = page("t", "");
        assert!(p.contains("default-src 'none'"), "{p}");
        assert!(!p.contains("<script"), "{p}");
        assert!(!p.contains("http://") && !p.contains("https://"), "{p}");
    }
}
