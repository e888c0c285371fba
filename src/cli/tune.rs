//! `pgopt tune`: settings advice — argument parsing and wiring.
//!
//! With `--method pgtune` and no TARGET it is a calculator (`--memory 16GB ...`); `--method
//! pgopt` (the default) with no TARGET connects where psql would. With a TARGET it collects
//! one snapshot of the server (or, with `--from FILE`, loads one saved by `pgopt analyze
//! --save`, offline) and hands it to the library: `tune::advice::inputs` takes the version,
//! and this machine's memory (the cgroup limit when lower), CPUs and storage when the server
//! is local (flags override), `tune::advise` recommends (pure) and `report::tune` renders.
//! With `--apply` it changes the server on the executor, `crate::apply` (journal, ALTER
//! SYSTEM one at a time, reload, verify); `--rollback JOURNAL` undoes that. With `--restart`,
//! the executor then restarts the server when a changed setting waits for it and verifies
//! again (a restart step): a pgopt embedded cluster directly, another server on this machine
//! only once confirmed here (a typed `restart` on a terminal, or `--yes-restart HOST:PORT`),
//! a remote one never.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::{TargetArgs, EXIT_FAILED, EXIT_OK};
use crate::advise::Thresholds;
use crate::apply::restart::{self, Plan};
use crate::apply::settings;
use crate::collect;
use crate::db::Conn;
use crate::error::Error;
use crate::plan::Action;
use crate::report::{self, Format};
use crate::snapshot::Snapshot;
use crate::tune::compare;
use crate::tune::{self, pgtune, RawInput, TuneInput};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Evidence-driven: PGTune's baseline changed where the server's statistics contradict it.
    Pgopt,
    /// Exactly what PGTune's calculator recommends for the same inputs.
    Pgtune,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// A postgresql.conf include file: `name = value  # reason`.
    Conf,
    /// ALTER SYSTEM SET statements.
    Sql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Os {
    Linux,
    Windows,
    Mac,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    Web,
    Oltp,
    Dw,
    Desktop,
    Mixed,
    Governance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Storage {
    Hdd,
    Ssd,
    San,
    Nvme,
}

#[allow(clippy::enum_variant_names)] // the names PGTune gives them
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataSize {
    #[value(name = "less-than-ram")]
    LessThanRam,
    #[value(name = "up-to-3x-ram")]
    UpTo3xRam,
    #[value(name = "more-than-3x-ram")]
    MoreThan3xRam,
}

/// `From<cli enum> for library enum`, variant by variant (the library has no clap).
macro_rules! mirror {
    ($from:ty => $to:ty { $($v:ident),+ $(,)? }) => {
        impl From<$from> for $to {
            fn from(v: $from) -> Self {
                match v { $(<$from>::$v => <$to>::$v),+ }
            }
        }
    };
}
mirror!(Method => tune::Method { Pgopt, Pgtune });
mirror!(Emit => report::tune::Emit { Conf, Sql });
mirror!(Os => tune::Os { Linux, Windows, Mac });
mirror!(Profile => tune::Profile { Web, Oltp, Dw, Desktop, Mixed, Governance });
mirror!(Storage => tune::Storage { Hdd, Ssd, San, Nvme });
mirror!(DataSize => tune::DataSize { LessThanRam, UpTo3xRam, MoreThan3xRam });

#[derive(Debug, Args)]
pub struct TuneArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// How to compute the recommendation.
    #[arg(long, value_enum, default_value = "pgopt")]
    method: Method,
    /// Advise from a snapshot saved by `pgopt analyze --save FILE` instead of a live server
    /// (offline; not with --apply).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dsn", "discover", "apply", "rollback"])]
    from: Option<PathBuf>,
    /// Override a threshold of the evidence rules, e.g. `--threshold tune_cache_hit_ratio=0.98`
    /// (repeatable; `--threshold list` prints them all).
    #[arg(long = "threshold", value_name = "NAME=VALUE")]
    thresholds: Vec<String>,
    /// Total memory of the server: a whole number with MB, GB or TB (e.g. 16GB; at least 512MB).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory: Option<String>,
    /// Number of CPUs (cores) of the server.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    cpus: Option<u32>,
    /// Storage the data lives on [default: detected from the data directory's disk when the
    /// server is on this machine, else ssd].
    #[arg(long, value_enum)]
    storage: Option<Storage>,
    /// Operating system of the server [default: linux].
    #[arg(long, value_enum)]
    os: Option<Os>,
    /// max_connections to plan for (at least 20) [default: the profile's].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    max_connections: Option<u32>,
    /// Total data size against memory [default: up-to-3x-ram].
    #[arg(long, value_enum)]
    data_size: Option<DataSize>,
    /// PostgreSQL major version, 10 to 18 [default: 18].
    #[arg(long, value_name = "VERSION", allow_hyphen_values = true)]
    pg_version: Option<u32>,
    /// Workload profile [default: web].
    #[arg(long, value_enum)]
    profile: Option<Profile>,
    /// Output format of the report (ignored with --emit).
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Print a postgresql.conf include file or ALTER SYSTEM statements instead of the report.
    #[arg(long, value_enum)]
    emit: Option<Emit>,
    /// Write the output to this file (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Change the server (needs TARGET): ALTER SYSTEM each setting that differs, one at a
    /// time, after writing a journal; reload; verify. Without it nothing is changed.
    #[arg(long, conflicts_with_all = ["emit", "rollback"])]
    apply: bool,
    /// Where --apply writes its journal [default: pgopt-tune-journal-<timestamp>.json].
    #[arg(long, value_name = "FILE", requires = "apply")]
    journal: Option<PathBuf>,
    /// Restore the settings a journal of --apply recorded (TARGET defaults to the journal's
    /// server).
    #[arg(long, value_name = "JOURNAL")]
    rollback: Option<PathBuf>,
    /// With --apply or --rollback: when a changed setting waits for a restart, restart the
    /// server (pg_ctl restart -m fast) and verify. A pgopt embedded cluster is restarted
    /// directly; another server on this machine only after confirmation (type `restart` when
    /// asked, or --yes-restart); a server on another machine never.
    #[arg(long)]
    restart: bool,
    /// Confirms --restart without asking: the target's HOST:PORT, as pgopt names it in the
    /// question (e.g. 127.0.0.1:5432 or /var/run/postgresql:5432).
    #[arg(long, value_name = "HOST:PORT", requires = "restart")]
    yes_restart: Option<String>,
}

