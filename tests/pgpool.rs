//! The failover-aware pool (`pgopt_pool::PgPool`) against embedded clusters.

use std::time::Duration;

use pgopt::db::{SystemDefaults, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt_pool::{PgPool, PgPoolOptions, Retry};

/// Resolves a DSN with no PG* variables and no password file, so tests are hermetic.
fn target(dsn: &str) -> Target {
    let defaults = SystemDefaults {
        socket_dir: None,
        os_user: Some("postgres".into()),
        home: None,
    };
    Target::resolve_with(Some(dsn), &|_| None, &defaults).unwrap()
}

/// A read-write pool over a primary and its standby finds the primary, and after the
/// primary dies and the standby is promoted, a retried read reaches the new primary.
#[tokio::test]
async fn a_write_pool_follows_a_promotion_and_a_retried_read_reaches_the_new_primary() {
    let mut primary = Cluster::start(ClusterOptions::default()).unwrap();
    let standby = primary.standby().unwrap();
    let dsn = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres dbname=postgres \
         target_session_attrs=read-write connect_timeout=2",
        standby.port(),
        primary.port()
    );
    let pool = PgPool::connect(
        &target(&dsn),
        PgPoolOptions {
            min_size: 2,
            max_size: 4,
            failover_wait: Duration::from_secs(30),
            ..PgPoolOptions::default()
        },
    )
    .await
    .unwrap();
    let port = |pool: PgPool| async move {
        pool.op("port")
            .run(Retry::Once, |c| {
                Box::pin(async move {
                    let row = c
                        .query_one("port", "SELECT current_setting('port')::int", &[])
                        .await?;
                    Ok(row.get::<_, i32>(0))
                })
            })
            .await
    };
    assert_eq!(port(pool.clone()).await.unwrap(), primary.port() as i32);

    primary.kill();
    standby.promote().unwrap();
    assert_eq!(port(pool.clone()).await.unwrap(), standby.port() as i32);
    assert!(pool.stats().failovers >= 1, "{:?}", pool.stats());
    let ops = pool.timers().snapshot();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].name, "port");
    assert_eq!(ops[0].count, 2);
}
