//! What the benches share: running the release `pgopt` binary and measuring it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs pgopt, returns wall time, peak RSS (kB, from wait4) and stdout.
pub fn run_measured(bin: &str, args: &[&str]) -> (Duration, i64, String) {
    use std::io::Read;
    let t = Instant::now();
    #[allow(clippy::zombie_processes)] // reaped below by wait4, which also gives the rusage
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run pgopt");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 on our own child fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting on a child we spawned and have not waited on.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = t.elapsed();
    assert!(pid > 0, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "pgopt {args:?} failed with status {status}"
    );
    (wall, usage.ru_maxrss, out)
}
