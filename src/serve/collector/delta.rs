//! From two raw readings to a [`Sample`]: per-second rates over the interval, the cache hit
//! ratio of the interval, statement deltas, and the resets between the two.
//!
//! Pure: no I/O, no clock. A counter never becomes a negative rate: whatever reset (a
//! restart, a failover, another cluster behind the name, `pg_stat_reset()`,
//! `pg_stat_statements_reset()`) is named in [`Sample::resets`] and the rates it spoils are
//! left out; a counter that went down with no other sign is a reset of that key.

use std::collections::BTreeMap;

use super::raw::{DbCounters, Raw, StatementCounters};
use crate::serve::model::{m, Reset, Sample, StatementDelta};

/// The resets between `prev` and `cur`, most telling first. A new identity (restart,
/// failover, another cluster) spoils every counter, so the finer resets are only looked for
/// when the server is the same one, in the same life.
pub fn resets(prev: &Raw, cur: &Raw) -> Vec<Reset> {
    let (p, c) = (&prev.identity, &cur.identity);
    if let (Some(a), Some(b)) = (p.system_identifier, c.system_identifier) {
        if a != b {
            return vec![Reset::OtherCluster];
        }
    }
    let mut out = Vec::new();
    if p.postmaster_start != c.postmaster_start {
        out.push(Reset::Restart);
    }
    let timeline_rose = matches!((p.timeline, c.timeline), (Some(a), Some(b)) if b > a);
    if p.in_recovery != c.in_recovery || timeline_rose {
        out.push(Reset::Failover);
    }
    if !out.is_empty() {
        return out;
    }
    if database_stats_reset(prev, cur) {
        out.push(Reset::DatabaseStats);
    }
    if statements_reset(prev, cur) {
        out.push(Reset::Statements);
    }
    out
}

/// `stats_reset` moved in a database both readings have, or one of its counters went down.
fn database_stats_reset(prev: &Raw, cur: &Raw) -> bool {
    cur.databases.iter().any(|(oid, c)| {
        prev.databases
            .get(oid)
            .is_some_and(|p| p.stats_reset != c.stats_reset || went_down(p, c))
    })
}

fn went_down(p: &DbCounters, c: &DbCounters) -> bool {
    p.counters()
        .iter()
        .zip(c.counters().iter())
        .any(|(a, b)| b < a)
}

/// pg_stat_statements_info.stats_reset moved, or (no info view: extension before 1.9) every
/// statement both readings have went down.
fn statements_reset(prev: &Raw, cur: &Raw) -> bool {
    let (Some(p), Some(c)) = (&prev.statements, &cur.statements) else {
        return false;
    };
    if p.stats_reset.is_some() || c.stats_reset.is_some() {
        return p.stats_reset != c.stats_reset;
    }
    let mut common = 0usize;
    let mut down = 0usize;
    for (id, cc) in &c.entries {
        if let Some(pc) = p.entries.get(id) {
            common += 1;
            if statement_went_down(pc, cc) {
                down += 1;
            }
        }
    }
    common > 0 && down == common
}

fn statement_went_down(p: &StatementCounters, c: &StatementCounters) -> bool {
    c.calls < p.calls
        || c.total_exec_ms < p.total_exec_ms
        || c.rows < p.rows
        || c.temp_blks_written < p.temp_blks_written
}

/// The sample of `cur` for `target`: its gauges, and with a previous reading of the same
/// server in the same life, the rates since then. `top`: statements kept, by their time in
/// the interval (their texts are left empty for the caller to fill).
pub fn sample(target: &str, prev: Option<&Raw>, cur: &Raw, top: usize) -> Sample {
    let mut out = Sample {
        target: target.to_string(),
        at: cur.at,
        interval_seconds: 0.0,
        values: cur.values.clone(),
        keyed: cur.keyed.clone(),
        statements: Vec::new(),
        resets: Vec::new(),
    };
    let Some(prev) = prev else {
        return out;
    };
    out.resets = resets(prev, cur);
    let identity_changed = out
        .resets
        .iter()
        .any(|r| matches!(r, Reset::Restart | Reset::Failover | Reset::OtherCluster));
    let seconds = (cur.server_now - prev.server_now)
        .num_microseconds()
        .unwrap_or(0) as f64
        / 1e6;
    if identity_changed || seconds <= 0.0 {
        return out;
    }
    out.interval_seconds = seconds;
    if !out.resets.contains(&Reset::DatabaseStats) {
        database_rates(prev, cur, seconds, &mut out.values);
    }
    if let (Some(p), Some(c)) = (prev.wal_bytes, cur.wal_bytes) {
        if c >= p {
            out.values
                .insert(m::WAL_BYTES_PER_SECOND.to_string(), (c - p) / seconds);
        }
    }
    if !out.resets.contains(&Reset::Statements) {
        out.statements = statement_deltas(prev, cur, top);
    }
    out
}

