//! `pgopt embedded start|stop|status|remove|clean`: one local cluster kept running for
//! interactive use, and the clean-up of what throw-away clusters leave in memory.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::embedded::Detached;

/// `pgopt embedded status` when the cluster exists but does not run (pg_ctl status's code).
pub const EXIT_STOPPED: u8 = 3;
/// `pgopt embedded status` when there is no cluster in the data directory (pg_ctl's code).
pub const EXIT_MISSING: u8 = 4;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes of `status` (as pg_ctl status): 0 running, 3 stopped, \
                        4 no cluster in the data directory.\n\
                        Throw-away clusters (`pgopt demo`, the tests) are copied from a template \
                        kept in /dev/shm (memory; PGOPT_TMPDIR moves it); `pgopt embedded clean` \
                        removes it."
)]
pub struct EmbeddedArgs {
    #[command(subcommand)]
    action: Action,
    /// Data directory of the cluster [default: $TMPDIR/pgopt-embedded-<uid>].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Create the cluster if needed, start it and print its connection string. It keeps its
    /// port across stop and start.
    Start {
        /// Port to listen on [default: the port it had before, else a free one].
        #[arg(long, value_name = "PORT")]
        port: Option<u16>,
    },
    /// Stop the cluster (fast shutdown); its data stays.
    Stop,
    /// Say whether it runs, and where (exit 0 running, 3 stopped, 4 missing).
    Status,
    /// Stop the cluster and delete its data directory.
    Remove,
    /// Delete the template that throw-away clusters are copied from (in /dev/shm, or
    /// PGOPT_TMPDIR) and directories killed runs left there. Running clusters are not
    /// touched; the next one rebuilds the template (about a second).
    Clean,
}

pub fn run(args: EmbeddedArgs) -> anyhow::Result<u8> {
    if let Action::Clean = args.action {
        let removed = crate::embedded::clean()?;
        if removed.is_empty() {
            println!(
                "nothing to remove in {}",
                crate::embedded::scratch_root().display()
            );
        }
        for path in removed {
            println!("removed {}", path.display());
        }
        return Ok(super::EXIT_OK);
    }
    let cluster = Detached::new(args.data_dir)?;
    match args.action {
        Action::Start { port } => {
            let st = cluster.start_on(port)?;
            print_status(&cluster, &st);
        }
        Action::Stop => {
            if cluster.stop()? {
                println!("stopped ({})", cluster.data_dir.display());
            } else {
                println!("not running ({})", cluster.data_dir.display());
            }
        }
        Action::Status => {
            let st = cluster.status();
            print_status(&cluster, &st);
            if !st.running {
                return Ok(if cluster.data_dir.join("PG_VERSION").is_file() {
                    EXIT_STOPPED
                } else {
                    EXIT_MISSING
                });
            }
        }
        Action::Remove => {
            cluster.remove()?;
            println!("removed {}", cluster.data_dir.display());
        }
        Action::Clean => unreachable!("handled above"),
    }
    Ok(super::EXIT_OK)
}

fn print_status(cluster: &Detached, st: &crate::embedded::DetachedStatus) {
    match (st.running, st.port) {
        (true, Some(port)) => {
            println!(
                "running: pid {} data {}",
                st.pid.unwrap_or(0),
                cluster.data_dir.display()
            );
            println!(
                "postgresql://{}@127.0.0.1:{port}/postgres",
                crate::embedded::SUPERUSER
            );
        }
        _ if cluster.data_dir.join("PG_VERSION").is_file() => {
            let port = cluster
                .saved_port()
                .map(|p| format!(", port {p} when started"))
                .unwrap_or_default();
            println!(
                "stopped ({}{port}); start it with `pgopt embedded start`",
                cluster.data_dir.display()
            );
        }
        _ => println!(
            "no cluster in {}; create one with `pgopt embedded start`",
            cluster.data_dir.display()
        ),
    }
}
