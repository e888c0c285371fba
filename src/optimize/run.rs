//! One `pgopt optimize` run against a live server (I/O orchestration only; what each phase's
//! answers look like in the report is [`super::phases`], pure).
//!
//! Order: analyze (one snapshot, findings), then — with `--apply` — the benchmark before any
//! change, indexes, maintenance, settings, and the benchmark after them. Each phase ends done,
//! skipped (with the reason) or failed (with the error and what to do); a failed phase stops
//! only the phases that need its result ([`phases::blocked_by`]). Every change goes through the
//! one executor ([`crate::apply`]): a journal per phase that changed something, the pgopt
//! advisory lock, lock and statement timeouts, Ctrl-C cancelling the step in flight. Before each
//! changing phase the role's privileges are checked, so a role that may read but not change
//! anything gets the read-only phases and a failed phase naming the missing privilege.
//!
//! Without `--apply` nothing is changed: no DDL, no ALTER SYSTEM, no VACUUM, no benchmark and
//! no EXPLAIN ANALYZE (the index advisor plans with hypothetical indexes only), so the tables'
//! statistics do not move either.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;

use crate::advise::{self, Finding, Thresholds};
use crate::apply::{self, OnFailure, StepState};
use crate::bench::{self, BenchOptions, BenchResult, ClientPath, Outcome, StopAt};
use crate::collect::{self, CollectOptions};
use crate::db::{Conn, Target};
use crate::error::{Error, Result};
use crate::indexes::advisor::{self, AdviseOptions, Workload};
use crate::indexes::model::Timing;
use crate::indexes::sources::StatOptions;
use crate::indexes::whatif::{self, WhatIfOptions};
use crate::indexes::{measure, steps};
use crate::maintain;
use crate::progress::Progress;
use crate::snapshot::{Snapshot, TargetInfo};
use crate::tune;

use super::model::{
    self, BenchSummary, JournalRef, Mode, Phase, PhaseName, Report, Status, StepRow,
};
use super::phases::{self, BenchChoice};

/// How one run goes.
#[derive(Clone)]
pub struct Options {
    pub mode: Mode,
    /// Workload profile of the settings advice (as `pgopt tune --profile`).
    pub profile: Option<tune::Profile>,
    /// How long each benchmark (before, after) measures.
    pub bench_duration: Duration,
    /// Benchmark clients (each with its own connection).
    pub clients: usize,
    /// Where the journals go.
    pub journal_dir: PathBuf,
    /// The schema of the governance tables, benchmarked when it is there.
    pub schema: String,
    /// Seconds one EXPLAIN of the index advisor may take.
    pub explain_timeout: Duration,
    /// lock_timeout of each changing step.
    pub lock_timeout: Duration,
    /// Becomes true on Ctrl-C.
    pub interrupt: Option<watch::Receiver<bool>>,
    /// The executor's and the benchmark's progress.
    pub progress: Arc<dyn Progress>,
    /// One line per phase as it starts and ends (the terminal's running commentary).
    pub say: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::DryRun,
            profile: None,
            bench_duration: Duration::from_secs(15),
            clients: 4,
            journal_dir: PathBuf::from("."),
            schema: crate::governance::DEFAULT_SCHEMA.to_string(),
            explain_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(5),
            interrupt: None,
            progress: Arc::new(crate::progress::NoProgress),
            say: Arc::new(|_| {}),
        }
    }
}

/// How a phase ended, before it is timed and put in the report.
struct End {
    status: Status,
    reason: Option<String>,
    summary: String,
}

impl End {
    fn done(summary: impl Into<String>) -> End {
        End {
            status: Status::Done,
            reason: None,
            summary: summary.into(),
        }
    }
    fn skipped(reason: impl Into<String>) -> End {
        End {
            status: Status::Skipped,
            reason: Some(reason.into()),
            summary: "not run".into(),
        }
    }
    fn failed(summary: impl Into<String>, reason: impl Into<String>) -> End {
        End {
            status: Status::Failed,
            reason: Some(reason.into()),
            summary: summary.into(),
        }
    }
}

struct Runner<'a> {
    conn: &'a Conn,
    target: &'a Target,
    opts: &'a Options,
    report: Report,
}

