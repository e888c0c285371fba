//! SVG charts for the HTML reports and the dashboard, drawn with plotters: the axes, labels
//! and legend by plotters; the bars (and the points of time charts) as plain `<rect
//! data-bar=…>` (`<circle data-point=…>`) elements with a tooltip, so a page's bars and
//! points can be counted and read back (the browser tests do) and each says its value.
//! Pure: figures in, SVG text out.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::html::esc;
use crate::error::{Error, Result};

pub(crate) const WIDTH: u32 = 960;

pub(crate) fn chart_error(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("drawing the chart: {e}"))
}

/// The `i`th colour of plotters' palette of distinct colours.
pub(crate) fn palette(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// Milliseconds (or any small figure) with the digits that matter.
pub(crate) fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A log-scale range covering `values` (positive ones), with some room.
pub(crate) fn positive_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi <= 0.0 {
        return 0.001..1.0;
    }
    (lo / 1.5)..(hi * 1.5)
}

/// The value axis of a bar chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    Linear,
    Log,
    /// Log when the largest value is more than [`WIDE`] times the smallest, else linear.
    Auto,
}

/// The ratio of largest to smallest value above which [`Scale::Auto`] draws a log axis: past
/// it the small bars would be invisible on a linear one.
pub(crate) const WIDE: f64 = 20.0;

/// One series of a bar chart: its legend label and colour.
pub(crate) struct Series {
    pub label: String,
    pub color: RGBColor,
}

/// A horizontal bar chart: one row per thing (top to bottom in the given order), in each row
/// one bar per series (a missing value draws no bar).
pub(crate) struct Bars<'a> {
    pub title: &'a str,
    /// The value axis' description, unit included ("latency (ms)").
    pub axis: &'a str,
    pub series: Vec<Series>,
    pub rows: Vec<(String, Vec<Option<f64>>)>,
    pub scale: Scale,
    /// Tick labels of the value axis.
    pub format: fn(f64) -> String,
}

/// A bar in backend pixels, with what it shows.
struct Rect {
    x: i32,
    y: i32,
    w: i32,
    h: i32,
    series: usize,
    row: usize,
    value: f64,
}

/// Row labels longer than this are cut (the tables beside the charts hold them whole).
const LABEL_CHARS: usize = 44;

fn cut(s: &str, max: usize) -> String {
    let one = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= max {
        one
    } else {
        format!("{}…", one.chars().take(max - 1).collect::<String>())
    }
}

