//! The audit trail for the agency's data protection officer: read it by
//! request, account or key, check its whole chain, and assess what an
//! account or a lost key could read and did (breach support). For agency
//! accounts without region limits only.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use sambung_core::model::RequestId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::agency::{ApiError, DEFAULT_LIMIT, MAX_LIMIT, authenticate, query};
use crate::agency::Subject;
use crate::api::state::{AppState, blocking};
use crate::audit::{AuditEntry, AuditFilter, ChainCheck};
use crate::error::ServerError;

/// Which audit entries to read.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this request's (UUID).
    #[param(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub request: Option<String>,
    /// Only this account's.
    #[param(min_length = 1, max_length = 128)]
    pub account: Option<String>,
    /// Only this enrolled key's (32 hex digits).
    #[param(pattern = r"^[0-9a-fA-F]{32}$")]
    pub device: Option<String>,
    /// Entries after this position (`next_after` of the previous page).
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub after: Option<u64>,
    /// Entries per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
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
    /// `read`, `write`, `list`, `count`, `export`, `status`, `note`,
    /// `assign`, `download`, `receipts`, `exposure`, `audit`, `devices`,
    /// `revoke`, `catalog`, `account`, … (docs/backoffice.md).
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

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
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
pub(super) async fn audit_trail(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        agency.require_whole_agency()?;
        let p = query(params)?;
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
        if p.account
            .as_deref()
            .is_some_and(|a| a.is_empty() || a.chars().count() > 128)
        {
            return Err(ServerError::BadFilter("account is an account id".into()));
        }
        // Positions are signed 64-bit in storage: one beyond is no
        // position this server gave.
        if p.after.is_some_and(|a| i64::try_from(a).is_err()) {
            return Err(ServerError::BadFilter(
                "after is a position this server gave (next_after)".into(),
            ));
        }
        let mut entries = agency.audit_trail(
            state.storage(),
            &filter,
            p.after.unwrap_or(0),
            limit + 1,
            "GET /v1/agency/audit",
        )?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_after = if more {
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(Json(AuditPage {
            entries: entries.into_iter().map(AuditEntryView::from).collect(),
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
pub(super) async fn audit_verify(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<ChainReport>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let report = match agency.verify_audit(state.storage(), "GET /v1/agency/audit/verify")? {
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
    #[param(min_length = 1, max_length = 128)]
    pub account: Option<String>,
    /// An enrolled key (32 hex digits), e.g. of a lost phone.
    #[param(pattern = r"^[0-9a-fA-F]{32}$")]
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
pub(super) async fn exposure(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<ExposureParams>, QueryRejection>,
) -> Result<Json<Exposure>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        agency.require_whole_agency()?;
        let p = query(params)?;
        let subject = match (&p.account, &p.device) {
            (Some(a), None) if a.is_empty() || a.chars().count() > 128 => {
                return Err(ServerError::BadFilter("account is an account id".into()));
            }
            (Some(a), None) => Subject::Account(a.clone()),
            (None, Some(d)) => Subject::Device(parse_device(d)?),
            _ => {
                return Err(ServerError::BadFilter(
                    "give exactly one of account, device".into(),
                ));
            }
        };
        let facts = agency.exposure(state.storage(), &subject, "GET /v1/agency/exposure")?;
        let ids = |ids: Vec<_>| -> Vec<String> {
            ids.into_iter()
                .map(|id| RequestId::from_bytes(id).to_string())
                .collect()
        };
        let (subject, could_read, did_read) =
            (facts.subject, ids(facts.could_read), ids(facts.did_read));
        Ok(Json(Exposure {
            account: subject.id,
            role: subject.role.as_str().to_owned(),
            could_read,
            did_read,
        }))
    })
    .await
}