/// Runs the five phases on the server behind `conn` (`target` opens the benchmark's and the
/// executor's further sessions). Never fails as a whole: each phase's error is in its status.
pub async fn run(target: &Target, conn: &Conn, opts: &Options) -> Report {
    let now = Utc::now();
    let mut r = Runner {
        conn,
        target,
        opts,
        report: Report {
            schema_version: model::SCHEMA_VERSION,
            pgopt_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: now,
            finished_at: now,
            target: model::Target {
                host: conn.host.clone(),
                port: conn.port,
                database: conn.database.clone(),
                user: conn.user.clone(),
                server_version: None,
            },
            mode: opts.mode,
            phases: Vec::new(),
            snapshot: None,
            findings: Vec::new(),
            indexes: Vec::new(),
            index_drops: Vec::new(),
            maintenance: Vec::new(),
            settings: Vec::new(),
            steps: Vec::new(),
            journals: Vec::new(),
            top_statements: Vec::new(),
            bench_before: None,
            bench_after: None,
            interrupted: None,
        },
    };
    r.run_all().await;
    let order = |p: &Phase| PhaseName::ALL.iter().position(|n| *n == p.name);
    r.report.phases.sort_by_key(order);
    r.report.finished_at = Utc::now();
    r.report
}

impl Runner<'_> {
    fn say(&self, line: &str) {
        (self.opts.say)(line)
    }

    fn apply(&self) -> bool {
        self.opts.mode == Mode::Apply
    }

    fn interrupted(&self) -> bool {
        self.report.interrupted.is_some()
            || self.opts.interrupt.as_ref().is_some_and(|rx| *rx.borrow())
    }

    fn record(&mut self, name: PhaseName, started: Instant, end: End) {
        let line = match (&end.status, &end.reason) {
            (Status::Done, _) => format!("{}: done: {}", name.as_str(), end.summary),
            (Status::Skipped, r) => {
                format!("{}: skipped: {}", name.as_str(), r.as_deref().unwrap_or(""))
            }
            (Status::Failed, r) => {
                format!("{}: FAILED: {}", name.as_str(), r.as_deref().unwrap_or(""))
            }
        };
        self.say(&line);
        self.report.phases.push(Phase {
            name,
            status: end.status,
            reason: end.reason,
            summary: end.summary,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    /// The phase `name` did not run because an earlier one was interrupted.
    fn skip_interrupted(&mut self, name: PhaseName) {
        self.record(name, Instant::now(), End::skipped(INTERRUPTED));
    }

    async fn run_all(&mut self) {
        let started = Instant::now();
        self.say("analyze: collecting one snapshot");
        let analyzed = self.analyze().await;
        let (snap, findings, end) = match analyzed {
            Ok((snap, findings)) => {
                let end = End::done(phases::findings_summary(&findings));
                (Some(snap), findings, end)
            }
            Err(e) => (
                None,
                Vec::new(),
                End::failed(
                    "no snapshot",
                    format!(
                        "{e}; the maintenance and settings phases need the snapshot: fix this \
                         and run again"
                    ),
                ),
            ),
        };
        let analyze_status = end.status;
        self.record(PhaseName::Analyze, started, end);

        // The benchmark before any change.
        let mut before: Option<std::result::Result<BenchResult, String>> = None;
        let mut bench_seconds = 0.0;
        if self.apply() && !self.interrupted() {
            self.say(&format!(
                "performance: benchmark before the changes ({} s, {} clients)",
                self.opts.bench_duration.as_secs_f64(),
                self.opts.clients
            ));
            let t = Instant::now();
            let b = self.bench().await;
            bench_seconds += t.elapsed().as_secs_f64();
            if let Ok((res, _)) = &b {
                self.report.bench_before = Some(BenchSummary::from(res));
                if res.outcome == Outcome::Interrupted {
                    self.report.interrupted =
                        Some("performance: the benchmark before the changes".into());
                }
            }
            before = Some(match b {
                Ok((res, _)) => Ok(res),
                Err(e) => Err(e.to_string()),
            });
        }

        for phase in [
            PhaseName::Indexes,
            PhaseName::Maintenance,
            PhaseName::Settings,
        ] {
            if self.interrupted() {
                self.skip_interrupted(phase);
                continue;
            }
            let t = Instant::now();
            let end = match phases::blocked_by(phase, analyze_status) {
                Some(why) => End::failed("not run", why),
                None => {
                    self.say(&format!("{}: advising", phase.as_str()));
                    match phase {
                        PhaseName::Indexes => self.indexes(snap.as_ref(), &findings).await,
                        PhaseName::Maintenance => {
                            self.maintenance(snap.as_ref().expect("analyze done"), &findings)
                                .await
                        }
                        _ => self.settings(snap.as_ref().expect("analyze done")).await,
                    }
                }
            };
            self.record(phase, t, end);
        }

        let t = Instant::now();
        let end = match self.opts.mode {
            Mode::DryRun => End::skipped(phases::BENCH_NEEDS_APPLY),
            Mode::Quick => End::skipped(phases::QUICK_SKIPS),
            Mode::Apply => match before {
                _ if self.interrupted() => End::skipped(INTERRUPTED),
                None => End::skipped(INTERRUPTED),
                Some(Err(e)) => End::failed(
                    "no benchmark",
                    format!("the benchmark before the changes failed: {e}"),
                ),
                Some(Ok(b)) => {
                    self.say("performance: benchmark after the changes");
                    match self.bench().await {
                        Err(e) => End::failed(
                            "benchmark before only",
                            format!("the benchmark after the changes failed: {e}"),
                        ),
                        Ok((a, note)) => {
                            self.report.bench_after = Some(BenchSummary::from(&a));
                            if a.outcome == Outcome::Interrupted {
                                self.report.interrupted =
                                    Some("performance: the benchmark after the changes".into());
                            }
                            let summary = format!(
                                "{}: throughput {:.0} -> {:.0} tps ({}), p50 {:.2} -> {:.2} \
                                 ms, p99 {:.2} -> {:.2} ms{}",
                                a.workload,
                                b.throughput_tps,
                                a.throughput_tps,
                                phases::ratio(a.throughput_tps, b.throughput_tps),
                                b.latency.p50_ms,
                                a.latency.p50_ms,
                                b.latency.p99_ms,
                                a.latency.p99_ms,
                                note.map(|n| format!("; {n}")).unwrap_or_default()
                            );
                            match (b.outcome, a.outcome) {
                                (Outcome::Completed, Outcome::Completed) => End::done(summary),
                                (Outcome::Failed, _) | (_, Outcome::Failed) => End::failed(
                                    summary,
                                    b.error.or(a.error).unwrap_or_else(|| {
                                        "the benchmark failed: see the server log".into()
                                    }),
                                ),
                                _ => End::failed(summary, "interrupted (Ctrl-C)"),
                            }
                        }
                    }
                }
            },
        };
        self.record(PhaseName::Performance, t, end);
        if let Some(p) = self.report.phases.last_mut() {
            p.seconds += bench_seconds;
        }
    }

    /// Phase 1: one snapshot and its findings.
    async fn analyze(&mut self) -> Result<(Snapshot, Vec<Finding>)> {
        let conn = self.conn;
        let target = TargetInfo {
            host: conn.host.clone(),
            port: conn.port,
            database: conn.database.clone(),
            user: conn.user.clone(),
        };
        let copts = CollectOptions {
            // Only catalog reads: no pgstattuple pass (it scans tables and moves their
            // statistics).
            bloat_measure_max_relations: 0,
            thresholds: None,
            ..CollectOptions::default()
        };
        let snap = collect::collect(conn, target, &copts).await?;
        let findings = advise::advise(&snap, &Thresholds::default());
        self.report.target.server_version = snap.server.as_ref().map(|s| s.version.clone());
        self.report.snapshot = Some(phases::snapshot_summary(&snap));
        self.report.findings = phases::finding_rows(&findings);
        self.report.top_statements = phases::top_statements(&snap, phases::TOP_STATEMENTS);
        Ok((snap, findings))
    }

    /// Phase 2: index diagnostics and, unless `--quick`, workload-driven advice costed with
    /// hypothetical indexes; with `--apply`, the suggestions built.
    async fn indexes(&mut self, snap: Option<&Snapshot>, findings: &[Finding]) -> End {
        if let Some(snap) = snap {
            let drops = steps::drop_suggestions(findings, snap);
            self.report.index_drops = phases::drop_rows(&drops);
        }
        let drops = self.report.index_drops.len();
        if self.opts.mode == Mode::Quick && snap.is_none() {
            return End::failed(
                "no index diagnostics",
                "--quick takes the index diagnostics from the analyze phase's snapshot, which \
                 failed: fix that error and run again",
            );
        }
        if self.opts.mode == Mode::Quick {
            let diagnostics = findings
                .iter()
                .filter(|f| INDEX_RULES.contains(&f.rule.as_str()))
                .count();
            return End::done(format!(
                "{diagnostics} index findings, {drops} indexes advised to drop; no what-if \
                 costing (--quick)"
            ));
        }
        let conn = self.conn;
        if let Err(e) = whatif::check_hypopg(conn).await {
            return End::failed("no index advice", e.to_string());
        }
        let workload = Workload {
            stat_statements: true,
            stat: StatOptions::default(),
            ..Workload::default()
        };
        let queries = match advisor::workload(conn, &workload).await {
            Ok(q) => q,
            Err(e) => return End::failed("no index advice", e.to_string()),
        };
        let aopts = AdviseOptions {
            whatif: WhatIfOptions {
                statement_timeout: self.opts.explain_timeout,
                ..WhatIfOptions::default()
            },
            ..AdviseOptions::default()
        };
        let run = match advisor::advise(conn, queries, &aopts, self.opts.progress.as_ref()).await {
            Ok(r) => r,
            Err(e) => return End::failed("no index advice", e.to_string()),
        };
        self.report.indexes = phases::index_rows(&run.advice);
        let n = run.advice.suggestions.len();
        let planned = format!(
            "{n} indexes suggested (workload cost {:.0} -> {:.0}), {drops} advised to drop",
            run.advice.workload_cost_before, run.advice.workload_cost_after
        );
        if !self.apply() {
            return End::done(planned);
        }
        if n == 0 {
            return End::done(format!("{planned}; nothing to build"));
        }
        let tables: Vec<(String, String)> = run
            .advice
            .suggestions
            .iter()
            .map(|s| {
                (
                    s.candidate.schema.to_string(),
                    s.candidate.table.to_string(),
                )
            })
            .collect();
        if let Err(e) = check_owner(conn, &tables, "CREATE INDEX on").await {
            return self.refused(PhaseName::Indexes, e);
        }
        let helped = measure::helped(&run.advice, &run.queries);
        let helped = measure::prepare(&run.queries, &run.shapes, &run.catalog, &helped);
        let timeout = self.opts.explain_timeout;
        let before = measure::time_statements(conn, &helped, 3, timeout)
            .await
            .unwrap_or_default();
        let plan = steps::create_plan(&run.advice);
        let exec = apply::Options {
            lock_timeout: self.opts.lock_timeout,
            statement_timeout: Duration::from_secs(6 * 3600),
            on_failure: OnFailure::Stop,
            rollback_command: "pgopt indexes --rollback".into(),
            ..self.exec_options()
        };
        let outcome = self
            .execute(PhaseName::Indexes, &plan, exec, |r, steps| {
                for (row, s) in r.indexes.iter_mut().zip(steps) {
                    row.outcome = phases::step_outcome(s);
                }
            })
            .await;
        let built = match outcome {
            Ok(report) => report
                .steps
                .iter()
                .filter(|s| s.index < n && s.state == StepState::Done)
                .count(),
            Err(end) => return end,
        };
        if !self.interrupted() {
            let after = measure::time_statements(conn, &helped, 3, timeout)
                .await
                .unwrap_or_default();
            for (row, s) in self.report.indexes.iter_mut().zip(&run.advice.suggestions) {
                let ids = measure::helped(
                    &crate::indexes::model::Advice {
                        suggestions: vec![s.clone()],
                        ..Default::default()
                    },
                    &run.queries,
                );
                row.measured_before_ms = total_ms(&before, &ids);
                row.measured_after_ms = total_ms(&after, &ids);
            }
        }
        let end = End::done(format!("{planned}; {built} built"));
        self.after_execute(end)
    }

    /// Phase 3: VACUUM, ANALYZE, freeze and REINDEX from analyze's findings.
    async fn maintenance(&mut self, snap: &Snapshot, findings: &[Finding]) -> End {
        if self.opts.mode == Mode::Quick {
            return End::skipped(phases::QUICK_SKIPS);
        }
        let advice = maintain::advise(snap, findings, &maintain::Options::default());
        self.report.maintenance = phases::maintenance_rows(&advice);
        let n = advice.tasks.len();
        let planned = format!("{n} maintenance tasks");
        if !self.apply() {
            return End::done(planned);
        }
        if n == 0 {
            return End::done(
                "nothing to do: no table needs VACUUM, ANALYZE or a freeze, no \
                              index a REINDEX",
            );
        }
        let mut tables: Vec<(String, String)> = Vec::new();
        for t in &advice.tasks {
            if let Some(tab) = snap.tables.iter().find(|x| x.qualified_name() == t.table) {
                tables.push((tab.schema.to_string(), tab.name.to_string()));
            }
        }
        if let Err(e) = check_owner(self.conn, &tables, "VACUUM, ANALYZE or REINDEX").await {
            return self.refused(PhaseName::Maintenance, e);
        }
        let plan = maintain::plan(&advice);
        // Plan step index -> task.
        let owner: Vec<usize> = advice
            .tasks
            .iter()
            .enumerate()
            .flat_map(|(k, t)| std::iter::repeat_n(k, t.steps.len()))
            .collect();
        let exec = apply::Options {
            lock_timeout: self.opts.lock_timeout,
            statement_timeout: Duration::from_secs(6 * 3600),
            on_failure: OnFailure::Stop,
            rollback_command: "pgopt tune --rollback".into(),
            ..self.exec_options()
        };
        let outcome = self
            .execute(PhaseName::Maintenance, &plan, exec, |r, steps| {
                for s in steps {
                    if let Some(row) = owner.get(s.index).and_then(|&k| r.maintenance.get_mut(k)) {
                        let secs = row.seconds.unwrap_or(0.0) + s.elapsed.as_secs_f64();
                        row.seconds = Some(secs);
                        // A task's outcome is its first step that did not end done.
                        if row.outcome == "planned" || row.outcome == "done" {
                            row.outcome = phases::step_outcome(s);
                        }
                    }
                }
            })
            .await;
        match outcome {
            Ok(report) => {
                let done = report.with_state(StepState::Done).len();
                self.after_execute(End::done(format!("{planned}; {done} steps done")))
            }
            Err(end) => end,
        }
    }

    /// Phase 4: settings advice; with `--apply`, the settings that take effect on a reload
    /// (and per-table settings) applied, the restart-only ones listed.
    async fn settings(&mut self, snap: &Snapshot) -> End {
        let raw = tune::RawInput {
            profile: self.opts.profile,
            ..tune::RawInput::default()
        };
        let (input, detected) = match tune::advice::inputs(snap, raw) {
            Ok(x) => x,
            Err(e) => return End::failed("no settings advice", e.to_string()),
        };
        let advice = tune::advise(snap, &input, &Thresholds::default());
        let rec = advice.recommendation(tune::Method::Pgopt);
        self.report.settings = phases::setting_rows(rec);
        for o in &rec.objects {
            self.report.settings.push(model::SettingRow {
                name: format!("{} {}", o.label(), o.name),
                current: o.current.clone().unwrap_or_else(|| "(default)".into()),
                recommended: o.value.clone(),
                why: o.reason.clone(),
                needs_restart: false,
                outcome: "planned".into(),
            });
        }
        let changes = phases::reload_changes(rec);
        let restart = rec.restart();
        let planned = format!(
            "{} settings to change on reload, {} per-object, {} wait for a restart",
            changes.len(),
            rec.objects.len(),
            restart.len()
        );
        if !self.apply() {
            return End::done(planned);
        }
        if changes.is_empty() && rec.objects.is_empty() {
            return End::done(format!("{planned}; nothing to apply"));
        }
        let conn = self.conn;
        if let Err(e) =
            tune::compare::validate_changes(&advice.server, &changes, detected.memory_bytes)
        {
            return End::failed("nothing applied", e.to_string());
        }
        let names: Vec<&str> = changes.iter().map(|(n, _)| *n).collect();
        if !names.is_empty() {
            if let Err(e) = apply::settings::check_alter_system_privilege(conn, &names).await {
                return self.refused(PhaseName::Settings, e);
            }
        }
        if let Err(e) = apply::objects::check_privileges(conn, &rec.objects).await {
            return self.refused(PhaseName::Settings, e);
        }
        let entries = match apply::objects::journal_entries(conn, &rec.objects).await {
            Ok(e) => e,
            Err(e) => return End::failed("nothing applied", e.to_string()),
        };
        let journal = self.journal_path(PhaseName::Settings);
        let exec = self.exec_options();
        let run = apply::settings::apply_plan(conn, &changes, &entries, &journal, exec).await;
        self.note_journal(PhaseName::Settings, &journal);
        let run = match run {
            Ok(r) => r,
            Err(e) => {
                return End::failed(
                    "settings failed",
                    format!(
                        "{e}; the journal {} records what was done",
                        journal.display()
                    ),
                )
            }
        };
        let mut applied = 0;
        use apply::settings::Outcome as O;
        for s in &run.report.settings {
            if let Some(row) = self.report.settings.iter_mut().find(|r| r.name == s.name) {
                row.outcome = match (&s.outcome, &s.reason) {
                    (O::Applied, _) => {
                        applied += 1;
                        "done".into()
                    }
                    (O::PendingRestart, _) => phases::WAITS_FOR_RESTART.into(),
                    (O::Unverified, _) => {
                        "not verified: check the server log and pg_file_settings".into()
                    }
                    (O::Skipped, r) => format!("skipped: {}", r.as_deref().unwrap_or("")),
                    (O::NotRun, r) => format!("not run: {}", r.as_deref().unwrap_or("")),
                };
            }
            self.report.steps.push(StepRow {
                phase: PhaseName::Settings,
                what: format!("ALTER SYSTEM SET {} = {}", s.name, s.value),
                state: match s.outcome {
                    O::Applied | O::PendingRestart => "done",
                    O::Unverified => "unverified",
                    O::Skipped => "skipped",
                    O::NotRun => "not run",
                }
                .to_string(),
                reason: s.reason.clone(),
                seconds: 0.0,
            });
        }
        for o in &run.objects {
            let name = format!("{} {}", o.object, o.name);
            if let Some(row) = self.report.settings.iter_mut().find(|r| r.name == name) {
                row.outcome = if o.verified { "done" } else { "not verified" }.into();
            }
        }
        if run.interrupted {
            self.report.interrupted =
                Some("settings: the journal is complete; the rest was not applied".into());
        }
        let end = End::done(format!("{planned}; {applied} applied"));
        if !run.report.unverified().is_empty() {
            return End::failed(
                end.summary,
                format!(
                    "{} did not show the new value after the reload; check the server log and \
                     pg_file_settings",
                    run.report.unverified().join(", ")
                ),
            );
        }
        end
    }

    /// Runs `plan` on the executor with a journal of its own; `rows` updates the phase's report
    /// rows from the step reports. Err: the phase's failed end.
    async fn execute(
        &mut self,
        phase: PhaseName,
        plan: &crate::plan::Plan,
        exec: apply::Options,
        rows: impl FnOnce(&mut Report, &[apply::StepReport]),
    ) -> std::result::Result<apply::Report, End> {
        let journal = self.journal_path(phase);
        let outcome = apply::run(self.conn, plan, Some(&journal), &exec).await;
        self.note_journal(phase, &journal);
        match outcome {
            Ok(report) => {
                rows(&mut self.report, &report.steps);
                for s in &report.steps {
                    self.report.steps.push(StepRow {
                        phase,
                        what: s.what.clone(),
                        state: phases::step_outcome(s)
                            .split(':')
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                        reason: s.reason.clone(),
                        seconds: s.elapsed.as_secs_f64(),
                    });
                }
                if report.interrupted {
                    let at = report
                        .steps
                        .iter()
                        .find(|s| s.state != StepState::Done && s.state != StepState::Skipped)
                        .or(report.steps.last())
                        .map(|s| format!("step {} ({})", s.index + 1, s.what))
                        .unwrap_or_else(|| "before its first step".into());
                    self.report.interrupted = Some(format!(
                        "{}: {at}; the journal {} is complete",
                        phase.as_str(),
                        journal.display()
                    ));
                }
                Ok(report)
            }
            Err(e) => Err(End::failed(
                "stopped",
                format!(
                    "{e}; the journal {} says what was done ({})",
                    journal.display(),
                    phases::rollback_command(phase, &journal.display().to_string())
                ),
            )),
        }
    }

    /// A phase the executor ran: interrupted, it says so.
    fn after_execute(&self, end: End) -> End {
        match &self.report.interrupted {
            Some(at) => End::failed(end.summary, format!("interrupted (Ctrl-C) at {at}")),
            None => end,
        }
    }

    /// The role may not make this phase's changes: failed, nothing changed.
    fn refused(&self, phase: PhaseName, e: Error) -> End {
        End::failed(
            format!("nothing changed in the {} phase", phase.as_str()),
            e.to_string(),
        )
    }

    fn exec_options(&self) -> apply::Options {
        apply::Options {
            interrupt: self.opts.interrupt.clone(),
            progress: Some(self.opts.progress.clone()),
            reconnect: Some(Arc::new(self.target.clone())),
            ..apply::Options::default()
        }
    }

    fn journal_path(&self, phase: PhaseName) -> PathBuf {
        self.opts
            .journal_dir
            .join(phases::journal_name(phase, Utc::now()))
    }

    /// Lists a journal the executor wrote (it writes one only once it starts changing).
    fn note_journal(&mut self, phase: PhaseName, path: &Path) {
        if path.exists() {
            let shown = path.display().to_string();
            self.report.journals.push(JournalRef {
                phase,
                rollback: phases::rollback_command(phase, &shown),
                path: shown,
            });
        }
    }

    /// One benchmark run: the governance workload when its tables are there and writable, else
    /// `SELECT 1`. The note says why the floor was measured instead.
    async fn bench(&self) -> Result<(BenchResult, Option<String>)> {
        let conn = self.conn;
        let row = conn
            .query_one(
                "checking for the governance tables",
                "SELECT count(*)::int, coalesce(bool_and(pg_catalog.has_table_privilege(c.oid, \
                 'INSERT, UPDATE')), false) FROM pg_catalog.pg_class c JOIN \
                 pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = ANY($2) AND c.relkind IN ('r', 'p')",
                &[&self.opts.schema, &crate::governance::TABLES],
            )
            .await?;
        let (present, writable): (i32, bool) = (row.get(0), row.get(1));
        let (choice, note) = phases::bench_choice(
            present as usize == crate::governance::TABLES.len(),
            writable,
        );
        let bopts = BenchOptions {
            clients: self.opts.clients,
            connections: self.opts.clients,
            stop: StopAt::Duration(self.opts.bench_duration),
            warmup: Duration::from_secs(1).min(self.opts.bench_duration / 4),
            client_path: ClientPath::Lean,
            ..BenchOptions::default()
        };
        bopts.validate()?;
        let (probe, facts) = bench::probe(self.target, bopts.connections).await?;
        let workload = match choice {
            BenchChoice::Governance => {
                crate::governance::governance_workload(
                    &probe,
                    &self.opts.schema,
                    crate::governance::Mix::ReadHeavy,
                )
                .await
            }
            BenchChoice::Select1 => Ok(bench::select1()),
        };
        bench::close_probe(probe).await;
        let result = bench::run(
            self.target,
            workload?,
            &bopts,
            &facts,
            self.opts.interrupt.clone(),
            self.opts.progress.clone(),
        )
        .await?;
        Ok((result, note))
    }
}

/// The reason of a phase an interrupt kept from running.
const INTERRUPTED: &str = "the run was interrupted (Ctrl-C)";

/// analyze's rules about indexes (the `--quick` diagnostics).
const INDEX_RULES: &[&str] = &[
    "fk_missing_index",
    "unused_index",
    "unused_index_window_short",
    "duplicate_index",
    "redundant_index",
    "invalid_index",
    "index_bloat",
];

/// Refuses, naming the tables, unless the role owns (or is a member of the owner of) each of
/// `tables` (schema, name): only the owner may build an index on, vacuum or reindex a table.
async fn check_owner(conn: &Conn, tables: &[(String, String)], what: &str) -> Result<()> {
    let mut missing: Vec<String> = Vec::new();
    for (schema, table) in tables {
        let owned: bool = conn
            .query_one(
                "checking table ownership",
                "SELECT coalesce((SELECT pg_catalog.pg_has_role(current_user, c.relowner, \
                 'USAGE') FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
                 ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2), true)",
                &[schema, table],
            )
            .await?
            .get(0);
        let name = crate::ident::QualifiedName::new(schema, table).to_string();
        if !owned && !missing.contains(&name) {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::BadInput(format!(
        "role {} may not run {what} {}: only the table's owner or a superuser may; nothing was \
         changed in this phase. Run optimize as the owner or a superuser (or GRANT the owner \
         role to {})",
        conn.user,
        missing.join(", "),
        crate::ident::Ident::new(&conn.user)
    )))
}

/// The measured time of `ids` together, when each was measured.
fn total_ms(timings: &[Timing], ids: &[usize]) -> Option<f64> {
    let mut total = 0.0;
    for id in ids {
        total += timings.iter().find(|t| t.query == *id)?.ms?;
    }
    (!ids.is_empty()).then_some(total)
}
