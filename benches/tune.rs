//! `cargo bench --bench tune`: pgbench TPS, read-write and select-only, scale 50, 8 clients,
//! on an embedded cluster: with the defaults, then with PGTune's settings for this machine
//! (`pgopt tune --method pgtune --apply`, detected memory and CPUs, then a restart), as ratios.
//! pgopt's own method (issue 4, part 3) is not built yet and is reported as such.

use std::process::Command;

use pgopt::embedded::{Cluster, ClusterOptions};

const SECONDS: &str = "20";

fn main() {
    let bin = env!("CARGO_BIN_EXE_pgopt");
    let mut c = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pgbench = c.installation().bin.program("pgbench");
    let dsn = c.dsn("postgres");
    let status = Command::new(&pgbench)
        .args(["-i", "-q", "-s", "50", &dsn])
        .status()
        .expect("pgbench -i");
    assert!(status.success(), "pgbench -i failed");

    let defaults = (run(&pgbench, &dsn, false), run(&pgbench, &dsn, true));
    let journal = tempfile::tempdir().unwrap();
    let journal = journal.path().join("journal.json");
    let out = Command::new(bin)
        .args(["tune", &dsn, "--method", "pgtune", "--apply", "--journal"])
        .arg(&journal)
        .output()
        .expect("pgopt tune");
    assert!(
        out.status.success(),
        "pgopt tune --apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.restart().expect("restart");
    let shown = c
        .psql(
            "postgres",
            "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) \
             FROM pg_settings WHERE source = 'configuration file' AND sourcefile LIKE '%auto.conf'",
        )
        .unwrap_or_default();
    println!("PGTune's settings in effect: {shown}");
    let tuned = (run(&pgbench, &dsn, false), run(&pgbench, &dsn, true));
    println!(
        "pgbench scale 50, 8 clients, {SECONDS} s each:\n  read-write:  defaults {:.0} tps, PGTune {:.0} tps, ratio PGTune/defaults {:.3}\n  select-only: defaults {:.0} tps, PGTune {:.0} tps, ratio PGTune/defaults {:.3}\n  pgopt's method: not built yet (issue 4, part 3)",
        defaults.0,
        tuned.0,
        tuned.0 / defaults.0,
        defaults.1,
        tuned.1,
        tuned.1 / defaults.1
    );
}

/// pgbench's tps (without initial connection time).
fn run(pgbench: &std::path::Path, dsn: &str, select_only: bool) -> f64 {
    let mut cmd = Command::new(pgbench);
    cmd.args(["-c", "8", "-j", "8", "-T", SECONDS, "-M", "prepared", "-n"]);
    if select_only {
        cmd.arg("-S");
    }
    let out = cmd.arg(dsn).output().expect("pgbench");
    assert!(
        out.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no tps in pgbench output:\n{text}"))
}
