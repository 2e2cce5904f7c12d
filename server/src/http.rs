//! The HTTP face of the server (axum): `/health`, `/v1/enroll`, `/v1/sync`
//! on the public listener; `/metrics` on the operations listener
//! ([`serve_metrics`]) or, with a configured token, on the public one.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ring::hmac;
use sambung_core::protocol::{self, Call, DocId, ErrorBody, SYNC_PATH, SignedHeaders, SyncRequest};
use serde::{Deserialize, Serialize};

use crate::audit::AuditRecord;
use crate::error::ServerError;
use crate::exchange::{self, Caller};
use crate::limits::{Limiter, Limits};
use crate::secrets::Secrets;
use crate::storage::{EnrolledDevice, Storage};
use crate::webhooks::AddressPolicy;

/// Largest sync body accepted (compressed).
pub const MAX_SYNC_BODY: usize = 16 * 1024 * 1024;

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
        }
    }
}

/// Shared state of the handlers.
pub struct AppState {
    storage: Arc<dyn Storage>,
    metrics: crate::metrics::Metrics,
    actor: [u8; 16],
    audience: String,
    nik_key: hmac::Key,
    secrets: Arc<Secrets>,
    request_timeout: Duration,
    by_address: Limiter<std::net::IpAddr>,
    by_device: Limiter<[u8; 16]>,
    /// Attachment calls apart: a 20 MB photo set is 80 chunks, which must
    /// not eat the allowance of the device's syncs (nor the other way).
    uploads_by_device: Limiter<[u8; 16]>,
    webhook_policy: AddressPolicy,
    trusted_proxies: Vec<ipnet::IpNet>,
    /// SHA-256 of the metrics token (compared as digests).
    metrics_token: Option<[u8; 32]>,
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

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The protocol code of an error answer, for the metrics.
#[derive(Debug, Clone, Copy)]
struct ErrorTag(protocol::ErrorCode);

/// Gives each request an id (the caller's `x-request-id` when it is a
/// plain token, else a fresh one) carried by every log line of it and
/// returned in the answer, and counts it in the metrics.
async fn observe(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument;
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let b: [u8; 32] = sambung_core::crypto::random_key_bytes().unwrap_or([0; 32]);
            hex::encode(&b[..8])
        });
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "other".to_owned());
    let started = std::time::Instant::now();
    let span = tracing::info_span!("request", id = %id);
    let mut response = next.run(request).instrument(span).await;
    let code = response.extensions().get::<ErrorTag>().map(|t| {
        serde_json::to_value(t.0)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    });
    state.metrics.request(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
        code.as_deref(),
    );
    if let Ok(v) = header::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let storage = state.storage.clone();
    let depth = tokio::task::spawn_blocking(move || storage.queue_depth())
        .await
        .ok()
        .and_then(|d| d.ok())
        .unwrap_or(0);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(depth),
    )
        .into_response()
}

/// Runs blocking storage work on tokio's blocking pool, inside the
/// caller's log span (so its lines carry the request id).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServerError> + Send + 'static,
) -> Result<T, ServerError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|_| ServerError::Storage("task failed".into()))?
}

/// Answers 408 `timeout` when a request (reading its body included) takes
/// longer than the state's timeout. Work already handed to the database
/// finishes on its own; exchanges are idempotent, so the device may retry.
async fn deadline(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ServerError::Timeout.into_response(),
    }
}

/// The client's address, for the per-address limit (over plain TCP and
/// over TLS alike).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Peer
{
    fn connect_info(s: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer(*s.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for Peer
{
    fn connect_info(s: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        Peer(*s.remote_addr())
    }
}

/// The client's address: the socket's peer, unless that peer is one of
/// `trusted` proxies — then the nearest address of `X-Forwarded-For` (read
/// from the right, over every header line) that is not itself a trusted
/// proxy. From an untrusted peer the header is ignored: anyone can write
/// it.
pub fn client_address(
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // A hop that is not an address: the last trusted one is the
            // best that is known.
            Err(_) => break,
        }
    }
    client
}

/// The limit per client address, before the request is read.
async fn per_address(
    State(state): State<Arc<AppState>>,
    axum::extract::ConnectInfo(Peer(peer)): axum::extract::ConnectInfo<Peer>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let client = client_address(peer.ip(), request.headers(), &state.trusted_proxies);
    match state.by_address.take(&client, std::time::Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => ServerError::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        }
        .into_response(),
    }
}

