//! The embedded default backend: one SQLite file, one connection behind a
//! mutex (SQLite serialises writers anyway; a server on SQLite is one
//! process).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sambung_core::lifecycle::Role;
use sambung_core::protocol::{DocId, SIGNATURE_WINDOW_SECS};

use super::records::{AuditEntry, AuditFilter, Delivery, NewDelivery, Outcome, Subscription};
use super::{
    BlobRetention, BlobState, BlobSweep, CatalogRow, Delivered, DeliveryStats, DeviceSummary,
    DocFilter, DocMeta, DocRow, DocState, EnrolledDevice, ListPosition, LogEntry, NewLogEntry,
    Receipt, Revocation, Storage, StorageError, StoredDoc, Tx, Uploader, located, to_account,
    to_i64,
};
use crate::accounts::{Account, Draft, Scope};
use crate::error::ServerError;
use crate::scope_index::{self, Candidates, Reader};

const DOC_COLUMNS: &str = "id, data, region, owner, applicant_nik_hash, assignee, kind, service, status, updated_at, draft, lat_e6, lon_e6, submitted_at, definition";

/// Whether a document row is overdue by the JSON object of cutoffs in the
/// parameter `?{n}` (definition id → Unix ms; `DocFilter::overdue`),
/// written for the listing (`?13`) and the counts (`?10`).
macro_rules! overdue {
    ($n:literal) => {
        concat!(
            "status IN ('submitted', 'received', 'in_review', 'needs_info') ",
            "AND submitted_at < (SELECT value FROM json_each(?",
            $n,
            ") WHERE key = definition)"
        )
    };
}

/// A document row in [`DOC_COLUMNS`] order.
fn doc_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Vec<u8>, StoredDoc)> {
    Ok((
        r.get(0)?,
        StoredDoc {
            data: r.get(1)?,
            scope: Scope {
                region: r.get(2)?,
                owner: r.get(3)?,
                applicant_nik_hash: r.get(4)?,
                assignee: r.get(5)?,
                draft: Draft::from_i64(r.get(10)?),
            },
            meta: DocMeta {
                kind: r.get(6)?,
                service: r.get(7)?,
                status: r.get(8)?,
                updated_at: r.get(9)?,
                location: located(r.get(11)?, r.get(12)?),
                submitted_at: r.get(13)?,
                definition: r.get(14)?,
            },
        },
    ))
}

fn load_webhooks(
    conn: &Connection,
    account: Option<&str>,
) -> Result<Vec<Subscription>, StorageError> {
    let mut st = conn.prepare_cached(
        "SELECT w.id, w.url, w.events, a.id, a.role, a.regions, a.nik_hash
         FROM webhooks w JOIN accounts a ON a.id = w.account
         WHERE ?1 IS NULL OR w.account = ?1 ORDER BY w.created_at, w.id",
    )?;
    let rows = st.query_map([account], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?),
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, url, events, account) = row?;
        out.push(Subscription {
            id,
            url,
            events: serde_json::from_str(&events)
                .map_err(|_| StorageError::Damaged("webhook events"))?,
            account: account_of(account)?,
        });
    }
    Ok(out)
}

fn read_doc(conn: &Connection, id: &DocId) -> Result<Option<StoredDoc>, StorageError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE id = ?1"
        ))?
        .query_row([id.as_slice()], doc_row)
        .optional()?
        .map(|(_, doc)| doc))
}

