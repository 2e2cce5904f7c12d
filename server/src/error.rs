//! The server's errors, each with its HTTP status and protocol error code
//! ([`ServerError::status_and_code`]; the answer is written in
//! `api/state.rs`). Messages carry no personal data.

use sambung_core::protocol::{AuthError, EnvelopeError, ErrorCode};

/// What can go wrong while serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Authentication failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The body is not a valid envelope.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The device is not enrolled.
    #[error("this device is not enrolled")]
    UnknownDevice,
    /// The agency revoked the device; `wipe`: it must delete its store.
    #[error("the agency revoked this device")]
    Revoked {
        /// Whether the device must delete its store.
        wipe: bool,
    },
    /// A signed request was seen before.
    #[error("this request was already received")]
    Replayed,
    /// An enrollment code is unknown, used or expired.
    #[error("the enrollment code is unknown, already used, or expired")]
    BadEnrollmentCode,
    /// The body is larger than the endpoint accepts.
    #[error("the request body is larger than the server accepts")]
    TooLarge,
    /// Input that is not what the endpoint takes.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The server's own settings are unusable (e.g. a TLS certificate).
    #[error("configuration: {0}")]
    Config(String),
    /// Too many requests from this address or device.
    #[error("too many requests; try again in {retry_after_secs} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The request took longer than the server allows.
    #[error("the request took too long; try again")]
    Timeout,
    /// The caller may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such request, or not one the caller may see.
    #[error("no such request")]
    NotFound,
    /// The lifecycle does not allow this change.
    #[error("{0}")]
    ForbiddenTransition(String),
    /// The request changed since the caller read it.
    #[error(
        "the request changed since it was read (If-Match does not match its ETag); read it again"
    )]
    Stale,
    /// A listing's filter or cursor is not valid.
    #[error("bad filter: {0}")]
    BadFilter(String),
    /// A device would hold more unfinished uploads than it may
    /// (`attachment_limits::MAX_OPEN_UPLOADS`, `MAX_OPEN_UPLOAD_BYTES`).
    #[error("this device has too many unfinished uploads; finish them, or wait until they expire")]
    UploadQuota,
    /// An upload chunk does not start where the held bytes end.
    #[error("the upload continues at byte {offset}")]
    OffsetMismatch {
        /// Bytes the server holds.
        offset: u64,
    },
    /// An uploaded blob does not hash to its name; it was discarded.
    #[error("the uploaded bytes do not match their SHA-256; the upload was discarded")]
    HashMismatch,
    /// A new attachment reference names bytes the server holds that the
    /// caller's account neither uploaded nor may see in another request.
    #[error(
        "forbidden: an attachment names bytes this account did not upload and sees in no other request; the request is taken once this device uploaded them"
    )]
    ForeignBlob,
    /// An enrollment named an existing account with another role or other
    /// regions; nothing was changed.
    #[error(
        "account {account} exists as {role} (regions: {regions}); enrolling never changes an account — to change it, run `sambung admin account {account} --role ROLE --regions CODE,…` first"
    )]
    AccountConflict {
        /// The account id (pseudonymous).
        account: String,
        /// Its role as it stays.
        role: String,
        /// Its regions as they stay, comma-separated.
        regions: String,
    },
    /// An enrollment named an existing account linked to another NIK;
    /// nothing was changed (which requests an account sees follows its
    /// NIK: a silent change would hand one person's requests to another).
    #[error(
        "account {account} is linked to another NIK; enrolling never changes it — enroll a new account for that person"
    )]
    NikConflict {
        /// The account id (pseudonymous).
        account: String,
    },
    /// What was sent conflicts with what the server holds (a service
    /// version published already); nothing was changed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The server's storage failed.
    #[error("storage error")]
    Storage(String),
}

impl ServerError {
    /// Whether this refuses one document's write only (the others of an
    /// exchange's transaction stand; see `Storage::update_documents`).
    pub fn is_per_document(&self) -> bool {
        matches!(self, ServerError::ForeignBlob)
    }

    /// The HTTP status and protocol code for this error.
    pub fn status_and_code(&self) -> (u16, ErrorCode) {
        match self {
            ServerError::Auth(AuthError::BadSignature) => (401, ErrorCode::BadSignature),
            ServerError::Auth(AuthError::Stale { .. }) => (401, ErrorCode::StaleRequest),
            ServerError::Auth(AuthError::OldScheme) => (400, ErrorCode::UnsupportedVersion),
            ServerError::Auth(AuthError::BadProof | AuthError::BadAudience) => {
                (400, ErrorCode::BadRequest)
            }
            ServerError::Auth(_) => (401, ErrorCode::Unauthenticated),
            ServerError::Envelope(EnvelopeError::UnsupportedVersion { .. }) => {
                (400, ErrorCode::UnsupportedVersion)
            }
            ServerError::Envelope(_) => (400, ErrorCode::BadEnvelope),
            ServerError::UnknownDevice => (401, ErrorCode::UnknownDevice),
            ServerError::Revoked { .. } => (403, ErrorCode::Revoked),
            ServerError::Replayed => (401, ErrorCode::Replayed),
            ServerError::BadEnrollmentCode => (403, ErrorCode::BadEnrollmentCode),
            ServerError::BadRequest(_) => (400, ErrorCode::BadRequest),
            ServerError::TooLarge => (413, ErrorCode::TooLarge),
            ServerError::Timeout => (408, ErrorCode::Timeout),
            ServerError::RateLimited { .. } | ServerError::UploadQuota => {
                (429, ErrorCode::RateLimited)
            }
            ServerError::Forbidden(_) | ServerError::ForeignBlob => (403, ErrorCode::Forbidden),
            ServerError::NotFound => (404, ErrorCode::NotFound),
            ServerError::ForbiddenTransition(_) => (409, ErrorCode::ForbiddenTransition),
            ServerError::Stale => (412, ErrorCode::Stale),
            ServerError::BadFilter(_) => (400, ErrorCode::BadFilter),
            ServerError::OffsetMismatch { .. } => (409, ErrorCode::OffsetMismatch),
            ServerError::HashMismatch => (422, ErrorCode::HashMismatch),
            ServerError::AccountConflict { .. }
            | ServerError::NikConflict { .. }
            | ServerError::Conflict(_) => (409, ErrorCode::Forbidden),
            ServerError::Storage(_) | ServerError::Config(_) => (500, ErrorCode::Internal),
        }
    }
}
