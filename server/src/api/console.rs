//! The agency's web console (`console/`, docs/console.md), served under
//! `/console/` from files embedded in the binary at build time: nothing is
//! loaded from anywhere else, so it works on an intranet without internet.
//! The page is static; it signs every API call with the browser's own
//! enrolled key, so these routes need no authentication of their own.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::api::state::AppState;

/// The console's files: (path under `/console/`, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "",
        "text/html; charset=utf-8",
        include_bytes!("../../../console/dist/index.html"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../console/dist/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../console/dist/console.css"),
    ),
    (
        "indonesia.json",
        "application/json",
        include_bytes!("../../../console/dist/indonesia.json"),
    ),
];

/// Each file's entity tag (its SHA-256), so a browser revalidates with
/// `If-None-Match` and gets `304` instead of the bytes again.
fn etags() -> &'static [String] {
    static TAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, _, bytes)| {
                format!(
                    "\"{}\"",
                    hex::encode(&sambung_core::crypto::sha256(bytes)[..16])
                )
            })
            .collect()
    })
}

/// Only the console's own files, no inline script or style, no framing:
/// an injected string can neither run nor load anything, and the page
/// cannot be put in another site's frame to trick a click.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob:; connect-src 'self'; form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

/// The console's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route(
            "/console/",
            get(|headers: HeaderMap| async move { file("", &headers) }),
        )
        .route(
            "/console/{name}",
            get(
                |Path(name): Path<String>, headers: HeaderMap| async move { file(&name, &headers) },
            ),
        )
}

fn file(name: &str, request: &HeaderMap) -> Response {
    let Some(index) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (_, kind, bytes) = FILES[index];
    let etag = &etags()[index];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        bytes.into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A new server version brings new files: always ask (the tag makes
    // asking cheap).
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_served_with_the_policy_and_nothing_else_is() {
        for (name, kind, bytes) in FILES {
            let r = file(name, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::OK, "{name}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], *kind);
            assert_eq!(
                r.headers()[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");
            assert!(
                bytes.len() > 2,
                "{name} is empty: run scripts/build-console"
            );
            // Asked again with its tag: 304, no bytes; with another: 200.
            let mut again = HeaderMap::new();
            again.insert(header::IF_NONE_MATCH, r.headers()[header::ETAG].clone());
            assert_eq!(file(name, &again).status(), StatusCode::NOT_MODIFIED);
            again.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
            assert_eq!(file(name, &again).status(), StatusCode::OK);
        }
        for name in ["../Cargo.toml", "index.htm", "console.js.map", "x"] {
            let r = file(name, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{name}");
        }
    }

    #[test]
    fn the_page_loads_only_its_own_files_and_has_no_inline_script() {
        let page = std::str::from_utf8(FILES[0].2).unwrap();
        assert!(page.contains(r#"src="console.js""#) && page.contains(r#"href="console.css""#));
        assert!(!page.contains("<script>") && !page.contains("style=") && !page.contains("http"));
    }
}
