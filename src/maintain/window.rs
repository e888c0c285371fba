//! Maintenance windows: when maintenance may run, from the `[maintenance]` section of the
//! configuration file (`pgopt.toml`, which the daemon will read too). Pure: parsing,
//! validating and finding the next window from a given `now`; reading the file is the CLI's.
//!
//! ```toml
//! [[maintenance.window]]
//! cron = "0 2 * * 6"      # minute hour day-of-month month day-of-week (5 fields)
//! duration = "3h"         # how long it stays open: 90m, 3h, 1h30m, 1d
//! timezone = "UTC"        # an IANA zone (Europe/Paris); UTC when left out
//! ```
//!
//! Every error names the line of the file it is about.

use std::str::FromStr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::Deserialize;
use toml::Spanned;

/// The longest a window may stay open.
const MAX_WINDOW: Duration = Duration::days(7);

/// One window: opens at each time `cron` matches in `timezone`, for `duration`.
#[derive(Debug, Clone)]
pub struct Window {
    /// The pattern as written.
    pub cron_text: String,
    pub cron: Cron,
    pub duration: Duration,
    pub timezone: Tz,
    /// The line of `cron = ...` in the file, for messages.
    pub line: usize,
}

/// The windows of a configuration file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub windows: Vec<Window>,
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    maintenance: Option<RawMaintenance>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaintenance {
    #[serde(default)]
    window: Vec<Spanned<RawWindow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    cron: Spanned<String>,
    duration: Spanned<String>,
    #[serde(default)]
    timezone: Option<Spanned<String>>,
}

/// The 1-based line of byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses and validates `text` (the file's contents); `origin` names it in errors
/// (`pgopt.toml`). A file without a `[maintenance]` section has no windows.
pub fn parse(text: &str, origin: &str) -> Result<Config, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(" line {}", line_of(text, s.start)))
            .unwrap_or_default();
        format!("{origin}{at}: {}", e.message())
    })?;
    let mut windows = Vec::new();
    let Some(m) = raw.maintenance else {
        return Ok(Config { windows });
    };
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    for w in m.window {
        let w = w.into_inner();
        let line = line_of(text, w.cron.span().start);
        let at =
            |span: std::ops::Range<usize>| format!("{origin} line {}", line_of(text, span.start));
        let cron_text = w.cron.get_ref().trim().to_string();
        if cron_text.split_whitespace().count() != 5 {
            return Err(format!(
                "{}: cron {cron_text:?} must have 5 fields (minute hour day-of-month month \
                 day-of-week), e.g. \"0 2 * * 6\" for Saturdays at 02:00",
                at(w.cron.span())
            ));
        }
        let cron = parser
            .parse(&cron_text)
            .map_err(|e| format!("{}: cron {cron_text:?}: {e}", at(w.cron.span())))?;
        // A pattern that never matches (30 February) is refused now, not when it is used.
        let reference = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        if cron.find_next_occurrence(&reference, false).is_err() {
            return Err(format!(
                "{}: cron {cron_text:?} never matches a date",
                at(w.cron.span())
            ));
        }
        let duration = parse_duration(w.duration.get_ref())
            .map_err(|e| format!("{}: duration: {e}", at(w.duration.span())))?;
        if duration > MAX_WINDOW {
            return Err(format!(
                "{}: duration {:?} is longer than a window may be (7 days)",
                at(w.duration.span()),
                w.duration.get_ref()
            ));
        }
        let timezone = match &w.timezone {
            None => Tz::UTC,
            Some(tz) => Tz::from_str(tz.get_ref().trim()).map_err(|_| {
                format!(
                    "{}: timezone {:?} is not an IANA time zone name (UTC, Europe/Paris, \
                     America/New_York)",
                    at(tz.span()),
                    tz.get_ref()
                )
            })?,
        };
        windows.push(Window {
            cron_text,
            cron,
            duration,
            timezone,
            line,
        });
    }
    Ok(Config { windows })
}

/// `3h`, `90m`, `1h30m`, `45s`, `2d`: a positive duration in days, hours, minutes and
/// seconds (a plain number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("{text:?} is not a duration: write e.g. 90m, 3h, 1h30m or 1d");
    if t.is_empty() {
        return Err(bad());
    }
    // Beyond chrono's range (about 292 million years) is refused, never a panic.
    let too_long = || format!("{text:?} is too long a duration: write e.g. 90m, 3h, 1h30m or 1d");
    if let Ok(secs) = t.parse::<u64>() {
        let secs = i64::try_from(secs).map_err(|_| too_long())?;
        return positive(Duration::try_seconds(secs).ok_or_else(too_long)?).ok_or_else(bad);
    }
    let mut total = Duration::zero();
    let mut number = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let part = match c {
            'd' => Duration::try_days(n),
            'h' => Duration::try_hours(n),
            'm' => Duration::try_minutes(n),
            's' => Duration::try_seconds(n),
            _ => return Err(bad()),
        };
        total = part
            .and_then(|p| total.checked_add(&p))
            .ok_or_else(too_long)?;
    }
    if !number.is_empty() {
        return Err(bad());
    }
    positive(total).ok_or_else(bad)
}

