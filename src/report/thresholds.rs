//! `--threshold list`: every threshold with its default and meaning, as a table. Pure.

use crate::advise::Thresholds;

/// The table `--threshold list` prints (analyze and tune share the one list).
pub fn list() -> String {
    let mut t = super::term::table();
    t.set_header(vec!["threshold", "default", "meaning"]);
    for (name, default, about) in Thresholds::names() {
        t.add_row(vec![name.to_string(), default, about.to_string()]);
    }
    super::term::keep_words(&mut t);
    format!("{t}\n")
}
