//! The delivery worker: it claims due deliveries from the queue (a lease
//! keeps two servers from sending one at the same time), signs each
//! ([`super::signature`]), sends it through a client that connects only to
//! addresses the deployment permits, and records the outcome, retrying
//! with backoff until the receiver answers 2xx or the attempts run out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sambung_core::url_rule::Url;

use super::{AddressPolicy, Delivery, Outcome, literal_address, signature};
use crate::error::ServerError;
use crate::secrets::Secrets;
use crate::storage::Storage;

/// Attempts before a delivery is given up (about a day and a half with the
/// default schedule).
pub const MAX_ATTEMPTS: u32 = 8;

/// The resolver of the delivery client: resolves a host name and keeps
/// only the addresses the policy permits, so the client connects to a
/// checked address or not at all.
struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

/// A host name resolved only to addresses the deployment does not permit.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves only to internal addresses")]
struct Blocked;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let permitted: Vec<SocketAddr> = found.filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(Box::new(Blocked) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client of deliveries: the platform's roots, `timeout` per
/// attempt, no redirects, no proxy, and only addresses `policy` permits.
pub fn delivery_client(
    timeout: Duration,
    policy: Arc<AddressPolicy>,
) -> Result<reqwest::Client, ServerError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_backend_preconfigured(crate::tls::client_config()?)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .build()
        .map_err(|_| ServerError::Config("no HTTP client".into()))
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
pub struct Settings {
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

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll: Duration::from_secs(1),
            backoff_scale: 1.0,
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            batch: 4,
        }
    }
}

/// Runs the delivery worker until `shutdown` resolves: deliveries are
/// read from `storage`, their secrets opened with `secrets`, and sent only
/// to addresses `policy` permits.
pub async fn run(
    storage: Arc<dyn Storage>,
    secrets: Arc<Secrets>,
    policy: AddressPolicy,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let policy = Arc::new(policy);
    let client = match delivery_client(settings.timeout, policy.clone()) {
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
        let queue = storage.clone();
        let lease_ms = settings.lease.as_millis() as i64;
        let batch = settings.batch.max(1);
        let claimed = tokio::task::spawn_blocking(move || {
            queue.claim_deliveries(sambung_core::Timestamp::now().as_millis(), lease_ms, batch)
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
            let outcome = match secrets.open_webhook_secret(&d.webhook, &d.secret) {
                Ok(secret) => send(&client, &policy, &d, &secret, settings.backoff_scale).await,
                Err(_) => Outcome::Retry {
                    next_at: next_attempt(
                        sambung_core::Timestamp::now().as_millis(),
                        d.attempts + 1,
                        settings.backoff_scale,
                    ),
                    error: "secret cannot be opened (another master key?)".into(),
                },
            };
            let queue = storage.clone();
            let (seq, lease) = (d.seq, d.lease_until);
            let done =
                tokio::task::spawn_blocking(move || queue.finish_delivery(seq, lease, &outcome))
                    .await;
            if !matches!(done, Ok(Ok(()))) {
                // The lease runs out and the delivery is sent again:
                // at least once.
                tracing::warn!("a webhook delivery's outcome could not be stored");
            }
        }
    }
}

async fn send(
    client: &reqwest::Client,
    policy: &AddressPolicy,
    d: &Delivery,
    secret: &[u8],
    scale: f64,
) -> Outcome {
    let now = sambung_core::Timestamp::now().as_millis();
    let attempts = d.attempts + 1;
    // An address written in the URL is never resolved: checked here.
    let literal = Url::parse(&d.url).ok().and_then(|u| literal_address(&u));
    if literal.is_some_and(|ip| !policy.permits(ip)) {
        return Outcome::Retry {
            next_at: next_attempt(now, attempts, scale),
            error: "blocked: internal address".into(),
        };
    }
    let id = format!("msg_{}", d.seq);
    let ts = now / 1000;
    let result = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature(secret, &id, ts, &d.payload))
        .body(d.payload.clone())
        .send()
        .await;
    match result {
        Ok(r) if r.status().is_success() => Outcome::Delivered,
        Ok(r) => Outcome::Retry {
            next_at: next_attempt(now, attempts, scale),
            error: format!("HTTP {}", r.status().as_u16()),
        },
        Err(e) => Outcome::Retry {
            next_at: next_attempt(now, attempts, scale),
            error: if blocked(&e) {
                "blocked: internal address".into()
            } else if e.is_timeout() {
                "timeout".into()
            } else if e.is_connect() {
                "connection failed".into()
            } else {
                "request failed".into()
            },
        },
    }
}

/// Whether a failed request was refused by [`GuardedResolver`].
fn blocked(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<Blocked>() {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use std::str::FromStr;

    #[tokio::test]
    async fn the_resolver_keeps_only_permitted_addresses() {
        use reqwest::dns::Resolve;
        let name = |s: &str| reqwest::dns::Name::from_str(s).unwrap();
        let blocked = GuardedResolver {
            policy: Arc::new(AddressPolicy::default()),
        };
        let e = blocked.resolve(name("localhost")).await.err().unwrap();
        assert!(e.is::<Blocked>());
        let allowed = GuardedResolver {
            policy: Arc::new(AddressPolicy::new(vec!["127.0.0.1/32".parse().unwrap()])),
        };
        let got: Vec<SocketAddr> = allowed.resolve(name("localhost")).await.unwrap().collect();
        assert!(!got.is_empty());
        assert!(
            got.iter().all(|a| a.ip() == IpAddr::from([127, 0, 0, 1])),
            "{got:?}"
        );
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
