//! The apply journal loader: no panic on any file; a journal that loads (with its checksum)
//! serialises and loads again unchanged, and its undo order names only its own steps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgopt::apply::journal::Journal;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(journal) = Journal::parse(text) {
        for i in journal.to_undo() {
            assert!(
                i < journal.steps.len(),
                "undo names step {i} of {}",
                journal.steps.len()
            );
        }
        if journal.checksum.is_some() {
            let saved = serde_json::to_string(&journal).expect("a journal serialises");
            let again = Journal::parse(&saved).expect("a saved journal loads");
            assert_eq!(journal, again, "save -> load changed the journal");
        }
    }
});
