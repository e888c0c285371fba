//! Progress of long work as events, so that the library draws nothing itself.
//!
//! Long work (seeding, bench runs, the executor's steps and index builds; vacuum later) reports [`Event`]s to a
//! [`Progress`] sink it is given. The CLI renders them with indicatif (`cli::progress`), tests
//! collect them ([`Collect`]), the daemon will publish them; [`NoProgress`] drops them. Nothing
//! here knows about terminals.

use std::sync::Mutex;

/// What `done` and `total` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Rows,
    Transactions,
    Steps,
    /// Table or index blocks (pages) scanned, as `pg_stat_progress_*` counts them.
    Blocks,
    /// Tuples (rows) sorted, loaded or validated by an index build.
    Tuples,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Rows => "rows",
            Unit::Transactions => "transactions",
            Unit::Steps => "steps",
            Unit::Blocks => "blocks",
            Unit::Tuples => "tuples",
        }
    }
}

/// How an event is meant to be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The current state of the phase: replaces the previous one (a bar, a spinner).
    Update,
    /// A line that stays (a periodic report the user asked for): shown even when no live
    /// display is.
    Line,
    /// The phase is over: its live display goes away.
    Finish,
}

/// One report of progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The long work this belongs to (`seeding`, `bench`).
    pub phase: &'static str,
    pub kind: Kind,
    /// What part of the phase runs now (a table name, `checking foreign keys`).
    pub step: Option<String>,
    /// Done so far in the whole phase, in `unit`.
    pub done: u64,
    /// The whole phase in `unit`, when known.
    pub total: Option<u64>,
    pub unit: Unit,
    /// A sentence for people (a bench progress line, a warm-up countdown).
    pub message: Option<String>,
}

impl Event {
    /// An [`Kind::Update`] of `phase`: `done` of `total` `unit`.
    pub fn update(phase: &'static str, unit: Unit, done: u64, total: Option<u64>) -> Event {
        Event {
            phase,
            kind: Kind::Update,
            step: None,
            done,
            total,
            unit,
            message: None,
        }
    }

    pub fn step(mut self, step: impl Into<String>) -> Event {
        self.step = Some(step.into());
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Event {
        self.message = Some(message.into());
        self
    }

    pub fn kind(mut self, kind: Kind) -> Event {
        self.kind = kind;
        self
    }
}

/// Where progress goes. Called from the working task: keep it cheap and never block long.
pub trait Progress: Send + Sync {
    fn event(&self, event: Event);
}

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: Event) {}
}

/// Keeps every event (for tests, and for callers that look at them afterwards).
#[derive(Debug, Default)]
pub struct Collect {
    events: Mutex<Vec<Event>>,
}

impl Collect {
    pub fn new() -> Self {
        Collect::default()
    }

    /// The events so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("not poisoned").clone()
    }
}

impl Progress for Collect {
    fn event(&self, event: Event) {
        self.events.lock().expect("not poisoned").push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_keeps_events_in_order_and_no_progress_drops_them() {
        let c = Collect::new();
        let sink: &dyn Progress = &c;
        sink.event(Event::update("seeding", Unit::Rows, 10, Some(100)).step("users"));
        sink.event(Event::update("seeding", Unit::Rows, 100, Some(100)).kind(Kind::Finish));
        NoProgress.event(Event::update("seeding", Unit::Rows, 1, None));
        let e = c.events();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].step.as_deref(), Some("users"));
        assert_eq!((e[0].done, e[0].total), (10, Some(100)));
        assert_eq!(e[1].kind, Kind::Finish);
        assert_eq!(Unit::Rows.as_str(), "rows");
    }
}
