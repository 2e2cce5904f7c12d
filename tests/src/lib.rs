//! Test harness: a real sync server on an ephemeral loopback port, device
//! stores enrolled with it, and a faulty link between them (a loopback
//! proxy that drops requests or responses and duplicates requests at random,
//! from a seed).

pub mod corpus;
pub mod regions;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use sambung_core::crypto::DataKey;
use sambung_core::lifecycle::Role;
use sambung_core::protocol::{self, DeviceKey, DocPush, SYNC_PATH, SyncRequest, SyncResponse};
use sambung_core::store::{Identity, Secret, Store};
use sambung_core::sync::{Client, SyncConfig};
pub use sambung_linksim::{Link, Profile, Rng};
use sambung_server::accounts::Account;
use sambung_server::api::{AppState, Settings};
use sambung_server::secrets::Secrets;
use sambung_server::storage::{SqliteStorage, Storage};

/// The environment variable that runs the suite on PostgreSQL: an
/// administrator's URL of a server where each test creates (and drops) a
/// database of its own, e.g.
/// `postgres://sambung:sambung@127.0.0.1:5432/postgres?sslmode=disable`.
/// Unset: SQLite files in temporary folders.
pub const POSTGRES_ENV: &str = "SAMBUNG_TEST_POSTGRES";

/// The secrets file of the PostgreSQL test database `name` (made on first
/// use), or — for a backup copy — the file of the database it copies.
fn postgres_secrets(name: &str, copy_of: Option<&str>) -> std::path::PathBuf {
    type Files = std::sync::Mutex<(
        std::collections::HashMap<String, std::path::PathBuf>,
        Vec<tempfile::TempDir>,
    )>;
    static FILES: std::sync::OnceLock<Files> = std::sync::OnceLock::new();
    let mut guard = FILES.get_or_init(Default::default).lock().unwrap();
    let (paths, dirs) = &mut *guard;
    if let Some(path) = paths.get(name) {
        return path.clone();
    }
    let path = match copy_of.and_then(|o| paths.get(o)) {
        Some(original) => original.clone(),
        None => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("secrets");
            Secrets::generate().unwrap().write_new(&path).unwrap();
            dirs.push(dir);
            path
        }
    };
    paths.insert(name.to_owned(), path.clone());
    path
}

/// A server's database under test: a SQLite folder, or a PostgreSQL
/// database of its own. Dropped with the test (the folder deleted, the
/// database dropped).
pub enum TestDb {
    /// A folder with `server.db`.
    Sqlite(tempfile::TempDir),
    /// A database on the server of [`POSTGRES_ENV`].
    Postgres {
        /// The administrator's URL.
        admin: String,
        /// The database's name.
        name: String,
    },
}

async fn admin_client(admin: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|_| panic!("{POSTGRES_ENV} does not connect"));
    tokio::spawn(connection);
    client
}

