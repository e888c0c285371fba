//! The connection pool (`pgopt::db::pool`) against a real embedded cluster: a bounded wait
//! when every connection is in use, a connection killed from another session dropped and
//! replaced, and the health check of a connection that sat idle.

use std::time::Duration;

use pgopt::db::{connect, Broken, ConnPool, PoolError, PoolOptions, Target};
use pgopt::embedded::{Cluster, ClusterOptions};

mod hermetic;
use hermetic::target;

fn start() -> Cluster {
    Cluster::start(ClusterOptions::default()).expect("starting an embedded cluster")
}

async fn pid(conn: &pgopt::db::Conn) -> i32 {
    conn.query_one("pid", "SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// Terminates backend `pid` from a session of its own and waits until it is gone.
async fn terminate(t: &Target, pid: i32) {
    let other = connect(t).await.unwrap();
    let done: bool = other
        .query_one(
            "terminate",
            "SELECT pg_terminate_backend($1, 10000)",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    assert!(done, "backend {pid} terminated");
}

#[tokio::test]
async fn an_exhausted_pool_bounds_the_checkout_wait_and_says_the_pool_is_exhausted() {
    let c = start();
    let t = target(&c.dsn("postgres"));
    let wait = Duration::from_millis(300);
    let pool = ConnPool::connect(
        &t,
        2,
        PoolOptions {
            checkout_wait: wait,
            ..PoolOptions::default()
        },
    )
    .await
    .unwrap();
    let a = pool.checkout().await.unwrap();
    let b = pool.checkout().await.unwrap();
    assert_ne!(pid(&a).await, pid(&b).await, "two connections");
    let err = pool.checkout().await.err().expect("all in use");
    match &err {
        PoolError::Exhausted { waited, size } => {
            assert_eq!(*size, 2);
            assert!(*waited >= wait, "waited the whole bound: {waited:?}");
        }
        other => panic!("expected exhausted, got {other}"),
    }
    let text = pgopt::Error::from(err).to_string();
    assert!(
        text.contains("the pool is exhausted: all 2 in use") && text.contains("timed out after"),
        "{text}"
    );
    drop(a);
    let again = pool
        .checkout()
        .await
        .expect("a connection given back is free again");
    assert_eq!(
        again
            .query_one("q", "SELECT 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
    drop(b);
}

#[tokio::test]
async fn a_connection_terminated_from_another_session_is_dropped_and_replaced() {
    let c = start();
    let t = target(&c.dsn("postgres"));
    // Long idle bound: no health check, the classification of the error alone decides.
    let pool = ConnPool::connect(
        &t,
        1,
        PoolOptions {
            check_after_idle: Duration::from_secs(3600),
            ..PoolOptions::default()
        },
    )
    .await
    .unwrap();
    let mut lease = pool.checkout().await.unwrap();
    let old = pid(&lease).await;
    terminate(&t, old).await;
    let err = lease
        .client()
        .simple_query("SELECT 1")
        .await
        .expect_err("the backend is gone");
    let why = Broken::from_error(&err).expect("classified as broken");
    assert!(why.connection_gone(), "{why:?}: {err}");
    lease.note_error(&err);
    assert_eq!(lease.is_broken(), Some(why));
    drop(lease);

    let lease = pool
        .checkout()
        .await
        .expect("a new connection in its place");
    let new = pid(&lease).await;
    assert_ne!(new, old, "not the terminated backend");
    assert_eq!(pool.replaced(), 1);
    assert_eq!(pool.size(), 1);
}

#[tokio::test]
async fn an_idle_connection_is_health_checked_on_checkout_and_replaced_when_dead() {
    let c = start();
    let t = target(&c.dsn("postgres"));
    // Every checkout counts as after idle: each is checked.
    let pool = ConnPool::connect(
        &t,
        1,
        PoolOptions {
            check_after_idle: Duration::ZERO,
            ..PoolOptions::default()
        },
    )
    .await
    .unwrap();
    let first = {
        let lease = pool.checkout().await.unwrap();
        pid(&lease).await
    };
    {
        let lease = pool.checkout().await.unwrap();
        assert_eq!(
            pid(&lease).await,
            first,
            "a healthy idle connection is kept"
        );
    }
    assert_eq!(pool.replaced(), 0);

    // Killed while idle in the pool: nobody used it, the checkout finds out.
    terminate(&t, first).await;
    let lease = pool
        .checkout()
        .await
        .expect("a checked, working connection");
    assert_ne!(pid(&lease).await, first);
    assert_eq!(pool.replaced(), 1);
}

#[tokio::test]
async fn a_pool_whose_server_is_gone_gives_its_places_up_and_closes() {
    let mut c = start();
    let t = target(&c.dsn("postgres"));
    let pool = ConnPool::connect(
        &t,
        1,
        PoolOptions {
            check_after_idle: Duration::ZERO,
            ..PoolOptions::default()
        },
    )
    .await
    .unwrap();
    c.kill();
    match pool.checkout().await {
        Err(PoolError::Reconnect(e)) => assert!(!e.to_string().is_empty()),
        Err(other) => panic!("expected a failed reconnect, got {other}"),
        Ok(_) => panic!("the server is gone"),
    }
    assert_eq!(pool.size(), 0);
    assert!(matches!(pool.checkout().await, Err(PoolError::Closed)));
}