/// The inputs as given on the command line.
fn raw_input(args: &TuneArgs) -> RawInput {
    RawInput {
        memory: args.memory.clone(),
        cpus: args.cpus,
        connections: args.max_connections,
        pg_version: args.pg_version,
        os: args.os.map(Into::into),
        profile: args.profile.map(Into::into),
        storage: args.storage.map(Into::into),
        data_size: args.data_size.map(Into::into),
    }
}

pub async fn run(args: TuneArgs) -> anyhow::Result<u8> {
    if args.thresholds.iter().any(|t| t == "list") {
        print!("{}", report::thresholds::list());
        return Ok(EXIT_OK);
    }
    if args.restart && !args.apply && args.rollback.is_none() {
        return Err(Error::BadInput(
            "--restart restarts the server after --apply or --rollback JOURNAL changed a \
             setting that waits for a restart; add one of them (a dry run never restarts). \
             Nothing was changed"
                .into(),
        )
        .into());
    }
    if let Some(path) = &args.rollback {
        return run_rollback(&args, path).await;
    }
    // With --method pgtune and no target, tune is a calculator; any other tune talks to a
    // server, psql's default one when none is named. --apply changes a server, so it must be
    // named (a connection string, --discover or PG* variables).
    let named = !args.target.is_default();
    if args.apply && !named {
        return Err(Error::BadInput(
            "--apply needs a TARGET: pgopt tune 'host=... dbname=...' --method pgtune --apply"
                .into(),
        )
        .into());
    }
    let thresholds = Thresholds::with_overrides(&args.thresholds)?;
    if args.method == Method::Pgtune
        && !args.apply
        && args.target.dsn.is_none()
        && args.target.discover.is_none()
        && args.from.is_none()
    {
        let input = TuneInput::validate(&raw_input(&args))?;
        let out = pgtune::pgtune(&input);
        let text = report::tune::calculator(&input, &out, args.emit.map(Into::into), args.format);
        emit_text(&args, &text)?;
        return Ok(EXIT_OK);
    }
    let (conn, snap) = match &args.from {
        Some(path) => (None, Snapshot::load(path)?),
        None => {
            let (target, conn) = args.target.connect().await?;
            check_yes_restart(&args, &conn)?;
            let snap = collect_snapshot(&conn, args.method).await?;
            (Some((target, conn)), snap)
        }
    };
    let (input, detected) = tune::advice::inputs(&snap, raw_input(&args))?;
    let storage_source = detected.storage_source();
    let advice = tune::advise(&snap, &input, &thresholds);
    for lack in &advice.lacks {
        eprintln!("note: the snapshot lacks {lack}");
    }
    let rec = advice.recommendation(args.method.into());
    let text = report::tune::advice(
        &advice,
        rec,
        &storage_source,
        args.emit.map(Into::into),
        args.format,
    )?;
    emit_text(&args, &text)?;
    if args.emit.is_some() {
        return Ok(EXIT_OK);
    }
    let changes = rec.to_change();
    let unknown = rec.unknown();
    if !unknown.is_empty() {
        eprintln!(
            "note: this server does not know {}; they are left out of --apply",
            unknown.join(", ")
        );
    }
    compare::validate_changes(&advice.server, &changes, detected.memory_bytes)?;
    let objects = rec.objects.clone();
    if changes.is_empty() && objects.is_empty() {
        eprintln!("nothing to change: the server already has every recommended value");
        return Ok(EXIT_OK);
    }
    let restart = rec.restart();
    let Some((target, conn)) = conn.filter(|_| args.apply) else {
        eprintln!("{}", report::tune::dry_run_note(rec));
        return Ok(EXIT_OK);
    };
    let restart_plan = match (args.restart, restart.is_empty()) {
        (false, _) => None,
        (true, true) => {
            eprintln!("note: no setting to change waits for a restart: not restarting");
            None
        }
        (true, false) => Some(prepare_restart(
            &args,
            &conn,
            detected.data_directory.as_deref(),
            detected.local,
            &restart,
        )?),
    };
    let restarting = restart_plan.is_some();
    let journal = args
        .journal
        .clone()
        .unwrap_or_else(|| super::default_journal("tune"));
    crate::apply::objects::check_privileges(&conn, &objects).await?;
    let object_entries = crate::apply::objects::journal_entries(&conn, &objects).await?;
    let (interrupt, watcher) = super::interrupt_on_ctrl_c();
    let opts = crate::apply::Options {
        interrupt: Some(interrupt),
        progress: Some(Arc::new(super::progress::Bars::stderr())),
        reconnect: Some(Arc::new(target)),
        restart: restart_plan,
        ..crate::apply::Options::default()
    };
    let run = settings::apply_plan(&conn, &changes, &object_entries, &journal, opts).await;
    watcher.abort();
    let run = run?;
    eprintln!(
        "journal written to {} (undo with: pgopt tune --rollback {})",
        journal.display(),
        journal.display()
    );
    let report = run.report;
    let mut code = print_report("applied", &report, restarting);
    code = code.max(print_object_outcomes("applied", &run.objects));
    if run.interrupted {
        eprintln!(
            "interrupted: the journal is complete; pgopt tune --rollback {} takes back what \
             was done",
            journal.display()
        );
        return Ok(super::EXIT_INTERRUPTED);
    }
    if run.restarted {
        for s in &report.settings {
            if s.outcome == settings::Outcome::PendingRestart {
                println!(
                    "applied {} = {}: in effect after the restart",
                    s.name, s.value
                );
            }
        }
    }
    Ok(code)
}

