//! # sambung-core
//!
//! The offline-first core of Sambung, shared by the Android and iOS apps:
//!
//! - [`model`]: the request kinds and their fields, with [`validation`] of
//!   every checkable field ([`identifiers`] holds NIK, NOP, KBLI, …);
//! - [`lifecycle`]: statuses, who may move them, and the deterministic
//!   derivation of the current status from an append-only history;
//! - [`document`]: one Automerge document per request (autosurgeon);
//! - [`store`]: the encrypted SQLite store ([`crypto`] holds the envelope).
//!
//! ```
//! use sambung_core::{store::{Identity, Secret, Store}, templates, model::Kind, lifecycle::{Role, Status}};
//! let dir = tempfile::tempdir().unwrap();
//! let me = Identity { user: "resident-1".into(), role: Role::Resident };
//! let key = Secret::Key(sambung_core::crypto::DataKey::generate().unwrap());
//! let store = Store::init(dir.path(), &key, me).unwrap();
//! let id = store.create(templates::example(Kind::VehicleTax)).unwrap();
//! assert_eq!(store.submit(&id).unwrap(), Status::Submitted);
//! assert_eq!(store.pending_count().unwrap(), 1);
//! ```

pub mod attachment_limits;
pub mod catalog;
pub mod crypto;
pub mod document;
pub mod edits;
pub mod error;
pub mod identifiers;
pub mod lifecycle;
pub mod metadata;
pub mod model;
#[cfg(feature = "photos")]
pub mod photo;
pub mod protocol;
pub mod rules;
pub mod store;
pub mod sync;
pub mod templates;
pub mod time;
pub mod url_rule;
pub mod validation;

pub use error::{Error, Result};
pub use time::{CivilDate, Date, Timestamp};

// The model's records and enums for the bindings crate (`bindings/`).
#[cfg(feature = "ffi")]
uniffi::setup_scaffolding!("sambung_core");
