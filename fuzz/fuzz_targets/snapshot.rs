//! The snapshot loader: no panic on any file; a snapshot that loads saves and loads again
//! unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgopt::snapshot::Snapshot;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(snapshot) = Snapshot::from_json(text, "fuzz.json") {
        let saved = snapshot.to_json().expect("a loaded snapshot saves");
        let again = Snapshot::from_json(&saved, "fuzz.json").expect("a saved snapshot loads");
        assert_eq!(snapshot, again, "save -> load changed the snapshot");
    }
});
