//! The daemon's life cycle: the data directory and its lock, the tasks (collector,
//! maintenance, HTTP) started with one shutdown signal, the main loop that hands what the
//! collectors send to the store writer and the alerts, and a bounded stop on SIGTERM or
//! Ctrl-C.
//!
//! It knows none of the parts: the main loop calls a [`Hooks`] value (the store writer, the
//! alert evaluator, the regression check) and the tasks are futures that end when the
//! shutdown receiver turns true. `cli/serve.rs` wires the parts in.
//!
//! ```text
//! Daemon::start(config)        data dir (0700), lock file (a second daemon refuses),
//!                              signal handlers
//! daemon.run(hooks, tasks, rx) spawn tasks; loop { Collected -> hooks.collected,
//!                              every 2 s hooks.flush, every min(1 min, window / 4)
//!                              hooks.regressions,
//!                              every 10 min hooks.maintain_store }
//! SIGTERM / Ctrl-C / stop()    shutdown = true; drain rx; tasks joined; hooks.finish
//!                              (the last flush); all within STOP_WITHIN, then exit 0
//! ```

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::clock::Clock;
use super::config::Config;
use super::model::{Collected, Ts};
use crate::error::{Error, Result};

/// Everything stops within this after SIGTERM or Ctrl-C (systemd's TimeoutStopSec is 15 s).
pub const STOP_WITHIN: Duration = Duration::from_secs(10);
/// How often buffered points are written to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// How often the store makes rollups and deletes what is past retention.
pub const MAINTAIN_STORE_EVERY: Duration = Duration::from_secs(10 * 60);
/// How often query regressions are looked for at most: a window shorter than 4 minutes is
/// checked more often ([`super::config::Regressions::every`]).
pub const REGRESSIONS_EVERY: Duration = super::config::Regressions::MAX_EVERY;
/// How many collected items may wait for the main loop before collectors wait.
pub const CHANNEL_CAPACITY: usize = 1024;
/// The lock file in the data directory: holds the pid of the daemon that owns it.
pub const LOCK_FILE: &str = "pgopt-serve.lock";

/// A boxed future, for the hooks and tasks.
pub type BoxFuture<'a, T = ()> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A part that runs beside the main loop (the collector, maintenance in windows, the HTTP
/// server): given the shutdown receiver, it must return soon after it turns true.
pub struct Task {
    pub name: &'static str,
    pub start: Box<dyn FnOnce(watch::Receiver<bool>) -> BoxFuture<'static, Result<()>> + Send>,
}

impl Task {
    pub fn new<F, Fut>(name: &'static str, f: F) -> Self
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        Self {
            name,
            start: Box::new(move |rx| Box::pin(f(rx))),
        }
    }
}

/// Where the main loop hands things on. Every method has a default that does nothing, so
/// that the parts are plugged in one at a time. Each call should return quickly (the store
/// is written from `spawn_blocking`, webhooks are sent from a spawned task): the loop is
/// one task.
pub trait Hooks: Send {
    /// One item from a collector or from maintenance: to the writer's buffer, the fleet
    /// state and the alert evaluator.
    fn collected(&mut self, item: Collected, now: Ts) -> BoxFuture<'_> {
        let _ = (item, now);
        Box::pin(async {})
    }

    /// Every [`FLUSH_EVERY`]: the writer writes its buffer.
    fn flush(&mut self, now: Ts) -> BoxFuture<'_> {
        let _ = now;
        Box::pin(async {})
    }

    /// Every [`super::config::Regressions::every`] (at most [`REGRESSIONS_EVERY`]): query
    /// regressions and the alerts they fire.
    fn regressions(&mut self, now: Ts) -> BoxFuture<'_> {
        let _ = now;
        Box::pin(async {})
    }

    /// Every [`MAINTAIN_STORE_EVERY`]: rollups and retention.
    fn maintain_store(&mut self, now: Ts) -> BoxFuture<'_> {
        let _ = now;
        Box::pin(async {})
    }

    /// Once, at shutdown, after the tasks stopped and the channel was drained: the last
    /// flush. Bounded by what is left of [`STOP_WITHIN`].
    fn finish(&mut self, now: Ts) -> BoxFuture<'_> {
        let _ = now;
        Box::pin(async {})
    }
}

/// Hooks that do nothing (a daemon with no part plugged in yet, tests).
#[derive(Debug, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {}

