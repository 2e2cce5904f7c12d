//! Every limit on attachments, in one place: what a request may carry,
//! what the server takes and keeps, how bytes are cut for the store and for
//! the link, what a photo may be. The device and the server import the same
//! numbers, so a device never spends its link on what will be refused; the
//! older paths (`protocol::blobs`, `store`, `sync`, `photo`) re-export them.
//! Where two limits must agree, a check below the table holds them to it
//! at compile time.

const KIB: usize = 1024;
const MIB: u64 = 1024 * 1024;

// --- What a request carries (device before storing, server on every push).

/// The largest attachment, on the device and on the server (the protocol
/// calls it a blob: `protocol::blobs::MAX_BLOB_BYTES`).
pub const MAX_ATTACHMENT_BYTES: u64 = 25 * MIB;
/// Most attachments one request carries.
pub const MAX_REQUEST_ATTACHMENTS: usize = 20;
/// Most attachment bytes one request carries, all together.
pub const MAX_REQUEST_BYTES: u64 = 60 * MIB;
/// Longest attachment file name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest MIME type, in characters.
pub const MAX_MIME_CHARS: usize = 100;

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
        || attachments.iter().any(|a| a.size > MAX_ATTACHMENT_BYTES)
    {
        return Err(REQUEST_LIMITS);
    }
    if attachments
        .iter()
        .filter_map(|a| a.purpose.as_deref())
        .any(|p| !crate::model::is_purpose(p))
    {
        return Err(
            "a document's purpose is a service's name for it: lowercase letters, digits and _, at most 64",
        );
    }
    Ok(())
}

// --- Uploads, as the server takes them (`protocol::blobs`).

/// The largest chunk the server takes in one request.
pub const MAX_CHUNK_BYTES: usize = MIB as usize;
/// Most blobs asked about at once (`POST /v1/blobs/missing`).
pub const MAX_MISSING_ASKED: usize = 1000;
/// The largest body of that question the server reads.
pub const MAX_MISSING_BODY_BYTES: usize = 256 * KIB;
/// The most unfinished uploads one device may have open at once.
pub const MAX_OPEN_UPLOADS: usize = 32;
/// The most bytes one device's unfinished uploads may claim together
/// (twice a request's attachments): what a device can make the server hold
/// for it before anything is verified.
pub const MAX_OPEN_UPLOAD_BYTES: u64 = 2 * MAX_REQUEST_BYTES;
/// Days the server keeps an unfinished upload after its last chunk, unless
/// the deployment says otherwise (its device then starts again from zero).
pub const UPLOAD_MAX_AGE_DAYS: u32 = 7;
/// Days the server keeps bytes no request references (after their upload,
/// or after their last reference went away), unless the deployment says
/// otherwise.
pub const UNREFERENCED_BLOB_DAYS: u32 = 30;

// --- The device's link.

/// The first and largest upload chunk: a few seconds on EDGE.
pub const MAX_UPLOAD_CHUNK: usize = 256 * KIB;
/// The smallest: 13 s on GPRS's 20 kbit/s uplink, inside its shortest
/// window between outages.
pub const MIN_UPLOAD_CHUNK: usize = 32 * KIB;
/// Download ranges: as large as the largest upload chunk.
pub const DOWNLOAD_RANGE_BYTES: u64 = MAX_UPLOAD_CHUNK as u64;
/// The largest attachment sent over a metered link without the user's
/// leave, by default: a prepared photo (1600 px, JPEG 75: a few hundred
/// KiB) passes; an original or a video waits for Wi-Fi.
pub const METERED_MAX_BYTES: u64 = MIB;

// --- The device's store.

/// Plaintext bytes per stored (sealed) chunk: any byte range is read by
/// opening only the chunks that hold it.
pub const STORED_CHUNK_BYTES: usize = 64 * KIB;
/// Days a photo's original stays on the phone after its request is
/// decided, unless set otherwise (`Store::set_original_retention_days`).
pub const DEFAULT_ORIGINAL_RETENTION_DAYS: u32 = 30;

// --- Photos prepared before upload (`photo`).

/// The MIME types a photo is prepared from; HEIC is recognised but cannot
/// be decoded here (no pure-Rust decoder), so it is refused rather than sent
/// with its metadata: the platform converts it to JPEG first.
pub const PHOTO_MIMES: &[&str] = &["image/jpeg", "image/png"];
/// The largest photo decoded, in pixels a side.
pub const MAX_PHOTO_SIDE: u32 = 12_000;
/// The most memory decoding one photo may take.
pub const MAX_PHOTO_DECODE_BYTES: u64 = 256 * MIB;

// What must agree, checked when the crate is built.
const _: () = {
    // A chunk the device sends is one the server takes.
    assert!(MAX_UPLOAD_CHUNK <= MAX_CHUNK_BYTES && MIN_UPLOAD_CHUNK <= MAX_UPLOAD_CHUNK);
    // A download range lands in whole stored chunks (`Store::receive_download`).
    assert!(DOWNLOAD_RANGE_BYTES.is_multiple_of(STORED_CHUNK_BYTES as u64));
    // One request's attachments fit what a device may hold open.
    assert!(MAX_REQUEST_BYTES <= MAX_OPEN_UPLOAD_BYTES);
    assert!(MAX_ATTACHMENT_BYTES <= MAX_REQUEST_BYTES);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_in_words_are_the_limits_in_numbers() {
        assert!(REQUEST_LIMITS.contains(&format!("at most {MAX_REQUEST_ATTACHMENTS} attachments")));
        assert!(REQUEST_LIMITS.contains(&format!("{} MiB together", MAX_REQUEST_BYTES / MIB)));
        assert!(REQUEST_LIMITS.contains(&format!("none above {} MiB", MAX_ATTACHMENT_BYTES / MIB)));
    }

    #[test]
    fn requests_over_the_limits_are_refused() {
        use crate::model::{AttachmentRef, AttachmentRole};
        let a = |size: u64| AttachmentRef {
            sha256: "0".repeat(64),
            role: AttachmentRole::Photo,
            purpose: None,
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
            check_request_attachments(&[a(MAX_ATTACHMENT_BYTES + 1)]),
            Err(REQUEST_LIMITS)
        );
        assert_eq!(
            check_request_attachments(&[a(MAX_ATTACHMENT_BYTES)]),
            Ok(())
        );
    }

    #[test]
    fn the_largest_question_fits_the_body_the_server_reads() {
        use crate::protocol::blobs::{BlobClaim, MissingRequest};
        let ask = MissingRequest {
            blobs: (0..MAX_MISSING_ASKED)
                .map(|_| BlobClaim {
                    sha256: "f".repeat(64),
                    size: MAX_ATTACHMENT_BYTES,
                })
                .collect(),
        };
        let body = serde_json::to_vec(&ask).unwrap();
        assert!(body.len() <= MAX_MISSING_BODY_BYTES, "{}", body.len());
    }
}
