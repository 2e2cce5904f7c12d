//! The back-office API: JSON over HTTPS for an agency's own systems — list,
//! read and act on requests. Described by an OpenAPI 3 document generated
//! from this code (`GET /v1/openapi.json`).
//!
//! Authentication: an enrolled **agency** account's key signs every
//! request exactly as a device signs a sync (the `sambung-auth` header over the
//! method, the path with its query, and the body; `docs/backoffice.md`). No
//! bearer token exists to leak: a stolen log line cannot be replayed.
//!
//! Every action becomes an Automerge change by the server's own actor under
//! the document's lock, built by the same edit functions devices use
//! (`sambung_core::edits`), and reaches devices at their next sync.

use std::sync::Arc;

use automerge::ActorId;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sambung_core::document::RequestDoc;
use sambung_core::edits::{self, Author};
use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::{Kind, Request, RequestId, Service};
use sambung_core::protocol::{DocId, SignedHeaders};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::accounts::Account;
use crate::audit::{self, AuditFilter, AuditRecord, ChainCheck};
use crate::erasure::{self, Erased, KEPT};
use crate::error::ServerError;
use crate::exchange;
use crate::http::{AppState, blocking};
use crate::storage::{DocFilter, DocWrite, ListPosition};

/// Largest body of an action.
const MAX_ACTION_BODY: usize = 16 * 1024;
/// Rows per page when the caller does not say.
const DEFAULT_LIMIT: usize = 100;
/// Most rows per page.
const MAX_LIMIT: usize = 500;

/// The back-office routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/openapi.json", get(openapi_json))
        .route("/v1/agency/requests", get(list_requests))
        .route("/v1/agency/requests/{id}", get(get_request))
        .route("/v1/agency/requests/{id}/receipts", get(get_receipts))
        .route("/v1/agency/requests/{id}/status", post(set_status))
        .route("/v1/agency/requests/{id}/notes", post(add_note))
        .route("/v1/agency/requests/{id}/assignee", post(set_assignee))
        .route(
            "/v1/agency/requests/{id}/attachments/{sha256}",
            get(download_attachment),
        )
        .route("/v1/agency/webhooks", post(add_webhook).get(list_webhooks))
        .route(
            "/v1/agency/webhooks/{id}",
            axum::routing::delete(delete_webhook),
        )
        .route("/v1/agency/persons/export", post(export_person))
        .route("/v1/agency/persons/erase", post(erase_person))
        .route("/v1/agency/audit", get(audit_trail))
        .route("/v1/agency/audit/verify", get(audit_verify))
        .route("/v1/agency/exposure", get(exposure))
        .layer(DefaultBodyLimit::max(MAX_ACTION_BODY))
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sambung back-office API",
        description = "For agency systems: list, read and act on requests. Every call is signed by an enrolled agency account's Ed25519 key (one header, sambung-auth; see docs/backoffice.md)."
    ),
    paths(
        list_requests,
        get_request,
        get_receipts,
        set_status,
        add_note,
        set_assignee,
        download_attachment,
        audit_trail,
        audit_verify,
        exposure,
        export_person,
        erase_person,
        add_webhook,
        list_webhooks,
        delete_webhook
    ),
    components(schemas(
        RequestSummary,
        RequestList,
        RequestView,
        ReceiptView,
        Receipts,
        StatusChange,
        NewNote,
        Assignment,
        AuditEntryView,
        AuditPage,
        ChainReport,
        Exposure,
        NewWebhook,
        WebhookView,
        PersonQuery,
        PersonExport,
        Erasure,
        ApiError
    ))
)]
pub struct ApiDoc;

async fn openapi_json() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(_) => ServerError::Config("the OpenAPI document failed".into()).into_response(),
    }
}

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

/// Filters and paging of a listing.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Kind (`ktp_replacement`, `complaint`, …).
    pub kind: Option<String>,
    /// Service area: `permit`, `population`, `tax`, `complaint`.
    pub service: Option<String>,
    /// Status (`submitted`, `in_review`, …).
    pub status: Option<String>,
    /// Region code prefix, whole segments (`32.73`).
    pub region: Option<String>,
    /// Assigned officer's account id.
    pub assignee: Option<String>,
    /// Changed on the server at or after these Unix milliseconds.
    pub updated_since: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Rows per page, 1 to 500 (default 100).
    pub limit: Option<usize>,
}

