//! Webhooks: an agency subscribes a URL to events; deliveries are queued in
//! the database in the same transaction as the change that caused them
//! (nothing is announced that was not stored, nothing stored goes
//! unannounced), signed by the Standard Webhooks conventions
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64
//! HMAC-SHA256 of "id.timestamp.body">`), and retried with backoff until
//! the receiver answers 2xx — at least once, across restarts, from any
//! server on the database (a lease keeps two servers from sending one
//! delivery at the same time).
//!
//! Payloads carry ids, kind, region and status — no personal data; the
//! receiver reads the request through the back-office API.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use ring::hmac;
use sambung_core::model::{Request, RequestId};
use serde::{Deserialize, Serialize};

use crate::accounts::{Account, Scope};
use crate::error::ServerError;
use crate::http::AppState;

/// The events one may subscribe to.
pub const EVENTS: &[&str] = &[
    "request.submitted",
    "request.status_changed",
    "request.note_added",
    "attachment.received",
];

/// Attempts before a delivery is given up (about a day and a half with the
/// default schedule).
pub const MAX_ATTEMPTS: u32 = 8;

/// One event caused by a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// One of [`EVENTS`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix milliseconds.
    pub timestamp: i64,
    /// What it is about.
    pub data: EventData,
}

/// The body of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventData {
    /// Request id (UUID).
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Region code.
    pub region: String,
    /// Status now.
    pub status: String,
    /// Status before, for a status change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// The events between two states of a request.
pub fn events_between(before: Option<&Request>, after: &Request) -> Vec<Event> {
    let now = sambung_core::Timestamp::now().as_millis();
    let status = after.status();
    let data = |from: Option<String>| EventData {
        id: after.id.to_string(),
        kind: after.kind().as_str().to_owned(),
        region: after.content.region.0.clone(),
        status: status.as_str().to_owned(),
        from,
    };
    let event = |kind: &str, from| Event {
        kind: kind.to_owned(),
        timestamp: now,
        data: data(from),
    };
    let mut out = Vec::new();
    let old_status = before.map(|b| b.status());
    if old_status != Some(status) {
        if status == sambung_core::lifecycle::Status::Submitted {
            out.push(event("request.submitted", None));
        } else if let Some(old) = old_status {
            out.push(event(
                "request.status_changed",
                Some(old.as_str().to_owned()),
            ));
        }
    }
    let notes = |r: Option<&Request>| r.map(|r| r.notes.len()).unwrap_or(0);
    if after.notes.len() > notes(before) {
        out.push(event("request.note_added", None));
    }
    let attachments = |r: Option<&Request>| r.map(|r| r.attachments.len()).unwrap_or(0);
    if after.attachments.len() > attachments(before) {
        out.push(event("attachment.received", None));
    }
    out
}

/// A subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// The agency account it belongs to.
    pub account: Account,
    /// Where deliveries go.
    pub url: String,
    /// What it receives.
    pub events: Vec<String>,
}

/// A delivery to queue: which subscription, which event (JSON).
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The subscription.
    pub webhook: String,
    /// The event type.
    pub event: String,
    /// The body, as sent.
    pub payload: String,
}

/// Which subscriptions receive which of `events` about a request in
/// `scope`: only events they asked for, about requests their account may
/// see, and never about drafts.
pub fn deliveries_for(subs: &[Subscription], scope: &Scope, events: &[Event]) -> Vec<NewDelivery> {
    let mut out = Vec::new();
    for s in subs {
        if !s.account.may_see(scope) {
            continue;
        }
        for e in events {
            if e.data.status == "draft" || !s.events.contains(&e.kind) {
                continue;
            }
            if let Ok(payload) = serde_json::to_string(e) {
                out.push(NewDelivery {
                    webhook: s.id.clone(),
                    event: e.kind.clone(),
                    payload,
                });
            }
        }
    }
    out
}

/// A queued delivery claimed for sending.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its position in the queue; `webhook-id` is `msg_<seq>`.
    pub seq: i64,
    /// The URL.
    pub url: String,
    /// The subscription's secret.
    pub secret: Vec<u8>,
    /// The body.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Until when this server holds it: the token that lets it record the
    /// outcome (after that, another server may have taken it).
    pub lease_until: i64,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Try again at `next_at` (Unix ms), or never when `None`.
    Retry {
        /// When.
        next_at: Option<i64>,
        /// Why (an HTTP status or a network failure kind).
        error: String,
    },
}

/// A new subscription's secret, `whsec_` and 32 random bytes in base64
/// (the Standard Webhooks form).
pub fn new_secret() -> Result<(String, Vec<u8>), ServerError> {
    let key: [u8; 32] = sambung_core::crypto::random_key_bytes()
        .map_err(|_| ServerError::Storage("no randomness".into()))?;
    let text = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    Ok((text, key.to_vec()))
}

/// The `webhook-signature` value of a body.
///
/// ```
/// let sig = sambung_server::webhooks::signature(b"key", "msg_1", 1_700_000_000, "{}");
/// assert!(sig.starts_with("v1,"));
/// ```
pub fn signature(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let signed = format!("{id}.{timestamp}.{body}");
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, signed.as_bytes()))
    )
}

