//! What the SQLite and PostgreSQL stores share: the tables' meaning, the statements (the
//! same SQL text for both: bigint milliseconds, double precision, text), the rollups,
//! retention and the choice of resolution. Each backend only opens its connection, runs
//! a transaction and inserts points in bulk (the [`Db`] trait); everything else is here,
//! so both stores behave alike by construction and the same tests hold them to it.
//!
//! Layout (the backends' DDL spell it in their dialects):
//! - `meta(key, value)`: `magic` (a store of pgopt's, else refused) and `version`;
//! - `series(id, target, metric, key)`: the strings of a series, once (points carry the id);
//! - `points(series, at, value)`: raw values, keyed by (series, at);
//! - `rollup_5m` / `rollup_1h(series, at, mean, peak, n)`: one row per closed bucket;
//! - `rollup_state`: one row: how far the rollups reach, the oldest late write, what
//!   retention deleted and the retention it used;
//! - `statements(target, queryid, text)`, `events(id, target, at, kind, message, details)`.
//!
//! Times are kept as milliseconds since the epoch (a point read back is what was written,
//! to the millisecond).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeZone, Utc};

use super::{Batch, MaintainStats, Query, Resolution, Retention, Row, Store, StoreError};
use crate::serve::model::{Event, EventKind, Point, Ts};

/// What `meta.magic` holds in every pgopt store.
pub(crate) const MAGIC: &str = "pgopt history store";
/// The schema version this pgopt writes; a store with a higher one is refused.
pub(crate) const VERSION: i64 = 1;

const FIVE_MIN_MS: i64 = 300_000;
const HOUR_MS: i64 = 3_600_000;

/// A value bound to or read from a statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    I(i64),
    F(f64),
    T(String),
}

impl Val {
    fn i(&self) -> Option<i64> {
        match self {
            Val::I(v) => Some(*v),
            Val::F(v) => Some(*v as i64),
            _ => None,
        }
    }
    fn f(&self) -> Option<f64> {
        match self {
            Val::F(v) => Some(*v),
            Val::I(v) => Some(*v as f64),
            _ => None,
        }
    }
    fn t(&self) -> String {
        match self {
            Val::T(s) => s.clone(),
            Val::I(v) => v.to_string(),
            Val::F(v) => v.to_string(),
            Val::Null => String::new(),
        }
    }
}

/// A store's database under the shared SQL: transactions on its connection and the
/// cache of series ids. Every [`Backend`] is a [`Store`] (below): the SQLite and the
/// PostgreSQL store differ only here.
pub(crate) trait Backend: Send + Sync {
    /// Runs `f` in one transaction (committed when it returns Ok, rolled back otherwise).
    fn tx<T>(
        &self,
        f: impl FnOnce(&mut dyn Db, &mut SeriesCache) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
    /// The series-id cache, to merge in the ids a committed transaction made.
    fn with_cache(&self, f: &mut dyn FnMut(&mut SeriesCache));
    /// Run first inside the maintenance transaction (a lock where several daemons share
    /// the store).
    fn before_maintain(&self, _db: &mut dyn Db) -> Result<(), StoreError> {
        Ok(())
    }
    /// Bytes the store takes.
    fn size(&self) -> Result<u64, StoreError>;
}

impl<B: Backend> Store for B {
    fn write(&self, points: &[Point]) -> Result<(), StoreError> {
        self.write_batch(&Batch {
            points: points.to_vec(),
            ..Batch::default()
        })
    }

    fn put_statements(&self, target: &str, texts: &[(i64, String)]) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        batch
            .statements
            .insert(target.to_string(), texts.iter().cloned().collect());
        self.write_batch(&batch)
    }

    fn put_events(&self, events: &[Event]) -> Result<(), StoreError> {
        self.write_batch(&Batch {
            events: events.to_vec(),
            ..Batch::default()
        })
    }

