//! The sync protocol, version 1 (`docs/protocol.md`): the messages of one
//! exchange, their binary envelope, and the signatures that authenticate a
//! device. Shared by the device's sync client and the server.
//!
//! One exchange is one HTTP `POST /v1/sync`: the device pushes, for every
//! document with changes the server has not acknowledged, the changes since
//! the heads the server last acknowledged, with its pull cursor; the server
//! answers with acknowledgements and the changes the device has not seen.
//! Applying a change twice changes nothing (changes are content-addressed),
//! so any exchange may be lost or repeated.

mod auth;
pub mod blobs;
mod envelope;
pub mod limits;

pub use auth::{
    AuthError, Call, DeviceKey, SIGNATURE_WINDOW_SECS, SignedHeader, SignedHeaders, check_audience,
    device_id_of, enrollment_text, normalise_code, verify_enrollment,
};
pub use envelope::{EnvelopeError, MAX_DECODED_BYTES, cbor, decode, encode, version};

use serde::{Deserialize, Serialize};

/// The protocol version this code speaks.
pub const PROTOCOL_VERSION: u8 = 3;
/// The path of the exchange endpoint.
pub const SYNC_PATH: &str = "/v1/sync";

/// A document id on the wire: the request's random UUID, 16 bytes.
pub type DocId = [u8; 16];

/// An Automerge change hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(transparent)]
pub struct Hash(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl From<automerge::ChangeHash> for Hash {
    fn from(h: automerge::ChangeHash) -> Self {
        Hash(h.0)
    }
}

/// The first 8 bytes of a change hash: enough for a receiver to check that
/// it holds the sender's heads (damage, not forgery, is what this guards
/// against: a sender can only lie about its own changes), a quarter of the
/// bytes of the full hash, which does not compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(transparent)]
pub struct HeadPrefix(#[serde(with = "serde_bytes")] pub [u8; 8]);

impl HeadPrefix {
    /// Whether `hash` starts with this prefix.
    pub fn matches(&self, hash: &automerge::ChangeHash) -> bool {
        hash.0[..8] == self.0
    }
}

impl From<automerge::ChangeHash> for HeadPrefix {
    fn from(h: automerge::ChangeHash) -> Self {
        let mut p = [0u8; 8];
        p.copy_from_slice(&h.0[..8]);
        HeadPrefix(p)
    }
}

impl From<Hash> for automerge::ChangeHash {
    fn from(h: Hash) -> Self {
        automerge::ChangeHash(h.0)
    }
}

/// The device's half of an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SyncRequest {
    /// The server's log position up to which this device has pulled.
    pub cursor: u64,
    /// The tag the server gave with that cursor: when its log entry at
    /// `cursor` has another tag (a server restored from backup, a log that
    /// is not the one this cursor came from), the server pulls from the
    /// start instead of skipping what the device never saw.
    pub cursor_tag: u32,
    /// Documents with changes the server has not acknowledged.
    pub push: Vec<DocPush>,
    /// Documents being repaired with Automerge's sync protocol.
    pub repair: Vec<DocRepair>,
    /// The largest response body the device wants (compressed bytes); the
    /// server stops adding documents before it and sets `more`.
    pub max_response_bytes: u32,
    /// The position in the server's service catalog up to which this
    /// device holds it (`SyncResponse::catalog_seq`); 0: only the
    /// services built into the app. Absent on the wire when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub catalog: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A change of the server's service catalog (docs/catalog.md,
/// "Delivery"): a version published, or a version's retirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CatalogEntry {
    /// Service id.
    pub service: String,
    /// Its version.
    pub version: u32,
    /// The definition's JSON exactly as published (its SHA-256 is the hash
    /// requests record); absent when the device already holds it and only
    /// its retirement changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// Retired: requests created after this day (`YYYY-MM-DD`, in
    /// Indonesia) are no longer accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_until: Option<String>,
}

/// Changes of one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocPush {
    /// Document id; left out for a document new to the server (empty
    /// `since`), which reads it from the document itself — 16 random,
    /// incompressible bytes saved per new request. A push the server cannot
    /// name gets no answer, and the device names it the next time.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub id: Option<DocId>,
    /// Heads the sender believes the receiver holds; `changes` are the
    /// changes made after them (empty: the whole document).
    pub since: Vec<Hash>,
    /// Automerge changes (`save_after(since)`).
    #[serde(with = "serde_bytes")]
    pub changes: Vec<u8>,
    /// The sender's heads once these changes are applied, by prefix: the
    /// receiver refuses the push unless it then holds every one of them
    /// (damaged or truncated changes are never acknowledged).
    pub heads: Vec<HeadPrefix>,
}

