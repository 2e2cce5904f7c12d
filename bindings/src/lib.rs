//! # sambung-ffi
//!
//! The one library that Kotlin, Swift and Python load (`cdylib` for
//! Android, Python and the JVM; `staticlib` for the iOS XCFramework). A thin
//! layer over `sambung-core`, exported with uniffi's proc-macros: the
//! request model itself crosses the boundary as records and enums (derived
//! in `sambung-core` behind its `ffi` feature), the store and the sync
//! client as one [`Client`] object whose slow calls are all `async` and run
//! off the caller's thread.
//!
//! Generated bindings: Kotlin package `id.sambung` (model in
//! `id.sambung.model`), Swift module `Sambung`, Python modules `sambung_ffi`
//! and `sambung_core` (see `uniffi.toml`).

mod catalog;
mod client;
mod error;
#[cfg(test)]
mod ffi_cost;
mod keys;
mod logging;
mod records;
mod runtime;

pub use catalog::FormCheck;
pub use client::{Client, Subscription};
pub use error::{FieldError, SambungError};
pub use keys::{KeyProvider, KeyProviderError};
pub use logging::{LogLevel, LogRecord, Logger, clear_logger, set_logger};
pub use records::{
    ClientConfig, EnrollmentInfo, ListQuery, RefusedRequest, RequestObserver, SyncProgress,
    SyncReport,
};

use sambung_core::model::{Kind, RequestContent};

uniffi::setup_scaffolding!("sambung");

/// A valid example of a kind, to start a draft from (every field the kind
/// has, filled in plausibly).
#[uniffi::export]
pub fn template(kind: Kind) -> RequestContent {
    sambung_core::templates::example(kind)
}

/// Every kind of request, in a stable order.
#[uniffi::export]
pub fn kinds() -> Vec<Kind> {
    Kind::ALL.to_vec()
}
