//! Progress events drawn on stderr with indicatif: a bar for work with a known total, a
//! spinner line otherwise, one line per phase that runs (the executor's steps and, below
//! them, the index build of the running step); [`Kind::Line`] events printed as lines, on a
//! terminal or not.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Event, Kind, Progress, Unit};

/// A phase's display and what it was styled for (unit, known total).
type Display = (ProgressBar, Option<(Unit, bool)>);

/// Draws the events on stderr, one live display per phase. Live displays (bars, spinners)
/// only when stderr is a terminal.
pub struct Bars {
    live: bool,
    multi: MultiProgress,
    bars: Mutex<HashMap<&'static str, Display>>,
}

impl Bars {
    pub fn stderr() -> Self {
        Bars {
            live: std::io::stderr().is_terminal(),
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

fn style(e: &Event) -> Option<ProgressStyle> {
    let template = match e.total {
        Some(_) => format!(
            "{{msg:>26}} [{{bar:30}}] {{human_pos}}/{{human_len}} {} {{per_sec}} eta {{eta}}",
            e.unit.as_str()
        ),
        None => "{spinner} {msg}".to_string(),
    };
    ProgressStyle::with_template(&template)
        .ok()
        .map(|s| s.progress_chars("=> "))
}

impl Progress for Bars {
    fn event(&self, e: Event) {
        let mut bars = self.bars.lock().expect("not poisoned");
        match e.kind {
            Kind::Line => {
                let text = e.message.unwrap_or_default();
                if bars.is_empty() {
                    eprintln!("{text}");
                } else {
                    self.multi.suspend(|| eprintln!("{text}"));
                }
            }
            Kind::Finish => {
                if let Some((b, _)) = bars.remove(e.phase) {
                    b.finish_and_clear();
                    self.multi.remove(&b);
                }
            }
            Kind::Update => {
                if !self.live {
                    return;
                }
                let (b, shape) = bars
                    .entry(e.phase)
                    .or_insert_with(|| (self.multi.add(ProgressBar::new(0)), None));
                // A phase may change what it counts (an index build: blocks, then tuples).
                let now = Some((e.unit, e.total.is_some()));
                if *shape != now {
                    if let Some(s) = style(&e) {
                        b.set_style(s);
                    }
                    *shape = now;
                    b.reset();
                }
                if let Some(total) = e.total {
                    b.set_length(total);
                    b.set_position(e.done);
                }
                if let Some(text) = e.step.or(e.message) {
                    b.set_message(text);
                }
                if e.total.is_none() {
                    b.tick();
                }
            }
        }
    }
}

/// Collects a snapshot with a spinner on stderr when it is a terminal.
pub async fn collect_with_progress(
    conn: &crate::db::Conn,
    opts: &crate::collect::CollectOptions,
) -> crate::error::Result<crate::snapshot::Snapshot> {
    let spinner = indicatif::ProgressBar::new_spinner();
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        spinner.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    spinner.set_message(format!(
        "collecting a snapshot of {}:{}",
        conn.host, conn.port
    ));
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    let target = crate::snapshot::TargetInfo {
        host: conn.host.clone(),
        port: conn.port,
        database: conn.database.clone(),
        user: conn.user.clone(),
    };
    let result = crate::collect::collect(conn, target, opts).await;
    spinner.finish_and_clear();
    result
}
