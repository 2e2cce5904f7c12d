//! A person's rights over their data (UU PDP art. 7 and 8): everything
//! the server holds about them as one JSON document, and its erasure
//! (the step itself: [`crate::erasure`]). The NIK travels in the signed
//! body, never in a URL.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Method, Uri};
use sambung_core::model::RequestId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::agency::{ApiError, signed_json};
use super::audit::AuditEntryView;
use crate::agency::Staff;
use crate::api::state::{AppState, blocking};
use crate::erasure::{Erased, KEPT};
use crate::error::ServerError;
use crate::exchange;

/// Whose data: the NIK travels in the (signed, encrypted) body, never in a
/// URL that proxies log.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonQuery {
    /// The person's NIK (16 digits: a province, a region, a date of birth
    /// — the day plus 40 for women —, a serial other than 0000).
    #[schema(
        pattern = r"^(1[1-9]|21|3[1-6]|5[1-3]|6[1-5]|7[1-6]|8[12]|9[1-7])[0-9]{4}((0[1-9]|1[0-9]|2[0-8]|4[1-9]|5[0-9]|6[0-8])(0[1-9]|1[0-2])[0-9]{2}|(29|69)(0[13-9]|1[0-2])[0-9]{2}|(29|69)02([02468][048]|[13579][26])|(30|70)(0[13-9]|1[0-2])[0-9]{2}|(31|71)(0[13578]|1[02])[0-9]{2})(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})$"
    )]
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
        let (agency, query): (Staff, PersonQuery) =
            signed_json(&state, &method, &uri, &headers, body)?;
        agency.require_whole_agency()?;
        let nik = sambung_core::identifiers::Nik::from(query.nik.trim());
        if !nik.check().is_empty() {
            return Err(ServerError::BadRequest("nik is not a valid NIK".into()));
        }
        let hash = exchange::nik_hash(state.nik_key(), nik.as_str());
        let data = agency.export_person(
            state.storage(),
            state.actor(),
            &hash,
            "POST /v1/agency/persons/export",
        )?;
        let requests = data
            .requests
            .iter()
            .map(|r| {
                serde_json::to_value(r)
                    .map_err(|_| ServerError::Storage("a request does not serialise".into()))
            })
            .collect::<Result<_, _>>()?;
        let (accounts, processing) = (
            data.accounts,
            data.processing
                .into_iter()
                .map(AuditEntryView::from)
                .collect(),
        );
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
        let (agency, query): (Staff, PersonQuery) =
            signed_json(&state, &method, &uri, &headers, body)?;
        agency.require_whole_agency()?;
        let nik = sambung_core::identifiers::Nik::from(query.nik.trim());
        if !nik.check().is_empty() {
            return Err(ServerError::BadRequest("nik is not a valid NIK".into()));
        }
        let hash = exchange::nik_hash(state.nik_key(), nik.as_str());
        let (mut erased, mut already, mut others) = (Vec::new(), Vec::new(), Vec::new());
        for (id, outcome) in agency.erase_person(
            state.storage(),
            state.nik_key(),
            state.actor(),
            &hash,
            "POST /v1/agency/persons/erase",
        )? {
            let text = RequestId::from_bytes(id).to_string();
            match outcome {
                Erased::FiledForOther => others.push(text),
                Erased::Before => already.push(text),
                Erased::Now(_) => erased.push(text),
            }
        }
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
