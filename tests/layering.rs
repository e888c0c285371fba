//! The rooms of the crate keep to their doors: only the command line (`src/cli/`,
//! `src/main.rs`) uses clap or indicatif, so the library works without its CLI; advisors and
//! report code, plans and tune (pure) never use the database layer, the collectors, the
//! executor or the embedded clusters.

use std::path::{Path, PathBuf};

/// Files allowed a CLI crate for now, each with the reason.
const CLI_CRATES_ALLOWED: &[(&str, &str)] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate's source files as (path relative to the crate, code lines without comments).
fn sources() -> Vec<(String, Vec<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 50, "found the sources: {}", files.len());
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let code = std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .map(str::trim)
                .filter(|l| !l.starts_with("//"))
                .map(str::to_string)
                .collect();
            (rel, code)
        })
        .collect()
}

/// The lines of `code` that use one of `crates` (a path through it or an import).
fn uses(code: &[String], crates: &[&str]) -> Vec<String> {
    code.iter()
        .filter(|l| {
            crates.iter().any(|c| {
                l.contains(&format!("{c}::"))
                    && !l.contains(&format!("_{c}::"))
                    && !l.contains(&format!("crate::{c}::"))
            })
        })
        .cloned()
        .collect()
}

#[test]
fn only_the_command_line_uses_clap_or_indicatif() {
    let mut offenders = Vec::new();
    for (path, code) in sources() {
        if path.starts_with("src/cli/") || path == "src/main.rs" {
            continue;
        }
        let found = uses(&code, &["clap", "indicatif"]);
        let allowed = CLI_CRATES_ALLOWED.iter().any(|(p, _)| *p == path);
        if !found.is_empty() && !allowed {
            offenders.push(format!("{path}: {}", found.join(" | ")));
        }
    }
    assert!(
        offenders.is_empty(),
        "clap or indicatif outside src/cli/ (mirror the argument enum in src/cli/, report \
         progress through crate::progress):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_allow_list_names_only_files_that_still_need_it() {
    let sources = sources();
    for (path, why) in CLI_CRATES_ALLOWED {
        let code = &sources
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("{path} is allowed but gone: drop it from the list"))
            .1;
        assert!(
            !uses(code, &["clap", "indicatif"]).is_empty(),
            "{path} is allowed ({why}) but no longer uses clap or indicatif: drop it from the list"
        );
    }
}

/// The pure rooms: advisors, plans, reports and the whole of tune (its I/O lives in
/// `src/apply/settings.rs`, `src/apply/objects.rs` and `src/apply/restart.rs`).
/// The index advisor's pure stages too (its I/O: `catalog`, `sources`, `whatif`, `measure`,
/// `advisor`), maintenance's advice and optimize's report model (its I/O: `optimize/run.rs`).
const PURE: &[&str] = &[
    "src/advise/",
    "src/report/",
    "src/plan",
    "src/tune/",
    "src/indexes/model.rs",
    "src/indexes/shape",
    "src/indexes/candidates",
    "src/indexes/select",
    "src/indexes/steps",
    "src/indexes/params",
    "src/maintain/",
    "src/optimize/model.rs",
    "src/serve/collector/delta.rs",
    "src/serve/collector/raw.rs",
    "src/serve/collector/backoff.rs",
];

/// Files of the pure rooms allowed I/O for now, each with the reason.
const IO_ALLOWED: &[(&str, &str)] = &[];

/// The lines of `code` that use the database layer, the collectors, the executor or the
/// embedded clusters.
fn io_uses(code: &[String]) -> Vec<&String> {
    code.iter()
        .filter(|l| {
            l.contains("crate::db")
                || l.contains("super::db")
                || l.contains("pgopt::db")
                || l.contains("pgopt_pool")
                || l.contains("crate::collect")
                || l.contains("crate::apply")
                || l.contains("crate::embedded")
        })
        .collect()
}