    fn write_batch(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut fresh = None;
        let res = self.tx(|db, cache| {
            fresh = Some(write_batch(db, cache, batch)?);
            Ok(())
        });
        // Ids made in a transaction that did not commit do not exist.
        if let (Ok(()), Some(f)) = (&res, fresh) {
            let mut f = Some(f);
            self.with_cache(&mut |cache| {
                if let Some(f) = f.take() {
                    merge_cache(cache, f);
                }
            });
        }
        res
    }

    fn query(&self, q: &Query) -> Result<Vec<Row>, StoreError> {
        self.tx(|db, _| query(db, q))
    }

    fn statement(&self, target: &str, queryid: i64) -> Result<Option<String>, StoreError> {
        self.tx(|db, _| statement(db, target, queryid))
    }

    fn events(
        &self,
        target: Option<&str>,
        from: Ts,
        to: Ts,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.tx(|db, _| events(db, target, from, to, limit))
    }

    fn last_points(&self) -> Result<Vec<(String, Ts)>, StoreError> {
        self.tx(|db, _| last_points(db))
    }

    fn maintain(&self, now: Ts, retention: &Retention) -> Result<MaintainStats, StoreError> {
        self.tx(|db, _| {
            self.before_maintain(db)?;
            maintain(db, now, retention)
        })
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        self.size()
    }
}

/// One open transaction of a backend. SQL uses `$1`-style parameters (SQLite gets `?1`).
pub(crate) trait Db {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError>;
    fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, StoreError>;
    /// Upserts raw points `(series, at, value)` (no (series, at) twice in one call).
    fn insert_points(&mut self, points: &[(i64, i64, f64)]) -> Result<(), StoreError>;
}

pub(crate) fn ms(t: Ts) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn ts(ms: i64) -> Ts {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn floor(at: i64, width: i64) -> i64 {
    at.div_euclid(width) * width
}

fn ceil(at: i64, width: i64) -> i64 {
    if at == i64::MIN {
        return at;
    }
    let f = floor(at, width);
    if f == at {
        at
    } else {
        f.saturating_add(width)
    }
}

fn dur_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

// ---- meta ----------------------------------------------------------------------------

/// What the meta table says about a store.
pub(crate) enum Found {
    /// Ours, at this version.
    Store(i64),
    /// A meta table with another magic, or none where tables exist.
    Foreign(String),
}

/// Reads `meta` (the caller knows it exists).
pub(crate) fn read_meta(db: &mut dyn Db) -> Result<Found, StoreError> {
    let rows = db.rows("SELECT key, value FROM meta", &[])?;
    let get = |k: &str| {
        rows.iter()
            .find(|r| r.first().map(Val::t).as_deref() == Some(k))
            .and_then(|r| r.get(1).map(Val::t))
    };
    match get("magic") {
        Some(m) if m == MAGIC => {}
        Some(m) => return Ok(Found::Foreign(format!("its meta table says {m:?}"))),
        None => return Ok(Found::Foreign("its meta table has no magic".into())),
    }
    let version = get("version")
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| StoreError::NotAStore("its meta table has no version".into()))?;
    Ok(Found::Store(version))
}

/// Writes magic and version (a new store, or after a migration).
pub(crate) fn write_meta(db: &mut dyn Db, version: i64) -> Result<(), StoreError> {
    for (k, v) in [
        ("magic", MAGIC.to_string()),
        ("version", version.to_string()),
    ] {
        db.exec(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[Val::T(k.into()), Val::T(v)],
        )?;
    }
    db.exec(
        "INSERT INTO rollup_state (id) VALUES (1) ON CONFLICT (id) DO NOTHING",
        &[],
    )?;
    Ok(())
}

// ---- writes --------------------------------------------------------------------------

/// Series ids known to be committed, so that a write looks each series up once.
#[derive(Debug, Default)]
pub(crate) struct SeriesCache(HashMap<(String, String, String), i64>);

