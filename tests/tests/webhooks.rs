//! Webhooks against a real receiver on loopback that fails at first:
//! deliveries are signed by the Standard Webhooks conventions, retried
//! with the same id until accepted, kept across a server restart, scoped
//! to what the subscribing account may see, and free of personal data.
//! The receiver is on loopback, an internal address: servers deliver to it
//! only where their settings allow 127.0.0.1 explicitly; without that,
//! the subscription or the delivery is refused and nothing reaches it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::templates;
use sambung_e2e::{Agency, TestDb, TestServer};
use sambung_server::api::Settings;
use serde_json::{Value, json};

/// Settings that let deliveries reach the loopback receiver.
fn loopback_allowed() -> Settings {
    Settings {
        webhook_allow: vec!["127.0.0.1/32".parse().unwrap()],
        ..Settings::default()
    }
}

/// What the receiver saw: (webhook-id, timestamp, signature, body, answered).
type Seen = Arc<Mutex<Vec<(String, String, String, String, u16)>>>;

struct Receiver {
    url: String,
    seen: Seen,
    /// Requests still to fail with 500; `u32::MAX`: fail all.
    failures_left: Arc<Mutex<u32>>,
}

async fn receiver(fail_first: u32) -> Receiver {
    let seen: Seen = Arc::default();
    let failures_left = Arc::new(Mutex::new(fail_first));
    let (s, f) = (seen.clone(), failures_left.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (s, f) = (s.clone(), f.clone());
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let status = {
                    let mut left = f.lock().unwrap();
                    if *left > 0 {
                        if *left != u32::MAX {
                            *left -= 1;
                        }
                        500
                    } else {
                        200
                    }
                };
                s.lock().unwrap().push((
                    h("webhook-id"),
                    h("webhook-timestamp"),
                    h("webhook-signature"),
                    body,
                    status,
                ));
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url,
        seen,
        failures_left,
    }
}

impl Receiver {
    fn accepted(&self) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.4 == 200)
            .map(|r| serde_json::from_str(&r.3).unwrap())
            .collect()
    }

    /// Waits (bounded) until `n` deliveries were accepted.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("only {:?} of {n} deliveries arrived", self.accepted());
    }
}

