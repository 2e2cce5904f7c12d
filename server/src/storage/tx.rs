//! The building blocks of one transaction, implemented once per backend
//! (`sqlite.rs`, `postgres.rs`): rows read and written, each with the locks
//! its backend needs to keep concurrent servers apart. The rules over
//! them — what writing a document, enrolling, taking an upload's chunk or
//! extending the audit chain means — are written once, above storage, as
//! the `_in_tx` functions of the modules that own those rules
//! ([`crate::documents`], [`crate::enroll`], [`crate::blobs`],
//! [`crate::audit`], [`crate::webhooks`]), and run in
//! [`super::Storage::transaction`] (application-services' `_in_tx`
//! pattern; matrix-rust-sdk's media service, written once over a small
//! per-backend store).

use sambung_core::lifecycle::Role;
use sambung_core::protocol::DocId;

use super::StorageError;
use super::records::{AuditEntry, NewDelivery, Subscription};
use super::{Delivered, StoredDoc, Uploader};
use crate::accounts::{Account, Scope};
use crate::error::ServerError;
use crate::scope_index::{Candidates, ScopeKey};

/// A document's saved data and its heads, 32 bytes a head.
pub type DocState = (Vec<u8>, Vec<u8>);

/// A log entry to append ([`Tx::append_log`]).
#[derive(Debug, Clone)]
pub struct NewLogEntry {
    /// The document.
    pub doc: DocId,
    /// What devices pull: changes, a whole document, or nothing (an
    /// account told a document left its sight).
    pub data: Vec<u8>,
    /// The document's heads after it.
    pub heads: Vec<u8>,
    /// The device that delivered it (zeros: the server).
    pub device: [u8; 16],
    /// A whole new document replacing the old (an erasure).
    pub replaces: bool,
    /// Meant for this account alone (see [`crate::scope_index`]); `None`:
    /// an entry of the document itself, which becomes its latest.
    pub audience: Option<String>,
    /// The scope-index keys it is filed under.
    pub keys: Vec<ScopeKey>,
}

/// What one open transaction can do. Every method works inside the
/// transaction [`super::Storage::transaction`] opened; nothing is seen by
/// others before it commits.
/// One version of a service in the server's catalog (`crate::catalog`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogRow {
    /// Service id.
    pub service: String,
    /// Its version.
    pub version: u32,
    /// The definition's JSON as published; empty for a built-in version
    /// that was only retired here.
    pub body: String,
    /// Retired: requests created after this day are refused.
    pub accept_until: Option<String>,
    /// The catalog position of its last change (publication or
    /// retirement).
    pub seq: u64,
    /// The catalog position at which it was published.
    pub published_seq: u64,
}

pub trait Tx {
    // --- Accounts, enrollment codes, devices.

    /// An account, locked against concurrent changes until the end.
    fn account(&mut self, id: &str) -> Result<Option<Account>, StorageError>;
    /// Inserts a new account.
    fn insert_account(&mut self, account: &Account) -> Result<(), StorageError>;
    /// Sets an account's role and regions.
    fn set_account_scope(
        &mut self,
        id: &str,
        role: Role,
        regions: &[String],
    ) -> Result<(), StorageError>;
    /// Links a NIK (by keyed hash) to an account that has none.
    fn link_nik(&mut self, id: &str, nik_hash: &[u8]) -> Result<(), StorageError>;
    /// Records a one-time code, by hash.
    fn insert_enrollment(
        &mut self,
        code_hash: &[u8],
        account: &str,
        expires_at: i64,
    ) -> Result<(), StorageError>;
    /// Marks a code used if it is unused and unexpired at `now` (one of two
    /// concurrent redemptions wins); its account.
    fn use_enrollment(
        &mut self,
        code_hash: &[u8],
        now: i64,
    ) -> Result<Option<String>, StorageError>;
    /// Binds a device key to an account; false (and nothing written) when
    /// the device id is enrolled already.
    fn insert_device(
        &mut self,
        device: [u8; 16],
        account: &str,
        public_key: [u8; 32],
        now: i64,
    ) -> Result<bool, StorageError>;

    // --- Documents and the log.

