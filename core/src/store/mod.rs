//! The encrypted local store: one SQLite file per device holding every
//! request document, its attachments and its sync state.
//!
//! Every personal value is sealed by [`crate::crypto`] before it reaches
//! SQLite; only the non-personal metadata needed to list and sort stays in
//! plaintext (see "Threat model" in `docs/architecture.md`).

mod attachments;
mod catalog;
mod codes;
mod repair;
mod schema;
mod sync_state;

pub use codes::{CodeMatch, HeldCodeList, MAX_SEARCH_RESULTS};
pub use repair::RepairStep;
pub use sync_state::Enrollment;

pub use attachments::{
    AttachmentInfo, AttachmentUpload, CHUNK_SIZE, DEFAULT_ORIGINAL_RETENTION_DAYS,
    MAX_ATTACHMENT_BYTES, UploadState,
};
pub use schema::{VERSION as SCHEMA_VERSION, apply_migrations};

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use automerge::{ActorId, ChangeHash};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{self, DataKey, KeyProvider, Keys, PBKDF2_ROUNDS, Place, Purpose};
use crate::document::{RequestDoc, decode_heads, encode_heads};
use crate::edits;
use crate::error::Error;
use crate::lifecycle::{Role, Status};
use crate::model::{Kind, Request, RequestContent, RequestId};
use crate::time::Timestamp;

/// File name of the database inside the store's folder.
pub const DB_FILE: &str = "sambung.db";
const CANARY: &[u8] = b"sambung canary v1";

/// The secret that opens a store.
pub enum Secret {
    /// A raw 32-byte key (from a [`KeyProvider`]).
    Key(DataKey),
    /// A passphrase, stretched with PBKDF2-HMAC-SHA256.
    Passphrase(Zeroizing<Vec<u8>>),
}

impl Secret {
    /// The key of a [`KeyProvider`].
    pub fn from_provider(p: &dyn KeyProvider) -> Result<Secret, Error> {
        p.data_key().map(Secret::Key).map_err(Error::KeyProvider)
    }

    /// A passphrase.
    pub fn passphrase(p: impl Into<Vec<u8>>) -> Secret {
        Secret::Passphrase(Zeroizing::new(p.into()))
    }
}

/// Who uses this device: a pseudonymous account id and a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Account id (assigned at enrollment; local until then).
    pub user: String,
    /// The account's role.
    pub role: Role,
}

impl Identity {
    /// This identity as the author of an edit.
    pub fn author(&self) -> crate::edits::Author<'_> {
        crate::edits::Author {
            user: &self.user,
            role: self.role,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct DeviceRecord {
    identity: Identity,
    /// This device's Automerge actor id (random).
    actor: String,
}

/// A row of [`Store::list`]: read from the projection columns, without
/// loading the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct Summary {
    /// Request id.
    pub id: RequestId,
    /// Kind.
    pub kind: Kind,
    /// Current status.
    pub status: Status,
    /// Title (kind and subject).
    pub title: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Whether it has changes the server has not acknowledged.
    pub pending: bool,
    /// Why the server refused its latest changes, if it did (no personal
    /// data: a code and a plain reason).
    pub refusal: Option<String>,
}

/// Filters for [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only requests with unacknowledged changes.
    pub pending_only: bool,
    /// At most this many (newest first).
    pub limit: Option<usize>,
}

/// A document with changes the server has not acknowledged (the outbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Request id.
    pub id: RequestId,
    /// Heads the server last acknowledged (empty: never synced).
    pub acked_heads: Vec<ChangeHash>,
    /// Current heads.
    pub heads: Vec<ChangeHash>,
}

/// The encrypted store. `Send + Sync`: one writer connection behind a lock,
/// and a second connection for reads, which WAL lets run beside the writer.
pub struct Store {
    dir: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    keys: Keys,
    /// The id of the key this handle holds (see `check_key`).
    key_id: Vec<u8>,
    identity: Identity,
    actor: ActorId,
    /// The compiled catalog, built at first use and after a delivery.
    catalog: Mutex<Option<catalog::Held>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// [`Store::check_service`] with the catalog in hand.
fn check_service_with(
    catalog: &crate::catalog::Catalog,
    codes: &dyn crate::catalog::codes::CodeLookup,
    request: &Request,
    for_submit: bool,
) -> Result<(), Error> {
    if !matches!(request.content.details, crate::model::Details::Service(_)) {
        return Ok(());
    }
    let today = Timestamp::now().today_in_indonesia();
    let issues = catalog.check_request(
        request,
        today,
        crate::catalog::Side::Device,
        for_submit,
        codes,
    );
    if issues.is_empty() {
        Ok(())
    } else {
        Err(Error::Form(issues))
    }
}

/// A draft stays on the service and version it was created on; it moves
/// to a newer version only where the publisher's lint proves that version
/// compatible (`catalog::lint::upgrade_blockers`).
fn stays_on_its_version(
    catalog: &crate::catalog::Catalog,
    before: &crate::model::Details,
    after: &crate::model::Details,
) -> Result<(), Error> {
    use crate::model::Details;
    match (before, after) {
        (Details::Service(b), Details::Service(a)) => {
            if a.service != b.service {
                return Err(Error::Forbidden(
                    "a request stays on its service; file a new request for another".into(),
                ));
            }
            if a.version == b.version {
                return Ok(());
            }
            let (Some(old), Some(new)) = (
                catalog.get(&b.service, b.version),
                catalog.get(&a.service, a.version),
            ) else {
                return Err(Error::Forbidden(
                    "this version of the service is not known here; sync first".into(),
                ));
            };
            let blockers =
                crate::catalog::lint::upgrade_blockers(old.definition(), new.definition());
            if a.version < b.version || !blockers.is_empty() {
                return Err(Error::Forbidden(format!(
                    "this request cannot move from version {} to {} of its service: {}",
                    b.version,
                    a.version,
                    if blockers.is_empty() {
                        "versions only go forward".to_owned()
                    } else {
                        blockers.join("; ")
                    }
                )));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock leaves no half-written state: every
    // write runs in a transaction that rolls back on drop.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn configure(conn: &Connection) -> Result<(), Error> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // journal_mode answers with a row; reading it is also the first access
    // to the file, so a non-database file fails here as `Corrupt`.
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // A large write (a code list of 90,000 villages) grows the WAL; after
    // the next checkpoint it shrinks back to this, not staying at its peak
    // on a phone's storage.
    conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
    Ok(())
}

fn place<'a>(table: &'static str, column: &'static str, row: &'a [u8], index: u64) -> Place<'a> {
    Place {
        table,
        column,
        row,
        index,
    }
}

/// A blob column read in place.
fn column_blob<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<&'a [u8], Error> {
    r.get_ref(i)?
        .as_blob()
        .map_err(|_| Error::Corrupt("a stored column has the wrong type"))
}

/// A text column read in place.
fn column_text<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<&'a str, Error> {
    r.get_ref(i)?
        .as_str()
        .map_err(|_| Error::Corrupt("a stored column has the wrong type"))
}

