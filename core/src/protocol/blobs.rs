//! Attachment bytes travel apart from the documents, by content address
//! (the SHA-256 of the plaintext), in the spirit of the tus protocol: the
//! device first asks which of its blobs the server lacks (one request for
//! all), then sends only those in chunks at the offset the server holds —
//! after a cut, from the last byte that arrived, never from zero. The
//! server checks the hash when the last byte is in and refuses a mismatch;
//! a blob it holds is never sent again, whoever attaches it.
//!
//! `POST /v1/blobs/missing` — [`MissingRequest`] → [`MissingResponse`].
//! `PATCH /v1/blobs/{sha256}` — a chunk; headers [`UPLOAD_OFFSET`] (where
//! it starts) and [`UPLOAD_LENGTH`] (the blob's size); answered `204` with
//! the new offset, `409 offset_mismatch` with the server's offset, `422
//! hash_mismatch` (the blob is discarded), `413 too_large`. Both signed as
//! a sync is, the two headers with the call (`SignedHeader`), like the
//! `range` of a download: a header altered in flight breaks the signature.

use serde::{Deserialize, Serialize};

/// Where a device asks which blobs the server lacks.
pub const MISSING_PATH: &str = "/v1/blobs/missing";
/// Where chunks go: this, then the SHA-256 in hex.
pub const BLOB_PATH: &str = "/v1/blobs/";
/// The offset a chunk starts at (request), or the server holds (answer).
pub const UPLOAD_OFFSET: &str = "upload-offset";
/// The blob's whole size.
pub const UPLOAD_LENGTH: &str = "upload-length";
/// The largest blob the server takes (the device's own limit too).
pub const MAX_BLOB_BYTES: u64 = 25 * 1024 * 1024;
/// Most attachments one request carries.
pub const MAX_REQUEST_ATTACHMENTS: usize = 20;
/// Most attachment bytes one request carries, all together.
pub const MAX_REQUEST_BYTES: u64 = 60 * 1024 * 1024;
/// The largest chunk the server takes in one request.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;
/// Most blobs asked about at once.
pub const MAX_MISSING_ASKED: usize = 1000;

/// A blob a device holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobClaim {
    /// SHA-256, 64 lowercase hex digits.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Which of these does the server lack?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingRequest {
    /// The device's blobs not known to be uploaded.
    pub blobs: Vec<BlobClaim>,
}

/// Where an upload goes on from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobOffset {
    /// SHA-256.
    pub sha256: String,
    /// Bytes the server holds of it (0: none).
    pub offset: u64,
}

/// A blob the server will not take, and why (shown to the user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRefusal {
    /// SHA-256.
    pub sha256: String,
    /// Why, in words.
    pub reason: String,
}

/// The answer: what to send, from where; what not to send at all. Blobs in
/// neither list are held complete already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MissingResponse {
    /// Send these, from their offsets.
    pub missing: Vec<BlobOffset>,
    /// Never send these.
    #[serde(default)]
    pub refused: Vec<BlobRefusal>,
}

/// Whether `s` is a SHA-256 in lowercase hex.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The most unfinished uploads one device may have open at once.
pub const MAX_OPEN_UPLOADS: usize = 32;
/// The most bytes one device's unfinished uploads may claim together
/// (twice a request's attachments): what a device can make the server hold
/// for it before anything is verified.
pub const MAX_OPEN_UPLOAD_BYTES: u64 = 2 * MAX_REQUEST_BYTES;

/// The per-request limits in words (a test holds them to the numbers).
pub const REQUEST_LIMITS: &str =
    "a request carries at most 20 attachments of 60 MiB together, none above 25 MiB";

/// Whether a request's attachments stay within the per-request limits;
/// the error is the reason, for the user and for a refused document. The
/// device checks before it stores an attachment, the server again on every
/// change, so a device never spends its link on what will be refused.
pub fn check_request_attachments(
    attachments: &[crate::model::AttachmentRef],
) -> Result<(), &'static str> {
    let total: u64 = attachments.iter().map(|a| a.size).sum();
    if attachments.len() > MAX_REQUEST_ATTACHMENTS
        || total > MAX_REQUEST_BYTES
        || attachments.iter().any(|a| a.size > MAX_BLOB_BYTES)
    {
        return Err(REQUEST_LIMITS);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_in_words_are_the_limits_in_numbers() {
        let mib = 1024 * 1024;
        assert!(REQUEST_LIMITS.contains(&format!("at most {MAX_REQUEST_ATTACHMENTS} attachments")));
        assert!(REQUEST_LIMITS.contains(&format!("{} MiB together", MAX_REQUEST_BYTES / mib)));
        assert!(REQUEST_LIMITS.contains(&format!("none above {} MiB", MAX_BLOB_BYTES / mib)));
    }

    #[test]
    fn requests_over_the_limits_are_refused() {
        use crate::model::{AttachmentRef, AttachmentRole};
        let a = |size: u64| AttachmentRef {
            sha256: "0".repeat(64),
            role: AttachmentRole::Photo,
            name: "p.jpg".into(),
            mime: "image/jpeg".into(),
            size,
            added_at: crate::time::Timestamp(0),
        };
        assert_eq!(check_request_attachments(&[]), Ok(()));
        let twenty: Vec<_> = (0..20).map(|_| a(1000)).collect();
        assert_eq!(check_request_attachments(&twenty), Ok(()));
        let mut more = twenty.clone();
        more.push(a(1));
        assert_eq!(check_request_attachments(&more), Err(REQUEST_LIMITS));
        let heavy: Vec<_> = (0..3).map(|_| a(MAX_REQUEST_BYTES / 3 + 1)).collect();
        assert_eq!(check_request_attachments(&heavy), Err(REQUEST_LIMITS));
        assert_eq!(
            check_request_attachments(&[a(MAX_BLOB_BYTES + 1)]),
            Err(REQUEST_LIMITS)
        );
        assert_eq!(check_request_attachments(&[a(MAX_BLOB_BYTES)]), Ok(()));
    }
}
