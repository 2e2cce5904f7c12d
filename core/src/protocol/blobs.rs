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
// The limits of uploads live with every other attachment limit; here
// under the names the protocol has always given them.
pub use crate::attachment_limits::{
    MAX_ATTACHMENT_BYTES as MAX_BLOB_BYTES, MAX_CHUNK_BYTES, MAX_MISSING_ASKED,
    MAX_OPEN_UPLOAD_BYTES, MAX_OPEN_UPLOADS, MAX_REQUEST_ATTACHMENTS, MAX_REQUEST_BYTES,
    REQUEST_LIMITS, check_request_attachments,
};

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
