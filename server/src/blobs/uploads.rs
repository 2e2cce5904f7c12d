//! Resumable uploads: a device sends a blob's bytes in chunks, each where
//! the held bytes end; the last one is checked against the SHA-256 that
//! names the blob, and the bytes become the blob, owned by the uploader's
//! account. An upload is its device's own until verified, so nobody's
//! claim fixes the size for others.

use sambung_core::attachment_limits::{MAX_OPEN_UPLOAD_BYTES, MAX_OPEN_UPLOADS};

use crate::error::ServerError;
use crate::storage::{BlobState, Storage, Tx, Uploader, in_transaction};

/// Appends `data` at `offset` to `uploader`'s upload of the blob (starting
/// it when it has none, with its declared `size`). Refuses a chunk that
/// does not start where the held bytes end
/// ([`ServerError::OffsetMismatch`]); when the last byte is in, checks the
/// SHA-256 and discards the upload on a mismatch
/// ([`ServerError::HashMismatch`]); on a match the bytes become the blob
/// (or are dropped when the server held it already) and the uploader's
/// account owns it.
pub fn append_chunk(
    storage: &dyn Storage,
    sha256: &[u8; 32],
    uploader: &Uploader,
    size: u64,
    offset: u64,
    data: &[u8],
    now: i64,
) -> Result<BlobState, ServerError> {
    let taken = in_transaction(storage, |tx| {
        append_chunk_in_tx(tx, sha256, uploader, size, offset, data, now)
    })?;
    // A mismatch is an error for the caller, but the discarded upload is
    // committed: the device starts again from 0.
    taken.ok_or(ServerError::HashMismatch)
}

/// [`append_chunk`] in the transaction open on `tx`; `None` when the
/// complete upload did not match its hash (and was discarded).
pub fn append_chunk_in_tx(
    tx: &mut dyn Tx,
    sha256: &[u8; 32],
    uploader: &Uploader,
    size: u64,
    offset: u64,
    data: &[u8],
    now: i64,
) -> Result<Option<BlobState>, ServerError> {
    let device = uploader.device;
    // One chunk of a blob at a time, across servers.
    tx.lock_blob(sha256)?;
    if let Some(size) = tx.owned_blob_size(sha256, &uploader.account)? {
        // This account holds it whole: nothing more is taken.
        return Err(ServerError::OffsetMismatch { offset: size });
    }
    let received = match tx.upload(sha256, device)? {
        Some((declared, received)) if declared == size => received,
        Some(_) if offset != 0 => {
            return Err(ServerError::BadRequest(
                "upload-length differs from the upload's first chunk (start again from offset 0 to change it)".into(),
            ));
        }
        // A first chunk, or this device starting its upload again with
        // another length: its own earlier claim goes.
        _ => {
            tx.delete_upload(sha256, device)?;
            let (open, claimed) = tx.open_uploads(device)?;
            check_quota(open, claimed, size)?;
            tx.insert_upload(sha256, uploader, size, now)?;
            0
        }
    };
    if offset != received {
        return Err(ServerError::OffsetMismatch { offset: received });
    }
    let end = received + data.len() as u64;
    if end > size {
        return Err(ServerError::BadRequest(
            "the chunk goes past upload-length".into(),
        ));
    }
    tx.insert_upload_chunk(sha256, device, offset, data)?;
    if end < size {
        tx.set_upload_received(sha256, device, end, now)?;
        return Ok(Some(BlobState {
            size,
            received: end,
            complete: false,
        }));
    }
    let chunks = tx.upload_chunks(sha256, device)?;
    let matches = hash_matches(sha256, chunks.iter().map(Vec::as_slice));
    drop(chunks);
    if matches {
        if !tx.insert_blob_from_upload(sha256, device, size, now)? {
            // The same bytes (the hash says so) were held already: the
            // server keeps its copy, and the grace period starts anew.
            tx.release_blob_at(sha256, now)?;
        }
        tx.own_uploaded_blob(sha256, uploader, now)?;
    }
    tx.delete_upload(sha256, device)?;
    Ok(matches.then_some(BlobState {
        size,
        received: end,
        complete: true,
    }))
}

/// Whether a device may open one more upload of `size` bytes, with `open`
/// unfinished uploads claiming `claimed` bytes already.
fn check_quota(open: i64, claimed: i64, size: u64) -> Result<(), ServerError> {
    if open.max(0) as usize >= MAX_OPEN_UPLOADS
        || (claimed.max(0) as u64).saturating_add(size) > MAX_OPEN_UPLOAD_BYTES
    {
        return Err(ServerError::UploadQuota);
    }
    Ok(())
}

/// Checks the blob's chunks, in order, against its name.
fn hash_matches<'a>(sha256: &[u8; 32], chunks: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    for c in chunks {
        h.update(c);
    }
    h.finish().as_ref() == sha256
}