/// Checks a subscription URL: HTTPS, or plain HTTP to this host only
/// (deliveries leave the host encrypted).
pub fn check_url(url: &str) -> Result<(), ServerError> {
    let bad = |m: &str| Err(ServerError::BadRequest(m.into()));
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return bad("url is not a URL");
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad("url must not carry credentials");
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return bad("url needs a host"),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => bad("url must be https (plain http only to this host)"),
    }
}

/// When to try again after `attempts` failed ones: the Standard Webhooks
/// schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) times `scale`.
pub fn next_attempt(now_ms: i64, attempts: u32, scale: f64) -> Option<i64> {
    const SCHEDULE_SECS: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let idx = (attempts as usize)
        .saturating_sub(1)
        .min(SCHEDULE_SECS.len() - 1);
    let wait_ms = (SCHEDULE_SECS[idx] as f64 * 1000.0 * scale) as i64;
    Some(now_ms + wait_ms.max(1))
}

/// Settings of the delivery worker.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How often the queue is looked at.
    pub poll: Duration,
    /// Multiplies the retry schedule (1.0 in production; tests shrink it).
    pub backoff_scale: f64,
    /// How long a claimed delivery is reserved for this server; more than
    /// `batch` × `timeout`, so a batch is done before its lease runs out.
    pub lease: Duration,
    /// Per attempt.
    pub timeout: Duration,
    /// Deliveries claimed at once.
    pub batch: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            poll: Duration::from_secs(1),
            backoff_scale: 1.0,
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            batch: 4,
        }
    }
}

/// Runs the delivery worker until `shutdown` resolves.
pub async fn run_worker(
    state: Arc<AppState>,
    settings: WorkerSettings,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let client = match crate::tls::https_client(settings.timeout) {
        Ok(c) => c,
        Err(_) => {
            tracing::error!("the webhook worker has no HTTPS client; deliveries wait");
            return;
        }
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(settings.poll) => {}
        }
        let storage = state.storage_arc();
        let lease_ms = settings.lease.as_millis() as i64;
        let batch = settings.batch.max(1);
        let claimed = tokio::task::spawn_blocking(move || {
            storage.claim_deliveries(sambung_core::Timestamp::now().as_millis(), lease_ms, batch)
        })
        .await;
        let batch = match claimed {
            Ok(Ok(b)) => b,
            _ => {
                tracing::warn!("the webhook queue could not be read");
                continue;
            }
        };
        for d in batch {
            let outcome = send(&client, &d, settings.backoff_scale).await;
            let storage = state.storage_arc();
            let (seq, lease) = (d.seq, d.lease_until);
            let done =
                tokio::task::spawn_blocking(move || storage.finish_delivery(seq, lease, &outcome))
                    .await;
            if !matches!(done, Ok(Ok(()))) {
                // The lease runs out and the delivery is sent again:
                // at least once.
                tracing::warn!("a webhook delivery's outcome could not be stored");
            }
        }
    }
}

async fn send(client: &reqwest::Client, d: &Delivery, scale: f64) -> Outcome {
    let now = sambung_core::Timestamp::now().as_millis();
    let id = format!("msg_{}", d.seq);
    let ts = now / 1000;
    let result = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header(
            "webhook-signature",
            signature(&d.secret, &id, ts, &d.payload),
        )
        .body(d.payload.clone())
        .send()
        .await;
    let attempts = d.attempts + 1;
    match result {
        Ok(r) if r.status().is_success() => Outcome::Delivered,
        Ok(r) => Outcome::Retry {
            next_at: next_attempt(now, attempts, scale),
            error: format!("HTTP {}", r.status().as_u16()),
        },
        Err(e) => Outcome::Retry {
            next_at: next_attempt(now, attempts, scale),
            error: if e.is_timeout() {
                "timeout".into()
            } else if e.is_connect() {
                "connection failed".into()
            } else {
                "request failed".into()
            },
        },
    }
}

/// A new subscription's id.
pub fn new_id() -> String {
    format!("wh_{}", RequestId::random().to_string().replace('-', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let sig = signature(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn urls_must_be_https_or_this_host() {
        for ok in [
            "https://agency.go.id/hook",
            "http://127.0.0.1:9000/h",
            "http://localhost/h",
            "http://[::1]:1/h",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://agency.go.id/hook",
            "ftp://x/y",
            "nonsense",
            "https://u:p@x/y",
            "http://10.0.0.1/h",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_back_off_then_stop() {
        let t: Vec<Option<i64>> = (1..=MAX_ATTEMPTS)
            .map(|a| next_attempt(0, a, 1.0))
            .collect();
        assert_eq!(t[0], Some(5_000));
        assert_eq!(t[1], Some(300_000));
        assert!(t.windows(2).take(6).all(|w| w[0] <= w[1]));
        assert_eq!(t[MAX_ATTEMPTS as usize - 1], None);
    }
}
