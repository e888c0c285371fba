//! The pgbench workload-file parser: no panic on any script, with and without a --define.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgopt::bench::expr::Value;
use pgopt::bench::file::{parse, split_weight};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = split_weight(text);
    let _ = parse("fuzz.sql", "fuzz", text, &[]);
    let defines = [
        ("scale".to_string(), Value::Int(10)),
        ("x".to_string(), Value::Double(1.5)),
    ];
    let _ = parse("fuzz.sql", "fuzz", text, &defines);
});