/// A request id as read back from the store.
fn stored_id(bytes: &[u8]) -> Result<[u8; 16], Error> {
    bytes
        .try_into()
        .map_err(|_| Error::Corrupt("a request id has a wrong length"))
}

fn id_bytes(id: &RequestId) -> Result<[u8; 16], Error> {
    id.to_bytes().ok_or(Error::NotFound { what: "request" })
}

struct DocRow {
    rid: i64,
    snapshot_len: i64,
    chunks_len: i64,
    next_chunk: i64,
}

impl Store {
    /// Creates a store in `dir` (created when missing) for `identity`.
    /// A passphrase is stretched with [`PBKDF2_ROUNDS`] rounds.
    ///
    /// ```
    /// use sambung_core::store::{Identity, Secret, Store};
    /// use sambung_core::{crypto::DataKey, lifecycle::Role};
    /// let dir = tempfile::tempdir().unwrap();
    /// let key = DataKey::from_bytes([42; 32]);
    /// let me = Identity { user: "resident-1".into(), role: Role::Resident };
    /// Store::init(dir.path(), &Secret::Key(key.clone()), me).unwrap();
    /// let store = Store::open(dir.path(), &Secret::Key(key)).unwrap();
    /// assert_eq!(store.pending_count().unwrap(), 0);
    /// ```
    pub fn init(dir: &Path, secret: &Secret, identity: Identity) -> Result<Store, Error> {
        Self::init_with_rounds(
            dir,
            secret,
            identity,
            NonZeroU32::new(PBKDF2_ROUNDS).expect("non-zero"),
        )
    }

