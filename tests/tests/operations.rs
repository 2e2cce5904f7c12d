//! Operations: Prometheus metrics at `/metrics` and request ids.

use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::templates;
use sambung_e2e::{Agency, TestServer};

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name_and_labels} missing from:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exchanges_bytes_errors_and_the_webhook_queue() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(home.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let id = resident
        .store
        .create(templates::example(Kind::Complaint))
        .unwrap();
    resident.store.submit(&id).unwrap();
    resident.sync().await.unwrap();
    resident.sync().await.unwrap();
    let agency = Agency::enroll(&server, "dinas", &[]).await;
    let missing = format!(
        "/v1/agency/requests/{}",
        sambung_core::model::RequestId::random()
    );
    assert_eq!(agency.call("GET", &missing, None, None).await.status, 404);

    sambung_core::sync::install_crypto_provider();
    let text = reqwest::get(format!("{}/metrics", server.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&text, "sambung_sync_exchanges_total"), 2.0);
    assert!(metric(&text, "sambung_sync_bytes_received_total") > 100.0);
    assert!(metric(&text, "sambung_sync_bytes_sent_total") > 10.0);
    assert_eq!(
        metric(
            &text,
            r#"sambung_http_requests_total{route="/v1/sync",status="200"}"#
        ),
        2.0
    );
    assert_eq!(
        metric(&text, r#"sambung_errors_total{code="not_found"}"#),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"sambung_http_request_duration_seconds_count{route="/v1/sync"}"#
        ),
        2.0
    );
    assert_eq!(metric(&text, "sambung_webhook_queue_depth"), 0.0);
    // Counts only: no account, device or request id.
    for private in ["warga-1", &id.to_string()] {
        assert!(!text.contains(private));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let get = |id: Option<&'static str>| {
        let mut r = http.get(format!("{}/health", server.url()));
        if let Some(id) = id {
            r = r.header("x-request-id", id);
        }
        r.send()
    };
    let given = get(Some("lb-7f3a_01")).await.unwrap();
    assert_eq!(given.headers()["x-request-id"], "lb-7f3a_01");
    // Not a plain token (or absent): a fresh one.
    for bad in [
        Some("has space"),
        Some("semi;colon"),
        Some("a-very-long-request-id-that-goes-on-and-on-beyond-sixty-four-characters"),
        None,
    ] {
        let r = get(bad).await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 16, "{bad:?}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
