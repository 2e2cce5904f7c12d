//! Records and callback traits of the surface that are not the request
//! model itself (that one comes from `sambung-core`).

use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::{Kind, RequestId};
use sambung_core::sync::SyncSummary;

/// How to open a client.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClientConfig {
    /// Folder of the encrypted store (created when missing), in the app's
    /// private storage.
    pub data_dir: String,
    /// The role of who uses this app, until enrollment says otherwise.
    pub role: Role,
    /// PEM text of the CA certificate(s) to trust for the server instead of
    /// the platform's; empty: the platform's.
    pub ca_pem: Option<String>,
    /// Server key pins: SHA-256 of the SubjectPublicKeyInfo, 64 hex digits.
    pub pins: Vec<String>,
    /// Largest request body of one exchange; `None`: 64 KiB (an EDGE link
    /// between its outages).
    pub budget_bytes: Option<u32>,
    /// Sync in the background: after local writes (debounced), when the
    /// network comes back, with retries. Off, only `sync_now` syncs.
    pub auto_sync: bool,
    /// The user's leave to upload large attachments (over 1 MiB) on a
    /// metered link; without it they wait for Wi-Fi.
    #[uniffi(default)]
    pub large_uploads_on_metered: bool,
}

/// Which requests to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct ListQuery {
    /// Only this kind.
    #[uniffi(default)]
    pub kind: Option<Kind>,
    /// Only this status.
    #[uniffi(default)]
    pub status: Option<Status>,
    /// Only requests with changes the server has not acknowledged.
    #[uniffi(default)]
    pub pending_only: bool,
    /// At most this many, newest first.
    #[uniffi(default)]
    pub limit: Option<u32>,
}

/// This device's enrollment.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrollmentInfo {
    /// The server.
    pub server: String,
    /// The account the device acts for.
    pub account: String,
    /// Its role.
    pub role: Role,
    /// Its regions.
    pub regions: Vec<String>,
}

/// A request the server refused, with its reason (no personal data).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefusedRequest {
    /// The request.
    pub id: RequestId,
    /// Why.
    pub reason: String,
}

/// What a sync did so far (progress) or in all (result).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Request bodies sent, bytes.
    pub bytes_up: u64,
    /// Response bodies received, bytes.
    pub bytes_down: u64,
    /// HTTP exchanges.
    pub round_trips: u32,
    /// Requests the server acknowledged.
    pub pushed: u32,
    /// Updates applied from the server.
    pub pulled: u32,
    /// Service catalog changes received (services published or retired).
    pub services: u32,
    /// Parts of code lists received (a list arrives once, in parts, then
    /// each new version as its changes).
    pub code_parts: u32,
    /// Requests this account may no longer see (reassigned, out of its
    /// regions), deleted here; a copy holding unsynced work is kept.
    pub forgotten: u32,
    /// Requests the server refused.
    pub refused: Vec<RefusedRequest>,
    /// Requests changed here by what came from the server.
    pub changed: Vec<RequestId>,
}

impl From<&SyncSummary> for SyncReport {
    fn from(s: &SyncSummary) -> Self {
        SyncReport {
            bytes_up: s.bytes_up,
            bytes_down: s.bytes_down,
            round_trips: s.round_trips,
            pushed: s.pushed,
            pulled: s.pulled,
            services: s.services,
            code_parts: s.code_parts,
            forgotten: s.forgotten,
            refused: s
                .refused
                .iter()
                .map(|(id, reason)| RefusedRequest {
                    id: RequestId(id.clone()),
                    reason: reason.clone(),
                })
                .collect(),
            changed: s.changed.clone(),
        }
    }
}

/// Receives a sync's progress after each exchange. Implemented by the app.
#[uniffi::export(with_foreign)]
pub trait SyncProgress: Send + Sync {
    /// Called after each exchange with the totals so far.
    fn on_progress(&self, report: SyncReport);
}

/// Receives the ids of requests that changed (local writes, and what a
/// sync brought). Implemented by the app; called from the library's
/// threads, never while the library holds a lock.
#[uniffi::export(with_foreign)]
pub trait RequestObserver: Send + Sync {
    /// These requests changed.
    fn on_change(&self, ids: Vec<RequestId>);
}
