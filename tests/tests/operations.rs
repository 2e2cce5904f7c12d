//! Operations: Prometheus metrics at `/metrics` — on their own listener,
//! or on the public one only with a bearer token — request ids, and the
//! per-address rate limit keyed by the socket's peer unless it is a
//! trusted proxy.

use std::io::Write;
use std::process::{Command, Stdio};

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
    assert!(metric(&text, "sambung_sync_received_bytes_total") > 100.0);
    assert!(metric(&text, "sambung_sync_sent_bytes_total") > 10.0);
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

/// Runs `promtool` with `args`, `input` on its standard input; its exit
/// status and what it printed. Fails (not skips) without promtool:
/// `scripts/test` installs it.
fn promtool(args: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install it with `. scripts/lib/promtool.sh; \
                 need_promtool` (Debian's package prometheus), as scripts/test does"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

/// What Prometheus 2.x sends as `Accept` when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_real_traffic_pass_promtool_in_either_format() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    // Real traffic: a resident files two requests, an officer of the
    // region pulls them, and the back office asks for one that is not.
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    for _ in 0..2 {
        let id = resident
            .store
            .create(templates::example(Kind::Complaint))
            .unwrap();
        resident.store.submit(&id).unwrap();
    }
    resident.sync().await.unwrap();
    let officer = server
        .device(
            &home.path().join("o"),
            Role::Officer,
            "petugas-1",
            &["32.73"],
            None,
        )
        .await;
    officer.sync().await.unwrap();
    assert_eq!(officer.ids().len(), 2);
    let agency = Agency::enroll(&server, "dinas", &[]).await;
    let missing = format!(
        "/v1/agency/requests/{}",
        sambung_core::model::RequestId::random()
    );
    assert_eq!(agency.call("GET", &missing, None, None).await.status, 404);

    sambung_core::sync::install_crypto_provider();
    let http = reqwest::Client::new();
    let url = format!("http://{}/metrics", server.metrics_addr);
    let fetch = |accept: Option<&'static str>| {
        let mut r = http.get(&url);
        if let Some(a) = accept {
            r = r.header("accept", a);
        }
        async move {
            let answer = r.send().await.unwrap();
            assert_eq!(answer.status(), 200);
            assert_eq!(answer.headers()["vary"], "accept");
            let content_type = answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            (content_type, answer.text().await.unwrap())
        }
    };

    // No Accept (curl, promtool's pipe): the Prometheus text format, and
    // promtool's lint finds nothing (help on every family, counters end
    // in _total, base units last).
    let (content_type, text) = fetch(None).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(metric(&text, "sambung_sync_exchanges_total") >= 2.0);
    assert!(metric(&text, "sambung_sync_received_bytes_total") > 100.0);
    let (ok, said) = promtool(&["check", "metrics"], &text);
    assert!(ok, "promtool check metrics: {said}\n{text}");
    assert!(said.trim().is_empty(), "{said}");
    // The check fails what it should: a family without help.
    let (ok, said) = promtool(
        &["check", "metrics"],
        &(text.clone() + "# TYPE sambung_unhelped_total counter\nsambung_unhelped_total 1\n"),
    );
    assert!(!ok && said.contains("no help text"), "{said}");

    // What Prometheus asks for: OpenMetrics, under its own content type,
    // read by Prometheus's own OpenMetrics parser (promtool's backfill,
    // which wants a timestamp on every sample, so the test adds one).
    let (content_type, open) = fetch(Some(PROMETHEUS_ACCEPT)).await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(
        open.contains("# UNIT sambung_sync_received_bytes bytes\n"),
        "{open}"
    );
    assert!(open.contains("# UNIT sambung_http_request_duration_seconds seconds\n"));
    let stamped: String = open
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                format!("{l}\n")
            } else {
                format!("{l} 1700000000\n")
            }
        })
        .collect();
    let blocks = tempfile::tempdir().unwrap();
    let input = blocks.path().join("metrics.om");
    std::fs::write(&input, &stamped).unwrap();
    let (ok, said) = promtool(
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            input.to_str().unwrap(),
            blocks.path().join("out").to_str().unwrap(),
        ],
        "",
    );
    assert!(ok, "promtool's OpenMetrics parser: {said}\n{stamped}");
    // The same samples in both formats.
    let names = |exposition: &str| -> std::collections::BTreeSet<String> {
        exposition
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&text), names(&open));
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
