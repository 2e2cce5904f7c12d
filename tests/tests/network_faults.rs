//! The network at its worst, at the HTTP level, across many seeds: answers
//! cut mid-body, answers delayed past the device's timeout, requests
//! duplicated, requests held back and delivered late (after newer ones),
//! and the server answering 500/503 for a while. Two parties — a resident
//! filing and an officer annotating — converge within a bounded number of
//! exchanges, and every change reaches the server exactly once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::templates;
use sambung_e2e::{Device, TestServer, splitmix};

/// The device's timeout for one exchange here; delayed answers come after.
const TIMEOUT: Duration = Duration::from_millis(800);
const REQUESTS: usize = 40;
/// Syncs a party may need at most, per seed.
const MAX_SYNCS: usize = 40;

/// A request as sent, to deliver later.
#[derive(Clone)]
struct Held {
    method: Method,
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

struct Chaos {
    upstream: String,
    http: reqwest::Client,
    rng: Mutex<u64>,
    /// Requests held back, delivered before a later one.
    held: Mutex<Vec<Held>>,
    /// The exchanges during which the server "answers" 500/503.
    failing: (u64, u64),
    seen: AtomicU64,
    /// Faults injected, by kind: cut, delayed, duplicated, held, failing.
    injected: [AtomicU64; 5],
}

impl Chaos {
    fn count(&self, kind: usize) {
        self.injected[kind].fetch_add(1, Ordering::Relaxed);
    }

