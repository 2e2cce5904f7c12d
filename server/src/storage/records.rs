//! The rows storage keeps for the audit trail and webhooks: plain records,
//! defined here at the bottom so that storage needs nothing from the
//! modules that give them meaning ([`crate::audit`], [`crate::webhooks`]
//! re-export them).

use sambung_core::protocol::DocId;

use crate::accounts::Account;

/// What is recorded of one access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Unix milliseconds.
    pub at: i64,
    /// Account id.
    pub account: String,
    /// The account's role.
    pub role: String,
    /// The enrolled key (device) that signed the call.
    pub device: Option<[u8; 16]>,
    /// `read`, `write`, `list`, `status`, `note`, `assign`, `export`,
    /// `exposure`, … and `account` (an administrator changed an account's
    /// role or regions).
    pub action: String,
    /// The request concerned, if one.
    pub request: Option<DocId>,
    /// `METHOD /path` of the call (the path without its query, which may
    /// carry filters); for `account`, the command and what it changed.
    pub endpoint: String,
}

/// A stored entry: its record, position and chain hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position, from 1, without gaps.
    pub seq: u64,
    /// What happened.
    pub record: AuditRecord,
    /// The previous entry's hash (zeros for the first).
    pub prev: [u8; 32],
    /// This entry's hash.
    pub hash: [u8; 32],
}

/// Which entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this request's.
    pub request: Option<DocId>,
    /// Only this account's.
    pub account: Option<String>,
    /// Only this device's.
    pub device: Option<[u8; 16]>,
}

/// A subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// The agency account it belongs to.
    pub account: Account,
    /// Where deliveries go.
    pub url: String,
    /// What it receives.
    pub events: Vec<String>,
}

/// A delivery to queue: which subscription, which event (JSON).
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The subscription.
    pub webhook: String,
    /// The event type.
    pub event: String,
    /// The body, as sent.
    pub payload: String,
}

/// A queued delivery claimed for sending.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its position in the queue; `webhook-id` is `msg_<seq>`.
    pub seq: i64,
    /// The subscription's id.
    pub webhook: String,
    /// The URL.
    pub url: String,
    /// The subscription's secret as stored: sealed (see
    /// [`crate::secrets::Secrets::seal_webhook_secret`]).
    pub secret: Vec<u8>,
    /// The body.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Until when this server holds it: the token that lets it record the
    /// outcome (after that, another server may have taken it).
    pub lease_until: i64,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Try again at `next_at` (Unix ms), or never when `None`.
    Retry {
        /// When.
        next_at: Option<i64>,
        /// Why (an HTTP status or a network failure kind).
        error: String,
    },
}