fn positive(d: Duration) -> Option<Duration> {
    (d > Duration::zero()).then_some(d)
}

/// When a window opens and closes.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    /// Index into [`Config::windows`].
    pub window: usize,
    pub opens: DateTime<Utc>,
    pub closes: DateTime<Utc>,
    /// `now` is inside it.
    pub open_now: bool,
}

/// The window open at `now` (the one closing last, when several are), else the one opening
/// next. None without windows.
pub fn next_window(config: &Config, now: DateTime<Utc>) -> Option<Opening> {
    let mut open: Option<Opening> = None;
    let mut next: Option<Opening> = None;
    for (i, w) in config.windows.iter().enumerate() {
        let local = now.with_timezone(&w.timezone);
        // The latest start at or before now that could still be open.
        if let Ok(prev) = w.cron.find_previous_occurrence(&local, true) {
            let opens = prev.with_timezone(&Utc);
            let closes = opens + w.duration;
            if opens <= now && now < closes && open.as_ref().is_none_or(|o| closes > o.closes) {
                open = Some(Opening {
                    window: i,
                    opens,
                    closes,
                    open_now: true,
                });
            }
        }
        if let Ok(n) = w.cron.find_next_occurrence(&local, false) {
            let opens = n.with_timezone(&Utc);
            if next.as_ref().is_none_or(|o| opens < o.opens) {
                next = Some(Opening {
                    window: i,
                    opens,
                    closes: opens + w.duration,
                    open_now: false,
                });
            }
        }
    }
    open.or(next)
}

/// One line for people: `open now (since ...), closes at ...` or `next opens ..., closes ...`.
pub fn describe(config: &Config, o: &Opening) -> String {
    let w = &config.windows[o.window];
    let fmt = |t: DateTime<Utc>| {
        let local = t.with_timezone(&w.timezone);
        if w.timezone == Tz::UTC {
            local.format("%a %Y-%m-%d %H:%M UTC").to_string()
        } else {
            format!(
                "{} ({})",
                local.format("%a %Y-%m-%d %H:%M %Z"),
                t.format("%H:%M UTC")
            )
        }
    };
    let which = format!(
        "window \"{}\" for {} ({}, line {})",
        w.cron_text,
        duration_text(w.duration),
        w.timezone.name(),
        w.line
    );
    if o.open_now {
        format!(
            "maintenance window open now (since {}), closes at {}: {which}",
            fmt(o.opens),
            fmt(o.closes)
        )
    } else {
        format!(
            "next maintenance window opens {}, closes {}: {which}",
            fmt(o.opens),
            fmt(o.closes)
        )
    }
}