/// One row of a listing.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct RequestSummary {
    /// Request id (UUID).
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Service area.
    pub service: String,
    /// Status.
    pub status: String,
    /// Region code.
    pub region: String,
    /// Assigned officer, if any.
    pub assignee: Option<String>,
    /// Unix milliseconds of the server's last write of it.
    pub updated_at: i64,
}

/// A page of a listing, in the order the server wrote the requests' latest
/// changes (older first).
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct RequestList {
    /// The rows.
    pub items: Vec<RequestSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One request with its whole life.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct RequestView {
    /// The request as JSON: content, status `history`, `notes`,
    /// `attachments` (metadata: content address, role, name, type, size),
    /// `assignee` (see docs/requests.md).
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    /// Current status.
    pub status: String,
    /// The version: send as `If-Match` to act only on this version.
    pub etag: String,
}

/// A status change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// The new status; only moves the lifecycle gives the agency.
    pub to: String,
    /// A reason, shown to the applicant (required in practice for
    /// `rejected` and `needs_info`).
    pub note: Option<String>,
}

/// A note.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// The text, up to 5000 characters.
    pub text: String,
}

/// An assignment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// The field officer's account id; `null` unassigns. Required: a
    /// forgotten field must not unassign.
    #[serde(deserialize_with = "present")]
    pub officer: Option<String>,
}

/// A nullable field that must be present (serde defaults a missing
/// `Option` to `None` unless the field has its own deserializer).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// The authenticated agency account and the key that signed.
struct Agency {
    account: Account,
    device: [u8; 16],
    /// The nonce of the signed call.
    call: [u8; 16],
}

impl Agency {
    /// A stored request this account sees; outside its regions is "not
    /// found": existence is not revealed.
    fn stored(
        &self,
        state: &AppState,
        id: DocId,
    ) -> Result<crate::storage::StoredDoc, ServerError> {
        state
            .storage()
            .document(id)?
            .filter(|d| self.sees(&d.scope, &d.meta.status))
            .ok_or(ServerError::NotFound)
    }

