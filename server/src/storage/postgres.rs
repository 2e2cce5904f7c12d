//! The PostgreSQL backend: several server processes on one database behave
//! as one. Concurrent merges of one document are serialised by a
//! transaction-scoped advisory lock on its id (it also covers a document
//! not yet inserted, which a row lock cannot), and log entries are numbered
//! under one more lock held to commit, so a sequence number is never
//! visible before a lower one: a device's pull cursor never skips an entry.
//!
//! The [`Storage`] trait is synchronous (handlers call it from tokio's
//! blocking pool). This backend runs tokio-postgres on a small runtime of
//! its own and waits for each call on the calling thread, which works from
//! any thread, async or not.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use sambung_core::lifecycle::Role;
use sambung_core::protocol::{DocId, SIGNATURE_WINDOW_SECS};
use tokio_postgres::{Client, Row};

use super::records::{AuditEntry, AuditFilter, Delivery, NewDelivery, Outcome, Subscription};
use super::{
    BlobRetention, BlobState, BlobSweep, CatalogRow, Delivered, DeliveryStats, DeviceSummary,
    DocFilter, DocMeta, DocRow, DocState, EnrolledDevice, ListPosition, LogEntry, NewLogEntry,
    Receipt, Revocation, Storage, StorageError, StoredDoc, Tx, Uploader, located, to_account,
    to_i64,
};
use crate::accounts::{Account, Draft, Scope};
use crate::error::ServerError;
use crate::scope_index::{self, Candidates, Reader, ScopeKey};

/// The schema, as numbered migrations (append only, like SQLite's).
const MIGRATIONS: &[&str] = &[
    // 1: the schema of SQLite's versions 1 to 3 at once.
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE accounts (
    id       TEXT PRIMARY KEY,
    role     TEXT NOT NULL,
    regions  TEXT NOT NULL,
    nik_hash BYTEA
);
CREATE TABLE enrollments (
    code_hash  BYTEA PRIMARY KEY,
    account    TEXT NOT NULL REFERENCES accounts (id),
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE TABLE devices (
    id          BYTEA PRIMARY KEY,
    account     TEXT NOT NULL REFERENCES accounts (id),
    public_key  BYTEA NOT NULL,
    enrolled_at BIGINT NOT NULL,
    revoked_at  BIGINT,
    high_cursor BIGINT NOT NULL DEFAULT 0,
    wipe        BOOLEAN NOT NULL DEFAULT false,
    push_first  BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE nonces (
    device     BYTEA NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (device, nonce)
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);
CREATE TABLE documents (
    id                 BYTEA PRIMARY KEY,
    region             TEXT NOT NULL,
    owner              TEXT NOT NULL,
    applicant_nik_hash BYTEA,
    assignee           TEXT,
    data               BYTEA NOT NULL,
    heads              BYTEA NOT NULL,
    kind               TEXT NOT NULL DEFAULT '',
    service            TEXT NOT NULL DEFAULT '',
    status             TEXT NOT NULL DEFAULT '',
    updated_at         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX documents_by_update ON documents (updated_at, id);
CREATE TABLE log (
    seq    BIGSERIAL PRIMARY KEY,
    doc    BYTEA NOT NULL REFERENCES documents (id),
    data   BYTEA NOT NULL,
    heads  BYTEA NOT NULL,
    device BYTEA NOT NULL
);
"#,
    // 2: the audit trail, append only (see `crate::audit`).
    r#"
CREATE TABLE audit (
    seq      BIGINT PRIMARY KEY,
    at       BIGINT NOT NULL,
    account  TEXT NOT NULL,
    role     TEXT NOT NULL,
    device   BYTEA,
    action   TEXT NOT NULL,
    request  BYTEA,
    endpoint TEXT NOT NULL,
    prev     BYTEA NOT NULL,
    hash     BYTEA NOT NULL
);
CREATE INDEX audit_by_request ON audit (request, seq);
CREATE INDEX audit_by_account ON audit (account, seq);
CREATE INDEX audit_by_device ON audit (device, seq);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'the audit trail is append only'; END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"#,
    // 3: webhook subscriptions and their durable delivery queue.
    r#"
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    account    TEXT NOT NULL REFERENCES accounts (id),
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret     BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE deliveries (
    seq          BIGSERIAL PRIMARY KEY,
    webhook      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      BIGINT NOT NULL,
    lease_until  BIGINT NOT NULL DEFAULT 0,
    delivered_at BIGINT,
    failed       BOOLEAN NOT NULL DEFAULT false,
    last_error   TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE delivered_at IS NULL AND NOT failed;
"#,
    // 4: finding what is held about a person (UU PDP access requests).
    r#"
CREATE INDEX documents_by_applicant ON documents (applicant_nik_hash);
CREATE INDEX documents_by_owner ON documents (owner);
CREATE INDEX accounts_by_nik ON accounts (nik_hash);
"#,
    // 5: erasure (UU PDP): entries that replace a document, and old
    // entries whose data was purged.
    r#"
ALTER TABLE log ADD COLUMN replaces BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE log ADD COLUMN purged BOOLEAN NOT NULL DEFAULT false;
"#,
    // 6: listings page by the position of a document's latest log entry
    // (numbered in commit order), not by a clock.
    r#"
ALTER TABLE documents ADD COLUMN log_seq BIGINT NOT NULL DEFAULT 0;
UPDATE documents SET log_seq = coalesce((SELECT max(seq) FROM log WHERE log.doc = documents.id), 0);
CREATE INDEX documents_by_log ON documents (log_seq);
"#,
    // 7: attachment bytes by content address (protocol::blobs).
    r#"
CREATE TABLE blobs (
    sha256     BYTEA PRIMARY KEY,
    size       BIGINT NOT NULL,
    received   BIGINT NOT NULL,
    complete   BOOLEAN NOT NULL DEFAULT false,
    created_at BIGINT NOT NULL
);
CREATE TABLE blob_chunks (
    sha256 BYTEA NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    pos BIGINT NOT NULL,
    data   BYTEA NOT NULL,
    PRIMARY KEY (sha256, pos)
);
"#, // 8: who delivered each accepted change (device and signed exchange).
    r#"
CREATE TABLE receipts (
    change   BYTEA PRIMARY KEY,
    doc      BYTEA NOT NULL,
    account  TEXT NOT NULL,
    device   BYTEA,
    exchange BYTEA,
    at       BIGINT NOT NULL
);
CREATE INDEX receipts_by_doc ON receipts (doc, at);
-- What a device was given of a document (the rules judge its changes
-- against no less).
CREATE INDEX log_by_doc ON log (doc, seq);
"#,
    // 9: blobs have owners (SQLite's version 12; see there).
    r#"
CREATE TABLE blob_uploads (
    sha256     BYTEA NOT NULL,
    device     BYTEA NOT NULL,
    account    TEXT NOT NULL,
    size       BIGINT NOT NULL,
    received   BIGINT NOT NULL,
    touched_at BIGINT NOT NULL,
    PRIMARY KEY (sha256, device)
);
CREATE INDEX blob_uploads_by_age ON blob_uploads (touched_at);
CREATE TABLE blob_upload_chunks (
    sha256 BYTEA NOT NULL,
    device BYTEA NOT NULL,
    pos    BIGINT NOT NULL,
    data   BYTEA NOT NULL,
    PRIMARY KEY (sha256, device, pos),
    FOREIGN KEY (sha256, device) REFERENCES blob_uploads (sha256, device) ON DELETE CASCADE
);
CREATE TABLE blob_owners (
    sha256   BYTEA NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    account  TEXT NOT NULL,
    device   BYTEA,
    uploaded BOOLEAN NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (sha256, account)
);
CREATE TABLE blob_refs (
    doc      BYTEA NOT NULL,
    sha256   BYTEA NOT NULL,
    added_by TEXT,
    PRIMARY KEY (doc, sha256)
);
CREATE INDEX blob_refs_by_blob ON blob_refs (sha256);
ALTER TABLE blobs ADD COLUMN released_at BIGINT;
ALTER TABLE documents ADD COLUMN blob_refs_known BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX documents_without_blob_refs ON documents (id) WHERE NOT blob_refs_known;
DELETE FROM blobs WHERE NOT complete;
"#,
    // 10: drafts are private to their creator (documents written before
    // by the status they were listed with); what a repair gave a device of
    // a document (its pushes are judged against no less).
    r#"
ALTER TABLE documents ADD COLUMN draft SMALLINT NOT NULL DEFAULT 0;
UPDATE documents SET draft = 1 WHERE status = 'draft';
CREATE TABLE given (
    device BYTEA NOT NULL,
    doc    BYTEA NOT NULL,
    seq    BIGINT NOT NULL,
    PRIMARY KEY (device, doc)
);
"#,
    // 11: a device's unfinished uploads found by device (its quota is
    // counted at every new upload).
    r#"
CREATE INDEX blob_uploads_by_device ON blob_uploads (device);
"#,
    // 12: the scope index (`crate::scope_index`; SQLite's 15): log entries
    // by who may see them, and entries meant for one account. Entries
    // written before are filed by `backfill_scope_index`.
    r#"
CREATE TABLE scope_log (
    key BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (key, seq)
);
ALTER TABLE log ADD COLUMN audience TEXT;
INSERT INTO meta (key, value) SELECT 'scope_index_pending', decode('01', 'hex') WHERE EXISTS (SELECT 1 FROM log);
"#,
    // 13: the service catalog (`crate::catalog`; SQLite's 16).
    r#"
CREATE TABLE catalog (
    service       TEXT NOT NULL,
    version       BIGINT NOT NULL,
    body          TEXT NOT NULL,
    accept_until  TEXT,
    seq           BIGINT NOT NULL UNIQUE,
    published_seq BIGINT NOT NULL,
    published_at  BIGINT NOT NULL,
    PRIMARY KEY (service, version)
);
"#,
    // 14: where a request is about, for the console's map (SQLite's 17).
    r#"
ALTER TABLE documents ADD COLUMN lat_e6 INTEGER;
ALTER TABLE documents ADD COLUMN lon_e6 INTEGER;
"#,
    // 15: submission time and definition, for the queue (SQLite's 18).
    r#"
ALTER TABLE documents ADD COLUMN submitted_at BIGINT;
ALTER TABLE documents ADD COLUMN definition TEXT NOT NULL DEFAULT '';
UPDATE documents SET definition = kind WHERE kind <> 'service';
"#,
    // 16: the queue's counts by status and region (SQLite's 19).
    r#"
CREATE INDEX documents_by_status ON documents (status, region);
"#,
];

/// Advisory lock keys. The one-key and two-key lock spaces do not overlap
/// in PostgreSQL, so a document's key (one bigint) never meets these.
const LOCK_SPACE: i32 = 0x5342_4E47; // "SBNG"
const LOCK_MIGRATE: i32 = 1;
const LOCK_LOG: i32 = 2;
const LOCK_AUDIT: i32 = 3;
const LOCK_CATALOG: i32 = 4;
/// Blob uploads lock in a space of their own, keyed by their hash.
const LOCK_BLOBS: i32 = 0x5342_4E48; // "SBNH"

/// How long a replica may take to replay the schema the primary migrated
/// to when the server starts.
const REPLICA_SCHEMA_WAIT: Duration = Duration::from_secs(30);

/// Connections kept open by one server process.
const POOL_SIZE: usize = 8;

/// A server's storage on PostgreSQL.
pub struct PostgresStorage {
    runtime: Option<tokio::runtime::Runtime>,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    pool: Mutex<Pool>,
    returned: Condvar,
}

fn pg(e: tokio_postgres::Error) -> ServerError {
    StorageError::from(e).into()
}

fn doc_key(id: &DocId) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id[..8]);
    i64::from_be_bytes(b)
}

/// Whether a document row is overdue by the JSON object of cutoffs in
/// parameter `$n` (definition id → Unix ms; `DocFilter::overdue`).
macro_rules! overdue {
    ($n:literal) => {
        concat!(
            "status IN ('submitted', 'received', 'in_review', 'needs_info') ",
            "AND submitted_at < ($",
            $n,
            "::jsonb ->> definition)::BIGINT"
        )
    };
}
const OVERDUE10: &str = overdue!("10");
const OVERDUE13: &str = overdue!("13");

const DOC_COLUMNS: &str = "id, data, region, owner, applicant_nik_hash, assignee, kind, service, status, updated_at, draft, lat_e6, lon_e6, submitted_at, definition";

fn doc_of(r: &Row) -> Result<(Vec<u8>, StoredDoc), tokio_postgres::Error> {
    Ok((
        r.try_get(0)?,
        StoredDoc {
            data: r.try_get(1)?,
            scope: Scope {
                region: r.try_get(2)?,
                owner: r.try_get(3)?,
                applicant_nik_hash: r.try_get(4)?,
                assignee: r.try_get(5)?,
                draft: Draft::from_i64(r.try_get::<_, i16>(10)?.into()),
            },
            meta: DocMeta {
                kind: r.try_get(6)?,
                service: r.try_get(7)?,
                status: r.try_get(8)?,
                updated_at: r.try_get(9)?,
                location: located(r.try_get(11)?, r.try_get(12)?),
                submitted_at: r.try_get(13)?,
                definition: r.try_get(14)?,
            },
        },
    ))
}

fn id16(v: Vec<u8>, what: &str) -> Result<[u8; 16], ServerError> {
    v.try_into()
        .map_err(|_| ServerError::Storage(format!("damaged {what}")))
}

async fn load_webhooks(
    c: &Client,
    account: Option<String>,
) -> Result<Vec<Subscription>, StorageError> {
    let rows = c
        .query(
            "SELECT w.id, w.url, w.events, a.id, a.role, a.regions, a.nik_hash
             FROM webhooks w JOIN accounts a ON a.id = w.account
             WHERE $1::TEXT IS NULL OR w.account = $1 ORDER BY w.created_at, w.id",
            &[&account],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let events: String = r.get(2);
            Ok(Subscription {
                id: r.get(0),
                url: r.get(1),
                events: serde_json::from_str(&events)
                    .map_err(|_| StorageError::Damaged("webhook events"))?,
                account: to_account(r.get(3), r.get(4), r.get(5), r.get(6))?,
            })
        })
        .collect()
}

async fn read_doc(c: &Client, id: &DocId) -> Result<Option<StoredDoc>, ServerError> {
    let row = c
        .query_opt(
            &format!("SELECT {DOC_COLUMNS} FROM documents WHERE id = $1"),
            &[&id.as_slice()],
        )
        .await
        .map_err(pg)?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some(doc_of(&r).map_err(pg)?.1)),
    }
}

