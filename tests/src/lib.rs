//! Test harness: a real sync server on an ephemeral loopback port, device
//! stores enrolled with it, and a faulty link between them (a loopback
//! proxy that drops requests or responses and duplicates requests at random,
//! from a seed).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sambung_core::crypto::DataKey;
use sambung_core::lifecycle::Role;
use sambung_core::store::{Identity, Secret, Store};
use sambung_core::sync::{Client, SyncConfig};
use sambung_server::accounts::Account;
use sambung_server::http::AppState;
use sambung_server::storage::{SqliteStorage, Storage};

/// A server running on loopback.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state (storage, keys), for checks from the test.
    pub state: Arc<AppState>,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    /// Starts a server with an empty SQLite database.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(dir.path()).unwrap());
        let state = AppState::new(storage).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        tokio::spawn(async move {
            sambung_server::http::serve(listener, st, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            addr,
            state,
            _dir: dir,
            shutdown: Some(tx),
        }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An enrollment code for a new account.
    pub fn code(&self, role: Role, user: &str, regions: &[&str], nik: Option<&str>) -> String {
        let account = Account {
            id: user.into(),
            role,
            regions: regions.iter().map(|r| r.to_string()).collect(),
            nik_hash: nik.map(|n| sambung_server::exchange::nik_hash(self.state.nik_key(), n)),
        };
        sambung_server::enroll::create(self.state.storage(), &account, now(), 3600).unwrap()
    }

    /// Number of entries in the server's change log.
    pub fn log_len(&self) -> usize {
        self.state.storage().log_since(0, 1_000_000).unwrap().len()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Unix seconds.
pub fn now() -> i64 {
    sambung_core::Timestamp::now().as_millis() / 1000
}

/// A device: its store and a client for a server URL.
pub struct Device {
    /// The store.
    pub store: Store,
    /// The client.
    pub client: Client,
    /// Sync settings.
    pub config: SyncConfig,
    /// The account.
    pub user: String,
}

impl Device {
    /// Creates a store in `dir` and enrolls it through `url` with `code`.
    pub async fn enroll(dir: &Path, url: &str, code: &str, role: Role, user: &str) -> Device {
        let mut store = Store::init(
            dir,
            &Secret::Key(DataKey::generate().unwrap()),
            Identity {
                user: format!("local-{user}"),
                role,
            },
        )
        .unwrap();
        let config = SyncConfig::default();
        let client = Client::new(url, &config).unwrap();
        client.enroll(&mut store, code).await.unwrap();
        Device {
            store,
            client,
            config,
            user: user.into(),
        }
    }

    /// One sync; errors returned (a faulty link makes them).
    pub async fn sync(&self) -> Result<sambung_core::sync::SyncSummary, sambung_core::Error> {
        self.client.sync(&self.store, &self.config, |_| {}).await
    }

    /// Syncs until a sync succeeds (bounded).
    pub async fn sync_until_ok(&self, attempts: usize) -> sambung_core::sync::SyncSummary {
        for _ in 0..attempts {
            if let Ok(s) = self.sync().await {
                return s;
            }
        }
        panic!("no successful sync in {attempts} attempts");
    }
}

/// A deterministic generator for fault decisions (xorshift).
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// From a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// What the faulty link did, for the test's report.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Requests forwarded.
    pub forwarded: AtomicU64,
    /// Requests dropped before the server.
    pub dropped_requests: AtomicU64,
    /// Responses dropped after the server applied the request.
    pub dropped_responses: AtomicU64,
    /// Requests sent to the server twice.
    pub duplicated: AtomicU64,
}

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    rng: Mutex<Rng>,
    /// Percent chance of each fault.
    fault_percent: u64,
    stats: Arc<LinkStats>,
}

/// A loopback proxy in front of `upstream` that, at random from `seed`,
/// drops a request, drops a response, or sends a request twice.
pub async fn faulty_link(
    upstream: &str,
    seed: u64,
    fault_percent: u64,
) -> (String, Arc<LinkStats>) {
    sambung_core::sync::install_crypto_provider();
    let stats = Arc::new(LinkStats::default());
    let proxy = Arc::new(Proxy {
        upstream: upstream.to_owned(),
        http: reqwest::Client::new(),
        rng: Mutex::new(Rng::new(seed)),
        fault_percent,
        stats: stats.clone(),
    });
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), stats)
}

async fn forward(
    State(p): State<Arc<Proxy>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = {
        let mut rng = p.rng.lock().unwrap();
        if rng.below(100) < p.fault_percent {
            rng.below(3) + 1
        } else {
            0
        }
    };
    if fault == 1 {
        p.stats.dropped_requests.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_GATEWAY.into_response();
    }
    let send = || {
        let mut req = p
            .http
            .post(format!("{}{}", p.upstream, uri.path()))
            .body(body.clone());
        for (k, v) in headers.iter() {
            if k.as_str().starts_with("sambung-") || k == "content-type" {
                req = req.header(k, v);
            }
        }
        req.send()
    };
    if fault == 3 {
        // The same request twice (a retransmission): the second is refused
        // as a replay, and that is what the device sees.
        p.stats.duplicated.fetch_add(1, Ordering::Relaxed);
        let _ = send().await;
    }
    let resp = match send().await {
        Ok(r) => r,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    p.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    if fault == 2 {
        p.stats.dropped_responses.fetch_add(1, Ordering::Relaxed);
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let bytes = resp.bytes().await.unwrap_or_default();
    (status, bytes).into_response()
}
