//! The unit parsers: memory sizes (as a conf file writes them, pg_settings units, `--memory`)
//! and durations (the serve configuration's and maintenance windows' `90m`/`1h30m`, the
//! bench options' `500ms`/`2.5`): no panic on any input; a rendered value parses back to
//! itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgopt::tune::compare::{human_kb, unit_kb, value_kb};
use pgopt::tune::parse_memory;
use pgopt::tune::pgtune::format_kb;
use pgopt::{bench, maintain, serve};

fuzz_target!(|data: &[u8]| {
    if data.len() >= 8 {
        // The first 8 bytes as a size in kB: format -> parse gives it back.
        let kb = u64::from_le_bytes(data[..8].try_into().unwrap()) >> 11;
        let text = format_kb(kb);
        assert_eq!(
            value_kb(&text, 8.0),
            Some(kb as f64),
            "{kb} kB rendered {text}"
        );
        let _ = human_kb(kb as f64);
        // The same bytes as whole seconds: human -> parse gives them back.
        let secs = u64::from_le_bytes(data[..8].try_into().unwrap()) >> 30;
        if secs > 0 {
            let d = std::time::Duration::from_secs(secs);
            let text = serve::config::human(d);
            let back = maintain::window::parse_duration(&text)
                .unwrap_or_else(|e| panic!("{text:?} (from {secs} s) does not parse: {e}"));
            assert_eq!(back.to_std().ok(), Some(d), "{text:?}");
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = unit_kb(text);
    let _ = value_kb(text, 8.0);
    if let Ok(d) = maintain::window::parse_duration(text) {
        assert!(d > chrono::Duration::zero(), "{text:?} parsed to {d}");
    }
    if let Ok(d) = bench::options::parse_duration(text) {
        assert!(!d.is_zero(), "{text:?} parsed to zero");
    }
    if let Ok(memory) = parse_memory(text) {
        let again = parse_memory(&memory.to_string()).expect("a rendered --memory parses");
        assert_eq!(memory, again);
    }
});
