//! Connecting. (Placeholder: one host, no TLS; the full version lands next.)

use tokio_postgres::NoTls;

use super::conn::{Conn, ConnParts};
use super::target::Target;
use crate::error::{Error, Result};

pub async fn connect(target: &Target) -> Result<Conn> {
    let (host, port) = target
        .hosts
        .first()
        .cloned()
        .unwrap_or(("localhost".into(), 5432));
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&host)
        .port(port)
        .dbname(&target.dbname)
        .user(&target.user);
    cfg.application_name("pgopt");
    if let Some(p) = &target.password {
        cfg.password(p.expose());
    }
    let fut = cfg.connect(NoTls);
    let (client, connection) = tokio::time::timeout(target.connect_timeout, fut)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("connecting to {host}:{port}"),
            after: target.connect_timeout,
            next_step: None,
        })?
        .map_err(|e| Error::Connect(format!("cannot connect to {host}:{port}: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let ms = target.statement_timeout.as_millis().to_string();
    client
        .execute("SELECT set_config('statement_timeout', $1, false)", &[&ms])
        .await
        .map_err(|e| Error::query("setting statement_timeout", e))?;
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int, pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'",
            &[],
        )
        .await
        .map_err(|e| Error::query("checking the server role", e))?;
    Ok(Conn::new(ConnParts {
        client,
        host,
        port,
        database: target.dbname.clone(),
        user: target.user.clone(),
        server_version_num: row.get(0),
        in_recovery: row.get(1),
        transaction_read_only: row.get(2),
        statement_timeout: target.statement_timeout,
        tls: None,
    }))
}