/// `--yes-restart` must name the target exactly.
fn check_yes_restart(args: &TuneArgs, conn: &Conn) -> crate::Result<()> {
    match &args.yes_restart {
        Some(given) if !restart::names_target(given, &conn.host, conn.port) => {
            Err(Error::BadInput(format!(
                "--yes-restart {given} does not name the target, which is {}; nothing was \
                 changed",
                restart::host_port(&conn.host, conn.port)
            )))
        }
        _ => Ok(()),
    }
}

/// Before anything changes: checks that the server can be restarted from here and, unless it
/// is a pgopt embedded cluster, that the restart is confirmed.
fn prepare_restart(
    args: &TuneArgs,
    conn: &Conn,
    data_directory: Option<&str>,
    local: bool,
    settings: &[&str],
) -> crate::Result<Plan> {
    let plan = restart::plan(&conn.host, conn.port, data_directory, local)?;
    let what = format!(
        "the PostgreSQL server at {} (data directory {})",
        plan.target(),
        plan.data_dir.display()
    );
    if plan.embedded {
        eprintln!("note: {what} is a pgopt embedded cluster: it is restarted without asking");
        return Ok(plan);
    }
    if args.yes_restart.is_some() {
        return Ok(plan);
    }
    let not_confirmed = |how: &str| {
        Error::BadInput(format!(
            "restarting {what} for {} needs confirmation: {how}, or pass --yes-restart {}; \
             nothing was changed",
            settings.join(", "),
            plan.target()
        ))
    };
    if !std::io::stdin().is_terminal() {
        return Err(not_confirmed(
            "run on a terminal and type 'restart' when asked",
        ));
    }
    eprint!(
        "{} will wait for a restart.\nrestart {what}? type 'restart' to confirm: ",
        settings.join(", ")
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::BadInput(format!("reading the confirmation: {e}")))?;
    if answer.trim() == "restart" {
        Ok(plan)
    } else {
        Err(not_confirmed("the answer was not 'restart'"))
    }
}

