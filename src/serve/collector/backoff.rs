//! How long a failing target waits before the next try, and how its errors are shown.
//! Pure.

use std::time::Duration;

/// The longest wait between tries of a failing target (unless its interval is longer).
pub const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// ... and never more than this many sample intervals.
pub const MAX_BACKOFF_INTERVALS: u32 = 30;

/// The wait after `failures` (>= 1) failures in a row: the interval doubled per failure,
/// capped at [`MAX_BACKOFF`] or 30 intervals (whichever is smaller, never below one
/// interval), then jittered down by up to half (`jitter` in [0, 1)) so that targets that
/// failed together do not retry together.
pub fn backoff(interval: Duration, failures: u32, jitter: f64) -> Duration {
    let cap = MAX_BACKOFF
        .min(interval.saturating_mul(MAX_BACKOFF_INTERVALS))
        .max(interval);
    let doublings = failures.saturating_sub(1).min(31);
    let full = interval.saturating_mul(1u32 << doublings).min(cap);
    let jitter = jitter.clamp(0.0, 1.0);
    full.mul_f64(1.0 - 0.5 * jitter)
}

/// `message` with every secret (a password, the whole conninfo) replaced by `***`.
pub fn redact(message: &str, secrets: &[&str]) -> String {
    let mut out = message.to_string();
    for s in secrets {
        // Very short secrets would blank out ordinary words; they are not printed by the
        // connect errors anyway (those show user@host:port/db only).
        if s.len() >= 4 {
            out = out.replace(s, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps_at_thirty_intervals_or_five_minutes() {
        let i = Duration::from_secs(1);
        assert_eq!(backoff(i, 1, 0.0), i);
        assert_eq!(backoff(i, 2, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(i, 4, 0.0), Duration::from_secs(8));
        assert_eq!(backoff(i, 10, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(i, 1000, 0.0), Duration::from_secs(30));
        let ten = Duration::from_secs(10);
        assert_eq!(backoff(ten, 1000, 0.0), MAX_BACKOFF);
        let hour = Duration::from_secs(3600);
        assert_eq!(backoff(hour, 5, 0.0), hour, "never below one interval");
    }

    #[test]
    fn backoff_jitter_shortens_by_at_most_half() {
        let i = Duration::from_secs(10);
        assert_eq!(backoff(i, 3, 0.999_999).as_secs(), 20);
        assert_eq!(backoff(i, 3, 0.5), Duration::from_secs(30));
        assert_eq!(backoff(i, 3, 7.0), Duration::from_secs(20), "clamped");
    }

    #[test]
    fn redact_hides_the_password_and_the_conninfo() {
        let dsn = "postgresql://app:s3cret-pw@db1/acgs";
        let msg = format!("cannot parse {dsn}; password s3cret-pw refused");
        let out = redact(&msg, &[dsn, "s3cret-pw"]);
        assert!(!out.contains("s3cret-pw"), "{out}");
        assert_eq!(out, "cannot parse ***; password *** refused");
        assert_eq!(redact("host db1 is down", &["", "x"]), "host db1 is down");
    }
}
