//! The caller of the back-office API: an enrolled agency account, known
//! by the signature of its call ([`Staff`], whose operations are
//! [`crate::agency`]'s), its JSON body, and the API's limits and error
//! answer.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Method, Uri};
use sambung_core::lifecycle::Role;
use sambung_core::protocol::SignedHeaders;
use serde::Serialize;
use utoipa::ToSchema;

use crate::agency::Staff;
use crate::api::state::{AppState, CallKind};
use crate::error::ServerError;

/// Largest body of an action.
pub(super) const MAX_ACTION_BODY: usize = 16 * 1024;
/// Rows per page when the caller does not say.
pub(super) const DEFAULT_LIMIT: usize = 100;
/// Most rows per page.
pub(super) const MAX_LIMIT: usize = 500;

/// An error answer (every 4xx and 5xx of this API).
#[derive(Serialize, ToSchema)]
pub struct ApiError {
    /// Machine-readable: `bad_filter`, `bad_request`, `not_found`,
    /// `forbidden`, `forbidden_transition`, `stale`, `unauthenticated`,
    /// `bad_signature`, `stale_request`, `replayed`, `unknown_device`,
    /// `revoked`, `rate_limited`, `too_large`, `timeout`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
}

/// Checks the signature of a back-office call and that its key belongs to
/// an agency account that is not revoked (blocking).
pub(super) fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Staff, ServerError> {
    let signed = SignedHeaders::parse(|name| headers.get(name).and_then(|v| v.to_str().ok()))?;
    // The path with its query is what was signed: filters cannot be
    // altered in flight.
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let enrolled = state.verify_signed(
        &signed,
        CallKind::Exchange,
        method.as_str(),
        target,
        body,
        headers,
    )?;
    if enrolled.revoked.is_some() {
        return Err(ServerError::Revoked { wipe: false });
    }
    if enrolled.account.role != Role::Agency {
        return Err(ServerError::Forbidden(
            "the back-office API is for agency accounts".into(),
        ));
    }
    Ok(Staff {
        account: enrolled.account,
        device: signed.device_id()?,
        call: signed.nonce_bytes()?,
    })
}

/// A call's query string as its parameters, or `400 bad_filter` saying
/// what did not read (one line; called after the caller is authenticated).
pub(super) fn query<T>(
    params: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ServerError> {
    params
        .map(|axum::extract::Query(p)| p)
        .map_err(|e| ServerError::BadFilter(e.body_text().replace('\n', " ")))
}

/// A signed call with a JSON body: who signed it (checked first, so a bad
/// body is told only to a real caller), and the body parsed.
pub(super) fn signed_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Staff, T), ServerError> {
    let body = body.map_err(|_| ServerError::TooLarge)?;
    let agency = authenticate(state, method, uri, headers, &body)?;
    // serde's message may quote the offending value (a NIK sent as a
    // number): only where and what kind of mistake.
    let parsed = serde_json::from_slice(&body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "not valid JSON"
            }
            _ => "not the expected fields or types (see /v1/openapi.json)",
        };
        ServerError::BadRequest(format!(
            "the body is {what} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    Ok((agency, parsed))
}