    /// Like [`Store::init`] with a chosen PBKDF2 round count. Only tests
    /// should go below [`PBKDF2_ROUNDS`].
    pub fn init_with_rounds(
        dir: &Path,
        secret: &Secret,
        identity: Identity,
        rounds: NonZeroU32,
    ) -> Result<Store, Error> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DB_FILE);
        if path.exists() {
            return Err(Error::AlreadyInitialised(dir.to_owned()));
        }
        // The store is built under a temporary name and renamed into place
        // when complete: a crash during init (PBKDF2 takes real time on a
        // phone) leaves no half-made store. A leftover temporary file never
        // held user data.
        let building = dir.join(format!("{DB_FILE}.init"));
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", building.display()));
        }
        let (key, kdf) = new_key(secret, rounds)?;
        let keys = Keys::derive(&key)?;
        // The device's signing key, and its Automerge actor id derived from
        // the public key: the server checks the binding at enrollment, so
        // nobody can enroll under another device's author id.
        let device_key = crate::protocol::DeviceKey::generate()
            .map_err(|_| Error::Crypto("key generation failed"))?;
        let actor = ActorId::from(&crate::protocol::device_id_of(&device_key.public_key())[..]);
        let record = DeviceRecord {
            identity: identity.clone(),
            actor: actor.to_hex_string(),
        };
        {
            let mut conn = Connection::open_with_flags(
                &building,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            schema::migrate(&mut conn)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            Self::write_key_meta(&tx, &keys, kdf)?;
            let device = serde_json::to_vec(&record).map_err(|_| Error::Crypto("device record"))?;
            let sealed = keys.seal(Purpose::Records, &place("meta", "device", b"", 0), &device)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('device', ?1)",
                [sealed],
            )?;
            let sealed_key = keys.seal(
                Purpose::Records,
                &place("meta", "device_key", b"", 0),
                device_key.pkcs8(),
            )?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('device_key', ?1)",
                [sealed_key],
            )?;
            tx.commit()?;
            // Rollback journal mode here: one file to rename, nothing else.
        }
        std::fs::rename(&building, &path)?;
        Self::open(dir, secret)
    }

    fn write_key_meta(tx: &Transaction<'_>, keys: &Keys, kdf: KdfParams) -> Result<(), Error> {
        tx.execute(
            "DELETE FROM meta WHERE key IN ('kdf', 'salt', 'rounds', 'canary', 'key_id')",
            [],
        )?;
        let put = |k: &str, v: &[u8]| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![k, v],
            )
        };
        match kdf {
            None => {
                put("kdf", b"raw")?;
            }
            Some((salt, rounds)) => {
                put("kdf", b"pbkdf2-hmac-sha256")?;
                put("salt", &salt)?;
                put("rounds", &rounds.get().to_be_bytes())?;
            }
        }
        // A random id per key: every handle checks it before writing, so a
        // handle opened before a rekey elsewhere cannot write under the old key.
        put("key_id", &crypto::random_bytes::<16>()?)?;
        put(
            "canary",
            &keys.seal(Purpose::Records, &place("meta", "canary", b"", 0), CANARY)?,
        )?;
        Ok(())
    }

    /// Whether a store exists in `dir`.
    pub fn exists(dir: &Path) -> bool {
        dir.join(DB_FILE).is_file()
    }

    fn open_file(dir: &Path, flags: OpenFlags) -> Result<Connection, Error> {
        let path = dir.join(DB_FILE);
        if !path.is_file() {
            return Err(Error::NotInitialised(dir.to_owned()));
        }
        Ok(Connection::open_with_flags(
            &path,
            flags | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?)
    }

    /// Opens the store in `dir`. A wrong key or passphrase is
    /// [`Error::WrongKey`]; a damaged file is [`Error::Corrupt`] and is left
    /// in place; a file from a newer app is [`Error::IncompatibleVersion`].
    pub fn open(dir: &Path, secret: &Secret) -> Result<Store, Error> {
        let mut writer = Self::open_file(dir, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        configure(&writer)?;
        // The key is proven before anything is written (migrations included).
        match schema::version(&writer)? {
            0 => return Err(Error::Corrupt("the store was never completed")),
            v if v > schema::VERSION => {
                return Err(Error::IncompatibleVersion {
                    found: v,
                    supported: schema::VERSION,
                });
            }
            _ => {}
        }
        let meta = |k: &str| -> Result<Option<Vec<u8>>, Error> {
            Ok(writer
                .query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()?)
        };
        let kdf = meta("kdf")?.ok_or(Error::Corrupt("the key record is missing"))?;
        let key = match (kdf.as_slice(), secret) {
            (b"raw", Secret::Key(k)) => k.clone(),
            (b"pbkdf2-hmac-sha256", Secret::Passphrase(p)) => {
                let salt = meta("salt")?.ok_or(Error::Corrupt("the key salt is missing"))?;
                let rounds = meta("rounds")?
                    .and_then(|r| <[u8; 4]>::try_from(r.as_slice()).ok())
                    .and_then(|r| NonZeroU32::new(u32::from_be_bytes(r)))
                    .ok_or(Error::Corrupt("the key record is damaged"))?;
                DataKey::from_passphrase(p, &salt, rounds)
            }
            // A passphrase for a keystore-protected store, or the reverse.
            (b"raw" | b"pbkdf2-hmac-sha256", _) => return Err(Error::WrongKey),
            _ => return Err(Error::Corrupt("unknown key derivation")),
        };
        let keys = Keys::derive(&key)?;
        let canary = meta("canary")?.ok_or(Error::Corrupt("the key check value is missing"))?;
        match keys.open(Purpose::Records, &place("meta", "canary", b"", 0), &canary) {
            Ok(v) if v.as_slice() == CANARY => {}
            _ => return Err(Error::WrongKey),
        }
        let device = meta("device")?.ok_or(Error::Corrupt("the device record is missing"))?;
        let device = keys
            .open(Purpose::Records, &place("meta", "device", b"", 0), &device)
            .map_err(|_| Error::Corrupt("the device record failed authentication"))?;
        let record: DeviceRecord = serde_json::from_slice(&device)
            .map_err(|_| Error::Corrupt("the device record is damaged"))?;
        let actor = hex::decode(&record.actor)
            .map(|b| ActorId::from(b.as_slice()))
            .map_err(|_| Error::Corrupt("the device record is damaged"))?;
        let key_id = meta("key_id")?.ok_or(Error::Corrupt("the key record is damaged"))?;
        schema::migrate(&mut writer)?;
        let reader = Self::open_file(dir, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        reader.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(Store {
            dir: dir.to_owned(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            keys,
            key_id,
            identity: record.identity,
            actor,
            catalog: Mutex::new(None),
        })
    }

    /// The device's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The folder of the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fails when another handle re-keyed the store after this one opened
    /// it: this handle's keys would write values nobody can read.
    fn check_key(&self, conn: &Connection) -> Result<(), Error> {
        let current: Vec<u8> = conn
            .prepare_cached("SELECT value FROM meta WHERE key = 'key_id'")?
            .query_row([], |r| r.get(0))?;
        if current == self.key_id {
            Ok(())
        } else {
            Err(Error::KeyChanged)
        }
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer connection.
    fn write<R>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<R, Error>) -> Result<R, Error> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.check_key(&tx)?;
        let r = f(&tx)?;
        tx.commit()?;
        Ok(r)
    }

    /// Runs `f` in one read transaction on the reader connection, so that
    /// every row it reads comes from the same state of the file.
    fn read<R>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<R, Error>) -> Result<R, Error> {
        let mut conn = lock(&self.reader);
        let tx = conn.transaction()?;
        self.check_key(&tx)?;
        f(&tx)
    }

    // ---- requests -------------------------------------------------------

    /// Creates a draft from `content` after validating it; returns its id.
    /// Invalid content is [`Error::Validation`] with every problem, and
    /// nothing is stored.
    pub fn create(&self, mut content: RequestContent) -> Result<RequestId, Error> {
        content.normalise();
        let now = Timestamp::now();
        let report = content.validate(now.today_in_indonesia());
        if !report.is_ok() {
            return Err(Error::Validation(report));
        }
        let request = Request::draft(content, &self.identity.user, self.identity.role, now);
        self.check_service(&request, false)?;
        let subject = self.catalog()?.subject(&request);
        crate::rules::check(None, &request, self.identity.author(), subject)
            .map_err(Error::from)?;
        let mut doc = RequestDoc::new(&request, self.actor.clone())?;
        let id = request.id.clone();
        self.write(|tx| self.insert_doc(tx, &request, &mut doc))?;
        tracing::info!(kind = request.kind().as_str(), "request created");
        Ok(id)
    }

    fn insert_doc(
        &self,
        tx: &Transaction<'_>,
        request: &Request,
        doc: &mut RequestDoc,
    ) -> Result<(), Error> {
        let idb = id_bytes(&request.id)?;
        let snapshot = doc.save();
        let sealed = self.seal_snapshot(&idb, &snapshot)?;
        let title = self.seal_title(&idb, request)?;
        tx.execute(
            "INSERT INTO requests (id, kind, status, created_at, updated_at, title,
                heads, acked_heads, snapshot_len, chunks_len, next_chunk)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, 0, 0)",
            params![
                idb,
                request.kind().as_str(),
                request.status().as_str(),
                request.created_at.0,
                request.updated_at().0,
                title,
                encode_heads(&doc.heads()),
                snapshot.len() as i64,
            ],
        )?;
        let rid = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO snapshots (request, data) VALUES (?1, ?2)",
            params![rid, sealed],
        )?;
        write_lookups(&self.keys, tx, rid, request)
    }

    fn seal_title(&self, idb: &[u8], request: &Request) -> Result<Vec<u8>, Error> {
        self.keys.seal(
            Purpose::Records,
            &place("requests", "title", idb, 0),
            request.title().as_bytes(),
        )
    }

    fn seal_snapshot(&self, idb: &[u8], snapshot: &[u8]) -> Result<Vec<u8>, Error> {
        self.keys.seal(
            Purpose::Records,
            &place("snapshots", "data", idb, 0),
            snapshot,
        )
    }

    /// Copies the WAL into the database and empties it, so that rows the
    /// last writes removed leave no copy behind in the `-wal` file.
    fn truncate_wal(&self) -> Result<(), Error> {
        let _: (i64, i64, i64) =
            lock(&self.writer).query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        Ok(())
    }

    fn load_doc(&self, conn: &Connection, idb: &[u8; 16]) -> Result<(RequestDoc, DocRow), Error> {
        let row = conn
            .prepare_cached(
                "SELECT s.data, r.rid, r.snapshot_len, r.chunks_len, r.next_chunk
                 FROM requests r JOIN snapshots s ON s.request = r.rid WHERE r.id = ?1",
            )?
            .query_row([idb.as_slice()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    DocRow {
                        rid: r.get(1)?,
                        snapshot_len: r.get(2)?,
                        chunks_len: r.get(3)?,
                        next_chunk: r.get(4)?,
                    },
                ))
            })
            .optional()?;
        let (sealed, meta) = row.ok_or(Error::NotFound { what: "request" })?;
        let snapshot = self
            .keys
            .open(
                Purpose::Records,
                &place("snapshots", "data", idb, 0),
                &sealed,
            )
            .map_err(|_| Error::Corrupt("a stored request failed authentication"))?;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, data FROM request_chunks WHERE request = ?1 ORDER BY seq",
        )?;
        let mut chunks = Vec::new();
        let mut rows = stmt.query([meta.rid])?;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let data: Vec<u8> = r.get(1)?;
            let plain = self
                .keys
                .open(
                    Purpose::Records,
                    &place("request_chunks", "data", idb, seq as u64),
                    &data,
                )
                .map_err(|_| Error::Corrupt("a stored change failed authentication"))?;
            if seq != chunks.len() as i64 {
                return Err(Error::Corrupt("a stored change of a request is missing"));
            }
            chunks.push(plain);
        }
        if chunks.len() as i64 != meta.next_chunk {
            return Err(Error::Corrupt("a stored change of a request is missing"));
        }
        let doc = RequestDoc::load(
            &snapshot,
            chunks.iter().map(|c| c.as_slice()),
            self.actor.clone(),
        )?;
        Ok((doc, meta))
    }

    /// An edit by this device's user: loads a request, applies `edit` as one
    /// change unless the rules table refuses it (the check the server makes
    /// too), and stores it with the updated projection, in one transaction.
    fn edit<R>(
        &self,
        id: &RequestId,
        edit: impl FnOnce(&mut Request) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let idb = id_bytes(id)?;
        self.write(|tx| self.edit_in(tx, &idb, edit))
    }

    /// `edit` inside the caller's write transaction.
    fn edit_in<R>(
        &self,
        tx: &Transaction<'_>,
        idb: &[u8; 16],
        edit: impl FnOnce(&mut Request) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let me = self.identity.clone();
        let catalog = self.catalog()?;
        self.modify_in(tx, idb, |r| {
            let before = r.clone();
            let out = edit(r)?;
            crate::rules::check(Some(&before), r, me.author(), catalog.subject(&before))
                .map_err(Error::from)?;
            Ok(out)
        })
    }

    /// `modify` inside the caller's write transaction.
    fn modify_in<R>(
        &self,
        tx: &Transaction<'_>,
        idb: &[u8; 16],
        edit: impl FnOnce(&mut Request) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let (mut doc, row) = self.load_doc(tx, idb)?;
        let before = doc.heads();
        let (out, request) = doc.update(edit)?;
        self.persist(tx, idb, &row, &mut doc, &before, &request)?;
        Ok(out)
    }

    /// Merges changes from elsewhere (the server) into a stored document,
    /// inside the caller's write transaction.
    fn merge_in(
        &self,
        tx: &Transaction<'_>,
        idb: &[u8; 16],
        changes: &[u8],
        expected: &[ChangeHash],
    ) -> Result<RequestDoc, Error> {
        let (mut doc, row) = self.load_doc(tx, idb)?;
        let before = doc.heads();
        doc.apply(changes)?;
        // Automerge loads what it can of damaged bytes: all the heads the
        // sender announced must be here, or nothing is kept.
        if expected.is_empty() || !doc.has_all(expected) {
            return Err(Error::Document(
                "received changes are damaged or incomplete",
            ));
        }
        let request = doc.hydrate()?;
        self.persist(tx, idb, &row, &mut doc, &before, &request)?;
        Ok(doc)
    }

    /// Stores what changed in `doc` since `before`: an incremental chunk (or
    /// a compacted snapshot when the chunks outgrow it), the projection and
    /// the lookups.
    fn persist(
        &self,
        tx: &Transaction<'_>,
        idb: &[u8; 16],
        row: &DocRow,
        doc: &mut RequestDoc,
        before: &[ChangeHash],
        request: &Request,
    ) -> Result<(), Error> {
        let after = doc.heads();
        if after == before {
            return Ok(());
        }
        let chunk = doc.save_after(before);
        let chunks_len = row.chunks_len + chunk.len() as i64;
        if chunks_len > row.snapshot_len {
            // Compaction: the changes outgrew the snapshot.
            self.write_snapshot(tx, idb, row.rid, doc)?;
        } else {
            let seq = row.next_chunk;
            let sealed = self.keys.seal(
                Purpose::Records,
                &place("request_chunks", "data", idb, seq as u64),
                &chunk,
            )?;
            tx.execute(
                "INSERT INTO request_chunks (request, seq, data) VALUES (?1, ?2, ?3)",
                params![row.rid, seq, sealed],
            )?;
            tx.execute(
                "UPDATE requests SET chunks_len = ?2, next_chunk = ?3 WHERE rid = ?1",
                params![row.rid, chunks_len, seq + 1],
            )?;
        }
        tx.execute(
            "UPDATE requests SET status = ?2, updated_at = ?3, title = ?4, heads = ?5 WHERE rid = ?1",
            params![
                row.rid,
                request.status().as_str(),
                request.updated_at().0,
                self.seal_title(idb, request)?,
                encode_heads(&after),
            ],
        )?;
        write_lookups(&self.keys, tx, row.rid, request)
    }

    /// The request with this id.
    pub fn get(&self, id: &RequestId) -> Result<Request, Error> {
        let idb = id_bytes(id)?;
        self.read(|conn| {
            let (doc, _) = self.load_doc(conn, &idb)?;
            doc.hydrate()
        })
    }

    /// Replaces the content of a request, after validating it, where the
    /// rules table lets this device's role (a resident: a draft or a
    /// request waiting for information; an officer: a draft).
    pub fn update_content(&self, id: &RequestId, mut content: RequestContent) -> Result<(), Error> {
        content.normalise();
        let report = content.validate(Timestamp::now().today_in_indonesia());
        if !report.is_ok() {
            return Err(Error::Validation(report));
        }
        let role = self.identity.role;
        let catalog = self.catalog()?;
        self.edit(id, |r| {
            // Refused where the table freezes the details, also when the
            // new content happens to equal the old.
            crate::rules::may_change(role, crate::rules::Part::Details, r, catalog.subject(r))
                .map_err(Error::from)?;
            stays_on_its_version(&catalog, &r.content.details, &content.details)?;
            r.content = content;
            check_service_with(&catalog, self, r, false)
        })
    }

    /// A catalog service's request judged by the definition it was created
    /// on (`for_submit`: with the required documents); other kinds pass
    /// (their compiled-in checks ran).
    fn check_service(&self, request: &Request, for_submit: bool) -> Result<(), Error> {
        if !matches!(request.content.details, crate::model::Details::Service(_)) {
            return Ok(());
        }
        check_service_with(&*self.catalog()?, self, request, for_submit)
    }

    /// Moves the request to `to`, when this device's role may do so from
    /// the current status; returns the new status.
    pub fn transition(
        &self,
        id: &RequestId,
        to: Status,
        note: Option<String>,
    ) -> Result<Status, Error> {
        if let Some(n) = &note {
            edits::check_note(n)?;
        }
        let me = self.identity.clone();
        let catalog = self.catalog()?;
        self.edit(id, |r| {
            if to == Status::Submitted {
                check_service_with(&catalog, self, r, true)?;
            }
            edits::transition(r, me.author(), to, note)
        })
    }

    /// Submits a draft: checks every field and the required attachments.
    pub fn submit(&self, id: &RequestId) -> Result<Status, Error> {
        self.transition(id, Status::Submitted, None)
    }

    /// Withdraws the request (before a decision).
    pub fn withdraw(&self, id: &RequestId, note: Option<String>) -> Result<Status, Error> {
        self.transition(id, Status::Withdrawn, note)
    }

    /// Adds a note. When the request waits for information from the
    /// applicant and `answer` is true, the note is the answer and the request
    /// goes back to review in the same change.
    pub fn add_note(&self, id: &RequestId, text: &str, answer: bool) -> Result<Status, Error> {
        edits::check_note(text)?;
        let me = self.identity.clone();
        self.edit(id, |r| edits::add_note(r, me.author(), text, answer))
    }

    /// Assigns a request to a field officer's account, or unassigns it
    /// (`None`). The back office's decision: only an agency account may.
    pub fn assign(&self, id: &RequestId, officer: Option<&str>) -> Result<(), Error> {
        let me = self.identity.clone();
        edits::check_assign(me.author(), officer)?;
        self.edit(id, |r| edits::assign(r, me.author(), officer))
    }

    /// Lists requests, newest change first, from the projection columns
    /// (titles are the only values decrypted).
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Summary>, Error> {
        self.read(|conn| {
            let mut sql = String::from(
                "SELECT id, kind, status, title, created_at, updated_at,
                        acked_heads IS NULL OR acked_heads != heads, refusal
                 FROM requests WHERE 1 = 1",
            );
            let mut args: Vec<String> = Vec::new();
            if let Some(k) = filter.kind {
                args.push(k.as_str().to_owned());
                sql.push_str(&format!(" AND kind = ?{}", args.len()));
            }
            if let Some(s) = filter.status {
                args.push(s.as_str().to_owned());
                sql.push_str(&format!(" AND status = ?{}", args.len()));
            }
            if filter.pending_only {
                sql.push_str(" AND (acked_heads IS NULL OR acked_heads != heads)");
            }
            sql.push_str(" ORDER BY updated_at DESC, id");
            if let Some(l) = filter.limit {
                sql.push_str(&format!(" LIMIT {l}"));
            }
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                // Read in place: no allocation per column of 10,000 rows.
                let idb = stored_id(column_blob(r, 0)?)?;
                let kind = Kind::parse(column_text(r, 1)?)
                    .ok_or(Error::Corrupt("unknown kind in the store"))?;
                let status = Status::parse(column_text(r, 2)?)
                    .ok_or(Error::Corrupt("unknown status in the store"))?;
                let title = self
                    .keys
                    .open(
                        Purpose::Records,
                        &place("requests", "title", &idb, 0),
                        column_blob(r, 3)?,
                    )
                    .map_err(|_| Error::Corrupt("a stored title failed authentication"))?;
                out.push(Summary {
                    id: RequestId::from_bytes(idb),
                    kind,
                    status,
                    title: String::from_utf8_lossy(&title).into_owned(),
                    created_at: Timestamp(r.get(4)?),
                    updated_at: Timestamp(r.get(5)?),
                    pending: r.get(6)?,
                    refusal: r.get(7)?,
                });
            }
            Ok(out)
        })
    }

    /// Ids of the requests that name this NIK anywhere (applicant, parents,
    /// witnesses, …), found through keyed hashes: the NIK itself is never
    /// stored in plaintext.
    pub fn find_by_nik(&self, nik: &str) -> Result<Vec<RequestId>, Error> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT r.id FROM lookups l JOIN requests r ON r.rid = l.request WHERE l.hash = ?1 ORDER BY r.id")?;
            let hash = self.keys.lookup_hash("nik", nik.trim().as_bytes());
            let rows = stmt.query_map([hash], |r| r.get::<_, Vec<u8>>(0))?;
            let mut out = Vec::new();
            for r in rows {
                out.push(RequestId::from_bytes(stored_id(&r?)?));
            }
            Ok(out)
        })
    }

    // ---- outbox ---------------------------------------------------------

    /// Requests with changes the server has not acknowledged.
    pub fn pending(&self) -> Result<Vec<Pending>, Error> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT id, acked_heads, heads FROM requests
             WHERE acked_heads IS NULL OR acked_heads != heads ORDER BY updated_at",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let idb = stored_id(&r.get::<_, Vec<u8>>(0)?)?;
            let acked: Option<Vec<u8>> = r.get(1)?;
            out.push(Pending {
                id: RequestId::from_bytes(idb),
                acked_heads: decode_heads(acked.as_deref().unwrap_or_default())?,
                heads: decode_heads(&r.get::<_, Vec<u8>>(2)?)?,
            });
        }
        Ok(out)
    }

    /// Number of requests with unacknowledged changes.
    pub fn pending_count(&self) -> Result<usize, Error> {
        let conn = lock(&self.reader);
        pending_count(&conn)
    }

    /// A request's whole document as Automerge bytes (`save`): its full
    /// history, for export and comparison.
    pub fn document_bytes(&self, id: &RequestId) -> Result<Vec<u8>, Error> {
        let idb = id_bytes(id)?;
        self.read(|conn| Ok(self.load_doc(conn, &idb)?.0.save()))
    }

    /// The changes of a request that the server has not acknowledged, as
    /// Automerge bytes (`save_after` the acknowledged heads).
    pub fn unacked_changes(&self, id: &RequestId) -> Result<Vec<u8>, Error> {
        let idb = id_bytes(id)?;
        self.read(|conn| {
            let acked = acked_heads(conn, &idb)?;
            let (mut doc, _) = self.load_doc(conn, &idb)?;
            Ok(doc.save_after(&acked))
        })
    }

    /// What to push for a request: its changes the server has not
    /// acknowledged, and the heads they lead to.
    ///
    /// A request that was never put in a push has a history nobody else has
    /// seen (a create, a submit, edits made offline): it is first rewritten
    /// as one change holding its present state — one change header,
    /// checksum and dependency hash instead of one per edit — and stored so,
    /// and marked offered in the same transaction, so that every later push
    /// (a retry after a lost answer included) sends that same change.
    pub fn changes_to_push(&self, id: &RequestId) -> Result<(Vec<u8>, Vec<ChangeHash>), Error> {
        let idb = id_bytes(id)?;
        let state = |conn: &Connection| -> Result<(bool, Vec<ChangeHash>), Error> {
            let (offered, acked): (bool, Option<Vec<u8>>) = conn
                .prepare_cached("SELECT offered, acked_heads FROM requests WHERE id = ?1")?
                .query_row([idb.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .ok_or(Error::NotFound { what: "request" })?;
            Ok((offered, decode_heads(acked.as_deref().unwrap_or_default())?))
        };
        // The usual case, every push after the first: a read, no write lock.
        let offered = self.read(|conn| {
            let (offered, acked) = state(conn)?;
            if !offered {
                return Ok(None);
            }
            let (mut doc, _) = self.load_doc(conn, &idb)?;
            Ok(Some((doc.save_after(&acked), doc.heads())))
        })?;
        if let Some(push) = offered {
            return Ok(push);
        }
        self.write(|tx| {
            let (offered, acked) = state(tx)?;
            let (mut doc, row) = self.load_doc(tx, &idb)?;
            if !offered {
                tx.execute("UPDATE requests SET offered = 1 WHERE rid = ?1", [row.rid])?;
                if acked.is_empty()
                    && let Some(mut squashed) = doc.squashed()?
                {
                    self.replace_doc(tx, &idb, &row, &mut squashed)?;
                    return Ok((squashed.save_after(&[]), squashed.heads()));
                }
            }
            Ok((doc.save_after(&acked), doc.heads()))
        })
    }

    /// Replaces a request's stored document by `doc` (same state, another
    /// history): one snapshot, no chunks, the new heads.
    fn replace_doc(
        &self,
        tx: &Transaction<'_>,
        idb: &[u8; 16],
        row: &DocRow,
        doc: &mut RequestDoc,
    ) -> Result<(), Error> {
        self.write_snapshot(tx, idb, row.rid, doc)?;
        tx.execute(
            "UPDATE requests SET heads = ?2 WHERE rid = ?1",
            params![row.rid, encode_heads(&doc.heads())],
        )?;
        Ok(())
    }

    /// Stores `doc` whole as the request's snapshot, its chunks gone.
    fn write_snapshot(
        &self,
        tx: &Transaction<'_>,
        idb: &[u8; 16],
        rid: i64,
        doc: &mut RequestDoc,
    ) -> Result<(), Error> {
        let snapshot = doc.save();
        let sealed = self.seal_snapshot(idb, &snapshot)?;
        tx.execute("DELETE FROM request_chunks WHERE request = ?1", [rid])?;
        tx.execute(
            "UPDATE snapshots SET data = ?2 WHERE request = ?1",
            params![rid, sealed],
        )?;
        tx.execute(
            "UPDATE requests SET snapshot_len = ?2, chunks_len = 0, next_chunk = 0 WHERE rid = ?1",
            params![rid, snapshot.len() as i64],
        )?;
        Ok(())
    }

    /// Records that the server holds every change up to `heads`, on top of
    /// what it was known to hold (an ack never moves the frontier back).
    pub fn mark_acked(&self, id: &RequestId, heads: &[ChangeHash]) -> Result<(), Error> {
        let idb = id_bytes(id)?;
        self.write(|tx| {
            let mut union = acked_heads(tx, &idb)?;
            union.extend_from_slice(heads);
            let acked = if union.len() == heads.len() {
                heads.to_vec()
            } else {
                let (mut doc, _) = self.load_doc(tx, &idb)?;
                doc.frontier(&union).unwrap_or_else(|| heads.to_vec())
            };
            tx.execute(
                "UPDATE requests SET acked_heads = ?2 WHERE id = ?1",
                params![idb.as_slice(), encode_heads(&acked)],
            )?;
            Ok(())
        })
    }

    /// Whether the server is known to hold every change up to `heads`.
    pub fn is_acked(&self, id: &RequestId, heads: &[ChangeHash]) -> Result<bool, Error> {
        let idb = id_bytes(id)?;
        self.read(|conn| {
            let acked = acked_heads(conn, &idb)?;
            if heads.iter().all(|h| acked.contains(h)) {
                return Ok(true);
            }
            let (mut doc, _) = self.load_doc(conn, &idb)?;
            let mut both = acked.clone();
            both.extend_from_slice(heads);
            Ok(doc.frontier(&both).is_some_and(|f| {
                let mut f = f;
                let mut a = acked;
                f.sort();
                a.sort();
                f == a
            }))
        })
    }

    /// SQLite's own consistency check of the whole file.
    pub fn integrity_check(&self) -> Result<(), Error> {
        let conn = lock(&self.reader);
        let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(Error::Corrupt("the database failed its integrity check"))
        }
    }

    // ---- key rotation and wipe -----------------------------------------

    /// Re-encrypts everything under `new` in one transaction: a crash leaves
    /// either the old key or the new one working, never a mix.
    pub fn rekey(&mut self, new: &Secret) -> Result<(), Error> {
        self.rekey_with_rounds(
            new,
            NonZeroU32::new(PBKDF2_ROUNDS).expect("non-zero"),
            |_, _| {},
        )
    }

    /// Like [`Store::rekey`] with a chosen PBKDF2 round count (only tests go
    /// below [`PBKDF2_ROUNDS`]), reporting `(requests done, total)` from
    /// inside the transaction as it goes.
    pub fn rekey_with_rounds(
        &mut self,
        new: &Secret,
        rounds: NonZeroU32,
        progress: impl FnMut(usize, usize),
    ) -> Result<(), Error> {
        let (key, kdf) = new_key(new, rounds)?;
        self.rekey_to(key, kdf, progress)
    }

    fn rekey_to(
        &mut self,
        key: DataKey,
        kdf: KdfParams,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<(), Error> {
        let new = Keys::derive(&key)?;
        let old = &self.keys;
        // Overwritten cells are zeroed, so old-key ciphertext does not stay
        // behind in the pages the rekey rewrites.
        lock(&self.writer).pragma_update(None, "secure_delete", true)?;
        let new_key_id = self.write(|tx| {
            let reseal = |p: &Place<'_>, purpose: Purpose, v: &[u8]| -> Result<Vec<u8>, Error> {
                let plain = old.open(purpose, p, v).map_err(|_| {
                    Error::Corrupt("a stored value failed authentication during rekey")
                })?;
                new.seal(purpose, p, &plain)
            };
            // meta
            let device: Vec<u8> =
                tx.query_row("SELECT value FROM meta WHERE key = 'device'", [], |r| {
                    r.get(0)
                })?;
            let device = reseal(&place("meta", "device", b"", 0), Purpose::Records, &device)?;
            tx.execute("UPDATE meta SET value = ?1 WHERE key = 'device'", [device])?;
            Self::write_key_meta(tx, &new, kdf)?;
            // Every request: lookups, title, snapshot, then its chunks.
            // Lookup hashes depend on the key: they are recomputed from the
            // document, read with the old key before anything of it moves.
            let rows: Vec<(i64, Vec<u8>)> = {
                let mut st = tx.prepare("SELECT rid, id FROM requests")?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?
            };
            for (done, (rid, idb)) in rows.iter().enumerate() {
                progress(done, rows.len());
                let idb16 = stored_id(idb)?;
                let (doc, _) = self.load_doc(tx, &idb16)?;
                write_lookups(&new, tx, *rid, &doc.hydrate()?)?;
                let (title, snap): (Vec<u8>, Vec<u8>) = tx.query_row(
                    "SELECT r.title, s.data FROM requests r JOIN snapshots s ON s.request = r.rid WHERE r.rid = ?1",
                    [rid],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let title = reseal(&place("requests", "title", idb, 0), Purpose::Records, &title)?;
                let snap = reseal(&place("snapshots", "data", idb, 0), Purpose::Records, &snap)?;
                tx.execute("UPDATE requests SET title = ?2 WHERE rid = ?1", params![rid, title])?;
                tx.execute("UPDATE snapshots SET data = ?2 WHERE request = ?1", params![rid, snap])?;
                let chunks: Vec<(i64, Vec<u8>)> = {
                    let mut st = tx.prepare_cached("SELECT seq, data FROM request_chunks WHERE request = ?1")?;
                    st.query_map([rid], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()?
                };
                for (seq, data) in chunks {
                    let data = reseal(
                        &place("request_chunks", "data", idb, seq as u64),
                        Purpose::Records,
                        &data,
                    )?;
                    tx.execute(
                        "UPDATE request_chunks SET data = ?3 WHERE request = ?1 AND seq = ?2",
                        params![rid, seq, data],
                    )?;
                }
            }
            attachments::rekey(tx, old, &new)?;
            progress(rows.len(), rows.len());
            let id: Vec<u8> = tx.query_row("SELECT value FROM meta WHERE key = 'key_id'", [], |r| r.get(0))?;
            Ok(id)
        })?;
        self.keys = new;
        self.key_id = new_key_id;
        // Rewrite the file without free pages and empty the WAL: the old key
        // is what a rekey retires, so none of its ciphertext may remain.
        let conn = lock(&self.writer);
        conn.pragma_update(None, "secure_delete", false)?;
        conn.execute_batch("VACUUM;")?;
        drop(conn);
        self.truncate_wal()?;
        Ok(())
    }

    /// Deletes the store in `dir`. Refuses while requests have changes the
    /// server has not acknowledged, unless `force`. Needs no key: a forgotten
    /// passphrase must not keep a user from wiping, and counting unsynced
    /// requests reads only plaintext metadata. Only Sambung's own files are
    /// removed; other files in `dir` stay.
    pub fn wipe(dir: &Path, force: bool) -> Result<(), Error> {
        if !Self::exists(dir) {
            return Err(Error::NotInitialised(dir.to_owned()));
        }
        if !force {
            // Unforced, a store that cannot be read is not wiped either.
            let conn = Self::open_file(dir, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            // Attachments the server does not hold count too (large ones
            // wait for Wi-Fi for days while the text has synced).
            let attachments: i64 = conn.query_row(
                "SELECT COUNT(*) FROM attachments WHERE uploaded = 0 AND local_only = 0",
                [],
                |r| r.get(0),
            )?;
            let pending = pending_count(&conn)? + attachments as usize;
            if pending > 0 {
                return Err(Error::UnsyncedChanges { pending });
            }
        }
        for suffix in ["", "-wal", "-shm"] {
            let p = dir.join(format!("{DB_FILE}{suffix}"));
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Remove the folder only when nothing else is in it.
        let _ = std::fs::remove_dir(dir);
        tracing::info!("store wiped");
        Ok(())
    }
}

fn write_lookups(
    keys: &Keys,
    tx: &Transaction<'_>,
    rid: i64,
    request: &Request,
) -> Result<(), Error> {
    tx.execute("DELETE FROM lookups WHERE request = ?1", [rid])?;
    let mut stmt =
        tx.prepare_cached("INSERT OR IGNORE INTO lookups (hash, request) VALUES (?1, ?2)")?;
    for nik in request.content.niks() {
        stmt.execute(params![
            keys.lookup_hash("nik", nik.as_str().as_bytes()),
            rid
        ])?;
    }
    Ok(())
}

/// KDF parameters of a passphrase-derived key: salt and rounds.
type KdfParams = Option<([u8; 16], NonZeroU32)>;

/// The data key of a secret for a new key record: a raw key as it is, a
/// passphrase stretched with a fresh random salt.
fn new_key(secret: &Secret, rounds: NonZeroU32) -> Result<(DataKey, KdfParams), Error> {
    Ok(match secret {
        Secret::Key(k) => (k.clone(), None),
        Secret::Passphrase(p) => {
            let salt: [u8; 16] = crypto::random_bytes()?;
            (
                DataKey::from_passphrase(p, &salt, rounds),
                Some((salt, rounds)),
            )
        }
    })
}

/// The heads the server acknowledged for a request (empty: never synced).
fn acked_heads(conn: &Connection, idb: &[u8; 16]) -> Result<Vec<ChangeHash>, Error> {
    let acked: Option<Vec<u8>> = conn
        .query_row(
            "SELECT acked_heads FROM requests WHERE id = ?1",
            [idb.as_slice()],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(Error::NotFound { what: "request" })?;
    decode_heads(acked.as_deref().unwrap_or_default())
}

fn pending_count(conn: &Connection) -> Result<usize, Error> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM requests WHERE acked_heads IS NULL OR acked_heads != heads",
        [],
        |r| r.get(0),
    )?;
    Ok(n as usize)
}
