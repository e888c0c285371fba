//! Headless Chromium (Debian's `chromium`) for the tests that open pages in a real browser:
//! optimize's report.html and `pgopt serve`'s dashboard.
//!
//! Chromium missing is a failure, not a skip: CI (`.ci/run`) installs it.

#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest one Chromium run may take before it is killed.
pub const RUN_LIMIT: Duration = Duration::from_secs(90);

/// A directory under `target/` for outputs worth keeping (screenshots): `target/NAME/`.
pub fn outputs(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target directory")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Chromium's path, or a failure saying how to install it.
pub fn chromium() -> &'static str {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Chromium (as root: apt-get install -y chromium; \
         .ci/run installs it) to run the browser tests"
    );
    CHROMIUM
}

/// What one Chromium run printed.
pub struct Run {
    pub stdout: String,
    pub stderr: String,
}

/// Headless Chromium on `url` with `action` (`--screenshot=…` or `--dump-dom`) in a window
/// of `window` (`"1280,3000"`), a fresh profile, no network services; killed after
/// [`RUN_LIMIT`].
pub fn run_chromium(url: &str, action: &str, window: &str) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("profile");
    let (out_path, err_path) = (tmp.path().join("stdout"), tmp.path().join("stderr"));
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            "--enable-logging=stderr",
            "--v=0",
            &format!("--window-size={window}"),
            action,
            url,
        ])
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium {action} {url} did not finish in {}s; its stderr:\n{}",
                RUN_LIMIT.as_secs(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = Run {
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
    };
    assert!(
        status.success(),
        "chromium {action} {url} failed ({status}):\n{}",
        run.stderr
    );
    run
}

/// The console's lines on Chromium's stderr. This Chromium (156, Debian 12) logs every
/// console message, error or not, as `[pid:tid:time:INFO:CONSOLE:line] "text", source: URL
/// (line)`, uncaught exceptions as `"Uncaught …"`, CSP violations the same way.
pub fn console_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}