/// One message of Automerge's Bloom-filter sync protocol for one document,
/// used only to repair a document whose acknowledged heads one side no
/// longer knows (a restored phone or server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocRepair {
    /// Document id.
    #[serde(with = "serde_bytes")]
    pub id: DocId,
    /// An encoded `automerge::sync::Message`.
    #[serde(with = "serde_bytes")]
    pub message: Vec<u8>,
}

/// The server's half of an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SyncResponse {
    /// Heads the server now holds for each document it accepted.
    pub acks: Vec<DocAck>,
    /// Documents the server refused, each with a reason; the others are
    /// unaffected.
    pub refused: Vec<Refusal>,
    /// Documents whose `since` heads the server does not know: the device
    /// repairs them (see `repair`).
    pub unknown_heads: Vec<DocRef>,
    /// Repair messages from the server.
    pub repair: Vec<DocRepair>,
    /// Changes the device has not pulled yet.
    pub pull: Vec<DocPull>,
    /// The new pull cursor.
    pub cursor: u64,
    /// The tag of the log entry at `cursor`, for the next request.
    pub cursor_tag: u32,
    /// More to pull: the device sends another exchange.
    pub more: bool,
    /// The device's cursor was not from this server's log (it was restored
    /// from a backup): the pull started over, and the device checks every
    /// document it holds with a repair, since the server may have lost
    /// some it acknowledged. Absent on the wire when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reset: bool,
    /// The agency revoked this device and asks it to delete its store once
    /// it has pushed what it holds (this response carries no pull). Absent
    /// on the wire when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub wipe: bool,
    /// Every push of the request was accepted with exactly the heads it
    /// named: `acks` is then empty, and the device acknowledges each push
    /// in its order (16 bytes saved per document, the common case).
    /// Absent on the wire when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub acked_all: bool,
    /// Documents this device's account may no longer see (reassigned, moved
    /// out of its regions, its regions changed): the device drops its copy
    /// unless it holds changes the server lacks. Absent on the wire when
    /// empty; older devices ignore it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gone: Vec<DocRef>,
    /// What changed in the service catalog after the device's
    /// `SyncRequest::catalog`: published versions and retirements, oldest
    /// first. Absent on the wire when empty; older devices ignore it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catalog: Vec<CatalogEntry>,
    /// The catalog position the device holds once `catalog` is applied
    /// (the device sends it back as `SyncRequest::catalog`). Absent on the
    /// wire when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub catalog_seq: u64,
}

impl SyncResponse {
    /// An answer that changes nothing and carries nothing, at the device's
    /// `cursor`: what the server fills in.
    pub fn at(cursor: u64, cursor_tag: u32) -> SyncResponse {
        SyncResponse {
            acks: Vec::new(),
            refused: Vec::new(),
            unknown_heads: Vec::new(),
            repair: Vec::new(),
            pull: Vec::new(),
            cursor,
            cursor_tag,
            more: false,
            reset: false,
            wipe: false,
            acked_all: false,
            gone: Vec::new(),
            catalog: Vec::new(),
            catalog_seq: 0,
        }
    }
}