/// The server's schema, as numbered migrations (the device store's
/// pattern, [`sambung_core::store::apply_migrations`]): append only; a
/// server refuses a database newer than itself.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema. IF NOT EXISTS: databases made before the schema
    // was versioned hold exactly these tables, and adopt version 1.
    r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS accounts (
    id       TEXT PRIMARY KEY,
    role     TEXT NOT NULL,
    regions  TEXT NOT NULL,          -- JSON array of region codes
    nik_hash BLOB
) STRICT;
CREATE TABLE IF NOT EXISTS enrollments (
    code_hash  BLOB PRIMARY KEY,
    account    TEXT NOT NULL REFERENCES accounts (id),
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS devices (
    id          BLOB PRIMARY KEY,    -- the device's Automerge actor id
    account     TEXT NOT NULL REFERENCES accounts (id),
    public_key  BLOB NOT NULL,
    enrolled_at INTEGER NOT NULL,
    revoked_at  INTEGER,
    high_cursor INTEGER NOT NULL DEFAULT 0  -- the highest pull cursor it was given
) STRICT;
CREATE TABLE IF NOT EXISTS nonces (
    device     BLOB NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (device, nonce)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents (
    id                 BLOB PRIMARY KEY,
    region             TEXT NOT NULL,
    owner              TEXT NOT NULL,
    applicant_nik_hash BLOB,
    assignee           TEXT,
    data               BLOB NOT NULL,
    heads              BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    doc    BLOB NOT NULL REFERENCES documents (id),
    data   BLOB NOT NULL,
    heads  BLOB NOT NULL,
    device BLOB NOT NULL
) STRICT;
"#,
    // 2: what the agency decided for a revoked device.
    r#"
ALTER TABLE devices ADD COLUMN wipe INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN push_first INTEGER NOT NULL DEFAULT 0;
"#,
    // 3: what the back office lists and filters by. Documents written
    // before have empty values until their next write.
    r#"
ALTER TABLE documents ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE documents ADD COLUMN service TEXT NOT NULL DEFAULT '';
ALTER TABLE documents ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE documents ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX documents_by_update ON documents (updated_at, id);
"#,
    // 4: the audit trail, append only (see `crate::audit`).
    r#"
CREATE TABLE audit (
    seq      INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    account  TEXT NOT NULL,
    role     TEXT NOT NULL,
    device   BLOB,
    action   TEXT NOT NULL,
    request  BLOB,
    endpoint TEXT NOT NULL,
    prev     BLOB NOT NULL,
    hash     BLOB NOT NULL
) STRICT;
CREATE INDEX audit_by_request ON audit (request, seq);
CREATE INDEX audit_by_account ON audit (account, seq);
CREATE INDEX audit_by_device ON audit (device, seq);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append only'); END;
"#,
    // 5: webhook subscriptions and their durable delivery queue.
    r#"
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    account    TEXT NOT NULL REFERENCES accounts (id),
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,        -- JSON array of event types
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE deliveries (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    lease_until  INTEGER NOT NULL DEFAULT 0,
    delivered_at INTEGER,
    failed       INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE delivered_at IS NULL AND failed = 0;
"#,
    // 6: finding what is held about a person (UU PDP access requests).
    r#"
CREATE INDEX documents_by_applicant ON documents (applicant_nik_hash);
CREATE INDEX documents_by_owner ON documents (owner);
CREATE INDEX accounts_by_nik ON accounts (nik_hash);
"#,
    // 7: erasure (UU PDP): entries that replace a document, and old
    // entries whose data was purged.
    r#"
ALTER TABLE log ADD COLUMN replaces INTEGER NOT NULL DEFAULT 0;
ALTER TABLE log ADD COLUMN purged INTEGER NOT NULL DEFAULT 0;
"#,
    // 8: listings page by the position of a document's latest log entry
    // (numbered in commit order), not by a clock.
    r#"
ALTER TABLE documents ADD COLUMN log_seq INTEGER NOT NULL DEFAULT 0;
UPDATE documents SET log_seq = coalesce((SELECT max(seq) FROM log WHERE log.doc = documents.id), 0);
CREATE INDEX documents_by_log ON documents (log_seq);
"#,
    // 9: attachment bytes by content address (protocol::blobs).
    r#"
CREATE TABLE blobs (
    sha256     BLOB PRIMARY KEY,
    size       INTEGER NOT NULL,
    received   INTEGER NOT NULL,
    complete   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE blob_chunks (
    sha256 BLOB NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    pos    INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (sha256, pos)
) STRICT, WITHOUT ROWID;
"#,
    // 10: who delivered each accepted change (device and signed exchange).
    r#"
CREATE TABLE receipts (
    change   BLOB PRIMARY KEY,
    doc      BLOB NOT NULL,
    account  TEXT NOT NULL,
    device   BLOB,
    exchange BLOB,
    at       INTEGER NOT NULL
) STRICT;
CREATE INDEX receipts_by_doc ON receipts (doc, at);
-- What a device was given of a document (the rules judge its changes
-- against no less).
CREATE INDEX log_by_doc ON log (doc, seq);
"#,
    // 11: the nonce purge (every signed call) finds expired nonces by
    // index instead of scanning the table. Self-contained: an index only.
    r#"
CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces (expires_at);
"#,
    // 12: blobs have owners. An upload is its device's own until its hash
    // is verified (`blob_uploads`); a verified blob's owners are the
    // accounts that uploaded it or were given it through a request they
    // could see (`uploaded` = 0); `blob_refs` holds which documents
    // reference which blobs, and who added each reference (NULL: recorded
    // from a document stored before this migration, which grants the
    // bytes as every reference did then; filled by `backfill_blob_refs`
    // for documents whose `blob_refs_known` is 0). Unfinished blobs of
    // before had no recorded uploader: they are dropped, and their devices
    // upload them again from zero (the devices still hold the bytes).
    r#"
CREATE TABLE blob_uploads (
    sha256     BLOB NOT NULL,
    device     BLOB NOT NULL,
    account    TEXT NOT NULL,
    size       INTEGER NOT NULL,
    received   INTEGER NOT NULL,
    touched_at INTEGER NOT NULL,
    PRIMARY KEY (sha256, device)
) STRICT;
CREATE INDEX blob_uploads_by_age ON blob_uploads (touched_at);
CREATE TABLE blob_upload_chunks (
    sha256 BLOB NOT NULL,
    device BLOB NOT NULL,
    pos    INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (sha256, device, pos),
    FOREIGN KEY (sha256, device) REFERENCES blob_uploads (sha256, device) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE TABLE blob_owners (
    sha256   BLOB NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    account  TEXT NOT NULL,
    device   BLOB,
    uploaded INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (sha256, account)
) STRICT, WITHOUT ROWID;
CREATE TABLE blob_refs (
    doc      BLOB NOT NULL,
    sha256   BLOB NOT NULL,
    added_by TEXT,
    PRIMARY KEY (doc, sha256)
) STRICT, WITHOUT ROWID;
CREATE INDEX blob_refs_by_blob ON blob_refs (sha256);
ALTER TABLE blobs ADD COLUMN released_at INTEGER;
ALTER TABLE documents ADD COLUMN blob_refs_known INTEGER NOT NULL DEFAULT 0;
CREATE INDEX documents_without_blob_refs ON documents (id) WHERE blob_refs_known = 0;
DELETE FROM blobs WHERE complete = 0;
"#,
    // 13: drafts are private to their creator (documents written before
    // by the status they were listed with); what a repair gave a device of
    // a document (its pushes are judged against no less).
    r#"
ALTER TABLE documents ADD COLUMN draft INTEGER NOT NULL DEFAULT 0;
UPDATE documents SET draft = 1 WHERE status = 'draft';
CREATE TABLE given (
    device BLOB NOT NULL,
    doc    BLOB NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (device, doc)
) STRICT, WITHOUT ROWID;
"#,
    // 14: a device's unfinished uploads found by device (its quota is
    // counted at every new upload).
    r#"
CREATE INDEX blob_uploads_by_device ON blob_uploads (device);
"#,
    // 15: the scope index (`crate::scope_index`): log entries by who may
    // see them, and entries meant for one account (what an account change
    // made visible or invisible to it). Entries written before are filed
    // by `backfill_scope_index` under their document's scope of now.
    r#"
CREATE TABLE scope_log (
    key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, seq)
) STRICT, WITHOUT ROWID;
ALTER TABLE log ADD COLUMN audience TEXT;
INSERT INTO meta (key, value) SELECT 'scope_index_pending', X'01' WHERE EXISTS (SELECT 1 FROM log);
"#,
    // 16: the service catalog (`crate::catalog`): each published version
    // as published, its retirement, and the position of its last change
    // (what devices pull as a delta).
    r#"
CREATE TABLE catalog (
    service       TEXT NOT NULL,
    version       INTEGER NOT NULL,
    body          TEXT NOT NULL,
    accept_until  TEXT,
    seq           INTEGER NOT NULL UNIQUE,
    published_seq INTEGER NOT NULL,
    published_at  INTEGER NOT NULL,
    PRIMARY KEY (service, version)
) STRICT;
"#,
    // 17: where a request is about, for the console's map (millionths of
    // a degree); filled as each request is next written.
    r#"
ALTER TABLE documents ADD COLUMN lat_e6 INTEGER;
ALTER TABLE documents ADD COLUMN lon_e6 INTEGER;
"#,
    // 18: when a request was submitted and the definition it follows, for
    // the queue's date filter and overdue list (submission times are
    // filled as each request is next written).
    r#"
ALTER TABLE documents ADD COLUMN submitted_at INTEGER;
ALTER TABLE documents ADD COLUMN definition TEXT NOT NULL DEFAULT '';
UPDATE documents SET definition = kind WHERE kind <> 'service';
"#,
    // 19: the queue's counts by status (and region) read this index, not
    // the rows: 43 ms → 8 ms over 100,000 requests (docs/benchmarks.md).
    r#"
CREATE INDEX documents_by_status ON documents (status, region);
"#,
];

fn catalog_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CatalogRow> {
    Ok(CatalogRow {
        service: r.get(0)?,
        version: r.get(1)?,
        body: r.get(2)?,
        accept_until: r.get(3)?,
        seq: r.get::<_, i64>(4)?.max(0) as u64,
        published_seq: r.get::<_, i64>(5)?.max(0) as u64,
    })
}

/// Records the attachment references of documents stored before they were
/// recorded (`blob_refs_known` = 0), in batches: added by nobody, so they
/// grant the bytes as every reference did then.
fn backfill_blob_refs(conn: &mut Connection) -> Result<(), ServerError> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<(Vec<u8>, Vec<u8>)> = {
            let mut st =
                tx.prepare("SELECT id, data FROM documents WHERE blob_refs_known = 0 LIMIT 100")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        if rows.is_empty() {
            return Ok(());
        }
        for (id, data) in rows {
            let hashes = crate::blobs::hashes_of_stored(&data).unwrap_or_else(|| {
                tracing::warn!("a stored document does not load; its attachments are not recorded");
                Vec::new()
            });
            for h in hashes {
                tx.execute(
                    "INSERT OR IGNORE INTO blob_refs (doc, sha256, added_by) VALUES (?1, ?2, NULL)",
                    params![id, h.as_slice()],
                )?;
            }
            tx.execute(
                "UPDATE documents SET blob_refs_known = 1 WHERE id = ?1",
                [&id],
            )?;
        }
        tx.commit()?;
    }
}

/// Log entries with their documents' scopes, `filter` being the rest of
/// the query after `WHERE` (its parameters in `params`).
fn read_log(
    conn: &Connection,
    filter: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<LogEntry>, ServerError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT l.seq, l.doc, l.data, l.heads, l.device, d.region, d.owner, d.applicant_nik_hash,
                d.assignee, l.replaces, l.purged, d.draft, l.audience IS NOT NULL
         FROM log l JOIN documents d ON d.id = l.doc
         WHERE {filter}"
    ))?;
    let rows = stmt.query_map(params, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, Vec<u8>>(3)?,
            r.get::<_, Vec<u8>>(4)?,
            Scope {
                region: r.get(5)?,
                owner: r.get(6)?,
                applicant_nik_hash: r.get(7)?,
                assignee: r.get(8)?,
                draft: Draft::from_i64(r.get(11)?),
            },
            (
                r.get::<_, bool>(9)?,
                r.get::<_, bool>(10)?,
                r.get::<_, bool>(12)?,
            ),
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, doc, data, heads, device, scope, (replace, purged, for_account)) = row?;
        out.push(LogEntry {
            seq: seq as u64,
            doc: doc_id(doc)?,
            data,
            heads,
            device: device
                .try_into()
                .map_err(|_| ServerError::Storage("damaged device id".into()))?,
            scope,
            replace,
            purged,
            for_account,
        });
    }
    Ok(out)
}

