//! Where the server keeps accounts, devices, documents and the change log.
//! [`Storage`] speaks in rows and transactions, while the merge logic stays
//! in `exchange.rs`. Two backends: [`SqliteStorage`] (one file, the
//! embedded default) and [`PostgresStorage`] (several servers on one
//! database).

mod error;
mod postgres;
mod records;
mod replicas;
mod sqlite;
mod tx;

use std::path::Path;
use std::sync::Arc;

use sambung_core::lifecycle::Role;
use sambung_core::protocol::DocId;

use crate::accounts::{Account, Scope};
use crate::error::ServerError;
use crate::scope_index::Reader;

pub use error::StorageError;
pub use postgres::PostgresStorage;
pub use records::{
    AuditEntry, AuditFilter, AuditRecord, Delivery, NewDelivery, Outcome, Subscription,
};
pub use replicas::{Replicated, Target};
pub use sqlite::SqliteStorage;
pub use tx::{CatalogRow, DocState, NewLogEntry, Tx, in_transaction};

/// Opens the storage a server runs on: PostgreSQL when `database` is a
/// `postgres://` (or `postgresql://`) URL, else the SQLite file in
/// `data_dir`.
pub fn open(data_dir: &Path, database: Option<&str>) -> Result<Arc<dyn Storage>, ServerError> {
    open_with_replicas(data_dir, database, &[])
}

/// [`open`], with the read-only work sent to `replicas` (streaming
/// replicas of the PostgreSQL `database`; see [`Replicated`]).
pub fn open_with_replicas(
    data_dir: &Path,
    database: Option<&str>,
    replicas: &[String],
) -> Result<Arc<dyn Storage>, ServerError> {
    if replicas.is_empty() {
        return open_primary(data_dir, database);
    }
    if !database.is_some_and(is_postgres_url) {
        return Err(ServerError::Config(
            "--replica needs --database: replicas are PostgreSQL standbys of it".into(),
        ));
    }
    if !replicas.iter().all(|r| is_postgres_url(r)) {
        return Err(ServerError::Config(
            "--replica must be a postgres:// URL".into(),
        ));
    }
    let primary = open_primary(data_dir, database)?;
    let replicas = replicas
        .iter()
        .map(|url| Ok(Arc::new(PostgresStorage::connect_replica(url)?) as Arc<dyn Storage>))
        .collect::<Result<Vec<_>, ServerError>>()?;
    Ok(Arc::new(Replicated::new(primary, replicas)))
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn open_primary(data_dir: &Path, database: Option<&str>) -> Result<Arc<dyn Storage>, ServerError> {
    match database {
        Some(url) if is_postgres_url(url) => Ok(Arc::new(PostgresStorage::connect(url)?)),
        Some(_) => Err(ServerError::Config(
            "--database must be a postgres:// URL (leave it out for the SQLite file in --data)"
                .into(),
        )),
        None => Ok(Arc::new(SqliteStorage::open(data_dir)?)),
    }
}

/// The tag a device keeps beside its cursor: the first bytes of the
/// document heads the entry recorded. Heads are content addresses, so an
/// entry written at the same position by a server restored from backup
/// has another tag, and the device's cursor is seen not to belong here.
pub fn log_tag(heads: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = heads.len().min(4);
    b[..n].copy_from_slice(&heads[..n]);
    u32::from_be_bytes(b)
}

/// A log position or count as the databases store it (they have no
/// unsigned 64-bit integers; positions never reach `i64::MAX`).
pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A document as the server holds it.
#[derive(Debug, Clone)]
pub struct StoredDoc {
    /// The whole Automerge document (`save()`).
    pub data: Vec<u8>,
    /// Who may see it.
    pub scope: Scope,
    /// What the back office filters on.
    pub meta: DocMeta,
}

/// The fields of a document the back office lists and filters by, kept in
/// columns beside it (read from the document after every merge).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocMeta {
    /// Kind, snake_case (`ktp_replacement`).
    pub kind: String,
    /// Service area of the kind.
    pub service: String,
    /// Current status, snake_case.
    pub status: String,
    /// Unix milliseconds of the server's last write of it.
    pub updated_at: i64,
    /// Where it is about (`RequestContent::location`), in millionths of a
    /// degree (latitude, longitude): what the console's map plots.
    pub location: Option<(i32, i32)>,
    /// Unix milliseconds of its submission (the history's first move to
    /// `submitted`): when the service standard's days start.
    pub submitted_at: Option<i64>,
    /// The service definition it follows: a catalog service's id, or the
    /// built-in kind's (whose definition bears the kind's name).
    pub definition: String,
}