/// The id of a series, made if new. `fresh` holds ids made in this transaction (moved
/// into the cache only once it commits).
fn series_id(
    db: &mut dyn Db,
    cache: &SeriesCache,
    fresh: &mut HashMap<(String, String, String), i64>,
    p: &Point,
) -> Result<i64, StoreError> {
    let k = (p.target.clone(), p.metric.clone(), p.key.clone());
    if let Some(id) = cache.0.get(&k).or_else(|| fresh.get(&k)) {
        return Ok(*id);
    }
    let params = [
        Val::T(p.target.clone()),
        Val::T(p.metric.clone()),
        Val::T(p.key.clone()),
    ];
    db.exec(
        "INSERT INTO series (target, metric, key) VALUES ($1, $2, $3) \
         ON CONFLICT (target, metric, key) DO NOTHING",
        &params,
    )?;
    let rows = db.rows(
        "SELECT id FROM series WHERE target = $1 AND metric = $2 AND key = $3",
        &params,
    )?;
    let id = rows
        .first()
        .and_then(|r| r.first())
        .and_then(Val::i)
        .ok_or_else(|| StoreError::Io("a series just made cannot be read back".into()))?;
    fresh.insert(k, id);
    Ok(id)
}

/// Writes a batch inside the caller's transaction; returns the series ids it made (for
/// the cache, once committed).
pub(crate) fn write_batch(
    db: &mut dyn Db,
    cache: &SeriesCache,
    batch: &Batch,
) -> Result<HashMap<(String, String, String), i64>, StoreError> {
    let mut fresh = HashMap::new();
    // (series, at) → value: the last one written wins, also within a batch.
    let mut rows: BTreeMap<(i64, i64), f64> = BTreeMap::new();
    for p in batch.points.iter().filter(|p| p.value.is_finite()) {
        let id = series_id(db, cache, &mut fresh, p)?;
        rows.insert((id, ms(p.at)), p.value);
    }
    if !rows.is_empty() {
        let flat: Vec<(i64, i64, f64)> = rows.iter().map(|((s, a), v)| (*s, *a, *v)).collect();
        db.insert_points(&flat)?;
        // Points older than what the rollups already cover: redo those buckets next time.
        let oldest = flat.iter().map(|r| r.1).min().unwrap_or(i64::MAX);
        db.exec(
            "UPDATE rollup_state SET dirty_from = $1 \
             WHERE id = 1 AND rolled_5m IS NOT NULL AND $1 < rolled_5m \
             AND (dirty_from IS NULL OR $1 < dirty_from)",
            &[Val::I(oldest)],
        )?;
    }
    for (target, texts) in &batch.statements {
        for (queryid, text) in texts {
            db.exec(
                "INSERT INTO statements (target, queryid, text) VALUES ($1, $2, $3) \
                 ON CONFLICT (target, queryid) DO UPDATE SET text = excluded.text",
                &[
                    Val::T(target.clone()),
                    Val::I(*queryid),
                    Val::T(text.clone()),
                ],
            )?;
        }
    }
    for e in &batch.events {
        let details = serde_json::to_string(&e.details)
            .map_err(|err| StoreError::Io(format!("event details: {err}")))?;
        db.exec(
            "INSERT INTO events (target, at, kind, message, details) VALUES ($1, $2, $3, $4, $5)",
            &[
                Val::T(e.target.clone()),
                Val::I(ms(e.at)),
                Val::T(e.kind.as_str().into()),
                Val::T(e.message.clone()),
                Val::T(details),
            ],
        )?;
    }
    Ok(fresh)
}

pub(crate) fn merge_cache(cache: &mut SeriesCache, fresh: HashMap<(String, String, String), i64>) {
    cache.0.extend(fresh);
}

// ---- reads ---------------------------------------------------------------------------