    /// Who delivers the changes this call writes: the account, with the
    /// key and the signed call.
    fn delivered(&self) -> crate::storage::Delivered {
        crate::storage::Delivered {
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
    fn sees(&self, scope: &crate::accounts::Scope, status: &str) -> bool {
        !status.is_empty() && status != Status::Draft.as_str() && self.account.may_see(scope)
    }
}

/// Checks the signature of a back-office call and that its key belongs to
/// an agency account that is not revoked (blocking).
fn authenticate(
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
        crate::http::CallKind::Exchange,
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
fn record(
    state: &AppState,
    agency: &Agency,
    action: &str,
    request: Option<DocId>,
    endpoint: &str,
) -> Result<(), ServerError> {
    state.storage().append_audit(&[AuditRecord {
        at: sambung_core::Timestamp::now().as_millis(),
        account: agency.account.id.clone(),
        role: agency.account.role.as_str().to_owned(),
        device: Some(agency.device),
        action: action.to_owned(),
        request,
        endpoint: endpoint.to_owned(),
    }])
}

/// Audit, verification and exposure are for an agency account without a
/// region restriction (the agency's data protection officer).
fn require_whole_agency(agency: &Agency) -> Result<(), ServerError> {
    if agency.account.regions.is_empty() {
        Ok(())
    } else {
        Err(ServerError::Forbidden(
            "the audit trail is for an agency account without region limits".into(),
        ))
    }
}

pub(crate) fn parse_id(id: &str) -> Result<DocId, ServerError> {
    RequestId::parse(id)
        .and_then(|r| r.to_bytes())
        .ok_or_else(|| ServerError::BadRequest("a request id is a UUID".into()))
}

fn encode_cursor((seq, id): &ListPosition) -> String {
    let mut b = seq.to_be_bytes().to_vec();
    b.extend_from_slice(id);
    hex::encode(b)
}

fn decode_cursor(s: &str) -> Result<ListPosition, ServerError> {
    let bad = || ServerError::BadFilter("cursor is not one this server gave".into());
    let b = hex::decode(s).map_err(|_| bad())?;
    if b.len() != 24 {
        return Err(bad());
    }
    let seq = i64::from_be_bytes(b[..8].try_into().map_err(|_| bad())?);
    let id: DocId = b[8..].try_into().map_err(|_| bad())?;
    Ok((seq, id))
}

impl ListParams {
    fn filter(&self) -> Result<DocFilter, ServerError> {
        let bad = |m: &str| Err(ServerError::BadFilter(m.into()));
        if let Some(k) = &self.kind
            && Kind::parse(k).is_none()
        {
            return bad("kind is not a known kind");
        }
        if let Some(s) = &self.service
            && Service::parse(s).is_none()
        {
            return bad("service is one of permit, population, tax, complaint");
        }
        if let Some(s) = &self.status
            && Status::parse(s).is_none()
        {
            return bad("status is not a known status");
        }
        if let Some(r) = &self.region
            && !RegionCode::from(r.as_str()).check().is_empty()
        {
            return bad("region is a region code such as 32.73");
        }
        if let Some(a) = &self.assignee
            && (a.is_empty() || a.len() > 128)
        {
            return bad("assignee is an account id");
        }
        if matches!(self.limit, Some(l) if l == 0 || l > MAX_LIMIT) {
            return bad("limit is 1 to 500");
        }
        Ok(DocFilter {
            kind: self.kind.clone(),
            service: self.service.clone(),
            status: self.status.clone(),
            region: self.region.clone(),
            assignee: self.assignee.clone(),
            updated_since: self.updated_since,
        })
    }
}

/// List requests the agency may see, oldest change first.
#[utoipa::path(
    get,
    path = "/v1/agency/requests",
    params(ListParams),
    responses(
        (status = 200, body = RequestList),
        (status = 400, description = "bad_filter", body = ApiError),
        (status = 401, description = "not signed, or not by an enrolled key", body = ApiError),
        (status = 403, description = "not an agency account", body = ApiError)
    )
)]
async fn list_requests(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<RequestList>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let Query(params) =
            params.map_err(|e| ServerError::BadFilter(e.body_text().replace('\n', " ")))?;
        record(&state, &agency, "list", None, "GET /v1/agency/requests")?;
        let filter = params.filter()?;
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
        let mut after = params.cursor.as_deref().map(decode_cursor).transpose()?;
        let mut items = Vec::new();
        let mut more = false;
        let mut last_position = None;
        // What the account may see is checked row by row (its scope rules
        // live in one place, `Account::may_see`); pages are read until this
        // one is full.
        'pages: loop {
            let rows = state.storage().list_documents(&filter, after, limit + 1)?;
            let exhausted = rows.len() <= limit;
            for row in rows {
                after = Some((row.seq, row.id));
                if !agency.sees(&row.scope, &row.meta.status) {
                    continue;
                }
                if items.len() == limit {
                    more = true;
                    break 'pages;
                }
                last_position = Some((row.seq, row.id));
                items.push(RequestSummary {
                    id: RequestId::from_bytes(row.id).to_string(),
                    kind: row.meta.kind,
                    service: row.meta.service,
                    status: row.meta.status,
                    region: row.scope.region,
                    assignee: row.scope.assignee,
                    updated_at: row.meta.updated_at,
                });
            }
            if exhausted {
                break;
            }
        }
        let next_cursor = if more {
            last_position.as_ref().map(encode_cursor)
        } else {
            None
        };
        Ok(Json(RequestList { items, next_cursor }))
    })
    .await
}

fn etag_of(doc: &mut RequestDoc) -> String {
    let heads = sambung_core::document::encode_heads(&doc.heads());
    format!(
        "\"{}\"",
        hex::encode(&sambung_core::crypto::sha256(&heads)[..16])
    )
}

fn view_of(doc: &mut RequestDoc, request: &Request) -> Result<RequestView, ServerError> {
    Ok(RequestView {
        request: serde_json::to_value(request)
            .map_err(|_| ServerError::Storage("a request does not serialise".into()))?,
        status: request.status().as_str().to_owned(),
        etag: etag_of(doc),
    })
}

fn with_etag(view: RequestView) -> Response {
    let etag = HeaderValue::from_str(&view.etag).ok();
    let mut response = Json(view).into_response();
    if let Some(v) = etag {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// Read one request with its history, notes and attachment metadata.
#[utoipa::path(
    get,
    path = "/v1/agency/requests/{id}",
    params(("id" = String, Path, description = "Request id (UUID)")),
    responses(
        (status = 200, body = RequestView, headers(("ETag" = String))),
        (status = 400, description = "bad_request: not a UUID", body = ApiError),
        (status = 404, description = "not_found", body = ApiError)
    )
)]
async fn get_request(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let id = parse_id(&id)?;
        let stored = agency.stored(&state, id)?;
        let mut doc = RequestDoc::load(&stored.data, [], ActorId::from(state.actor()))
            .map_err(|_| ServerError::Storage("a stored document does not load".into()))?;
        let request = doc
            .hydrate()
            .map_err(|_| ServerError::Storage("a stored document does not hydrate".into()))?;
        let view = view_of(&mut doc, &request)?;
        record(
            &state,
            &agency,
            "read",
            Some(id),
            "GET /v1/agency/requests/{id}",
        )?;
        Ok(with_etag(view))
    })
    .await
}

