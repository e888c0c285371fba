//! The password file: no panic on any contents; a line written with every field escaped is
//! found, and gives back its password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgopt_pool::pgpass::lookup;

/// One field as a password file line holds it: `\` and `:` escaped, a leading `#` escaped so
/// the line is no comment (and a lone `*` escaped so it is no wildcard).
fn escape(field: &str) -> String {
    let mut out = String::new();
    for (i, c) in field.chars().enumerate() {
        if c == '\\' || c == ':' || (i == 0 && (c == '#' || c == '*')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The whole input as a file, looked up with fixed names.
    let _ = lookup(text, "localhost", 5432, "db", "user");
    // The first line as the names (split at '|'), the rest as the file.
    let (head, file) = text.split_once('\n').unwrap_or((text, ""));
    let mut names = head.splitn(5, '|');
    let host = names.next().unwrap_or("");
    let port: u16 = names.next().and_then(|p| p.parse().ok()).unwrap_or(5432);
    let db = names.next().unwrap_or("");
    let user = names.next().unwrap_or("");
    let password = names.next().unwrap_or("");
    let _ = lookup(file, host, port, db, user);
    // Round trip: a line written for these names comes first, so it is the one found.
    if [host, db, user, password]
        .iter()
        .any(|f| f.contains(['\n', '\r']))
    {
        return;
    }
    let line = format!(
        "{}:{}:{}:{}:{}\n{file}",
        escape(host),
        port,
        escape(db),
        escape(user),
        escape(password)
    );
    let found = lookup(&line, host, port, db, user).expect("the line written for these names");
    assert_eq!(found.expose(), password);
});
