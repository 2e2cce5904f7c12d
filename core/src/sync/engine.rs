//! The sync engine: when to sync, without the app having to think about it.
//! Local writes are debounced until the user pauses — a sync waits for
//! `debounce` without writes, but never longer than `max_delay` after the
//! first (ten edits in a minute cost one exchange) — a
//! connectivity change to online syncs at once, a failed sync is retried
//! with exponential backoff and jitter without waiting for the next write,
//! and nothing is tried while the platform says the device is offline.
//! Dropping the engine stops it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Client, SyncConfig, SyncSummary};
use crate::store::Store;

/// Timing of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long the engine waits for a pause in local writes before syncing.
    pub debounce: Duration,
    /// The longest a local write waits, however many follow it.
    pub max_delay: Duration,
    /// First wait after a failure; doubles per failure.
    pub min_backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            debounce: Duration::from_secs(5),
            max_delay: Duration::from_secs(60),
            min_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// What the engine has done so far.
#[derive(Debug, Clone, Default)]
pub struct EngineStatus {
    /// Syncs that completed.
    pub syncs: u32,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// The last error, without personal data.
    pub last_error: Option<String>,
    /// The summary of the last completed sync.
    pub last_summary: Option<SyncSummary>,
    /// Whether the platform last said the device is online.
    pub online: bool,
    /// Whether the platform last said the connection is metered (text
    /// syncs anyway: it is small; large attachments wait, unless allowed).
    pub metered: bool,
}

enum Signal {
    LocalWrite,
    Connectivity { online: bool, metered: bool },
    SyncNow,
}

/// A running engine; dropping it stops it.
pub struct SyncEngine {
    tx: mpsc::UnboundedSender<Signal>,
    status: Arc<Mutex<EngineStatus>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SyncEngine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The wait before retry number `failures` (from 1): doubling from
/// `min_backoff`, capped at `max_backoff`, times a jitter in [0.5, 1.5) so
/// that many phones coming back at once do not retry in step.
pub fn backoff(config: &EngineConfig, failures: u32, jitter_unit: f64) -> Duration {
    let base =
        config.min_backoff.as_secs_f64() * 2f64.powi(failures.saturating_sub(1).min(30) as i32);
    let capped = base.min(config.max_backoff.as_secs_f64());
    Duration::from_secs_f64(capped * (0.5 + jitter_unit.clamp(0.0, 1.0)))
}

/// Whether a sync moved anything (text or attachment bytes).
fn progressed(s: &SyncSummary) -> bool {
    s.attachment_bytes_up > 0 || s.pushed > 0 || s.pulled > 0
}

fn jitter() -> f64 {
    crate::crypto::random_key_bytes()
        .map(|b| f64::from(b[0]) / 256.0)
        .unwrap_or(0.5)
}

impl SyncEngine {
    /// Starts the engine on the current tokio runtime. It syncs soon if the
    /// store already has unsynced changes.
    pub fn start(
        store: Arc<Store>,
        client: Client,
        sync: SyncConfig,
        config: EngineConfig,
    ) -> SyncEngine {
        Self::start_with(store, client, sync, config, |_| {})
    }