/// Rates summed over the databases both readings have (and a database created since,
/// counted from zero).
fn database_rates(prev: &Raw, cur: &Raw, seconds: f64, values: &mut BTreeMap<String, f64>) {
    let zero = DbCounters::default();
    let mut d = DbCounters::default();
    for (oid, c) in &cur.databases {
        let p = prev.databases.get(oid).unwrap_or(&zero);
        d.xact_commit += c.xact_commit - p.xact_commit;
        d.xact_rollback += c.xact_rollback - p.xact_rollback;
        d.blks_read += c.blks_read - p.blks_read;
        d.blks_hit += c.blks_hit - p.blks_hit;
        d.tup_returned += c.tup_returned - p.tup_returned;
        d.tup_inserted += c.tup_inserted - p.tup_inserted;
        d.tup_updated += c.tup_updated - p.tup_updated;
        d.tup_deleted += c.tup_deleted - p.tup_deleted;
        d.deadlocks += c.deadlocks - p.deadlocks;
        d.temp_bytes += c.temp_bytes - p.temp_bytes;
    }
    // Each term is >= 0 here (a decrease is a reset, handled before), but a sum is checked
    // again: no negative rate ever leaves this function.
    let mut rate = |name: &str, delta: i64| {
        if delta >= 0 {
            values.insert(name.to_string(), delta as f64 / seconds);
        }
    };
    rate(m::TPS, d.xact_commit + d.xact_rollback);
    rate(m::COMMITS_PER_SECOND, d.xact_commit);
    rate(m::ROLLBACKS_PER_SECOND, d.xact_rollback);
    rate(m::BLOCKS_READ_PER_SECOND, d.blks_read);
    rate(m::TUPLES_RETURNED_PER_SECOND, d.tup_returned);
    rate(
        m::TUPLES_WRITTEN_PER_SECOND,
        d.tup_inserted + d.tup_updated + d.tup_deleted,
    );
    rate(m::DEADLOCKS_PER_SECOND, d.deadlocks);
    rate(m::TEMP_BYTES_PER_SECOND, d.temp_bytes);
    let touched = d.blks_hit + d.blks_read;
    if touched > 0 && d.blks_hit >= 0 && d.blks_read >= 0 {
        values.insert(
            m::CACHE_HIT_RATIO.to_string(),
            d.blks_hit as f64 / touched as f64,
        );
    }
}