/// Who delivered one change of a request.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone)]
pub struct ReceiptView {
    /// The Automerge change hash (64 hex digits).
    pub change: String,
    /// The account that wrote it.
    pub account: String,
    /// The enrolled key (device) that signed the exchange or call that
    /// delivered it (32 hex digits).
    pub device: Option<String>,
    /// The nonce of that signed exchange or call (32 hex digits).
    pub exchange: Option<String>,
    /// When the server took it, Unix milliseconds.
    pub at: i64,
}

/// Who delivered each change of a request, oldest first.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct Receipts {
    /// One per change the server accepted.
    pub receipts: Vec<ReceiptView>,
}

/// Who delivered each change of a request: the account, the enrolled device
/// and the signed exchange — the authorship of every decision and field
/// note, as the server took it.
#[utoipa::path(
    get,
    path = "/v1/agency/requests/{id}/receipts",
    params(("id" = String, Path, description = "Request id (UUID)")),
    responses(
        (status = 200, body = Receipts),
        (status = 400, description = "bad_request: not a UUID", body = ApiError),
        (status = 404, description = "not_found", body = ApiError)
    )
)]
async fn get_receipts(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Receipts>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let id = parse_id(&id)?;
        agency.stored(&state, id)?;
        let receipts = state
            .storage()
            .receipts(id)?
            .into_iter()
            .map(|r| ReceiptView {
                change: hex::encode(r.change),
                account: r.delivery.account,
                device: r.delivery.device.map(hex::encode),
                exchange: r.delivery.exchange.map(hex::encode),
                at: r.delivery.at,
            })
            .collect();
        record(
            &state,
            &agency,
            "receipts",
            Some(id),
            "GET /v1/agency/requests/{id}/receipts",
        )?;
        Ok(Json(Receipts { receipts }))
    })
    .await
}

/// Applies one agency edit to a request under its lock, as the server's
/// actor.
fn act(
    state: &AppState,
    agency: &Agency,
    id: DocId,
    if_match: Option<String>,
    edit: &dyn Fn(&mut Request, Author<'_>) -> Result<(), sambung_core::Error>,
) -> Result<RequestView, ServerError> {
    let mut view = None;
    let actor = state.actor();
    state.storage().update_document(id, &mut |current| {
        let current = current.ok_or(ServerError::NotFound)?;
        if !agency.sees(&current.scope, &current.meta.status) {
            return Err(ServerError::NotFound);
        }
        let mut doc = RequestDoc::load(&current.data, [], ActorId::from(actor))
            .map_err(|_| ServerError::Storage("a stored document does not load".into()))?;
        if let Some(expected) = &if_match
            && *expected != etag_of(&mut doc)
        {
            return Err(ServerError::Stale);
        }
        let before = doc.heads();
        let previous = doc
            .hydrate()
            .map_err(|_| ServerError::Storage("a stored document does not hydrate".into()))?;
        let author = Author {
            user: &agency.account.id,
            role: Role::Agency,
        };
        let ((), request) = doc
            .update(|r| {
                edit(r, author)?;
                // The table the devices and the exchange follow.
                sambung_core::rules::check(Some(&previous), r, author)
                    .map_err(sambung_core::Error::from)
            })
            .map_err(|e| match e {
                sambung_core::Error::Forbidden(m) => ServerError::ForbiddenTransition(m),
                sambung_core::Error::Validation(report) => {
                    ServerError::BadRequest(report.to_string())
                }
                _ => ServerError::Storage("the edit could not be written".into()),
            })?;
        view = Some(view_of(&mut doc, &request)?);
        if doc.heads() == before {
            return Ok(DocWrite::Unchanged);
        }
        let scope = exchange::scope_of(state.nik_key(), &request);
        Ok(exchange::write_of(
            doc.automerge(),
            &before,
            Some(&current),
            Some(&previous),
            scope,
            &request,
            actor,
            agency.delivered(),
        ))
    })?;
    view.ok_or_else(|| ServerError::Storage("the edit was not applied".into()))
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
}

/// A signed call with a JSON body: who signed it (checked first, so a bad
/// body is told only to a real caller), and the body parsed.
fn signed_json<T: serde::de::DeserializeOwned>(
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

/// Moves a request to another status.
#[utoipa::path(
    post,
    path = "/v1/agency/requests/{id}/status",
    params(
        ("id" = String, Path, description = "Request id (UUID)"),
        ("If-Match" = Option<String>, Header, description = "ETag the change is based on")
    ),
    request_body = StatusChange,
    responses(
        (status = 200, body = RequestView, headers(("ETag" = String))),
        (status = 400, description = "bad_request", body = ApiError),
        (status = 404, description = "not_found", body = ApiError),
        (status = 409, description = "forbidden_transition", body = ApiError),
        (status = 412, description = "stale", body = ApiError)
    )
)]
async fn set_status(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let (agency, change): (Agency, StatusChange) =
            signed_json(&state, &method, &uri, &headers, body)?;
        let id = parse_id(&id)?;
        let to = Status::parse(&change.to)
            .ok_or_else(|| ServerError::BadRequest("to is not a known status".into()))?;
        if let Some(n) = &change.note {
            edits::check_note(n).map_err(|_| ServerError::BadRequest("note is too long".into()))?;
        }
        let note = change.note.clone();
        let view = act(&state, &agency, id, if_match(&headers), &|r, by| {
            edits::transition(r, by, to, note.clone()).map(|_| ())
        })?;
        record(
            &state,
            &agency,
            "status",
            Some(id),
            "POST /v1/agency/requests/{id}/status",
        )?;
        tracing::info!(to = to.as_str(), "back office changed a status");
        Ok(with_etag(view))
    })
    .await
}

