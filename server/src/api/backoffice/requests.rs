//! The agency's requests: list them, read one with its history and who
//! delivered each change, act on it (status, note, assignment: each an
//! Automerge change by the server's own actor under the document's lock,
//! built by the edit functions devices use), download its attachments.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use sambung_core::catalog::Catalog;
use sambung_core::edits::{self, Author};
use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::{self, Role, Status};
use sambung_core::model::{Kind, Request, RequestId, Service};
use sambung_core::protocol::DocId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::agency::{ApiError, DEFAULT_LIMIT, MAX_LIMIT, authenticate, query, signed_json};
use crate::agency::{Edit, Staff};
use crate::api::blobs::serve;
use crate::api::state::{AppState, blocking, parse_id};
use crate::blobs::parse_sha;
use crate::error::ServerError;
use crate::storage::{DocFilter, ListPosition};

/// Filters and paging of a listing.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Kind (`ktp_el`, `complaint`, …; `service`: requests of catalog
    /// services, whose details name the service).
    #[param(
        pattern = "^(business_licence|building_approval|birth|death|move_address|family_card_update|ktp_el|pbb_objection|pbb_reduction|payment_verification|vehicle_tax|bphtb|complaint|service)$"
    )]
    pub kind: Option<String>,
    /// Service area: `permit`, `population`, `tax`, `complaint`, `catalog`
    /// (catalog services).
    #[param(pattern = "^(permit|population|tax|complaint|catalog)$")]
    pub service: Option<String>,
    /// Status (`submitted`, `in_review`, …).
    #[param(
        pattern = "^(draft|submitted|received|in_review|needs_info|approved|rejected|completed|withdrawn)$"
    )]
    pub status: Option<String>,
    /// Region code prefix, whole segments (`32.73`).
    #[param(
        pattern = r"^(1[1-9]|21|3[1-6]|5[1-3]|6[1-5]|7[1-6]|8[12]|9[1-7])(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$"
    )]
    pub region: Option<String>,
    /// Assigned officer's account id.
    #[param(min_length = 1, max_length = 128)]
    pub assignee: Option<String>,
    /// Changed on the server at or after these Unix milliseconds.
    pub updated_since: Option<i64>,
    /// Submitted at or after these Unix milliseconds.
    pub submitted_since: Option<i64>,
    /// Submitted before these Unix milliseconds.
    pub submitted_before: Option<i64>,
    /// The service definition (a catalog service's id, or a built-in
    /// kind's), as `GET /v1/agency/services` lists them.
    #[param(pattern = r"^[a-z][a-z0-9_]{0,63}$")]
    pub definition: Option<String>,
    /// `true`: only open requests (submitted, received, in review, needing
    /// information) past their service standard's days since submission,
    /// counted in working days (Monday to Friday, WIB).
    pub overdue: Option<bool>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9a-fA-F]{48}$")]
    pub cursor: Option<String>,
    /// Rows per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

/// The filters of a listing, for what covers all its pages at once: the
/// counts and the CSV export. (utoipa takes only literal patterns: a test
/// in tests/tests/backoffice.rs holds them equal to the listing's.)
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FilterParams {
    /// Kind, as in the listing.
    #[param(
        pattern = "^(business_licence|building_approval|birth|death|move_address|family_card_update|ktp_el|pbb_objection|pbb_reduction|payment_verification|vehicle_tax|bphtb|complaint|service)$"
    )]
    pub kind: Option<String>,
    /// Service area, as in the listing.
    #[param(pattern = "^(permit|population|tax|complaint|catalog)$")]
    pub service: Option<String>,
    /// Status, as in the listing.
    #[param(
        pattern = "^(draft|submitted|received|in_review|needs_info|approved|rejected|completed|withdrawn)$"
    )]
    pub status: Option<String>,
    /// Region code prefix, whole segments, as in the listing.
    #[param(
        pattern = r"^(1[1-9]|21|3[1-6]|5[1-3]|6[1-5]|7[1-6]|8[12]|9[1-7])(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$"
    )]
    pub region: Option<String>,
    /// Assigned officer's account id.
    #[param(min_length = 1, max_length = 128)]
    pub assignee: Option<String>,
    /// Changed on the server at or after these Unix milliseconds.
    pub updated_since: Option<i64>,
    /// Submitted at or after these Unix milliseconds.
    pub submitted_since: Option<i64>,
    /// Submitted before these Unix milliseconds.
    pub submitted_before: Option<i64>,
    /// The service definition (a catalog service's id, or a built-in
    /// kind's), as `GET /v1/agency/services` lists them.
    #[param(pattern = r"^[a-z][a-z0-9_]{0,63}$")]
    pub definition: Option<String>,
    /// `true`: only open requests (submitted, received, in review, needing
    /// information) past their service standard's days since submission,
    /// counted in working days (Monday to Friday, WIB).
    pub overdue: Option<bool>,
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
    /// Where it is about, when it says (a complaint's place, a business's
    /// location, a catalog service's location field): what a map plots.
    pub location: Option<Point>,
    /// Unix milliseconds of its submission (absent for a request not
    /// written since the server learnt to keep it).
    pub submitted_at: Option<i64>,
    /// The service definition it follows (`GET /v1/agency/services`): a
    /// catalog service's id, or the built-in kind's.
    pub definition: String,
    /// Open and past its service standard's days since submission
    /// (working days, as the `overdue` filter counts them).
    pub overdue: bool,
}

