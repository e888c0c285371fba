//! Port discovery: probe a range of ports on one host at once and say what answers.
//!
//! Every port is probed concurrently, each bounded by [`PROBE_TIMEOUT`] (or the target's
//! connect_timeout when shorter). A probe is a full connect with the base target's user,
//! database, password and TLS settings, so a server that answers also reports its version
//! and whether it is in recovery.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::connect::{connect_host, HostFailure};
use super::target::{HostSpec, Target};
use super::tls;
use crate::error::{Error, Result};

/// The most each port may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The widest range probed in one go.
pub const MAX_PORTS: usize = 200;

/// What one port said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// A PostgreSQL server we could log in to.
    Answered {
        /// `major.minor`, e.g. `15.4`.
        version: String,
        /// `server_version_num`, e.g. `150004`.
        version_num: i32,
        /// `pg_is_in_recovery()`: a standby.
        in_recovery: bool,
    },
    /// A PostgreSQL server that refused our credentials (the password).
    AuthFailed,
    /// A PostgreSQL server that refused our role (it does not exist, or pg_hba.conf rejects
    /// it); the server's words.
    NotAuthorized(String),
    /// Nothing listens on the port.
    NoServer,
    /// Something else went wrong (a timeout, TLS, not PostgreSQL, a server error).
    Error(String),
}

/// One port of a discovery and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The port probed.
    pub port: u16,
    /// What the port said.
    pub outcome: ProbeOutcome,
}

/// `15.4` from `150004`, `9.6.24` from `90624`.
pub fn version_string(num: i32) -> String {
    if num >= 100_000 {
        format!("{}.{}", num / 10_000, num % 10_000)
    } else {
        format!("{}.{}.{}", num / 10_000, (num / 100) % 100, num % 100)
    }
}

/// Parses `HOST:FROM-TO` (or `HOST:PORT`); IPv6 hosts in brackets: `[::1]:5432-5440`.
pub fn parse_discover_spec(spec: &str) -> Result<(String, RangeInclusive<u16>)> {
    let bad = |why: &str| {
        Error::BadInput(format!(
            "invalid discovery range \"{spec}\": {why} (write HOST:FROM-TO, e.g. localhost:5432-5440)"
        ))
    };
    let (host, range) = spec
        .trim()
        .rsplit_once(':')
        .ok_or_else(|| bad("no port range"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = |s: &str| -> Result<u16> {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(&format!("\"{}\" is not a port from 1 to 65535", s.trim())))
    };
    let (from, to) = match range.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(range)?;
            (p, p)
        }
    };
    if from > to {
        return Err(bad(&format!(
            "the range starts ({from}) after it ends ({to})"
        )));
    }
    let n = usize::from(to - from) + 1;
    if n > MAX_PORTS {
        return Err(bad(&format!(
            "{n} ports is too many; probe at most {MAX_PORTS} at once"
        )));
    }
    Ok((host.to_string(), from..=to))
}

/// Probes every port of `ports` on `host` concurrently with `base`'s credentials and TLS.
pub async fn discover(host: &str, ports: RangeInclusive<u16>, base: &Target) -> Vec<Probe> {
    let limit = base.connect_timeout.min(PROBE_TIMEOUT);
    let connector = match tls::make_connector(base) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            return ports
                .map(|port| Probe {
                    port,
                    outcome: ProbeOutcome::Error(msg.clone()),
                })
                .collect();
        }
    };
    let probes = ports.map(|port| {
        let spec = HostSpec::new(host, port);
        let mut target = base.clone();
        target.hosts = vec![spec.clone()];
        target.connect_timeout = limit;
        let connector = connector.clone();
        async move {
            let outcome =
                match tokio::time::timeout(limit, connect_host(&target, &spec, connector.as_ref()))
                    .await
                {
                    Err(_) => {
                        ProbeOutcome::Error(format!("no answer within {:.1}s", limit.as_secs_f64()))
                    }
                    Ok(Ok(conn)) => ProbeOutcome::Answered {
                        version: version_string(conn.server_version_num),
                        version_num: conn.server_version_num,
                        in_recovery: conn.in_recovery,
                    },
                    Ok(Err(HostFailure::Auth(Error::NotAuthorized { message, .. }))) => {
                        ProbeOutcome::NotAuthorized(message)
                    }
                    Ok(Err(HostFailure::Auth(_))) => ProbeOutcome::AuthFailed,
                    Ok(Err(HostFailure::Refused(_))) => ProbeOutcome::NoServer,
                    Ok(Err(
                        HostFailure::Server(m)
                        | HostFailure::Other(m)
                        | HostFailure::NoSuchHost(m)
                        | HostFailure::NotPostgres(m),
                    )) => ProbeOutcome::Error(m),
                };
            Probe { port, outcome }
        }
    });
    futures_util::future::join_all(probes).await
}