/// Adds a note (a question to the applicant goes with status `needs_info`).
#[utoipa::path(
    post,
    path = "/v1/agency/requests/{id}/notes",
    params(
        ("id" = String, Path, description = "Request id (UUID)"),
        ("If-Match" = Option<String>, Header, description = "ETag the note is based on")
    ),
    request_body = NewNote,
    responses(
        (status = 200, body = RequestView, headers(("ETag" = String))),
        (status = 400, description = "bad_request", body = ApiError),
        (status = 404, description = "not_found", body = ApiError),
        (status = 412, description = "stale", body = ApiError)
    )
)]
async fn add_note(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let (agency, note): (Agency, NewNote) = signed_json(&state, &method, &uri, &headers, body)?;
        let id = parse_id(&id)?;
        edits::check_note(&note.text)
            .map_err(|_| ServerError::BadRequest("text must be 1 to 5000 characters".into()))?;
        let view = act(&state, &agency, id, if_match(&headers), &|r, by| {
            edits::add_note(r, by, &note.text, false).map(|_| ())
        })?;
        record(
            &state,
            &agency,
            "note",
            Some(id),
            "POST /v1/agency/requests/{id}/notes",
        )?;
        tracing::info!("back office added a note");
        Ok(with_etag(view))
    })
    .await
}

/// Assigns a request to a field officer, or unassigns it.
#[utoipa::path(
    post,
    path = "/v1/agency/requests/{id}/assignee",
    params(
        ("id" = String, Path, description = "Request id (UUID)"),
        ("If-Match" = Option<String>, Header, description = "ETag the assignment is based on")
    ),
    request_body = Assignment,
    responses(
        (status = 200, body = RequestView, headers(("ETag" = String))),
        (status = 400, description = "bad_request", body = ApiError),
        (status = 404, description = "not_found", body = ApiError),
        (status = 412, description = "stale", body = ApiError)
    )
)]
async fn set_assignee(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let (agency, assignment): (Agency, Assignment) =
            signed_json(&state, &method, &uri, &headers, body)?;
        let id = parse_id(&id)?;
        let officer = assignment.officer.clone();
        edits::check_assign(
            Author {
                user: &agency.account.id,
                role: Role::Agency,
            },
            officer.as_deref(),
        )
        .map_err(|_| ServerError::BadRequest("officer is an account id".into()))?;
        let view = act(&state, &agency, id, if_match(&headers), &|r, by| {
            edits::assign(r, by, officer.as_deref())
        })?;
        record(
            &state,
            &agency,
            "assign",
            Some(id),
            "POST /v1/agency/requests/{id}/assignee",
        )?;
        tracing::info!("back office assigned a request");
        Ok(with_etag(view))
    })
    .await
}