/// A WGS84 position, in degrees.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Latitude, −90 to 90.
    pub lat: f64,
    /// Longitude, −180 to 180.
    pub lon: f64,
}

impl Point {
    fn of((lat_e6, lon_e6): (i32, i32)) -> Point {
        Point {
            lat: f64::from(lat_e6) / 1e6,
            lon: f64::from(lon_e6) / 1e6,
        }
    }
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
    /// The statuses an agency may move it to now (the lifecycle's rules,
    /// `core/src/lifecycle.rs`), so a client offers only those.
    pub next_statuses: Vec<String>,
    /// The version: send as `If-Match` to act only on this version.
    pub etag: String,
}

/// A status change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// The new status; only moves the lifecycle gives the agency.
    #[schema(
        pattern = r"^(draft|submitted|received|in_review|needs_info|approved|rejected|completed|withdrawn)$"
    )]
    pub to: String,
    /// A reason, shown to the applicant (required in practice for
    /// `rejected` and `needs_info`).
    #[schema(min_length = 1, max_length = 5000, pattern = r"\S")]
    pub note: Option<String>,
}

/// A note.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// The text, up to 5000 characters.
    #[schema(min_length = 1, max_length = 5000, pattern = r"\S")]
    pub text: String,
}

/// An assignment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// The field officer's account id; `null` unassigns. Required: a
    /// forgotten field must not unassign.
    #[serde(deserialize_with = "present")]
    #[schema(required = true, min_length = 1, max_length = 128, pattern = r"\S")]
    pub officer: Option<String>,
}

/// A nullable field that must be present (serde defaults a missing
/// `Option` to `None` unless the field has its own deserializer).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
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

impl FilterParams {
    /// The storage's filter; `catalog` gives each service's standard days
    /// for `overdue`, counted back from `now_ms`.
    fn filter(&self, catalog: &Catalog, now_ms: i64) -> Result<DocFilter, ServerError> {
        let bad = |m: &str| Err(ServerError::BadFilter(m.into()));
        if let Some(k) = &self.kind
            && Kind::parse(k).is_none()
        {
            return bad("kind is not a known kind");
        }
        if let Some(s) = &self.service
            && Service::parse(s).is_none()
        {
            return bad("service is one of permit, population, tax, complaint, catalog");
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
            && (a.is_empty() || a.chars().count() > 128)
        {
            return bad("assignee is an account id");
        }
        if let Some(d) = &self.definition
            && !sambung_core::catalog::lint::is_id(d)
        {
            return bad("definition is a service id");
        }
        let overdue = (self.overdue == Some(true)).then(|| Cutoffs::of(catalog, now_ms).as_json());
        Ok(DocFilter {
            kind: self.kind.clone(),
            service: self.service.clone(),
            status: self.status.clone(),
            region: self.region.clone(),
            assignee: self.assignee.clone(),
            updated_since: self.updated_since,
            submitted_since: self.submitted_since,
            submitted_before: self.submitted_before,
            definition: self.definition.clone(),
            overdue,
        })
    }
}

/// For each service definition, the moment before which an open request
/// submitted on it is overdue: its standard's days counted back from now.
/// The newest version's days stand for all its versions.
struct Cutoffs(std::collections::BTreeMap<String, i64>);

impl Cutoffs {
    fn of(catalog: &Catalog, now_ms: i64) -> Cutoffs {
        Cutoffs(
            catalog
                .services(None)
                .into_iter()
                .map(|d| (d.id.clone(), working_days_before(now_ms, d.standard.days)))
                .collect(),
        )
    }

