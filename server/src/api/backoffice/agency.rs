//! The caller of the back-office API: an enrolled agency account, known
//! by the signature of its call, and what every handler does with it —
//! what it may see, who delivered its changes, its record in the audit
//! trail, its JSON body — with the API's limits and error answer.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Method, Uri};
use sambung_core::lifecycle::{Role, Status};
use sambung_core::protocol::{DocId, SignedHeaders};
use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::{Account, Scope};
use crate::api::state::{AppState, CallKind};
use crate::audit::AuditRecord;
use crate::error::ServerError;
use crate::storage::{Delivered, StoredDoc};

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

/// The authenticated agency account and the key that signed.
pub(super) struct Agency {
    pub(super) account: Account,
    pub(super) device: [u8; 16],
    /// The nonce of the signed call.
    pub(super) call: [u8; 16],
}

impl Agency {
    /// A stored request this account sees; outside its regions is "not
    /// found": existence is not revealed.
    pub(super) fn stored(&self, state: &AppState, id: DocId) -> Result<StoredDoc, ServerError> {
        state
            .storage()
            .document(id)?
            .filter(|d| self.sees(&d.scope, &d.meta.status))
            .ok_or(ServerError::NotFound)
    }

    /// Who delivers the changes this call writes: the account, with the
    /// key and the signed call.
    pub(super) fn delivered(&self) -> Delivered {
        Delivered {
            account: self.account.id.clone(),
            device: Some(self.device),
            exchange: Some(self.call),
            at: sambung_core::Timestamp::now().as_millis(),
        }
    }

    /// Whether the back office sees a request: in the account's regions,
    /// and submitted — a draft is the applicant's until they submit it. A
    /// request stored before the status was kept beside it (empty) counts
    /// as a draft until its next change.
    pub(super) fn sees(&self, scope: &Scope, status: &str) -> bool {
        !status.is_empty() && status != Status::Draft.as_str() && self.account.may_see(scope)
    }
}

/// Checks the signature of a back-office call and that its key belongs to
/// an agency account that is not revoked (blocking).
pub(super) fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Agency, ServerError> {
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
    Ok(Agency {
        account: enrolled.account,
        device: signed.device_id()?,
        call: signed.nonce_bytes()?,
    })
}

/// Records one back-office access in the audit trail.
pub(super) fn record(
    state: &AppState,
    agency: &Agency,
    action: &str,
    request: Option<DocId>,
    endpoint: &str,
) -> Result<(), ServerError> {
    crate::audit::append(
        state.storage(),
        &[AuditRecord {
            at: sambung_core::Timestamp::now().as_millis(),
            account: agency.account.id.clone(),
            role: agency.account.role.as_str().to_owned(),
            device: Some(agency.device),
            action: action.to_owned(),
            request,
            endpoint: endpoint.to_owned(),
        }],
    )
}

/// Audit, verification and exposure are for an agency account without a
/// region restriction (the agency's data protection officer).
pub(super) fn require_whole_agency(agency: &Agency) -> Result<(), ServerError> {
    if agency.account.regions.is_empty() {
        Ok(())
    } else {
        Err(ServerError::Forbidden(
            "the audit trail is for an agency account without region limits".into(),
        ))
    }
}

/// A signed call with a JSON body: who signed it (checked first, so a bad
/// body is told only to a real caller), and the body parsed.
pub(super) fn signed_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Agency, T), ServerError> {
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
