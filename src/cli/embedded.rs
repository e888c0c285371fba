//! `pgopt embedded start|stop|status`: one local cluster kept running for interactive use.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::embedded::Detached;

#[derive(Debug, Args)]
pub struct EmbeddedArgs {
    #[command(subcommand)]
    action: Action,
    /// Data directory of the cluster (default: a pgopt-embedded directory under $TMPDIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Create the cluster if needed, start it and print its connection string.
    Start,
    /// Stop the cluster (fast shutdown); its data stays.
    Stop,
    /// Say whether it runs, and where.
    Status,
    /// Stop the cluster and delete its data directory.
    Remove,
}

pub fn run(args: EmbeddedArgs) -> anyhow::Result<u8> {
    let cluster = Detached::new(args.data_dir)?;
    match args.action {
        Action::Start => {
            let st = cluster.start()?;
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
        }
        Action::Remove => {
            cluster.remove()?;
            println!("removed {}", cluster.data_dir.display());
        }
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
        _ => println!("not running ({})", cluster.data_dir.display()),
    }
}
