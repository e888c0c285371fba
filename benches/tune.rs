//! `cargo bench --bench tune`: pgbench TPS, read-write and select-only, scale 50, 8 clients,
//! on an embedded cluster: with the defaults, then with PGTune's settings for this machine
//! (`pgopt tune --method pgtune --apply`, detected memory and CPUs, then a restart), then with
//! pgopt's (the same from its own evidence, after rolling PGTune's back), as ratios.

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
    let dir = tempfile::tempdir().unwrap();
    let pgtune_journal = dir.path().join("pgtune.json");
    apply(bin, &dsn, "pgtune", &pgtune_journal);
    c.restart().expect("restart");
    println!("PGTune's settings in effect: {}", in_effect(&c));
    let pgtune = (run(&pgbench, &dsn, false), run(&pgbench, &dsn, true));

    rollback(bin, &dsn, &pgtune_journal);
    c.restart().expect("restart");
    let pgopt_journal = dir.path().join("pgopt.json");
    apply(bin, &dsn, "pgopt", &pgopt_journal);
    c.restart().expect("restart");
    println!("pgopt's settings in effect: {}", in_effect(&c));
    let pgopt = (run(&pgbench, &dsn, false), run(&pgbench, &dsn, true));

    println!("pgbench scale 50, 8 clients, {SECONDS} s each (tps; ratios to the defaults):");
    for (label, i) in [("read-write ", 0usize), ("select-only", 1)] {
        let pick = |t: (f64, f64)| if i == 0 { t.0 } else { t.1 };
        println!(
            "  {label}: defaults {:.0}, PGTune {:.0} ({:.3}), pgopt {:.0} ({:.3}); pgopt/PGTune {:.3}",
            pick(defaults),
            pick(pgtune),
            pick(pgtune) / pick(defaults),
            pick(pgopt),
            pick(pgopt) / pick(defaults),
            pick(pgopt) / pick(pgtune)
        );
    }
}

fn apply(bin: &str, dsn: &str, method: &str, journal: &std::path::Path) {
    let out = Command::new(bin)
        .args(["tune", dsn, "--method", method, "--apply", "--journal"])
        .arg(journal)
        .output()
        .expect("pgopt tune");
    assert!(
        out.status.success(),
        "pgopt tune --method {method} --apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rollback(bin: &str, dsn: &str, journal: &std::path::Path) {
    let out = Command::new(bin)
        .args(["tune", "--rollback"])
        .arg(journal)
        .arg(dsn)
        .output()
        .expect("pgopt tune --rollback");
    assert!(
        out.status.success(),
        "rollback failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The settings postgresql.auto.conf sets, as the server shows them.
fn in_effect(c: &Cluster) -> String {
    c.psql(
        "postgres",
        "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) \
         FROM pg_settings WHERE source = 'configuration file' AND sourcefile LIKE '%auto.conf'",
    )
    .unwrap_or_default()
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