/// Deltas per queryid, the top `top` by time in the interval. A queryid the previous
/// reading lacks is counted from zero only when that reading saw pg_stat_statements with
/// the same `stats_reset` (so it is truly new, not a first look); one whose counters went
/// down was reset on its own and is left out.
fn statement_deltas(prev: &Raw, cur: &Raw, top: usize) -> Vec<StatementDelta> {
    let (Some(p), Some(c)) = (&prev.statements, &cur.statements) else {
        return Vec::new();
    };
    if p.stats_reset != c.stats_reset {
        return Vec::new();
    }
    let zero = StatementCounters::default();
    let block = cur.block_size.max(0) as f64;
    let mut out: Vec<StatementDelta> = c
        .entries
        .iter()
        .filter_map(|(id, cc)| {
            let pc = p.entries.get(id).unwrap_or(&zero);
            if statement_went_down(pc, cc) || cc.calls == pc.calls {
                return None;
            }
            Some(StatementDelta {
                queryid: *id,
                query: String::new(),
                calls: (cc.calls - pc.calls) as f64,
                total_seconds: (cc.total_exec_ms - pc.total_exec_ms) / 1000.0,
                rows: (cc.rows - pc.rows) as f64,
                temp_bytes_written: (cc.temp_blks_written - pc.temp_blks_written) as f64 * block,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.total_seconds
            .total_cmp(&a.total_seconds)
            .then(b.calls.total_cmp(&a.calls))
            .then(a.queryid.cmp(&b.queryid))
    });
    out.truncate(top);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::{Duration, TimeZone, Utc};

    use super::super::raw::{Identity, StatementsRaw};
    use super::*;
    use crate::serve::model::Ts;

    fn t0() -> Ts {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn db(commits: i64, hit: i64, read: i64) -> DbCounters {
        DbCounters {
            xact_commit: commits,
            xact_rollback: 1,
            blks_read: read,
            blks_hit: hit,
            tup_returned: commits * 10,
            tup_inserted: commits,
            stats_reset: Some(t0() - Duration::days(3)),
            ..DbCounters::default()
        }
    }

    fn stmt(calls: i64, ms: f64) -> StatementCounters {
        StatementCounters {
            calls,
            total_exec_ms: ms,
            rows: calls,
            temp_blks_written: 0,
        }
    }

    /// A primary at `t0`, with one database and two statements.
    fn raw0() -> Raw {
        Raw {
            at: t0(),
            server_now: t0(),
            identity: Identity {
                postmaster_start: t0() - Duration::days(10),
                in_recovery: false,
                timeline: Some(1),
                system_identifier: Some(7_000_000_000_000_000_001),
                version: "15.4".into(),
            },
            values: BTreeMap::from([(m::CONNECTIONS.to_string(), 5.0)]),
            keyed: BTreeMap::new(),
            databases: BTreeMap::from([(5, db(1000, 9000, 1000))]),
            wal_bytes: Some(1_000_000.0),
            block_size: 8192,
            statements: Some(StatementsRaw {
                stats_reset: Some(t0() - Duration::days(1)),
                dealloc: Some(0),
                entries: HashMap::from([(11, stmt(100, 1000.0)), (22, stmt(5, 50.0))]),
            }),
        }
    }

    /// `raw0` 10 s later with 200 more commits, 990 hits and 10 reads, statement 11 called
    /// 50 more times for 2 s, 22 not at all, and a new statement 33.
    fn raw1() -> Raw {
        let mut r = raw0();
        r.at += Duration::seconds(10);
        r.server_now += Duration::seconds(10);
        r.databases.insert(5, db(1200, 9990, 1010));
        r.wal_bytes = Some(1_081_920.0);
        let s = r.statements.as_mut().unwrap();
        s.entries.insert(11, stmt(150, 3000.0));
        s.entries.insert(33, stmt(4, 400.0));
        r
    }

    fn no_negative_value(s: &Sample) {
        for (k, v) in &s.values {
            assert!(*v >= 0.0, "{k} = {v}");
        }
        for st in &s.statements {
            assert!(st.calls >= 0.0 && st.total_seconds >= 0.0 && st.rows >= 0.0);
            assert!(st.temp_bytes_written >= 0.0);
        }
    }

    #[test]
    fn rates_over_the_interval_and_the_cache_hit_ratio_of_the_interval() {
        let s = sample("a", Some(&raw0()), &raw1(), 50);
        assert!(s.resets.is_empty());
        assert_eq!(s.interval_seconds, 10.0);
        assert_eq!(s.values[m::TPS], 20.0);
        assert_eq!(s.values[m::COMMITS_PER_SECOND], 20.0);
        assert_eq!(s.values[m::ROLLBACKS_PER_SECOND], 0.0);
        assert_eq!(s.values[m::BLOCKS_READ_PER_SECOND], 1.0);
        assert_eq!(s.values[m::CACHE_HIT_RATIO], 0.99);
        assert_eq!(s.values[m::WAL_BYTES_PER_SECOND], 8192.0);
        assert_eq!(s.values[m::CONNECTIONS], 5.0);
        no_negative_value(&s);
    }

    #[test]
    fn a_first_sample_has_gauges_only() {
        let s = sample("a", None, &raw1(), 50);
        assert_eq!(s.interval_seconds, 0.0);
        assert!(s.statements.is_empty() && s.resets.is_empty());
        assert!(!s.values.contains_key(m::TPS));
        assert_eq!(s.values[m::CONNECTIONS], 5.0);
    }

    #[test]
    fn no_cache_hit_ratio_when_no_block_was_touched() {
        let mut b = raw1();
        b.databases.insert(5, db(1200, 9000, 1000));
        let s = sample("a", Some(&raw0()), &b, 50);
        assert!(!s.values.contains_key(m::CACHE_HIT_RATIO));
        assert_eq!(s.values[m::TPS], 20.0);
    }

    #[test]
    fn statement_deltas_top_by_time_in_the_interval_new_ones_from_zero_idle_ones_left_out() {
        let s = sample("a", Some(&raw0()), &raw1(), 50);
        let ids: Vec<i64> = s.statements.iter().map(|d| d.queryid).collect();
        assert_eq!(ids, vec![11, 33], "22 had no call in the interval");
        assert_eq!(s.statements[0].calls, 50.0);
        assert_eq!(s.statements[0].total_seconds, 2.0);
        assert_eq!(s.statements[1].calls, 4.0);
        let s = sample("a", Some(&raw0()), &raw1(), 1);
        assert_eq!(s.statements.len(), 1);
        assert_eq!(s.statements[0].queryid, 11);
    }

    #[test]
    fn statements_first_seen_are_not_diffed_against_zero() {
        let mut a = raw0();
        a.statements = None;
        let s = sample("a", Some(&a), &raw1(), 50);
        assert!(s.statements.is_empty());
        assert!(s.resets.is_empty());
        assert_eq!(s.values[m::TPS], 20.0, "the other rates are still there");
    }

    #[test]
    fn restart_is_a_reset_and_spoils_every_rate() {
        let mut b = raw1();
        b.identity.postmaster_start = t0() + Duration::seconds(5);
        b.databases.insert(5, db(3, 10, 10));
        let s = sample("a", Some(&raw0()), &b, 50);
        assert_eq!(s.resets, vec![Reset::Restart]);
        assert_eq!(s.interval_seconds, 0.0);
        assert!(!s.values.contains_key(m::TPS));
        assert!(s.statements.is_empty());
        no_negative_value(&s);
    }

    #[test]
    fn restart_near_miss_same_start_time_is_no_reset() {
        let mut b = raw1();
        b.identity.version = "15.4 (same server)".into();
        assert!(resets(&raw0(), &b).is_empty());
    }

    #[test]
    fn promotion_is_a_failover() {
        let mut a = raw0();
        a.identity.in_recovery = true;
        a.wal_bytes = None;
        let mut b = raw1();
        b.identity.timeline = Some(2);
        let s = sample("a", Some(&a), &b, 50);
        assert_eq!(s.resets, vec![Reset::Failover]);
        assert!(!s.values.contains_key(m::TPS));
    }

    #[test]
    fn failover_to_another_member_restart_and_timeline() {
        let mut b = raw1();
        b.identity.timeline = Some(2);
        b.identity.postmaster_start = t0() - Duration::days(2);
        assert_eq!(resets(&raw0(), &b), vec![Reset::Restart, Reset::Failover]);
    }

    #[test]
    fn failover_near_miss_same_timeline_same_role() {
        let mut a = raw0();
        a.identity.timeline = None;
        let b = raw1();
        assert!(
            resets(&a, &b).is_empty(),
            "a timeline first read is no failover"
        );
        let mut c = raw1();
        c.identity.timeline = Some(1);
        assert!(resets(&raw0(), &c).is_empty());
    }

    #[test]
    fn another_system_identifier_is_another_cluster() {
        let mut b = raw1();
        b.identity.system_identifier = Some(42);
        b.identity.postmaster_start = t0();
        b.wal_bytes = Some(10.0);
        let s = sample("a", Some(&raw0()), &b, 50);
        assert_eq!(s.resets, vec![Reset::OtherCluster]);
        assert!(!s.values.contains_key(m::WAL_BYTES_PER_SECOND));
        no_negative_value(&s);
    }

    #[test]
    fn another_cluster_near_miss_identifier_unreadable() {
        let mut b = raw1();
        b.identity.system_identifier = None;
        assert!(resets(&raw0(), &b).is_empty());
    }

    #[test]
    fn pg_stat_reset_moves_stats_reset_and_spoils_database_rates_only() {
        let mut b = raw1();
        let mut d = db(2, 20, 1);
        d.stats_reset = Some(t0() + Duration::seconds(3));
        b.databases.insert(5, d);
        let s = sample("a", Some(&raw0()), &b, 50);
        assert_eq!(s.resets, vec![Reset::DatabaseStats]);
        assert!(!s.values.contains_key(m::TPS));
        assert!(!s.values.contains_key(m::CACHE_HIT_RATIO));
        assert_eq!(s.values[m::WAL_BYTES_PER_SECOND], 8192.0);
        assert_eq!(s.statements.len(), 2, "statements were not reset");
        no_negative_value(&s);
    }

    #[test]
    fn a_database_counter_that_went_down_is_a_reset_of_it() {
        let mut b = raw1();
        let mut d = db(1200, 9990, 1010);
        d.deadlocks = -1; // below the previous 0
        b.databases.insert(5, d);
        let s = sample("a", Some(&raw0()), &b, 50);
        assert_eq!(s.resets, vec![Reset::DatabaseStats]);
        no_negative_value(&s);
    }

    #[test]
    fn database_stats_near_miss_a_new_database_and_a_dropped_one() {
        let mut b = raw1();
        b.databases.insert(9, db(10, 0, 0));
        let mut a = raw0();
        a.databases.insert(8, db(10_000, 0, 0));
        let s = sample("a", Some(&a), &b, 50);
        assert!(s.resets.is_empty());
        // 200 commits in database 5, 10 in the new one; the dropped one is no decrease.
        assert_eq!(s.values[m::COMMITS_PER_SECOND], 21.0);
    }

    #[test]
    fn pg_stat_statements_reset_moves_info_stats_reset() {
        let mut b = raw1();
        let st = b.statements.as_mut().unwrap();
        st.stats_reset = Some(t0() + Duration::seconds(2));
        st.entries = HashMap::from([(11, stmt(3, 30.0))]);
        let s = sample("a", Some(&raw0()), &b, 50);
        assert_eq!(s.resets, vec![Reset::Statements]);
        assert!(s.statements.is_empty());
        assert_eq!(s.values[m::TPS], 20.0, "database rates are untouched");
    }

    #[test]
    fn pg_stat_statements_reset_without_the_info_view_every_entry_went_down() {
        let mut a = raw0();
        a.statements.as_mut().unwrap().stats_reset = None;
        let mut b = raw1();
        let st = b.statements.as_mut().unwrap();
        st.stats_reset = None;
        st.entries = HashMap::from([(11, stmt(3, 30.0)), (22, stmt(1, 1.0))]);
        assert_eq!(resets(&a, &b), vec![Reset::Statements]);
        assert!(sample("a", Some(&a), &b, 50).statements.is_empty());
    }

    #[test]
    fn one_statement_reset_alone_is_left_out_not_negative() {
        let mut a = raw0();
        a.statements.as_mut().unwrap().stats_reset = None;
        let mut b = raw1();
        let st = b.statements.as_mut().unwrap();
        st.stats_reset = None;
        st.entries.insert(22, stmt(1, 1.0)); // went down from 5 calls: reset of that key
        let s = sample("a", Some(&a), &b, 50);
        assert!(s.resets.is_empty(), "{:?}", s.resets);
        let ids: Vec<i64> = s.statements.iter().map(|d| d.queryid).collect();
        assert_eq!(ids, vec![11, 33]);
        no_negative_value(&s);
    }

    #[test]
    fn statements_near_miss_dealloc_moved_is_no_reset() {
        let mut b = raw1();
        b.statements.as_mut().unwrap().dealloc = Some(3);
        let s = sample("a", Some(&raw0()), &b, 50);
        assert!(s.resets.is_empty());
        assert_eq!(s.statements.len(), 2);
    }

    #[test]
    fn a_server_clock_that_went_back_gives_no_rate() {
        let mut b = raw1();
        b.server_now = t0() - Duration::seconds(1);
        let s = sample("a", Some(&raw0()), &b, 50);
        assert_eq!(s.interval_seconds, 0.0);
        assert!(!s.values.contains_key(m::TPS));
        assert!(s.statements.is_empty());
    }

    #[test]
    fn temp_blocks_become_bytes() {
        let mut b = raw1();
        b.statements.as_mut().unwrap().entries.insert(
            11,
            StatementCounters {
                temp_blks_written: 2,
                ..stmt(150, 3000.0)
            },
        );
        let s = sample("a", Some(&raw0()), &b, 50);
        assert_eq!(s.statements[0].temp_bytes_written, 16384.0);
    }
}
