//! `pgopt tune` as a user meets it in calculator mode: exact conf and SQL output, files
//! written atomically, JSON that parses, and exit code 2 naming the flag for each bad input.

mod cli_support;

use cli_support::{pgopt_tune, stderr, stdout};

const CASE: &[&str] = &[
    "--method",
    "pgtune",
    "--memory",
    "4GB",
    "--cpus",
    "4",
    "--pg-version",
    "11",
    "--profile",
    "web",
    "--os",
    "linux",
    "--storage",
    "ssd",
];

/// 4GB web linux ssd, 4 CPUs, PG 11 (no lz4/io_uring warnings): RAM 4194304kB, SB 1GB,
/// ECS 3GB, mwm 256MB, work_mem (4194304-1048576)/((200+4)*3) = 5140.08 -> 5140kB.
const CONF: &str = "\
# DB Version: 11
# OS Type: linux
# DB Type: web
# Total Memory (RAM): 4 GB
# CPUs num: 4
# Data Storage: ssd

max_connections = 200  # PGTune default for web
shared_buffers = 1GB  # RAM/4 (web)
effective_cache_size = 3GB  # RAM*3/4 (web)
maintenance_work_mem = 256MB  # RAM/16 (web)
checkpoint_completion_target = 0.9  # PGTune constant (PostgreSQL's default since 14)
wal_buffers = 16MB  # 3% of shared_buffers, capped at 16MB
default_statistics_target = 100  # 100 (web)
random_page_cost = 1.1  # ssd: random reads are cheap
effective_io_concurrency = 200  # ssd on Linux
work_mem = 5140kB  # (RAM - shared_buffers) / ((max_connections + 4 workers) * 3) (web)
huge_pages = off  # shared_buffers < 2GB
wal_compression = on  # pglz on PG < 15
min_wal_size = 1GB  # PGTune constant for web
max_wal_size = 4GB  # PGTune constant for web
max_worker_processes = 4  # = CPUs
max_parallel_workers_per_gather = 2  # ceil(CPUs/2), at most 4 (web)
max_parallel_workers = 4  # = CPUs
max_parallel_maintenance_workers = 2  # ceil(CPUs/2), at most 4
";

