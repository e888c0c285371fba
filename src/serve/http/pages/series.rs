//! From the store to the charts: reads one metric over a range and averages it into at
//! most [`BUCKETS`] points per series, so that a chart of a week of 10-second samples
//! stays a few hundred points whatever the store holds.

use std::collections::BTreeMap;

use crate::report::chart::{palette, Line, TimeChart};
use crate::report::html::esc;
use crate::serve::model::Ts;
use crate::serve::store::{Query, Store, StoreError};

/// Points per series on a chart.
pub const BUCKETS: i64 = 120;

/// The time window of a page.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: Ts,
    pub to: Ts,
}

impl Window {
    pub fn ending(now: Ts, range: super::Range) -> Self {
        Self {
            from: now - range.duration(),
            to: now,
        }
    }

    /// Seconds per bucket.
    fn bucket(&self) -> i64 {
        ((self.to - self.from).num_seconds() / BUCKETS).max(1)
    }
}

/// One series: key (`""` for a server-wide metric) → (bucket start, average) in time order.
pub type Series = BTreeMap<String, Vec<(i64, f64)>>;

/// Reads `metric` of `target` (one key, or every key with `None`) over `w`, averaged per
/// bucket.
pub fn read(
    store: &dyn Store,
    target: &str,
    metric: &str,
    key: Option<&str>,
    w: Window,
) -> Result<Series, StoreError> {
    let rows = store.query(&Query {
        target: target.to_string(),
        metric: metric.to_string(),
        key: key.map(str::to_string),
        from: w.from,
        to: w.to,
        resolution: None,
    })?;
    let width = w.bucket();
    let start = w.from.timestamp();
    let mut sums: BTreeMap<String, BTreeMap<i64, (f64, u32)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.value.is_finite()) {
        let b = start + (r.at.timestamp() - start).div_euclid(width) * width;
        let e = sums
            .entry(r.key.clone())
            .or_default()
            .entry(b)
            .or_insert((0.0, 0));
        e.0 += r.value;
        e.1 += 1;
    }
    Ok(sums
        .into_iter()
        .map(|(k, buckets)| {
            let points = buckets
                .into_iter()
                .map(|(b, (sum, n))| (b + width / 2, sum / n as f64))
                .collect();
            (k, points)
        })
        .collect())
}

/// The average of a series' points (for ranking statements).
pub fn mean(points: &[(i64, f64)]) -> f64 {
    if points.is_empty() {
        0.0
    } else {
        points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64
    }
}

/// What one chart shows.
pub struct ChartSpec<'a> {
    /// `data-chart` (the browser test finds the chart by it).
    pub id: &'a str,
    pub title: &'a str,
    pub axis: &'a str,
    pub max: Option<f64>,
    pub format: fn(f64) -> String,
    /// Multiplies every value (seconds → ms).
    pub scale: f64,
}

/// A chart of `lines` (label, points) in `<figure>`, or a sentence when there is no point.
pub fn figure(spec: &ChartSpec<'_>, w: Window, lines: Vec<(String, Vec<(i64, f64)>)>) -> String {
    let points: usize = lines.iter().map(|l| l.1.len()).sum();
    let empty = if points == 0 {
        "<figcaption class=\"note\">No data in this range (the target was not collected, \
         or this metric does not apply to it).</figcaption>\n"
    } else {
        ""
    };
    let chart = TimeChart {
        title: spec.title,
        axis: spec.axis,
        from: w.from.timestamp(),
        to: w.to.timestamp(),
        lines: lines
            .into_iter()
            .enumerate()
            .map(|(i, (label, points))| Line {
                label,
                color: palette(i),
                points: points
                    .into_iter()
                    .map(|(t, v)| (t, v * spec.scale))
                    .collect(),
            })
            .collect(),
        max: spec.max,
        // Two buckets without a point: a gap.
        gap: w.bucket() * 2 + 1,
        format: spec.format,
    };
    match chart.svg() {
        Ok(svg) => format!(
            "<figure class=\"chart\" data-chart=\"{}\">\n{svg}\n{empty}</figure>\n",
            esc(spec.id)
        ),
        Err(e) => format!(
            "<p class=\"error\">The chart {} could not be drawn: {}</p>\n",
            esc(spec.title),
            esc(&e.to_string())
        ),
    }
}