    /// Locks documents against concurrent writers until the end, in one
    /// order (so two transactions never wait on each other in a circle).
    fn lock_documents(&mut self, ids: &[DocId]) -> Result<(), StorageError>;
    /// Opens a savepoint (one at a time).
    fn savepoint(&mut self) -> Result<(), StorageError>;
    /// Keeps what was written since the savepoint.
    fn release_savepoint(&mut self) -> Result<(), StorageError>;
    /// Undoes what was written since the savepoint, and closes it.
    fn rollback_to_savepoint(&mut self) -> Result<(), StorageError>;
    /// A document.
    fn document(&mut self, id: &DocId) -> Result<Option<StoredDoc>, StorageError>;
    /// A document's saved data and heads.
    fn document_state(&mut self, id: &DocId) -> Result<Option<DocState>, StorageError>;
    /// The ids and scopes of the documents `which` names (see
    /// [`crate::scope_index::candidates`]).
    fn document_scopes(&mut self, which: &Candidates) -> Result<Vec<(DocId, Scope)>, StorageError>;
    /// Inserts or replaces a document with its heads.
    fn write_document(
        &mut self,
        id: &DocId,
        doc: &StoredDoc,
        heads: &[u8],
    ) -> Result<(), StorageError>;
    /// Empties a document's log entries (its old history, erased).
    fn purge_log(&mut self, id: &DocId) -> Result<(), StorageError>;
    /// Appends entries to the log, numbered in commit order, each filed
    /// in the scope index under its keys.
    fn append_log(&mut self, entries: &[NewLogEntry]) -> Result<(), StorageError>;
    /// Forgets who delivered a document's changes.
    fn delete_receipts(&mut self, id: &DocId) -> Result<(), StorageError>;
    /// Records who delivered `changes` (a change recorded before keeps its
    /// first receipt).
    fn insert_receipts(
        &mut self,
        id: &DocId,
        changes: &[[u8; 32]],
        delivery: &Delivered,
    ) -> Result<(), StorageError>;

    // --- Webhooks.

    /// Every subscription.
    fn subscriptions(&mut self) -> Result<Vec<Subscription>, StorageError>;
    /// Queues deliveries, due at `now` (Unix ms).
    fn queue_deliveries(
        &mut self,
        deliveries: &[NewDelivery],
        now: i64,
    ) -> Result<(), StorageError>;

    // --- Attachment references.

    /// The blobs a document references.
    fn blob_refs(&mut self, doc: &DocId) -> Result<Vec<[u8; 32]>, StorageError>;
    /// Whether `account` owns the blob.
    fn owns_blob(&mut self, sha256: &[u8; 32], account: &str) -> Result<bool, StorageError>;
    /// Whether the server holds the verified blob; it stays held until the
    /// end (a sweep or an erasure deleting it waits, then sees what this
    /// transaction referenced).
    fn blob_held(&mut self, sha256: &[u8; 32]) -> Result<bool, StorageError>;
    /// The scopes of the other documents whose reference to the blob
    /// grants its bytes.
    fn granting_scopes(
        &mut self,
        sha256: &[u8; 32],
        except: &DocId,
    ) -> Result<Vec<Scope>, StorageError>;
    /// Records a document's reference, added by `account`.
    fn add_blob_ref(
        &mut self,
        doc: &DocId,
        sha256: &[u8; 32],
        account: &str,
    ) -> Result<(), StorageError>;
    /// Removes a document's reference; a blob left without any is marked
    /// released at `now` (Unix s; its grace period starts).
    fn remove_blob_ref(
        &mut self,
        doc: &DocId,
        sha256: &[u8; 32],
        now: i64,
    ) -> Result<(), StorageError>;
    /// Records that a document's references are known.
    fn mark_refs_known(&mut self, doc: &DocId) -> Result<(), StorageError>;
    /// Makes `account` an owner that did not upload the blob (kept as it
    /// is when it owns it already).
    fn give_blob(
        &mut self,
        sha256: &[u8; 32],
        account: &str,
        device: Option<[u8; 16]>,
        now: i64,
    ) -> Result<(), StorageError>;

    // --- Uploads.