pub(crate) fn statement(
    db: &mut dyn Db,
    target: &str,
    queryid: i64,
) -> Result<Option<String>, StoreError> {
    let rows = db.rows(
        "SELECT text FROM statements WHERE target = $1 AND queryid = $2",
        &[Val::T(target.into()), Val::I(queryid)],
    )?;
    Ok(rows.first().and_then(|r| r.first()).map(Val::t))
}

pub(crate) fn events(
    db: &mut dyn Db,
    target: Option<&str>,
    from: Ts,
    to: Ts,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let limit = Val::I(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = match target {
        Some(t) => db.rows(
            "SELECT target, at, kind, message, details FROM events \
             WHERE target = $1 AND at >= $2 AND at < $3 ORDER BY at DESC, id DESC LIMIT $4",
            &[Val::T(t.into()), Val::I(ms(from)), Val::I(ms(to)), limit],
        )?,
        None => db.rows(
            "SELECT target, at, kind, message, details FROM events \
             WHERE at >= $1 AND at < $2 ORDER BY at DESC, id DESC LIMIT $3",
            &[Val::I(ms(from)), Val::I(ms(to)), limit],
        )?,
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let kind: EventKind = serde_json::from_value(serde_json::Value::String(r[2].t()))
            .map_err(|e| StoreError::Io(format!("an event of unknown kind {:?}: {e}", r[2])))?;
        let details = serde_json::from_str(&r[4].t()).unwrap_or_default();
        out.push(Event {
            target: r[0].t(),
            at: ts(r[1].i().unwrap_or_default()),
            kind,
            message: r[3].t(),
            details,
        });
    }
    Ok(out)
}

pub(crate) fn last_points(db: &mut dyn Db) -> Result<Vec<(String, Ts)>, StoreError> {
    // Per series through the (series, at) key, then per target: no scan of the points.
    let rows = db.rows(
        "SELECT target, max(newest) FROM \
           (SELECT s.target AS target, (SELECT max(p.at) FROM points p WHERE p.series = s.id) AS newest \
            FROM series s) t \
         WHERE newest IS NOT NULL GROUP BY target ORDER BY target",
        &[],
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r[0].t(), ts(r[1].i()?))))
        .collect())
}

/// How far the rollups reach and what retention did (the `rollup_state` row).
#[derive(Debug, Default, Clone, Copy)]
struct State {
    rolled_5m: Option<i64>,
    rolled_1h: Option<i64>,
    dirty_from: Option<i64>,
    raw_kept_from: Option<i64>,
    five_kept_from: Option<i64>,
    retention: Option<Retention>,
}

fn state(db: &mut dyn Db) -> Result<State, StoreError> {
    let rows = db.rows(
        "SELECT rolled_5m, rolled_1h, dirty_from, raw_kept_from, five_kept_from, \
         raw_retention_s, five_retention_s, hourly_retention_s FROM rollup_state WHERE id = 1",
        &[],
    )?;
    let Some(r) = rows.first() else {
        return Ok(State::default());
    };
    let secs = |v: &Val| {
        v.i()
            .map(|s| std::time::Duration::from_secs(s.max(0) as u64))
    };
    let retention = match (secs(&r[5]), secs(&r[6]), secs(&r[7])) {
        (Some(raw), Some(five_minutes), Some(hourly)) => Some(Retention {
            raw,
            five_minutes,
            hourly,
        }),
        _ => None,
    };
    Ok(State {
        rolled_5m: r[0].i(),
        rolled_1h: r[1].i(),
        dirty_from: r[2].i(),
        raw_kept_from: r[3].i(),
        five_kept_from: r[4].i(),
        retention,
    })
}

/// The resolution `resolution: None` means for a range: the finest one whose retention
/// spans the range and whose points still reach back to `from`.
fn pick(q: &Query, st: &State) -> Resolution {
    let ret = st.retention.unwrap_or_default();
    let (from, to) = (ms(q.from), ms(q.to));
    let spans = |d: std::time::Duration| from >= to.saturating_sub(dur_ms(d));
    if spans(ret.raw) && st.raw_kept_from.is_none_or(|k| from >= k) {
        Resolution::Raw
    } else if spans(ret.five_minutes)
        && st
            .five_kept_from
            .is_none_or(|k| floor(from, FIVE_MIN_MS) >= k)
    {
        Resolution::FiveMinutes
    } else {
        Resolution::Hourly
    }
}