/// A snapshot of the same server: the security review (issue 4, part 4: ssl,
/// password_encryption, pg_hba.conf rules, listen_addresses, superusers, passwords) reads it,
/// and `--method pgopt` takes its evidence from it (with pg_stat_statements).
async fn collect_snapshot(conn: &Conn, method: Method) -> crate::Result<Snapshot> {
    let target = crate::snapshot::TargetInfo {
        host: conn.host.clone(),
        port: conn.port,
        database: conn.database.clone(),
        user: conn.user.clone(),
    };
    let opts = collect::CollectOptions {
        skip_statements: method == Method::Pgtune,
        // Memory and CPUs for the inputs, huge pages and the data disk's free space for
        // --method pgopt (read only when the server is on this machine).
        include_host: true,
        ..collect::CollectOptions::default()
    };
    collect::collect(conn, target, &opts).await
}

fn print_object_outcomes(what: &str, outcomes: &[tune::objects::ObjectOutcome]) -> u8 {
    let mut code = EXIT_OK;
    for o in outcomes {
        let value = o.value.as_deref().unwrap_or("(reset)");
        if o.verified {
            println!("{what} {} {} = {value}: in effect", o.object, o.name);
        } else {
            println!("{what} {} {} = {value}: NOT VERIFIED", o.object, o.name);
            code = EXIT_FAILED;
        }
    }
    code
}

/// Prints each setting's outcome; `restarting`: pgopt restarts the server next.
fn print_report(what: &str, report: &settings::ApplyReport, restarting: bool) -> u8 {
    for s in &report.settings {
        let state = match s.outcome {
            settings::Outcome::Applied => "in effect",
            settings::Outcome::PendingRestart => "waits for a restart",
            settings::Outcome::Unverified => "NOT VERIFIED",
            settings::Outcome::Skipped => "skipped",
            settings::Outcome::NotRun => "NOT RUN",
        };
        match &s.reason {
            Some(why) => println!("{what} {} = {}: {state} ({why})", s.name, s.value),
            None => println!("{what} {} = {}: {state}", s.name, s.value),
        }
    }
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    let restart = report.waiting_for_restart();
    if !restart.is_empty() && !restarting {
        eprintln!(
            "restart the server to bring {} into effect (or run again with --restart)",
            restart.join(", ")
        );
    }
    let unverified = report.unverified();
    if report
        .settings
        .iter()
        .any(|s| s.outcome == settings::Outcome::NotRun)
    {
        EXIT_FAILED
    } else if unverified.is_empty() {
        EXIT_OK
    } else {
        eprintln!(
            "error: {} did not show the expected value after pg_reload_conf(); check the \
             server log and pg_file_settings",
            unverified.join(", ")
        );
        EXIT_FAILED
    }
}

/// The version a journal file says it is, when it is JSON that says one.
fn journal_version(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()?
        .get("journal_version")?
        .as_u64()
}