#[test]
fn advisors_plans_reports_and_tune_do_not_use_the_database_layer() {
    let mut offenders = Vec::new();
    for (path, code) in sources() {
        if !PURE.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        if IO_ALLOWED.iter().any(|(p, _)| *p == path) {
            continue;
        }
        let found = io_uses(&code);
        if !found.is_empty() {
            offenders.push(format!("{path}: {found:?}"));
        }
    }
    assert!(
        offenders.is_empty(),
        "pure code uses the database layer (quote names with crate::ident, take data from the \
         Snapshot):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_io_allow_list_names_only_files_that_still_need_it() {
    let sources = sources();
    for (path, why) in IO_ALLOWED {
        let code = &sources
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("{path} is allowed but gone: drop it from the list"))
            .1;
        assert!(
            !io_uses(code).is_empty(),
            "{path} is allowed ({why}) but no longer does I/O: drop it from the list"
        );
    }
}

#[test]
fn tune_keeps_no_file_of_the_executor() {
    // Applying settings, per-object settings and restarts are the executor's (src/apply/).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for gone in ["apply.rs", "restart.rs"] {
        assert!(
            !root.join("src/tune").join(gone).exists(),
            "src/tune/{gone} is back: its I/O belongs in src/apply/"
        );
    }
}

#[test]
fn the_checks_see_a_use_when_there_is_one() {
    let code = vec![
        "use clap::Args;".to_string(),
        "let b = indicatif::ProgressBar::new(1);".to_string(),
        "use tokio_postgres::Client;".to_string(),
    ];
    assert_eq!(uses(&code, &["clap", "indicatif"]).len(), 2);
    let io = vec![
        "use crate::db::Conn;".to_string(),
        "crate::apply::run(conn, &plan, None, &o)".to_string(),
        "use crate::plan::Step;".to_string(),
    ];
    assert_eq!(io_uses(&io).len(), 2);
    assert!(
        uses(&code, &["postgres"]).is_empty(),
        "tokio_postgres:: is not postgres::"
    );
}

#[test]
fn commands_do_not_call_each_others_files() {
    // A command's file in src/cli/ is parsing and wiring; what two commands share lives in the
    // library or in cli's shared modules (mod.rs, progress.rs, target.rs, values.rs).
    let commands = ["analyze", "bench", "demo", "embedded", "governance", "tune"];
    let mut offenders = Vec::new();
    for (path, code) in sources() {
        let Some(name) = path
            .strip_prefix("src/cli/")
            .and_then(|p| p.strip_suffix(".rs"))
        else {
            continue;
        };
        for other in commands.iter().filter(|c| **c != name) {
            let needles = [
                format!("super::{other}::"),
                format!("super::{other}}}"),
                format!("crate::cli::{other}::"),
            ];
            if name != "mod"
                && code
                    .iter()
                    .any(|l| needles.iter().any(|n| l.contains(n.as_str())))
            {
                offenders.push(format!("{path} uses cli/{other}.rs"));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

/// A service that links the pool library pulls none of pgopt's command-line, report or
/// web crates: the library's whole dependency tree (as `cargo tree` resolves it from the
/// lock file) holds none of them, and its sources never name pgopt.
#[test]
fn the_pool_library_pulls_no_cli_report_or_web_crate() {
    const NOT_IN_THE_LIBRARY: &[&str] = &[
        "clap",
        "indicatif",
        "comfy-table",
        "plotters",
        "axum",
        "pg_query",
        "rusqlite",
        "reqwest",
        "sysinfo",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "pgopt-pool",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"tokio-postgres"), "{tree}");
    for name in NOT_IN_THE_LIBRARY {
        assert!(
            !names.contains(name),
            "the pool library pulls {name}:\n{tree}"
        );
    }
    let mut files = Vec::new();
    rust_files(&root.join("crates/pgopt-pool/src"), &mut files);
    assert!(!files.is_empty());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains("pgopt::"),
            "{} names pgopt: the library must not depend on it",
            f.display()
        );
    }
}