/// The connections: idle ones, and how many exist (idle or in use). A
/// connection that closed (the database restarted, a network cut) is not
/// returned and its slot reopens on demand, so the pool heals when the
/// database comes back.
#[derive(Default)]
struct Pool {
    idle: Vec<Arc<Client>>,
    open: usize,
}

/// How long a call waits for a free connection before failing.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// A pooled connection; back to the pool on drop. A connection that may be
/// inside a transaction is rolled back first.
struct Conn<'a> {
    storage: &'a PostgresStorage,
    client: Option<Arc<Client>>,
    in_transaction: bool,
}

impl Conn<'_> {
    fn client(&self) -> Arc<Client> {
        self.client.clone().expect("present until drop")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let mut usable = !client.is_closed();
        if usable && self.in_transaction {
            let c = client.clone();
            usable = self
                .storage
                .block(async move { c.batch_execute("ROLLBACK").await })
                .is_ok();
        }
        let mut pool = self.storage.pool.lock().unwrap_or_else(|e| e.into_inner());
        if usable {
            pool.idle.push(client);
        } else {
            pool.open = pool.open.saturating_sub(1);
        }
        self.storage.returned.notify_one();
    }
}

impl PostgresStorage {
    /// Connects to `url` (a libpq-style `postgres://` URL; `sslmode`
    /// `require` verifies the server against the platform's roots) and
    /// brings the schema up to date. Several servers may start at once:
    /// migrations run under a lock.
    pub fn connect(url: &str) -> Result<Self, ServerError> {
        let storage = Self::open_pool(url)?;
        storage.migrate()?;
        Ok(storage)
    }

