//! Progress events drawn on stderr with indicatif: a bar for work with a known total, a
//! spinner line otherwise; [`Kind::Line`] events printed as lines, on a terminal or not.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Event, Kind, Progress};

/// Draws the events of one phase at a time on stderr. Live displays (bars, spinners) only
/// when stderr is a terminal.
pub struct Bars {
    live: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub fn stderr() -> Self {
        Bars {
            live: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
        }
    }
}

fn new_bar(e: &Event) -> ProgressBar {
    match e.total {
        Some(total) => {
            let b =
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(10));
            let template = format!(
                "{{msg:>26}} [{{bar:30}}] {{human_pos}}/{{human_len}} {} {{per_sec}} eta {{eta}}",
                e.unit.as_str()
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                b.set_style(style.progress_chars("=> "));
            }
            b
        }
        None => ProgressBar::new_spinner(),
    }
}

impl Progress for Bars {
    fn event(&self, e: Event) {
        let mut bar = self.bar.lock().expect("not poisoned");
        match e.kind {
            Kind::Line => {
                let text = e.message.unwrap_or_default();
                match bar.as_ref() {
                    Some(b) => b.suspend(|| eprintln!("{text}")),
                    None => eprintln!("{text}"),
                }
            }
            Kind::Finish => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
            Kind::Update => {
                if !self.live {
                    return;
                }
                let b = bar.get_or_insert_with(|| new_bar(&e));
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
