//! `GET /metrics`: the fleet in the OpenMetrics text format, for Prometheus.
//!
//! A [`Collector`] reads the [`Fleet`](crate::serve::state::Fleet) at scrape time: nothing
//! is copied into counters between scrapes, so a scrape shows exactly what the pages show.
//! Every series is labelled by the target's name from the config, never by its DSN.
//! Statement series are limited to the top [`TOP_STATEMENTS`] per target by time, so
//! that the number of series stays bounded whatever the workload.
//!
//! A target that is not up exports `pgopt_up 0` and none of its last sample's values
//! (they would be stale), as postgres_exporter does with `pg_up`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::AppState;
use crate::advise::Severity;
use crate::serve::model::{m, Point, Sample, METRICS};
use crate::serve::state::{AlertState, Health};

/// The content type of the OpenMetrics text format (Prometheus 3 refuses a scrape
/// without a valid one).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every family's name starts with this (`pgopt_up`, `pgopt_transactions_per_second`).
pub const PREFIX: &str = "pgopt";

/// Statement series kept per target (by execution time in the interval).
pub const TOP_STATEMENTS: usize = 20;

/// The registry `/metrics` encodes: one collector reading `app` at each scrape.
pub fn registry(app: AppState) -> Registry {
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(FleetCollector { app }));
    registry
}

/// The exposition text of `registry` (ends `# EOF`).
pub fn encode(registry: &Registry) -> Result<String, fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

/// Reads the fleet when Prometheus scrapes.
struct FleetCollector {
    app: AppState,
}

impl fmt::Debug for FleetCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FleetCollector")
    }
}

/// One series of a gauge family: its labels and value.
type Series = (Vec<(&'static str, String)>, f64);

fn gauge_family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[Series],
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        family.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}

fn target_label(name: &str) -> Vec<(&'static str, String)> {
    vec![("target", name.to_string())]
}

/// The statement points of `sample` for its top `n` statements by time.
fn top_statement_points(sample: &Sample, n: usize) -> Vec<Point> {
    let mut statements: Vec<_> = sample.statements.iter().collect();
    statements.sort_by(|a, b| b.total_seconds.total_cmp(&a.total_seconds));
    let keep: BTreeSet<String> = statements
        .iter()
        .take(n)
        .map(|s| s.queryid.to_string())
        .collect();
    sample
        .points()
        .into_iter()
        .filter(|p| p.metric.starts_with("statement_") && keep.contains(&p.key))
        .collect()
}

impl Collector for FleetCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let views = self.app.fleet.views();
        let now = self.app.clock.now();

        let up: Vec<Series> = views
            .iter()
            .map(|v| {
                let up = matches!(v.health, Health::Up { .. });
                (target_label(&v.name), if up { 1.0 } else { 0.0 })
            })
            .collect();
        gauge_family(
            &mut enc,
            "up",
            "1 when the last collection from the target succeeded, else 0.",
            &up,
        )?;

        // The values of the targets that are up, by metric name.
        let mut by_metric: BTreeMap<&str, Vec<Series>> = BTreeMap::new();
        for view in &views {
            let (Health::Up { .. }, Some(sample)) = (&view.health, &view.last_sample) else {
                continue;
            };
            for info in METRICS {
                if info.name == m::UP || info.name.starts_with("statement_") {
                    continue;
                }
                let series = by_metric.entry(info.name).or_default();
                match info.key {
                    None => {
                        if let Some(v) = sample.values.get(info.name).filter(|v| v.is_finite()) {
                            series.push((target_label(&view.name), *v));
                        }
                    }
                    Some(key) => {
                        for (k, v) in sample.keyed.get(info.name).into_iter().flatten() {
                            if v.is_finite() {
                                let mut labels = target_label(&view.name);
                                labels.push((key, k.clone()));
                                series.push((labels, *v));
                            }
                        }
                    }
                }
            }
            for p in top_statement_points(sample, TOP_STATEMENTS) {
                let Some(info) = METRICS.iter().find(|i| i.name == p.metric) else {
                    continue;
                };
                let mut labels = target_label(&view.name);
                labels.push((info.key.unwrap_or("queryid"), p.key));
                by_metric
                    .entry(info.name)
                    .or_default()
                    .push((labels, p.value));
            }
        }
        for info in METRICS.iter().filter(|i| i.name != m::UP) {
            let series = by_metric.remove(info.name).unwrap_or_default();
            gauge_family(&mut enc, info.prometheus, info.help, &series)?;
        }

        let findings: Vec<Series> = views
            .iter()
            .flat_map(|v| {
                [Severity::Info, Severity::Warning, Severity::Critical]
                    .into_iter()
                    .map(|sev| {
                        let n = v.findings.iter().filter(|f| f.severity == sev).count();
                        let mut labels = target_label(&v.name);
                        labels.push(("severity", sev.as_str().to_string()));
                        (labels, n as f64)
                    })
            })
            .collect();
        gauge_family(
            &mut enc,
            "findings",
            "Findings of the target's last full snapshot, by severity.",
            &findings,
        )?;

        let alerts = self
            .app
            .fleet
            .alerts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut firing: BTreeMap<String, f64> =
            views.iter().map(|v| (v.name.clone(), 0.0)).collect();
        for a in alerts.iter().filter(|a| a.state == AlertState::Firing) {
            *firing.entry(a.target.clone()).or_insert(0.0) += 1.0;
        }
        let firing: Vec<Series> = firing
            .into_iter()
            .map(|(t, n)| (target_label(&t), n))
            .collect();
        gauge_family(
            &mut enc,
            "alerts_firing",
            "Alerts firing on the target.",
            &firing,
        )?;

        // The daemon's own health.
        let errors = self.app.fleet.errors_total();
        let mut family = enc.encode_descriptor(
            "collection_errors",
            "Failed collections from the target since the daemon started.",
            None,
            MetricType::Counter,
        )?;
        for view in &views {
            let n = errors.get(&view.name).copied().unwrap_or(0);
            ConstCounter::new(n).encode(family.encode_family(&target_label(&view.name))?)?;
        }

        let store = self
            .app
            .fleet
            .store
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        gauge_family(
            &mut enc,
            "store_up",
            "1 while writes to the history store succeed, 0 while they fail (points wait in memory).",
            &[(vec![], if store.error.is_none() { 1.0 } else { 0.0 })],
        )?;
        gauge_family(
            &mut enc,
            "store_pending_points",
            "Points held in memory, waiting for the history store.",
            &[(vec![], store.pending_points as f64)],
        )?;
        let age: Vec<Series> = store
            .last_write
            .map(|at| (vec![], (now - at).as_seconds_f64().max(0.0)))
            .into_iter()
            .collect();
        gauge_family(
            &mut enc,
            "store_last_write_age_seconds",
            "Seconds since the last successful write to the history store.",
            &age,
        )?;

        let mut info = enc.encode_descriptor(
            "build",
            "The pgopt that serves these metrics.",
            None,
            MetricType::Info,
        )?;
        info.encode_info(&vec![("version", env!("CARGO_PKG_VERSION"))])?;
        Ok(())
    }
}
