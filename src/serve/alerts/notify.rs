//! Where alerts go: the log always (tracing, structured fields), and every configured
//! webhook as a JSON POST of the [`Transition`] (its documented body).
//!
//! - One worker task per webhook reads a bounded queue, so [`Notifier::send`] never waits
//!   for a receiver: a full queue drops the notification with a warning.
//! - Each POST is bounded by the webhook's timeout; a 5xx answer, a timeout or a refused
//!   connection is retried `retries` times with exponential backoff (and some jitter); a
//!   2xx ends it; a 4xx (or a redirect: none are followed) is not retried.
//! - Deduplicated: a transition id already sent is not sent again.
//! - A webhook URL may carry a token in its userinfo, path or query: logs and errors show
//!   only `scheme://host:port`.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::Url;
use tokio::sync::mpsc;

use super::{Status, Transition};
use crate::serve::config::Webhook;

/// Notifications waiting per webhook before new ones are dropped.
const QUEUE: usize = 256;
/// Transition ids remembered for deduplication.
const SEEN: usize = 10_000;
/// The first retry's wait; each next one doubles, up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Counters of what the notifier did (for tests, `/metrics` and the pages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifierStats {
    /// Deliveries put on a webhook's queue.
    pub queued: u64,
    /// POSTs made (first tries and retries).
    pub attempts: u64,
    /// Deliveries a webhook accepted (2xx).
    pub delivered: u64,
    /// Deliveries given up (a 4xx, or every retry failed).
    pub failed: u64,
    /// Dropped because a queue was full.
    pub dropped: u64,
    /// Transitions sent again with an id already sent, not delivered again.
    pub duplicates: u64,
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    attempts: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    duplicates: AtomicU64,
    /// Queued and not finished yet.
    in_flight: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// True when `id` is new (and now remembered).
    fn insert(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_string()) {
            return false;
        }
        self.order.push_back(id.to_string());
        while self.order.len() > SEEN {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}

/// One webhook as the worker uses it.
#[derive(Debug, Clone)]
struct Hook {
    url: Url,
    /// `scheme://host:port`: what logs and errors show.
    shown: String,
    timeout: Duration,
    retries: u32,
}

/// Options of a [`Notifier`] (tests shorten the backoff).
#[derive(Debug, Clone, Copy)]
pub struct NotifierOptions {
    pub backoff: Duration,
    pub queue: usize,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        Self {
            backoff: BACKOFF,
            queue: QUEUE,
        }
    }
}

/// See the module's documentation.
#[derive(Debug)]
pub struct Notifier {
    queues: Vec<(String, mpsc::Sender<Transition>)>,
    seen: Mutex<Seen>,
    counters: Arc<Counters>,
}

/// A URL as logs may show it: scheme, host and port only.
pub fn redact_url(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", url.scheme()),
        (Some(h), None) => format!("{}://{h}", url.scheme()),
        _ => format!("{}://", url.scheme()),
    }
}

impl Notifier {
    /// Starts one worker per webhook; must be called inside the tokio runtime.
    pub fn new(webhooks: &[Webhook]) -> Result<Self, String> {
        Self::with_options(webhooks, NotifierOptions::default())
    }

    pub fn with_options(webhooks: &[Webhook], opts: NotifierOptions) -> Result<Self, String> {
        let mut hooks = Vec::new();
        for (n, w) in webhooks.iter().enumerate() {
            let url = Url::parse(w.url.expose()).map_err(|e| {
                format!(
                    "webhook {}: the URL does not parse ({e}); write it as https://host/path",
                    n + 1
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(format!(
                    "webhook {}: {} is not an http(s) URL with a host; write it as https://host/path",
                    n + 1,
                    redact_url(&url)
                ));
            }
            if w.timeout.is_zero() {
                return Err(format!(
                    "webhook {} ({}): the timeout must be above 0 (e.g. timeout = \"5s\")",
                    n + 1,
                    redact_url(&url)
                ));
            }
            hooks.push(Hook {
                shown: redact_url(&url),
                url,
                timeout: w.timeout,
                retries: w.retries,
            });
        }
        let counters = Arc::new(Counters::default());
        if hooks.is_empty() {
            return Ok(Self {
                queues: Vec::new(),
                seen: Mutex::default(),
                counters,
            });
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            "the notifier must be started inside the daemon's tokio runtime".to_string()
        })?;
        let client = client()?;
        let mut queues = Vec::new();
        for hook in hooks {
            let (tx, mut rx) = mpsc::channel::<Transition>(opts.queue.max(1));
            queues.push((hook.shown.clone(), tx));
            let client = client.clone();
            let counters = counters.clone();
            let backoff = opts.backoff;
            runtime.spawn(async move {
                while let Some(t) = rx.recv().await {
                    deliver(&client, &hook, &t, backoff, &counters).await;
                    counters.in_flight.fetch_sub(1, Ordering::Relaxed);
                }
            });
        }
        Ok(Self {
            queues,
            seen: Mutex::default(),
            counters,
        })
    }

    /// Logs `t` and queues it for every webhook; returns at once (never waits for a
    /// receiver). A transition id already sent is ignored.
    pub async fn send(&self, t: &Transition) {
        let new = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(&t.id);
        if !new {
            Counters::add(&self.counters.duplicates);
            tracing::debug!(alert.id = %t.id, "alert transition already sent; not sent again");
            return;
        }
        match t.status {
            Status::Firing => tracing::warn!(
                alert.id = %t.id, alert.status = "firing", alert.rule = %t.rule,
                alert.severity = %t.severity, target = %t.target, key = %t.key,
                value = t.value, threshold = t.threshold, "{}", t.message
            ),
            Status::Resolved => tracing::info!(
                alert.id = %t.id, alert.status = "resolved", alert.rule = %t.rule,
                alert.severity = %t.severity, target = %t.target, key = %t.key,
                value = t.value, threshold = t.threshold, "{}", t.message
            ),
        }
        for (shown, tx) in &self.queues {
            self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
            match tx.try_send(t.clone()) {
                Ok(()) => Counters::add(&self.counters.queued),
                Err(e) => {
                    self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
                    Counters::add(&self.counters.dropped);
                    let why = match e {
                        mpsc::error::TrySendError::Full(_) => {
                            "its queue is full (it is slow or down)"
                        }
                        mpsc::error::TrySendError::Closed(_) => "its worker stopped",
                    };
                    tracing::warn!(webhook = %shown, alert.id = %t.id, "webhook notification dropped: {why}");
                }
            }
        }
    }

    /// What the notifier did so far.
    pub fn stats(&self) -> NotifierStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        NotifierStats {
            queued: get(&c.queued),
            attempts: get(&c.attempts),
            delivered: get(&c.delivered),
            failed: get(&c.failed),
            dropped: get(&c.dropped),
            duplicates: get(&c.duplicates),
        }
    }

