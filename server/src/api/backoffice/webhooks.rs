//! The agency's webhook subscriptions: subscribe a URL to events about
//! its requests (the signing secret is shown once), list them, remove
//! one. Delivery: [`crate::webhooks`].

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::agency::{ApiError, authenticate, signed_json};
use crate::agency::Staff;
use crate::api::state::{AppState, blocking, now};
use crate::error::ServerError;
use crate::webhooks;

/// An event one may subscribe to (`webhooks::EVENTS`).
#[derive(ToSchema)]
#[allow(dead_code)] // the document's enumeration of `webhooks::EVENTS`
pub enum WebhookEvent {
    /// A request was submitted.
    #[schema(rename = "request.submitted")]
    RequestSubmitted,
    /// A request's status changed.
    #[schema(rename = "request.status_changed")]
    RequestStatusChanged,
    /// A note was added.
    #[schema(rename = "request.note_added")]
    RequestNoteAdded,
    /// An attachment's bytes arrived.
    #[schema(rename = "attachment.received")]
    AttachmentReceived,
}

/// A subscription to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries go: HTTPS (plain HTTP only to the server's own
    /// host; no credentials, query or fragment; an internal address only
    /// where the deployment's `webhook_allow` permits it), at most 2000
    /// characters. The pattern states only the scheme: the rest is the
    /// address policy's.
    #[schema(
        pattern = r"^[\u0000-\u0020]*[hH][tT][tT][pP][sS]?:[^?#]*$",
        max_length = 2000
    )]
    pub url: String,
    /// Any of `request.submitted`, `request.status_changed`,
    /// `request.note_added`, `attachment.received`.
    #[schema(min_items = 1, inline, value_type = Vec<WebhookEvent>)]
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
    /// Deliveries the receiver took (answered 2xx).
    #[serde(default)]
    pub delivered: u64,
    /// Deliveries waiting for their first or next attempt.
    #[serde(default)]
    pub pending: u64,
    /// Deliveries given up after every retry.
    #[serde(default)]
    pub failed: u64,
    /// The error of the newest delivery that met one (retried or failed),
    /// e.g. the receiver's status or a refused address.
    #[serde(default)]
    pub last_error: Option<String>,
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
pub(super) async fn add_webhook(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let (agency, new): (Staff, NewWebhook) =
            signed_json(&state, &method, &uri, &headers, body)?;
        webhooks::check_url(&new.url, state.webhook_policy())?;
        if new.events.is_empty()
            || new
                .events
                .iter()
                .any(|e| !webhooks::EVENTS.contains(&e.as_str()))
        {
            return Err(ServerError::BadRequest(format!(
                "events are one or more of {}",
                webhooks::EVENTS.join(", ")
            )));
        }
        let (secret_text, secret) = webhooks::new_secret()?;
        let sub = webhooks::Subscription {
            id: webhooks::new_id(),
            account: agency.account.clone(),
            url: new.url.clone(),
            events: new.events.clone(),
        };
        // Kept only sealed under the secrets file's master key.
        let sealed = state.secrets().seal_webhook_secret(&sub.id, &secret)?;
        agency.subscribe(
            state.storage(),
            &sub,
            &sealed,
            now(),
            "POST /v1/agency/webhooks",
        )?;
        let view = WebhookView {
            id: sub.id,
            url: sub.url,
            events: sub.events,
            secret: Some(secret_text),
            delivered: 0,
            pending: 0,
            failed: 0,
            last_error: None,
        };
        Ok((axum::http::StatusCode::CREATED, Json(view)).into_response())
    })
    .await
}

/// The agency account's subscriptions (without secrets), each with how
/// its deliveries stand.
#[utoipa::path(
    get,
    path = "/v1/agency/webhooks",
    responses((status = 200, body = [WebhookView]))
)]
pub(super) async fn list_webhooks(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Vec<WebhookView>>, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        let subs = state.storage().webhooks(Some(&agency.account.id))?;
        let mut views = Vec::with_capacity(subs.len());
        for s in subs {
            let stats = state.storage().delivery_stats(&s.id)?;
            views.push(WebhookView {
                id: s.id,
                url: s.url,
                events: s.events,
                secret: None,
                delivered: stats.delivered,
                pending: stats.pending,
                failed: stats.failed,
                last_error: stats.last_error,
            });
        }
        Ok(Json(views))
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
pub(super) async fn delete_webhook(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ServerError> {
    blocking(move || {
        let agency = authenticate(&state, &method, &uri, &headers, b"")?;
        agency.unsubscribe(state.storage(), &id, "DELETE /v1/agency/webhooks/{id}")?;
        Ok(axum::http::StatusCode::NO_CONTENT.into_response())
    })
    .await
}
