//! What the benches share: running the release `pgopt` binary and measuring it.
//!
//! Peak memory comes from wait4's `ru_maxrss`, which Linux carries across exec: a child
//! spawned straight from the bench (by vfork or fork) would report at least the bench's own
//! peak (at 100,000 tables the bench has read 250 MB of JSON output by then). So pgopt is
//! started by a small copy of the bench binary (the measuring helper, [`measuring_helper`]),
//! whose fresh address space is the only thing pgopt's figure can inherit.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set (to the file the helper writes its figures to) when the bench runs as the helper.
const HELPER: &str = "PGOPT_BENCH_MEASURE";

/// Call first in a bench's `main`: when this process is the measuring helper, it runs the
/// command given after `--measure`, waits for it, writes `wall_ns rss_kb` to the file named
/// by `PGOPT_BENCH_MEASURE` and exits with the command's status.
pub fn measuring_helper() {
    let Some(report) = std::env::var_os(HELPER) else {
        return;
    };
    let args: Vec<String> = std::env::args()
        .skip_while(|a| a != "--measure")
        .skip(1)
        .collect();
    let t = Instant::now();
    #[allow(clippy::zombie_processes)] // reaped below by wait4, which also gives the rusage
    let child = Command::new(&args[0])
        .args(&args[1..])
        .env_remove(HELPER)
        .spawn()
        .expect("run the measured command");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 on our own child fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting on a child we spawned and have not waited on.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = t.elapsed();
    assert!(pid > 0, "wait4 failed");
    std::fs::write(&report, format!("{} {}", wall.as_nanos(), usage.ru_maxrss))
        .expect("write the measurement");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        101
    };
    std::process::exit(code);
}

/// Runs pgopt, returns wall time, peak RSS (kB, from wait4, through the measuring helper)
/// and stdout.
pub fn run_measured(bin: &str, args: &[&str]) -> (Duration, i64, String) {
    use std::io::Read;
    let report = tempfile::NamedTempFile::new().expect("measurement file");
    let mut child = Command::new(std::env::current_exe().expect("the bench binary"))
        .arg("--measure")
        .arg(bin)
        .args(args)
        .env(HELPER, report.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the measuring helper");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().expect("wait for the measuring helper");
    assert!(status.success(), "pgopt {args:?} failed with {status}");
    let text = std::fs::read_to_string(report.path()).expect("read the measurement");
    let (wall_ns, rss_kb) = text.split_once(' ').expect("wall_ns rss_kb");
    (
        Duration::from_nanos(wall_ns.parse().expect("wall_ns")),
        rss_kb.parse().expect("rss_kb"),
        out,
    )
}
