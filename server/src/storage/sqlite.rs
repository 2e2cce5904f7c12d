//! The embedded default backend: one SQLite file, one connection behind a
//! mutex (SQLite serialises writers anyway; a server on SQLite is one
//! process).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sambung_core::lifecycle::Role;
use sambung_core::protocol::{DocId, SIGNATURE_WINDOW_SECS};

use crate::audit::{AuditEntry, AuditFilter, AuditRecord, chain_hash};
use crate::webhooks::{Delivery, Outcome, Subscription};

use super::{
    BlobState, DeviceSummary, DocFilter, DocMeta, DocRow, DocWrite, EnrolledDevice, ListPosition,
    LogEntry, Receipt, Revocation, Storage, StoredDoc, check_same_account, to_account,
};
use crate::accounts::{Account, Scope};
use crate::error::ServerError;

const DOC_COLUMNS: &str =
    "id, data, region, owner, applicant_nik_hash, assignee, kind, service, status, updated_at";

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
            },
            meta: DocMeta {
                kind: r.get(6)?,
                service: r.get(7)?,
                status: r.get(8)?,
                updated_at: r.get(9)?,
            },
        },
    ))
}

fn load_webhooks(
    conn: &Connection,
    account: Option<&str>,
) -> Result<Vec<Subscription>, ServerError> {
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
                .map_err(|_| ServerError::Storage("damaged webhook events".into()))?,
            account: account_of(account)?,
        });
    }
    Ok(out)
}

fn read_doc(conn: &Connection, id: &DocId) -> Result<Option<StoredDoc>, ServerError> {
    Ok(conn
        .query_row(
            &format!("SELECT {DOC_COLUMNS} FROM documents WHERE id = ?1"),
            [id.as_slice()],
            doc_row,
        )
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
    // 9: who delivered each accepted change (device and signed exchange).
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
];

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
) -> Result<Account, ServerError> {
    to_account(id, role, regions, nik_hash)
}