/// One bucket: start, mean, peak, count.
type Bucket = (i64, f64, f64, i64);

/// 5-minute buckets of one series in `[from, to)`: the rollups where made, the raw
/// points grouped on the fly after them.
fn five_minute_buckets(
    db: &mut dyn Db,
    series: i64,
    from: i64,
    to: i64,
    st: &State,
) -> Result<Vec<Bucket>, StoreError> {
    let from = floor(from, FIVE_MIN_MS);
    let rolled = st.rolled_5m.unwrap_or(i64::MIN);
    let mut out = Vec::new();
    if from < rolled.min(to) {
        out.extend(buckets(db.rows(
            "SELECT at, mean, peak, n FROM rollup_5m \
             WHERE series = $1 AND at >= $2 AND at < $3 ORDER BY at",
            &[Val::I(series), Val::I(from), Val::I(rolled.min(to))],
        )?));
    }
    let tail = from.max(rolled);
    if tail < to {
        out.extend(buckets(db.rows(
            "SELECT (at / 300000) * 300000 AS b, avg(value), max(value), count(*) FROM points \
             WHERE series = $1 AND at >= $2 AND at < $3 GROUP BY b ORDER BY b",
            &[Val::I(series), Val::I(tail), Val::I(to)],
        )?));
    }
    Ok(out)
}

fn buckets(rows: Vec<Vec<Val>>) -> impl Iterator<Item = Bucket> {
    rows.into_iter().filter_map(|r| {
        Some((
            r[0].i()?,
            r[1].f()?,
            r[2].f()?,
            r.get(3).and_then(Val::i).unwrap_or(1),
        ))
    })
}

/// Groups buckets into wider ones (mean weighted by count).
fn regroup(rows: impl IntoIterator<Item = Bucket>, width: i64) -> Vec<Bucket> {
    let mut out: BTreeMap<i64, (f64, f64, i64)> = BTreeMap::new();
    for (at, mean, peak, n) in rows {
        let e = out
            .entry(floor(at, width))
            .or_insert((0.0, f64::NEG_INFINITY, 0));
        e.0 += mean * n as f64;
        e.1 = e.1.max(peak);
        e.2 += n;
    }
    out.into_iter()
        .filter(|(_, v)| v.2 > 0)
        .map(|(at, (sum, peak, n))| (at, sum / n as f64, peak, n))
        .collect()
}

pub(crate) fn query(db: &mut dyn Db, q: &Query) -> Result<Vec<Row>, StoreError> {
    let series = match &q.key {
        Some(k) => db.rows(
            "SELECT id, key FROM series WHERE target = $1 AND metric = $2 AND key = $3",
            &[
                Val::T(q.target.clone()),
                Val::T(q.metric.clone()),
                Val::T(k.clone()),
            ],
        )?,
        None => db.rows(
            "SELECT id, key FROM series WHERE target = $1 AND metric = $2 ORDER BY key",
            &[Val::T(q.target.clone()), Val::T(q.metric.clone())],
        )?,
    };
    let st = state(db)?;
    let resolution = q.resolution.unwrap_or_else(|| pick(q, &st));
    let (from, to) = (ms(q.from), ms(q.to));
    let mut out = Vec::new();
    for s in series {
        let (Some(id), key) = (s[0].i(), s[1].t()) else {
            continue;
        };
        let rows: Vec<Bucket> = match resolution {
            Resolution::Raw => buckets(db.rows(
                "SELECT at, value, value FROM points \
                 WHERE series = $1 AND at >= $2 AND at < $3 ORDER BY at",
                &[Val::I(id), Val::I(from), Val::I(to)],
            )?)
            .collect(),
            Resolution::FiveMinutes => five_minute_buckets(db, id, from, to, &st)?,
            Resolution::Hourly => {
                let from = floor(from, HOUR_MS);
                let rolled = st.rolled_1h.unwrap_or(i64::MIN);
                let mut rows = Vec::new();
                if from < rolled.min(to) {
                    rows.extend(buckets(db.rows(
                        "SELECT at, mean, peak, n FROM rollup_1h \
                         WHERE series = $1 AND at >= $2 AND at < $3 ORDER BY at",
                        &[Val::I(id), Val::I(from), Val::I(rolled.min(to))],
                    )?));
                }
                let tail = from.max(rolled);
                if tail < to {
                    let five = five_minute_buckets(db, id, tail, to, &st)?;
                    rows.extend(regroup(five, HOUR_MS));
                }
                rows
            }
        };
        out.extend(rows.into_iter().map(|(at, value, max, _)| Row {
            key: key.clone(),
            at: ts(at),
            value,
            max,
        }));
    }
    Ok(out)
}

