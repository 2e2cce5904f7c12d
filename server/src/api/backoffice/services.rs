//! The service catalog as the agency's systems see it (issue 15): which
//! services this server knows, where they are offered, and their service
//! standard. The catalog is the built-in one until publishing lands.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use sambung_core::catalog::{self, Catalog, Definition};
use sambung_core::identifiers::RegionCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::agency::{ApiError, authenticate};
use crate::api::state::{AppState, blocking};
use crate::error::ServerError;

/// Which services to list.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ServiceParams {
    /// Only those offered in this region (a Kemendagri code, e.g.
    /// `33.19.05.2011`).
    #[param(pattern = r"^[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$")]
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

fn known() -> Result<&'static Catalog, ServerError> {
    static CATALOG: std::sync::OnceLock<Result<Catalog, String>> = std::sync::OnceLock::new();
    CATALOG
        .get_or_init(|| catalog::builtin().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| ServerError::Config(format!("the built-in catalog: {e}")))
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
        let Query(params) =
            params.map_err(|e| ServerError::BadFilter(e.body_text().replace('\n', " ")))?;
        if let Some(r) = &params.region
            && !RegionCode::from(r.as_str()).check().is_empty()
        {
            return Err(ServerError::BadFilter("region is a region code".into()));
        }
        let services = known()?
            .services(params.region.as_deref())
            .into_iter()
            .map(ServiceSummary::from)
            .collect();
        Ok(Json(ServiceList { services }))
    })
    .await
}