/// The data directory, locked for this process: a second daemon on the same directory
/// (and so the same SQLite store) refuses to start. The lock is an `flock` on
/// [`LOCK_FILE`], released by the kernel when the process ends however it ends, so a crash
/// leaves no stale lock; the file holds the owner's pid for the error message.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `dir` (mode 0700) when missing and locks it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        prepare_dir(dir)?;
        let path = dir.join(LOCK_FILE);
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        // SAFETY: flock on a descriptor we own; no memory is shared with the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let owner = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok())
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                return Err(Error::BadInput(format!(
                    "another pgopt serve{owner} is using the data directory {}: two daemons \
                     must not share one store. Stop the other one, or give this one its own \
                     --data-dir",
                    dir.display()
                )));
            }
            return Err(io(err));
        }
        file.set_len(0).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates the data directory with mode 0700 (it will hold the history of the servers
/// watched), or checks that an existing one is a directory.
fn prepare_dir(dir: &Path) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    "the data directory {} can be read by other users: `chmod 700 {}`",
                    dir.display(),
                    dir.display()
                );
            }
            Ok(())
        }
        Ok(_) => Err(Error::BadInput(format!(
            "the data directory {} is not a directory: give another --data-dir",
            dir.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
            // The mode above is masked by the umask; the directory itself must be 0700.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
        }
        Err(e) => Err(io(e)),
    }
}

/// Why the daemon stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGTERM.
    Terminate,
    /// Ctrl-C (SIGINT).
    Interrupt,
    /// [`Daemon::stopper`]'s sender, or every task and collector ended.
    Requested,
}

/// A started daemon: the data directory is locked and the signal handlers are installed
/// (so a SIGTERM that comes before [`Daemon::run`] is not lost).
pub struct Daemon {
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    lock: DataDirLock,
    shutdown: watch::Sender<bool>,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    terminate: tokio::signal::unix::Signal,
    /// Ctrl-C.
    interrupt: tokio::signal::unix::Signal,
    /// The bound on the stop ([`STOP_WITHIN`]; tests shorten it).
    pub stop_within: Duration,
}