/// A location from its two columns: both, or none.
pub(crate) fn located(lat_e6: Option<i32>, lon_e6: Option<i32>) -> Option<(i32, i32)> {
    lat_e6.zip(lon_e6)
}

/// Filters of a document listing; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocFilter {
    /// Kind.
    pub kind: Option<String>,
    /// Service area.
    pub service: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Region code prefix, whole segments (`32.73` holds `32.73.01.1001`);
    /// digits and dots only (checked by the caller).
    pub region: Option<String>,
    /// Assigned officer account.
    pub assignee: Option<String>,
    /// Written at or after these Unix milliseconds.
    pub updated_since: Option<i64>,
    /// Submitted at or after these Unix milliseconds.
    pub submitted_since: Option<i64>,
    /// Submitted before these Unix milliseconds.
    pub submitted_before: Option<i64>,
    /// Service definition id.
    pub definition: Option<String>,
    /// Overdue: a JSON object of definition id → Unix milliseconds; an
    /// open request (submitted, received, in review, needing information)
    /// matches when it was submitted before its definition's time
    /// (computed by the caller from the service standard's days).
    pub overdue: Option<String>,
}

/// Where a listing goes on from: the `(seq, id)` of the last row.
pub type ListPosition = (i64, DocId);

/// One row of a document listing.
#[derive(Debug, Clone)]
pub struct DocRow {
    /// Document id.
    pub id: DocId,
    /// Who may see it.
    pub scope: Scope,
    /// Its listed fields.
    pub meta: DocMeta,
    /// The position of its latest log entry. Log entries are numbered in
    /// commit order, so a listing that pages by it never skips a row that
    /// committed late (a clock could).
    pub seq: i64,
}

/// Who delivered changes to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The account that wrote them.
    pub account: String,
    /// The enrolled key that signed the exchange or back-office call that
    /// delivered them (none: written by the server itself).
    pub device: Option<[u8; 16]>,
    /// The nonce of that signed exchange or call.
    pub exchange: Option<[u8; 16]>,
    /// When the server took them, Unix milliseconds.
    pub at: i64,
}

/// One accepted change of a request and who delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The Automerge change hash.
    pub change: [u8; 32],
    /// Who delivered it.
    pub delivery: Delivered,
}

/// What the agency decided for a revoked device (a lost or stolen phone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// The device must delete its store at its next contact.
    pub wipe: bool,
    /// Before that, it may push what it holds that the server lacks.
    pub push_first: bool,
}

/// How a webhook subscription's deliveries stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Delivered (the receiver answered 2xx).
    pub delivered: u64,
    /// Waiting for their first or next attempt.
    pub pending: u64,
    /// Given up after every retry.
    pub failed: u64,
    /// The error of the newest delivery that met one (retried or failed).
    pub last_error: Option<String>,
}

/// An enrolled device as the server knows it.
#[derive(Debug, Clone)]
pub struct EnrolledDevice {
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
    /// Its account.
    pub account: Account,
    /// Set once the agency revoked it.
    pub revoked: Option<Revocation>,
}

/// A row of the device list for administrators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSummary {
    /// Device id, 32 hex digits.
    pub id: String,
    /// Account id.
    pub account: String,
    /// Role of the account.
    pub role: Role,
    /// Unix seconds of enrollment.
    pub enrolled_at: i64,
    /// Unix seconds of revocation.
    pub revoked_at: Option<i64>,
}

/// One entry of the change log, with the document's current scope.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// Position in the log.
    pub seq: u64,
    /// Document id.
    pub doc: DocId,
    /// Automerge changes.
    pub data: Vec<u8>,
    /// The document's heads after this entry.
    pub heads: Vec<u8>,
    /// The device that delivered it.
    pub device: [u8; 16],
    /// Who may see the document now.
    pub scope: Scope,
    /// A whole new document replacing the old (an erasure).
    pub replace: bool,
    /// An entry of an erased document's old history: its data is gone and
    /// it is not sent.
    pub purged: bool,
    /// An entry meant for one account (the reader's): what an account
    /// change made visible (`data` is the whole document) or invisible
    /// (`data` is empty) to it.
    pub for_account: bool,
}