#[test]
fn emit_conf_prints_pgtune_header_and_one_line_per_setting() {
    let o = pgopt_tune(&[CASE, &["--emit", "conf"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), CONF);
}

#[test]
fn emit_sql_prints_alter_system_statements_in_pgtune_order() {
    let o = pgopt_tune(&[CASE, &["--emit", "sql"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let statements: Vec<&str> = out.lines().filter(|l| !l.starts_with("--")).collect();
    let expected = [
        "",
        "ALTER SYSTEM SET max_connections = '200';",
        "ALTER SYSTEM SET shared_buffers = '1GB';",
        "ALTER SYSTEM SET effective_cache_size = '3GB';",
        "ALTER SYSTEM SET maintenance_work_mem = '256MB';",
        "ALTER SYSTEM SET checkpoint_completion_target = '0.9';",
        "ALTER SYSTEM SET wal_buffers = '16MB';",
        "ALTER SYSTEM SET default_statistics_target = '100';",
        "ALTER SYSTEM SET random_page_cost = '1.1';",
        "ALTER SYSTEM SET effective_io_concurrency = '200';",
        "ALTER SYSTEM SET work_mem = '5140kB';",
        "ALTER SYSTEM SET huge_pages = 'off';",
        "ALTER SYSTEM SET wal_compression = 'on';",
        "ALTER SYSTEM SET min_wal_size = '1GB';",
        "ALTER SYSTEM SET max_wal_size = '4GB';",
        "ALTER SYSTEM SET max_worker_processes = '4';",
        "ALTER SYSTEM SET max_parallel_workers_per_gather = '2';",
        "ALTER SYSTEM SET max_parallel_workers = '4';",
        "ALTER SYSTEM SET max_parallel_maintenance_workers = '2';",
    ];
    assert_eq!(statements, expected, "{out}");
    assert!(out.starts_with("-- DB Version: 11\n"), "{out}");
}

#[test]
fn output_writes_the_file_atomically_and_prints_nothing_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pgtune.conf");
    std::fs::write(&path, "old content\n").unwrap();
    let o = pgopt_tune(
        &[
            CASE,
            &["--emit", "conf", "--output", path.to_str().unwrap()],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), CONF);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "temporary file left behind: {names:?}");
}

#[test]
fn output_into_a_missing_directory_is_an_error_not_a_panic() {
    let o = pgopt_tune(
        &[
            CASE,
            &["--emit", "conf", "--output", "/nonexistent-dir-x/a.conf"],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("nonexistent-dir-x"), "{}", stderr(&o));
}

#[test]
fn json_echoes_input_and_lists_settings_and_warnings() {
    let o = pgopt_tune(&[
        "--method",
        "pgtune",
        "--memory",
        "16GB",
        "--cpus",
        "8",
        "--profile",
        "governance",
        "--data-size",
        "less-than-ram",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["method"], "pgtune");
    assert_eq!(v["input"]["memory"]["amount"], 16);
    assert_eq!(v["input"]["memory"]["unit"], "GB");
    assert_eq!(v["input"]["profile"], "governance");
    assert_eq!(v["input"]["data_size"], "less-than-ram");
    assert_eq!(v["db_type"], "oltp");
    let settings = v["settings"].as_array().unwrap();
    assert_eq!(settings[0]["name"], "max_connections");
    assert_eq!(settings[0]["value"], "300");
    // oltp: 12582912/((300+8)*3) = 13617.9 -> 13617; less_ram *1.3 = 17702.1 -> 17702kB.
    let wm = settings.iter().find(|s| s["name"] == "work_mem").unwrap();
    assert_eq!(wm["value"], "17702kB");
    assert!(wm["reason"].as_str().unwrap().contains("1.3"));
    assert_eq!(v["warnings"].as_array().unwrap().len(), 2);
    assert!(v["notes"][0].as_str().unwrap().contains("oltp"));
}

#[test]
fn table_and_markdown_show_setting_recommended_and_reason() {
    let o = pgopt_tune(CASE);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("recommended") && out.contains("RAM/4 (web)"),
        "{out}"
    );
    let o = pgopt_tune(&[CASE, &["--format", "markdown"]].concat());
    let out = stdout(&o);
    assert!(
        out.contains("| shared_buffers | 1GB | RAM/4 (web) |"),
        "{out}"
    );
}

#[test]
fn each_bad_input_exits_2_naming_its_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--memory", "64XB"], "--memory"),
        (&["--memory", "abc"], "--memory"),
        (&["--memory", "-1GB"], "--memory"),
        (&["--memory", "0"], "--memory"),
        (&["--memory", "256MB"], "--memory"),
        (&["--memory", "16GB", "--cpus", "0"], "--cpus"),
        (&["--memory", "16GB", "--cpus", "many"], "--cpus"),
        (&["--memory", "16GB", "--cpus", "-1"], "--cpus"),
        (
            &["--memory", "16GB", "--max-connections", "-5"],
            "--max-connections",
        ),
        (&["--memory", "16GB", "--pg-version", "-16"], "--pg-version"),
        (&["--memory", "16GB", "--profile", "olap"], "--profile"),
        (&["--memory", "16GB", "--os", "bsd"], "--os"),
        (&["--memory", "16GB", "--storage", "tape"], "--storage"),
        (&["--memory", "16GB", "--data-size", "huge"], "--data-size"),
        (&["--memory", "16GB", "--pg-version", "9"], "--pg-version"),
        (&["--memory", "16GB", "--pg-version", "19"], "--pg-version"),
        (
            &["--memory", "16GB", "--max-connections", "10"],
            "--max-connections",
        ),
        (
            &["--memory", "16GB", "--max-connections", "lots"],
            "--max-connections",
        ),
        (&["--cpus", "8"], "--memory"),
    ];
    for (args, flag) in cases {
        let o = pgopt_tune(&[&["--method", "pgtune"][..], args].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn unknown_enum_values_list_the_allowed_ones() {
    let o = pgopt_tune(&[
        "--method",
        "pgtune",
        "--memory",
        "16GB",
        "--data-size",
        "huge",
    ]);
    let err = stderr(&o);
    assert!(
        err.contains("less-than-ram")
            && err.contains("up-to-3x-ram")
            && err.contains("more-than-3x-ram"),
        "{err}"
    );
}

#[test]
fn method_pgopt_without_a_server_says_it_needs_the_evidence_mode_and_suggests_pgtune() {
    // No target: psql's default connection, here on a port nothing listens on.
    let port = pgopt::embedded::free_port().unwrap();
    let o = cli_support::pgopt_cmd(&["tune", "--memory", "16GB", "--cpus", "8"])
        .env("PGPORT", port.to_string())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("--method pgtune"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "", "no fake output");
}

#[test]
fn apply_without_target_and_restart_without_apply_are_refused() {
    // (--method pgopt with a TARGET is the evidence mode: see tests/tune_apply.rs.)
    let o = pgopt_tune(&["--method", "pgtune", "--memory", "16GB", "--apply"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--apply needs a TARGET"),
        "{}",
        stderr(&o)
    );
    let o = pgopt_tune(&[
        "postgresql://u@localhost/db",
        "--method",
        "pgtune",
        "--restart",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--restart restarts the server after --apply or --rollback"),
        "{}",
        stderr(&o)
    );
}
