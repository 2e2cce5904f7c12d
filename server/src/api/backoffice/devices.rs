//! Enrolled keys as the agency's data protection officer manages them:
//! list them (phones, agency systems, console browsers) and revoke one —
//! what `sambung admin devices` / `admin revoke` do on the server's host,
//! for an office that has only the console (for an agency account without
//! region limits) — and the field officers a request can be assigned to.
//! Every call is in the audit trail.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::agency::{ApiError, authenticate, query, signed_json};
use crate::agency::Staff;
use crate::api::state::{AppState, blocking};
use crate::error::ServerError;
use crate::storage::{DeviceSummary, Revocation};
use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::Role;

/// Whose keys to list.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceParams {
    /// Only this account's.
    #[param(min_length = 1, max_length = 128)]
    pub account: Option<String>,
}

/// One enrolled key.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct DeviceView {
    /// Device id (32 hex digits): the first 16 bytes of its public key's
    /// SHA-256.
    pub id: String,
    /// Its account.
    pub account: String,
    /// The account's role: `resident`, `officer` or `agency`.
    pub role: String,
    /// Unix seconds of enrollment.
    pub enrolled_at: i64,
    /// Unix seconds of revocation; absent while it is trusted.
    pub revoked_at: Option<i64>,
}

impl From<DeviceSummary> for DeviceView {
    fn from(d: DeviceSummary) -> Self {
        DeviceView {
            id: d.id,
            account: d.account,
            role: d.role.as_str().to_owned(),
            enrolled_at: d.enrolled_at,
            revoked_at: d.revoked_at,
        }
    }
}

/// The keys.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct DeviceList {
    /// In the order they enrolled.
    pub devices: Vec<DeviceView>,
}

/// How to revoke.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RevokeDevice {
    /// The device deletes its store at its next contact (a lost phone).
    #[serde(default)]
    pub wipe: bool,
    /// With `wipe`: it first pushes what it holds that the server lacks.
    #[serde(default)]
    pub push_first: bool,
}

/// List the enrolled keys.
#[utoipa::path(
    get,
    path = "/v1/agency/devices",
    params(DeviceParams),
    responses(
        (status = 200, body = DeviceList),
        (status = 400, description = "bad_filter", body = ApiError),
        (status = 403, description = "forbidden: an agency account with region limits", body = ApiError)
    )
)]
pub(super) async fn list_devices(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<DeviceParams>, QueryRejection>,
) -> Result<Json<DeviceList>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        agency.require_whole_agency()?;
        let params = query(params)?;
        if params
            .account
            .as_deref()
            .is_some_and(|a| a.is_empty() || a.chars().count() > 128)
        {
            return Err(ServerError::BadFilter("account is an account id".into()));
        }
        agency.log(state.storage(), "devices", None, "GET /v1/agency/devices")?;
        let devices = state
            .storage()
            .devices(params.account.as_deref(), None)?
            .into_iter()
            .map(DeviceView::from)
            .collect();
        Ok(Json(DeviceList { devices }))
    })
    .await
}