/// The server's storage.
pub trait Storage: Send + Sync + 'static {
    /// Runs `step` in one transaction: committed when it returns `Ok`,
    /// rolled back otherwise (see [`in_transaction`], which also gives
    /// back what the step returns). The rules of writes are such steps,
    /// written once over the backend's building blocks ([`Tx`]).
    fn transaction(
        &self,
        step: &mut dyn FnMut(&mut dyn Tx) -> Result<(), ServerError>,
    ) -> Result<(), ServerError>;
    /// A device's key, account and revocation.
    fn device(&self, id: [u8; 16]) -> Result<Option<EnrolledDevice>, ServerError>;
    /// Revokes a device; false when there is no such device.
    fn revoke_device(
        &self,
        id: [u8; 16],
        decision: Revocation,
        now: i64,
    ) -> Result<bool, ServerError>;
    /// The enrolled devices, of one account or all, of accounts of one
    /// role or all.
    fn devices(
        &self,
        account: Option<&str>,
        role: Option<Role>,
    ) -> Result<Vec<DeviceSummary>, ServerError>;
    /// Records a request nonce; false when it was seen within the window.
    fn remember_nonce(&self, device: [u8; 16], nonce: &str, now: i64) -> Result<bool, ServerError>;
    /// A document as it is now (no lock held after the call).
    fn document(&self, id: DocId) -> Result<Option<StoredDoc>, ServerError>;
    /// A document's heads as of log position `seq` (its latest entry at or
    /// before it, 32 bytes a head): what a device given the log up to
    /// `seq` holds of it.
    fn heads_at(&self, id: DocId, seq: u64) -> Result<Option<Vec<u8>>, ServerError>;
    /// Who delivered each change of a request, oldest first.
    fn receipts(&self, id: DocId) -> Result<Vec<Receipt>, ServerError>;
    /// The tag of the log entry at `seq` (see [`log_tag`]), if there is one.
    fn log_tag(&self, seq: u64) -> Result<Option<u32>, ServerError>;
    /// The highest pull cursor this server gave a device. A device that
    /// comes back with a lower one lost a response — or was restored from a
    /// backup, and may lack its own changes between the two.
    fn high_cursor(&self, device: [u8; 16]) -> Result<u64, ServerError>;
    /// Raises a device's highest cursor to `cursor` (never lowers it).
    fn raise_high_cursor(&self, device: [u8; 16], cursor: u64) -> Result<(), ServerError>;
    /// The log position up to which a repair gave `device` the document
    /// `id` (0: none did).
    fn given(&self, device: [u8; 16], id: DocId) -> Result<u64, ServerError>;
    /// Records that `device` was just given the document `id` as it stands
    /// (a repair): its later pushes are judged against no less.
    fn raise_given(&self, device: [u8; 16], id: DocId) -> Result<(), ServerError>;
    /// The position of the log's latest entry (0: empty).
    fn log_head(&self) -> Result<u64, ServerError>;
    /// The catalog's versions changed after position `seq`, in order.
    fn catalog_since(&self, seq: u64) -> Result<Vec<CatalogRow>, ServerError>;
    /// Every log entry after `cursor`, oldest first, at most `limit` (for
    /// operators and tests; devices pull with [`Storage::log_for`]).
    fn log_since(&self, cursor: u64, limit: usize) -> Result<Vec<LogEntry>, ServerError>;
    /// The log entries after `cursor` that `reader` finds (see
    /// [`crate::scope_index`]), oldest first, at most `limit`, in one
    /// indexed query: the cost is what the reader may see, not the log.
    /// Candidates only: the caller decides by each document's scope.
    fn log_for(
        &self,
        reader: &Reader,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, ServerError>;
    /// The NIK-hash key as databases from before the secrets file kept it
    /// (see [`crate::secrets`]), if this one still does.
    fn legacy_secret(&self) -> Result<Option<Vec<u8>>, ServerError>;
    /// Deletes that key from the database, and the space it took.
    fn forget_legacy_secret(&self) -> Result<(), ServerError>;
    /// Stores `check` (the secrets' check value) when the database has
    /// none yet; whether the stored one is `check`.
    fn bind_key_check(&self, check: &[u8]) -> Result<bool, ServerError>;
    /// Every subscription's stored secret (sealed, or in clear from before
    /// secrets were sealed), by subscription id.
    fn webhook_secrets(&self) -> Result<Vec<(String, Vec<u8>)>, ServerError>;
    /// Replaces a subscription's stored secret.
    fn set_webhook_secret(&self, id: &str, secret: &[u8]) -> Result<(), ServerError>;
    /// Audit entries matching `filter` after position `after`, oldest
    /// first, at most `limit`.
    fn audit_entries(
        &self,
        filter: &AuditFilter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, ServerError>;
    /// The documents about a person: filed with their NIK (by keyed hash)
    /// or by an account linked to it.
    fn documents_of_person(&self, nik_hash: &[u8]) -> Result<Vec<DocId>, ServerError>;
    /// The accounts linked to a NIK (by keyed hash).
    fn accounts_of_person(&self, nik_hash: &[u8]) -> Result<Vec<String>, ServerError>;
    /// The verified blob of this hash, if the server holds one (whoever
    /// uploaded it).
    fn blob_state(&self, sha256: &[u8; 32]) -> Result<Option<BlobState>, ServerError>;
    /// What `blobs/missing` tells `uploader`: `None` when its account holds
    /// the blob (uploaded it, or was given it through a request it could
    /// see), else the offset its device's unfinished upload stands at (0
    /// when there is none, or it declared another `size`). Says nothing
    /// of other accounts' uploads.
    fn blob_missing(
        &self,
        sha256: &[u8; 32],
        size: u64,
        uploader: &Uploader,
    ) -> Result<Option<u64>, ServerError>;
    /// Whether document `doc` references the blob with a reference that
    /// grants its bytes: added by an account that owns the blob, or
    /// recorded from a document stored before blobs had owners (then every
    /// reference granted the bytes, and these still do).
    fn blob_granted(&self, doc: DocId, sha256: &[u8; 32]) -> Result<bool, ServerError>;
    /// An erasure: deletes the blob, its owners and every unfinished upload
    /// of it, unless a request still references it; true when deleted.
    fn erase_blob(&self, sha256: &[u8; 32]) -> Result<bool, ServerError>;
    /// Removes unfinished uploads untouched since `now - upload_max_age`
    /// and blobs no request references that were verified or last
    /// referenced before `now - unreferenced_grace` (Unix seconds, like
    /// every time of blobs).
    fn sweep_blobs(&self, now: i64, policy: &BlobRetention) -> Result<BlobSweep, ServerError>;
    /// Up to `len` bytes of a complete blob from `offset`.
    fn blob_read(&self, sha256: &[u8; 32], offset: u64, len: u64) -> Result<Vec<u8>, ServerError>;
    /// After an erasure: makes the space of deleted and overwritten rows
    /// unreadable where the database allows it (SQLite: its WAL truncated,
    /// freed pages are zeroed already; PostgreSQL: `VACUUM` of the tables
    /// concerned).
    fn release_freed(&self) -> Result<(), ServerError>;
    /// Adds a webhook subscription with its secret (sealed, see
    /// [`crate::secrets::Secrets::seal_webhook_secret`]).
    fn add_webhook(&self, sub: &Subscription, secret: &[u8], now: i64) -> Result<(), ServerError>;
    /// The subscriptions, of one account or all.
    fn webhooks(&self, account: Option<&str>) -> Result<Vec<Subscription>, ServerError>;
    /// How a subscription's deliveries stand.
    fn delivery_stats(&self, webhook: &str) -> Result<DeliveryStats, ServerError>;
    /// Removes an account's subscription and its queue; false when there
    /// is no such subscription of that account.
    fn delete_webhook(&self, id: &str, account: &str) -> Result<bool, ServerError>;
    /// Claims up to `limit` due deliveries for `lease_ms` (another server
    /// takes them only after the lease ran out).
    fn claim_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, ServerError>;
    /// Records how an attempt ended — only while this server's lease
    /// (`lease_until`, from the claim) still holds it.
    fn finish_delivery(
        &self,
        seq: i64,
        lease_until: i64,
        outcome: &Outcome,
    ) -> Result<(), ServerError>;
    /// Deliveries still to make (for the metrics).
    fn queue_depth(&self) -> Result<u64, ServerError>;
    /// How many documents match `filter`, by status; drafts are never
    /// counted (they are their applicant's).
    fn count_documents(&self, filter: &DocFilter) -> Result<Vec<(String, u64)>, ServerError>;
    /// Documents matching `filter`, ordered by `(seq, id)`, after
    /// `after`, at most `limit`.
    fn list_documents(
        &self,
        filter: &DocFilter,
        after: Option<ListPosition>,
        limit: usize,
    ) -> Result<Vec<DocRow>, ServerError>;
}

/// What the server holds of a blob (an attachment's bytes), or of one
/// upload of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobState {
    /// Its declared size.
    pub size: u64,
    /// Bytes held.
    pub received: u64,
    /// All bytes in and their hash checked.
    pub complete: bool,
}

