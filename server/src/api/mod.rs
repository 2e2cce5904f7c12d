//! The HTTP face of the server (axum): `/health`, the devices' calls
//! (`/v1/enroll`, `/v1/sync`: [`device`]; attachments: [`blobs`]) and the
//! agency systems' ([`backoffice`]) on the public listener; `/metrics` on
//! the operations listener ([`serve_metrics`]) or, with a configured
//! token, on the public one. What every handler shares — the state, the
//! check of a signed call, errors as answers — is in `state.rs`.
//!
//! The layers below the handlers know nothing of HTTP: the exchange
//! ([`crate::exchange`]), the storage, the audit trail, webhooks.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ServerError;
use state::ErrorTag;

pub mod backoffice;
pub mod blobs;
pub mod console;
pub mod device;
mod state;

pub use state::{AppState, CallKind, DEFAULT_REQUEST_TIMEOUT, Settings, audience_of};

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

/// `/metrics` in the format the scraper asks for (see
/// [`crate::metrics::Format::negotiate`]), with the content type of that
/// format.
async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let format = crate::metrics::Format::negotiate(
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
    );
    let storage = state.storage.clone();
    let depth = tokio::task::spawn_blocking(move || storage.queue_depth())
        .await
        .ok()
        .and_then(|d| d.ok())
        .unwrap_or(0);
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            // The body depends on Accept: a cache in between must not
            // give one scraper's format to another.
            (header::VARY, "accept"),
        ],
        state.metrics.render(depth, format),
    )
        .into_response()
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
    metrics(State(state), headers).await
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
        .merge(device::routes())
        .merge(backoffice::routes())
        .merge(blobs::routes())
        .merge(console::routes())
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
