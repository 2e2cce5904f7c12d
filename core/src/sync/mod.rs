//! Sync with the server (protocol in `docs/protocol.md`): a
//! [`SyncSession`] decides what each exchange carries and applies each
//! answer to the store, without any transport (`session`), as the
//! attachments' transfers are decided (`transfer`); the HTTP
//! [`Client`] carries the exchanges, uploads and downloads (`client`,
//! feature `client`); [`SyncEngine`] decides when to sync (`engine`);
//! [`ServerTrust`] which servers to trust (`trust`).

mod session;
pub mod transfer;

pub use session::{Step, SyncSession, SyncSummary, wipe_if_asked};

/// The device's upload chunk sizes (with the other attachment limits).
pub use crate::attachment_limits::{MAX_UPLOAD_CHUNK as MAX_CHUNK, MIN_UPLOAD_CHUNK as MIN_CHUNK};

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod engine;
#[cfg(feature = "client")]
mod trust;

#[cfg(feature = "client")]
pub use client::{Client, SyncConfig, check_server_url, install_crypto_provider};
#[cfg(feature = "client")]
pub use engine::{EngineConfig, EngineStatus, SyncEngine, backoff};
#[cfg(feature = "client")]
pub use trust::{ServerTrust, spki_sha256};
