//! # sambung-server
//!
//! The sync server: device enrollment with one-time codes, signed sync
//! exchanges (`POST /v1/sync`, protocol in `docs/protocol.md`), and scoping
//! of what each account may see. The HTTP surface is [`api`]; below it,
//! the domain's operations and the rules of every write ([`exchange`],
//! [`documents`], [`agency`], [`enroll`], [`blobs`], [`audit`],
//! [`webhooks`], [`erasure`]), written once over a transaction's building
//! blocks ([`storage::Tx`]); at the bottom, [`storage::Storage`] with its
//! two backends (one SQLite file, the embedded default; PostgreSQL). Only
//! `api` knows HTTP; storage knows nothing of what its rows mean
//! (`docs/architecture.md`, "Inside `sambung-server`").

pub mod accounts;
pub mod agency;
pub mod api;
pub mod audit;
pub mod authority;
pub mod blobs;
pub mod catalog;
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