/// `/metrics` on the public listener: only with the configured bearer
/// token (401 without it or with another); 404 when none is configured.
async fn metrics_with_token(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(expected) = state.metrics_token else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| sambung_core::crypto::sha256(t.trim().as_bytes()));
    if given != Some(expected) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response();
    }
    metrics(State(state)).await
}

/// The operations listener's routes: `/metrics` and `/health`, no
/// token (bind it to a monitoring network or loopback).
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serves [`metrics_router`] on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, metrics_router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics_with_token))
        .route(
            "/v1/enroll",
            post(enroll).layer(DefaultBodyLimit::max(4096)),
        )
        .route(
            SYNC_PATH,
            post(sync).layer(DefaultBodyLimit::max(MAX_SYNC_BODY)),
        )
        .merge(crate::backoffice::routes())
        .merge(crate::blobs::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            deadline,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            per_address,
        ))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// What a device sends to enroll.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The one-time code.
    pub code: String,
    /// The device id (Automerge actor id), 32 hex digits.
    pub device: String,
    /// Ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// The key's signature over the code (128 hex digits;
    /// `protocol::enrollment_text`): the device holds the key it registers.
    pub proof: String,
}

/// What the server answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// Account id.
    pub account: String,
    /// Role.
    pub role: sambung_core::lifecycle::Role,
    /// Region codes.
    pub regions: Vec<String>,
    /// The deployment's audience (32 hex digits): every later call's
    /// signature names it.
    pub audience: String,
}

fn hex_array<const N: usize>(s: &str, what: &str) -> Result<[u8; N], ServerError> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ServerError::BadRequest(format!("{what} must be {} hex digits", N * 2)))
}

