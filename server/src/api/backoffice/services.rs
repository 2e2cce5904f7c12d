//! The service catalog as the agency's systems see it (issue 15): which
//! services this server knows, where they are offered, and their service
//! standard; publishing and retiring versions (`crate::catalog`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sambung_core::catalog::Definition;
use sambung_core::identifiers::RegionCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::agency::{ApiError, authenticate, query, signed_json};
use crate::agency::Staff;
use crate::api::state::{AppState, blocking};
use crate::catalog::Publisher;
use crate::error::ServerError;

/// Which services to list.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ServiceParams {
    /// Only those offered in this region (a Kemendagri code, e.g.
    /// `33.19.05.2011`).
    #[param(
        pattern = r"^(1[1-9]|21|3[1-6]|5[1-3]|6[1-5]|7[1-6]|8[12]|9[1-7])(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$"
    )]
    pub region: Option<String>,
}

/// A service, as its newest version defines it.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone)]
pub struct ServiceSummary {
    /// Service id.
    pub id: String,
    /// Newest version.
    pub version: u32,
    /// Name in Indonesian.
    pub name_id: String,
    /// Name in English.
    pub name_en: String,
    /// `permit`, `population`, `tax`, `complaint`, `letter` or `other`.
    pub category: String,
    /// `desa`, `kecamatan`, `kabupaten`, `provinsi` or `nasional`.
    pub level: String,
    /// Region code prefixes where it is offered; empty: everywhere.
    pub regions: Vec<String>,
    /// Working days to a decision (the service standard).
    pub days: u32,
    /// Fee in rupiah.
    pub fee_idr: u64,
    /// The legal basis.
    pub legal_basis: Vec<String>,
    /// How many fields the form has (top level).
    pub fields: usize,
}

/// The services.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone)]
pub struct ServiceList {
    /// By id.
    pub services: Vec<ServiceSummary>,
}

impl From<&Definition> for ServiceSummary {
    fn from(d: &Definition) -> Self {
        ServiceSummary {
            id: d.id.clone(),
            version: d.version,
            name_id: d.name.id.clone(),
            name_en: d.name.en.clone(),
            category: d.category.as_str().to_owned(),
            level: d.level.as_str().to_owned(),
            regions: d.regions.clone(),
            days: d.standard.days,
            fee_idr: d.standard.fee_idr,
            legal_basis: d.standard.legal_basis.clone(),
            fields: d.fields.len(),
        }
    }
}

#[utoipa::path(
    get,
    path = "/v1/agency/services",
    params(ServiceParams),
    responses(
        (status = 200, body = ServiceList),
        (status = 400, description = "bad_filter: region is not a region code", body = ApiError),
        (status = 401, description = "unauthenticated, bad_signature or replayed", body = ApiError)
    )
)]
pub(super) async fn list_services(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<ServiceParams>, QueryRejection>,
) -> Result<Json<ServiceList>, ServerError> {
    blocking(move || {
        authenticate(&state, &method, &uri, &headers, b"")?;
        let params = query(params)?;
        if let Some(r) = &params.region
            && !RegionCode::from(r.as_str()).check().is_empty()
        {
            return Err(ServerError::BadFilter("region is a region code".into()));
        }
        let loaded = state.catalogs().current(state.storage())?;
        let services = loaded
            .catalog
            .services(params.region.as_deref())
            .into_iter()
            .map(ServiceSummary::from)
            .collect();
        Ok(Json(ServiceList { services }))
    })
    .await
}

/// A version now published.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone)]
pub struct PublishedService {
    /// Service id.
    pub id: String,
    /// Version.
    pub version: u32,
    /// SHA-256 of the definition as published (what requests record).
    pub hash: String,
}