    async fn send(&self, h: &Held) -> Result<reqwest::Response, reqwest::Error> {
        let mut req = self
            .http
            .request(
                reqwest::Method::from_bytes(h.method.as_str().as_bytes()).unwrap(),
                format!("{}{}", self.upstream, h.target),
            )
            .body(h.body.clone());
        for (k, v) in &h.headers {
            if !matches!(k.as_str(), "host" | "content-length" | "connection") {
                req = req.header(k.as_str(), v.as_bytes());
            }
        }
        req.send().await
    }
}

async fn relay(
    State(chaos): State<Arc<Chaos>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = chaos.seen.fetch_add(1, Ordering::Relaxed);
    let this = Held {
        method,
        target: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers,
        body,
    };
    let (from, to) = chaos.failing;
    if (from..to).contains(&n) {
        chaos.count(4);
        let status = if n % 2 == 0 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return status.into_response();
    }
    let roll = splitmix(&mut chaos.rng.lock().unwrap()) % 100;
    // A request held back earlier arrives now, after newer ones.
    let late = {
        let mut held = chaos.held.lock().unwrap();
        if roll.is_multiple_of(3) {
            held.pop()
        } else {
            None
        }
    };
    if let Some(late) = late {
        let _ = chaos.send(&late).await;
    }
    if roll < 10 {
        // Held back: the device hears nothing and times out.
        chaos.count(3);
        chaos.held.lock().unwrap().push(this);
        tokio::time::sleep(TIMEOUT + Duration::from_millis(100)).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    let Ok(resp) = chaos.send(&this).await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    if (10..20).contains(&roll) {
        // The same request again (a retransmission); the first answer goes back.
        chaos.count(2);
        let _ = chaos.send(&this).await;
    }
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").cloned();
    let bytes = resp.bytes().await.unwrap_or_default();
    if (20..30).contains(&roll) {
        // Delayed past the device's timeout.
        chaos.count(1);
        tokio::time::sleep(TIMEOUT + Duration::from_millis(100)).await;
    }
    let mut response = if (30..40).contains(&roll) && bytes.len() > 1 {
        // Cut mid-body: half the answer, then the connection breaks.
        chaos.count(0);
        let half = bytes.slice(..bytes.len() / 2);
        let stream = futures::stream::iter(vec![
            Ok::<_, std::io::Error>(half),
            Err(std::io::Error::other("the link dropped")),
        ]);
        let mut r = Response::new(Body::from_stream(stream));
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r
    } else {
        (StatusCode::from_u16(status).unwrap(), bytes).into_response()
    };
    if let Some(ct) = content_type {
        response.headers_mut().insert("content-type", ct);
    }
    response
}

async fn chaos_for(upstream: &str, seed: u64) -> (String, Arc<Chaos>) {
    let mut rng = seed;
    let from = splitmix(&mut rng) % 20;
    let chaos = Arc::new(Chaos {
        upstream: upstream.trim_end_matches('/').to_owned(),
        http: reqwest::Client::new(),
        rng: Mutex::new(splitmix(&mut rng)),
        held: Mutex::new(Vec::new()),
        failing: (from, from + 2 + splitmix(&mut rng) % 3),
        seen: AtomicU64::new(0),
        injected: Default::default(),
    });
    let app = axum::Router::new()
        .fallback(relay)
        .with_state(chaos.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), chaos)
}

/// Points `dev` at a chaotic link of its own.
async fn behind_chaos(dev: &mut Device, server: &TestServer, seed: u64) -> Arc<Chaos> {
    let (url, chaos) = chaos_for(&server.url(), seed).await;
    dev.config.timeout = TIMEOUT;
    // Small exchanges, so that a sync takes several and faults fall between.
    dev.config.budget_bytes = 2048;
    dev.client = sambung_core::sync::Client::new(&url, &dev.config).unwrap();
    chaos
}

/// Syncs until nothing is pending and a sync succeeds; the number of syncs.
async fn settle(dev: &Device, seed: u64, who: &str) -> usize {
    for n in 1..=MAX_SYNCS {
        if dev.sync().await.is_ok() && dev.store.pending_count().unwrap() == 0 {
            return n;
        }
    }
    panic!("seed {seed}: {who} did not settle in {MAX_SYNCS} syncs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_converge_through_cut_delayed_duplicated_and_late_messages_and_server_errors() {
    let mut injected = [0u64; 5];
    let seeds = 12u64;
    for seed in 1..=seeds {
        let server = TestServer::start_simulated().await;
        let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut resident = server
            .device(dirs[0].path(), Role::Resident, "warga-1", &[], None)
            .await;
        let mut officer = server
            .device(dirs[1].path(), Role::Officer, "petugas-1", &["32.73"], None)
            .await;
        let links = [
            behind_chaos(&mut resident, &server, seed).await,
            behind_chaos(&mut officer, &server, seed + 1000).await,
        ];
        let mut ids = Vec::new();
        for _ in 0..REQUESTS {
            let mut content = templates::example(Kind::Complaint);
            content.region = "32.73.01.1001".into();
            let id = resident.store.create(content).unwrap();
            // Submitted: the officer sees no draft of the resident's.
            resident.store.submit(&id).unwrap();
            ids.push(id);
        }
        let mut syncs = settle(&resident, seed, "resident").await;
        syncs += settle(&officer, seed, "officer").await;
        // Both write while the other's changes are in flight.
        for (i, id) in ids.iter().enumerate().step_by(3) {
            officer
                .store
                .add_note(id, &format!("cek lapangan {i}"), false)
                .unwrap();
            resident
                .store
                .add_note(id, &format!("tambahan {i}"), false)
                .unwrap();
        }
        let (a, b) = tokio::join!(
            settle(&resident, seed, "resident"),
            settle(&officer, seed, "officer")
        );
        syncs += a + b;
        // A last pull each, and both hold what the server holds.
        syncs += settle(&resident, seed, "resident").await;
        syncs += settle(&officer, seed, "officer").await;
        for (i, id) in ids.iter().enumerate() {
            let held = resident.store.get(id).unwrap();
            assert_eq!(held, officer.store.get(id).unwrap(), "seed {seed}");
            let notes = if i % 3 == 0 { 2 } else { 0 };
            assert_eq!(held.notes.len(), notes, "seed {seed}: each note once");
        }
        // Exactly once on the server: one document per request, each
        // note once, whatever was duplicated, replayed late or retried.
        let docs: std::collections::BTreeSet<[u8; 16]> = server
            .state
            .storage()
            .log_since(0, 1_000_000)
            .unwrap()
            .into_iter()
            .map(|e| e.doc)
            .collect();
        assert_eq!(docs.len(), REQUESTS, "seed {seed}");
        let exchanges: u64 = links.iter().map(|l| l.seen.load(Ordering::Relaxed)).sum();
        assert!(exchanges <= 300, "seed {seed}: {exchanges} exchanges");
        for l in &links {
            for (k, n) in l.injected.iter().enumerate() {
                injected[k] += n.load(Ordering::Relaxed);
            }
        }
        println!("seed {seed}: {syncs} syncs, {exchanges} exchanges");
    }
    println!("faults injected (cut, delayed, duplicated, late, 5xx): {injected:?}");
    // Every kind of fault was injected, many times over the seeds.
    assert!(injected.iter().all(|&n| n >= seeds), "{injected:?}");
}
