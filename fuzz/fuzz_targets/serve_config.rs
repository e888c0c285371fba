//! The serve configuration loader (`pgopt.toml`): no panic on any file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgopt::serve::config::{parse, parse_unchecked};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let checked = parse(text, "pgopt.toml");
    let unchecked = parse_unchecked(text, "pgopt.toml");
    if checked.is_ok() {
        assert!(
            unchecked.is_ok(),
            "a file parse accepts and parse_unchecked refuses"
        );
    }
});
