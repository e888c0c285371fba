//! The reports of one `pgopt optimize` run, written to `--report DIR`.
//!
//! In this version only `report.json` (the [`Report`], serialized) is written; `report.md` and
//! `report.html` are rendered by the reports module that replaces this file, at the paths
//! [`Written`] names. The rest of the command depends only on [`check_writable`], [`write`]
//! and [`summary`].

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::optimize::model::{Report, Status};

/// Where the reports went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub html: PathBuf,
}

impl Written {
    fn in_dir(dir: &Path) -> Written {
        Written {
            json: dir.join("report.json"),
            markdown: dir.join("report.md"),
            html: dir.join("report.html"),
        }
    }
}

/// Refuses, before anything is changed, a report directory that cannot be created or written
/// (a file is created in it and removed again).
pub fn check_writable(dir: &Path) -> Result<()> {
    let refuse = |e: std::io::Error| {
        Error::BadInput(format!(
            "the report directory {} cannot be written ({e}); give another --report DIR or fix \
             its permissions; nothing was changed",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(refuse)?;
    let probe = tempfile::Builder::new()
        .prefix(".pgopt-write-check-")
        .tempfile_in(dir)
        .map_err(refuse)?;
    drop(probe);
    Ok(())
}

/// Writes the report to `dir`. Only `report.json` is written in this version (see the module
/// header); the markdown and HTML paths are where the full version writes them.
pub fn write(dir: &Path, report: &Report) -> Result<Written> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let written = Written::in_dir(dir);
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| Error::Internal(format!("serializing the optimize report: {e}")))?;
    crate::files::write_atomically(&written.json, &json)?;
    Ok(written)
}

/// The terminal's short summary: phases, headline figures, where the reports are.
pub fn summary(report: &Report, written: &Written) -> String {
    let mut out = String::new();
    let (done, total) = report.success_rate();
    out.push_str(&format!("optimize: {done}/{total} phases done\n"));
    for p in &report.phases {
        let status = match p.status {
            Status::Done => "done",
            Status::Skipped => "skipped",
            Status::Failed => "FAILED",
        };
        out.push_str(&format!(
            "  {:<12} {:<8} {}",
            p.name.as_str(),
            status,
            p.summary
        ));
        if let Some(r) = &p.reason {
            out.push_str(&format!(" ({r})"));
        }
        out.push('\n');
    }
    if let (Some(b), Some(a)) = (&report.bench_before, &report.bench_after) {
        let ratio = |after: f64, before: f64| {
            if before > 0.0 {
                format!("{:.2}x", after / before)
            } else {
                "-".to_string()
            }
        };
        out.push_str(&format!(
            "  throughput {:.0} -> {:.0} tps ({}), p50 {:.2} -> {:.2} ms, p99 {:.2} -> {:.2} ms\n",
            b.throughput_tps,
            a.throughput_tps,
            ratio(a.throughput_tps, b.throughput_tps),
            b.latency.p50_ms,
            a.latency.p50_ms,
            b.latency.p99_ms,
            a.latency.p99_ms
        ));
    }
    if let Some(at) = &report.interrupted {
        out.push_str(&format!("  interrupted: {at}\n"));
    }
    for j in &report.journals {
        out.push_str(&format!(
            "  journal ({}): {} (undo: {})\n",
            j.phase.as_str(),
            j.path,
            j.rollback
        ));
    }
    out.push_str(&format!("  report: {}\n", written.json.display()));
    out
}