    /// Whether a stored request is overdue: what the `overdue` filter's SQL
    /// says of a row, for the rows of a page.
    fn overdue(&self, meta: &crate::storage::DocMeta) -> bool {
        let open = matches!(
            meta.status.as_str(),
            "submitted" | "received" | "in_review" | "needs_info"
        );
        open && meta
            .submitted_at
            .zip(self.0.get(&meta.definition))
            .is_some_and(|(at, cutoff)| at < *cutoff)
    }

    /// The filter's form: a JSON object of definition id → Unix ms.
    fn as_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }
}

/// The moment `days` working days (Monday to Friday, in WIB) before
/// `now_ms`: a request submitted before it and still open is overdue.
/// Public holidays are not known to the server, so they count as working
/// days (an office sees a request as overdue a little early, never late).
fn working_days_before(now_ms: i64, days: u32) -> i64 {
    const DAY: i64 = 86_400_000;
    const WIB: i64 = 7 * 3_600_000;
    let mut t = now_ms;
    let mut left = days;
    while left > 0 {
        t -= DAY;
        // 1970-01-01 was a Thursday: Monday is 0.
        let weekday = ((t + WIB).div_euclid(DAY) + 3).rem_euclid(7);
        if weekday < 5 {
            left -= 1;
        }
    }
    t
}

impl ListParams {
    fn filter(&self, catalog: &Catalog, now_ms: i64) -> Result<DocFilter, ServerError> {
        if matches!(self.limit, Some(l) if l == 0 || l > MAX_LIMIT) {
            return Err(ServerError::BadFilter("limit is 1 to 500".into()));
        }
        FilterParams {
            kind: self.kind.clone(),
            service: self.service.clone(),
            status: self.status.clone(),
            region: self.region.clone(),
            assignee: self.assignee.clone(),
            updated_since: self.updated_since,
            submitted_since: self.submitted_since,
            submitted_before: self.submitted_before,
            definition: self.definition.clone(),
            overdue: self.overdue,
        }
        .filter(catalog, now_ms)
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
pub(super) async fn list_requests(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<RequestList>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let params = query(params)?;
        let catalog = state.catalogs().current(state.storage())?;
        let now = now_ms();
        let filter = params.filter(&catalog.catalog, now)?;
        let cutoffs = Cutoffs::of(&catalog.catalog, now);
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
        let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
        let (rows, more) = agency.list(
            state.storage(),
            &filter,
            after,
            limit,
            "GET /v1/agency/requests",
        )?;
        let next_cursor = more
            .then(|| rows.last().map(|r| encode_cursor(&(r.seq, r.id))))
            .flatten();
        let items = rows
            .into_iter()
            .map(|row| RequestSummary {
                id: RequestId::from_bytes(row.id).to_string(),
                overdue: cutoffs.overdue(&row.meta),
                kind: row.meta.kind,
                service: row.meta.service,
                status: row.meta.status,
                region: row.scope.region,
                assignee: row.scope.assignee,
                updated_at: row.meta.updated_at,
                location: row.meta.location.map(Point::of),
                submitted_at: row.meta.submitted_at,
                definition: row.meta.definition,
            })
            .collect();
        Ok(Json(RequestList { items, next_cursor }))
    })
    .await
}

/// How many requests match, by status.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct RequestCounts {
    /// By status (only statuses that have requests).
    pub counts: std::collections::BTreeMap<String, u64>,
    /// All of them.
    pub total: u64,
}

/// Count the requests the agency may see, by status: a queue's tabs.
#[utoipa::path(
    get,
    path = "/v1/agency/requests/counts",
    params(FilterParams),
    responses(
        (status = 200, body = RequestCounts),
        (status = 400, description = "bad_filter", body = ApiError)
    )
)]
pub(super) async fn count_requests(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<FilterParams>, QueryRejection>,
) -> Result<Json<RequestCounts>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let params = query(params)?;
        let counts = agency.counts(
            state.storage(),
            &params.filter(
                &state.catalogs().current(state.storage())?.catalog,
                now_ms(),
            )?,
            "GET /v1/agency/requests/counts",
        )?;
        let total = counts.values().sum();
        Ok(Json(RequestCounts { counts, total }))
    })
    .await
}

/// Rows a CSV export holds at most: beyond, narrow the filter.
pub const MAX_EXPORT_ROWS: usize = 200_000;