    /// Connects to a streaming replica (a standby) of the primary's
    /// database, read only: nothing is migrated. The replica must hold the
    /// schema this server knows; right after the primary migrated, a
    /// replica gets up to [`REPLICA_SCHEMA_WAIT`] to replay it.
    pub fn connect_replica(url: &str) -> Result<Self, ServerError> {
        let storage = Self::open_pool(url)?;
        let known = MIGRATIONS.len() as i32;
        let deadline = std::time::Instant::now() + REPLICA_SCHEMA_WAIT;
        loop {
            let found: i32 = storage.run(|c| async move {
                let exists = c
                    .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
                    .await
                    .map_err(pg)?
                    .get::<_, bool>(0);
                if !exists {
                    return Ok(0);
                }
                Ok(c.query_opt("SELECT version FROM schema_version", &[])
                    .await
                    .map_err(pg)?
                    .map(|r| r.get::<_, i32>(0))
                    .unwrap_or(0))
            })?;
            if found == known {
                return Ok(storage);
            }
            if found > known || std::time::Instant::now() >= deadline {
                return Err(ServerError::Config(format!(
                    "a --replica holds schema version {found}, this server {known}: give replicas of this server's --database"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The connection pool on `url`, one connection opened to prove it.
    fn open_pool(url: &str) -> Result<Self, ServerError> {
        let config: tokio_postgres::Config = url.parse().map_err(|_| {
            ServerError::Config("a PostgreSQL URL (--database or --replica) is not valid".into())
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sambung-postgres")
            .enable_all()
            .build()
            .map_err(|e| ServerError::Config(format!("no runtime for PostgreSQL: {e}")))?;
        let tls = crate::tls::client_config()?;
        let storage = PostgresStorage {
            runtime: Some(runtime),
            config,
            tls: tokio_postgres_rustls::MakeRustlsConnect::new(tls),
            pool: Mutex::new(Pool::default()),
            returned: Condvar::new(),
        };
        // One connection proves the URL before anything else; the others
        // open as they are needed.
        drop(storage.conn()?);
        Ok(storage)
    }

    /// Runs `fut` on this storage's runtime and waits for it.
    fn block<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let runtime = self.runtime.as_ref().expect("present until drop");
        runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().expect("the task always answers")
    }

    fn open_client(&self) -> Result<Arc<Client>, ServerError> {
        let config = self.config.clone();
        let tls = self.tls.clone();
        let connected = self.block(async move {
            let (client, connection) =
                tokio::time::timeout(Duration::from_secs(15), config.connect(tls))
                    .await
                    .map_err(|_| {
                        ServerError::Config("PostgreSQL did not answer within 15 s".into())
                    })?
                    .map_err(|e| {
                        ServerError::Config(format!(
                            "cannot connect to PostgreSQL ({})",
                            if e.as_db_error().is_some() {
                                "refused: check the user, password and database"
                            } else {
                                "unreachable, or its TLS failed"
                            }
                        ))
                    })?;
            tokio::spawn(async move {
                if connection.await.is_err() {
                    tracing::warn!("a PostgreSQL connection ended with an error");
                }
            });
            Ok::<_, ServerError>(client)
        })?;
        Ok(Arc::new(connected))
    }

    /// A connection from the pool: an idle one, a new one while fewer than
    /// [`POOL_SIZE`] exist, or the next one returned (up to [`POOL_WAIT`]).
    fn conn(&self) -> Result<Conn<'_>, ServerError> {
        let deadline = std::time::Instant::now() + POOL_WAIT;
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(c) = pool.idle.pop() {
                if c.is_closed() {
                    pool.open = pool.open.saturating_sub(1);
                    continue;
                }
                return Ok(Conn {
                    storage: self,
                    client: Some(c),
                    in_transaction: false,
                });
            }
            if pool.open < POOL_SIZE {
                pool.open += 1;
                drop(pool);
                return match self.open_client() {
                    Ok(c) => Ok(Conn {
                        storage: self,
                        client: Some(c),
                        in_transaction: false,
                    }),
                    Err(e) => {
                        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
                        pool.open = pool.open.saturating_sub(1);
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(ServerError::Storage(
                    "no database connection became free".into(),
                ));
            }
            pool = self
                .returned
                .wait_timeout(pool, deadline - now)
                .map(|(p, _)| p)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Runs `f` with a pooled connection.
    fn run<T, F, Fut>(&self, f: F) -> Result<T, ServerError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, ServerError>> + Send + 'static,
    {
        let conn = self.conn()?;
        let out = self.block(f(conn.client()));
        drop(conn);
        out
    }

    fn migrate(&self) -> Result<(), ServerError> {
        let mut conn = self.conn()?;
        conn.in_transaction = true;
        let known = MIGRATIONS.len() as i32;
        self.block(migrate(conn.client(), known))?;
        conn.in_transaction = false;
        Ok(())
    }
}

async fn migrate(c: Arc<Client>, known: i32) -> Result<(), ServerError> {
    c.batch_execute("BEGIN").await.map_err(pg)?;
    c.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_SPACE, &LOCK_MIGRATE],
    )
    .await
    .map_err(pg)?;
    c.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .await
        .map_err(pg)?;
    let found: Option<i32> = c
        .query_opt("SELECT version FROM schema_version", &[])
        .await
        .map_err(pg)?
        .map(|r| r.get(0));
    let found = found.unwrap_or(0);
    if found > known {
        c.batch_execute("ROLLBACK").await.map_err(pg)?;
        return Err(ServerError::Config(format!(
            "the database has schema version {found}; this server knows up to {known}: run a newer server"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        c.batch_execute(sql).await.map_err(pg)?;
        tracing::info!(version = i + 1, "PostgreSQL schema migrated");
    }
    c.execute("DELETE FROM schema_version", &[])
        .await
        .map_err(pg)?;
    c.execute(
        "INSERT INTO schema_version (version) VALUES ($1)",
        &[&known.max(found)],
    )
    .await
    .map_err(pg)?;
    backfill_blob_refs(&c).await?;
    backfill_scope_index(&c).await?;
    c.batch_execute("COMMIT").await.map_err(pg)?;
    Ok(())
}

/// Files the log entries written before the scope index under their
/// documents' scopes of now (in the migration's transaction).
async fn backfill_scope_index(c: &Client) -> Result<(), ServerError> {
    let pending = c
        .query_opt("SELECT 1 FROM meta WHERE key = 'scope_index_pending'", &[])
        .await
        .map_err(pg)?
        .is_some();
    if !pending {
        return Ok(());
    }
    let docs = c
        .query(
            "SELECT id, region, owner, applicant_nik_hash, assignee, draft FROM documents",
            &[],
        )
        .await
        .map_err(pg)?;
    for r in &docs {
        let (id, scope) = scope_of_row(r);
        let keys: Vec<ScopeKey> = scope_index::doc_keys(&scope).into_iter().collect();
        c.execute(
            "INSERT INTO scope_log (key, seq) SELECT k, l.seq FROM unnest($1::BIGINT[]) k, log l
             WHERE l.doc = $2 ON CONFLICT DO NOTHING",
            &[&keys, &id],
        )
        .await
        .map_err(pg)?;
    }
    c.execute("DELETE FROM meta WHERE key = 'scope_index_pending'", &[])
        .await
        .map_err(pg)?;
    Ok(())
}

/// `(id, scope)` from `id, region, owner, applicant_nik_hash, assignee,
/// draft`.
fn scope_of_row(r: &Row) -> (Vec<u8>, Scope) {
    (
        r.get(0),
        Scope {
            region: r.get(1),
            owner: r.get(2),
            applicant_nik_hash: r.get(3),
            assignee: r.get(4),
            draft: Draft::from_i64(r.get::<_, i16>(5).into()),
        },
    )
}

/// Log entries with their documents' scopes, `filter` being the rest of
/// the query after `WHERE`.
async fn read_log(
    c: &Client,
    filter: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<LogEntry>, ServerError> {
    let rows = c
        .query(
            &format!(
                "SELECT l.seq, l.doc, l.data, l.heads, l.device, d.region, d.owner,
                        d.applicant_nik_hash, d.assignee, l.replaces, l.purged, d.draft,
                        l.audience IS NOT NULL
                 FROM log l JOIN documents d ON d.id = l.doc
                 WHERE {filter}"
            ),
            params,
        )
        .await
        .map_err(pg)?;
    rows.iter()
        .map(|r| {
            let seq: i64 = r.get(0);
            Ok(LogEntry {
                seq: seq as u64,
                doc: id16(r.get(1), "document id")?,
                data: r.get(2),
                heads: r.get(3),
                device: id16(r.get(4), "device id")?,
                scope: Scope {
                    region: r.get(5),
                    owner: r.get(6),
                    applicant_nik_hash: r.get(7),
                    assignee: r.get(8),
                    draft: Draft::from_i64(r.get::<_, i16>(11).into()),
                },
                replace: r.get(9),
                purged: r.get(10),
                for_account: r.get(12),
            })
        })
        .collect()
}

/// Records the attachment references of documents stored before they were
/// recorded (in the migration's transaction, under its lock): added by
/// nobody, so they grant the bytes as every reference did then.
async fn backfill_blob_refs(c: &Client) -> Result<(), ServerError> {
    loop {
        let rows = c
            .query(
                "SELECT id, data FROM documents WHERE NOT blob_refs_known LIMIT 100",
                &[],
            )
            .await
            .map_err(pg)?;
        if rows.is_empty() {
            return Ok(());
        }
        for r in rows {
            let (id, data): (Vec<u8>, Vec<u8>) = (r.get(0), r.get(1));
            let hashes = crate::blobs::hashes_of_stored(&data).unwrap_or_else(|| {
                tracing::warn!("a stored document does not load; its attachments are not recorded");
                Vec::new()
            });
            for h in hashes {
                c.execute(
                    "INSERT INTO blob_refs (doc, sha256, added_by) VALUES ($1, $2, NULL)
                     ON CONFLICT DO NOTHING",
                    &[&id, &h.as_slice()],
                )
                .await
                .map_err(pg)?;
            }
            c.execute(
                "UPDATE documents SET blob_refs_known = true WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(pg)?;
        }
    }
}

/// The building blocks on an open PostgreSQL transaction, waited for on
/// the calling thread (the client's futures need no runtime of their own;
/// the connection is driven by this storage's). Writes whose outcome a
/// step does not read are held back and sent together, pipelined on the
/// connection, before the next read and before `COMMIT`: an exchange's
/// documents cost a few round trips, not several each. The documents a
/// transaction locks are read with the lock, in one query.
struct PgTx {
    c: Arc<Client>,
    /// Writes not sent yet, in order.
    deferred: Vec<Deferred>,
    /// This transaction's prepared statements.
    statements: std::collections::HashMap<&'static str, tokio_postgres::Statement>,
    /// Documents read with their locks, until a block asks for them.
    docs: std::collections::HashMap<DocId, Option<StoredDoc>>,
    /// Their attachment references, likewise.
    refs: std::collections::HashMap<DocId, Vec<[u8; 32]>>,
}

/// A held-back write.
enum Deferred {
    /// A statement without parameters (a savepoint's).
    Simple(&'static str),
    /// A statement and its parameters.
    Execute(&'static str, Vec<Owned>),
}

type Res<T> = Result<T, StorageError>;
type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
type Owned = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;

impl PgTx {
    fn new(c: Arc<Client>) -> Self {
        PgTx {
            c,
            deferred: Vec::new(),
            statements: Default::default(),
            docs: Default::default(),
            refs: Default::default(),
        }
    }

    /// Waits for `f` once the held-back writes are sent (their effects
    /// are what `f` must see).
    fn wait<T>(&mut self, f: impl Future<Output = Result<T, tokio_postgres::Error>>) -> Res<T> {
        self.flush()?;
        Ok(futures_executor::block_on(f)?)
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Res<u64> {
        let c = self.c.clone();
        self.wait(c.execute(sql, params))
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Res<Vec<Row>> {
        let c = self.c.clone();
        self.wait(c.query(sql, params))
    }

    fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Res<Option<Row>> {
        let c = self.c.clone();
        self.wait(c.query_opt(sql, params))
    }

    /// Holds a write back until the next read or the commit.
    fn defer(&mut self, sql: &'static str, params: Vec<Owned>) {
        self.deferred.push(Deferred::Execute(sql, params));
    }

    /// Sends the held-back writes at once and waits for them all; the
    /// first failure is the answer (the transaction is then aborted).
    fn flush(&mut self) -> Res<()> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.deferred);
        let mut missing: Vec<&'static str> = pending
            .iter()
            .filter_map(|d| match d {
                Deferred::Execute(sql, _) if !self.statements.contains_key(sql) => Some(*sql),
                _ => None,
            })
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let c = self.c.clone();
        let prepared = futures_executor::block_on(futures_util::future::join_all(
            missing.iter().map(|sql| c.prepare(sql)),
        ));
        for (sql, statement) in missing.into_iter().zip(prepared) {
            self.statements.insert(sql, statement?);
        }
        let params: Vec<Vec<Param<'_>>> = pending
            .iter()
            .map(|d| match d {
                Deferred::Execute(_, p) => p.iter().map(|b| b.as_ref() as Param<'_>).collect(),
                Deferred::Simple(_) => Vec::new(),
            })
            .collect();
        type Sent<'a> =
            std::pin::Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a>>;
        let mut sent: Vec<Sent<'_>> = Vec::with_capacity(pending.len());
        for (d, p) in pending.iter().zip(&params) {
            match d {
                Deferred::Simple(sql) => sent.push(Box::pin(c.batch_execute(sql))),
                Deferred::Execute(sql, _) => {
                    let statement = &self.statements[sql];
                    let c = &c;
                    sent.push(Box::pin(async move {
                        c.execute(statement, p).await.map(|_| ())
                    }));
                }
            }
        }
        // Polled in order, so sent in order; answered in order.
        for outcome in futures_executor::block_on(futures_util::future::join_all(sent)) {
            outcome?;
        }
        Ok(())
    }
}

fn account_of_row(r: &Row) -> Res<Account> {
    to_account(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)
}

fn scope_of(r: &Row, first: usize) -> Res<Scope> {
    Ok(Scope {
        region: r.try_get(first)?,
        owner: r.try_get(first + 1)?,
        applicant_nik_hash: r.try_get(first + 2)?,
        assignee: r.try_get(first + 3)?,
        draft: Draft::from_i64(r.try_get::<_, i16>(first + 4)?.into()),
    })
}

fn hash32(v: Vec<u8>, what: &'static str) -> Res<[u8; 32]> {
    v.try_into().map_err(|_| StorageError::Damaged(what))
}

impl Tx for PgTx {
    fn account(&mut self, id: &str) -> Res<Option<Account>> {
        self.query_opt(
            "SELECT id, role, regions, nik_hash FROM accounts WHERE id = $1 FOR UPDATE",
            &[&id],
        )?
        .map(|r| account_of_row(&r))
        .transpose()
    }

    fn insert_account(&mut self, a: &Account) -> Res<()> {
        let regions =
            serde_json::to_string(&a.regions).map_err(|_| StorageError::Damaged("regions"))?;
        self.execute(
            "INSERT INTO accounts (id, role, regions, nik_hash) VALUES ($1, $2, $3, $4)",
            &[&a.id, &a.role.as_str(), &regions, &a.nik_hash],
        )?;
        Ok(())
    }

    fn set_account_scope(&mut self, id: &str, role: Role, regions: &[String]) -> Res<()> {
        let regions =
            serde_json::to_string(regions).map_err(|_| StorageError::Damaged("regions"))?;
        self.execute(
            "UPDATE accounts SET role = $2, regions = $3 WHERE id = $1",
            &[&id, &role.as_str(), &regions],
        )?;
        Ok(())
    }

    fn link_nik(&mut self, id: &str, nik_hash: &[u8]) -> Res<()> {
        self.execute(
            "UPDATE accounts SET nik_hash = coalesce(nik_hash, $2) WHERE id = $1",
            &[&id, &nik_hash],
        )?;
        Ok(())
    }

    fn insert_enrollment(&mut self, code_hash: &[u8], account: &str, expires_at: i64) -> Res<()> {
        self.execute(
            "INSERT INTO enrollments (code_hash, account, expires_at) VALUES ($1, $2, $3)",
            &[&code_hash, &account, &expires_at],
        )?;
        Ok(())
    }

    fn use_enrollment(&mut self, code_hash: &[u8], now: i64) -> Res<Option<String>> {
        // The row lock of the UPDATE: of two servers redeeming one code at
        // once, the second sees it used.
        Ok(self
            .query_opt(
                "UPDATE enrollments SET used_at = $2
                 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2
                 RETURNING account",
                &[&code_hash, &now],
            )?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    fn insert_device(
        &mut self,
        device: [u8; 16],
        account: &str,
        public_key: [u8; 32],
        now: i64,
    ) -> Res<bool> {
        Ok(self.execute(
            "INSERT INTO devices (id, account, public_key, enrolled_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            &[&device.as_slice(), &account, &public_key.as_slice(), &now],
        )? == 1)
    }

    fn lock_documents(&mut self, ids: &[DocId]) -> Res<()> {
        let mut locks: Vec<i64> = ids.iter().map(doc_key).collect();
        locks.sort_unstable();
        locks.dedup();
        let keys: Vec<&[u8]> = ids.iter().map(|id| id.as_slice()).collect();
        let c = self.c.clone();
        self.flush()?;
        // The locks, then the documents and their references as they are
        // under them: three statements, one round trip.
        let docs_sql = format!("SELECT {DOC_COLUMNS} FROM documents WHERE id = ANY($1)");
        let (locked, docs, refs) = futures_executor::block_on(futures_util::future::join3(
            c.execute(
                "SELECT pg_advisory_xact_lock(k) FROM unnest($1::BIGINT[]) k ORDER BY k",
                &[&locks],
            ),
            c.query(&docs_sql, &[&keys]),
            c.query(
                "SELECT doc, sha256 FROM blob_refs WHERE doc = ANY($1)",
                &[&keys],
            ),
        ));
        locked?;
        for id in ids {
            self.docs.insert(*id, None);
            self.refs.insert(*id, Vec::new());
        }
        for r in docs? {
            let (id, doc) = doc_of(&r)?;
            let id: DocId = id
                .try_into()
                .map_err(|_| StorageError::Damaged("document id"))?;
            self.docs.insert(id, Some(doc));
        }
        for r in refs? {
            let doc: Vec<u8> = r.try_get(0)?;
            let doc: DocId = doc
                .try_into()
                .map_err(|_| StorageError::Damaged("document id"))?;
            let sha = hash32(r.try_get(1)?, "blob reference")?;
            self.refs.entry(doc).or_default().push(sha);
        }
        Ok(())
    }

    fn savepoint(&mut self) -> Res<()> {
        self.deferred.push(Deferred::Simple("SAVEPOINT doc"));
        Ok(())
    }

    fn release_savepoint(&mut self) -> Res<()> {
        self.deferred
            .push(Deferred::Simple("RELEASE SAVEPOINT doc"));
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Res<()> {
        let c = self.c.clone();
        self.wait(c.batch_execute("ROLLBACK TO SAVEPOINT doc; RELEASE SAVEPOINT doc"))
    }

    fn document(&mut self, id: &DocId) -> Res<Option<StoredDoc>> {
        // Read with its lock (once: a second read sees what was written).
        if let Some(doc) = self.docs.remove(id) {
            return Ok(doc);
        }
        self.query_opt(
            &format!("SELECT {DOC_COLUMNS} FROM documents WHERE id = $1"),
            &[&id.as_slice()],
        )?
        .map(|r| Ok(doc_of(&r)?.1))
        .transpose()
    }

    fn document_state(&mut self, id: &DocId) -> Res<Option<DocState>> {
        self.query_opt(
            "SELECT data, heads FROM documents WHERE id = $1",
            &[&id.as_slice()],
        )?
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .transpose()
    }

    fn document_scopes(&mut self, which: &Candidates) -> Res<Vec<(DocId, Scope)>> {
        const COLUMNS: &str =
            "SELECT id, region, owner, applicant_nik_hash, assignee, draft FROM documents";
        let rows = match which {
            Candidates::None => return Ok(Vec::new()),
            Candidates::All => self.query(COLUMNS, &[])?,
            Candidates::Keys(keys) => self.query(
                &format!(
                    "{COLUMNS} WHERE id IN (SELECT l.doc FROM scope_log s JOIN log l ON l.seq = s.seq
                                            WHERE s.key = ANY($1))"
                ),
                &[keys],
            )?,
        };
        rows.iter()
            .map(|r| {
                let id: Vec<u8> = r.try_get(0)?;
                Ok((
                    id.try_into()
                        .map_err(|_| StorageError::Damaged("document id"))?,
                    scope_of(r, 1)?,
                ))
            })
            .collect()
    }

    fn write_document(&mut self, id: &DocId, doc: &StoredDoc, heads: &[u8]) -> Res<()> {
        self.defer(
            "INSERT INTO documents (id, region, owner, applicant_nik_hash, assignee, data, heads,
                                    kind, service, status, updated_at, draft, lat_e6, lon_e6,
                                    submitted_at, definition)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (id) DO UPDATE SET region = $2, owner = $3, applicant_nik_hash = $4,
                assignee = $5, data = $6, heads = $7, kind = $8, service = $9, status = $10,
                updated_at = $11, draft = $12, lat_e6 = $13, lon_e6 = $14,
                submitted_at = $15, definition = $16",
            vec![
                Box::new(id.to_vec()),
                Box::new(doc.scope.region.clone()),
                Box::new(doc.scope.owner.clone()),
                Box::new(doc.scope.applicant_nik_hash.clone()),
                Box::new(doc.scope.assignee.clone()),
                Box::new(doc.data.clone()),
                Box::new(heads.to_vec()),
                Box::new(doc.meta.kind.clone()),
                Box::new(doc.meta.service.clone()),
                Box::new(doc.meta.status.clone()),
                Box::new(doc.meta.updated_at),
                Box::new(doc.scope.draft.as_i64() as i16),
                Box::new(doc.meta.location.map(|l| l.0)),
                Box::new(doc.meta.location.map(|l| l.1)),
                Box::new(doc.meta.submitted_at),
                Box::new(doc.meta.definition.clone()),
            ],
        );
        Ok(())
    }

    fn purge_log(&mut self, id: &DocId) -> Res<()> {
        self.defer(
            "UPDATE log SET data = ''::BYTEA, purged = true WHERE doc = $1",
            vec![Box::new(id.to_vec())],
        );
        Ok(())
    }

    fn append_log(&mut self, entries: &[NewLogEntry]) -> Res<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // Numbered in commit order: the lock is held from here to COMMIT,
        // so a sequence number is never visible before a lower one.
        self.defer(
            "SELECT pg_advisory_xact_lock($1, $2)",
            vec![Box::new(LOCK_SPACE), Box::new(LOCK_LOG)],
        );
        for e in entries {
            self.defer(
                "WITH entry AS (
                     INSERT INTO log (doc, data, heads, device, replaces, audience)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq),
                 doc AS (
                     UPDATE documents SET log_seq = (SELECT seq FROM entry)
                     WHERE id = $1 AND $6::TEXT IS NULL)
                 INSERT INTO scope_log (key, seq)
                 SELECT DISTINCT k, (SELECT seq FROM entry) FROM unnest($7::BIGINT[]) k",
                vec![
                    Box::new(e.doc.to_vec()),
                    Box::new(e.data.clone()),
                    Box::new(e.heads.clone()),
                    Box::new(e.device.to_vec()),
                    Box::new(e.replaces),
                    Box::new(e.audience.clone()),
                    Box::new(e.keys.clone()),
                ],
            );
        }
        Ok(())
    }

    fn delete_receipts(&mut self, id: &DocId) -> Res<()> {
        self.defer(
            "DELETE FROM receipts WHERE doc = $1",
            vec![Box::new(id.to_vec())],
        );
        Ok(())
    }

    fn insert_receipts(&mut self, id: &DocId, changes: &[[u8; 32]], d: &Delivered) -> Res<()> {
        if changes.is_empty() {
            return Ok(());
        }
        // One statement for all of them.
        let changes: Vec<Vec<u8>> = changes.iter().map(|c| c.to_vec()).collect();
        self.defer(
            "INSERT INTO receipts (change, doc, account, device, exchange, at)
             SELECT c, $2, $3, $4, $5, $6 FROM unnest($1::BYTEA[]) c
             ON CONFLICT (change) DO NOTHING",
            vec![
                Box::new(changes),
                Box::new(id.to_vec()),
                Box::new(d.account.clone()),
                Box::new(d.device.map(|d| d.to_vec())),
                Box::new(d.exchange.map(|d| d.to_vec())),
                Box::new(d.at),
            ],
        );
        Ok(())
    }

    fn subscriptions(&mut self) -> Res<Vec<Subscription>> {
        self.flush()?;
        futures_executor::block_on(load_webhooks(&self.c, None))
    }

    fn queue_deliveries(&mut self, deliveries: &[NewDelivery], now: i64) -> Res<()> {
        for d in deliveries {
            self.defer(
                "INSERT INTO deliveries (webhook, event, payload, next_at, created_at)
                 VALUES ($1, $2, $3, $4, $4)",
                vec![
                    Box::new(d.webhook.clone()),
                    Box::new(d.event.clone()),
                    Box::new(d.payload.clone()),
                    Box::new(now),
                ],
            );
        }
        Ok(())
    }

    fn blob_refs(&mut self, doc: &DocId) -> Res<Vec<[u8; 32]>> {
        if let Some(refs) = self.refs.remove(doc) {
            return Ok(refs);
        }
        self.query(
            "SELECT sha256 FROM blob_refs WHERE doc = $1",
            &[&doc.as_slice()],
        )?
        .iter()
        .map(|r| hash32(r.try_get(0)?, "blob reference"))
        .collect()
    }

    fn owns_blob(&mut self, sha256: &[u8; 32], account: &str) -> Res<bool> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM blob_owners WHERE sha256 = $1 AND account = $2",
                &[&sha256.as_slice(), &account],
            )?
            .is_some())
    }

    fn blob_held(&mut self, sha256: &[u8; 32]) -> Res<bool> {
        // Shared lock on the blob's row: a sweep or an erasure deleting it
        // waits for this write, and then sees the new reference.
        Ok(self
            .query_opt(
                "SELECT 1 FROM blobs WHERE sha256 = $1 AND complete FOR SHARE",
                &[&sha256.as_slice()],
            )?
            .is_some())
    }

    fn granting_scopes(&mut self, sha256: &[u8; 32], except: &DocId) -> Res<Vec<Scope>> {
        self.query(
            "SELECT d.region, d.owner, d.applicant_nik_hash, d.assignee, d.draft
             FROM blob_refs r JOIN documents d ON d.id = r.doc
             WHERE r.sha256 = $1 AND r.doc <> $2
               AND (r.added_by IS NULL OR EXISTS (SELECT 1 FROM blob_owners o
                    WHERE o.sha256 = r.sha256 AND o.account = r.added_by))",
            &[&sha256.as_slice(), &except.as_slice()],
        )?
        .iter()
        .map(|r| scope_of(r, 0))
        .collect()
    }

    fn add_blob_ref(&mut self, doc: &DocId, sha256: &[u8; 32], account: &str) -> Res<()> {
        self.defer(
            "INSERT INTO blob_refs (doc, sha256, added_by) VALUES ($1, $2, $3)",
            vec![
                Box::new(doc.to_vec()),
                Box::new(sha256.to_vec()),
                Box::new(account.to_owned()),
            ],
        );
        Ok(())
    }

    fn remove_blob_ref(&mut self, doc: &DocId, sha256: &[u8; 32], now: i64) -> Res<()> {
        self.defer(
            "DELETE FROM blob_refs WHERE doc = $1 AND sha256 = $2",
            vec![Box::new(doc.to_vec()), Box::new(sha256.to_vec())],
        );
        self.defer(
            "UPDATE blobs SET released_at = $2 WHERE sha256 = $1
               AND NOT EXISTS (SELECT 1 FROM blob_refs WHERE sha256 = $1)",
            vec![Box::new(sha256.to_vec()), Box::new(now)],
        );
        Ok(())
    }

    fn mark_refs_known(&mut self, doc: &DocId) -> Res<()> {
        self.defer(
            "UPDATE documents SET blob_refs_known = true WHERE id = $1",
            vec![Box::new(doc.to_vec())],
        );
        Ok(())
    }

    fn give_blob(
        &mut self,
        sha256: &[u8; 32],
        account: &str,
        device: Option<[u8; 16]>,
        now: i64,
    ) -> Res<()> {
        self.defer(
            "INSERT INTO blob_owners (sha256, account, device, uploaded, at)
             VALUES ($1, $2, $3, false, $4) ON CONFLICT DO NOTHING",
            vec![
                Box::new(sha256.to_vec()),
                Box::new(account.to_owned()),
                Box::new(device.map(|d| d.to_vec())),
                Box::new(now),
            ],
        );
        Ok(())
    }

    fn lock_blob(&mut self, sha256: &[u8; 32]) -> Res<()> {
        let mut k = [0u8; 8];
        k.copy_from_slice(&sha256[..8]);
        self.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&LOCK_BLOBS, &(i64::from_be_bytes(k) as i32)],
        )?;
        Ok(())
    }

    fn owned_blob_size(&mut self, sha256: &[u8; 32], account: &str) -> Res<Option<u64>> {
        self.query_opt(
            "SELECT b.size FROM blob_owners o JOIN blobs b ON b.sha256 = o.sha256
             WHERE o.sha256 = $1 AND o.account = $2",
            &[&sha256.as_slice(), &account],
        )?
        .map(|r| Ok(r.try_get::<_, i64>(0)? as u64))
        .transpose()
    }

    fn upload(&mut self, sha256: &[u8; 32], device: [u8; 16]) -> Res<Option<(u64, u64)>> {
        self.query_opt(
            "SELECT size, received FROM blob_uploads WHERE sha256 = $1 AND device = $2",
            &[&sha256.as_slice(), &device.as_slice()],
        )?
        .map(|r| {
            Ok((
                r.try_get::<_, i64>(0)? as u64,
                r.try_get::<_, i64>(1)? as u64,
            ))
        })
        .transpose()
    }

    fn delete_upload(&mut self, sha256: &[u8; 32], device: [u8; 16]) -> Res<()> {
        self.execute(
            "DELETE FROM blob_uploads WHERE sha256 = $1 AND device = $2",
            &[&sha256.as_slice(), &device.as_slice()],
        )?;
        Ok(())
    }

    fn open_uploads(&mut self, device: [u8; 16]) -> Res<(i64, i64)> {
        let c = self.c.clone();
        let r = self.wait(c.query_one(
            "SELECT count(*), coalesce(sum(size), 0)::BIGINT FROM blob_uploads WHERE device = $1",
            &[&device.as_slice()],
        ))?;
        Ok((r.try_get(0)?, r.try_get(1)?))
    }

    fn insert_upload(&mut self, sha256: &[u8; 32], up: &Uploader, size: u64, now: i64) -> Res<()> {
        self.execute(
            "INSERT INTO blob_uploads (sha256, device, account, size, received, touched_at)
             VALUES ($1, $2, $3, $4, 0, $5)",
            &[
                &sha256.as_slice(),
                &up.device.as_slice(),
                &up.account,
                &to_i64(size),
                &now,
            ],
        )?;
        Ok(())
    }

    fn insert_upload_chunk(
        &mut self,
        sha256: &[u8; 32],
        device: [u8; 16],
        pos: u64,
        data: &[u8],
    ) -> Res<()> {
        self.execute(
            "INSERT INTO blob_upload_chunks (sha256, device, pos, data) VALUES ($1, $2, $3, $4)",
            &[&sha256.as_slice(), &device.as_slice(), &to_i64(pos), &data],
        )?;
        Ok(())
    }

    fn set_upload_received(
        &mut self,
        sha256: &[u8; 32],
        device: [u8; 16],
        received: u64,
        now: i64,
    ) -> Res<()> {
        self.execute(
            "UPDATE blob_uploads SET received = $3, touched_at = $4
             WHERE sha256 = $1 AND device = $2",
            &[
                &sha256.as_slice(),
                &device.as_slice(),
                &to_i64(received),
                &now,
            ],
        )?;
        Ok(())
    }

    fn upload_chunks(&mut self, sha256: &[u8; 32], device: [u8; 16]) -> Res<Vec<Vec<u8>>> {
        self.query(
            "SELECT data FROM blob_upload_chunks WHERE sha256 = $1 AND device = $2 ORDER BY pos",
            &[&sha256.as_slice(), &device.as_slice()],
        )?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    fn insert_blob_from_upload(
        &mut self,
        sha256: &[u8; 32],
        device: [u8; 16],
        size: u64,
        now: i64,
    ) -> Res<bool> {
        let new = self.execute(
            "INSERT INTO blobs (sha256, size, received, complete, created_at)
             VALUES ($1, $2, $2, true, $3) ON CONFLICT DO NOTHING",
            &[&sha256.as_slice(), &to_i64(size), &now],
        )? == 1;
        if new {
            self.execute(
                "INSERT INTO blob_chunks (sha256, pos, data)
                 SELECT sha256, pos, data FROM blob_upload_chunks
                 WHERE sha256 = $1 AND device = $2",
                &[&sha256.as_slice(), &device.as_slice()],
            )?;
        }
        Ok(new)
    }

    fn release_blob_at(&mut self, sha256: &[u8; 32], now: i64) -> Res<()> {
        self.execute(
            "UPDATE blobs SET released_at = $2 WHERE sha256 = $1",
            &[&sha256.as_slice(), &now],
        )?;
        Ok(())
    }

    fn own_uploaded_blob(&mut self, sha256: &[u8; 32], up: &Uploader, now: i64) -> Res<()> {
        self.execute(
            "INSERT INTO blob_owners (sha256, account, device, uploaded, at)
             VALUES ($1, $2, $3, true, $4)
             ON CONFLICT (sha256, account) DO UPDATE
             SET device = excluded.device, uploaded = true, at = excluded.at",
            &[&sha256.as_slice(), &up.account, &up.device.as_slice(), &now],
        )?;
        Ok(())
    }

    fn lock_catalog(&mut self) -> Res<()> {
        self.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&LOCK_SPACE, &LOCK_CATALOG],
        )?;
        Ok(())
    }

    fn catalog_rows(&mut self, service: &str) -> Res<Vec<CatalogRow>> {
        self.query(
            "SELECT service, version, body, accept_until, seq, published_seq
             FROM catalog WHERE service = $1 ORDER BY version",
            &[&service],
        )?
        .iter()
        .map(catalog_row)
        .collect()
    }

    fn put_catalog(
        &mut self,
        service: &str,
        version: u32,
        body: &str,
        accept_until: Option<&str>,
        now: i64,
    ) -> Res<()> {
        // One writer at a time across servers: positions have no gaps
        // that a device could skip over.
        self.lock_catalog()?;
        self.execute(
            "INSERT INTO catalog (service, version, body, accept_until, seq, published_seq, published_at)
             VALUES ($1, $2, $3, $4,
                     (SELECT coalesce(max(seq), 0) + 1 FROM catalog),
                     (SELECT coalesce(max(seq), 0) + 1 FROM catalog), $5)
             ON CONFLICT (service, version)
             DO UPDATE SET accept_until = excluded.accept_until, seq = excluded.seq",
            &[&service, &i64::from(version), &body, &accept_until, &now],
        )?;
        Ok(())
    }

    fn audit_tail(&mut self) -> Res<Option<(u64, [u8; 32])>> {
        // One writer at a time across servers: the chain has no forks.
        self.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&LOCK_SPACE, &LOCK_AUDIT],
        )?;
        self.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?
            .map(|r| {
                Ok((
                    r.try_get::<_, i64>(0)? as u64,
                    hash32(r.try_get(1)?, "audit hash")?,
                ))
            })
            .transpose()
    }

    fn insert_audit(&mut self, entries: &[AuditEntry]) -> Res<()> {
        for e in entries {
            let r = &e.record;
            self.defer(
                "INSERT INTO audit (seq, at, account, role, device, action, request, endpoint, prev, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                vec![
                    Box::new(to_i64(e.seq)),
                    Box::new(r.at),
                    Box::new(r.account.clone()),
                    Box::new(r.role.clone()),
                    Box::new(r.device.map(|d| d.to_vec())),
                    Box::new(r.action.clone()),
                    Box::new(r.request.map(|d| d.to_vec())),
                    Box::new(r.endpoint.clone()),
                    Box::new(e.prev.to_vec()),
                    Box::new(e.hash.to_vec()),
                ],
            );
        }
        Ok(())
    }
}

fn catalog_row(r: &Row) -> Res<CatalogRow> {
    Ok(CatalogRow {
        service: r.try_get(0)?,
        version: u32::try_from(r.try_get::<_, i64>(1)?)
            .map_err(|_| StorageError::Damaged("catalog version"))?,
        body: r.try_get(2)?,
        accept_until: r.try_get(3)?,
        seq: r.try_get::<_, i64>(4)?.max(0) as u64,
        published_seq: r.try_get::<_, i64>(5)?.max(0) as u64,
    })
}

impl Drop for PostgresStorage {
    fn drop(&mut self) {
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .idle
            .clear();
        // Dropping a runtime blocks; from inside another runtime that
        // panics. Its connections are closed in the background instead.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Storage for PostgresStorage {
    fn transaction(
        &self,
        step: &mut dyn FnMut(&mut dyn Tx) -> Result<(), ServerError>,
    ) -> Result<(), ServerError> {
        // On an error, dropping `conn` rolls everything back.
        let mut conn = self.conn()?;
        conn.in_transaction = true;
        let mut tx = PgTx::new(conn.client());
        let c = conn.client();
        tx.wait(c.batch_execute("BEGIN"))?;
        step(&mut tx)?;
        // What is still held back goes with the commit.
        tx.deferred.push(Deferred::Simple("COMMIT"));
        tx.flush()?;
        conn.in_transaction = false;
        Ok(())
    }

    fn device(&self, id: [u8; 16]) -> Result<Option<EnrolledDevice>, ServerError> {
        self.run(move |c| async move {
            let row = c
                .query_opt(
                    "SELECT d.public_key, a.id, a.role, a.regions, a.nik_hash,
                            d.revoked_at, d.wipe, d.push_first
                     FROM devices d JOIN accounts a ON a.id = d.account WHERE d.id = $1",
                    &[&id.as_slice()],
                )
                .await
                .map_err(pg)?;
            let Some(r) = row else { return Ok(None) };
            let key: Vec<u8> = r.get(0);
            let public_key: [u8; 32] = key
                .try_into()
                .map_err(|_| ServerError::Storage("damaged device key".into()))?;
            let revoked_at: Option<i64> = r.get(5);
            Ok(Some(EnrolledDevice {
                public_key,
                account: to_account(r.get(1), r.get(2), r.get(3), r.get(4))?,
                revoked: revoked_at.map(|_| Revocation {
                    wipe: r.get(6),
                    push_first: r.get(7),
                }),
            }))
        })
    }

    fn revoke_device(
        &self,
        id: [u8; 16],
        decision: Revocation,
        now: i64,
    ) -> Result<bool, ServerError> {
        self.run(move |c| async move {
            let n = c
                .execute(
                    "UPDATE devices SET revoked_at = coalesce(revoked_at, $2), wipe = $3,
                        push_first = $4 WHERE id = $1",
                    &[&id.as_slice(), &now, &decision.wipe, &decision.push_first],
                )
                .await
                .map_err(pg)?;
            Ok(n == 1)
        })
    }

    fn devices(
        &self,
        account: Option<&str>,
        role: Option<Role>,
    ) -> Result<Vec<DeviceSummary>, ServerError> {
        let account = account.map(str::to_owned);
        let role = role.map(|r| r.as_str().to_owned());
        self.run(move |c| async move {
            let rows = c
                .query(
                    "SELECT d.id, d.account, a.role, d.enrolled_at, d.revoked_at
                     FROM devices d JOIN accounts a ON a.id = d.account
                     WHERE ($1::TEXT IS NULL OR d.account = $1) AND ($2::TEXT IS NULL OR a.role = $2)
                     ORDER BY d.enrolled_at, d.id",
                    &[&account, &role],
                )
                .await
                .map_err(pg)?;
            rows.iter()
                .map(|r| {
                    let id: Vec<u8> = r.get(0);
                    let role: String = r.get(2);
                    Ok(DeviceSummary {
                        id: hex::encode(id),
                        account: r.get(1),
                        role: Role::parse(&role)
                            .ok_or_else(|| ServerError::Storage("damaged role".into()))?,
                        enrolled_at: r.get(3),
                        revoked_at: r.get(4),
                    })
                })
                .collect()
        })
    }

    fn remember_nonce(&self, device: [u8; 16], nonce: &str, now: i64) -> Result<bool, ServerError> {
        let nonce = nonce.to_owned();
        self.run(move |c| async move {
            c.execute("DELETE FROM nonces WHERE expires_at < $1", &[&now])
                .await
                .map_err(pg)?;
            let n = c
                .execute(
                    "INSERT INTO nonces (device, nonce, expires_at) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    &[
                        &device.as_slice(),
                        &nonce,
                        &(now + 2 * SIGNATURE_WINDOW_SECS),
                    ],
                )
                .await
                .map_err(pg)?;
            Ok(n == 1)
        })
    }

    fn document(&self, id: DocId) -> Result<Option<StoredDoc>, ServerError> {
        self.run(move |c| async move { read_doc(&c, &id).await })
    }

    fn heads_at(&self, id: DocId, seq: u64) -> Result<Option<Vec<u8>>, ServerError> {
        self.run(move |c| async move {
            let row = c
                .query_opt(
                    "SELECT heads FROM log WHERE doc = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1",
                    &[&id.as_slice(), &i64::try_from(seq).unwrap_or(i64::MAX)],
                )
                .await
                .map_err(pg)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn receipts(&self, id: DocId) -> Result<Vec<Receipt>, ServerError> {
        self.run(move |c| async move {
            let rows = c
                .query(
                    "SELECT change, account, device, exchange, at FROM receipts
                     WHERE doc = $1 ORDER BY at, change",
                    &[&id.as_slice()],
                )
                .await
                .map_err(pg)?;
            rows.into_iter()
                .map(|r| super::receipt(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect()
        })
    }

    fn log_tag(&self, seq: u64) -> Result<Option<u32>, ServerError> {
        self.run(move |c| async move {
            let row = c
                .query_opt("SELECT heads FROM log WHERE seq = $1", &[&to_i64(seq)])
                .await
                .map_err(pg)?;
            Ok(row.map(|r| super::log_tag(r.get::<_, &[u8]>(0))))
        })
    }

    fn high_cursor(&self, device: [u8; 16]) -> Result<u64, ServerError> {
        self.run(move |c| async move {
            let row = c
                .query_opt(
                    "SELECT high_cursor FROM devices WHERE id = $1",
                    &[&device.as_slice()],
                )
                .await
                .map_err(pg)?;
            Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64)
        })
    }

    fn raise_high_cursor(&self, device: [u8; 16], cursor: u64) -> Result<(), ServerError> {
        self.run(move |c| async move {
            c.execute(
                "UPDATE devices SET high_cursor = GREATEST(high_cursor, $2) WHERE id = $1",
                &[&device.as_slice(), &to_i64(cursor)],
            )
            .await
            .map_err(pg)?;
            Ok(())
        })
    }

    fn given(&self, device: [u8; 16], id: DocId) -> Result<u64, ServerError> {
        self.run(move |c| async move {
            let row = c
                .query_opt(
                    "SELECT seq FROM given WHERE device = $1 AND doc = $2",
                    &[&device.as_slice(), &id.as_slice()],
                )
                .await
                .map_err(pg)?;
            Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64)
        })
    }

    fn raise_given(&self, device: [u8; 16], id: DocId) -> Result<(), ServerError> {
        self.run(move |c| async move {
            c.execute(
                "INSERT INTO given (device, doc, seq)
                 SELECT $1, $2, max(seq) FROM log WHERE doc = $2 HAVING max(seq) IS NOT NULL
                 ON CONFLICT (device, doc) DO UPDATE SET seq = GREATEST(given.seq, excluded.seq)",
                &[&device.as_slice(), &id.as_slice()],
            )
            .await
            .map_err(pg)?;
            Ok(())
        })
    }

    fn catalog_since(&self, seq: u64) -> Result<Vec<CatalogRow>, ServerError> {
        let seq = to_i64(seq);
        self.run(move |c| async move {
            let rows = c
                .query(
                    "SELECT service, version, body, accept_until, seq, published_seq
                     FROM catalog WHERE seq > $1 ORDER BY seq",
                    &[&seq],
                )
                .await
                .map_err(pg)?;
            Ok(rows.iter().map(catalog_row).collect::<Result<_, _>>()?)
        })
    }

    fn log_head(&self) -> Result<u64, ServerError> {
        self.run(move |c| async move {
            let row = c
                .query_one("SELECT coalesce(max(seq), 0) FROM log", &[])
                .await
                .map_err(pg)?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
    }

    fn log_since(&self, cursor: u64, limit: usize) -> Result<Vec<LogEntry>, ServerError> {
        self.run(move |c| async move {
            read_log(
                &c,
                "l.seq > $1 ORDER BY l.seq LIMIT $2",
                &[&to_i64(cursor), &to_i64(limit as u64)],
            )
            .await
        })
    }

    fn log_for(
        &self,
        reader: &Reader,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, ServerError> {
        let reader = reader.clone();
        self.run(move |c| async move {
            let (cursor, limit) = (to_i64(cursor), to_i64(limit as u64));
            match &reader {
                Reader::All { account } => {
                    read_log(
                        &c,
                        "l.seq > $1 AND (l.audience IS NULL OR l.audience = $3)
                         ORDER BY l.seq LIMIT $2",
                        &[&cursor, &limit, account],
                    )
                    .await
                }
                // Each key's first `limit` entries after the cursor, by the
                // index; of those, the first `limit` in log order.
                Reader::Keys(keys) => {
                    read_log(
                        &c,
                        "l.seq IN (SELECT s.seq FROM unnest($3::BIGINT[]) k,
                                   LATERAL (SELECT seq FROM scope_log
                                            WHERE key = k AND seq > $1 ORDER BY seq LIMIT $2) s)
                         ORDER BY l.seq LIMIT $2",
                        &[&cursor, &limit, keys],
                    )
                    .await
                }
            }
        })
    }

    fn legacy_secret(&self) -> Result<Option<Vec<u8>>, ServerError> {
        self.run(move |c| async move {
            Ok(
                c.query_opt("SELECT value FROM meta WHERE key = 'secret'", &[])
                    .await
                    .map_err(pg)?
                    .map(|r| r.get(0)),
            )
        })
    }

    fn forget_legacy_secret(&self) -> Result<(), ServerError> {
        self.run(move |c| async move {
            c.execute("DELETE FROM meta WHERE key = 'secret'", &[])
                .await
                .map_err(pg)?;
            // The dead row version held the key: VACUUM FULL rewrites the
            // (tiny) table without it.
            c.batch_execute("VACUUM FULL meta").await.map_err(pg)
        })
    }

    fn bind_key_check(&self, check: &[u8]) -> Result<bool, ServerError> {
        let check = check.to_vec();
        self.run(move |c| async move {
            // Several servers starting at once agree on the first one.
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('key_check', $1) ON CONFLICT DO NOTHING",
                &[&check],
            )
            .await
            .map_err(pg)?;
            let stored: Vec<u8> = c
                .query_one("SELECT value FROM meta WHERE key = 'key_check'", &[])
                .await
                .map_err(pg)?
                .get(0);
            Ok(stored == check)
        })
    }

    fn webhook_secrets(&self) -> Result<Vec<(String, Vec<u8>)>, ServerError> {
        self.run(move |c| async move {
            Ok(c.query("SELECT id, secret FROM webhooks ORDER BY id", &[])
                .await
                .map_err(pg)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
    }

    fn set_webhook_secret(&self, id: &str, secret: &[u8]) -> Result<(), ServerError> {
        let (id, secret) = (id.to_owned(), secret.to_vec());
        self.run(move |c| async move {
            c.execute(
                "UPDATE webhooks SET secret = $2 WHERE id = $1",
                &[&id, &secret],
            )
            .await
            .map_err(pg)?;
            // Only when a secret stored in clear is sealed (once): the
            // old row version must not stay readable in the table.
            c.batch_execute("VACUUM FULL webhooks").await.map_err(pg)
        })
    }

    fn audit_entries(
        &self,
        filter: &AuditFilter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, ServerError> {
        let filter = filter.clone();
        self.run(move |c| async move {
            let rows = c
                .query(
                    "SELECT seq, at, account, role, device, action, request, endpoint, prev, hash
                     FROM audit
                     WHERE seq > $1 AND ($2::BYTEA IS NULL OR request = $2)
                       AND ($3::TEXT IS NULL OR account = $3) AND ($4::BYTEA IS NULL OR device = $4)
                     ORDER BY seq LIMIT $5",
                    &[
                        &to_i64(after),
                        &filter.request.as_ref().map(|d| d.as_slice()),
                        &filter.account,
                        &filter.device.as_ref().map(|d| d.as_slice()),
                        &to_i64(limit as u64),
                    ],
                )
                .await
                .map_err(pg)?;
            rows.iter()
                .map(|r| {
                    super::audit_entry(
                        r.get(0),
                        r.get(1),
                        r.get(2),
                        r.get(3),
                        r.get(4),
                        r.get(5),
                        r.get(6),
                        r.get(7),
                        r.get(8),
                        r.get(9),
                    )
                })
                .collect()
        })
    }

    fn documents_of_person(&self, nik_hash: &[u8]) -> Result<Vec<DocId>, ServerError> {
        let nik_hash = nik_hash.to_vec();
        self.run(move |c| async move {
            let rows = c
                .query(
                    "SELECT id FROM documents WHERE applicant_nik_hash = $1
                        OR owner IN (SELECT id FROM accounts WHERE nik_hash = $1) ORDER BY id",
                    &[&nik_hash],
                )
                .await
                .map_err(pg)?;
            rows.iter().map(|r| id16(r.get(0), "document id")).collect()
        })
    }

    fn accounts_of_person(&self, nik_hash: &[u8]) -> Result<Vec<String>, ServerError> {
        let nik_hash = nik_hash.to_vec();
        self.run(move |c| async move {
            let rows = c
                .query(
                    "SELECT id FROM accounts WHERE nik_hash = $1 ORDER BY id",
                    &[&nik_hash],
                )
                .await
                .map_err(pg)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn blob_state(&self, sha256: &[u8; 32]) -> Result<Option<BlobState>, ServerError> {
        let sha = sha256.to_vec();
        self.run(move |c| async move {
            let row = c
                .query_opt(
                    "SELECT size, received, complete FROM blobs WHERE sha256 = $1",
                    &[&sha],
                )
                .await
                .map_err(pg)?;
            Ok(row.map(|r| BlobState {
                size: r.get::<_, i64>(0) as u64,
                received: r.get::<_, i64>(1) as u64,
                complete: r.get(2),
            }))
        })
    }

    fn blob_missing(
        &self,
        sha256: &[u8; 32],
        size: u64,
        uploader: &Uploader,
    ) -> Result<Option<u64>, ServerError> {
        let (sha, account, device) = (
            sha256.to_vec(),
            uploader.account.clone(),
            uploader.device.to_vec(),
        );
        self.run(move |c| async move {
            let owns: bool = c
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM blob_owners WHERE sha256 = $1 AND account = $2)",
                    &[&sha, &account],
                )
                .await
                .map_err(pg)?
                .get(0);
            if owns {
                return Ok(None);
            }
            let upload = c
                .query_opt(
                    "SELECT size, received FROM blob_uploads WHERE sha256 = $1 AND device = $2",
                    &[&sha, &device],
                )
                .await
                .map_err(pg)?;
            Ok(Some(match upload {
                Some(r) if r.get::<_, i64>(0) as u64 == size => r.get::<_, i64>(1) as u64,
                _ => 0,
            }))
        })
    }

    fn blob_granted(&self, doc: DocId, sha256: &[u8; 32]) -> Result<bool, ServerError> {
        let sha = sha256.to_vec();
        self.run(move |c| async move {
            Ok(c.query_one(
                "SELECT EXISTS (SELECT 1 FROM blob_refs r WHERE r.doc = $1 AND r.sha256 = $2
                   AND (r.added_by IS NULL OR EXISTS (SELECT 1 FROM blob_owners o
                        WHERE o.sha256 = r.sha256 AND o.account = r.added_by)))",
                &[&doc.as_slice(), &sha],
            )
            .await
            .map_err(pg)?
            .get(0))
        })
    }

    fn erase_blob(&self, sha256: &[u8; 32]) -> Result<bool, ServerError> {
        let sha = sha256.to_vec();
        self.run(move |c| async move {
            c.batch_execute("BEGIN").await.map_err(pg)?;
            let outcome = async {
                // The row locked first (a write adding a reference holds it
                // shared), then whether a request references it, read by a
                // statement of its own that sees every committed reference.
                c.query("SELECT 1 FROM blobs WHERE sha256 = $1 FOR UPDATE", &[&sha])
                    .await
                    .map_err(pg)?;
                let n = c
                    .execute(
                        "WITH gone AS (
                            DELETE FROM blob_uploads WHERE sha256 = $1
                              AND NOT EXISTS (SELECT 1 FROM blob_refs WHERE sha256 = $1))
                         DELETE FROM blobs WHERE sha256 = $1
                           AND NOT EXISTS (SELECT 1 FROM blob_refs WHERE sha256 = $1)",
                        &[&sha],
                    )
                    .await
                    .map_err(pg)?;
                c.batch_execute("COMMIT").await.map_err(pg)?;
                Ok::<_, ServerError>(n == 1)
            }
            .await;
            if outcome.is_err() {
                let _ = c.batch_execute("ROLLBACK").await;
            }
            outcome
        })
    }

    fn sweep_blobs(&self, now: i64, policy: &BlobRetention) -> Result<BlobSweep, ServerError> {
        let (uploads_before, blobs_before) = (
            now.saturating_sub(policy.upload_max_age),
            now.saturating_sub(policy.unreferenced_grace),
        );
        self.run(move |c| async move {
            let uploads = c
                .execute(
                    "DELETE FROM blob_uploads WHERE touched_at < $1",
                    &[&uploads_before],
                )
                .await
                .map_err(pg)?;
            c.batch_execute("BEGIN").await.map_err(pg)?;
            let outcome = async {
                // As in `erase_blob`: candidates locked, then checked again
                // by a statement that sees references committed meanwhile.
                let candidates: Vec<Vec<u8>> = c
                    .query(
                        "SELECT sha256 FROM blobs WHERE coalesce(released_at, created_at) < $1
                           AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.sha256 = blobs.sha256)
                         FOR UPDATE",
                        &[&blobs_before],
                    )
                    .await
                    .map_err(pg)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let blobs = c
                    .execute(
                        "DELETE FROM blobs WHERE sha256 = ANY($1)
                           AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.sha256 = blobs.sha256)",
                        &[&candidates],
                    )
                    .await
                    .map_err(pg)?;
                c.batch_execute("COMMIT").await.map_err(pg)?;
                Ok::<_, ServerError>(blobs)
            }
            .await;
            if outcome.is_err() {
                let _ = c.batch_execute("ROLLBACK").await;
            }
            Ok(BlobSweep {
                uploads,
                blobs: outcome?,
            })
        })
    }

    fn blob_read(&self, sha256: &[u8; 32], offset: u64, len: u64) -> Result<Vec<u8>, ServerError> {
        let sha = sha256.to_vec();
        let end = offset.saturating_add(len).min(i64::MAX as u64);
        self.run(move |c| async move {
            let rows = c
                .query(
                    "SELECT c.pos, c.data FROM blob_chunks c JOIN blobs b ON b.sha256 = c.sha256
                     WHERE c.sha256 = $1 AND b.complete AND c.pos < $3
                       AND c.pos + length(c.data) > $2
                     ORDER BY c.pos",
                    &[&sha, &(offset as i64), &(end as i64)],
                )
                .await
                .map_err(pg)?;
            let mut out = Vec::new();
            for r in rows {
                let at = r.get::<_, i64>(0) as u64;
                let data: Vec<u8> = r.get(1);
                let from = offset.saturating_sub(at) as usize;
                let to = (end.saturating_sub(at) as usize).min(data.len());
                if from < to {
                    out.extend_from_slice(&data[from..to]);
                }
            }
            Ok(out)
        })
    }

    fn release_freed(&self) -> Result<(), ServerError> {
        // Outside a transaction (VACUUM refuses to run in one).
        self.run(move |c| async move { c.batch_execute("VACUUM documents, log").await.map_err(pg) })
    }

    fn add_webhook(&self, sub: &Subscription, secret: &[u8], now: i64) -> Result<(), ServerError> {
        let events =
            serde_json::to_string(&sub.events).map_err(|e| ServerError::Storage(e.to_string()))?;
        let (id, account, url, secret) = (
            sub.id.clone(),
            sub.account.id.clone(),
            sub.url.clone(),
            secret.to_vec(),
        );
        self.run(move |c| async move {
            c.execute(
                "INSERT INTO webhooks (id, account, url, events, secret, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&id, &account, &url, &events, &secret, &now],
            )
            .await
            .map_err(pg)?;
            Ok(())
        })
    }

    fn webhooks(&self, account: Option<&str>) -> Result<Vec<Subscription>, ServerError> {
        let account = account.map(str::to_owned);
        self.run(move |c| async move { Ok(load_webhooks(&c, account).await?) })
    }

    fn delete_webhook(&self, id: &str, account: &str) -> Result<bool, ServerError> {
        let (id, account) = (id.to_owned(), account.to_owned());
        self.run(move |c| async move {
            let n = c
                .execute(
                    "DELETE FROM webhooks WHERE id = $1 AND account = $2",
                    &[&id, &account],
                )
                .await
                .map_err(pg)?;
            Ok(n == 1)
        })
    }

    fn claim_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, ServerError> {
        self.run(move |c| async move {
            // SKIP LOCKED: servers polling at once take different rows.
            let rows = c
                .query(
                    "UPDATE deliveries d SET lease_until = $1 + $2
                     FROM webhooks w
                     WHERE w.id = d.webhook AND d.seq IN (
                        SELECT seq FROM deliveries
                        WHERE delivered_at IS NULL AND NOT failed AND next_at <= $1
                          AND lease_until <= $1
                        ORDER BY next_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING d.seq, w.url, w.secret, d.payload, d.attempts, w.id",
                    &[&now, &lease_ms, &to_i64(limit as u64)],
                )
                .await
                .map_err(pg)?;
            let mut out: Vec<Delivery> = rows
                .iter()
                .map(|r| Delivery {
                    seq: r.get(0),
                    url: r.get(1),
                    secret: r.get(2),
                    payload: r.get(3),
                    attempts: r.get::<_, i32>(4).max(0) as u32,
                    lease_until: now + lease_ms,
                    webhook: r.get(5),
                })
                .collect();
            out.sort_by_key(|d| d.seq);
            Ok(out)
        })
    }

    fn finish_delivery(
        &self,
        seq: i64,
        lease_until: i64,
        outcome: &Outcome,
    ) -> Result<(), ServerError> {
        let outcome = outcome.clone();
        self.run(move |c| async move {
            match outcome {
                Outcome::Delivered => c
                    .execute(
                        "UPDATE deliveries SET delivered_at = $2, attempts = attempts + 1,
                            lease_until = 0 WHERE seq = $1 AND lease_until = $3",
                        &[
                            &seq,
                            &sambung_core::Timestamp::now().as_millis(),
                            &lease_until,
                        ],
                    )
                    .await
                    .map_err(pg)?,
                Outcome::Retry { next_at, error } => c
                    .execute(
                        "UPDATE deliveries SET attempts = attempts + 1, lease_until = 0,
                            last_error = $2, next_at = coalesce($3, next_at),
                            failed = ($3::BIGINT IS NULL)
                         WHERE seq = $1 AND lease_until = $4",
                        &[&seq, &error, &next_at, &lease_until],
                    )
                    .await
                    .map_err(pg)?,
            };
            Ok(())
        })
    }

    fn delivery_stats(&self, webhook: &str) -> Result<DeliveryStats, ServerError> {
        let webhook = webhook.to_owned();
        self.run(move |c| async move {
            let r = c
                .query_one(
                    "SELECT count(delivered_at),
                            count(*) FILTER (WHERE delivered_at IS NULL AND NOT failed),
                            count(*) FILTER (WHERE failed)
                     FROM deliveries WHERE webhook = $1",
                    &[&webhook],
                )
                .await
                .map_err(pg)?;
            let last = c
                .query_opt(
                    "SELECT last_error FROM deliveries
                     WHERE webhook = $1 AND last_error IS NOT NULL ORDER BY seq DESC LIMIT 1",
                    &[&webhook],
                )
                .await
                .map_err(pg)?;
            Ok(DeliveryStats {
                delivered: r.get::<_, i64>(0).max(0) as u64,
                pending: r.get::<_, i64>(1).max(0) as u64,
                failed: r.get::<_, i64>(2).max(0) as u64,
                last_error: last.map(|r| r.get(0)),
            })
        })
    }

    fn queue_depth(&self) -> Result<u64, ServerError> {
        self.run(move |c| async move {
            let r = c
                .query_one(
                    "SELECT count(*) FROM deliveries WHERE delivered_at IS NULL AND NOT failed",
                    &[],
                )
                .await
                .map_err(pg)?;
            Ok(r.get::<_, i64>(0).max(0) as u64)
        })
    }

    fn count_documents(&self, filter: &DocFilter) -> Result<Vec<(String, u64)>, ServerError> {
        let filter = filter.clone();
        self.run(move |c| async move {
            let rows = c
                .query(
                    &format!(
                    "SELECT status, count(*) FROM documents
                     WHERE status NOT IN ('draft', '')
                       AND ($1::TEXT IS NULL OR kind = $1) AND ($2::TEXT IS NULL OR service = $2)
                       AND ($3::TEXT IS NULL OR region = $3 OR left(region, length($3) + 1) = $3 || '.')
                       AND ($4::TEXT IS NULL OR assignee = $4)
                       AND ($5::BIGINT IS NULL OR updated_at >= $5)
                       AND ($6::TEXT IS NULL OR status = $6)
                       AND ($7::BIGINT IS NULL OR submitted_at >= $7)
                       AND ($8::BIGINT IS NULL OR submitted_at < $8)
                       AND ($9::TEXT IS NULL OR definition = $9)
                       AND ($10::TEXT IS NULL OR ({OVERDUE10}))
                     GROUP BY status ORDER BY status"
                    ),
                    &[
                        &filter.kind,
                        &filter.service,
                        &filter.region,
                        &filter.assignee,
                        &filter.updated_since,
                        &filter.status,
                        &filter.submitted_since,
                        &filter.submitted_before,
                        &filter.definition,
                        &filter.overdue,
                    ],
                )
                .await
                .map_err(pg)?;
            rows.iter()
                .map(|r| {
                    let status: String = r.try_get(0).map_err(pg)?;
                    let n: i64 = r.try_get(1).map_err(pg)?;
                    Ok((status, n.max(0) as u64))
                })
                .collect()
        })
    }

    fn list_documents(
        &self,
        filter: &DocFilter,
        after: Option<ListPosition>,
        limit: usize,
    ) -> Result<Vec<DocRow>, ServerError> {
        let filter = filter.clone();
        let (after_at, after_id) = match &after {
            Some((at, id)) => (*at, id.to_vec()),
            None => (i64::MIN, Vec::new()),
        };
        self.run(move |c| async move {
            let rows = c
                .query(
                    &format!(
                        "SELECT {DOC_COLUMNS}, log_seq FROM documents
                         WHERE (log_seq, id) > ($1, $2)
                           AND ($3::TEXT IS NULL OR kind = $3) AND ($4::TEXT IS NULL OR service = $4)
                           AND ($5::TEXT IS NULL OR status = $5)
                           AND ($6::TEXT IS NULL OR region = $6 OR left(region, length($6) + 1) = $6 || '.')
                           AND ($7::TEXT IS NULL OR assignee = $7)
                           AND ($8::BIGINT IS NULL OR updated_at >= $8)
                           AND ($10::BIGINT IS NULL OR submitted_at >= $10)
                           AND ($11::BIGINT IS NULL OR submitted_at < $11)
                           AND ($12::TEXT IS NULL OR definition = $12)
                           AND ($13::TEXT IS NULL OR ({OVERDUE13}))
                         ORDER BY log_seq, id LIMIT $9"
                    ),
                    &[
                        &after_at,
                        &after_id,
                        &filter.kind,
                        &filter.service,
                        &filter.status,
                        &filter.region,
                        &filter.assignee,
                        &filter.updated_since,
                        &to_i64(limit as u64),
                        &filter.submitted_since,
                        &filter.submitted_before,
                        &filter.definition,
                        &filter.overdue,
                    ],
                )
                .await
                .map_err(pg)?;
            rows.iter()
                .map(|r| {
                    let (id, doc) = doc_of(r).map_err(pg)?;
                    Ok(DocRow {
                        id: id16(id, "document id")?,
                        scope: doc.scope,
                        meta: doc.meta,
                        seq: r.try_get(15).map_err(pg)?,
                    })
                })
                .collect()
        })
    }
}