/// Revoke a key (a lost phone, a departed clerk's browser): the server
/// refuses it from its next call on. The key making this call cannot
/// revoke itself (sign out instead). Revoking a revoked key changes
/// nothing.
#[utoipa::path(
    post,
    path = "/v1/agency/devices/{id}/revoke",
    params(("id" = String, Path, description = "Device id (32 hex digits)", pattern = r"^[0-9a-fA-F]{32}$")),
    request_body = RevokeDevice,
    responses(
        (status = 200, body = DeviceView),
        (status = 400, description = "bad_request: not a device id, or the calling key itself", body = ApiError),
        (status = 403, description = "forbidden: an agency account with region limits", body = ApiError),
        (status = 404, description = "not_found: no such device", body = ApiError)
    )
)]
pub(super) async fn revoke_device(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let (agency, how): (Staff, RevokeDevice) =
            signed_json(&state, &method, &uri, &headers, body)?;
        agency.require_whole_agency()?;
        let device: [u8; 16] = hex::decode(&id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ServerError::BadRequest("a device id is 32 hex digits".into()))?;
        if device == agency.device {
            return Err(ServerError::BadRequest(
                "a key cannot revoke itself: sign out instead".into(),
            ));
        }
        let already = state
            .storage()
            .device(device)?
            .ok_or(ServerError::NotFound)?;
        if already.revoked.is_none() {
            let now = sambung_core::Timestamp::now().as_millis() / 1000;
            let decision = Revocation {
                wipe: how.wipe,
                push_first: how.wipe && how.push_first,
            };
            if !state.storage().revoke_device(device, decision, now)? {
                return Err(ServerError::NotFound);
            }
            // Recorded after it took effect: a failure to record must not
            // leave a lost phone trusted.
            let what = format!(
                "POST /v1/agency/devices/{{id}}/revoke: {}{}",
                hex::encode(device),
                if how.wipe { " (wipe)" } else { "" }
            );
            agency.log(state.storage(), "revoke", None, &what)?;
            tracing::info!("back office revoked a device");
        }
        let view = state
            .storage()
            .devices(Some(&already.account.id), None)?
            .into_iter()
            .find(|d| d.id == hex::encode(device))
            .map(DeviceView::from)
            .ok_or(ServerError::NotFound)?;
        Ok((StatusCode::OK, Json(view)).into_response())
    })
    .await
}

/// Which officers to list.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OfficerParams {
    /// Only those who work in this region (a request's region code).
    #[param(
        pattern = r"^(1[1-9]|21|3[1-6]|5[1-3]|6[1-5]|7[1-6]|8[12]|9[1-7])(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$"
    )]
    pub region: Option<String>,
}

/// A field officer one may assign.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct OfficerView {
    /// The account id (what an assignment names).
    pub id: String,
    /// The region codes they work in.
    pub regions: Vec<String>,
}

/// The officers.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct OfficerList {
    /// By account id.
    pub officers: Vec<OfficerView>,
}

/// The field officers with a trusted enrolled key (who can receive an
/// assignment at their next sync) working in `region`, among those whose
/// regions meet the calling account's: whom a request can be assigned to.
#[utoipa::path(
    get,
    path = "/v1/agency/officers",
    params(OfficerParams),
    responses(
        (status = 200, body = OfficerList),
        (status = 400, description = "bad_filter: region is not a region code", body = ApiError)
    )
)]
pub(super) async fn list_officers(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<OfficerParams>, QueryRejection>,
) -> Result<Json<OfficerList>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let params = query(params)?;
        let region = params.region.map(RegionCode::from);
        if region.as_ref().is_some_and(|r| !r.check().is_empty()) {
            return Err(ServerError::BadFilter(
                "region is a region code such as 32.73".into(),
            ));
        }
        agency.log(state.storage(), "officers", None, "GET /v1/agency/officers")?;
        let mut officers = std::collections::BTreeMap::new();
        // Officers' keys only, read by the database: the residents' many
        // phones are not walked on every request page.
        for d in state.storage().devices(None, Some(Role::Officer))? {
            if d.revoked_at.is_some() || officers.contains_key(&d.account) {
                continue;
            }
            let id: [u8; 16] = match hex::decode(&d.id).ok().and_then(|b| b.try_into().ok()) {
                Some(id) => id,
                None => continue,
            };
            let Some(device) = state.storage().device(id)? else {
                continue;
            };
            let account = device.account;
            let here = region.as_ref().is_none_or(|r| account.works_in(r.as_str()));
            // An account of some regions sees the officers whose regions
            // meet them (inside one, or holding one).
            let meets = |a: &str, b: &str| {
                let (a, b) = (RegionCode::from(a), RegionCode::from(b));
                a.is_within(&b) || b.is_within(&a)
            };
            let mine = agency.account.regions.is_empty()
                || account
                    .regions
                    .iter()
                    .any(|r| agency.account.regions.iter().any(|g| meets(r, g)));
            if here && mine {
                officers.insert(
                    account.id.clone(),
                    OfficerView {
                        id: account.id,
                        regions: account.regions,
                    },
                );
            }
        }
        Ok(Json(OfficerList {
            officers: officers.into_values().collect(),
        }))
    })
    .await
}