/// The requests the agency may see that match, as CSV (one row per
/// request, the listing's columns; no content, no attachments), recorded
/// as `export` in the audit trail.
#[utoipa::path(
    get,
    path = "/v1/agency/requests/export",
    params(FilterParams),
    responses(
        (status = 200, description = "CSV (RFC 4180) with a header row: id, kind, service, status, region, assignee, updated_at (UTC, ISO 8601)", content_type = "text/csv", body = String),
        (status = 400, description = "bad_filter, also when more than 200,000 requests match", body = ApiError)
    )
)]
pub(super) async fn export_requests(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<FilterParams>, QueryRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let params = query(params)?;
        let rows = agency
            .export(
                state.storage(),
                &params.filter(
                    &state.catalogs().current(state.storage())?.catalog,
                    now_ms(),
                )?,
                MAX_EXPORT_ROWS,
                "GET /v1/agency/requests/export",
            )?
            .ok_or_else(|| {
                ServerError::BadFilter(format!(
                    "more than {MAX_EXPORT_ROWS} requests match: narrow the filter"
                ))
            })?;
        let mut csv = String::from("id,kind,service,status,region,assignee,updated_at\r\n");
        for row in rows {
            let fields = [
                RequestId::from_bytes(row.id).to_string(),
                row.meta.kind,
                row.meta.service,
                row.meta.status,
                row.scope.region,
                row.scope.assignee.unwrap_or_default(),
                utc(row.meta.updated_at),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            csv.push_str(&line.join(","));
            csv.push_str("\r\n");
        }
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"requests.csv\"",
                ),
            ],
            csv,
        )
            .into_response())
    })
    .await
}