impl CatalogEntry {
    /// The publication of a definition (its JSON as published).
    pub fn published(json: &str) -> Result<CatalogEntry, crate::catalog::CatalogError> {
        let d = crate::catalog::parse(json)?;
        Ok(CatalogEntry {
            service: d.id,
            version: d.version,
            definition: Some(json.to_owned()),
            accept_until: None,
        })
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Changes of one document from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocPull {
    /// Document id.
    #[serde(with = "serde_bytes")]
    pub id: DocId,
    /// Automerge changes.
    #[serde(with = "serde_bytes")]
    pub changes: Vec<u8>,
    /// The server's heads of the document once these changes are applied:
    /// the device records them as acknowledged.
    pub heads: Vec<Hash>,
    /// `changes` is a whole new document that replaces the device's copy
    /// and its history (a person's data erased under UU PDP); absent when
    /// false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace: bool,
}

/// A document id in a list (its own type so the list encodes as byte
/// strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(transparent)]
pub struct DocRef(#[serde(with = "serde_bytes")] pub DocId);

/// An acknowledgement: the server holds the document up to `heads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DocAck {
    /// Document id.
    #[serde(with = "serde_bytes")]
    pub id: DocId,
    /// The server's heads after applying the push.
    pub heads: Vec<Hash>,
}

/// Why the server refused a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The changes are not valid Automerge or not a valid request.
    Invalid,
    /// The device may not write this document (or these fields).
    Forbidden,
    /// The document is larger than the server accepts.
    TooLarge,
}

/// A refused document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Refusal {
    /// Document id.
    #[serde(with = "serde_bytes")]
    pub id: DocId,
    /// Machine-readable code.
    pub code: RefusalCode,
    /// A plain reason without personal data, for the device to show.
    pub reason: String,
    /// With `invalid` content: every field in error (paths and codes,
    /// never values). Absent on the wire when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One field the server found in error, as the device's validation names
/// it (`crate::validation::FieldIssue`), without the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FieldError {
    /// Path of the field in the JSON form (`applicant.nik`).
    pub field: String,
    /// Machine-readable code (`nik_format`).
    pub code: String,
    /// Plain English message.
    pub message_en: String,
    /// Plain Indonesian message.
    pub message_id: String,
}

impl From<&crate::validation::FieldIssue> for FieldError {
    fn from(i: &crate::validation::FieldIssue) -> Self {
        FieldError {
            field: i.field.clone(),
            code: i.code.as_str().to_owned(),
            message_en: i.message_en.to_owned(),
            message_id: i.message_id.to_owned(),
        }
    }
}

impl From<crate::catalog::Issue> for FieldError {
    fn from(i: crate::catalog::Issue) -> Self {
        FieldError {
            field: i.field,
            code: i.code,
            message_en: i.message.en,
            message_id: i.message.id,
        }
    }
}

/// The JSON body of every error response (JSON so that any app version can
/// read it, also one that speaks another protocol version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// A plain message without personal data.
    pub message: String,
    /// With `revoked`: the device must delete its store now. Absent on the
    /// wire when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub wipe: bool,
}

/// Why the server refused a whole exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The protocol version is not supported: the app must be updated.
    UnsupportedVersion,
    /// The body is not a valid envelope.
    BadEnvelope,
    /// The body is larger than the server accepts.
    TooLarge,
    /// Signature headers missing or malformed.
    Unauthenticated,
    /// The signature does not verify.
    BadSignature,
    /// The request's time is outside the accepted window (check the clock).
    StaleRequest,
    /// This signed request was already received.
    Replayed,
    /// The device is not enrolled.
    UnknownDevice,
    /// The agency revoked this device (a lost or stolen phone).
    Revoked,
    /// An enrollment code is unknown, used or expired.
    BadEnrollmentCode,
    /// A request that is not what the endpoint takes (other than a sync body).
    BadRequest,
    /// The request (its body included) took longer than the server allows.
    Timeout,
    /// Too many requests from this address or device; see `Retry-After`.
    RateLimited,
    /// The caller may not do this (e.g. a device's key on the back-office
    /// API).
    Forbidden,
    /// No such request (or not one the caller may see).
    NotFound,
    /// The lifecycle does not allow this status change.
    ForbiddenTransition,
    /// The request changed since the caller read it (`If-Match`).
    Stale,
    /// A listing's filter or cursor is not valid.
    BadFilter,
    /// An upload chunk does not start where the server's copy ends; the
    /// answer's `upload-offset` says where.
    OffsetMismatch,
    /// An uploaded blob's bytes do not hash to its name; the server
    /// discarded it.
    HashMismatch,
    /// Anything else on the server.
    Internal,
}

#[cfg(test)]
mod tests;
