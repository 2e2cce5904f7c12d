//! A signing proxy for the back-office API's conformance run
//! (`scripts/test-api-spec`): enrolls an agency key at the server with an
//! enrollment code, then forwards every call it receives on loopback to
//! the server, replacing a `sambung-auth: signed-by-the-proxy` header
//! with a real signature — so a tool that knows nothing of Ed25519 signatures
//! (schemathesis) can exercise every operation of `/v1/openapi.json` as a
//! signed agency system would; a call without the header, or with another
//! value, goes as it came, as the tool's checks of bad credentials need.
//!
//! `cargo run -p sambung-e2e --example api_proxy -- SERVER_URL CODE`;
//! prints `listening on http://127.0.0.1:PORT` once ready.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sambung_e2e::Agency;

struct Proxy {
    agency: Agency,
    server: String,
    http: reqwest::Client,
}

/// The `sambung-auth` value the proxy replaces with a signature.
const PLACEHOLDER: &str = "signed-by-the-proxy";

/// Headers passed on as they came (the signature covers the method, the
/// target and the body; these do not change what is signed).
const PASSED: &[&str] = &["content-type", "if-match", "accept"];
/// Passed on when the proxy does not sign: the tool's own, bad, value.
const AUTH: &str = "sambung-auth";
/// Headers of the answer passed back.
const RETURNED: &[&str] = &[
    "content-type",
    "etag",
    "retry-after",
    "content-range",
    "allow",
];

async fn forward(
    State(p): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = uri
        .path_and_query()
        .map_or(uri.path().to_owned(), |pq| pq.as_str().to_owned());
    // Only the placeholder is replaced: any other value (the tool's tests
    // of bad credentials) goes to the server as it came.
    let sign = headers
        .get("sambung-auth")
        .is_some_and(|v| v.as_bytes() == PLACEHOLDER.as_bytes());
    let signed = sign.then(|| p.agency.sign(method.as_str(), &target, &body));
    let mut req = p.http.request(method, format!("{}{target}", p.server));
    for (name, value) in signed.iter().flat_map(|s| s.pairs()) {
        req = req.header(name, value);
    }
    if !sign && let Some(v) = headers.get(AUTH) {
        req = req.header(AUTH, v.as_bytes());
    }
    for name in PASSED {
        if let Some(v) = headers.get(*name) {
            req = req.header(*name, v.as_bytes());
        }
    }
    let answer = match req.body(body.to_vec()).send().await {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut out = Response::builder().status(answer.status().as_u16());
    for name in RETURNED {
        if let Some(v) = answer.headers().get(*name) {
            out = out.header(*name, v.as_bytes());
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    out.body(Body::from(bytes))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(server), Some(code)) = (args.next(), args.next()) else {
        return Err("usage: api_proxy SERVER_URL ENROLLMENT_CODE".into());
    };
    let agency = Agency::enroll_at(&server, &code).await?;
    let proxy = Arc::new(Proxy {
        agency,
        server,
        http: reqwest::Client::new(),
    });
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{addr}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