/// Files the log entries written before the scope index under their
/// documents' scopes of now (one transaction: a server stopped halfway
/// starts over).
fn backfill_scope_index(conn: &mut Connection) -> Result<(), ServerError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let pending: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'scope_index_pending')",
        [],
        |r| r.get(0),
    )?;
    if !pending {
        return Ok(());
    }
    let docs: Vec<(Vec<u8>, Scope)> = {
        let mut st = tx.prepare(
            "SELECT id, region, owner, applicant_nik_hash, assignee, draft FROM documents",
        )?;
        st.query_map([], scope_row)?.collect::<Result<_, _>>()?
    };
    for (id, scope) in docs {
        for key in scope_index::doc_keys(&scope) {
            tx.execute(
                "INSERT OR IGNORE INTO scope_log (key, seq) SELECT ?1, seq FROM log WHERE doc = ?2",
                params![key, id],
            )?;
        }
    }
    tx.execute("DELETE FROM meta WHERE key = 'scope_index_pending'", [])?;
    tx.commit()?;
    Ok(())
}

/// `(id, scope)` from `id, region, owner, applicant_nik_hash, assignee,
/// draft`.
fn scope_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Vec<u8>, Scope)> {
    Ok((
        r.get(0)?,
        Scope {
            region: r.get(1)?,
            owner: r.get(2)?,
            applicant_nik_hash: r.get(3)?,
            assignee: r.get(4)?,
            draft: Draft::from_i64(r.get(5)?),
        },
    ))
}

fn doc_id(v: Vec<u8>) -> Result<DocId, ServerError> {
    v.try_into()
        .map_err(|_| ServerError::Storage("damaged document id".into()))
}

/// The embedded default: one SQLite file.
pub struct SqliteStorage {
    conn: Mutex<Connection>,
}

fn role_str(r: Role) -> &'static str {
    r.as_str()
}

fn account_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, Option<Vec<u8>>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

/// An account from its row in [`account_row`] order.
fn account_of(
    (id, role, regions, nik_hash): (String, String, String, Option<Vec<u8>>),
) -> Result<Account, StorageError> {
    to_account(id, role, regions, nik_hash)
}

/// The building blocks on an open SQLite transaction. The transaction
/// holds the database's write lock from its start (`IMMEDIATE`), so the
/// locks other backends take here are already held.
struct SqliteTx<'a> {
    tx: &'a Connection,
}

type Res<T> = Result<T, StorageError>;