    /// Like [`SyncEngine::start`], calling `on_sync` after every completed
    /// sync (observers of the requests it changed listen here).
    pub fn start_with(
        store: Arc<Store>,
        client: Client,
        sync: SyncConfig,
        config: EngineConfig,
        on_sync: impl Fn(&SyncSummary) + Send + Sync + 'static,
    ) -> SyncEngine {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let status = Arc::new(Mutex::new(EngineStatus {
            online: true,
            ..Default::default()
        }));
        let st = status.clone();
        // What is unsynced at start is read here, not in the task: a write
        // made right after `start` returns is then always a write (debounced
        // with the others), never taken for one found at start.
        let pending_at_start = matches!(store.pending_count(), Ok(n) if n > 0);
        let task = tokio::spawn(async move {
            let mut online = true;
            let mut metered = false;
            let mut due: Option<Instant> = pending_at_start.then(Instant::now);
            let mut failures = 0u32;
            // The first write since the last sync, and whether `due` is
            // only the writes' debounce (which a later write may move).
            let mut first_write: Option<Instant> = None;
            let mut due_for_writes = false;
            loop {
                let wake = async {
                    match (online, due) {
                        (true, Some(at)) => tokio::time::sleep_until(at).await,
                        _ => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    signal = rx.recv() => match signal {
                        None => return,
                        Some(Signal::LocalWrite) => {
                            // Each write moves the sync to a pause after it,
                            // within `max_delay` of the first of the burst;
                            // a sync due sooner for another reason stays.
                            let now = Instant::now();
                            let first = *first_write.get_or_insert(now);
                            let at = (now + config.debounce).min(first + config.max_delay);
                            due = Some(match due {
                                Some(d) if !due_for_writes => d.min(at),
                                _ => at,
                            });
                            due_for_writes = true;
                        }
                        Some(Signal::Connectivity { online: now_online, metered: now_metered }) => {
                            let came_back = now_online && !online;
                            // Leaving a metered link lets held attachments go.
                            let unmetered_now = metered && !now_metered && now_online;
                            online = now_online;
                            metered = now_metered;
                            if unmetered_now {
                                due = Some(Instant::now());
                                due_for_writes = false;
                            }
                            if came_back {
                                failures = 0;
                                if store.pending_count().map(|n| n > 0).unwrap_or(true) || due.is_some() {
                                    due = Some(Instant::now());
                                    due_for_writes = false;
                                }
                            }
                            let mut s = st.lock().unwrap_or_else(|e| e.into_inner());
                            s.online = online;
                            s.metered = metered;
                        }
                        Some(Signal::SyncNow) => {
                            due = Some(Instant::now());
                            due_for_writes = false;
                        }
                    },
                    _ = wake => {
                        first_write = None;
                        due_for_writes = false;
                        let this_link = SyncConfig { metered, ..sync.clone() };
                        let result = client.sync(&store, &this_link, |_| {}).await;
                        // Before taking the status lock: the hook may ask
                        // for the status.
                        if let Ok(summary) = &result {
                            on_sync(summary);
                        }
                        let mut s = st.lock().unwrap_or_else(|e| e.into_inner());
                        match result {
                            // Text synced, an upload was cut: go on after a
                            // backoff, as after a failure.
                            Ok(summary) if summary.attachments_interrupted => {
                                // Bytes went through before the cut: the
                                // link works, so go on soon; none did: back
                                // off further.
                                failures = if progressed(&summary) { 1 } else { failures + 1 };
                                due = Some(Instant::now() + backoff(&config, failures, jitter()));
                                s.syncs += 1;
                                s.last_error = Some("an attachment upload was interrupted".into());
                                s.last_summary = Some(summary);
                            }
                            Ok(summary) => {
                                failures = 0;
                                due = None;
                                s.syncs += 1;
                                s.last_error = None;
                                s.last_summary = Some(summary);
                            }
                            Err(e) => {
                                // Retried on its own: a failed upload never
                                // waits for the next local write. What
                                // retrying cannot fix (update the app,
                                // enroll again) waits for the next trigger.
                                failures += 1;
                                due = e
                                    .is_retryable()
                                    .then(|| Instant::now() + backoff(&config, failures, jitter()));
                                s.last_error = Some(e.to_string());
                            }
                        }
                        s.consecutive_failures = failures;
                    }
                }
            }
        });
        SyncEngine { tx, status, task }
    }

    /// Tells the engine a request was written locally.
    pub fn local_write(&self) {
        let _ = self.tx.send(Signal::LocalWrite);
    }

    /// Tells the engine the platform's connectivity changed.
    pub fn connectivity_changed(&self, online: bool) {
        self.network_changed(online, false);
    }

    /// Tells the engine the platform's network changed: online or not, and
    /// whether the connection is metered.
    pub fn network_changed(&self, online: bool, metered: bool) {
        let _ = self.tx.send(Signal::Connectivity { online, metered });
    }

    /// Asks for a sync as soon as possible.
    pub fn sync_now(&self) {
        let _ = self.tx.send(Signal::SyncNow);
    }

    /// What the engine has done so far.
    pub fn status(&self) -> EngineStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let c = EngineConfig {
            debounce: Duration::ZERO,
            max_delay: Duration::ZERO,
            min_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
        };
        assert_eq!(backoff(&c, 1, 0.5), Duration::from_secs(2));
        assert_eq!(backoff(&c, 2, 0.5), Duration::from_secs(4));
        assert_eq!(backoff(&c, 5, 0.5), Duration::from_secs(32));
        assert_eq!(backoff(&c, 9, 0.5), Duration::from_secs(60));
        assert_eq!(backoff(&c, u32::MAX, 0.5), Duration::from_secs(60));
        assert_eq!(backoff(&c, 1, 0.0), Duration::from_secs(1));
        assert!(backoff(&c, 1, 0.999) < Duration::from_secs(3));
    }
}