/// Which audit entries to read.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this request's (UUID).
    pub request: Option<String>,
    /// Only this account's.
    pub account: Option<String>,
    /// Only this enrolled key's (32 hex digits).
    pub device: Option<String>,
    /// Entries after this position (`next_after` of the previous page).
    pub after: Option<u64>,
    /// Entries per page, 1 to 500 (default 100).
    pub limit: Option<usize>,
}

/// One audit entry.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone)]
pub struct AuditEntryView {
    /// Position, from 1.
    pub seq: u64,
    /// Unix milliseconds.
    pub at: i64,
    /// Account id.
    pub account: String,
    /// Its role.
    pub role: String,
    /// The key that signed (32 hex digits).
    pub device: Option<String>,
    /// `read`, `write`, `list`, `status`, `note`, `assign`, `exposure`,
    /// `audit`.
    pub action: String,
    /// The request (UUID).
    pub request: Option<String>,
    /// `METHOD /path`.
    pub endpoint: String,
    /// The previous entry's hash (hex).
    pub prev: String,
    /// This entry's hash (hex): SHA-256 of `prev` and the fields.
    pub hash: String,
}

/// A page of the audit trail.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct AuditPage {
    /// Entries, oldest first.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<u64>,
}

/// The outcome of checking the whole chain.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct ChainReport {
    /// Every entry links to the previous and hashes to what it says.
    pub intact: bool,
    /// Entries checked.
    pub entries: u64,
    /// The first entry that does not, when broken.
    pub broken_at: Option<u64>,
}

/// What one account or enrolled key could read.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct Exposure {
    /// The account.
    pub account: String,
    /// Its role.
    pub role: String,
    /// Requests its scope covers now (UUIDs): what a stolen phone or key
    /// of it could have synced.
    pub could_read: Vec<String>,
    /// Requests the audit trail shows it did receive or read (UUIDs).
    pub did_read: Vec<String>,
}

fn parse_device(s: &str) -> Result<[u8; 16], ServerError> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ServerError::BadFilter("device is 32 hex digits".into()))
}

/// Read the audit trail by request, account or key.
#[utoipa::path(
    get,
    path = "/v1/agency/audit",
    params(AuditParams),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, description = "bad_filter", body = ApiError),
        (status = 403, description = "forbidden: an account limited to regions", body = ApiError)
    )
)]
async fn audit_trail(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        require_whole_agency(&agency)?;
        let Query(p) =
            params.map_err(|e| ServerError::BadFilter(e.body_text().replace('\n', " ")))?;
        let filter = AuditFilter {
            request: p
                .request
                .as_deref()
                .map(|r| {
                    RequestId::parse(r)
                        .and_then(|r| r.to_bytes())
                        .ok_or_else(|| ServerError::BadFilter("request is a UUID".into()))
                })
                .transpose()?,
            account: p.account.clone(),
            device: p.device.as_deref().map(parse_device).transpose()?,
        };
        let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ServerError::BadFilter("limit is 1 to 500".into()));
        }
        record(
            &state,
            &agency,
            "audit",
            filter.request,
            "GET /v1/agency/audit",
        )?;
        let mut entries =
            state
                .storage()
                .audit_entries(&filter, p.after.unwrap_or(0), limit + 1)?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_after = if more {
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(Json(AuditPage {
            entries: entries
                .into_iter()
                .map(|e| AuditEntryView {
                    seq: e.seq,
                    at: e.record.at,
                    account: e.record.account,
                    role: e.record.role,
                    device: e.record.device.map(hex::encode),
                    action: e.record.action,
                    request: e
                        .record
                        .request
                        .map(|r| RequestId::from_bytes(r).to_string()),
                    endpoint: e.record.endpoint,
                    prev: hex::encode(e.prev),
                    hash: hex::encode(e.hash),
                })
                .collect(),
            next_after,
        }))
    })
    .await
}