/// The lowest port that answered as a primary (not in recovery).
pub fn pick_primary(probes: &[Probe]) -> Option<u16> {
    probes
        .iter()
        .filter(|p| {
            matches!(
                p.outcome,
                ProbeOutcome::Answered {
                    in_recovery: false,
                    ..
                }
            )
        })
        .map(|p| p.port)
        .min()
}

/// One line per port that is not silent, for people; says so when nothing answered.
pub fn render_probes(host: &str, probes: &[Probe]) -> String {
    let mut lines = Vec::new();
    for p in probes {
        let what = match &p.outcome {
            ProbeOutcome::NoServer => continue,
            ProbeOutcome::Answered {
                version,
                in_recovery,
                ..
            } => format!(
                "PostgreSQL {version}, {}",
                if *in_recovery { "standby" } else { "primary" }
            ),
            ProbeOutcome::AuthFailed => {
                "PostgreSQL, password authentication failed (check the password)".to_string()
            }
            ProbeOutcome::NotAuthorized(why) => {
                format!("PostgreSQL, refused the user: {why} (check the user name)")
            }
            ProbeOutcome::Error(e) => format!("error: {e}"),
        };
        lines.push(format!("{host}:{}  {what}", p.port));
    }
    if lines.is_empty() {
        let (first, last) = (
            probes.iter().map(|p| p.port).min(),
            probes.iter().map(|p| p.port).max(),
        );
        return match (first, last) {
            (Some(a), Some(b)) => format!("nothing listens on {host}:{a}-{b}"),
            _ => format!("no port of {host} was probed"),
        };
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            parse_discover_spec("localhost:5432-5440").unwrap(),
            ("localhost".to_string(), 5432..=5440)
        );
        assert_eq!(
            parse_discover_spec("[::1]:6000").unwrap(),
            ("::1".to_string(), 6000..=6000)
        );
        for (bad, why) in [
            ("localhost:5440-5432", "starts"),
            ("localhost:1000-2000", "too many"),
            ("localhost", "no port range"),
            (":5432-5433", "no host"),
            ("h:0-5", "not a port"),
            ("h:5432-x", "not a port"),
        ] {
            let e = parse_discover_spec(bad).unwrap_err();
            assert!(e.is_bad_input());
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
        assert!(parse_discover_spec("h:1-200").is_ok());
        assert!(parse_discover_spec("h:1-201").is_err());
    }

    #[test]
    fn picks_the_lowest_primary() {
        let answered = |port, in_recovery| Probe {
            port,
            outcome: ProbeOutcome::Answered {
                version: "15.4".into(),
                version_num: 150004,
                in_recovery,
            },
        };
        let probes = vec![
            Probe {
                port: 1,
                outcome: ProbeOutcome::NoServer,
            },
            answered(3, true),
            Probe {
                port: 2,
                outcome: ProbeOutcome::AuthFailed,
            },
            answered(5, false),
            answered(4, false),
        ];
        assert_eq!(pick_primary(&probes), Some(4));
        assert_eq!(pick_primary(&probes[..3]), None);
        let text = render_probes("h", &probes);
        assert!(text.contains("h:3  PostgreSQL 15.4, standby"), "{text}");
        assert!(!text.contains("h:1 "), "{text}");
        assert_eq!(version_string(90624), "9.6.24");
        assert_eq!(version_string(170002), "17.2");
    }
}