/// Publish a service definition or a code list (docs/catalog.md): the body
/// is the definition's JSON, kept byte for byte, or a code list's, stored
/// as the parts of its changes from the version before. For an agency account without
/// region limits: every device of the deployment takes the catalog. Refused with every problem named
/// unless it passes the lint, is newer than every version of its service
/// and compatible with the one before. Devices receive it at their next
/// sync. Recorded in the audit trail.
#[utoipa::path(
    post,
    path = "/v1/agency/catalog",
    request_body(content = Object, content_type = "application/json", description = "A service definition (catalog/service.schema.json) or a code list (catalog/code_list.schema.json: a top-level code_list)"),
    responses(
        (status = 201, body = PublishedService),
        (status = 400, description = "bad_request: the definition is refused; every problem is named", body = ApiError),
        (status = 401, description = "unauthenticated, bad_signature or replayed", body = ApiError),
        (status = 403, description = "forbidden: not an agency key, or an agency account with region limits (the catalog is the whole deployment's)", body = ApiError),
        (status = 409, description = "forbidden: this version is published already", body = ApiError),
        (status = 413, description = "too_large: a definition over 256 KB, a code list over 16 MB", body = ApiError)
    )
)]
pub(super) async fn publish_service(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let body = body.map_err(|_| ServerError::TooLarge)?;
        let agency = authenticate(&state, &method, &uri, &headers, &body)?;
        agency.require_whole_agency()?;
        let text = std::str::from_utf8(&body)
            .map_err(|_| ServerError::BadRequest("the definition is not UTF-8 JSON".into()))?;
        let published = crate::catalog::publish(
            state.storage(),
            state.catalogs(),
            Publisher {
                record: agency.record("catalog", None, ""),
                via: "POST /v1/agency/catalog",
            },
            text,
        )?;
        let view = PublishedService {
            id: published.service,
            version: published.version,
            hash: published.hash,
        };
        Ok((StatusCode::CREATED, Json(view)).into_response())
    })
    .await
}

/// A retirement.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retirement {
    /// The last day (`YYYY-MM-DD`, in Indonesia) on which requests created
    /// on this version are still accepted.
    #[schema(format = Date, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub accept_until: String,
}

/// Retire a version of a service: requests created on it after
/// `accept_until` are refused; those created before are still accepted.
/// Devices learn it at their next sync. Recorded in the audit trail.
#[utoipa::path(
    post,
    path = "/v1/agency/catalog/{id}/{version}/retire",
    params(
        ("id" = String, Path, description = "Service id", pattern = r"^[a-z][a-z0-9_]{0,63}$"),
        ("version" = u32, Path, description = "Version", minimum = 1)
    ),
    request_body = Retirement,
    responses(
        (status = 204, description = "retired"),
        (status = 400, description = "bad_request: not a date, or not a version", body = ApiError),
        (status = 401, description = "unauthenticated, bad_signature or replayed", body = ApiError),
        (status = 403, description = "forbidden: an agency account with region limits", body = ApiError),
        (status = 404, description = "not_found: no such version", body = ApiError)
    )
)]
pub(super) async fn retire_service(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((id, version)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let (agency, retirement): (Staff, Retirement) =
            signed_json(&state, &method, &uri, &headers, body)?;
        agency.require_whole_agency()?;
        let (id, version) = crate::catalog::parse_key(&format!("{id}@{version}"))
            .ok_or_else(|| ServerError::BadRequest("not a service id and version".into()))?;
        let until = sambung_core::CivilDate::parse(&retirement.accept_until)
            .ok_or_else(|| ServerError::BadRequest("accept_until is a date, YYYY-MM-DD".into()))?;
        crate::catalog::retire(
            state.storage(),
            state.catalogs(),
            Publisher {
                record: agency.record("catalog", None, ""),
                via: "POST /v1/agency/catalog/{id}/{version}/retire",
            },
            &id,
            version,
            until,
        )?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// One version of a service's definition, as published (docs/catalog.md):
/// its fields' labels in Indonesian and English, options, rules and
/// service standard — what a client needs to show a request of it.
#[utoipa::path(
    get,
    path = "/v1/agency/services/{id}/{version}",
    params(
        ("id" = String, Path, description = "Service id", pattern = r"^[a-z][a-z0-9_]{0,63}$"),
        ("version" = u32, Path, description = "Version", minimum = 1)
    ),
    responses(
        (status = 200, description = "The definition (catalog/service.schema.json)", body = Object),
        (status = 400, description = "bad_request: not a service id and version", body = ApiError),
        (status = 404, description = "not_found: no such version", body = ApiError)
    )
)]
pub(super) async fn get_service(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<Definition>, ServerError> {
    blocking(move || {
        authenticate(&state, &method, &uri, &headers, b"")?;
        let (id, version) = crate::catalog::parse_key(&format!("{id}@{version}"))
            .ok_or_else(|| ServerError::BadRequest("not a service id and version".into()))?;
        let loaded = state.catalogs().current(state.storage())?;
        let form = loaded
            .catalog
            .get(&id, version)
            .ok_or(ServerError::NotFound)?;
        Ok(Json(form.definition().clone()))
    })
    .await
}