/// `3h`, `1h30m`, `45m`, `2d`.
pub fn duration_text(d: Duration) -> String {
    let mut s = d.num_seconds();
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    const SATURDAY_2AM: &str = "# pgopt\n[maintenance]\n\n[[maintenance.window]]\ncron = \"0 2 * * 6\"\nduration = \"3h\"\ntimezone = \"UTC\"\n";

    #[test]
    fn durations_parse_units_and_refuse_garbage() {
        assert_eq!(parse_duration("3h").unwrap(), Duration::hours(3));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_duration("2d").unwrap(), Duration::days(2));
        assert_eq!(parse_duration("45").unwrap(), Duration::seconds(45));
        assert!(parse_duration("0m").is_err());
        assert!(parse_duration("3 hours").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(duration_text(Duration::minutes(90)), "1h30m");
    }

    #[test]
    fn next_window_from_a_fixed_now() {
        let c = parse(SATURDAY_2AM, "pgopt.toml").unwrap();
        assert_eq!(c.windows.len(), 1);
        assert_eq!(c.windows[0].line, 5);
        // Thursday 2026-12-03 12:00 UTC: the next Saturday 02:00.
        let o = next_window(&c, at(2026, 12, 3, 12, 0)).unwrap();
        assert!(!o.open_now);
        assert_eq!(o.opens, at(2026, 12, 5, 2, 0));
        assert_eq!(o.closes, at(2026, 12, 5, 5, 0));
        let text = describe(&c, &o);
        assert!(
            text.contains("next maintenance window opens Sat 2026-12-05 02:00 UTC"),
            "{text}"
        );
    }

    #[test]
    fn inside_a_window_it_is_open_now_until_it_closes() {
        let c = parse(SATURDAY_2AM, "pgopt.toml").unwrap();
        let o = next_window(&c, at(2026, 12, 5, 3, 30)).unwrap();
        assert!(o.open_now);
        assert_eq!(o.opens, at(2026, 12, 5, 2, 0));
        assert_eq!(o.closes, at(2026, 12, 5, 5, 0));
        assert!(describe(&c, &o).starts_with("maintenance window open now"));
        // At the closing minute it is closed: the next Saturday.
        let o = next_window(&c, at(2026, 12, 5, 5, 0)).unwrap();
        assert!(!o.open_now);
        assert_eq!(o.opens, at(2026, 12, 12, 2, 0));
        // At the opening minute it is open.
        assert!(next_window(&c, at(2026, 12, 5, 2, 0)).unwrap().open_now);
    }

    #[test]
    fn a_window_in_a_named_zone_opens_at_its_local_time() {
        let text = "[[maintenance.window]]\ncron = \"30 1 * * *\"\nduration = \"1h\"\ntimezone = \"Europe/Paris\"\n";
        let c = parse(text, "pgopt.toml").unwrap();
        // 1:30 in Paris in winter is 00:30 UTC.
        let o = next_window(&c, at(2026, 12, 3, 12, 0)).unwrap();
        assert_eq!(o.opens, at(2026, 12, 4, 0, 30));
    }

    #[test]
    fn the_earliest_of_several_windows_comes_next() {
        let text = "[[maintenance.window]]\ncron = \"0 2 * * 6\"\nduration = \"3h\"\n\n[[maintenance.window]]\ncron = \"0 23 * * *\"\nduration = \"30m\"\n";
        let c = parse(text, "pgopt.toml").unwrap();
        let o = next_window(&c, at(2026, 12, 3, 12, 0)).unwrap();
        assert_eq!(o.window, 1);
        assert_eq!(o.opens, at(2026, 12, 3, 23, 0));
    }

    #[test]
    fn errors_name_the_line() {
        let bad_cron = "[[maintenance.window]]\nduration = \"3h\"\ncron = \"0 2 * *\"\n";
        let e = parse(bad_cron, "pgopt.toml").unwrap_err();
        assert!(e.starts_with("pgopt.toml line 3:"), "{e}");
        assert!(e.contains("5 fields"), "{e}");
        let bad_field = "[[maintenance.window]]\ncron = \"61 2 * * *\"\nduration = \"3h\"\n";
        let e = parse(bad_field, "pgopt.toml").unwrap_err();
        assert!(e.starts_with("pgopt.toml line 2:"), "{e}");
        let bad_duration = "[[maintenance.window]]\ncron = \"0 2 * * *\"\nduration = \"3 hours\"\n";
        let e = parse(bad_duration, "pgopt.toml").unwrap_err();
        assert!(e.starts_with("pgopt.toml line 3: duration"), "{e}");
        let bad_zone =
            "[[maintenance.window]]\ncron = \"0 2 * * *\"\nduration = \"3h\"\ntimezone = \"Mars/Olympus\"\n";
        let e = parse(bad_zone, "pgopt.toml").unwrap_err();
        assert!(e.starts_with("pgopt.toml line 4: timezone"), "{e}");
        let typo = "[[maintenance.window]]\ncron = \"0 2 * * *\"\nduraton = \"3h\"\n";
        let e = parse(typo, "pgopt.toml").unwrap_err();
        assert!(e.contains("line "), "{e}");
        let never = "[[maintenance.window]]\ncron = \"0 2 30 2 *\"\nduration = \"3h\"\n";
        let e = parse(never, "pgopt.toml").unwrap_err();
        assert!(e.contains("never matches"), "{e}");
        let syntax = "[[maintenance.window]\ncron = 1\n";
        let e = parse(syntax, "pgopt.toml").unwrap_err();
        assert!(e.starts_with("pgopt.toml line 1"), "{e}");
    }

    #[test]
    fn a_file_without_windows_has_none_and_other_sections_are_left_alone() {
        let c = parse("[daemon]\ninterval = \"1h\"\n", "pgopt.toml").unwrap();
        assert!(c.windows.is_empty());
        assert!(next_window(&c, at(2026, 1, 1, 0, 0)).is_none());
    }

    #[test]
    fn a_duration_beyond_chronos_range_is_refused_not_a_panic() {
        for text in [
            "9999999999999999999",
            "9223372036854775807",
            "106751991167301d",
            "9223372036854775807s",
            "100000000000000d100000000000000d",
        ] {
            let e = parse_duration(text).expect_err(text);
            assert!(e.contains("too long"), "{text}: {e}");
        }
    }

    mod props {
        use proptest::prelude::*;

        use super::super::parse_duration;
        use crate::serve::config::human;

        proptest! {
            #[test]
            fn a_duration_rendered_for_people_parses_back(secs in 1u64..(1 << 40)) {
                let d = std::time::Duration::from_secs(secs);
                let text = human(d);
                prop_assert_eq!(parse_duration(&text).unwrap().to_std().unwrap(), d, "{}", text);
            }

            #[test]
            fn rendering_and_parsing_durations_keeps_their_order(a in 1u64..(1 << 40), b in 1u64..(1 << 40)) {
                let back = |s: u64| parse_duration(&human(std::time::Duration::from_secs(s))).unwrap();
                prop_assert_eq!(a.cmp(&b), back(a).cmp(&back(b)));
            }

            #[test]
            fn the_parts_of_a_duration_add_up(d in 0i64..1000, h in 0i64..1000, m in 0i64..1000, s in 1i64..1000) {
                let total = parse_duration(&format!("{d}d{h}h {m}m{s}s")).unwrap();
                prop_assert_eq!(total.num_seconds(), ((d * 24 + h) * 60 + m) * 60 + s);
            }
        }
    }
}
