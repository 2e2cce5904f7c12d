//! The state every handler shares, and what every handler does with a
//! call: check a device's or an agency system's signature
//! ([`AppState::verify_signed`]), run its storage work off the async
//! threads ([`blocking`]), and answer an error in the protocol's form.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ring::hmac;
use sambung_core::model::RequestId;
use sambung_core::protocol::{self, Call, DocId, ErrorBody, SignedHeaders};

use crate::error::ServerError;
use crate::limits::{Limiter, Limits};
use crate::secrets::Secrets;
use crate::storage::{EnrolledDevice, Storage};
use crate::webhooks::AddressPolicy;

/// How long one request may take, body included, by default: a device's
/// 64 KiB exchange needs about 5 s on EDGE; a client that trickles its body
/// (or stops halfway) must not hold a connection and a worker forever.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// What a deployment sets beyond its storage and secrets.
#[derive(Clone)]
pub struct Settings {
    /// Each request, body included, must complete within this or gets 408
    /// with the error `timeout`.
    pub request_timeout: Duration,
    /// Rate limits.
    pub limits: Limits,
    /// Internal addresses webhook deliveries may go to (CIDRs; none by
    /// default: see [`crate::webhooks::AddressPolicy`]).
    pub webhook_allow: Vec<ipnet::IpNet>,
    /// Peers whose `X-Forwarded-For` names the client (the deployment's
    /// balancers); from any other peer the header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// When set, the public listener serves `/metrics` to callers that
    /// present it as a bearer token; when not, `/metrics` is only on the
    /// separate listener of [`serve_metrics`].
    pub metrics_token: Option<String>,
    /// The region's outline the console's map draws (GeoJSON, checked by
    /// [`crate::api::console::check_boundaries`]); none by default.
    pub console_boundaries: Option<Arc<Vec<u8>>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never printed.
        f.debug_struct("Settings")
            .field("request_timeout", &self.request_timeout)
            .field("limits", &self.limits)
            .field("webhook_allow", &self.webhook_allow)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "…"))
            .field(
                "console_boundaries",
                &self.console_boundaries.as_ref().map(|b| b.len()),
            )
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            limits: Limits::default(),
            webhook_allow: Vec::new(),
            trusted_proxies: Vec::new(),
            metrics_token: None,
            console_boundaries: None,
        }
    }
}

/// Shared state of the handlers (the fields the router's layers and the
/// handlers read are open to the `api` module).
pub struct AppState {
    pub(super) storage: Arc<dyn Storage>,
    pub(super) metrics: crate::metrics::Metrics,
    actor: [u8; 16],
    pub(super) audience: String,
    pub(super) nik_key: hmac::Key,
    secrets: Arc<Secrets>,
    pub(super) request_timeout: Duration,
    pub(super) by_address: Limiter<std::net::IpAddr>,
    by_device: Limiter<[u8; 16]>,
    /// Attachment calls apart: a 20 MB photo set is 80 chunks, which must
    /// not eat the allowance of the device's syncs (nor the other way).
    uploads_by_device: Limiter<[u8; 16]>,
    webhook_policy: AddressPolicy,
    pub(super) trusted_proxies: Vec<ipnet::IpNet>,
    /// SHA-256 of the metrics token (compared as digests).
    pub(super) metrics_token: Option<[u8; 32]>,
    pub(super) console_boundaries: Option<Arc<Vec<u8>>>,
    /// The service catalog, brought up to date from storage on use.
    catalogs: crate::catalog::Catalogs,
}

/// Which allowance a signed call draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Syncs and back-office calls.
    Exchange,
    /// Attachment questions and chunks.
    Upload,
}

impl AppState {
    /// State over a storage and the server's secrets (see
    /// [`crate::secrets::Secrets::open`]), with the default settings.
    pub fn new(storage: Arc<dyn Storage>, secrets: Secrets) -> Result<Arc<Self>, ServerError> {
        Self::with_settings(storage, secrets, Settings::default())
    }

    /// State over a storage and the server's secrets with `settings`.
    pub fn with_settings(
        storage: Arc<dyn Storage>,
        secrets: Secrets,
        settings: Settings,
    ) -> Result<Arc<Self>, ServerError> {
        let nik_key = hmac::Key::new(hmac::HMAC_SHA256, secrets.nik_key());
        let mut actor = [0u8; 16];
        actor.copy_from_slice(&hmac::sign(&nik_key, b"sambung server actor").as_ref()[..16]);
        let limits = settings.limits;
        // The deployment's identity, signed into every call: derived from
        // the secret every server of this deployment shares.
        let audience = audience_of(secrets.nik_key());
        Ok(Arc::new(AppState {
            metrics: crate::metrics::Metrics::new(),
            actor,
            audience,
            nik_key,
            secrets: Arc::new(secrets),
            storage,
            request_timeout: settings.request_timeout,
            by_address: Limiter::new(limits.per_address),
            by_device: Limiter::new(limits.per_device),
            uploads_by_device: Limiter::new(limits.uploads_per_device()),
            webhook_policy: AddressPolicy::new(settings.webhook_allow),
            trusted_proxies: settings.trusted_proxies,
            metrics_token: settings
                .metrics_token
                .map(|t| sambung_core::crypto::sha256(t.as_bytes())),
            console_boundaries: settings.console_boundaries,
            catalogs: crate::catalog::Catalogs::new()?,
        }))
    }