async fn enroll(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EnrollResponse>, ServerError> {
    let body = body.map_err(|_| ServerError::TooLarge)?;
    let req: EnrollRequest = serde_json::from_slice(&body).map_err(|_| {
        ServerError::BadRequest("expected {code, device, public_key, proof}".into())
    })?;
    let device = hex_array::<16>(&req.device, "device")?;
    let public_key = hex_array::<32>(&req.public_key, "public_key")?;
    if device != sambung_core::protocol::device_id_of(&public_key) {
        return Err(ServerError::BadRequest(
            "the device id must be the one derived from its public key".into(),
        ));
    }
    // Before the code is touched: a request without the key's own
    // signature over the code leaves the code as it was.
    protocol::verify_enrollment(&public_key, &req.code, &req.proof)?;
    let hash = crate::enroll::code_hash(&req.code);
    let audience = state.audience.clone();
    let account = blocking(move || {
        let account = state
            .storage
            .redeem_enrollment(&hash, device, public_key, now())?;
        // A new device starts at the current state: its pushes are judged
        // against no less than what the server holds now.
        let head = state.storage.log_head()?;
        state.storage.raise_high_cursor(device, head)?;
        Ok(account)
    })
    .await?;
    tracing::info!(role = account.role.as_str(), "device enrolled");
    Ok(Json(EnrollResponse {
        account: account.id,
        role: account.role,
        regions: account.regions,
        audience,
    }))
}

async fn sync(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    // Over the limit: the protocol's JSON error, not a bare 413 page.
    let body = body.map_err(|_| ServerError::TooLarge)?;
    // The version first: an app from another era gets "update the app",
    // whatever else is wrong.
    protocol::version(&body).and_then(|v| {
        if v == protocol::PROTOCOL_VERSION {
            Ok(())
        } else {
            Err(protocol::EnvelopeError::UnsupportedVersion {
                found: v,
                supported: protocol::PROTOCOL_VERSION,
            })
        }
    })?;
    let signed = SignedHeaders::parse(|name| headers.get(name).and_then(|v| v.to_str().ok()))?;
    let device = signed.device_id()?;
    let worker = state.clone();
    let body_len = body.len();
    let response = blocking(move || -> Result<Vec<u8>, ServerError> {
        // Signed by the device's own key, revoked or not: only the phone
        // itself gets the wipe instruction.
        let enrolled = worker.verify_signed(
            &signed,
            CallKind::Exchange,
            "POST",
            SYNC_PATH,
            &body,
            &headers,
        )?;
        let push_only = match enrolled.revoked {
            None => false,
            Some(r) if r.wipe && r.push_first => true,
            Some(r) => {
                tracing::info!(wipe = r.wipe, "a revoked device was refused");
                return Err(ServerError::Revoked { wipe: r.wipe });
            }
        };
        let request: SyncRequest = protocol::decode(&body)?;
        let caller = Caller {
            device,
            exchange: signed.nonce_bytes()?,
            account: enrolled.account,
            push_only,
        };
        let exchange::Exchanged { response, written } =
            exchange::exchange(worker.storage.as_ref(), &worker.nik_key, &caller, &request)?;
        // Recorded before the answer leaves: no read without its record.
        let at = sambung_core::Timestamp::now().as_millis();
        let record = |action: &str, id: DocId| AuditRecord {
            at,
            account: caller.account.id.clone(),
            role: caller.account.role.as_str().to_owned(),
            device: Some(device),
            action: action.to_owned(),
            request: Some(id),
            endpoint: format!("POST {SYNC_PATH}"),
        };
        let records: Vec<AuditRecord> = written
            .iter()
            .map(|id| record("write", *id))
            .chain(response.pull.iter().map(|p| record("read", p.id)))
            // A repair answer carries the document's changes too.
            .chain(response.repair.iter().map(|r| record("read", r.id)))
            .collect();
        worker.storage.append_audit(&records)?;
        tracing::info!(
            pushed = request.push.len(),
            acked = written.len(),
            refused = response.refused.len(),
            pulled = response.pull.len(),
            "exchange"
        );
        protocol::encode(&response).map_err(ServerError::from)
    })
    .await?;
    state.metrics.exchange(body_len, response.len());
    // No content-type: the body names itself (`SBG` and the version), as
    // the device's request does; 44 bytes of every answer on a 2G link.
    // (`Vec<u8>::into_response` would add `application/octet-stream`.)
    Ok(Response::new(axum::body::Body::from(response)))
}

/// Serves `router` on `listener` until `shutdown` completes; exchanges in
/// flight are finished first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Like [`serve`], over HTTPS with `tls` (see [`crate::tls`]).
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = crate::tls::TlsListener::new(listener, tls)?;
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_client_address_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let peer: std::net::IpAddr = "192.0.2.10".parse().unwrap();
        let proxies: Vec<ipnet::IpNet> = vec!["192.0.2.0/28".parse().unwrap()];
        let spoof = forwarded(&["198.51.100.7"]);
        // No trusted proxies, or a peer that is not one: the header is
        // ignored.
        assert_eq!(client_address(peer, &spoof, &[]), peer);
        let outsider: std::net::IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(client_address(outsider, &spoof, &proxies), outsider);
        // From a trusted proxy: the nearest hop that is not a proxy.
        assert_eq!(
            client_address(peer, &spoof, &proxies),
            "198.51.100.7".parse::<std::net::IpAddr>().unwrap()
        );
        let chain = forwarded(&["10.0.0.1, 198.51.100.7", "192.0.2.3"]);
        assert_eq!(
            client_address(peer, &chain, &proxies),
            "198.51.100.7".parse::<std::net::IpAddr>().unwrap()
        );
        // No header, or garbage: the proxy itself (the last known hop).
        assert_eq!(client_address(peer, &HeaderMap::new(), &proxies), peer);
        assert_eq!(
            client_address(peer, &forwarded(&["nonsense"]), &proxies),
            peer
        );
    }
}
