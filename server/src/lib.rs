//! # sambung-server
//!
//! The sync server: device enrollment with one-time codes, signed sync
//! exchanges (`POST /v1/sync`, protocol in `docs/protocol.md`), and scoping
//! of what each account may see. Storage sits behind [`storage::Storage`];
//! the embedded default is one SQLite file. The HTTP surface is [`api`];
//! the layers below it (exchange, storage, audit, webhooks, blobs) know
//! nothing of HTTP.

pub mod accounts;
pub mod api;
pub mod audit;
pub mod authority;
pub mod blobs;
pub mod documents;
pub mod enroll;
pub mod erasure;
pub mod error;
pub mod exchange;
pub mod limits;
pub mod metrics;
pub mod scope_index;
pub mod secrets;
pub mod storage;
pub mod tls;
pub mod webhooks;

pub use error::ServerError;
