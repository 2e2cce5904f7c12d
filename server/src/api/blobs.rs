//! The attachment routes of devices: which blobs the server lacks
//! (`/v1/blobs/missing`), resumable chunked uploads (`PATCH
//! /v1/blobs/{sha256}`) and downloads through a request the device may see;
//! [`serve`] answers the back office's downloads too. What blobs are and
//! who owns them: [`crate::blobs`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::HeaderValue;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use sambung_core::attachment_limits::{
    MAX_ATTACHMENT_BYTES, MAX_CHUNK_BYTES, MAX_MISSING_ASKED, MAX_MISSING_BODY_BYTES,
};
use sambung_core::document::RequestDoc;
use sambung_core::protocol::SignedHeaders;
use sambung_core::protocol::blobs::{
    BLOB_PATH, BlobOffset, BlobRefusal, MISSING_PATH, MissingRequest, MissingResponse,
    UPLOAD_LENGTH, UPLOAD_OFFSET,
};

use super::state::{AppState, CallKind, blocking, now, parse_id};
use crate::blobs::parse_sha;
use crate::error::ServerError;
use crate::storage::Uploader;

/// The upload routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            MISSING_PATH,
            post(missing).layer(DefaultBodyLimit::max(MAX_MISSING_BODY_BYTES)),
        )
        .route(
            "/v1/blobs/{sha256}",
            patch(append).layer(DefaultBodyLimit::max(MAX_CHUNK_BYTES)),
        )
        .route("/v1/requests/{id}/attachments/{sha256}", get(download))
}

/// A device's signed call; revoked devices send nothing more.
fn device_call(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(crate::storage::EnrolledDevice, [u8; 16]), ServerError> {
    let signed = SignedHeaders::parse(|name| headers.get(name).and_then(|v| v.to_str().ok()))?;
    let enrolled = state.verify_signed(&signed, CallKind::Upload, method, path, body, headers)?;
    if let Some(r) = enrolled.revoked {
        return Err(ServerError::Revoked { wipe: r.wipe });
    }
    Ok((enrolled, signed.device_id()?))
}

async fn missing(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<MissingResponse>, ServerError> {
    blocking(move || {
        let body = body.map_err(|_| ServerError::TooLarge)?;
        let (enrolled, device) = device_call(&state, &headers, "POST", MISSING_PATH, &body)?;
        let uploader = Uploader {
            account: enrolled.account.id,
            device,
        };
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
            if b.size > MAX_ATTACHMENT_BYTES {
                answer.refused.push(BlobRefusal {
                    sha256: b.sha256,
                    reason: format!(
                        "larger than the server accepts ({} MiB)",
                        MAX_ATTACHMENT_BYTES / (1024 * 1024)
                    ),
                });
                continue;
            }
            // Only the caller's own uploads count: bytes someone else
            // uploaded are missing for it (it uploads them, and owns them
            // too), so the answer reveals nothing of others' blobs.
            if let Some(offset) = state.storage().blob_missing(&sha, b.size, &uploader)? {
                answer.missing.push(BlobOffset {
                    sha256: b.sha256,
                    offset,
                });
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
        let (enrolled, device) = device_call(
            &state,
            &headers,
            "PATCH",
            &format!("{BLOB_PATH}{name}"),
            &body,
        )?;
        let uploader = Uploader {
            account: enrolled.account.id,
            device,
        };
        let offset = number_header(&headers, UPLOAD_OFFSET)?;
        let size = number_header(&headers, UPLOAD_LENGTH)?;
        if size > MAX_ATTACHMENT_BYTES {
            return Err(ServerError::TooLarge);
        }
        if body.is_empty() && size > 0 {
            return Err(ServerError::BadRequest(
                "a chunk carries at least one byte".into(),
            ));
        }
        let held = crate::blobs::append_chunk(
            state.storage(),
            &sha,
            &uploader,
            size,
            offset,
            &body,
            now(),
        )?;
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

/// A device downloads an attachment of a request it may see (an officer
/// opening a photo in the field), whole or a `Range` of it; devices ask in
/// ranges and resume from what they hold. Never pushed to devices: they
/// ask when someone opens it.
async fn download(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((id, sha)): Path<(String, String)>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let path = format!("/v1/requests/{id}/attachments/{sha}");
        let (enrolled, device) = device_call(&state, &headers, "GET", &path, b"")?;
        let doc_id = parse_id(&id)?;
        let digest = parse_sha(&sha)?;
        crate::blobs::download(
            state.storage(),
            &enrolled.account,
            device,
            doc_id,
            "GET /v1/requests/{id}/attachments/{sha256}",
            |stored| serve(&state, doc_id, stored, &digest, &headers),
        )
    })
    .await
}

/// The bytes of an attachment of the request `stored` as an HTTP answer:
/// whole (200) or the one `Range` asked for (206), 416 for a range outside
/// it, 404 when the request has no such attachment, its bytes are not
/// complete, or its reference does not grant them (it names bytes that
/// the account which added it never uploaded). For devices and the back
/// office alike (each checks first who may see the request `id`).
pub fn serve(
    state: &AppState,
    id: sambung_core::protocol::DocId,
    stored: &crate::storage::StoredDoc,
    digest: &[u8; 32],
    headers: &HeaderMap,
) -> Result<Response, ServerError> {
    let request = RequestDoc::load(&stored.data, [], automerge::ActorId::from(state.actor()))
        .and_then(|d| d.hydrate())
        .map_err(|_| ServerError::Storage("a stored document does not load".into()))?;
    let sha = hex::encode(digest);
    let mime = request
        .attachments
        .iter()
        .find(|a| a.sha256 == sha)
        .map(|a| a.mime.clone())
        .ok_or(ServerError::NotFound)?;
    if !state.storage().blob_granted(id, digest)? {
        return Err(ServerError::NotFound);
    }
    let blob = state
        .storage()
        .blob_state(digest)?
        .filter(|b| b.complete)
        .ok_or(ServerError::NotFound)?;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, blob.size));
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, blob.size.saturating_sub(1)),
        Some(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(None) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", blob.size)) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let len = if blob.size == 0 { 0 } else { end - start + 1 };
    let bytes = state.storage().blob_read(digest, start, len)?;
    let mut response = (status, bytes).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", blob.size))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

/// A byte range of `size` bytes from a `Range: bytes=a-b` header (one
/// range; `bytes=a-` and `bytes=-n` too).
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.checked_sub(n.min(size))?, size - 1)
        }
        (a, "") => (a.parse().ok()?, size - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_are_read_like_http_says() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        for bad in [
            "bytes=100-",
            "bytes=9-0",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=x-",
            "bytes=-",
        ] {
            assert_eq!(parse_range(bad, 100), None, "{bad}");
        }
    }
}
