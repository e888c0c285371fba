//! An HTTP service on the ACGS governance database, through pgopt's failover-aware pool
//! and its operation timers. Users copy it; the failover drill drives it.
//!
//! ```text
//! pgopt governance deploy && pgopt governance seed --scale 0.01   # against the same DSN
//! cargo run --release --example governance_service -- \
//!     --dsn 'host=db1,db2 dbname=acgs user=acgs target_session_attrs=read-write' \
//!     --listen 127.0.0.1:8080
//! curl -s -XPOST localhost:8080/auth/email -d '{"email":"user00001@acgs.example"}'
//! curl -s localhost:8080/metrics
//! ```

mod service;

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use pgopt_pool::{PgPool, PgPoolOptions, Target};

/// The governance service: the ACGS operations over HTTP, with /metrics and /healthz.
#[derive(Parser)]
struct Args {
    /// The database: a conninfo string or a postgres:// URI (PG* variables and ~/.pgpass
    /// fill in the rest, as with libpq).
    #[arg(long, env = "DATABASE_URL")]
    dsn: String,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Connections in the pool at most.
    #[arg(long, default_value_t = 10)]
    pool_size: usize,
    /// Operations at least this long (milliseconds) are logged with their statement.
    #[arg(long, default_value_t = 200)]
    slow_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let target = Target::parse(&args.dsn).context("reading --dsn")?;
    let pool = PgPool::connect(
        &target,
        PgPoolOptions {
            max_size: args.pool_size,
            application_name: "governance-service".into(),
            ..PgPoolOptions::default()
        },
    )
    .await
    .context("opening the pool")?;
    pool.timers()
        .set_slow_threshold(Duration::from_millis(args.slow_ms));

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!("governance service on http://{}", args.listen);
    axum::serve(listener, service::router(pool.clone()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    pool.close();
    Ok(())
}