/// Who uploads: an enrolled device of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploader {
    /// The account (owns the blob once verified).
    pub account: String,
    /// The device (an unfinished upload is its own).
    pub device: [u8; 16],
}

/// How long unfinished uploads and unreferenced blobs are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRetention {
    /// An upload with no chunk for this long is removed (seconds).
    pub upload_max_age: i64,
    /// A blob no request references is removed this long after it was
    /// verified or its last reference went away (seconds).
    pub unreferenced_grace: i64,
}

impl Default for BlobRetention {
    fn default() -> Self {
        use sambung_core::attachment_limits::{UNREFERENCED_BLOB_DAYS, UPLOAD_MAX_AGE_DAYS};
        const DAY: i64 = 24 * 3600;
        BlobRetention {
            upload_max_age: i64::from(UPLOAD_MAX_AGE_DAYS) * DAY,
            unreferenced_grace: i64::from(UNREFERENCED_BLOB_DAYS) * DAY,
        }
    }
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobSweep {
    /// Unfinished uploads.
    pub uploads: u64,
    /// Unreferenced blobs.
    pub blobs: u64,
}

/// A receipt from its stored columns.
fn receipt(
    change: Vec<u8>,
    account: String,
    device: Option<Vec<u8>>,
    exchange: Option<Vec<u8>>,
    at: i64,
) -> Result<Receipt, ServerError> {
    let damaged = || ServerError::Storage("a damaged receipt".into());
    Ok(Receipt {
        change: change.try_into().map_err(|_| damaged())?,
        delivery: Delivered {
            account,
            device: device
                .map(|d| d.try_into().map_err(|_| damaged()))
                .transpose()?,
            exchange: exchange
                .map(|d| d.try_into().map_err(|_| damaged()))
                .transpose()?,
            at,
        },
    })
}

/// An audit entry from its stored columns.
#[allow(clippy::too_many_arguments)]
fn audit_entry(
    seq: i64,
    at: i64,
    account: String,
    role: String,
    device: Option<Vec<u8>>,
    action: String,
    request: Option<Vec<u8>>,
    endpoint: String,
    prev: Vec<u8>,
    hash: Vec<u8>,
) -> Result<AuditEntry, ServerError> {
    let damaged = || ServerError::Storage("damaged audit entry".into());
    Ok(AuditEntry {
        seq: seq as u64,
        record: AuditRecord {
            at,
            account,
            role,
            device: device
                .map(|d| d.try_into())
                .transpose()
                .map_err(|_| damaged())?,
            action,
            request: request
                .map(|d| d.try_into())
                .transpose()
                .map_err(|_| damaged())?,
            endpoint,
        },
        prev: prev.try_into().map_err(|_| damaged())?,
        hash: hash.try_into().map_err(|_| damaged())?,
    })
}

/// An account from its stored columns (both backends).
pub(super) fn to_account(
    id: String,
    role: String,
    regions: String,
    nik_hash: Option<Vec<u8>>,
) -> Result<Account, StorageError> {
    Ok(Account {
        id,
        role: Role::parse(&role).ok_or(StorageError::Damaged("role"))?,
        regions: serde_json::from_str(&regions).map_err(|_| StorageError::Damaged("regions"))?,
        nik_hash,
    })
}