fn verify(secret: &str, id: &str, ts: &str, sig: &str, body: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let expected = base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(
        &key,
        format!("{id}.{ts}.{body}").as_bytes(),
    ));
    sig.split(' ').any(|s| s == format!("v1,{expected}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_retried_durable_and_scoped() {
    let db = TestDb::fresh().await;
    let server = TestServer::start_on_with(&db, loopback_allowed()).await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let agency = Agency::enroll(&server, "dinas-kota", &["32.73"]).await;
    let other = Agency::enroll(&server, "dinas-lain", &["33.01"]).await;
    let hooks = receiver(2).await;
    let others = receiver(0).await;

    let all = json!([
        "request.submitted",
        "request.status_changed",
        "request.note_added",
        "attachment.received"
    ]);
    let made = agency
        .call(
            "POST",
            "/v1/agency/webhooks",
            Some(json!({"url": hooks.url, "events": all})),
            None,
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.json);
    let secret = made.json["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let a = other
        .call(
            "POST",
            "/v1/agency/webhooks",
            Some(json!({"url": others.url, "events": all})),
            None,
        )
        .await;
    assert_eq!(a.status, 201);

    // A submission, a status change and a note.
    let mut c = templates::example(Kind::Complaint);
    c.region = RegionCode::from("32.73.01.1001");
    let id = resident.store.create(c).unwrap();
    resident.store.submit(&id).unwrap();
    resident.sync().await.unwrap();
    let path = format!("/v1/agency/requests/{id}");
    let a = agency
        .call(
            "POST",
            &format!("{path}/status"),
            Some(json!({"to": "received"})),
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    let a = agency
        .call(
            "POST",
            &format!("{path}/notes"),
            Some(json!({"text": "diterima"})),
            None,
        )
        .await;
    assert_eq!(a.status, 200);

    let mut got = hooks.wait_for(3).await;
    // The subscription says how its deliveries stand: the receiver failed
    // the first two attempts, then took every event (the worker records a
    // delivery just after the receiver's answer: polled a moment).
    let mut sub = serde_json::Value::Null;
    for _ in 0..100 {
        let listed = agency.call("GET", "/v1/agency/webhooks", None, None).await;
        sub = listed.json[0].clone();
        if sub["delivered"].as_u64().unwrap() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(sub["delivered"].as_u64().unwrap() >= 3, "{sub}");
    assert_eq!(sub["failed"], 0, "{sub}");
    assert!(sub["last_error"].as_str().unwrap().contains("500"), "{sub}");
    // At least once, in no promised order (a retried one comes later).
    got.sort_by_key(|e| e["timestamp"].as_i64());
    let mut types: Vec<&str> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "request.note_added",
            "request.status_changed",
            "request.submitted"
        ]
    );
    let change = got
        .iter()
        .find(|e| e["type"] == "request.status_changed")
        .unwrap();
    assert_eq!(change["data"]["from"], "submitted");
    assert_eq!(change["data"]["status"], "received");
    assert!(
        got.iter()
            .all(|e| e["data"]["id"] == id.to_string().as_str())
    );
    {
        let seen = hooks.seen.lock().unwrap();
        // Two attempts failed; each was retried under its own id until
        // accepted.
        let failed: Vec<&String> = seen.iter().filter(|r| r.4 == 500).map(|r| &r.0).collect();
        assert_eq!(failed.len(), 2);
        for id in failed {
            assert!(id.starts_with("msg_"));
            let last = seen.iter().rev().find(|r| &r.0 == id).unwrap();
            assert_eq!(last.4, 200, "{id} retried until accepted");
        }
        for (wid, ts, sig, body, _) in seen.iter() {
            assert!(verify(&secret, wid, ts, sig, body), "signature of {wid}");
            // No personal data: the example's name, NIK and phone.
            for marker in ["Siti Aminah", "3273014108900007", "+62 812-3456-7890"] {
                assert!(!body.contains(marker), "{body}");
            }
        }
    }
    // Another region's agency heard nothing of it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(others.seen.lock().unwrap().is_empty());

    // The receiver goes down; an event is queued; the server restarts.
    *hooks.failures_left.lock().unwrap() = u32::MAX;
    resident.store.add_note(&id, "ada tambahan", false).unwrap();
    resident.sync().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await;
    let server = TestServer::start_on_with(&db, loopback_allowed()).await;
    assert!(server.state.storage().queue_depth().unwrap() >= 1);
    *hooks.failures_left.lock().unwrap() = 0;
    let got = hooks.wait_for(4).await;
    assert_eq!(
        got.iter()
            .filter(|e| e["type"] == "request.note_added")
            .count(),
        2,
        "the note queued before the restart arrived after it"
    );
    for _ in 0..200 {
        if server.state.storage().queue_depth().unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(server.state.storage().queue_depth().unwrap(), 0);

    // Listing shows no secret; removing stops deliveries.
    let agency = Agency::enroll(&server, "dinas-kota-2", &["32.73"]).await;
    let list = agency.call("GET", "/v1/agency/webhooks", None, None).await;
    assert_eq!(
        list.json,
        json!([]),
        "another account's hooks are not listed"
    );
    let a = agency
        .call(
            "DELETE",
            &format!("/v1/agency/webhooks/{}", made.json["id"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (404, "not_found"),
        "only its own account removes it"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subscriptions_are_refused_and_removal_works() {
    let server = TestServer::start().await;
    let agency = Agency::enroll(&server, "dinas-kota", &["32.73"]).await;
    for body in [
        json!({"url": "http://agency.example.go.id/hook", "events": ["request.submitted"]}),
        json!({"url": "not a url", "events": ["request.submitted"]}),
        json!({"url": "https://u:p@agency.example.go.id/", "events": ["request.submitted"]}),
        json!({"url": "https://agency.example.go.id/hook", "events": []}),
        json!({"url": "https://agency.example.go.id/hook", "events": ["request.exploded"]}),
        json!({"url": "https://agency.example.go.id/hook"}),
        // Internal addresses, unless the deployment allows them.
        json!({"url": "http://127.0.0.1:9/hook", "events": ["request.submitted"]}),
        json!({"url": "https://169.254.169.254/latest", "events": ["request.submitted"]}),
        json!({"url": "https://[::ffff:10.0.0.1]/hook", "events": ["request.submitted"]}),
    ] {
        let a = agency
            .call("POST", "/v1/agency/webhooks", Some(body.clone()), None)
            .await;
        assert_eq!((a.status, a.code()), (400, "bad_request"), "{body}");
    }
    let made = agency
        .call(
            "POST",
            "/v1/agency/webhooks",
            Some(json!({"url": "https://agency.example.go.id/hook", "events": ["request.submitted"]})),
            None,
        )
        .await;
    assert_eq!(made.status, 201);
    let list = agency.call("GET", "/v1/agency/webhooks", None, None).await;
    assert_eq!(list.json.as_array().unwrap().len(), 1);
    assert!(list.json[0].get("secret").is_none());
    let hook = format!("/v1/agency/webhooks/{}", made.json["id"].as_str().unwrap());
    assert_eq!(agency.call("DELETE", &hook, None, None).await.status, 204);
    let a = agency.call("DELETE", &hook, None, None).await;
    assert_eq!((a.status, a.code()), (404, "not_found"));
    assert_eq!(
        agency
            .call("GET", "/v1/agency/webhooks", None, None)
            .await
            .json,
        json!([])
    );
}

/// Submits a complaint in region 32.73 from a new resident of `server`.
async fn submit_one(server: &TestServer, home: &std::path::Path) {
    let resident = server
        .device(home, Role::Resident, "warga-1", &[], None)
        .await;
    let mut c = templates::example(Kind::Complaint);
    c.region = RegionCode::from("32.73.01.1001");
    let id = resident.store.create(c).unwrap();
    resident.store.submit(&id).unwrap();
    resident.sync().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_addresses_are_refused_unless_the_deployment_allows_them() {
    let hooks = receiver(0).await;
    // "http://127.0.0.1:PORT/hook" by its name instead.
    let by_name = hooks.url.replace("127.0.0.1", "localhost");
    let events = json!(["request.submitted"]);

    // Without an allow list: a literal loopback address is refused when
    // subscribing, with a clear message.
    let db = TestDb::fresh().await;
    let server = TestServer::start_on(&db).await;
    let agency = Agency::enroll(&server, "dinas-kota", &["32.73"]).await;
    let a = agency
        .call(
            "POST",
            "/v1/agency/webhooks",
            Some(json!({"url": hooks.url, "events": events})),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "bad_request"));
    assert!(
        a.json["message"]
            .as_str()
            .unwrap()
            .contains("internal address"),
        "{:?}",
        a.json
    );
    // An address over 2,000 characters is refused (the document states
    // the limit).
    let long = format!("https://hooks.example.go.id/{}", "a".repeat(2000));
    let a = agency
        .call(
            "POST",
            "/v1/agency/webhooks",
            Some(json!({"url": long, "events": events})),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "bad_request"));
    assert!(
        a.json["message"].as_str().unwrap().contains("2000"),
        "{:?}",
        a.json
    );
    // A name is accepted, and judged when delivering: `localhost`
    // resolves to loopback, so the delivery is blocked before it connects.
    let a = agency
        .call(
            "POST",
            "/v1/agency/webhooks",
            Some(json!({"url": by_name, "events": events})),
            None,
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.json);
    let home = tempfile::tempdir().unwrap();
    submit_one(&server, home.path()).await;
    let mut errors = Vec::new();
    for _ in 0..400 {
        errors = db
            .query_text("SELECT last_error FROM deliveries WHERE attempts > 0")
            .await;
        if !errors.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!errors.is_empty(), "no attempt was made");
    assert!(
        errors.iter().all(|e| e.contains("blocked")),
        "{errors:?} on {}",
        db.backend()
    );
    // Retries (the test schedule is fast) are blocked as well.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        hooks.seen.lock().unwrap().is_empty(),
        "the receiver was reached"
    );
    assert!(server.state.storage().queue_depth().unwrap() >= 1);
    server.stop().await;

    // With 127.0.0.1 allowed: the name and the address both deliver.
    let db = TestDb::fresh().await;
    let server = TestServer::start_on_with(&db, loopback_allowed()).await;
    let agency = Agency::enroll(&server, "dinas-kota", &["32.73"]).await;
    for url in [&by_name, &hooks.url] {
        let a = agency
            .call(
                "POST",
                "/v1/agency/webhooks",
                Some(json!({"url": url, "events": events})),
                None,
            )
            .await;
        assert_eq!(a.status, 201, "{url}: {:?}", a.json);
    }
    let home = tempfile::tempdir().unwrap();
    submit_one(&server, home.path()).await;
    let got = hooks.wait_for(2).await;
    assert!(got.iter().all(|e| e["type"] == "request.submitted"));
    server.stop().await;
}