/// Runs SQL statements on the PostgreSQL database of `admin` (a URL, e.g.
/// [`TestDb::url`]), retrying while the database is still in use by a
/// server's closing connections.
pub async fn admin_sql(admin: &str, statements: &[String]) {
    let client = admin_client(admin).await;
    for sql in statements {
        let mut tries = 0;
        loop {
            match client.batch_execute(sql).await {
                Ok(()) => break,
                Err(e) if tries < 50 => {
                    let _ = e;
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{sql}: {e}"),
            }
        }
    }
}

fn database_url(admin: &str, name: &str) -> String {
    // The administrator's URL with another database name.
    let (base, query) = admin.split_once('?').unwrap_or((admin, ""));
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

/// Where the read-replica tests run (`scripts/lib/postgres.sh`,
/// `need_standby`): "PRIMARY_ADMIN_URL STANDBY_ADMIN_URL".
pub const REPLICATION_ENV: &str = "SAMBUNG_TEST_REPLICATION";

/// A PostgreSQL primary's database and the URL of the same database on
/// its streaming standby ([`REPLICATION_ENV`]).
pub struct Replication {
    /// The database, on the primary.
    pub db: TestDb,
    /// The same database, read on the standby.
    pub standby_url: String,
}

impl Replication {
    /// A fresh database on the primary. Panics with what to do when the
    /// standby is not set up: these tests have no SQLite form.
    pub async fn fresh() -> Replication {
        let env = std::env::var(REPLICATION_ENV).unwrap_or_default();
        let Some((primary, standby)) = env.split_once(' ') else {
            panic!(
                "{REPLICATION_ENV} is not set: run scripts/test, which starts a PostgreSQL \
                 standby (scripts/lib/postgres.sh, need_standby)"
            );
        };
        // A run that stopped with the standby paused must not leave it so.
        admin_sql(standby, &["SELECT pg_wal_replay_resume()".to_owned()]).await;
        let name = format!("sambung_test_{}", hex_id());
        admin_sql(primary, &[format!("CREATE DATABASE {name}")]).await;
        Replication {
            standby_url: database_url(standby, &name),
            db: TestDb::Postgres {
                admin: primary.to_owned(),
                name,
            },
        }
    }

    /// Runs SQL on the standby as the administrator (pausing its replay).
    pub async fn standby_sql(&self, sql: &str) -> Vec<String> {
        let client = admin_client(&self.standby_url).await;
        client
            .simple_query(sql)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect()
    }
}

impl TestDb {
    /// An empty database on the backend under test.
    pub async fn fresh() -> TestDb {
        match std::env::var(POSTGRES_ENV) {
            Ok(admin) if !admin.is_empty() => {
                let name = format!("sambung_test_{}", hex_id());
                admin_sql(&admin, &[format!("CREATE DATABASE {name}")]).await;
                TestDb::Postgres { admin, name }
            }
            _ => TestDb::Sqlite(tempfile::tempdir().unwrap()),
        }
    }

    /// The backend's name, for messages.
    pub fn backend(&self) -> &'static str {
        match self {
            TestDb::Sqlite(_) => "sqlite",
            TestDb::Postgres { .. } => "postgres",
        }
    }

    /// The `--database` URL (PostgreSQL) or `None` (SQLite in [`Self::dir`]).
    pub fn url(&self) -> Option<String> {
        match self {
            TestDb::Sqlite(_) => None,
            TestDb::Postgres { admin, name } => Some(database_url(admin, name)),
        }
    }

    /// The data folder (SQLite's file; unused on PostgreSQL).
    pub fn dir(&self) -> &Path {
        match self {
            TestDb::Sqlite(d) => d.path(),
            TestDb::Postgres { .. } => Path::new("."),
        }
    }

    /// Opens the storage (one more server process on the same data).
    pub fn open(&self) -> Arc<dyn Storage> {
        match self {
            TestDb::Sqlite(d) => Arc::new(SqliteStorage::open(d.path()).unwrap()),
            TestDb::Postgres { .. } => {
                sambung_server::storage::open(Path::new("."), self.url().as_deref()).unwrap()
            }
        }
    }

    /// The secrets of a server on `storage` of this database: on SQLite the
    /// default file in the data folder (created at the first start), on
    /// PostgreSQL one file per database, given to every server on it (as a
    /// deployment gives one file to all its servers; two databases are two
    /// deployments, with two audiences).
    pub fn secrets(&self, storage: &dyn Storage) -> Secrets {
        let path = match self {
            TestDb::Sqlite(d) => d.path().join(sambung_server::secrets::DEFAULT_FILE),
            TestDb::Postgres { name, .. } => postgres_secrets(name, None),
        };
        Secrets::open(&path, storage).unwrap()
    }

    /// The first column of every row `sql` returns, as text (SQLite's
    /// own text of the value; PostgreSQL's `::text`, so cast in the SQL).
    pub async fn query_text(&self, sql: &str) -> Vec<String> {
        match self {
            TestDb::Sqlite(d) => {
                let c = rusqlite::Connection::open(d.path().join("server.db")).unwrap();
                let mut st = c.prepare(sql).unwrap();
                st.query_map([], |r| {
                    Ok(match r.get_ref(0)? {
                        rusqlite::types::ValueRef::Null => String::new(),
                        rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                        rusqlite::types::ValueRef::Real(f) => f.to_string(),
                        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                        rusqlite::types::ValueRef::Blob(b) => hex::encode(b),
                    })
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
            }
            TestDb::Postgres { .. } => admin_client(&self.url().unwrap())
                .await
                .query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
                .collect(),
        }
    }

    /// Everything the database holds, as someone with a dump of it would
    /// have it: SQLite's files byte for byte (database, WAL), or every row
    /// of every PostgreSQL table as text (`bytea` as `\x` and hex).
    pub async fn dump(&self) -> Vec<u8> {
        match self {
            TestDb::Sqlite(d) => {
                let mut out = Vec::new();
                for f in std::fs::read_dir(d.path()).unwrap() {
                    let f = f.unwrap();
                    let name = f.file_name().to_string_lossy().into_owned();
                    if name.starts_with("server.db") {
                        out.extend(std::fs::read(f.path()).unwrap());
                    }
                }
                out
            }
            TestDb::Postgres { .. } => {
                let tables = self
                    .query_text("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                    .await;
                assert!(tables.len() > 5, "{tables:?}");
                let mut out = Vec::new();
                for t in tables {
                    for row in self.query_text(&format!("SELECT t::text FROM {t} t")).await {
                        out.extend(row.into_bytes());
                        out.push(b'\n');
                    }
                }
                out
            }
        }
    }

    /// Runs SQL on the database directly, as someone with access to the
    /// database itself would (to play tampering); the database's error as
    /// text when it refuses.
    pub async fn execute_raw(&self, sql: &str) -> Result<(), String> {
        match self {
            TestDb::Sqlite(d) => rusqlite::Connection::open(d.path().join("server.db"))
                .unwrap()
                .execute_batch(sql)
                .map_err(|e| e.to_string()),
            TestDb::Postgres { .. } => admin_client(&self.url().unwrap())
                .await
                .batch_execute(sql)
                .await
                .map_err(|e| {
                    e.as_db_error()
                        .map(|d| d.message().to_owned())
                        .unwrap_or_default()
                }),
        }
    }

    /// Ends every connection to the database from outside (a database
    /// restart as the servers see it); true when there were any to end
    /// (SQLite has none).
    pub async fn drop_connections(&self) -> bool {
        match self {
            TestDb::Sqlite(_) => false,
            TestDb::Postgres { admin, name } => {
                let client = admin_client(admin).await;
                let rows = client
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE datname = $1 AND pid <> pg_backend_pid()",
                        &[name],
                    )
                    .await
                    .unwrap();
                !rows.is_empty()
            }
        }
    }

    /// The schema version recorded in the database.
    pub async fn schema_version(&self) -> u32 {
        match self {
            TestDb::Sqlite(d) => rusqlite::Connection::open(d.path().join("server.db"))
                .unwrap()
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap(),
            TestDb::Postgres { .. } => {
                let client = admin_client(&self.url().unwrap()).await;
                let v: i32 = client
                    .query_one("SELECT version FROM schema_version", &[])
                    .await
                    .unwrap()
                    .get(0);
                v as u32
            }
        }
    }

    /// Sets the schema version recorded in the database (to play a newer
    /// server's database).
    pub async fn set_schema_version(&self, version: u32) {
        match self {
            TestDb::Sqlite(d) => {
                let path = d.path().join("server.db");
                let c = rusqlite::Connection::open(path).unwrap();
                c.pragma_update(None, "user_version", version).unwrap();
            }
            TestDb::Postgres { .. } => {
                let client = admin_client(&self.url().unwrap()).await;
                client
                    .execute(
                        "UPDATE schema_version SET version = $1",
                        &[&(version as i32)],
                    )
                    .await
                    .unwrap();
            }
        }
    }

    /// A copy of the data as it is now (servers on it must be stopped): a
    /// backup.
    pub async fn backup(&self) -> TestDb {
        match self {
            TestDb::Sqlite(d) => {
                let copy = tempfile::tempdir().unwrap();
                copy_files(d.path(), copy.path());
                TestDb::Sqlite(copy)
            }
            TestDb::Postgres { admin, name } => {
                let copy = format!("sambung_test_{}", hex_id());
                admin_sql(admin, &[format!("CREATE DATABASE {copy} TEMPLATE {name}")]).await;
                // The same deployment: its secrets go with it.
                postgres_secrets(&copy, Some(name));
                TestDb::Postgres {
                    admin: admin.clone(),
                    name: copy,
                }
            }
        }
    }

    /// Replaces the data with a backup's (servers on it must be stopped).
    pub async fn restore(&self, backup: &TestDb) {
        match (self, backup) {
            (TestDb::Sqlite(d), TestDb::Sqlite(b)) => copy_files(b.path(), d.path()),
            (TestDb::Postgres { admin, name }, TestDb::Postgres { name: from, .. }) => {
                admin_sql(
                    admin,
                    &[
                        format!("DROP DATABASE {name} WITH (FORCE)"),
                        format!("CREATE DATABASE {name} TEMPLATE {from}"),
                    ],
                )
                .await
            }
            _ => panic!("a backup restores onto its own backend"),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin, name } = self {
            let (admin, sql) = (
                admin.clone(),
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
            // Drop may run inside a runtime: a thread with its own.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(async {
                        if let Ok((c, conn)) =
                            tokio_postgres::connect(&admin, tokio_postgres::NoTls).await
                        {
                            tokio::spawn(conn);
                            let _ = c.batch_execute(&sql).await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

fn hex_id() -> String {
    let b = sambung_core::crypto::random_key_bytes().unwrap();
    b[..8].iter().map(|x| format!("{x:02x}")).collect()
}

/// A server running on loopback.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its operations listener serves `/metrics`.
    pub metrics_addr: SocketAddr,
    /// Its state (storage, keys), for checks from the test.
    pub state: Arc<AppState>,
    _db: Option<TestDb>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on an empty database of the backend under test
    /// (see [`POSTGRES_ENV`]).
    pub async fn start() -> TestServer {
        TestServer::start_configured(Settings::default()).await
    }

    /// Starts a server with `settings` on an empty database of the
    /// backend under test.
    pub async fn start_configured(settings: Settings) -> TestServer {
        let db = TestDb::fresh().await;
        let mut server = TestServer::start_on_with(&db, settings).await;
        server._db = Some(db);
        server
    }

    /// Starts a server on an empty database without rate limits: behind
    /// the link simulator, virtual hours pass in real seconds, and a
    /// device's retries would look like a flood.
    pub async fn start_simulated() -> TestServer {
        let unlimited = sambung_server::limits::Rate {
            per_minute: 1_000_000,
            burst: 1_000_000,
        };
        TestServer::start_configured(Settings {
            limits: sambung_server::limits::Limits {
                per_address: unlimited,
                per_device: unlimited,
            },
            ..Settings::default()
        })
        .await
    }

    /// Starts a server on `db` (kept when it stops; several servers on one
    /// PostgreSQL database act as one).
    pub async fn start_on(db: &TestDb) -> TestServer {
        TestServer::start_on_with(db, Settings::default()).await
    }

    /// Starts a server with `settings` on `db`.
    pub async fn start_on_with(db: &TestDb, settings: Settings) -> TestServer {
        let storage = db.open();
        let secrets = db.secrets(storage.as_ref());
        TestServer::start_state(AppState::with_settings(storage, secrets, settings).unwrap()).await
    }

    /// Starts a server on `storage` (of `db`, whose secrets it takes).
    pub async fn start_with_storage(db: &TestDb, storage: Arc<dyn Storage>) -> TestServer {
        let secrets = db.secrets(storage.as_ref());
        TestServer::start_state(AppState::new(storage, secrets).unwrap()).await
    }

    /// Starts a server on the SQLite database in `dir`.
    pub async fn start_in(dir: &Path) -> TestServer {
        let storage = SqliteStorage::open(dir).unwrap();
        let secrets =
            Secrets::open(&dir.join(sambung_server::secrets::DEFAULT_FILE), &storage).unwrap();
        TestServer::start_state(AppState::new(Arc::new(storage), secrets).unwrap()).await
    }

    async fn start_state(state: Arc<AppState>) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_addr = metrics_listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let task = tokio::spawn(async move {
            let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
            let worker = tokio::spawn(sambung_server::webhooks::worker::run(
                st.storage_arc(),
                st.secrets_arc(),
                st.webhook_policy().clone(),
                webhook_settings(),
                async {
                    let _ = worker_stopped.await;
                },
            ));
            let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
            let metrics = tokio::spawn(sambung_server::api::serve_metrics(
                metrics_listener,
                st.clone(),
                async {
                    let _ = metrics_stopped.await;
                },
            ));
            sambung_server::api::serve(listener, st, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
            let _ = stop_worker.send(());
            let _ = worker.await;
            let _ = stop_metrics.send(());
            let _ = metrics.await;
        });
        TestServer {
            addr,
            metrics_addr,
            state,
            _db: None,
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

    /// Its audience (the deployment id signatures name).
    pub fn audience(&self) -> String {
        self.state.audience().to_owned()
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

/// The webhook worker of test servers: it polls often and its retry
/// schedule is shrunk 500 times (5 s → 10 ms, 5 min → 0.6 s).
pub fn webhook_settings() -> sambung_server::webhooks::worker::Settings {
    sambung_server::webhooks::worker::Settings {
        poll: std::time::Duration::from_millis(20),
        backoff_scale: 0.002,
        lease: std::time::Duration::from_secs(30),
        timeout: std::time::Duration::from_secs(5),
        batch: 4,
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

/// An agency's back-office system: an enrolled agency key that signs its
/// calls to the back-office API, as `docs/backoffice.md` tells agencies to.
pub struct Agency {
    key: sambung_core::protocol::DeviceKey,
    /// The id of its signing key (an enrolled device).
    pub device: [u8; 16],
    /// The server's audience, from the enrollment answer.
    pub audience: String,
    base: String,
    http: reqwest::Client,
}

/// One answer of the back-office API.
#[derive(Debug)]
pub struct ApiAnswer {
    /// HTTP status.
    pub status: u16,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
    /// The JSON body (`null` when it is not JSON).
    pub json: serde_json::Value,
    /// The body as text (a CSV export).
    pub text: String,
}

impl ApiAnswer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }
}

impl Agency {
    /// Enrolls a fresh agency key with `server` for account `user` in
    /// `regions` (empty: all).
    pub async fn enroll(server: &TestServer, user: &str, regions: &[&str]) -> Agency {
        let code = server.code(Role::Agency, user, regions, None);
        Agency::enroll_with(server, &code).await
    }

    /// Enrolls a fresh key with an enrollment `code` (of any role).
    pub async fn enroll_with(server: &TestServer, code: &str) -> Agency {
        let agency = Agency::enroll_at(&server.url(), code)
            .await
            .expect("enrollment");
        assert_eq!(
            agency.audience,
            server.audience(),
            "the enrollment answer names the audience"
        );
        agency
    }

    /// Enrolls a fresh key with `code` at the server at `url` (any server:
    /// the API's conformance run enrolls at one started by a script).
    pub async fn enroll_at(url: &str, code: &str) -> Result<Agency, String> {
        sambung_core::sync::install_crypto_provider();
        let key = sambung_core::protocol::DeviceKey::generate().map_err(|e| e.to_string())?;
        let device = sambung_core::protocol::device_id_of(&key.public_key());
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{url}/v1/enroll"))
            .json(&serde_json::json!({
                "code": code,
                "device": device.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                "public_key": key.public_key().iter().map(|b| format!("{b:02x}")).collect::<String>(),
                "proof": key.prove_enrollment(code),
            }))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status() != 200 {
            return Err(format!("enrollment answered {}", r.status()));
        }
        let answer: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
        let audience = answer["audience"]
            .as_str()
            .ok_or("the enrollment answer has no audience")?
            .to_owned();
        Ok(Agency {
            key,
            device,
            audience,
            base: url.to_owned(),
            http,
        })
    }

    /// A signed call: `target` is the path with its query.
    pub async fn call(
        &self,
        method: &str,
        target: &str,
        body: Option<serde_json::Value>,
        if_match: Option<&str>,
    ) -> ApiAnswer {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let signed = self.sign(method, target, &body);
        self.send(method, target, body, Some(signed), if_match)
            .await
    }

    /// A signed call with a raw body (a service definition is published
    /// byte for byte).
    pub async fn call_raw(&self, method: &str, target: &str, body: &[u8]) -> ApiAnswer {
        let signed = self.sign(method, target, body);
        self.send(method, target, body.to_vec(), Some(signed), None)
            .await
    }

    /// A call with given (or no) signature headers, for refusals.
    pub async fn send(
        &self,
        method: &str,
        target: &str,
        body: Vec<u8>,
        signed: Option<sambung_core::protocol::SignedHeaders>,
        if_match: Option<&str>,
    ) -> ApiAnswer {
        let mut req = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{target}", self.base),
        );
        if let Some(s) = signed {
            for (name, value) in s.pairs() {
                req = req.header(name, value);
            }
        }
        if let Some(m) = if_match {
            req = req.header("if-match", m);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json").body(body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = r.bytes().await.unwrap();
        ApiAnswer {
            status,
            etag,
            json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Moves the request `id` to status `to` (with a note, as a question
    /// needs); the move must succeed.
    pub async fn move_to(&self, id: &sambung_core::model::RequestId, to: &str) {
        let r = self
            .call(
                "POST",
                &format!("/v1/agency/requests/{id}/status"),
                Some(serde_json::json!({"to": to, "note": "lengkapi"})),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{to}: {:?}", r.json);
    }

    /// A signed GET returning the status and the raw body (downloads).
    pub async fn raw_get(&self, target: &str, range: Option<&str>) -> (u16, Vec<u8>) {
        let mut call = protocol::Call::new(&self.audience, "GET", target, b"");
        if let Some(r) = range {
            call = call.header(protocol::SignedHeader::Range, r);
        }
        let signed = self.key.sign(self.device, &call, now()).unwrap();
        let mut req = self.http.get(format!("{}{target}", self.base));
        for (name, value) in signed.pairs() {
            req = req.header(name, value);
        }
        if let Some(r) = range {
            req = req.header("range", r);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }

    /// Signs a call (no signed headers) for this server's audience.
    pub fn sign(
        &self,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> sambung_core::protocol::SignedHeaders {
        self.key
            .sign(
                self.device,
                &protocol::Call::new(&self.audience, method, target, body),
                now(),
            )
            .unwrap()
    }
}

/// A device speaking the sync protocol by hand: for tampered clients and
/// bad input, signed with a real device's key.
pub struct RawDevice {
    /// Its HTTP client.
    pub http: reqwest::Client,
    /// The server's base URL.
    pub url: String,
    /// The device id.
    pub device: [u8; 16],
    /// The device's signing key.
    pub key: DeviceKey,
    /// The audience of the server it enrolled with.
    pub audience: String,
}

impl RawDevice {
    /// A raw client speaking as `dev`, with its own key, to `url`.
    pub fn of(url: &str, dev: &Device) -> RawDevice {
        RawDevice {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            device: dev.store.device_id(),
            key: dev.store.device_key().unwrap(),
            audience: dev.store.enrollment().unwrap().unwrap().audience,
        }
    }

    pub async fn post(
        &self,
        body: Vec<u8>,
        sign: impl FnOnce(&DeviceKey, &[u8]) -> Vec<(&'static str, String)>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{SYNC_PATH}", self.url))
            .body(body.clone());
        for (k, v) in sign(&self.key, &body) {
            req = req.header(k, v);
        }
        req.send().await.unwrap()
    }

    /// A signed exchange that must succeed; its decoded answer.
    pub async fn exchange(&self, push: Vec<DocPush>) -> SyncResponse {
        let resp = self.signed(sync_body(push)).await;
        assert_eq!(resp.status().as_u16(), 200);
        protocol::decode(&resp.bytes().await.unwrap()).unwrap()
    }

    /// A signed exchange of `request` as written (cursor, budget, repairs
    /// of the tester's choosing) that must succeed; its decoded answer.
    pub async fn send(&self, request: &SyncRequest) -> SyncResponse {
        let resp = self.signed(protocol::encode(request).unwrap()).await;
        assert_eq!(resp.status().as_u16(), 200);
        protocol::decode(&resp.bytes().await.unwrap()).unwrap()
    }

    pub async fn signed(&self, body: Vec<u8>) -> reqwest::Response {
        let device = self.device;
        let audience = self.audience.clone();
        self.post(body, |k, b| {
            k.sign(
                device,
                &protocol::Call::new(&audience, "POST", SYNC_PATH, b),
                now(),
            )
            .unwrap()
            .pairs()
            .to_vec()
        })
        .await
    }
}

/// The documents the SKTM letter (and the services made from it) asks
/// for, as references a tampered app writes itself (the bytes are not the
/// server's concern when it judges content): two of the engine's roles,
/// and the RT letter by the service's own name for it.
pub fn sktm_documents(r: &mut sambung_core::model::Request) {
    use sambung_core::model::{AttachmentRef, AttachmentRole};
    for (i, (role, purpose)) in [
        (AttachmentRole::KtpCopy, None),
        (AttachmentRole::KkCopy, None),
        (
            AttachmentRole::SupportingDocument,
            Some("rt_letter".to_owned()),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        r.attachments.push(AttachmentRef {
            sha256: format!("{:064x}", i + 1),
            role,
            purpose,
            name: "scan.pdf".into(),
            mime: "application/pdf".into(),
            size: 10,
            added_at: sambung_core::Timestamp::now(),
        });
    }
}

/// A new request of `content` pushed as a tampered app writes it: created
/// by `user` in `role`, changed by `edit`, already submitted, nothing
/// checked on the device.
pub fn tampered_submission(
    dev: &Device,
    content: sambung_core::model::RequestContent,
    user: &str,
    role: Role,
    edit: impl FnOnce(&mut sambung_core::model::Request),
) -> DocPush {
    use sambung_core::lifecycle::{Status, StatusEntry};
    let mut request =
        sambung_core::model::Request::draft(content, user, role, sambung_core::Timestamp::now());
    edit(&mut request);
    request.history.push(StatusEntry {
        seq: 0,
        at: sambung_core::Timestamp::now(),
        id: "submit".into(),
        from: Status::Draft,
        to: Status::Submitted,
        by: user.into(),
        role,
        note: None,
    });
    let actor = automerge::ActorId::from(dev.store.device_id().as_slice());
    let mut doc = sambung_core::document::RequestDoc::new(&request, actor)
        .expect("a request makes a document");
    DocPush {
        id: request.id.to_bytes(),
        since: vec![],
        changes: doc.save_after(&[]),
        heads: doc.heads().into_iter().map(Into::into).collect(),
    }
}

/// A sync request body pushing `push` from the start of the log.
pub fn sync_body(push: Vec<DocPush>) -> Vec<u8> {
    protocol::encode(&SyncRequest {
        cursor: 0,
        cursor_tag: 0,
        push,
        repair: vec![],
        max_response_bytes: 65536,
        catalog: 0,
    })
    .unwrap()
}

/// The kinds a request can be submitted of without attaching anything
/// first (the others need a document attached before they leave draft).
pub fn kinds_without_required_attachments() -> Vec<sambung_core::model::Kind> {
    sambung_core::model::Kind::ALL
        .iter()
        .copied()
        .filter(|k| {
            sambung_core::templates::example(*k)
                .details
                .required_attachments()
                .is_empty()
        })
        .collect()
}

/// Deterministic bytes that do not compress, different for every seed
/// (attachment payloads in tests).
pub fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The SHA-256 of `b` in lowercase hex (an attachment's name).
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha256(b))
}

/// The SHA-256 of `b`.
pub fn sha256(b: &[u8]) -> [u8; 32] {
    sambung_core::crypto::sha256(b)
}

/// SplitMix64: a seeded sequence for fault schedules (the same in the
/// test and in the processes it kills).
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