/// Check the whole audit chain.
#[utoipa::path(
    get,
    path = "/v1/agency/audit/verify",
    responses(
        (status = 200, body = ChainReport),
        (status = 403, description = "forbidden: an account limited to regions", body = ApiError)
    )
)]
async fn audit_verify(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<ChainReport>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        require_whole_agency(&agency)?;
        let report = match audit::verify(|after| {
            state
                .storage()
                .audit_entries(&AuditFilter::default(), after, 1000)
        })? {
            ChainCheck::Intact { entries } => ChainReport {
                intact: true,
                entries,
                broken_at: None,
            },
            ChainCheck::Broken { seq } => ChainReport {
                intact: false,
                entries: seq.saturating_sub(1),
                broken_at: Some(seq),
            },
        };
        record(
            &state,
            &agency,
            "audit",
            None,
            "GET /v1/agency/audit/verify",
        )?;
        Ok(Json(report))
    })
    .await
}

/// Which account (or key) to assess.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExposureParams {
    /// An account id.
    pub account: Option<String>,
    /// An enrolled key (32 hex digits), e.g. of a lost phone.
    pub device: Option<String>,
}

/// Breach support: which requests (and so whose data) an account or a
/// device could read, and which the audit trail shows it did.
#[utoipa::path(
    get,
    path = "/v1/agency/exposure",
    params(ExposureParams),
    responses(
        (status = 200, body = Exposure),
        (status = 400, description = "bad_filter: give exactly one of account, device", body = ApiError),
        (status = 404, description = "not_found: no such account or device", body = ApiError)
    )
)]
async fn exposure(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<ExposureParams>, QueryRejection>,
) -> Result<Json<Exposure>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        require_whole_agency(&agency)?;
        let Query(p) =
            params.map_err(|e| ServerError::BadFilter(e.body_text().replace('\n', " ")))?;
        let (subject, filter) = match (&p.account, &p.device) {
            (Some(a), None) => {
                let devices = state.storage().devices(Some(a))?;
                let first = devices.first().ok_or(ServerError::NotFound)?;
                let id = parse_device(&first.id)?;
                let enrolled = state.storage().device(id)?.ok_or(ServerError::NotFound)?;
                (
                    enrolled.account,
                    AuditFilter {
                        account: Some(a.clone()),
                        ..AuditFilter::default()
                    },
                )
            }
            (None, Some(d)) => {
                let id = parse_device(d)?;
                let enrolled = state.storage().device(id)?.ok_or(ServerError::NotFound)?;
                (
                    enrolled.account,
                    AuditFilter {
                        device: Some(id),
                        ..AuditFilter::default()
                    },
                )
            }
            _ => {
                return Err(ServerError::BadFilter(
                    "give exactly one of account, device".into(),
                ));
            }
        };
        let mut could_read = Vec::new();
        let mut after = None;
        loop {
            let rows = state
                .storage()
                .list_documents(&DocFilter::default(), after, 1000)?;
            let done = rows.len() < 1000;
            for row in &rows {
                after = Some((row.seq, row.id));
                if subject.may_see(&row.scope) {
                    could_read.push(RequestId::from_bytes(row.id).to_string());
                }
            }
            if done {
                break;
            }
        }
        let mut did_read = std::collections::BTreeSet::new();
        let mut from = 0;
        loop {
            let page = state.storage().audit_entries(&filter, from, 1000)?;
            let Some(last) = page.last() else { break };
            from = last.seq;
            for e in &page {
                if let (Some(r), "read" | "write") = (e.record.request, e.record.action.as_str()) {
                    did_read.insert(RequestId::from_bytes(r).to_string());
                }
            }
        }
        record(&state, &agency, "exposure", None, "GET /v1/agency/exposure")?;
        Ok(Json(Exposure {
            account: subject.id,
            role: subject.role.as_str().to_owned(),
            could_read,
            did_read: did_read.into_iter().collect(),
        }))
    })
    .await
}

/// A subscription to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries go: HTTPS (plain HTTP only to the server's own
    /// host).
    pub url: String,
    /// Any of `request.submitted`, `request.status_changed`,
    /// `request.note_added`, `attachment.received`.
    pub events: Vec<String>,
}

/// A subscription.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct WebhookView {
    /// Its id.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// What it receives.
    pub events: Vec<String>,
    /// The signing secret (`whsec_…`, Standard Webhooks): shown once, when
    /// the subscription is made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Subscribe a URL to events about the agency's requests.