/// `--rollback JOURNAL`: any journal of the executor (a version 1 tune journal is converted),
/// undone newest first by [`crate::apply::rollback`]; with `--restart`, then restarts the
/// server when a restored setting waits for it.
async fn run_rollback(args: &TuneArgs, path: &Path) -> anyhow::Result<u8> {
    let journal = crate::apply::Journal::load(path).map_err(|e| {
        if path.exists() && journal_version(path).is_none() {
            Error::BadInput(format!("not a pgopt tune journal: {e}"))
        } else {
            e
        }
    })?;
    let mut target = args.target.clone();
    if target.dsn.is_none() && target.discover.is_none() {
        let s = &journal.server;
        target.dsn = Some(format!(
            "host={} port={} dbname={} user={}",
            conninfo_value(&s.host),
            s.port,
            conninfo_value(&s.database),
            conninfo_value(&s.user)
        ));
    }
    let (resolved, conn) = target.connect().await?;
    check_yes_restart(args, &conn)?;
    let (jhost, jport) = (journal.server.host.clone(), journal.server.port);
    if (conn.host.as_str(), conn.port) != (jhost.as_str(), jport) {
        eprintln!(
            "note: the journal was written for {jhost}:{jport}; restoring on {}:{} as asked",
            conn.host, conn.port
        );
    }
    // The settings the rollback takes back.
    let system: Vec<&str> = journal
        .to_undo()
        .into_iter()
        .filter_map(|i| match &journal.steps[i].undo {
            Some(Action::SetSystem { name, .. }) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let plan = if args.restart {
        let server = settings::read_settings(&conn).await?;
        let postmaster: Vec<&str> = system
            .iter()
            .copied()
            .filter(|n| {
                server
                    .iter()
                    .any(|s| s.name == *n && s.context == "postmaster")
            })
            .collect();
        if postmaster.is_empty() {
            eprintln!("note: no setting of the journal needs a restart: not restarting");
            None
        } else {
            let data_directory = settings::data_directory(&conn).await?;
            let local = collect::host::is_local(&conn.host);
            Some(prepare_restart(
                args,
                &conn,
                data_directory.as_deref(),
                local,
                &postmaster,
            )?)
        }
    } else {
        None
    };
    let steps = journal.steps.clone();
    let opts = crate::apply::Options {
        reconnect: Some(Arc::new(resolved.clone())),
        restart: plan,
        progress: Some(Arc::new(super::progress::Bars::stderr())),
        ..crate::apply::Options::default()
    };
    let report = crate::apply::rollback(&conn, journal, Some(path), &opts).await?;
    if report.steps.is_empty() {
        eprintln!("nothing to roll back: every step of the journal is undone or never ran");
    }
    // After a restart the rollback's session is gone: read what is shown on a new one.
    let conn = if report.restarted {
        crate::db::connect(&resolved).await?
    } else {
        conn
    };
    let running = settings::read_settings(&conn).await?;
    let mut pending = Vec::new();
    for s in &report.steps {
        let undo = steps[s.index].undo.as_ref();
        let state = match (s.state, s.pending_restart) {
            (crate::apply::StepState::Undone, false) => "in effect",
            (crate::apply::StepState::Undone, true) => "waits for a restart",
            _ => s.reason.as_deref().unwrap_or("left as it is"),
        };
        match undo {
            Some(Action::SetSystem { name, value }) => {
                // A RESET restores what the configuration files or the built-in default
                // say, which a setting waiting for a restart does not show yet.
                let shown = match value {
                    Some(v) => Some(v.clone()),
                    None => settings::restored_value(&conn, &running, name).await?,
                };
                let shown = shown.unwrap_or_else(|| "(reset)".to_string());
                println!("restored {name} = {shown}: {state}");
                if s.pending_restart {
                    pending.push((name.clone(), value.clone()));
                }
            }
            Some(Action::SetObject {
                object,
                name,
                value,
            }) => {
                let value = value.as_deref().unwrap_or("(reset)");
                println!("restored {} {name} = {value}: {state}", object.label());
            }
            _ => println!("restored: {}: {state}", s.what),
        }
    }
    if report.restarted {
        for (name, value) in &pending {
            let shown = value.clone().or_else(|| {
                running
                    .iter()
                    .find(|s| s.name == *name)
                    .map(|s| s.display_value())
            });
            println!(
                "restored {name} = {}: in effect after the restart",
                shown.unwrap_or_default()
            );
        }
    } else if !pending.is_empty() {
        let names: Vec<&str> = pending.iter().map(|(n, _)| n.as_str()).collect();
        eprintln!(
            "note: {} is restored at the next restart of the server (--rollback with \
             --restart restarts it)",
            names.join(", ")
        );
    }
    Ok(EXIT_OK)
}

/// A conninfo value, quoted.
fn conninfo_value(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn emit_text(args: &TuneArgs, text: &str) -> crate::Result<()> {
    match &args.output {
        Some(path) => {
            crate::files::write_atomically(path, text)?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
