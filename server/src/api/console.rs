//! The agency's web console (`console/`, docs/console.md), served under
//! `/console/` from files embedded in the binary at build time: nothing is
//! loaded from anywhere else, so it works on an intranet without internet.
//! The page is static; it signs every API call with the browser's own
//! enrolled key, so these routes need no authentication of their own. A
//! deployment may add its region's outline for the map
//! (`--console-boundaries`, served as `/console/boundaries.json`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
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

/// Largest region outline a deployment may give the map (GeoJSON).
pub const MAX_BOUNDARIES_BYTES: usize = 20 * 1024 * 1024;

/// Checks a region outline for the console's map: GeoJSON (RFC 7946) — a
/// FeatureCollection, a Feature or a geometry — of Polygons and
/// MultiPolygons whose positions are longitudes and latitudes; at most
/// [`MAX_BOUNDARIES_BYTES`]. What is wrong, in words, otherwise.
///
/// ```
/// use sambung_server::api::console::check_boundaries;
/// let square = br#"{"type":"Polygon","coordinates":[[[107.5,-7.0],[107.7,-7.0],[107.7,-6.8],[107.5,-7.0]]]}"#;
/// assert!(check_boundaries(square).is_ok());
/// assert!(check_boundaries(br#"{"type":"Point","coordinates":[107.5,-7.0]}"#).is_err());
/// ```
pub fn check_boundaries(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() > MAX_BOUNDARIES_BYTES {
        return Err(format!(
            "larger than {} MB",
            MAX_BOUNDARIES_BYTES / 1024 / 1024
        ));
    }
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let mut polygons = 0;
    geometry_or_features(&json, &mut polygons)?;
    if polygons == 0 {
        return Err("no Polygon or MultiPolygon in it".into());
    }
    Ok(())
}

fn geometry_or_features(v: &serde_json::Value, polygons: &mut usize) -> Result<(), String> {
    match v["type"].as_str() {
        Some("FeatureCollection") => v["features"]
            .as_array()
            .ok_or("a FeatureCollection without features")?
            .iter()
            .try_for_each(|f| geometry_or_features(f, polygons)),
        Some("Feature") => match &v["geometry"] {
            serde_json::Value::Null => Ok(()),
            g => geometry_or_features(g, polygons),
        },
        Some("Polygon") => {
            *polygons += 1;
            rings(&v["coordinates"])
        }
        Some("MultiPolygon") => {
            let parts = v["coordinates"]
                .as_array()
                .ok_or("a MultiPolygon without coordinates")?;
            *polygons += parts.len();
            parts.iter().try_for_each(rings)
        }
        Some(other) => Err(format!(
            "a {other}: only Polygons and MultiPolygons outline a region"
        )),
        None => Err("an object without a GeoJSON type".into()),
    }
}

fn rings(v: &serde_json::Value) -> Result<(), String> {
    let rings = v.as_array().ok_or("a polygon without rings")?;
    for ring in rings {
        let points = ring.as_array().ok_or("a ring that is not a list")?;
        if points.len() < 4 {
            return Err("a ring of fewer than 4 positions".into());
        }
        for p in points {
            let (lon, lat) = (p[0].as_f64(), p[1].as_f64());
            match (lon, lat) {
                (Some(lon), Some(lat))
                    if (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat) => {}
                _ => return Err(format!("a position that is not [longitude, latitude]: {p}")),
            }
        }
    }
    Ok(())
}

/// The console's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/console/boundaries.json", get(boundaries))
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

/// The deployment's region outline for the map; 404 when it gave none.
async fn boundaries(State(state): State<Arc<AppState>>) -> Response {
    match &state.console_boundaries {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, "application/geo+json"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes.as_ref().clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
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
    fn boundaries_must_be_polygons_of_real_positions() {
        let ring = "[[107.5,-7.0],[107.7,-7.0],[107.7,-6.8],[107.5,-7.0]]";
        let good = [
            format!(r#"{{"type":"Polygon","coordinates":[{ring}]}}"#),
            format!(r#"{{"type":"MultiPolygon","coordinates":[[{ring}],[{ring}]]}}"#),
            format!(
                r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{{"name":"Kota Bandung"}},"geometry":{{"type":"Polygon","coordinates":[{ring}]}}}}]}}"#
            ),
        ];
        for g in good {
            assert_eq!(check_boundaries(g.as_bytes()), Ok(()), "{g}");
        }
        let bad = [
            ("not json", "not JSON"),
            (r#"{"type":"Point","coordinates":[107.5,-7.0]}"#, "Point"),
            (
                r#"{"type":"FeatureCollection","features":[]}"#,
                "no Polygon",
            ),
            (
                r#"{"type":"Polygon","coordinates":[[[107.5,-7.0],[107.7,-7.0]]]}"#,
                "fewer than 4",
            ),
            (
                r#"{"type":"Polygon","coordinates":[[[-7.0,107.5],[-7.0,107.7],[-6.8,107.7],[-7.0,107.5]]]}"#,
                "longitude, latitude",
            ),
            (r#"{"features":[]}"#, "GeoJSON type"),
        ];
        for (b, why) in bad {
            let e = check_boundaries(b.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{b}: {e}");
        }
        let huge = vec![b' '; MAX_BOUNDARIES_BYTES + 1];
        assert!(check_boundaries(&huge).unwrap_err().contains("larger"));
    }

    #[test]
    fn the_page_loads_only_its_own_files_and_has_no_inline_script() {
        let page = std::str::from_utf8(FILES[0].2).unwrap();
        assert!(page.contains(r#"src="console.js""#) && page.contains(r#"href="console.css""#));
        assert!(!page.contains("<script>") && !page.contains("style=") && !page.contains("http"));
    }
}