impl Bars<'_> {
    fn log(&self) -> bool {
        match self.scale {
            Scale::Linear => false,
            Scale::Log => true,
            Scale::Auto => {
                let (lo, hi) = self
                    .values()
                    .filter(|v| *v > 0.0)
                    .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
                hi > 0.0 && hi / lo > WIDE
            }
        }
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.rows
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied())
    }

    /// The chart as one `<svg>` element; each bar a `<rect data-bar="SERIES" data-row="ROW"
    /// data-value="V">` with a `<title>`.
    pub(crate) fn svg(&self) -> Result<String> {
        let n = self.rows.len().max(1);
        let k = self.series.len().max(1);
        let row_px = (12 * k as u32 + 14).max(30);
        let legend_px = 34;
        let height = 90 + legend_px + row_px * n as u32;
        let log = self.log();
        let mut svg = String::new();
        let rects = {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
            root.fill(&WHITE).map_err(chart_error)?;
            let (plot, legend) = root.split_vertically(height - legend_px);
            let rects = if log {
                let range = positive_range(self.values());
                let base = range.start;
                self.frame(&plot, range.log_scale(), base)?
            } else {
                let hi = self.values().fold(0.0f64, f64::max);
                let hi = if hi > 0.0 { hi * 1.1 } else { 1.0 };
                self.frame(&plot, 0.0..hi, 0.0)?
            };
            self.legend(&legend)?;
            root.present().map_err(chart_error)?;
            rects
        };
        let mut bars = String::new();
        for r in rects {
            let series = &self.series[r.series];
            let row = &self.rows[r.row].0;
            let c = series.color;
            bars.push_str(&format!(
                "<rect data-bar=\"{s}\" data-row=\"{rw}\" data-value=\"{v}\" x=\"{x}\" y=\"{y}\" \
                 width=\"{w}\" height=\"{h}\" fill=\"#{:02X}{:02X}{:02X}\">\
                 <title>{rw}, {s}: {vt}</title></rect>\n",
                c.0,
                c.1,
                c.2,
                s = esc(&series.label),
                rw = esc(row),
                v = r.value,
                vt = esc(&(self.format)(r.value)),
                x = r.x,
                y = r.y,
                w = r.w,
                h = r.h,
            ));
        }
        let end = svg
            .rfind("</svg>")
            .ok_or_else(|| chart_error("plotters wrote no </svg>"))?;
        svg.insert_str(end, &bars);
        Ok(svg)
    }

    /// Axes, row labels and value ticks; returns where the bars go.
    fn frame<X>(
        &self,
        area: &DrawingArea<SVGBackend<'_>, Shift>,
        x: X,
        base: f64,
    ) -> Result<Vec<Rect>>
    where
        X: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
    {
        let n = self.rows.len().max(1);
        let k = self.series.len().max(1);
        let names: Vec<String> = self.rows.iter().map(|r| cut(&r.0, LABEL_CHARS)).collect();
        let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(0) as u32;
        let mut chart = ChartBuilder::on(area)
            .caption(self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size((longest * 7 + 16).clamp(80, 340))
            .build_cartesian_2d(x, 0f64..n as f64)
            .map_err(chart_error)?;
        let format = self.format;
        let axis = if self.log() {
            format!("{}, log scale", self.axis)
        } else {
            self.axis.to_string()
        };
        // Row i is drawn at n - 1 - i, so the first row is on top.
        chart
            .configure_mesh()
            .disable_y_mesh()
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| {
                let i = (y - 0.5).round();
                if (y - 0.5 - i).abs() < 0.01 && i >= 0.0 && (i as usize) < names.len() {
                    names[names.len() - 1 - i as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_desc(axis)
            .x_label_formatter(&|x| format(*x))
            .draw()
            .map_err(chart_error)?;
        let slot = 0.8 / k as f64;
        let mut rects = Vec::new();
        for (i, (_, values)) in self.rows.iter().enumerate() {
            for (s, v) in values.iter().enumerate().take(k) {
                let Some(v) = *v else { continue };
                if v <= base && base > 0.0 {
                    continue; // not on a log axis
                }
                let top = (n - 1 - i) as f64 + 0.9 - s as f64 * slot;
                let (x0, y0) = chart.backend_coord(&(base, top));
                let (x1, y1) = chart.backend_coord(&(v, top - slot * 0.9));
                rects.push(Rect {
                    x: x0.min(x1),
                    y: y0.min(y1),
                    w: (x1 - x0).abs(),
                    h: (y1 - y0).abs().max(1),
                    series: s,
                    row: i,
                    value: v,
                });
            }
        }
        Ok(rects)
    }

    /// The legend, one swatch and label per series, in a strip under the chart.
    fn legend(&self, area: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<()> {
        legend(
            area,
            self.series.iter().map(|s| (s.label.as_str(), s.color)),
        )
    }
}

/// A legend strip: one swatch and label per series.
fn legend<'a>(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    series: impl ExactSizeIterator<Item = (&'a str, RGBColor)>,
) -> Result<()> {
    let step = ((WIDTH as i32 - 80) / series.len().max(1) as i32).min(180);
    for (i, (label, color)) in series.enumerate() {
        let x = 80 + i as i32 * step;
        area.draw(&Rectangle::new([(x, 8), (x + 14, 22)], color.filled()))
            .map_err(chart_error)?;
        area.draw(&Text::new(
            cut(label, 24),
            (x + 20, 9),
            ("sans-serif", 14).into_font(),
        ))
        .map_err(chart_error)?;
    }
    Ok(())
}

/// One line of a [`TimeChart`]: points as (Unix seconds, value), in time order.
pub(crate) struct Line {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(i64, f64)>,
}

/// Lines over time (the dashboard's charts): the frame, axes and lines by plotters; each
/// data point also a `<circle data-point="LINE" data-at="RFC 3339" data-value="V">` with a
/// tooltip, so a page's points can be counted and read back. Two points further apart than
/// `gap` are not joined: a gap in the history shows as one.
pub(crate) struct TimeChart<'a> {
    pub title: &'a str,
    /// The value axis' description, unit included ("transactions per second (1/s)").
    pub axis: &'a str,
    /// The time range shown, in Unix seconds.
    pub from: i64,
    pub to: i64,
    pub lines: Vec<Line>,
    /// The top of the value axis when it is fixed (a ratio: 1.0); `None`: from the data.
    pub max: Option<f64>,
    pub gap: i64,
    /// Tick labels and tooltips of values.
    pub format: fn(f64) -> String,
}

/// A chart's height without its legend.
const TIME_HEIGHT: u32 = 300;

/// A time tick: hours and minutes for a range up to two days, else the date too (UTC).
fn time_label(t: i64, span: i64) -> String {
    let Some(at) = chrono::DateTime::from_timestamp(t, 0) else {
        return String::new();
    };
    if span <= 2 * 86_400 {
        at.format("%H:%M").to_string()
    } else {
        at.format("%m-%d %H:%M").to_string()
    }
}

impl TimeChart<'_> {
    /// The chart as one `<svg>` element.
    pub(crate) fn svg(&self) -> Result<String> {
        let legend_px = if self.lines.len() > 1 { 34 } else { 0 };
        let height = TIME_HEIGHT + legend_px;
        let (from, to) = (self.from, self.to.max(self.from + 1));
        let hi = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let top = self
            .max
            .unwrap_or(if hi > 0.0 { hi * 1.1 } else { 1.0 })
            .max(hi);
        let mut svg = String::new();
        let mut marks = Vec::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
            root.fill(&WHITE).map_err(chart_error)?;
            let (plot, strip) = root.split_vertically(TIME_HEIGHT);
            let mut chart = ChartBuilder::on(&plot)
                .caption(self.title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(72)
                .build_cartesian_2d(from as f64..to as f64, 0f64..top)
                .map_err(chart_error)?;
            let format = self.format;
            let span = to - from;
            chart
                .configure_mesh()
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 14))
                .x_labels(8)
                .x_label_formatter(&|x| time_label(*x as i64, span))
                .x_desc("time (UTC)")
                .y_labels(6)
                .y_label_formatter(&|y| format(*y))
                .y_desc(self.axis)
                .draw()
                .map_err(chart_error)?;
            for line in &self.lines {
                let style = line.color.stroke_width(2);
                let mut run: Vec<(f64, f64)> = Vec::new();
                let mut last: Option<i64> = None;
                let points = line
                    .points
                    .iter()
                    .filter(|(t, v)| v.is_finite() && (from..=to).contains(t));
                for &(t, v) in points {
                    if last.is_some_and(|l| t - l > self.gap) && !run.is_empty() {
                        chart
                            .draw_series(LineSeries::new(std::mem::take(&mut run), style))
                            .map_err(chart_error)?;
                    }
                    run.push((t as f64, v));
                    last = Some(t);
                    let (cx, cy) = chart.backend_coord(&(t as f64, v));
                    marks.push((line, t, v, cx, cy));
                }
                if !run.is_empty() {
                    chart
                        .draw_series(LineSeries::new(run, style))
                        .map_err(chart_error)?;
                }
            }
            if legend_px > 0 {
                legend(
                    &strip,
                    self.lines.iter().map(|l| (l.label.as_str(), l.color)),
                )?;
            }
            root.present().map_err(chart_error)?;
        }
        let mut circles = String::new();
        for (line, t, v, cx, cy) in marks {
            let c = line.color;
            let at = chrono::DateTime::from_timestamp(t, 0)
                .map(|a| a.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default();
            circles.push_str(&format!(
                "<circle data-point=\"{l}\" data-at=\"{at}\" data-value=\"{v}\" cx=\"{cx}\" \
                 cy=\"{cy}\" r=\"2.5\" fill=\"#{:02X}{:02X}{:02X}\">\
                 <title>{l}, {at}: {vt}</title></circle>\n",
                c.0,
                c.1,
                c.2,
                l = esc(&line.label),
                vt = esc(&(self.format)(v)),
            ));
        }
        let end = svg
            .rfind("</svg>")
            .ok_or_else(|| chart_error("plotters wrote no </svg>"))?;
        svg.insert_str(end, &circles);
        Ok(svg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(rows: Vec<(String, Vec<Option<f64>>)>, scale: Scale) -> Bars<'static> {
        Bars {
            title: "t <b>",
            axis: "latency (ms)",
            series: vec![
                Series {
                    label: "before".into(),
                    color: RGBColor(1, 2, 3),
                },
                Series {
                    label: "after".into(),
                    color: RGBColor(4, 5, 6),
                },
            ],
            rows,
            scale,
            format: ms,
        }
    }

    #[test]
    fn every_value_is_one_tagged_bar_and_a_missing_one_none() {
        let svg = chart(
            vec![
                ("<script>x</script>".into(), vec![Some(1.0), Some(0.5)]),
                ("b".into(), vec![None, Some(2.0)]),
            ],
            Scale::Linear,
        )
        .svg()
        .unwrap();
        assert_eq!(svg.matches("<rect data-bar=").count(), 3, "{svg}");
        assert_eq!(svg.matches("data-bar=\"after\"").count(), 2);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;x&lt;/script&gt;, before: 1.00"));
        assert!(svg.contains("t &lt;b&gt;"), "the title is escaped: {svg}");
        assert!(svg.contains(">\nbefore\n</text>"), "legend: {svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn auto_scale_is_log_only_for_a_wide_range() {
        let narrow = chart(
            vec![("a".into(), vec![Some(160.0), Some(2400.0)])],
            Scale::Auto,
        );
        assert!(!narrow.log());
        assert!(!narrow.svg().unwrap().contains("log scale"));
        let wide = chart(vec![("a".into(), vec![Some(0.1), Some(50.0)])], Scale::Auto);
        assert!(wide.log());
        assert!(wide.svg().unwrap().contains("latency (ms), log scale"));
    }

    fn time_chart(lines: Vec<Line>) -> TimeChart<'static> {
        TimeChart {
            title: "tps <i>",
            axis: "transactions per second (1/s)",
            from: 1_700_000_000,
            to: 1_700_003_600,
            lines,
            max: None,
            gap: 60,
            format: ms,
        }
    }

    #[test]
    fn every_time_point_is_one_tagged_circle_with_an_escaped_label() {
        let t0 = 1_700_000_000;
        let svg = time_chart(vec![
            Line {
                label: "<script>x</script>".into(),
                color: RGBColor(1, 2, 3),
                points: vec![(t0 + 10, 1.0), (t0 + 20, 2.0), (t0 + 30, f64::NAN)],
            },
            Line {
                label: "b".into(),
                color: RGBColor(4, 5, 6),
                // The last point is outside the range: not drawn.
                points: vec![(t0 + 10, 3.0), (t0 + 7200, 4.0)],
            },
        ])
        .svg()
        .unwrap();
        assert_eq!(svg.matches("<circle data-point=").count(), 3, "{svg}");
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg
            .contains("<title>&lt;script&gt;x&lt;/script&gt;, 2023-11-14T22:13:40Z: 2.00</title>"));
        assert!(svg.contains("tps &lt;i&gt;"), "the title is escaped: {svg}");
        assert!(svg.contains("time (UTC)"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn a_gap_in_the_history_breaks_the_line() {
        let t0 = 1_700_000_000;
        let joined = time_chart(vec![Line {
            label: "a".into(),
            color: RGBColor(1, 2, 3),
            points: vec![(t0 + 10, 1.0), (t0 + 40, 2.0), (t0 + 70, 1.0)],
        }])
        .svg()
        .unwrap();
        let broken = time_chart(vec![Line {
            label: "a".into(),
            color: RGBColor(1, 2, 3),
            points: vec![(t0 + 10, 1.0), (t0 + 40, 2.0), (t0 + 1000, 1.0)],
        }])
        .svg()
        .unwrap();
        let lines = |s: &str| s.matches("<polyline").count();
        assert_eq!(lines(&broken), lines(&joined) + 1, "{broken}");
    }

    #[test]
    fn no_rows_still_draw_a_frame() {
        let svg = chart(vec![], Scale::Auto).svg().unwrap();
        assert!(svg.contains("<svg"));
        assert_eq!(svg.matches("data-bar=").count(), 0);
    }
}