/// Appends `records` to the audit chain inside `tx`.
fn append_audit_in(
    tx: &rusqlite::Transaction<'_>,
    records: &[AuditRecord],
) -> Result<(), ServerError> {
    let last: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (mut seq, mut prev) = match last {
        Some((seq, hash)) => (
            seq as u64,
            <[u8; 32]>::try_from(hash)
                .map_err(|_| ServerError::Storage("damaged audit hash".into()))?,
        ),
        None => (0, [0u8; 32]),
    };
    {
        let mut insert = tx.prepare_cached(
                "INSERT INTO audit (seq, at, account, role, device, action, request, endpoint, prev, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
        for r in records {
            seq += 1;
            let hash = chain_hash(&prev, seq, r);
            insert.execute(params![
                seq as i64,
                r.at,
                r.account,
                r.role,
                r.device.as_ref().map(|d| d.as_slice()),
                r.action,
                r.request.as_ref().map(|d| d.as_slice()),
                r.endpoint,
                prev.as_slice(),
                hash.as_slice()
            ])?;
            prev = hash;
        }
    }
    Ok(())
}

impl SqliteStorage {
    /// Opens (creating when missing) the database `server.db` in `dir`.
    pub fn open(dir: &Path) -> Result<Self, ServerError> {
        std::fs::create_dir_all(dir).map_err(|e| ServerError::Storage(e.to_string()))?;
        let mut conn = Connection::open(dir.join("server.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
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
    fn add_enrollment(
        &self,
        account: &Account,
        code_hash: &[u8],
        expires_at: i64,
    ) -> Result<(), ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let regions = serde_json::to_string(&account.regions)
            .map_err(|e| ServerError::Storage(e.to_string()))?;
        let existing = tx
            .query_row(
                "SELECT id, role, regions, nik_hash FROM accounts WHERE id = ?1",
                [&account.id],
                account_row,
            )
            .optional()?;
        match existing {
            Some(row) => {
                check_same_account(&account_of(row)?, account)?;
                tx.execute(
                    "UPDATE accounts SET nik_hash = coalesce(?2, nik_hash) WHERE id = ?1",
                    params![account.id, account.nik_hash],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO accounts (id, role, regions, nik_hash) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        account.id,
                        role_str(account.role),
                        regions,
                        account.nik_hash
                    ],
                )?;
            }
        }
        tx.execute(
            "INSERT INTO enrollments (code_hash, account, expires_at) VALUES (?1, ?2, ?3)",
            params![code_hash, account.id, expires_at],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn change_account(
        &self,
        id: &str,
        role: Role,
        regions: &[String],
        now_ms: i64,
    ) -> Result<Option<Account>, ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(row) = tx
            .query_row(
                "SELECT id, role, regions, nik_hash FROM accounts WHERE id = ?1",
                [id],
                account_row,
            )
            .optional()?
        else {
            return Ok(None);
        };
        let before = account_of(row)?;
        let audit = crate::enroll::account_change_record(&before, role, regions, now_ms);
        let regions =
            serde_json::to_string(regions).map_err(|e| ServerError::Storage(e.to_string()))?;
        tx.execute(
            "UPDATE accounts SET role = ?2, regions = ?3 WHERE id = ?1",
            params![id, role_str(role), regions],
        )?;
        append_audit_in(&tx, std::slice::from_ref(&audit))?;
        tx.commit()?;
        Ok(Some(before))
    }

    fn redeem_enrollment(
        &self,
        code_hash: &[u8],
        device: [u8; 16],
        public_key: [u8; 32],
        now: i64,
    ) -> Result<Account, ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let account: Option<String> = tx
            .query_row(
                "SELECT account FROM enrollments WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![code_hash, now],
                |r| r.get(0),
            )
            .optional()?;
        let account = account.ok_or(ServerError::BadEnrollmentCode)?;
        tx.execute(
            "UPDATE enrollments SET used_at = ?2 WHERE code_hash = ?1",
            params![code_hash, now],
        )?;
        let taken: Option<String> = tx
            .query_row(
                "SELECT account FROM devices WHERE id = ?1",
                [device.as_slice()],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(ServerError::BadRequest(
                "this device id is already enrolled".into(),
            ));
        }
        tx.execute(
            "INSERT INTO devices (id, account, public_key, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
            params![device.as_slice(), account, public_key.as_slice(), now],
        )?;
        let row = tx.query_row(
            "SELECT id, role, regions, nik_hash FROM accounts WHERE id = ?1",
            [&account],
            account_row,
        )?;
        tx.commit()?;
        account_of(row)
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

    fn devices(&self, account: Option<&str>) -> Result<Vec<DeviceSummary>, ServerError> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT d.id, d.account, a.role, d.enrolled_at, d.revoked_at
             FROM devices d JOIN accounts a ON a.id = d.account
             WHERE ?1 IS NULL OR d.account = ?1 ORDER BY d.enrolled_at, d.id",
        )?;
        let rows = st.query_map([account], |r| {
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

    fn update_document(
        &self,
        id: DocId,
        f: &mut dyn FnMut(Option<StoredDoc>) -> Result<DocWrite, ServerError>,
    ) -> Result<(), ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = read_doc(&tx, &id)?;
        match f(current)? {
            DocWrite::Unchanged => Ok(()),
            DocWrite::Write {
                doc,
                heads,
                log_data,
                device,
                changes,
                delivery,
                events,
                replace,
            } => {
                if replace {
                    // The old history is gone, and its receipts with it
                    // (they would keep the times of erased notes).
                    tx.execute("DELETE FROM receipts WHERE doc = ?1", [id.as_slice()])?;
                }
                for change in &changes {
                    tx.execute(
                        "INSERT OR IGNORE INTO receipts (change, doc, account, device, exchange, at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            change.as_slice(),
                            id.as_slice(),
                            delivery.account,
                            delivery.device.as_ref().map(|d| d.as_slice()),
                            delivery.exchange.as_ref().map(|d| d.as_slice()),
                            delivery.at
                        ],
                    )?;
                }
                if replace {
                    tx.execute(
                        "UPDATE log SET data = X'', purged = 1 WHERE doc = ?1",
                        [id.as_slice()],
                    )?;
                }
                if !events.is_empty() {
                    let subs = load_webhooks(&tx, None)?;
                    let now = sambung_core::Timestamp::now().as_millis();
                    for d in crate::webhooks::deliveries_for(&subs, &doc.scope, &events) {
                        tx.execute(
                            "INSERT INTO deliveries (webhook, event, payload, next_at, created_at)
                             VALUES (?1, ?2, ?3, ?4, ?4)",
                            params![d.webhook, d.event, d.payload, now],
                        )?;
                    }
                }
                tx.execute(
                    "INSERT INTO documents (id, region, owner, applicant_nik_hash, assignee, data, heads,
                                            kind, service, status, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (id) DO UPDATE SET region = ?2, owner = ?3, applicant_nik_hash = ?4,
                        assignee = ?5, data = ?6, heads = ?7, kind = ?8, service = ?9, status = ?10,
                        updated_at = ?11",
                    params![
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
                        doc.meta.updated_at
                    ],
                )?;
                tx.execute(
                    "INSERT INTO log (doc, data, heads, device, replaces) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id.as_slice(), log_data, heads, device.as_slice(), replace],
                )?;
                tx.execute(
                    "UPDATE documents SET log_seq = last_insert_rowid() WHERE id = ?1",
                    [id.as_slice()],
                )?;
                tx.commit()?;
                Ok(())
            }
        }
    }

    fn document(&self, id: DocId) -> Result<Option<StoredDoc>, ServerError> {
        read_doc(&self.lock(), &id)
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

    fn log_since(&self, cursor: u64, limit: usize) -> Result<Vec<LogEntry>, ServerError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT l.seq, l.doc, l.data, l.heads, l.device, d.region, d.owner, d.applicant_nik_hash,
                    d.assignee, l.replaces, l.purged
             FROM log l JOIN documents d ON d.id = l.doc
             WHERE l.seq > ?1 ORDER BY l.seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![cursor as i64, limit as i64], |r| {
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
                },
                (r.get::<_, bool>(9)?, r.get::<_, bool>(10)?),
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, doc, data, heads, device, scope, (replace, purged)) = row?;
            out.push(LogEntry {
                seq: seq as u64,
                doc: doc
                    .try_into()
                    .map_err(|_| ServerError::Storage("damaged document id".into()))?,
                data,
                heads,
                device: device
                    .try_into()
                    .map_err(|_| ServerError::Storage("damaged device id".into()))?,
                scope,
                replace,
                purged,
            });
        }
        Ok(out)
    }

    fn secret(&self) -> Result<Vec<u8>, ServerError> {
        let conn = self.lock();
        let existing: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE key = 'secret'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(s) = existing {
            return Ok(s);
        }
        let s: [u8; 32] = sambung_core::crypto::random_key_bytes()
            .map_err(|_| ServerError::Storage("no randomness".into()))?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('secret', ?1)",
            [s.as_slice()],
        )?;
        let stored: Vec<u8> =
            conn.query_row("SELECT value FROM meta WHERE key = 'secret'", [], |r| {
                r.get(0)
            })?;
        Ok(stored)
    }

    fn append_audit(&self, records: &[AuditRecord]) -> Result<(), ServerError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        append_audit_in(&tx, records)?;
        tx.commit()?;
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

    fn blob_append(
        &self,
        sha256: &[u8; 32],
        size: u64,
        offset: u64,
        data: &[u8],
        now: i64,
    ) -> Result<BlobState, ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held: Option<(i64, i64, bool)> = tx
            .query_row(
                "SELECT size, received, complete FROM blobs WHERE sha256 = ?1",
                [sha256.as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (declared, received) = match held {
            Some((_, received, true)) => {
                // Whole already: nothing more is taken.
                return Err(ServerError::OffsetMismatch {
                    offset: received as u64,
                });
            }
            Some((declared, received, false)) => (declared as u64, received as u64),
            None => {
                tx.execute(
                    "INSERT INTO blobs (sha256, size, received, created_at) VALUES (?1, ?2, 0, ?3)",
                    params![sha256.as_slice(), size as i64, now],
                )?;
                (size, 0)
            }
        };
        if declared != size {
            return Err(ServerError::BadRequest(
                "upload-length differs from the upload's first chunk".into(),
            ));
        }
        if offset != received {
            return Err(ServerError::OffsetMismatch { offset: received });
        }
        let end = received + data.len() as u64;
        if end > size {
            return Err(ServerError::BadRequest(
                "the chunk goes past upload-length".into(),
            ));
        }
        tx.execute(
            "INSERT INTO blob_chunks (sha256, pos, data) VALUES (?1, ?2, ?3)",
            params![sha256.as_slice(), offset as i64, data],
        )?;
        let mut complete = false;
        if end == size {
            let chunks: Vec<Vec<u8>> = {
                let mut st =
                    tx.prepare("SELECT data FROM blob_chunks WHERE sha256 = ?1 ORDER BY pos")?;
                st.query_map([sha256.as_slice()], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            if !super::hash_matches(sha256, chunks.iter().map(|c| c.as_slice())) {
                tx.execute("DELETE FROM blobs WHERE sha256 = ?1", [sha256.as_slice()])?;
                tx.commit()?;
                return Err(ServerError::HashMismatch);
            }
            complete = true;
        }
        tx.execute(
            "UPDATE blobs SET received = ?2, complete = ?3 WHERE sha256 = ?1",
            params![sha256.as_slice(), end as i64, complete],
        )?;
        tx.commit()?;
        Ok(BlobState {
            size,
            received: end,
            complete,
        })
    }

    fn delete_blob(&self, sha256: &[u8; 32]) -> Result<bool, ServerError> {
        let n = self
            .lock()
            .execute("DELETE FROM blobs WHERE sha256 = ?1", [sha256.as_slice()])?;
        Ok(n == 1)
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
        load_webhooks(&self.lock(), account)
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
                "SELECT d.seq, w.url, w.secret, d.payload, d.attempts
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

    fn queue_depth(&self) -> Result<u64, ServerError> {
        let n: i64 = self.lock().query_row(
            "SELECT count(*) FROM deliveries WHERE delivered_at IS NULL AND failed = 0",
            [],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    fn list_documents(
        &self,
        filter: &DocFilter,
        after: Option<ListPosition>,
        limit: usize,
    ) -> Result<Vec<DocRow>, ServerError> {
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
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| Ok((doc_row(r)?, r.get::<_, i64>(10)?)),
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
        SqliteStorage::open(dir.path()).unwrap().secret().unwrap();
    }
}
