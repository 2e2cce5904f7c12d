//! What devices call: enrollment with a one-time code (`/v1/enroll`) and
//! the signed sync exchange (`POST /v1/sync`, protocol in
//! `docs/protocol.md`; the exchange itself is [`crate::exchange`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use sambung_core::protocol::{self, SYNC_PATH, SignedHeaders, SyncRequest};
use serde::{Deserialize, Serialize};

use super::state::{AppState, CallKind, blocking, now};
use crate::error::ServerError;
use crate::exchange::{self, Caller};

/// Largest sync body accepted (compressed).
pub const MAX_SYNC_BODY: usize = 16 * 1024 * 1024;

/// The device routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/v1/enroll",
            post(enroll).layer(DefaultBodyLimit::max(4096)),
        )
        .route(
            SYNC_PATH,
            post(sync).layer(DefaultBodyLimit::max(MAX_SYNC_BODY)),
        )
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
        let account = crate::enroll::redeem(&*state.storage, &hash, device, public_key, now())?;
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
            catalog: worker.catalogs().current(worker.storage.as_ref())?,
        };
        let exchange::Exchanged { response, written } =
            exchange::exchange(worker.storage.as_ref(), &worker.nik_key, &caller, &request)?;
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
