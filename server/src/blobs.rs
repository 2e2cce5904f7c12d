//! Attachment bytes from devices, by content address
//! (`sambung_core::protocol::blobs`): which blobs the server lacks, and
//! resumable chunked uploads checked against their SHA-256 at the end.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use sambung_core::protocol::SignedHeaders;
use sambung_core::protocol::blobs::*;

use crate::error::ServerError;
use crate::http::{AppState, blocking, now};

/// The upload routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            MISSING_PATH,
            post(missing).layer(DefaultBodyLimit::max(256 * 1024)),
        )
        .route(
            "/v1/blobs/{sha256}",
            patch(append).layer(DefaultBodyLimit::max(MAX_CHUNK_BYTES)),
        )
}

/// Parses a SHA-256 in lowercase hex.
pub fn parse_sha(s: &str) -> Result<[u8; 32], ServerError> {
    if !is_sha256_hex(s) {
        return Err(ServerError::BadRequest(
            "a blob is named by its SHA-256 in 64 lowercase hex digits".into(),
        ));
    }
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ServerError::BadRequest("not a SHA-256".into()))
}

/// A device's signed call; revoked devices send nothing more.
fn device_call(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(), ServerError> {
    let signed = SignedHeaders::parse(|name| headers.get(name).and_then(|v| v.to_str().ok()))?;
    let enrolled =
        state.verify_signed(&signed, crate::http::CallKind::Upload, method, path, body)?;
    if let Some(r) = enrolled.revoked {
        return Err(ServerError::Revoked { wipe: r.wipe });
    }
    Ok(())
}

async fn missing(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<MissingResponse>, ServerError> {
    blocking(move || {
        let body = body.map_err(|_| ServerError::TooLarge)?;
        device_call(&state, &headers, "POST", MISSING_PATH, &body)?;
        let ask: MissingRequest = serde_json::from_slice(&body).map_err(|_| {
            ServerError::BadRequest("expected {\"blobs\": [{\"sha256\", \"size\"}]}".into())
        })?;
        if ask.blobs.len() > MAX_MISSING_ASKED {
            return Err(ServerError::BadRequest(format!(
                "at most {MAX_MISSING_ASKED} blobs at once"
            )));
        }
        let mut answer = MissingResponse::default();
        for b in ask.blobs {
            let sha = parse_sha(&b.sha256)?;
            if b.size > MAX_BLOB_BYTES {
                answer.refused.push(BlobRefusal {
                    sha256: b.sha256,
                    reason: format!(
                        "larger than the server accepts ({} MiB)",
                        MAX_BLOB_BYTES / (1024 * 1024)
                    ),
                });
                continue;
            }
            match state.storage().blob_state(&sha)? {
                Some(s) if s.complete => {}
                Some(s) => answer.missing.push(BlobOffset {
                    sha256: b.sha256,
                    offset: s.received,
                }),
                None => answer.missing.push(BlobOffset {
                    sha256: b.sha256,
                    offset: 0,
                }),
            }
        }
        Ok(axum::Json(answer))
    })
    .await
}

fn number_header(headers: &HeaderMap, name: &str) -> Result<u64, ServerError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| ServerError::BadRequest(format!("header {name} must be a number of bytes")))
}

async fn append(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let body = body.map_err(|_| ServerError::TooLarge)?;
        let sha = parse_sha(&name)?;
        device_call(
            &state,
            &headers,
            "PATCH",
            &format!("{BLOB_PATH}{name}"),
            &body,
        )?;
        let offset = number_header(&headers, UPLOAD_OFFSET)?;
        let size = number_header(&headers, UPLOAD_LENGTH)?;
        if size > MAX_BLOB_BYTES {
            return Err(ServerError::TooLarge);
        }
        let held = state
            .storage()
            .blob_append(&sha, size, offset, &body, now())?;
        if held.complete {
            tracing::info!(size = held.size, "an attachment arrived whole");
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = header::HeaderValue::from_str(&held.received.to_string()) {
            response.headers_mut().insert(UPLOAD_OFFSET, v);
        }
        Ok(response)
    })
    .await
}