impl Daemon {
    /// Locks the data directory and installs the signal handlers. Call inside the runtime.
    pub fn start(config: Arc<Config>, clock: Arc<dyn Clock>) -> Result<Self> {
        let lock = DataDirLock::acquire(&config.data_dir)?;
        use tokio::signal::unix::{signal, SignalKind};
        let handler = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| Error::Io {
                path: format!("{name} handler"),
                source: e,
            })
        };
        let terminate = handler(SignalKind::terminate(), "SIGTERM")?;
        let interrupt = handler(SignalKind::interrupt(), "SIGINT")?;
        let (shutdown, _) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        Ok(Self {
            config,
            clock,
            lock,
            shutdown,
            stop_tx,
            stop_rx,
            terminate,
            interrupt,
            stop_within: STOP_WITHIN,
        })
    }

    /// The channel the collectors and maintenance send on (pass clones of the sender) and
    /// the main loop receives from.
    pub fn channel() -> (mpsc::Sender<Collected>, mpsc::Receiver<Collected>) {
        mpsc::channel(CHANNEL_CAPACITY)
    }

    /// A receiver that turns true when the daemon stops: for parts started outside
    /// [`Daemon::run`]'s tasks.
    pub fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Sending `true` stops the daemon as SIGTERM would (tests, an embedding program).
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop_tx.clone()
    }

    /// The lock file (its directory is the data directory).
    pub fn lock_path(&self) -> &Path {
        self.lock.path()
    }

    /// Runs until SIGTERM, Ctrl-C or [`Daemon::stopper`]; then stops everything within
    /// [`Daemon::stop_within`]. `Ok` means a clean stop (exit 0). A task that fails before
    /// the stop (the HTTP server cannot bind its address) stops the daemon and is its error.
    pub async fn run(
        mut self,
        mut hooks: Box<dyn Hooks>,
        tasks: Vec<Task>,
        mut rx: mpsc::Receiver<Collected>,
    ) -> Result<StopReason> {
        let mut set = JoinSet::new();
        for task in tasks {
            let name = task.name;
            let fut = (task.start)(self.shutdown.subscribe());
            set.spawn(async move { (name, fut.await) });
        }
        let started = Instant::now();
        let mut flush = tokio::time::interval_at(started + FLUSH_EVERY, FLUSH_EVERY);
        let regressions_every = self.config.regressions.every();
        let mut regressions =
            tokio::time::interval_at(started + regressions_every, regressions_every);
        let mut maintain =
            tokio::time::interval_at(started + MAINTAIN_STORE_EVERY, MAINTAIN_STORE_EVERY);
        for i in [&mut flush, &mut regressions, &mut maintain] {
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
        }
        let mut channel_open = true;
        let mut failure: Option<Error> = None;
        tracing::info!(
            targets = self.config.targets.len(),
            data_dir = %self.config.data_dir.display(),
            listen = %self.config.listen,
            "pgopt serve started"
        );
        let reason = loop {
            tokio::select! {
                _ = self.terminate.recv() => break StopReason::Terminate,
                _ = self.interrupt.recv() => break StopReason::Interrupt,
                _ = stopped(&mut self.stop_rx) => break StopReason::Requested,
                item = rx.recv(), if channel_open => match item {
                    Some(item) => hooks.collected(item, self.clock.now()).await,
                    None => channel_open = false,
                },
                Some(done) = set.join_next() => match done {
                    Ok((name, Ok(()))) => tracing::info!("{name} ended"),
                    Ok((name, Err(e))) => {
                        tracing::error!("{name} failed: {e}");
                        failure = Some(e);
                        break StopReason::Requested;
                    }
                    Err(e) => {
                        tracing::error!("a task panicked or was cancelled: {e}");
                        failure = Some(Error::Internal(format!("a daemon task failed: {e}")));
                        break StopReason::Requested;
                    }
                },
                _ = flush.tick() => hooks.flush(self.clock.now()).await,
                _ = regressions.tick() => hooks.regressions(self.clock.now()).await,
                _ = maintain.tick() => hooks.maintain_store(self.clock.now()).await,
            }
        };
        tracing::info!(?reason, "stopping: finishing the work in flight");
        let deadline = Instant::now() + self.stop_within;
        let _ = self.shutdown.send(true);

        // The tasks finish what is in flight (a collection, a maintenance step, requests)
        // while the loop keeps taking what they send, until all are done or time is up.
        // A fifth of the bound is kept for the last flush.
        let tasks_deadline = deadline - self.stop_within / 5;
        loop {
            if set.is_empty() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(tasks_deadline) => {
                    tracing::warn!(
                        "{} task(s) did not stop within {:.0?}: cancelled",
                        set.len(),
                        self.stop_within
                    );
                    set.abort_all();
                    break;
                }
                item = rx.recv(), if channel_open => match item {
                    Some(item) => hooks.collected(item, self.clock.now()).await,
                    None => channel_open = false,
                },
                Some(done) = set.join_next() => match done {
                    Ok((name, Ok(()))) => tracing::debug!("{name} stopped"),
                    Ok((name, Err(e))) => tracing::warn!("{name} stopped with an error: {e}"),
                    Err(e) if e.is_cancelled() => {}
                    Err(e) => tracing::warn!("a task panicked while stopping: {e}"),
                },
            }
        }
        // What was sent before the tasks ended.
        while let Ok(item) = rx.try_recv() {
            hooks.collected(item, self.clock.now()).await;
        }
        let now = self.clock.now();
        if tokio::time::timeout_at(deadline, hooks.finish(now))
            .await
            .is_err()
        {
            tracing::warn!(
                "the last flush did not end within the stop bound: the unflushed batch is lost"
            );
        }
        drop(set);
        match failure {
            Some(e) => Err(e),
            None => {
                tracing::info!("pgopt serve stopped");
                Ok(reason)
            }
        }
    }
}