// ---- maintenance ---------------------------------------------------------------------

/// Rolls up closed buckets, then deletes what is past retention; in the caller's
/// transaction. Buckets are redone only where points came late (`dirty_from`), so a
/// second run adds nothing.
pub(crate) fn maintain(
    db: &mut dyn Db,
    now: Ts,
    retention: &Retention,
) -> Result<MaintainStats, StoreError> {
    let now = ms(now);
    let st = state(db)?;
    let end5 = floor(now, FIVE_MIN_MS).max(st.rolled_5m.unwrap_or(i64::MIN));
    let end1h = floor(now, HOUR_MS).max(st.rolled_1h.unwrap_or(i64::MIN));
    let mut stats = MaintainStats::default();

    // Raw → 5 minutes, from where the rollups stop (or the oldest late point); never a
    // bucket whose points retention already thinned. `series IN (...)` lets both
    // databases read each series' range through the (series, at) key, not the table.
    let start5 = match st.rolled_5m {
        None => i64::MIN,
        Some(r) => floor(r.min(st.dirty_from.unwrap_or(r)), FIVE_MIN_MS),
    }
    .max(ceil(st.raw_kept_from.unwrap_or(i64::MIN), FIVE_MIN_MS));
    if start5 < end5 {
        stats.rolled_up += db.exec(
            "INSERT INTO rollup_5m (series, at, mean, peak, n) \
             SELECT p.series, (p.at / 300000) * 300000 AS b, avg(p.value), max(p.value), count(*) \
             FROM points p WHERE p.series IN (SELECT id FROM series) AND p.at >= $1 AND p.at < $2 \
             GROUP BY p.series, b \
             ON CONFLICT (series, at) DO UPDATE \
             SET mean = excluded.mean, peak = excluded.peak, n = excluded.n \
             WHERE rollup_5m.n <> excluded.n OR rollup_5m.peak <> excluded.peak \
                OR abs(rollup_5m.mean - excluded.mean) > 1e-9 * abs(excluded.mean)",
            &[Val::I(start5), Val::I(end5)],
        )?;
    }
    // 5 minutes → hourly, over the hours the redone 5-minute buckets fall in too.
    let start1h = match st.rolled_1h {
        None => i64::MIN,
        Some(r) => r.min(floor(start5.max(i64::MIN + HOUR_MS), HOUR_MS)),
    }
    .max(ceil(st.five_kept_from.unwrap_or(i64::MIN), HOUR_MS));
    if start1h < end1h {
        stats.rolled_up += db.exec(
            "INSERT INTO rollup_1h (series, at, mean, peak, n) \
             SELECT r.series, (r.at / 3600000) * 3600000 AS b, \
                    sum(r.mean * r.n) / CAST(sum(r.n) AS double precision), max(r.peak), \
                    CAST(sum(r.n) AS bigint) \
             FROM rollup_5m r WHERE r.series IN (SELECT id FROM series) AND r.at >= $1 AND r.at < $2 \
             GROUP BY r.series, b \
             ON CONFLICT (series, at) DO UPDATE \
             SET mean = excluded.mean, peak = excluded.peak, n = excluded.n \
             WHERE rollup_1h.n <> excluded.n OR rollup_1h.peak <> excluded.peak \
                OR abs(rollup_1h.mean - excluded.mean) > 1e-9 * abs(excluded.mean)",
            &[Val::I(start1h), Val::I(end1h)],
        )?;
    }

    // Retention; never deleting what is not rolled up yet.
    let raw_cut = now.saturating_sub(dur_ms(retention.raw)).min(end5);
    let five_cut = now
        .saturating_sub(dur_ms(retention.five_minutes))
        .min(end1h);
    let hourly_cut = now.saturating_sub(dur_ms(retention.hourly));
    for (table, cut) in [
        ("points", raw_cut),
        ("rollup_5m", five_cut),
        ("rollup_1h", hourly_cut),
    ] {
        // The table names are constants of this file, never input.
        stats.deleted += db.exec(
            &format!("DELETE FROM {table} WHERE series IN (SELECT id FROM series) AND at < $1"),
            &[Val::I(cut)],
        )?;
    }
    let secs = |d: std::time::Duration| Val::I(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    db.exec(
        "UPDATE rollup_state SET rolled_5m = $1, rolled_1h = $2, dirty_from = NULL, \
         raw_kept_from = $3, five_kept_from = $4, raw_retention_s = $5, \
         five_retention_s = $6, hourly_retention_s = $7, maintained_at = $8 WHERE id = 1",
        &[
            Val::I(end5),
            Val::I(end1h),
            Val::I(raw_cut.max(st.raw_kept_from.unwrap_or(i64::MIN))),
            Val::I(five_cut.max(st.five_kept_from.unwrap_or(i64::MIN))),
            secs(retention.raw),
            secs(retention.five_minutes),
            secs(retention.hourly),
            Val::I(now),
        ],
    )?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_floor_and_ceil_to_their_width() {
        assert_eq!(floor(299_999, FIVE_MIN_MS), 0);
        assert_eq!(floor(300_000, FIVE_MIN_MS), 300_000);
        assert_eq!(ceil(300_001, FIVE_MIN_MS), 600_000);
        assert_eq!(ceil(300_000, FIVE_MIN_MS), 300_000);
        assert_eq!(ceil(i64::MIN, FIVE_MIN_MS), i64::MIN);
    }

    #[test]
    fn regrouping_weights_each_bucket_by_its_count() {
        let hourly = regroup(
            [
                (0, 1.0, 2.0, 1),
                (300_000, 4.0, 9.0, 3),
                (HOUR_MS, 5.0, 5.0, 2),
            ],
            HOUR_MS,
        );
        assert_eq!(
            hourly,
            vec![(0, 13.0 / 4.0, 9.0, 4), (HOUR_MS, 5.0, 5.0, 2)]
        );
    }

    #[test]
    fn the_finest_resolution_that_reaches_back_to_from_is_picked() {
        let to = ts(100 * 24 * HOUR_MS);
        let q = |hours: i64| Query {
            target: "a".into(),
            metric: "tps".into(),
            key: None,
            from: to - chrono::Duration::hours(hours),
            to,
            resolution: None,
        };
        let st = State::default();
        assert_eq!(pick(&q(1), &st), Resolution::Raw);
        assert_eq!(pick(&q(7 * 24), &st), Resolution::FiveMinutes);
        assert_eq!(pick(&q(60 * 24), &st), Resolution::Hourly);
        // One hour, but its raw points were deleted already: 5-minute rollups.
        let thinned = State {
            raw_kept_from: Some(ms(to)),
            ..State::default()
        };
        assert_eq!(pick(&q(1), &thinned), Resolution::FiveMinutes);
    }
}