#[utoipa::path(
    post,
    path = "/v1/agency/webhooks",
    request_body = NewWebhook,
    responses(
        (status = 201, body = WebhookView),
        (status = 400, description = "bad_request: URL or events", body = ApiError)
    )
)]
async fn add_webhook(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let (agency, new): (Agency, NewWebhook) =
            signed_json(&state, &method, &uri, &headers, body)?;
        crate::webhooks::check_url(&new.url, state.webhook_policy())?;
        if new.events.is_empty()
            || new
                .events
                .iter()
                .any(|e| !crate::webhooks::EVENTS.contains(&e.as_str()))
        {
            return Err(ServerError::BadRequest(format!(
                "events are one or more of {}",
                crate::webhooks::EVENTS.join(", ")
            )));
        }
        let (secret_text, secret) = crate::webhooks::new_secret()?;
        let sub = crate::webhooks::Subscription {
            id: crate::webhooks::new_id(),
            account: agency.account.clone(),
            url: new.url.clone(),
            events: new.events.clone(),
        };
        // Kept only sealed under the secrets file's master key.
        let sealed = state.secrets().seal_webhook_secret(&sub.id, &secret)?;
        state
            .storage()
            .add_webhook(&sub, &sealed, crate::http::now())?;
        record(&state, &agency, "webhook", None, "POST /v1/agency/webhooks")?;
        let view = WebhookView {
            id: sub.id,
            url: sub.url,
            events: sub.events,
            secret: Some(secret_text),
        };
        Ok((axum::http::StatusCode::CREATED, Json(view)).into_response())
    })
    .await
}

/// The agency account's subscriptions (without secrets).
#[utoipa::path(
    get,
    path = "/v1/agency/webhooks",
    responses((status = 200, body = [WebhookView]))
)]
async fn list_webhooks(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Vec<WebhookView>>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let subs = state.storage().webhooks(Some(&agency.account.id))?;
        Ok(Json(
            subs.into_iter()
                .map(|s| WebhookView {
                    id: s.id,
                    url: s.url,
                    events: s.events,
                    secret: None,
                })
                .collect(),
        ))
    })
    .await
}

/// Remove a subscription and what is still queued for it.
#[utoipa::path(
    delete,
    path = "/v1/agency/webhooks/{id}",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "removed"),
        (status = 404, description = "not_found", body = ApiError)
    )
)]
async fn delete_webhook(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        if !state.storage().delete_webhook(&id, &agency.account.id)? {
            return Err(ServerError::NotFound);
        }
        record(
            &state,
            &agency,
            "webhook",
            None,
            "DELETE /v1/agency/webhooks/{id}",
        )?;
        Ok(axum::http::StatusCode::NO_CONTENT.into_response())
    })
    .await
}

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
async fn export_person(
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
                processing.extend(page.into_iter().map(audit_view));
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

fn audit_view(e: crate::audit::AuditEntry) -> AuditEntryView {
    AuditEntryView {
        seq: e.seq,
        at: e.record.at,
        account: e.record.account,
        role: e.record.role,
        device: e.record.device.map(hex::encode),
        action: e.record.action,
        request: e
            .record
            .request
            .map(|r| RequestId::from_bytes(r).to_string()),
        endpoint: e.record.endpoint,
        prev: hex::encode(e.prev),
        hash: hex::encode(e.hash),
    }
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
async fn erase_person(
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

/// Download an attachment of a request (its bytes as uploaded by the
/// device), whole or a `Range` of it.
#[utoipa::path(
    get,
    path = "/v1/agency/requests/{id}/attachments/{sha256}",
    params(
        ("id" = String, Path, description = "Request id (UUID)"),
        ("sha256" = String, Path, description = "The attachment's content address"),
        ("Range" = Option<String>, Header, description = "bytes=start-end")
    ),
    responses(
        (status = 200, description = "the bytes", content_type = "application/octet-stream"),
        (status = 206, description = "the range asked for"),
        (status = 404, description = "not_found: not an attachment of this request, not uploaded yet, or its reference does not grant the bytes (the account that added it never uploaded them)", body = ApiError),
        (status = 416, description = "the range is outside the attachment")
    )
)]
async fn download_attachment(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((id, sha)): Path<(String, String)>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let id = parse_id(&id)?;
        let digest = crate::blobs::parse_sha(&sha)?;
        let stored = agency.stored(&state, id)?;
        let response = crate::blobs::serve(&state, id, &stored, &digest, &headers)?;
        record(
            &state,
            &agency,
            "download",
            Some(id),
            "GET /v1/agency/requests/{id}/attachments/{sha256}",
        )?;
        Ok(response)
    })
    .await
}