impl Tx for SqliteTx<'_> {
    fn account(&mut self, id: &str) -> Res<Option<Account>> {
        self.tx
            .prepare_cached("SELECT id, role, regions, nik_hash FROM accounts WHERE id = ?1")?
            .query_row([id], account_row)
            .optional()?
            .map(account_of)
            .transpose()
    }

    fn insert_account(&mut self, a: &Account) -> Res<()> {
        let regions =
            serde_json::to_string(&a.regions).map_err(|_| StorageError::Damaged("regions"))?;
        self.tx
            .prepare_cached(
                "INSERT INTO accounts (id, role, regions, nik_hash) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![a.id, role_str(a.role), regions, a.nik_hash])?;
        Ok(())
    }

    fn set_account_scope(&mut self, id: &str, role: Role, regions: &[String]) -> Res<()> {
        let regions =
            serde_json::to_string(regions).map_err(|_| StorageError::Damaged("regions"))?;
        self.tx
            .prepare_cached("UPDATE accounts SET role = ?2, regions = ?3 WHERE id = ?1")?
            .execute(params![id, role_str(role), regions])?;
        Ok(())
    }

    fn link_nik(&mut self, id: &str, nik_hash: &[u8]) -> Res<()> {
        self.tx
            .prepare_cached("UPDATE accounts SET nik_hash = coalesce(nik_hash, ?2) WHERE id = ?1")?
            .execute(params![id, nik_hash])?;
        Ok(())
    }

    fn insert_enrollment(&mut self, code_hash: &[u8], account: &str, expires_at: i64) -> Res<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO enrollments (code_hash, account, expires_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![code_hash, account, expires_at])?;
        Ok(())
    }

    fn use_enrollment(&mut self, code_hash: &[u8], now: i64) -> Res<Option<String>> {
        Ok(self
            .tx
            .prepare_cached(
                "UPDATE enrollments SET used_at = ?2
                 WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2
                 RETURNING account",
            )?
            .query_row(params![code_hash, now], |r| r.get(0))
            .optional()?)
    }

    fn insert_device(
        &mut self,
        device: [u8; 16],
        account: &str,
        public_key: [u8; 32],
        now: i64,
    ) -> Res<bool> {
        let n = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO devices (id, account, public_key, enrolled_at)
             VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                device.as_slice(),
                account,
                public_key.as_slice(),
                now
            ])?;
        Ok(n == 1)
    }

    fn lock_documents(&mut self, _ids: &[DocId]) -> Res<()> {
        Ok(())
    }

    fn savepoint(&mut self) -> Res<()> {
        Ok(self.tx.execute_batch("SAVEPOINT doc")?)
    }

    fn release_savepoint(&mut self) -> Res<()> {
        Ok(self.tx.execute_batch("RELEASE doc")?)
    }

    fn rollback_to_savepoint(&mut self) -> Res<()> {
        Ok(self.tx.execute_batch("ROLLBACK TO doc; RELEASE doc")?)
    }

    fn document(&mut self, id: &DocId) -> Res<Option<StoredDoc>> {
        read_doc(self.tx, id)
    }

    fn document_state(&mut self, id: &DocId) -> Res<Option<DocState>> {
        Ok(self
            .tx
            .prepare_cached("SELECT data, heads FROM documents WHERE id = ?1")?
            .query_row([id.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn document_scopes(&mut self, which: &Candidates) -> Res<Vec<(DocId, Scope)>> {
        const COLUMNS: &str =
            "SELECT id, region, owner, applicant_nik_hash, assignee, draft FROM documents";
        let rows: Vec<(Vec<u8>, Scope)> = match which {
            Candidates::None => Vec::new(),
            Candidates::All => {
                let mut st = self.tx.prepare(COLUMNS)?;
                st.query_map([], scope_row)?.collect::<Result<_, _>>()?
            }
            Candidates::Keys(keys) => {
                // Keys are integers: written inline, no text of anyone's.
                let list = keys
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let mut st = self.tx.prepare(&format!(
                    "{COLUMNS} WHERE id IN (SELECT l.doc FROM scope_log s JOIN log l ON l.seq = s.seq
                                            WHERE s.key IN ({list}))"
                ))?;
                st.query_map([], scope_row)?.collect::<Result<_, _>>()?
            }
        };
        rows.into_iter()
            .map(|(id, scope)| {
                Ok((
                    id.try_into()
                        .map_err(|_| StorageError::Damaged("document id"))?,
                    scope,
                ))
            })
            .collect()
    }

    fn write_document(&mut self, id: &DocId, doc: &StoredDoc, heads: &[u8]) -> Res<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO documents (id, region, owner, applicant_nik_hash, assignee, data, heads,
                                        kind, service, status, updated_at, draft, lat_e6, lon_e6,
                                        submitted_at, definition)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT (id) DO UPDATE SET region = ?2, owner = ?3, applicant_nik_hash = ?4,
                    assignee = ?5, data = ?6, heads = ?7, kind = ?8, service = ?9, status = ?10,
                    updated_at = ?11, draft = ?12, lat_e6 = ?13, lon_e6 = ?14,
                    submitted_at = ?15, definition = ?16",
            )?
            .execute(params![
                id.as_slice(),
                doc.scope.region,
                doc.scope.owner,
                doc.scope.applicant_nik_hash,
                doc.scope.assignee,
                doc.data,
                heads,
                doc.meta.kind,
                doc.meta.service,
                doc.meta.status,
                doc.meta.updated_at,
                doc.scope.draft.as_i64(),
                doc.meta.location.map(|l| l.0),
                doc.meta.location.map(|l| l.1),
                doc.meta.submitted_at,
                doc.meta.definition
            ])?;
        Ok(())
    }

    fn purge_log(&mut self, id: &DocId) -> Res<()> {
        self.tx
            .prepare_cached("UPDATE log SET data = X'', purged = 1 WHERE doc = ?1")?
            .execute([id.as_slice()])?;
        Ok(())
    }

    fn append_log(&mut self, entries: &[NewLogEntry]) -> Res<()> {
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO log (doc, data, heads, device, replaces, audience)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut latest = self
            .tx
            .prepare_cached("UPDATE documents SET log_seq = ?2 WHERE id = ?1")?;
        let mut file = self
            .tx
            .prepare_cached("INSERT OR IGNORE INTO scope_log (key, seq) VALUES (?1, ?2)")?;
        for e in entries {
            insert.execute(params![
                e.doc.as_slice(),
                e.data,
                e.heads,
                e.device.as_slice(),
                e.replaces,
                e.audience
            ])?;
            let seq = self.tx.last_insert_rowid();
            if e.audience.is_none() {
                latest.execute(params![e.doc.as_slice(), seq])?;
            }
            for key in &e.keys {
                file.execute(params![key, seq])?;
            }
        }
        Ok(())
    }

    fn delete_receipts(&mut self, id: &DocId) -> Res<()> {
        self.tx
            .execute("DELETE FROM receipts WHERE doc = ?1", [id.as_slice()])?;
        Ok(())
    }

    fn insert_receipts(&mut self, id: &DocId, changes: &[[u8; 32]], d: &Delivered) -> Res<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT OR IGNORE INTO receipts (change, doc, account, device, exchange, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for change in changes {
            st.execute(params![
                change.as_slice(),
                id.as_slice(),
                d.account,
                d.device.as_ref().map(|d| d.as_slice()),
                d.exchange.as_ref().map(|d| d.as_slice()),
                d.at
            ])?;
        }
        Ok(())
    }

    fn subscriptions(&mut self) -> Res<Vec<Subscription>> {
        load_webhooks(self.tx, None)
    }

    fn queue_deliveries(&mut self, deliveries: &[NewDelivery], now: i64) -> Res<()> {
        let mut st = self.tx.prepare_cached(
            "INSERT INTO deliveries (webhook, event, payload, next_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
        )?;
        for d in deliveries {
            st.execute(params![d.webhook, d.event, d.payload, now])?;
        }
        Ok(())
    }

    fn blob_refs(&mut self, doc: &DocId) -> Res<Vec<[u8; 32]>> {
        let mut st = self
            .tx
            .prepare_cached("SELECT sha256 FROM blob_refs WHERE doc = ?1")?;
        let rows: Vec<Vec<u8>> = st
            .query_map([doc.as_slice()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|h| {
                h.try_into()
                    .map_err(|_| StorageError::Damaged("blob reference"))
            })
            .collect()
    }

    fn owns_blob(&mut self, sha256: &[u8; 32], account: &str) -> Res<bool> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM blob_owners WHERE sha256 = ?1 AND account = ?2)",
            )?
            .query_row(params![sha256.as_slice(), account], |r| r.get(0))?)
    }

    fn blob_held(&mut self, sha256: &[u8; 32]) -> Res<bool> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM blobs WHERE sha256 = ?1 AND complete = 1)",
            )?
            .query_row([sha256.as_slice()], |r| r.get(0))?)
    }

    fn granting_scopes(&mut self, sha256: &[u8; 32], except: &DocId) -> Res<Vec<Scope>> {
        let mut st = self.tx.prepare_cached(
            "SELECT d.region, d.owner, d.applicant_nik_hash, d.assignee, d.draft
             FROM blob_refs r JOIN documents d ON d.id = r.doc
             WHERE r.sha256 = ?1 AND r.doc <> ?2
               AND (r.added_by IS NULL OR EXISTS (SELECT 1 FROM blob_owners o
                    WHERE o.sha256 = r.sha256 AND o.account = r.added_by))",
        )?;
        Ok(st
            .query_map(params![sha256.as_slice(), except.as_slice()], |r| {
                Ok(Scope {
                    region: r.get(0)?,
                    owner: r.get(1)?,
                    applicant_nik_hash: r.get(2)?,
                    assignee: r.get(3)?,
                    draft: Draft::from_i64(r.get(4)?),
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    fn add_blob_ref(&mut self, doc: &DocId, sha256: &[u8; 32], account: &str) -> Res<()> {
        self.tx
            .prepare_cached("INSERT INTO blob_refs (doc, sha256, added_by) VALUES (?1, ?2, ?3)")?
            .execute(params![doc.as_slice(), sha256.as_slice(), account])?;
        Ok(())
    }

    fn remove_blob_ref(&mut self, doc: &DocId, sha256: &[u8; 32], now: i64) -> Res<()> {
        self.tx
            .prepare_cached("DELETE FROM blob_refs WHERE doc = ?1 AND sha256 = ?2")?
            .execute(params![doc.as_slice(), sha256.as_slice()])?;
        self.tx
            .prepare_cached(
                "UPDATE blobs SET released_at = ?2 WHERE sha256 = ?1
               AND NOT EXISTS (SELECT 1 FROM blob_refs WHERE sha256 = ?1)",
            )?
            .execute(params![sha256.as_slice(), now])?;
        Ok(())
    }

    fn mark_refs_known(&mut self, doc: &DocId) -> Res<()> {
        self.tx
            .prepare_cached("UPDATE documents SET blob_refs_known = 1 WHERE id = ?1")?
            .execute([doc.as_slice()])?;
        Ok(())
    }

    fn give_blob(
        &mut self,
        sha256: &[u8; 32],
        account: &str,
        device: Option<[u8; 16]>,
        now: i64,
    ) -> Res<()> {
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO blob_owners (sha256, account, device, uploaded, at)
             VALUES (?1, ?2, ?3, 0, ?4)",
            )?
            .execute(params![
                sha256.as_slice(),
                account,
                device.as_ref().map(|d| d.as_slice()),
                now
            ])?;
        Ok(())
    }

    fn lock_blob(&mut self, _sha256: &[u8; 32]) -> Res<()> {
        Ok(())
    }

    fn owned_blob_size(&mut self, sha256: &[u8; 32], account: &str) -> Res<Option<u64>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT b.size FROM blob_owners o JOIN blobs b ON b.sha256 = o.sha256
                 WHERE o.sha256 = ?1 AND o.account = ?2",
            )?
            .query_row(params![sha256.as_slice(), account], |r| r.get::<_, i64>(0))
            .optional()?
            .map(|n| n as u64))
    }

    fn upload(&mut self, sha256: &[u8; 32], device: [u8; 16]) -> Res<Option<(u64, u64)>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT size, received FROM blob_uploads WHERE sha256 = ?1 AND device = ?2",
            )?
            .query_row(params![sha256.as_slice(), device.as_slice()], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .optional()?)
    }

    fn delete_upload(&mut self, sha256: &[u8; 32], device: [u8; 16]) -> Res<()> {
        self.tx
            .prepare_cached("DELETE FROM blob_uploads WHERE sha256 = ?1 AND device = ?2")?
            .execute(params![sha256.as_slice(), device.as_slice()])?;
        Ok(())
    }

    fn open_uploads(&mut self, device: [u8; 16]) -> Res<(i64, i64)> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT count(*), coalesce(sum(size), 0) FROM blob_uploads WHERE device = ?1",
            )?
            .query_row([device.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    fn insert_upload(&mut self, sha256: &[u8; 32], up: &Uploader, size: u64, now: i64) -> Res<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO blob_uploads (sha256, device, account, size, received, touched_at)
             VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            )?
            .execute(params![
                sha256.as_slice(),
                up.device.as_slice(),
                up.account,
                to_i64(size),
                now
            ])?;
        Ok(())
    }

    fn insert_upload_chunk(
        &mut self,
        sha256: &[u8; 32],
        device: [u8; 16],
        pos: u64,
        data: &[u8],
    ) -> Res<()> {
        self.tx.prepare_cached("INSERT INTO blob_upload_chunks (sha256, device, pos, data) VALUES (?1, ?2, ?3, ?4)")?.execute(params![sha256.as_slice(), device.as_slice(), to_i64(pos), data],
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
        self.tx
            .prepare_cached(
                "UPDATE blob_uploads SET received = ?3, touched_at = ?4
             WHERE sha256 = ?1 AND device = ?2",
            )?
            .execute(params![
                sha256.as_slice(),
                device.as_slice(),
                to_i64(received),
                now
            ])?;
        Ok(())
    }

    fn upload_chunks(&mut self, sha256: &[u8; 32], device: [u8; 16]) -> Res<Vec<Vec<u8>>> {
        let mut st = self.tx.prepare(
            "SELECT data FROM blob_upload_chunks WHERE sha256 = ?1 AND device = ?2 ORDER BY pos",
        )?;
        Ok(st
            .query_map(params![sha256.as_slice(), device.as_slice()], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn insert_blob_from_upload(
        &mut self,
        sha256: &[u8; 32],
        device: [u8; 16],
        size: u64,
        now: i64,
    ) -> Res<bool> {
        let new = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO blobs (sha256, size, received, complete, created_at)
             VALUES (?1, ?2, ?2, 1, ?3)",
            )?
            .execute(params![sha256.as_slice(), to_i64(size), now])?
            == 1;
        if new {
            self.tx
                .prepare_cached(
                    "INSERT INTO blob_chunks (sha256, pos, data)
                 SELECT sha256, pos, data FROM blob_upload_chunks
                 WHERE sha256 = ?1 AND device = ?2",
                )?
                .execute(params![sha256.as_slice(), device.as_slice()])?;
        }
        Ok(new)
    }

    fn release_blob_at(&mut self, sha256: &[u8; 32], now: i64) -> Res<()> {
        self.tx
            .prepare_cached("UPDATE blobs SET released_at = ?2 WHERE sha256 = ?1")?
            .execute(params![sha256.as_slice(), now])?;
        Ok(())
    }

    fn own_uploaded_blob(&mut self, sha256: &[u8; 32], up: &Uploader, now: i64) -> Res<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO blob_owners (sha256, account, device, uploaded, at)
             VALUES (?1, ?2, ?3, 1, ?4)
             ON CONFLICT (sha256, account) DO UPDATE
             SET device = excluded.device, uploaded = 1, at = excluded.at",
            )?
            .execute(params![
                sha256.as_slice(),
                up.account,
                up.device.as_slice(),
                now
            ])?;
        Ok(())
    }

    fn lock_catalog(&mut self) -> Res<()> {
        Ok(())
    }

    fn catalog_rows(&mut self, service: &str) -> Res<Vec<CatalogRow>> {
        let mut st = self.tx.prepare_cached(
            "SELECT service, version, body, accept_until, seq, published_seq
             FROM catalog WHERE service = ?1 ORDER BY version",
        )?;
        let rows = st
            .query_map([service], catalog_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn put_catalog(
        &mut self,
        service: &str,
        version: u32,
        body: &str,
        accept_until: Option<&str>,
        now: i64,
    ) -> Res<()> {
        self.tx.execute(
            "INSERT INTO catalog (service, version, body, accept_until, seq, published_seq, published_at)
             VALUES (?1, ?2, ?3, ?4,
                     (SELECT coalesce(max(seq), 0) + 1 FROM catalog),
                     (SELECT coalesce(max(seq), 0) + 1 FROM catalog), ?5)
             ON CONFLICT (service, version)
             DO UPDATE SET accept_until = excluded.accept_until, seq = excluded.seq",
            params![service, version, body, accept_until, now],
        )?;
        Ok(())
    }

    fn audit_tail(&mut self) -> Res<Option<(u64, [u8; 32])>> {
        let last: Option<(i64, Vec<u8>)> = self
            .tx
            .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        last.map(|(seq, hash)| {
            Ok((
                seq as u64,
                hash.try_into()
                    .map_err(|_| StorageError::Damaged("audit hash"))?,
            ))
        })
        .transpose()
    }

    fn insert_audit(&mut self, entries: &[AuditEntry]) -> Res<()> {
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO audit (seq, at, account, role, device, action, request, endpoint, prev, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for e in entries {
            let r = &e.record;
            insert.execute(params![
                to_i64(e.seq),
                r.at,
                r.account,
                r.role,
                r.device.as_ref().map(|d| d.as_slice()),
                r.action,
                r.request.as_ref().map(|d| d.as_slice()),
                r.endpoint,
                e.prev.as_slice(),
                e.hash.as_slice()
            ])?;
        }
        Ok(())
    }
}

impl SqliteStorage {
    /// Opens (creating when missing) the database `server.db` in `dir`.
    pub fn open(dir: &Path) -> Result<Self, ServerError> {
        std::fs::create_dir_all(dir).map_err(|e| ServerError::Storage(e.to_string()))?;
        let mut conn = Connection::open(dir.join("server.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Room for every statement a transaction's building blocks use:
        // prepared once per connection, not once per document.
        conn.set_prepared_statement_cache_capacity(64);
        // Switching a new file to WAL and migrating it need locks that
        // SQLite does not always wait for (its busy handler is skipped to
        // avoid deadlocks), so processes opening one file at once — a
        // server and an `admin` command — retry for a while.
        let mut tries = 0;
        loop {
            match Self::prepare(&mut conn) {
                Err(ServerError::Storage(m)) if m.contains("locked") && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other?,
            }
        }
        backfill_blob_refs(&mut conn)?;
        backfill_scope_index(&mut conn)?;
        Ok(SqliteStorage {
            conn: Mutex::new(conn),
        })
    }

    fn prepare(conn: &mut Connection) -> Result<(), ServerError> {
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Deleted and overwritten rows (an erasure's old history) are
        // zeroed in the file, not left in free pages.
        conn.pragma_update(None, "secure_delete", true)?;
        sambung_core::store::apply_migrations(conn, MIGRATIONS).map_err(|e| match e {
            sambung_core::Error::IncompatibleVersion { found, supported } => ServerError::Config(
                format!(
                    "the database has schema version {found}; this server knows up to {supported}: run a newer server"
                ),
            ),
            other => ServerError::Storage(other.to_string()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Storage for SqliteStorage {
    fn transaction(
        &self,
        step: &mut dyn FnMut(&mut dyn Tx) -> Result<(), ServerError>,
    ) -> Result<(), ServerError> {
        let mut conn = self.lock();
        // IMMEDIATE: the write lock from the start, so that what a step
        // reads stays true until it commits (one writer at a time).
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        step(&mut SqliteTx { tx: &tx })?;
        tx.commit()?;
        Ok(())
    }

    fn device(&self, id: [u8; 16]) -> Result<Option<EnrolledDevice>, ServerError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT d.public_key, a.id, a.role, a.regions, a.nik_hash,
                        d.revoked_at, d.wipe, d.push_first
                 FROM devices d JOIN accounts a ON a.id = d.account
                 WHERE d.id = ?1",
                [id.as_slice()],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
                        r.get::<_, Option<i64>>(5)?,
                        (r.get::<_, bool>(6)?, r.get::<_, bool>(7)?),
                    ))
                },
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((key, account, revoked_at, (wipe, push_first))) => {
                let public_key: [u8; 32] = key
                    .try_into()
                    .map_err(|_| ServerError::Storage("damaged device key".into()))?;
                Ok(Some(EnrolledDevice {
                    public_key,
                    account: account_of(account)?,
                    revoked: revoked_at.map(|_| Revocation { wipe, push_first }),
                }))
            }
        }
    }

    fn revoke_device(
        &self,
        id: [u8; 16],
        decision: Revocation,
        now: i64,
    ) -> Result<bool, ServerError> {
        let n = self.lock().execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, ?2), wipe = ?3, push_first = ?4
             WHERE id = ?1",
            params![id.as_slice(), now, decision.wipe, decision.push_first],
        )?;
        Ok(n == 1)
    }

    fn devices(
        &self,
        account: Option<&str>,
        role: Option<Role>,
    ) -> Result<Vec<DeviceSummary>, ServerError> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT d.id, d.account, a.role, d.enrolled_at, d.revoked_at
             FROM devices d JOIN accounts a ON a.id = d.account
             WHERE (?1 IS NULL OR d.account = ?1) AND (?2 IS NULL OR a.role = ?2)
             ORDER BY d.enrolled_at, d.id",
        )?;
        let rows = st.query_map(params![account, role.map(Role::as_str)], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, account, role, enrolled_at, revoked_at) = row?;
            out.push(DeviceSummary {
                id: hex::encode(id),
                account,
                role: Role::parse(&role)
                    .ok_or_else(|| ServerError::Storage("damaged role".into()))?,
                enrolled_at,
                revoked_at,
            });
        }
        Ok(out)
    }

    fn remember_nonce(&self, device: [u8; 16], nonce: &str, now: i64) -> Result<bool, ServerError> {
        let conn = self.lock();
        conn.execute("DELETE FROM nonces WHERE expires_at < ?1", [now])?;
        let n = conn.execute(
            "INSERT OR IGNORE INTO nonces (device, nonce, expires_at) VALUES (?1, ?2, ?3)",
            params![device.as_slice(), nonce, now + 2 * SIGNATURE_WINDOW_SECS],
        )?;
        Ok(n == 1)
    }

    fn document(&self, id: DocId) -> Result<Option<StoredDoc>, ServerError> {
        Ok(read_doc(&self.lock(), &id)?)
    }

    fn heads_at(&self, id: DocId, seq: u64) -> Result<Option<Vec<u8>>, ServerError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT heads FROM log WHERE doc = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1",
                params![id.as_slice(), i64::try_from(seq).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn receipts(&self, id: DocId) -> Result<Vec<Receipt>, ServerError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(
            "SELECT change, account, device, exchange, at FROM receipts
             WHERE doc = ?1 ORDER BY at, rowid",
        )?;
        let rows = st.query_map([id.as_slice()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (change, account, device, exchange, at) = row?;
            out.push(super::receipt(change, account, device, exchange, at)?);
        }
        Ok(out)
    }

    fn log_tag(&self, seq: u64) -> Result<Option<u32>, ServerError> {
        let heads: Option<Vec<u8>> = self
            .lock()
            .query_row(
                "SELECT heads FROM log WHERE seq = ?1",
                [i64::try_from(seq).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .optional()?;
        Ok(heads.as_deref().map(super::log_tag))
    }

    fn high_cursor(&self, device: [u8; 16]) -> Result<u64, ServerError> {
        let high: Option<i64> = self
            .lock()
            .query_row(
                "SELECT high_cursor FROM devices WHERE id = ?1",
                [device.as_slice()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(high.unwrap_or(0).max(0) as u64)
    }

    fn raise_high_cursor(&self, device: [u8; 16], cursor: u64) -> Result<(), ServerError> {
        self.lock().execute(
            "UPDATE devices SET high_cursor = max(high_cursor, ?2) WHERE id = ?1",
            params![device.as_slice(), i64::try_from(cursor).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }

    fn given(&self, device: [u8; 16], id: DocId) -> Result<u64, ServerError> {
        let seq: Option<i64> = self
            .lock()
            .query_row(
                "SELECT seq FROM given WHERE device = ?1 AND doc = ?2",
                params![device.as_slice(), id.as_slice()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }

    fn raise_given(&self, device: [u8; 16], id: DocId) -> Result<(), ServerError> {
        self.lock().execute(
            "INSERT INTO given (device, doc, seq)
             SELECT ?1, ?2, max(seq) FROM log WHERE doc = ?2 GROUP BY doc
             ON CONFLICT (device, doc) DO UPDATE SET seq = max(seq, excluded.seq)",
            params![device.as_slice(), id.as_slice()],
        )?;
        Ok(())
    }

    fn catalog_since(&self, seq: u64) -> Result<Vec<CatalogRow>, ServerError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(
            "SELECT service, version, body, accept_until, seq, published_seq
             FROM catalog WHERE seq > ?1 ORDER BY seq",
        )?;
        let rows = st
            .query_map([to_i64(seq)], catalog_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn log_head(&self) -> Result<u64, ServerError> {
        let seq: i64 = self
            .lock()
            .query_row("SELECT coalesce(max(seq), 0) FROM log", [], |r| r.get(0))?;
        Ok(seq.max(0) as u64)
    }

    fn log_since(&self, cursor: u64, limit: usize) -> Result<Vec<LogEntry>, ServerError> {
        read_log(
            &self.lock(),
            "l.seq > ?1 ORDER BY l.seq LIMIT ?2",
            &[&to_i64(cursor), &to_i64(limit as u64)],
        )
    }

    fn log_for(
        &self,
        reader: &Reader,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, ServerError> {
        let conn = self.lock();
        match reader {
            Reader::All { account } => read_log(
                &conn,
                "l.seq > ?1 AND (l.audience IS NULL OR l.audience = ?3) ORDER BY l.seq LIMIT ?2",
                &[&to_i64(cursor), &to_i64(limit as u64), account],
            ),
            Reader::Keys(keys) => {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                // Each key's first `limit` entries after the cursor, by
                // the index; of those, the first `limit` in log order.
                let per_key = (0..keys.len())
                    .map(|i| {
                        format!(
                            "SELECT seq FROM (SELECT seq FROM scope_log WHERE key = ?{} AND seq > ?1
                                              ORDER BY seq LIMIT ?2)",
                            i + 3
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" UNION ");
                let (cursor, limit) = (to_i64(cursor), to_i64(limit as u64));
                let mut params: Vec<&dyn rusqlite::ToSql> = vec![&cursor, &limit];
                params.extend(keys.iter().map(|k| k as &dyn rusqlite::ToSql));
                read_log(
                    &conn,
                    &format!("l.seq IN ({per_key}) ORDER BY l.seq LIMIT ?2"),
                    &params,
                )
            }
        }
    }

    fn legacy_secret(&self) -> Result<Option<Vec<u8>>, ServerError> {
        Ok(self
            .lock()
            .query_row("SELECT value FROM meta WHERE key = 'secret'", [], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn forget_legacy_secret(&self) -> Result<(), ServerError> {
        // secure_delete zeroes the row's old bytes in the file; the
        // checkpoint empties the WAL that still held them.
        self.lock()
            .execute("DELETE FROM meta WHERE key = 'secret'", [])?;
        self.release_freed()
    }

    fn bind_key_check(&self, check: &[u8]) -> Result<bool, ServerError> {
        let conn = self.lock();
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('key_check', ?1)",
            [check],
        )?;
        let stored: Vec<u8> =
            conn.query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| {
                r.get(0)
            })?;
        Ok(stored == check)
    }

    fn webhook_secrets(&self) -> Result<Vec<(String, Vec<u8>)>, ServerError> {
        let conn = self.lock();
        let mut st = conn.prepare("SELECT id, secret FROM webhooks ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn set_webhook_secret(&self, id: &str, secret: &[u8]) -> Result<(), ServerError> {
        self.lock().execute(
            "UPDATE webhooks SET secret = ?2 WHERE id = ?1",
            params![id, secret],
        )?;
        Ok(())
    }

    fn audit_entries(
        &self,
        filter: &AuditFilter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, ServerError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(
            "SELECT seq, at, account, role, device, action, request, endpoint, prev, hash FROM audit
             WHERE seq > ?1 AND (?2 IS NULL OR request = ?2) AND (?3 IS NULL OR account = ?3)
               AND (?4 IS NULL OR device = ?4)
             ORDER BY seq LIMIT ?5",
        )?;
        let rows = st.query_map(
            params![
                i64::try_from(after).unwrap_or(i64::MAX),
                filter.request.as_ref().map(|d| d.as_slice()),
                filter.account,
                filter.device.as_ref().map(|d| d.as_slice()),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<Vec<u8>>>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Vec<u8>>(8)?,
                    r.get::<_, Vec<u8>>(9)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at, account, role, device, action, request, endpoint, prev, hash) = row?;
            out.push(super::audit_entry(
                seq, at, account, role, device, action, request, endpoint, prev, hash,
            )?);
        }
        Ok(out)
    }

    fn documents_of_person(&self, nik_hash: &[u8]) -> Result<Vec<DocId>, ServerError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(
            "SELECT id FROM documents WHERE applicant_nik_hash = ?1
                OR owner IN (SELECT id FROM accounts WHERE nik_hash = ?1) ORDER BY id",
        )?;
        let rows = st.query_map([nik_hash], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(
                row?.try_into()
                    .map_err(|_| ServerError::Storage("damaged document id".into()))?,
            );
        }
        Ok(out)
    }

    fn accounts_of_person(&self, nik_hash: &[u8]) -> Result<Vec<String>, ServerError> {
        let conn = self.lock();
        let mut st =
            conn.prepare_cached("SELECT id FROM accounts WHERE nik_hash = ?1 ORDER BY id")?;
        let rows = st.query_map([nik_hash], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn blob_state(&self, sha256: &[u8; 32]) -> Result<Option<BlobState>, ServerError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT size, received, complete FROM blobs WHERE sha256 = ?1",
                [sha256.as_slice()],
                |r| {
                    Ok(BlobState {
                        size: r.get::<_, i64>(0)? as u64,
                        received: r.get::<_, i64>(1)? as u64,
                        complete: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    fn blob_missing(
        &self,
        sha256: &[u8; 32],
        size: u64,
        uploader: &Uploader,
    ) -> Result<Option<u64>, ServerError> {
        let conn = self.lock();
        let owns: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM blob_owners WHERE sha256 = ?1 AND account = ?2)",
            params![sha256.as_slice(), uploader.account],
            |r| r.get(0),
        )?;
        if owns {
            return Ok(None);
        }
        let upload: Option<(i64, i64)> = conn
            .query_row(
                "SELECT size, received FROM blob_uploads WHERE sha256 = ?1 AND device = ?2",
                params![sha256.as_slice(), uploader.device.as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(Some(match upload {
            Some((declared, received)) if declared as u64 == size => received as u64,
            _ => 0,
        }))
    }

    fn blob_granted(&self, doc: DocId, sha256: &[u8; 32]) -> Result<bool, ServerError> {
        Ok(self.lock().query_row(
            "SELECT EXISTS (SELECT 1 FROM blob_refs r WHERE r.doc = ?1 AND r.sha256 = ?2
               AND (r.added_by IS NULL OR EXISTS (SELECT 1 FROM blob_owners o
                    WHERE o.sha256 = r.sha256 AND o.account = r.added_by)))",
            params![doc.as_slice(), sha256.as_slice()],
            |r| r.get(0),
        )?)
    }

    fn erase_blob(&self, sha256: &[u8; 32]) -> Result<bool, ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let referenced: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM blob_refs WHERE sha256 = ?1)",
            [sha256.as_slice()],
            |r| r.get(0),
        )?;
        if referenced {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM blob_uploads WHERE sha256 = ?1",
            [sha256.as_slice()],
        )?;
        let n = tx.execute("DELETE FROM blobs WHERE sha256 = ?1", [sha256.as_slice()])?;
        tx.commit()?;
        Ok(n == 1)
    }

    fn sweep_blobs(&self, now: i64, policy: &BlobRetention) -> Result<BlobSweep, ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let uploads = tx.execute(
            "DELETE FROM blob_uploads WHERE touched_at < ?1",
            [now.saturating_sub(policy.upload_max_age)],
        )?;
        let blobs = tx.execute(
            "DELETE FROM blobs WHERE coalesce(released_at, created_at) < ?1
               AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.sha256 = blobs.sha256)",
            [now.saturating_sub(policy.unreferenced_grace)],
        )?;
        tx.commit()?;
        Ok(BlobSweep {
            uploads: uploads as u64,
            blobs: blobs as u64,
        })
    }

    fn blob_read(&self, sha256: &[u8; 32], offset: u64, len: u64) -> Result<Vec<u8>, ServerError> {
        let conn = self.lock();
        let end = offset.saturating_add(len);
        let mut st = conn.prepare_cached(
            "SELECT c.pos, c.data FROM blob_chunks c JOIN blobs b ON b.sha256 = c.sha256
             WHERE c.sha256 = ?1 AND b.complete = 1 AND c.pos < ?3
               AND c.pos + length(c.data) > ?2
             ORDER BY c.pos",
        )?;
        let rows = st.query_map(
            params![
                sha256.as_slice(),
                offset as i64,
                end.min(i64::MAX as u64) as i64
            ],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (at, data) = row?;
            let from = offset.saturating_sub(at) as usize;
            let to = (end.saturating_sub(at) as usize).min(data.len());
            if from < to {
                out.extend_from_slice(&data[from..to]);
            }
        }
        Ok(out)
    }

    fn release_freed(&self) -> Result<(), ServerError> {
        let _: (i64, i64, i64) =
            self.lock()
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        Ok(())
    }

    fn add_webhook(&self, sub: &Subscription, secret: &[u8], now: i64) -> Result<(), ServerError> {
        let events =
            serde_json::to_string(&sub.events).map_err(|e| ServerError::Storage(e.to_string()))?;
        self.lock().execute(
            "INSERT INTO webhooks (id, account, url, events, secret, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![sub.id, sub.account.id, sub.url, events, secret, now],
        )?;
        Ok(())
    }

    fn webhooks(&self, account: Option<&str>) -> Result<Vec<Subscription>, ServerError> {
        Ok(load_webhooks(&self.lock(), account)?)
    }

    fn delete_webhook(&self, id: &str, account: &str) -> Result<bool, ServerError> {
        let n = self.lock().execute(
            "DELETE FROM webhooks WHERE id = ?1 AND account = ?2",
            params![id, account],
        )?;
        Ok(n == 1)
    }

    fn claim_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let claimed = {
            let mut st = tx.prepare_cached(
                "SELECT d.seq, w.url, w.secret, d.payload, d.attempts, w.id
                 FROM deliveries d JOIN webhooks w ON w.id = d.webhook
                 WHERE d.delivered_at IS NULL AND d.failed = 0 AND d.next_at <= ?1
                   AND d.lease_until <= ?1
                 ORDER BY d.next_at, d.seq LIMIT ?2",
            )?;
            let rows = st.query_map(
                params![now, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(Delivery {
                        seq: r.get(0)?,
                        url: r.get(1)?,
                        secret: r.get(2)?,
                        payload: r.get(3)?,
                        attempts: r.get::<_, i64>(4)?.max(0) as u32,
                        lease_until: now + lease_ms,
                        webhook: r.get(5)?,
                    })
                },
            )?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        for d in &claimed {
            tx.execute(
                "UPDATE deliveries SET lease_until = ?2 WHERE seq = ?1",
                params![d.seq, now + lease_ms],
            )?;
        }
        tx.commit()?;
        Ok(claimed)
    }

    fn finish_delivery(
        &self,
        seq: i64,
        lease_until: i64,
        outcome: &Outcome,
    ) -> Result<(), ServerError> {
        let conn = self.lock();
        match outcome {
            Outcome::Delivered => conn.execute(
                "UPDATE deliveries SET delivered_at = ?2, attempts = attempts + 1, lease_until = 0
                 WHERE seq = ?1 AND lease_until = ?3",
                params![seq, sambung_core::Timestamp::now().as_millis(), lease_until],
            )?,
            Outcome::Retry { next_at, error } => conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, lease_until = 0, last_error = ?2,
                    next_at = coalesce(?3, next_at), failed = (?3 IS NULL)
                 WHERE seq = ?1 AND lease_until = ?4",
                params![seq, error, next_at, lease_until],
            )?,
        };
        Ok(())
    }

    fn delivery_stats(&self, webhook: &str) -> Result<DeliveryStats, ServerError> {
        let conn = self.lock();
        let (delivered, pending, failed): (i64, i64, i64) = conn.query_row(
            "SELECT count(delivered_at),
                    coalesce(sum(delivered_at IS NULL AND failed = 0), 0),
                    coalesce(sum(failed <> 0), 0)
             FROM deliveries WHERE webhook = ?1",
            [webhook],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let last_error = conn
            .query_row(
                "SELECT last_error FROM deliveries WHERE webhook = ?1 AND last_error IS NOT NULL
                 ORDER BY seq DESC LIMIT 1",
                [webhook],
                |r| r.get(0),
            )
            .optional()?;
        Ok(DeliveryStats {
            delivered: delivered.max(0) as u64,
            pending: pending.max(0) as u64,
            failed: failed.max(0) as u64,
            last_error,
        })
    }

    fn queue_depth(&self) -> Result<u64, ServerError> {
        let n: i64 = self.lock().query_row(
            "SELECT count(*) FROM deliveries WHERE delivered_at IS NULL AND failed = 0",
            [],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    fn count_documents(&self, filter: &DocFilter) -> Result<Vec<(String, u64)>, ServerError> {
        const OVERDUE: &str = overdue!("10");
        let conn = self.lock();
        let mut st = conn.prepare_cached(&format!(
            "SELECT status, count(*) FROM documents
             WHERE status NOT IN ('draft', '')
               AND (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR service = ?2)
               AND (?3 IS NULL OR region = ?3 OR substr(region, 1, length(?3) + 1) = ?3 || '.')
               AND (?4 IS NULL OR assignee = ?4) AND (?5 IS NULL OR updated_at >= ?5)
               AND (?6 IS NULL OR status = ?6)
               AND (?7 IS NULL OR submitted_at >= ?7) AND (?8 IS NULL OR submitted_at < ?8)
               AND (?9 IS NULL OR definition = ?9)
               AND (?10 IS NULL OR ({OVERDUE}))
             GROUP BY status ORDER BY status"
        ))?;
        let rows = st.query_map(
            params![
                filter.kind,
                filter.service,
                filter.region,
                filter.assignee,
                filter.updated_since,
                filter.status,
                filter.submitted_since,
                filter.submitted_before,
                filter.definition,
                filter.overdue
            ],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )?;
        rows.map(|r| r.map(|(s, n)| (s, n.max(0) as u64)).map_err(Into::into))
            .collect()
    }

    fn list_documents(
        &self,
        filter: &DocFilter,
        after: Option<ListPosition>,
        limit: usize,
    ) -> Result<Vec<DocRow>, ServerError> {
        const OVERDUE: &str = overdue!("13");
        let conn = self.lock();
        let (after_at, after_id) = match &after {
            Some((at, id)) => (*at, id.to_vec()),
            None => (i64::MIN, Vec::new()),
        };
        let mut st = conn.prepare_cached(&format!(
            "SELECT {DOC_COLUMNS}, log_seq FROM documents
             WHERE (log_seq, id) > (?1, ?2)
               AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR service = ?4)
               AND (?5 IS NULL OR status = ?5)
               AND (?6 IS NULL OR region = ?6 OR substr(region, 1, length(?6) + 1) = ?6 || '.')
               AND (?7 IS NULL OR assignee = ?7) AND (?8 IS NULL OR updated_at >= ?8)
               AND (?10 IS NULL OR submitted_at >= ?10) AND (?11 IS NULL OR submitted_at < ?11)
               AND (?12 IS NULL OR definition = ?12)
               AND (?13 IS NULL OR ({OVERDUE}))
             ORDER BY log_seq, id LIMIT ?9"
        ))?;
        let rows = st.query_map(
            params![
                after_at,
                after_id,
                filter.kind,
                filter.service,
                filter.status,
                filter.region,
                filter.assignee,
                filter.updated_since,
                i64::try_from(limit).unwrap_or(i64::MAX),
                filter.submitted_since,
                filter.submitted_before,
                filter.definition,
                filter.overdue
            ],
            |r| Ok((doc_row(r)?, r.get::<_, i64>(15)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let ((id, doc), seq) = row?;
            out.push(DocRow {
                id: id
                    .try_into()
                    .map_err(|_| ServerError::Storage("damaged document id".into()))?,
                scope: doc.scope,
                meta: doc.meta,
                seq,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_versioned_and_a_newer_database_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStorage::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join("server.db")).unwrap();
        let v: u32 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        match SqliteStorage::open(dir.path()) {
            Err(ServerError::Config(m)) => assert!(m.contains("99"), "{m}"),
            other => panic!("expected a refusal, got {:?}", other.err()),
        }
        let c = Connection::open(dir.path().join("server.db")).unwrap();
        let v: u32 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 99, "untouched");
        // Back at its version, it opens again with its data.
        c.pragma_update(None, "user_version", MIGRATIONS.len() as u32)
            .unwrap();
        drop(c);
        SqliteStorage::open(dir.path())
            .unwrap()
            .bind_key_check(b"check")
            .unwrap();
    }

    #[test]
    fn the_nonce_purge_finds_expired_nonces_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path()).unwrap();
        assert!(storage.remember_nonce([1; 16], "n1", 1000).unwrap());
        assert!(!storage.remember_nonce([1; 16], "n1", 1001).unwrap());
        let plan: Vec<String> = {
            let conn = storage.lock();
            let mut st = conn
                .prepare("EXPLAIN QUERY PLAN DELETE FROM nonces WHERE expires_at < 5")
                .unwrap();
            st.query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert!(
            plan.iter().any(|p| p.contains("nonces_by_expiry")),
            "{plan:?}"
        );
        // Expired nonces are gone: the same nonce is new again later.
        assert!(storage.remember_nonce([1; 16], "n1", 1_000_000).unwrap());
    }

    #[test]
    fn an_old_key_moves_out_of_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path()).unwrap();
        let old = [0x5au8; 32];
        storage
            .lock()
            .execute(
                "INSERT INTO meta (key, value) VALUES ('secret', ?1)",
                [old.as_slice()],
            )
            .unwrap();
        let path = dir.path().join(crate::secrets::DEFAULT_FILE);
        let secrets = crate::secrets::Secrets::open(&path, &storage).unwrap();
        assert_eq!(secrets.nik_key(), &old);
        drop(storage);
        let mut bytes = Vec::new();
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = f.unwrap();
            if f.file_name().to_string_lossy().starts_with("server.db") {
                bytes.extend(std::fs::read(f.path()).unwrap());
            }
        }
        assert!(bytes.len() > 4096);
        assert!(
            !bytes.windows(32).any(|w| w == old),
            "the key's bytes are still in the file"
        );
    }
}