/// Ends when `rx` turns true or its sender is gone (the watch guard is not held across an
/// await, so the future stays `Send`).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// A future that ends when `rx` turns true (or its sender is gone): for
/// `serve::http::serve(app, shutdown)` and other parts that take a future.
pub async fn until_shutdown(mut rx: watch::Receiver<bool>) {
    stopped(&mut rx).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::clock::SystemClock;
    use crate::serve::config::{Config, Intervals, Regressions, TargetConfig};
    use crate::serve::model::{Event, EventKind};
    use crate::serve::store::Retention;
    use std::sync::Mutex;

    fn config(dir: &Path) -> Arc<Config> {
        Arc::new(Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.to_path_buf(),
            store: None,
            auth: None,
            tls: None,
            intervals: Intervals::default(),
            retention: Retention::default(),
            targets: vec![TargetConfig {
                name: "a".into(),
                dsn: crate::db::secret::Secret::new("host=127.0.0.1"),
                password_file: None,
                groups: vec![],
                labels: Default::default(),
                maintenance_apply: false,
                line: 0,
            }],
            alerts: vec![],
            regressions: Regressions::default(),
            webhooks: vec![],
            windows: vec![],
        })
    }

    /// Records what the main loop hands on.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Hooks for Recorder {
        fn collected(&mut self, item: Collected, _now: Ts) -> BoxFuture<'_> {
            let what = match item {
                Collected::Event(e) => format!("event {}", e.message),
                _ => "other".to_string(),
            };
            self.0.lock().unwrap().push(what);
            Box::pin(async {})
        }
        fn finish(&mut self, _now: Ts) -> BoxFuture<'_> {
            self.0.lock().unwrap().push("finish".into());
            Box::pin(async {})
        }
    }

    fn event(message: &str) -> Collected {
        Collected::Event(Event {
            target: "a".into(),
            at: chrono::Utc::now(),
            kind: EventKind::Up,
            message: message.into(),
            details: Default::default(),
        })
    }

    #[test]
    fn data_dir_is_created_private_and_a_second_lock_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state").join("pgopt");
        let first = DataDirLock::acquire(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let pid = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        let err = DataDirLock::acquire(&dir).unwrap_err().to_string();
        assert!(err.contains("another pgopt serve"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("--data-dir"), "{err}");
        drop(first);
        DataDirLock::acquire(&dir).expect("free again once the first is dropped");
    }

    #[test]
    fn a_data_dir_that_is_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let err = DataDirLock::acquire(&file).unwrap_err().to_string();
        assert!(err.contains("is not a directory"), "{err}");
    }

    #[tokio::test]
    async fn stop_drains_what_the_tasks_sent_then_finishes_once() {
        let tmp = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(config(tmp.path()), Arc::new(SystemClock)).unwrap();
        let stop = daemon.stopper();
        let (tx, rx) = Daemon::channel();
        let rec = Recorder::default();
        let seen = rec.0.clone();
        // A collector that sends one item at once and one more when told to stop.
        let task = Task::new("collector", move |mut shutdown| async move {
            tx.send(event("first")).await.unwrap();
            let _ = shutdown.wait_for(|s| *s).await;
            tx.send(event("in flight at stop")).await.unwrap();
            Ok(())
        });
        let run = tokio::spawn(daemon.run(Box::new(rec), vec![task], rx));
        // Stop once the first item went through the loop.
        while seen.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(true).unwrap();
        let reason = run.await.unwrap().unwrap();
        assert_eq!(reason, StopReason::Requested);
        assert_eq!(
            *seen.lock().unwrap(),
            vec!["event first", "event in flight at stop", "finish"]
        );
    }

    #[tokio::test]
    async fn a_task_that_ignores_shutdown_is_cancelled_within_the_bound() {
        let tmp = tempfile::tempdir().unwrap();
        let mut daemon = Daemon::start(config(tmp.path()), Arc::new(SystemClock)).unwrap();
        daemon.stop_within = Duration::from_millis(200);
        let stop = daemon.stopper();
        let (_tx, rx) = Daemon::channel();
        let rec = Recorder::default();
        let seen = rec.0.clone();
        let stubborn = Task::new("stubborn", |_shutdown| async {
            std::future::pending::<()>().await;
            Ok(())
        });
        let run = tokio::spawn(daemon.run(Box::new(rec), vec![stubborn], rx));
        stop.send(true).unwrap();
        assert_eq!(run.await.unwrap().unwrap(), StopReason::Requested);
        assert_eq!(*seen.lock().unwrap(), vec!["finish"]);
    }

    #[tokio::test]
    async fn a_task_failing_before_the_stop_stops_the_daemon_with_its_error() {
        let tmp = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(config(tmp.path()), Arc::new(SystemClock)).unwrap();
        let (_tx, rx) = Daemon::channel();
        let failing = Task::new("http", |_shutdown| async {
            Err(Error::BadInput(
                "cannot listen on 127.0.0.1:1: in use".into(),
            ))
        });
        let err = daemon
            .run(Box::new(NoHooks), vec![failing], rx)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot listen"), "{err}");
    }
}
