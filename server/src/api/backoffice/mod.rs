//! The back-office API: JSON over HTTPS for an agency's own systems — list,
//! read and act on requests ([`requests`]), read and check the audit trail
//! ([`audit`]), subscribe to events ([`webhooks`]), a person's export and
//! erasure ([`persons`]), the service catalog ([`services`]), enrolled keys
//! and their revocation ([`devices`]). Described by an OpenAPI 3 document generated
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

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use utoipa::OpenApi;

use crate::api::state::AppState;
use crate::error::ServerError;
use agency::{ApiError, MAX_ACTION_BODY};
use audit::{AuditEntryView, AuditPage, ChainReport, Exposure};
use devices::{DeviceList, DeviceView, OfficerList, OfficerView, RevokeDevice};
use persons::{Erasure, PersonExport, PersonQuery};
use requests::{
    Assignment, NewNote, Point, ReceiptView, Receipts, RequestCounts, RequestList, RequestSummary,
    RequestView, StatusChange,
};
use services::{ServiceList, ServiceSummary};
use webhooks::{NewWebhook, WebhookView};

mod agency;
pub mod audit;
pub mod devices;
pub mod persons;
pub mod requests;
pub mod services;
pub mod webhooks;

/// The back-office routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/openapi.json", get(openapi_json))
        .route("/v1/agency/requests", get(requests::list_requests))
        .route("/v1/agency/requests/counts", get(requests::count_requests))
        .route("/v1/agency/requests/export", get(requests::export_requests))
        .route("/v1/agency/requests/{id}", get(requests::get_request))
        .route(
            "/v1/agency/requests/{id}/receipts",
            get(requests::get_receipts),
        )
        .route(
            "/v1/agency/requests/{id}/status",
            post(requests::set_status),
        )
        .route("/v1/agency/requests/{id}/notes", post(requests::add_note))
        .route(
            "/v1/agency/requests/{id}/assignee",
            post(requests::set_assignee),
        )
        .route(
            "/v1/agency/requests/{id}/attachments/{sha256}",
            get(requests::download_attachment),
        )
        .route(
            "/v1/agency/webhooks",
            post(webhooks::add_webhook).get(webhooks::list_webhooks),
        )
        .route(
            "/v1/agency/webhooks/{id}",
            axum::routing::delete(webhooks::delete_webhook),
        )
        .route("/v1/agency/persons/export", post(persons::export_person))
        .route("/v1/agency/persons/erase", post(persons::erase_person))
        .route("/v1/agency/services", get(services::list_services))
        .route(
            "/v1/agency/services/{id}/{version}",
            get(services::get_service),
        )
        .route(
            "/v1/agency/catalog",
            post(services::publish_service).layer(DefaultBodyLimit::max(
                sambung_core::catalog::codes::MAX_CODE_LIST_BYTES,
            )),
        )
        .route(
            "/v1/agency/catalog/{id}/{version}/retire",
            post(services::retire_service),
        )
        .route("/v1/agency/devices", get(devices::list_devices))
        .route("/v1/agency/officers", get(devices::list_officers))
        .route(
            "/v1/agency/devices/{id}/revoke",
            post(devices::revoke_device),
        )
        .route("/v1/agency/audit", get(audit::audit_trail))
        .route("/v1/agency/audit/verify", get(audit::audit_verify))
        .route("/v1/agency/exposure", get(audit::exposure))
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
        requests::list_requests,
        requests::count_requests,
        requests::export_requests,
        requests::get_request,
        requests::get_receipts,
        requests::set_status,
        requests::add_note,
        requests::set_assignee,
        requests::download_attachment,
        services::list_services,
        services::get_service,
        services::publish_service,
        services::retire_service,
        devices::list_devices,
        devices::revoke_device,
        devices::list_officers,
        audit::audit_trail,
        audit::audit_verify,
        audit::exposure,
        persons::export_person,
        persons::erase_person,
        webhooks::add_webhook,
        webhooks::list_webhooks,
        webhooks::delete_webhook
    ),
    modifiers(&EveryCall),
    components(schemas(
        RequestSummary,
        Point,
        RequestList,
        RequestCounts,
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
        ServiceSummary,
        ServiceList,
        DeviceView,
        DeviceList,
        RevokeDevice,
        OfficerView,
        OfficerList,
        ApiError
    ))
)]
pub struct ApiDoc;

/// What the document says once for every call, rather than at each
/// (where it would drift): the `sambung-auth` signature every call
/// carries, and the refusals any call can meet — unsigned or badly signed
/// (401), a key that is not an agency's or is revoked (403), too many
/// calls (429), a body over its limit (413, calls with a body).
struct EveryCall;

impl utoipa::Modify for EveryCall {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
        use utoipa::openapi::{Ref, RefOr, ResponseBuilder};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "sambung-auth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "sambung-auth",
                "An Ed25519 signature by an enrolled agency key over the deployment, method, path, device, time, nonce, the body's SHA-256 and the signed headers (docs/backoffice.md, \"Signing a call\"): base64url, good for 5 minutes and once.",
            ))),
        );
        doc.security = Some(vec![SecurityRequirement::new(
            "sambung-auth",
            Vec::<String>::new(),
        )]);
        let refusal = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content_ref("application/json", Ref::from_schema_name("ApiError"))
                    .build(),
            )
        };
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                let has_body = op.request_body.is_some();
                let responses = &mut op.responses.responses;
                for (code, description) in [
                    (
                        "401",
                        "unauthenticated, bad_signature, stale_request, replayed or unknown_device: the sambung-auth signature is missing or does not hold",
                    ),
                    (
                        "403",
                        "forbidden (not an agency key, or the account's regions do not allow it) or revoked",
                    ),
                    (
                        "429",
                        "rate_limited: too many calls from this key or address; retry after the Retry-After header's seconds",
                    ),
                ] {
                    responses
                        .entry(code.to_owned())
                        .or_insert_with(|| refusal(description));
                }
                if has_body {
                    responses.entry("413".to_owned()).or_insert_with(|| {
                        refusal("too_large: the body is over this call's limit")
                    });
                }
            }
        }
    }
}

/// The back-office API's OpenAPI document, as `GET /v1/openapi.json`
/// serves it (`sambung admin openapi` prints it, so clients — the web
/// console's among them — are generated without a running server).
pub fn openapi_document() -> Result<String, ServerError> {
    ApiDoc::openapi()
        .to_pretty_json()
        .map_err(|_| ServerError::Config("the OpenAPI document failed".into()))
}

async fn openapi_json() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(_) => ServerError::Config("the OpenAPI document failed".into()).into_response(),
    }
}
