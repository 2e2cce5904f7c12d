//! Attachment bytes from devices, by content address
//! (`sambung_core::protocol::blobs`): which blobs the server lacks, and
//! resumable chunked uploads checked against their SHA-256 at the end
//! ([`uploads`]; their HTTP routes are in `api/blobs.rs`). Here also: the
//! content addresses a request names, and the sweep of bytes nobody needs.
//!
//! Blobs have owners: the accounts that uploaded them (or were given them
//! through a request they could see). An upload is its device's own until
//! its hash is verified; `blobs/missing` answers about the caller's own
//! uploads only; a request may add a reference to bytes the server holds
//! only for an owner or an account that sees another request referencing
//! them (checked where the document is written, [`references`]); bytes are served through a request whose
//! reference grants them ([`crate::storage::Storage::blob_granted`]).
//! Unfinished uploads expire and unreferenced blobs are removed after a
//! grace period ([`sweeper`]).

use sambung_core::document::RequestDoc;
use sambung_core::protocol::blobs::is_sha256_hex;

use sambung_core::protocol::DocId;

use crate::accounts::Account;
use crate::error::ServerError;
use crate::storage::{Storage, StoredDoc};

pub mod references;
pub mod sweeper;
pub mod uploads;

pub use references::write_refs_in_tx;
pub use uploads::append_chunk;

/// The content addresses a request's attachments name, each once; a name
/// that is not a SHA-256 (an erased one is empty) names no blob.
pub fn hashes(request: &sambung_core::model::Request) -> Vec<[u8; 32]> {
    let mut out: Vec<[u8; 32]> = request
        .attachments
        .iter()
        .filter_map(|a| parse_sha(&a.sha256).ok())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The content addresses a stored document's attachments name (for
/// documents stored before references were recorded); `None` when it does
/// not load.
pub fn hashes_of_stored(data: &[u8]) -> Option<Vec<[u8; 32]>> {
    RequestDoc::load(data, [], automerge::ActorId::random())
        .and_then(|d| d.hydrate())
        .ok()
        .map(|r| hashes(&r))
}

/// Serves an attachment of request `id` to a device of `account` that may
/// see the request (`serve` reads the bytes), recorded in the audit trail
/// as its `download` once served. A request it may not see is not found.
pub fn download<T>(
    storage: &dyn Storage,
    account: &Account,
    device: [u8; 16],
    id: DocId,
    endpoint: &str,
    serve: impl FnOnce(&StoredDoc) -> Result<T, ServerError>,
) -> Result<T, ServerError> {
    let stored = storage
        .document(id)?
        .filter(|d| account.may_see(&d.scope))
        .ok_or(ServerError::NotFound)?;
    let served = serve(&stored)?;
    crate::audit::append(
        storage,
        &[crate::audit::AuditRecord {
            at: sambung_core::Timestamp::now().as_millis(),
            account: account.id.clone(),
            role: account.role.as_str().to_owned(),
            device: Some(device),
            action: "download".into(),
            request: Some(id),
            endpoint: endpoint.to_owned(),
        }],
    )?;
    Ok(served)
}

/// Parses a SHA-256 in lowercase hex.
pub fn parse_sha(s: &str) -> Result<[u8; 32], ServerError> {
    if !is_sha256_hex(s) {
        return Err(ServerError::BadRequest(
            "a blob is named by its SHA-256 in 64 lowercase hex digits".into(),
        ));
    }
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ServerError::BadRequest("not a SHA-256".into()))
}
