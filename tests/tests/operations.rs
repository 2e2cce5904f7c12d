//! Operations: Prometheus metrics at `/metrics` — on their own listener,
//! or on the public one only with a bearer token — request ids, and the
//! per-address rate limit keyed by the socket's peer unless it is a
//! trusted proxy.

use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::templates;
use sambung_e2e::{Agency, TestServer};
use sambung_server::api::Settings;
use sambung_server::limits::{Limits, Rate};

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
    // Not on the public listener by default.
    let public = reqwest::get(format!("{}/metrics", server.url()))
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let text = reqwest::get(format!("http://{}/metrics", server.metrics_addr))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_the_public_listener_need_the_token() {
    sambung_core::sync::install_crypto_provider();
    let token = "metrics-0123456789abcdef";
    let server = TestServer::start_configured(Settings {
        metrics_token: Some(token.into()),
        ..Settings::default()
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", server.url());
    let get = |auth: Option<String>| {
        let mut r = http.get(&url);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    assert_eq!(get(None).await.unwrap().status(), 401);
    for wrong in [
        "Bearer wrong".to_owned(),
        format!("Bearer {token}x"),
        format!("Basic {token}"),
        token.to_owned(),
    ] {
        assert_eq!(
            get(Some(wrong.clone())).await.unwrap().status(),
            401,
            "{wrong}"
        );
    }
    let ok = get(Some(format!("Bearer {token}"))).await.unwrap();
    assert_eq!(ok.status(), 200);
    let text = ok.text().await.unwrap();
    assert!(text.contains("sambung_http_requests_total"), "{text}");
    // The separate listener serves it without a token.
    let direct = reqwest::get(format!("http://{}/metrics", server.metrics_addr))
        .await
        .unwrap();
    assert_eq!(direct.status(), 200);
}

/// Settings whose per-address limit allows bursts of 2.
fn two_per_address(trusted_proxies: Vec<ipnet::IpNet>) -> Settings {
    Settings {
        limits: Limits {
            per_address: Rate {
                per_minute: 1,
                burst: 2,
            },
            ..Limits::default()
        },
        trusted_proxies,
        ..Settings::default()
    }
}

async fn health(http: &reqwest::Client, server: &TestServer, forwarded: &str) -> u16 {
    http.get(format!("{}/health", server.url()))
        .header("x-forwarded-for", forwarded)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_forwarded_for_does_not_choose_the_bucket() {
    sambung_core::sync::install_crypto_provider();
    let http = reqwest::Client::new();
    // The peer (127.0.0.1) is no trusted proxy: the header is ignored, so
    // three "different clients" share the peer's bucket of 2.
    let server = TestServer::start_configured(two_per_address(vec![])).await;
    assert_eq!(health(&http, &server, "203.0.113.1").await, 200);
    assert_eq!(health(&http, &server, "203.0.113.2").await, 200);
    assert_eq!(health(&http, &server, "203.0.113.3").await, 429);
    assert_eq!(
        health(&http, &server, "198.51.100.9, 203.0.113.4").await,
        429
    );

    // The same from a trusted proxy: each forwarded client has its own
    // bucket, and the nearest untrusted hop is the one that counts.
    let server =
        TestServer::start_configured(two_per_address(vec!["127.0.0.1/32".parse().unwrap()])).await;
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(health(&http, &server, client).await, 200, "{client}");
    }
    // A client that writes its own header behind the proxy: the proxy
    // appends the address it saw, and that one is limited.
    assert_eq!(health(&http, &server, "10.9.9.9, 203.0.113.1").await, 200);
    assert_eq!(health(&http, &server, "10.9.9.8, 203.0.113.1").await, 429);
}
