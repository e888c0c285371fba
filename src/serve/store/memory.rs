//! A store kept in memory only: for `pgopt serve --store memory` (nothing kept across a
//! restart) and for tests of what reads a store (pages, regressions). Holds raw points
//! only: `maintain` deletes what is past the raw retention and makes no rollups, and
//! every read is answered from the raw points.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{MaintainStats, Query, Retention, Row, Store, StoreError};
use crate::serve::model::{Event, Point, Ts};

#[derive(Debug, Default)]
struct Inner {
    points: Vec<Point>,
    statements: BTreeMap<(String, i64), String>,
    events: Vec<Event>,
}

/// See the module's documentation.
#[derive(Debug, Default)]
pub struct MemoryStore(Mutex<Inner>);

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
    fn write(&self, points: &[Point]) -> Result<(), StoreError> {
        self.inner().points.extend_from_slice(points);
        Ok(())
    }

    fn put_statements(&self, target: &str, texts: &[(i64, String)]) -> Result<(), StoreError> {
        let mut inner = self.inner();
        for (id, text) in texts {
            inner
                .statements
                .insert((target.to_string(), *id), text.clone());
        }
        Ok(())
    }

    fn put_events(&self, events: &[Event]) -> Result<(), StoreError> {
        self.inner().events.extend_from_slice(events);
        Ok(())
    }

    fn query(&self, q: &Query) -> Result<Vec<Row>, StoreError> {
        let inner = self.inner();
        let mut rows: Vec<Row> = inner
            .points
            .iter()
            .filter(|p| {
                p.target == q.target
                    && p.metric == q.metric
                    && q.key.as_ref().is_none_or(|k| *k == p.key)
                    && p.at >= q.from
                    && p.at < q.to
            })
            .map(|p| Row {
                key: p.key.clone(),
                at: p.at,
                value: p.value,
                max: p.value,
            })
            .collect();
        rows.sort_by(|a, b| a.key.cmp(&b.key).then(a.at.cmp(&b.at)));
        Ok(rows)
    }

    fn statement(&self, target: &str, queryid: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .inner()
            .statements
            .get(&(target.to_string(), queryid))
            .cloned())
    }

    fn events(
        &self,
        target: Option<&str>,
        from: Ts,
        to: Ts,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let inner = self.inner();
        let mut out: Vec<Event> = inner
            .events
            .iter()
            .filter(|e| target.is_none_or(|t| t == e.target) && e.at >= from && e.at < to)
            .cloned()
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.at));
        out.truncate(limit);
        Ok(out)
    }

    fn last_points(&self) -> Result<Vec<(String, Ts)>, StoreError> {
        let mut last: BTreeMap<String, Ts> = BTreeMap::new();
        for p in &self.inner().points {
            let e = last.entry(p.target.clone()).or_insert(p.at);
            if p.at > *e {
                *e = p.at;
            }
        }
        Ok(last.into_iter().collect())
    }

    fn maintain(&self, now: Ts, retention: &Retention) -> Result<MaintainStats, StoreError> {
        let cutoff = now
            - chrono::Duration::from_std(retention.raw)
                .map_err(|e| StoreError::Io(format!("retention: {e}")))?;
        let mut inner = self.inner();
        let before = inner.points.len();
        inner.points.retain(|p| p.at >= cutoff);
        Ok(MaintainStats {
            rolled_up: 0,
            deleted: (before - inner.points.len()) as u64,
        })
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        let inner = self.inner();
        Ok((inner.points.len() * std::mem::size_of::<Point>()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    fn point(at: Ts, key: &str, value: f64) -> Point {
        Point {
            target: "a".into(),
            metric: "tps".into(),
            key: key.into(),
            at,
            value,
        }
    }

    #[test]
    fn reads_back_a_range_by_key_then_time_and_retention_deletes_old_points() {
        let now = Utc::now();
        let s = MemoryStore::new();
        s.write(&[
            point(now - Duration::hours(50), "", 1.0),
            point(now - Duration::minutes(2), "", 2.0),
            point(now - Duration::minutes(1), "", 3.0),
        ])
        .unwrap();
        let q = Query {
            target: "a".into(),
            metric: "tps".into(),
            key: Some(String::new()),
            from: now - Duration::hours(1),
            to: now,
            resolution: None,
        };
        let values: Vec<f64> = s.query(&q).unwrap().iter().map(|r| r.value).collect();
        assert_eq!(values, vec![2.0, 3.0]);
        let stats = s.maintain(now, &Retention::default()).unwrap();
        assert_eq!(stats.deleted, 1);
        assert_eq!(
            s.last_points().unwrap(),
            vec![("a".to_string(), now - Duration::minutes(1))]
        );
    }
}
