//! The conninfo and URI parsers, and a target's resolution with a fixed environment: no
//! panic on any input; key=value pairs that parse render back to a string that parses to the
//! same pairs.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use pgopt_pool::target::{parse_conninfo, parse_dsn, parse_uri, render_conninfo};
use pgopt_pool::{SystemDefaults, Target};

/// A fixed environment: the fuzzer's input alone decides the outcome.
fn env(key: &str) -> Option<String> {
    match key {
        "PGPORT" => Some("5433".into()),
        "PGUSER" => Some("fuzz".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(pairs) = parse_conninfo(text) {
        let rendered = render_conninfo(&pairs);
        let again = parse_conninfo(&rendered)
            .unwrap_or_else(|e| panic!("rendered {rendered:?} does not parse: {e}"));
        assert_eq!(
            pairs, again,
            "render -> parse changed the pairs of {rendered:?}"
        );
    }
    let _ = parse_uri(text);
    let dsn = parse_dsn(text);
    let defaults = SystemDefaults {
        socket_dir: Some(PathBuf::from("/nonexistent/socket")),
        os_user: Some("os".into()),
        home: None,
    };
    let target = Target::resolve_with(Some(text), &env, &defaults);
    if let Ok(t) = &target {
        assert!(
            dsn.is_ok(),
            "a target resolved from a string that does not parse"
        );
        assert!(!t.hosts.is_empty(), "a resolved target without hosts");
        assert!(t.hosts.iter().all(|h| h.port > 0), "port 0 resolved");
        assert!(!t.user.is_empty());
    }
});