    /// The server's secrets (webhook secrets are sealed with them).
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// The shared handle of the server's secrets (for the webhook
    /// worker).
    pub fn secrets_arc(&self) -> Arc<Secrets> {
        self.secrets.clone()
    }

    /// Where webhook deliveries may go.
    pub fn webhook_policy(&self) -> &AddressPolicy {
        &self.webhook_policy
    }

    /// The key of the server's NIK hashes.
    pub fn nik_key(&self) -> &hmac::Key {
        &self.nik_key
    }

    /// The service catalog.
    pub fn catalogs(&self) -> &crate::catalog::Catalogs {
        &self.catalogs
    }

    /// The storage.
    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The shared storage handle.
    pub fn storage_arc(&self) -> Arc<dyn Storage> {
        self.storage.clone()
    }

    /// The Automerge actor of the server's own changes (back-office
    /// actions), the same for every server on one database.
    pub fn actor(&self) -> [u8; 16] {
        self.actor
    }

    /// The deployment's audience: what every signature names, so that a
    /// call signed for this deployment is refused by any other.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Checks a signed request (blocking: reads the storage): the device is
    /// enrolled, the signature over this server's audience, `method`,
    /// `path`, `body` and the signed headers among `headers` is its key's
    /// and fresh, the nonce is new, and the device is within its rate.
    /// Revocation is the caller's to judge.
    pub fn verify_signed(
        &self,
        signed: &SignedHeaders,
        kind: CallKind,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &HeaderMap,
    ) -> Result<EnrolledDevice, ServerError> {
        let device = signed.device_id()?;
        let enrolled = self
            .storage
            .device(device)?
            .ok_or(ServerError::UnknownDevice)?;
        let now = now();
        let call = Call::new(&self.audience, method, path, body)
            .headers_from(|name| headers.get(name).and_then(|v| v.to_str().ok()));
        signed.verify(&enrolled.public_key, &call, now)?;
        if !self.storage.remember_nonce(device, &signed.nonce, now)? {
            return Err(ServerError::Replayed);
        }
        // Per device only once the signature proved who it is.
        let limiter = match kind {
            CallKind::Exchange => &self.by_device,
            CallKind::Upload => &self.uploads_by_device,
        };
        if let Err(wait) = limiter.take(&device, std::time::Instant::now()) {
            return Err(ServerError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        Ok(enrolled)
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        tracing::info!(status, code = ?code, "request refused");
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match &self {
            ServerError::Storage(_) | ServerError::Config(_) => {
                "the server failed; try again later".to_owned()
            }
            other => other.to_string(),
        };
        let wipe = matches!(self, ServerError::Revoked { wipe: true });
        let tag = ErrorTag(code);
        let mut response = (
            status,
            Json(ErrorBody {
                code,
                message,
                wipe,
            }),
        )
            .into_response();
        response.extensions_mut().insert(tag);
        if let ServerError::OffsetMismatch { offset } = self
            && let Ok(v) = header::HeaderValue::from_str(&offset.to_string())
        {
            response
                .headers_mut()
                .insert(sambung_core::protocol::blobs::UPLOAD_OFFSET, v);
        }
        if let ServerError::RateLimited { retry_after_secs } = self
            && let Ok(v) = header::HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// The audience of a deployment: the first 16 bytes of an HMAC of a fixed
/// text under the server's stored secret, in hex. Made once with the
/// database (the secret is random and kept there), so every server on one
/// database answers to the same audience and no two deployments share one.
pub fn audience_of(secret: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hex::encode(&hmac::sign(&key, b"sambung audience").as_ref()[..16])
}

/// Unix seconds.
pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The protocol code of an error answer, for the metrics.
#[derive(Debug, Clone, Copy)]
pub(super) struct ErrorTag(pub(super) protocol::ErrorCode);

/// Runs blocking storage work on tokio's blocking pool, inside the
/// caller's log span (so its lines carry the request id).
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServerError> + Send + 'static,
) -> Result<T, ServerError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|_| ServerError::Storage("task failed".into()))?
}

/// A request id (a UUID) as a path names it.
pub(super) fn parse_id(id: &str) -> Result<DocId, ServerError> {
    RequestId::parse(id)
        .and_then(|r| r.to_bytes())
        .ok_or_else(|| ServerError::BadRequest("a request id is a UUID".into()))
}
