//! `pgopt drill failover`: the arguments, the progress spinner, the report as a table or
//! JSON. The drill itself is [`crate::drill`].

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::drill::{DrillOptions, Mode, Servers};
use crate::error::Error;

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(subcommand)]
    command: DrillCommand,
}

#[derive(Debug, Subcommand)]
enum DrillCommand {
    /// Start a primary and a synchronous standby (embedded), run N writing and reading
    /// clients through the failover-aware pool, break the primary (--mode), and report when
    /// writes and reads came back, the errors clients saw, and whether every acknowledged
    /// write is on the new primary. Exit code 1 when a write was lost or writes never came back.
    Failover(FailoverArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    /// Stop the primary with an immediate shutdown, promote the standby --promote-after later.
    Kill,
    /// Restart the primary (fast shutdown, start); no promotion.
    Restart,
    /// Cut the network to the primary (a proxy that stops forwarding: a hang, not a reset),
    /// promote the standby --promote-after later.
    Partition,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DrillFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct FailoverArgs {
    /// Your primary's DSN (with --standby): the drill runs on your servers instead of
    /// embedded ones. Without --yes it prints what it would do and changes nothing.
    #[arg(long, requires = "standby")]
    primary: Option<String>,
    /// Your standby's DSN (with --primary): promoted after the kill or cut.
    #[arg(long, requires = "primary")]
    standby: Option<String>,
    /// With --primary: the command that stops your primary at once (--mode kill), run with
    /// sh -c on this machine, e.g. 'ssh db1 sudo -u postgres pg_ctl stop -m immediate -D DIR'.
    #[arg(long, requires = "primary")]
    kill_command: Option<String>,
    /// With --primary: the command that restarts your primary (--mode restart).
    #[arg(long, requires = "primary")]
    restart_command: Option<String>,
    /// With --primary: the command that promotes your standby (default: SELECT
    /// pg_promote(true, 60) on it).
    #[arg(long, requires = "primary")]
    promote_command: Option<String>,
    /// With --primary: run the drill (it breaks your primary). Without it: print the plan.
    #[arg(long, requires = "primary")]
    yes: bool,
    /// Client tasks, each writing and now and then reading.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seconds of load after the kill (restart, cut); the run goes on until writes come back
    /// (at most 60 s after the promotion).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before the kill.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds from the kill (or cut) to the standby's promotion.
    #[arg(long, default_value_t = 2.0)]
    promote_after: f64,
    /// What happens to the primary.
    #[arg(long, value_enum, default_value_t = ModeArg::Kill)]
    mode: ModeArg,
    #[arg(long, value_enum, default_value_t = DrillFormat::Text)]
    format: DrillFormat,
}

fn seconds(flag: &str, v: f64) -> Result<Duration, Error> {
    if !v.is_finite() || !(0.0..=3600.0).contains(&v) {
        return Err(Error::BadInput(format!(
            "{flag} {v}: give seconds from 0 to 3600"
        )));
    }
    Ok(Duration::from_secs_f64(v))
}

pub async fn run(args: DrillArgs) -> anyhow::Result<u8> {
    let DrillCommand::Failover(a) = args.command;
    let opts = DrillOptions {
        mode: match a.mode {
            ModeArg::Kill => Mode::Kill,
            ModeArg::Restart => Mode::Restart,
            ModeArg::Partition => Mode::Partition,
        },
        clients: a.clients,
        warmup: seconds("--warmup", a.warmup)?,
        duration: seconds("--duration", a.duration)?,
        promote_after: seconds("--promote-after", a.promote_after)?,
        ..DrillOptions::default()
    };
    let servers = match (a.primary, a.standby) {
        (Some(primary), Some(standby)) => {
            let env = |k: &str| std::env::var(k).ok();
            let resolve = |flag: &str, dsn: &str| {
                crate::db::Target::resolve(Some(dsn), &env)
                    .map_err(|e| Error::BadInput(format!("{flag}: {e}")))
            };
            Servers::Given {
                primary: resolve("--primary", &primary)?,
                standby: resolve("--standby", &standby)?,
                commands: crate::drill::Commands {
                    kill: a.kill_command,
                    restart: a.restart_command,
                    promote: a.promote_command,
                },
            }
        }
        _ => Servers::Embedded,
    };
    if matches!(servers, Servers::Given { .. }) && !a.yes {
        println!("pgopt drill failover would, on your servers (add --yes to run it):");
        for (i, step) in crate::drill::plan(&opts, &servers)?.iter().enumerate() {
            println!("  {}. {step}", i + 1);
        }
        return Ok(super::EXIT_OK);
    }
    let bars = super::progress::Bars::stderr();
    let report = crate::drill::failover(&opts, &servers, &bars).await?;
    drop(bars);
    match a.format {
        DrillFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        DrillFormat::Text => print!("{}", crate::drill::report::render_table(&report)),
    }
    Ok(if report.passed() {
        super::EXIT_OK
    } else {
        super::EXIT_FINDINGS
    })
}