    /// Waits until every queued notification was delivered or given up, at most `within`;
    /// true when nothing is left (for a clean shutdown).
    pub async fn flush(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.counters.in_flight.load(Ordering::Relaxed) == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The HTTP client: rustls with the ring provider and the system's roots; no redirects
/// (a redirect could carry the body elsewhere).
fn client() -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let (_added, _ignored) =
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS for webhooks: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("pgopt/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the webhook client: {}", error_text(e)))
}

/// A reqwest error without its URL, with its causes.
fn error_text(e: reqwest::Error) -> String {
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if timeout {
        text.push_str(" (timed out)");
    }
    text
}

/// Delivers `t` to one webhook, retrying as the module says.
async fn deliver(
    client: &reqwest::Client,
    hook: &Hook,
    t: &Transition,
    backoff: Duration,
    counters: &Counters,
) {
    let tries = hook.retries.saturating_add(1);
    let mut last = String::new();
    for attempt in 0..tries {
        if attempt > 0 {
            let wait = backoff
                .saturating_mul(1u32 << (attempt - 1).min(16))
                .min(MAX_BACKOFF);
            // Up to a fifth more, so that many daemons do not retry in step.
            let jitter = wait.mul_f64(rand::thread_rng().gen_range(0.0..0.2));
            tokio::time::sleep(wait + jitter).await;
        }
        Counters::add(&counters.attempts);
        let sent = client
            .post(hook.url.clone())
            .timeout(hook.timeout)
            .json(t)
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => {
                Counters::add(&counters.delivered);
                tracing::debug!(webhook = %hook.shown, alert.id = %t.id, attempt = attempt + 1, "webhook delivered");
                return;
            }
            Ok(resp) if resp.status().is_server_error() => {
                last = format!("HTTP {}", resp.status());
            }
            Ok(resp) => {
                Counters::add(&counters.failed);
                tracing::warn!(
                    webhook = %hook.shown, alert.id = %t.id,
                    "webhook refused the notification with HTTP {}; not retried: check the URL and what the receiver expects",
                    resp.status()
                );
                return;
            }
            Err(e) => last = error_text(e),
        }
        tracing::debug!(webhook = %hook.shown, alert.id = %t.id, attempt = attempt + 1, error = %last, "webhook attempt failed");
    }
    Counters::add(&counters.failed);
    tracing::warn!(
        webhook = %hook.shown, alert.id = %t.id,
        "webhook notification given up after {tries} attempts ({last}); check that the receiver is up"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::secret::Secret;

    #[test]
    fn urls_show_only_scheme_host_and_port() {
        let u = Url::parse("https://user:pw@hooks.example.com:8443/T000/secret?token=abc").unwrap();
        assert_eq!(redact_url(&u), "https://hooks.example.com:8443");
    }

    #[test]
    fn a_bad_webhook_url_is_refused_without_showing_it() {
        let hook = |url: &str| Webhook {
            url: Secret::new(url),
            timeout: Duration::from_secs(1),
            retries: 1,
        };
        let e = Notifier::new(&[hook("ftp://u:pw@host/x?token=abc")]).unwrap_err();
        assert!(
            e.contains("ftp://host") && !e.contains("pw") && !e.contains("abc"),
            "{e}"
        );
        let e = Notifier::new(&[hook("not a url ?token=abc")]).unwrap_err();
        assert!(e.contains("does not parse") && !e.contains("abc"), "{e}");
    }

    #[test]
    fn ids_are_remembered_up_to_a_bound() {
        let mut s = Seen::default();
        assert!(s.insert("a"));
        assert!(!s.insert("a"));
        for i in 0..SEEN {
            s.insert(&i.to_string());
        }
        assert!(s.ids.len() <= SEEN);
        assert!(s.insert("a"), "the oldest id was forgotten");
    }
}
