//! `pgopt maintain --next-window`: reads the maintenance windows of a config file, needs no
//! server; a bad file is bad input (exit 2) naming the line.

mod cli_support;

use cli_support::{pgopt, stderr, stdout};

#[test]
fn next_window_prints_when_the_window_opens_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgopt.toml");
    std::fs::write(
        &file,
        "[[maintenance.window]]\ncron = \"0 2 * * 6\"\nduration = \"3h\"\ntimezone = \"UTC\"\n",
    )
    .unwrap();
    let out = pgopt(&[
        "maintain",
        "--next-window",
        "--config",
        file.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    // Saturday 02:00 to 05:00 UTC: either open now or opening on a Saturday at 02:00.
    assert!(
        text.contains("open now") || text.contains("opens Sat ") && text.contains(" 02:00 UTC"),
        "{text}"
    );
    assert!(text.contains("05:00 UTC"), "{text}");
    assert!(
        text.contains("\"0 2 * * 6\" for 3h (UTC, line 2)"),
        "{text}"
    );
}

#[test]
fn a_bad_window_is_bad_input_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgopt.toml");
    std::fs::write(
        &file,
        "# windows\n[[maintenance.window]]\ncron = \"0 2 * * 6\"\nduration = \"three hours\"\n",
    )
    .unwrap();
    let out = pgopt(&[
        "maintain",
        "--next-window",
        "--config",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 4: duration"),
        "{}",
        stderr(&out)
    );
    let missing = dir.path().join("absent.toml");
    let out = pgopt(&[
        "maintain",
        "--next-window",
        "--config",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("[[maintenance.window]]"),
        "{}",
        stderr(&out)
    );
}
