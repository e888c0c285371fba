//! What a run is asked to do, checked before anything connects.

use std::time::Duration;

use crate::error::{Error, Result};

/// When the measured part of a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAt {
    /// After this much time.
    Duration(Duration),
    /// After this many transactions (runs of a script) in total, failed ones included.
    Transactions(u64),
}

/// What runs the statements when every client owns its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientPath {
    /// pgopt's lean protocol path (`bench::wire`), where it can be used (one host, no TLS);
    /// tokio-postgres elsewhere.
    #[default]
    Lean,
    /// tokio-postgres always (`--client-path standard`), for comparison.
    Standard,
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Clients, each running one script at a time.
    pub clients: usize,
    /// Connections they share (all opened at start). Equal to `clients`: each client owns one.
    pub connections: usize,
    pub stop: StopAt,
    /// Target total executions per second, schedule-based (pgbench -R): latency counts from
    /// the scheduled start, so a server that falls behind shows it.
    pub rate: Option<f64>,
    /// Run this long first and discard what it measured.
    pub warmup: Duration,
    /// Draw a live progress line on stderr (only when it is a terminal).
    pub progress: bool,
    /// Print a progress line on stderr every this often (`--progress N`, as pgbench -P),
    /// terminal or not.
    pub progress_every: Option<Duration>,
    /// Seed of the parameter generators (client i uses seed + i).
    pub seed: u64,
    /// What runs the statements of clients that own their connection.
    pub client_path: ClientPath,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            clients: 1,
            connections: 1,
            stop: StopAt::Transactions(1000),
            rate: None,
            warmup: Duration::ZERO,
            progress: false,
            progress_every: None,
            seed: 1,
            client_path: ClientPath::default(),
        }
    }
}

impl BenchOptions {
    /// Refuses what cannot run, with the flag to change.
    pub fn validate(&self) -> Result<()> {
        if self.clients == 0 {
            return Err(Error::BadInput("--clients must be at least 1".into()));
        }
        if self.connections == 0 {
            return Err(Error::BadInput("--connections must be at least 1".into()));
        }
        if self.connections > self.clients {
            return Err(Error::BadInput(format!(
                "--connections {} is more than --clients {}: a client uses one connection at a \
                 time, so the extra connections would stay idle; lower --connections or raise --clients",
                self.connections, self.clients
            )));
        }
        match self.stop {
            StopAt::Duration(d) if d.is_zero() => {
                return Err(Error::BadInput("--duration must be above zero".into()))
            }
            StopAt::Transactions(0) => {
                return Err(Error::BadInput("--transactions must be at least 1".into()))
            }
            _ => {}
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::BadInput(format!(
                    "--rate {r}: give a target rate in transactions per second above zero"
                )));
            }
        }
        Ok(())
    }
}

/// Parses a duration: `30s`, `1m`, `1m30s`, `500ms`, `2h`, or a plain number of seconds
/// (`10`, `2.5`). Zero, negative and unparseable values are refused with an example.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let s = text.trim();
    let example = "write it like 30s, 1m, 1m30s, 500ms or 2h";
    if s.starts_with('-') {
        return Err(format!("{text:?} is negative; {example}"));
    }
    if s.is_empty() {
        return Err(format!("empty duration; {example}"));
    }
    if let Ok(secs) = s.parse::<f64>() {
        return positive(Duration::try_from_secs_f64(secs).ok(), text, example);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("{text:?} is not a duration; {example}"));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("{text:?} is not a duration; {example}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hour" | "hours" => 3600.0,
            _ => {
                return Err(format!(
                    "{text:?}: unknown unit {unit:?} (ms, s, m or h); {example}"
                ))
            }
        };
        let part = Duration::try_from_secs_f64(value * scale)
            .map_err(|_| format!("{text:?} is too long; {example}"))?;
        total = total.saturating_add(part);
    }
    positive(Some(total), text, example)
}

fn positive(
    d: Option<Duration>,
    text: &str,
    example: &str,
) -> std::result::Result<Duration, String> {
    match d {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(format!("{text:?} is zero; {example}")),
        None => Err(format!("{text:?} is not a duration; {example}")),
    }
}

/// Parses a count that must be at least 1 (for the command line).
pub fn parse_positive(text: &str) -> std::result::Result<usize, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n as usize),
        Ok(n) => Err(format!("must be at least 1 (got {n})")),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_usual_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2.5").unwrap(), Duration::from_millis(2500));
    }

    #[test]
    fn zero_negative_and_garbage_durations_are_refused_with_an_example() {
        for bad in ["0", "0s", "-5s", "-1", "abc", "10x", "", "s", "1.2.3s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("30s"), "{bad}: {e}");
        }
    }

    #[test]
    fn options_that_cannot_run_are_refused() {
        let ok = BenchOptions {
            clients: 4,
            connections: 2,
            ..Default::default()
        };
        ok.validate().unwrap();
        let e = |o: BenchOptions| o.validate().unwrap_err().to_string();
        assert!(e(BenchOptions {
            clients: 0,
            ..ok.clone()
        })
        .contains("--clients"));
        assert!(e(BenchOptions {
            connections: 0,
            ..ok.clone()
        })
        .contains("--connections"));
        assert!(e(BenchOptions {
            connections: 5,
            ..ok.clone()
        })
        .contains("more than --clients"));
        assert!(e(BenchOptions {
            rate: Some(-1.0),
            ..ok.clone()
        })
        .contains("--rate"));
        assert!(e(BenchOptions {
            stop: StopAt::Transactions(0),
            ..ok
        })
        .contains("--transactions"));
    }
}
