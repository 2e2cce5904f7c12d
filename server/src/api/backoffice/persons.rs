//! A person's rights over their data (UU PDP art. 7 and 8): everything
//! the server holds about them as one JSON document, and its erasure
//! (the step itself: [`crate::erasure`]). The NIK travels in the signed
//! body, never in a URL.

use std::sync::Arc;

use automerge::ActorId;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Method, Uri};
use sambung_core::document::RequestDoc;
use sambung_core::model::RequestId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::agency::{Agency, ApiError, record, require_whole_agency, signed_json};
use super::audit::AuditEntryView;
use crate::api::state::{AppState, blocking};
use crate::audit::AuditFilter;
use crate::erasure::{self, Erased, KEPT};
use crate::error::ServerError;
use crate::exchange;

/// Whose data: the NIK travels in the (signed, encrypted) body, never in a
/// URL that proxies log.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonQuery {
    /// The person's NIK (16 digits).
    pub nik: String,
}

/// Everything the server holds about a person (UU PDP art. 7 and 8: access
/// and a copy).
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct PersonExport {
    /// Unix milliseconds of the export.
    pub exported_at: i64,
    /// Account ids linked to the NIK (pseudonymous; the NIK itself is kept
    /// only as a keyed hash).
    pub accounts: Vec<String>,
    /// Every request filed with the NIK or by those accounts, whole: content,
    /// history, notes, attachment metadata.
    #[schema(value_type = Vec<Object>)]
    pub requests: Vec<serde_json::Value>,
    /// Who read or changed those requests, when and through which
    /// endpoint.
    pub processing: Vec<AuditEntryView>,
}

/// Export everything held about a person, as one JSON document.
#[utoipa::path(
    post,
    path = "/v1/agency/persons/export",
    request_body = PersonQuery,
    responses(
        (status = 200, body = PersonExport),
        (status = 400, description = "bad_request: not a NIK", body = ApiError),
        (status = 403, description = "forbidden: an account limited to regions", body = ApiError)
    )
)]
pub(super) async fn export_person(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PersonExport>, ServerError> {
    blocking(move || {
        let (agency, query): (Agency, PersonQuery) =
            signed_json(&state, &method, &uri, &headers, body)?;
        require_whole_agency(&agency)?;
        let nik = sambung_core::identifiers::Nik::from(query.nik.trim());
        if !nik.check().is_empty() {
            return Err(ServerError::BadRequest("nik is not a valid NIK".into()));
        }
        let hash = exchange::nik_hash(state.nik_key(), nik.as_str());
        let accounts = state.storage().accounts_of_person(&hash)?;
        let mut requests = Vec::new();
        let mut processing = Vec::new();
        let ids = state.storage().documents_of_person(&hash)?;
        for &id in &ids {
            let Some(stored) = state.storage().document(id)? else {
                continue;
            };
            let doc = RequestDoc::load(&stored.data, [], ActorId::from(state.actor()))
                .map_err(|_| ServerError::Storage("a stored document does not load".into()))?;
            let request = doc
                .hydrate()
                .map_err(|_| ServerError::Storage("a stored document does not hydrate".into()))?;
            requests.push(
                serde_json::to_value(&request)
                    .map_err(|_| ServerError::Storage("a request does not serialise".into()))?,
            );
            let filter = AuditFilter {
                request: Some(id),
                ..AuditFilter::default()
            };
            let mut after = 0;
            loop {
                let page = state.storage().audit_entries(&filter, after, 1000)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                processing.extend(page.into_iter().map(AuditEntryView::from));
            }
        }
        // The export is itself processing: recorded, per request.
        let endpoint = "POST /v1/agency/persons/export";
        if ids.is_empty() {
            record(&state, &agency, "export", None, endpoint)?;
        }
        for id in ids {
            record(&state, &agency, "export", Some(id), endpoint)?;
        }
        Ok(Json(PersonExport {
            exported_at: sambung_core::Timestamp::now().as_millis(),
            accounts,
            requests,
            processing,
        }))
    })
    .await
}

/// The outcome of an erasure.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct Erasure {
    /// Requests erased now (UUIDs).
    pub erased: Vec<String>,
    /// Requests erased before (UUIDs).
    pub already_erased: Vec<String>,
    /// Requests the person's account filed for someone else (UUIDs): the
    /// other person's record, left as it is.
    pub filed_for_others: Vec<String>,
    /// What each keeps, and why.
    pub kept: String,
}

/// Erase a person's data from every request about them; devices replace
/// their copies at their next sync.
#[utoipa::path(
    post,
    path = "/v1/agency/persons/erase",
    request_body = PersonQuery,
    responses(
        (status = 200, body = Erasure),
        (status = 400, description = "bad_request: not a NIK", body = ApiError),
        (status = 403, description = "forbidden: an account limited to regions", body = ApiError)
    )
)]
pub(super) async fn erase_person(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Erasure>, ServerError> {
    blocking(move || {
        let (agency, query): (Agency, PersonQuery) =
            signed_json(&state, &method, &uri, &headers, body)?;
        require_whole_agency(&agency)?;
        let nik = sambung_core::identifiers::Nik::from(query.nik.trim());
        if !nik.check().is_empty() {
            return Err(ServerError::BadRequest("nik is not a valid NIK".into()));
        }
        let hash = exchange::nik_hash(state.nik_key(), nik.as_str());
        let (mut erased, mut already, mut others) = (Vec::new(), Vec::new(), Vec::new());
        let mut attachments = Vec::new();
        for id in state.storage().documents_of_person(&hash)? {
            let outcome = erasure::erase_request(
                state.storage(),
                state.nik_key(),
                state.actor(),
                &hash,
                id,
                &agency.delivered(),
            )?;
            let text = RequestId::from_bytes(id).to_string();
            match outcome {
                Erased::FiledForOther => {
                    others.push(text);
                    continue;
                }
                Erased::Before => already.push(text),
                Erased::Now(hashes) => {
                    erased.push(text);
                    attachments.extend(hashes);
                }
            }
            record(
                &state,
                &agency,
                "erase",
                Some(id),
                "POST /v1/agency/persons/erase",
            )?;
        }
        erasure::finish(state.storage(), &attachments)?;
        tracing::info!(requests = erased.len(), "a person's data was erased");
        Ok(Json(Erasure {
            erased,
            already_erased: already,
            filed_for_others: others,
            kept: KEPT.to_owned(),
        }))
    })
    .await
}