/// One CSV field (RFC 4180), safe to open in a spreadsheet: quoted when it
/// holds a comma, quote or line break, and a leading `=`, `+`, `-`, `@`
/// (a formula to a spreadsheet) made text with a `'`.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    sambung_core::Timestamp::now().as_millis()
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(ms: i64) -> String {
    let date = sambung_core::Timestamp(ms).date_at_offset(0);
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{date}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn view_of(request: &Request, etag: String) -> Result<RequestView, ServerError> {
    Ok(RequestView {
        request: serde_json::to_value(request)
            .map_err(|_| ServerError::Storage("a request does not serialise".into()))?,
        status: request.status().as_str().to_owned(),
        next_statuses: Status::ALL
            .into_iter()
            .filter(|to| lifecycle::allowed(Role::Agency, request.status(), *to))
            .map(|to| to.as_str().to_owned())
            .collect(),
        etag,
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
    params(("id" = String, Path, description = "Request id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, body = RequestView, headers(("ETag" = String))),
        (status = 400, description = "bad_request: not a UUID", body = ApiError),
        (status = 404, description = "not_found", body = ApiError)
    )
)]
pub(super) async fn get_request(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let id = parse_id(&id)?;
        let (request, etag) = agency.read(
            state.storage(),
            state.actor(),
            id,
            "GET /v1/agency/requests/{id}",
        )?;
        Ok(with_etag(view_of(&request, etag)?))
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
    params(("id" = String, Path, description = "Request id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, body = Receipts),
        (status = 400, description = "bad_request: not a UUID", body = ApiError),
        (status = 404, description = "not_found", body = ApiError)
    )
)]
pub(super) async fn get_receipts(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Receipts>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let id = parse_id(&id)?;
        let receipts = agency
            .receipts(state.storage(), id, "GET /v1/agency/requests/{id}/receipts")?
            .into_iter()
            .map(|r| ReceiptView {
                change: hex::encode(r.change),
                account: r.delivery.account,
                device: r.delivery.device.map(hex::encode),
                exchange: r.delivery.exchange.map(hex::encode),
                at: r.delivery.at,
            })
            .collect();
        Ok(Json(Receipts { receipts }))
    })
    .await
}

/// Applies one agency edit to a request (see [`Staff::act`]), recorded
/// as `action` of `endpoint`.
fn act(
    state: &AppState,
    agency: &Staff,
    id: DocId,
    headers: &HeaderMap,
    action: &str,
    endpoint: &str,
    edit: Edit<'_>,
) -> Result<Response, ServerError> {
    let (request, etag) = agency.act(
        state.storage(),
        state.nik_key(),
        state.actor(),
        id,
        if_match(headers).as_deref(),
        action,
        endpoint,
        edit,
    )?;
    Ok(with_etag(view_of(&request, etag)?))
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
}

/// Moves a request to another status.
#[utoipa::path(
    post,
    path = "/v1/agency/requests/{id}/status",
    params(
        ("id" = String, Path, description = "Request id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
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
pub(super) async fn set_status(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let (agency, change): (Staff, StatusChange) =
            signed_json(&state, &method, &uri, &headers, body)?;
        let id = parse_id(&id)?;
        let to = Status::parse(&change.to)
            .ok_or_else(|| ServerError::BadRequest("to is not a known status".into()))?;
        if let Some(n) = &change.note {
            edits::check_note(n).map_err(|_| ServerError::BadRequest("note is too long".into()))?;
        }
        let note = change.note.clone();
        let response = act(
            &state,
            &agency,
            id,
            &headers,
            "status",
            "POST /v1/agency/requests/{id}/status",
            &|r, by| edits::transition(r, by, to, note.clone()).map(|_| ()),
        )?;
        tracing::info!(to = to.as_str(), "back office changed a status");
        Ok(response)
    })
    .await
}

/// Adds a note (a question to the applicant goes with status `needs_info`).
#[utoipa::path(
    post,
    path = "/v1/agency/requests/{id}/notes",
    params(
        ("id" = String, Path, description = "Request id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
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
pub(super) async fn add_note(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let (agency, note): (Staff, NewNote) = signed_json(&state, &method, &uri, &headers, body)?;
        let id = parse_id(&id)?;
        edits::check_note(&note.text)
            .map_err(|_| ServerError::BadRequest("text must be 1 to 5000 characters".into()))?;
        let response = act(
            &state,
            &agency,
            id,
            &headers,
            "note",
            "POST /v1/agency/requests/{id}/notes",
            &|r, by| edits::add_note(r, by, &note.text, false).map(|_| ()),
        )?;
        tracing::info!("back office added a note");
        Ok(response)
    })
    .await
}

/// Assigns a request to a field officer, or unassigns it.
#[utoipa::path(
    post,
    path = "/v1/agency/requests/{id}/assignee",
    params(
        ("id" = String, Path, description = "Request id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
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
pub(super) async fn set_assignee(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let (agency, assignment): (Staff, Assignment) =
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
        let response = act(
            &state,
            &agency,
            id,
            &headers,
            "assign",
            "POST /v1/agency/requests/{id}/assignee",
            &|r, by| edits::assign(r, by, officer.as_deref()),
        )?;
        tracing::info!("back office assigned a request");
        Ok(response)
    })
    .await
}

/// Download an attachment of a request (its bytes as uploaded by the
/// device), whole or a `Range` of it.
#[utoipa::path(
    get,
    path = "/v1/agency/requests/{id}/attachments/{sha256}",
    params(
        ("id" = String, Path, description = "Request id (UUID)", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
        ("sha256" = String, Path, description = "The attachment's content address", pattern = r"^[0-9a-f]{64}$"),
        ("Range" = Option<String>, Header, description = "bytes=start-end")
    ),
    responses(
        (status = 200, description = "the bytes", content_type = "application/octet-stream"),
        (status = 206, description = "the range asked for"),
        (status = 400, description = "bad_request: the id is not a UUID, or the address not 64 lowercase hex digits", body = ApiError),
        (status = 404, description = "not_found: not an attachment of this request, not uploaded yet, or its reference does not grant the bytes (the account that added it never uploaded them)", body = ApiError),
        (status = 416, description = "the range is outside the attachment")
    )
)]
pub(super) async fn download_attachment(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((id, sha)): Path<(String, String)>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let id = parse_id(&id)?;
        let digest = parse_sha(&sha)?;
        agency.download(
            state.storage(),
            id,
            "GET /v1/agency/requests/{id}/attachments/{sha256}",
            |stored| serve(&state, id, stored, &digest, &headers),
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("32.73.01.1001"), "32.73.01.1001");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        for formula in ["=HYPERLINK(1)", "+1", "-1", "@SUM(A1)"] {
            assert!(csv_field(formula).starts_with('\''), "{formula}");
        }
        assert_eq!(csv_field("=a,b"), "\"'=a,b\"");
        assert_eq!(csv_field(""), "");
    }

    #[test]
    fn working_days_skip_weekends_in_wib() {
        // Monday 30 November 2026, 10:00 WIB.
        let monday = 1_796_007_600_000;
        assert_eq!(working_days_before(monday, 0), monday);
        // One working day before a Monday is the Friday.
        assert_eq!(working_days_before(monday, 1), 1_795_748_400_000);
        // Five: the Monday before.
        assert_eq!(working_days_before(monday, 5), 1_795_402_800_000);
        // From a Saturday, one working day back is the Friday.
        assert_eq!(working_days_before(1_795_834_800_000, 1), 1_795_748_400_000);
    }

    #[test]
    fn times_are_utc_iso_8601() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_796_375_580_783), "2026-12-04T09:13:00Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
    }
}
