//! Test harness: a real sync server on an ephemeral loopback port, device
//! stores enrolled with it, and a faulty link between them (a loopback
//! proxy that drops requests or responses and duplicates requests at random,
//! from a seed).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use sambung_core::crypto::DataKey;
use sambung_core::lifecycle::Role;
use sambung_core::store::{Identity, Secret, Store};
use sambung_core::sync::{Client, SyncConfig};
pub use sambung_linksim::{Link, Profile, Rng};
use sambung_server::accounts::Account;
use sambung_server::http::AppState;
use sambung_server::storage::{SqliteStorage, Storage};

/// A server running on loopback.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state (storage, keys), for checks from the test.
    pub state: Arc<AppState>,
    _dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with an empty SQLite database.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut server = TestServer::start_in(dir.path()).await;
        server._dir = Some(dir);
        server
    }

    /// Starts a server on the database in `dir` (kept when it stops).
    pub async fn start_in(dir: &Path) -> TestServer {
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(dir).unwrap());
        let state = AppState::new(storage).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let task = tokio::spawn(async move {
            sambung_server::http::serve(listener, st, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            addr,
            state,
            _dir: None,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and waits until it has, so its database
    /// files are quiet (to copy them as a backup, or restore one).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
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

    /// A new account with a code, and a device enrolled with it directly.
    pub async fn device(
        &self,
        dir: &Path,
        role: Role,
        user: &str,
        regions: &[&str],
        nik: Option<&str>,
    ) -> Device {
        let code = self.code(role, user, regions, nik);
        Device::enroll(dir, &self.url(), &code, role, user).await
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

/// Copies every file of a folder (a database with its WAL) into another,
/// replacing what is there: a backup, or its restore.
pub fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(to).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::remove_file(path).unwrap();
        }
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// A device: its store and a client for a server URL.
pub struct Device {
    /// The store.
    pub store: Store,
    /// The key that opens it (tests reopen stores restored from backup).
    pub key: [u8; 32],
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
        let key = *DataKey::generate().unwrap().expose();
        let mut store = Store::init(
            dir,
            &Secret::Key(DataKey::from_bytes(key)),
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
            key,
            client,
            config,
            user: user.into(),
        }
    }

    /// Opens an enrolled device's store in `dir` again (say, after its files
    /// were restored from a backup), with a client for `url`.
    pub fn open(dir: &Path, url: &str, key: [u8; 32], user: &str) -> Device {
        let store = Store::open(dir, &Secret::Key(DataKey::from_bytes(key))).unwrap();
        let config = SyncConfig::default();
        let client = Client::new(url, &config).unwrap();
        Device {
            store,
            key,
            client,
            config,
            user: user.into(),
        }
    }

    /// The ids of the requests the device holds.
    pub fn ids(&self) -> std::collections::BTreeSet<sambung_core::model::RequestId> {
        self.store
            .list(&Default::default())
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect()
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

/// A link that loses requests and responses and duplicates requests at
/// random from `seed`, with no bandwidth limit: the fault half of the link
/// simulator, for tests that need many faults quickly.
pub async fn faulty_link(upstream: &str, seed: u64) -> (String, Arc<Link>) {
    let profile = Profile {
        name: "faulty",
        rtt_s: 0.05,
        loss_percent: 12.0,
        duplicate_percent: 10.0,
        ..Profile::lossless()
    };
    sambung_linksim::start(upstream, profile, seed).await
}