    /// Locks one blob's uploads against concurrent chunks until the end.
    fn lock_blob(&mut self, sha256: &[u8; 32]) -> Result<(), StorageError>;
    /// The size of the blob if `account` owns it.
    fn owned_blob_size(
        &mut self,
        sha256: &[u8; 32],
        account: &str,
    ) -> Result<Option<u64>, StorageError>;
    /// A device's unfinished upload: its declared size and bytes received.
    fn upload(
        &mut self,
        sha256: &[u8; 32],
        device: [u8; 16],
    ) -> Result<Option<(u64, u64)>, StorageError>;
    /// Deletes a device's upload and its chunks.
    fn delete_upload(&mut self, sha256: &[u8; 32], device: [u8; 16]) -> Result<(), StorageError>;
    /// How many unfinished uploads a device has, and the bytes they claim.
    fn open_uploads(&mut self, device: [u8; 16]) -> Result<(i64, i64), StorageError>;
    /// Starts an upload of `size` bytes.
    fn insert_upload(
        &mut self,
        sha256: &[u8; 32],
        uploader: &Uploader,
        size: u64,
        now: i64,
    ) -> Result<(), StorageError>;
    /// Stores a chunk at `pos`.
    fn insert_upload_chunk(
        &mut self,
        sha256: &[u8; 32],
        device: [u8; 16],
        pos: u64,
        data: &[u8],
    ) -> Result<(), StorageError>;
    /// Records how far an upload is.
    fn set_upload_received(
        &mut self,
        sha256: &[u8; 32],
        device: [u8; 16],
        received: u64,
        now: i64,
    ) -> Result<(), StorageError>;
    /// An upload's chunks, in order.
    fn upload_chunks(
        &mut self,
        sha256: &[u8; 32],
        device: [u8; 16],
    ) -> Result<Vec<Vec<u8>>, StorageError>;
    /// Makes a device's upload the blob; false (nothing written) when the
    /// server holds the blob already.
    fn insert_blob_from_upload(
        &mut self,
        sha256: &[u8; 32],
        device: [u8; 16],
        size: u64,
        now: i64,
    ) -> Result<bool, StorageError>;
    /// Starts a held blob's grace period anew at `now`.
    fn release_blob_at(&mut self, sha256: &[u8; 32], now: i64) -> Result<(), StorageError>;
    /// Makes the uploader's account an owner that uploaded the blob.
    fn own_uploaded_blob(
        &mut self,
        sha256: &[u8; 32],
        uploader: &Uploader,
        now: i64,
    ) -> Result<(), StorageError>;

    // --- The service catalog.

    /// Serialises catalog writers until the transaction ends (PostgreSQL's
    /// advisory lock; SQLite's write transactions are serial already).
    fn lock_catalog(&mut self) -> Result<(), StorageError>;
    /// Every stored version of a catalog entry (a service, or a code
    /// list's part `codes/<list>/<n>`), oldest first.
    fn catalog_rows(&mut self, service: &str) -> Result<Vec<CatalogRow>, StorageError>;
    /// Stores a published version at the next catalog position, or, when
    /// the version is stored, sets its retirement (its body is kept) and
    /// moves it to the next position. Catalog writers are serialised.
    fn put_catalog(
        &mut self,
        service: &str,
        version: u32,
        body: &str,
        accept_until: Option<&str>,
        now: i64,
    ) -> Result<(), StorageError>;

    // --- The audit trail.

    /// The position and hash of the trail's last entry; the trail is
    /// locked against other writers until the end (the chain never forks).
    fn audit_tail(&mut self) -> Result<Option<(u64, [u8; 32])>, StorageError>;
    /// Appends entries to the trail.
    fn insert_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StorageError>;
}

/// Runs `step` in one transaction of `storage` and gives back what it
/// returns: committed when it returns `Ok`, rolled back otherwise.
///
/// ```no_run
/// # use sambung_server::storage::{self, Storage};
/// # fn f(storage: &dyn Storage) -> Result<(), sambung_server::ServerError> {
/// let tail = storage::in_transaction(storage, |tx| Ok(tx.audit_tail()?))?;
/// # Ok(()) }
/// ```
pub fn in_transaction<T>(
    storage: &(impl super::Storage + ?Sized),
    mut step: impl FnMut(&mut dyn Tx) -> Result<T, ServerError>,
) -> Result<T, ServerError> {
    let mut out = None;
    storage.transaction(&mut |tx| {
        out = Some(step(tx)?);
        Ok(())
    })?;
    out.ok_or_else(|| ServerError::Storage("a transaction ended without its step".into()))
}
