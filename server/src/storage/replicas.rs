//! Read replicas: the server's read-only work (pulls, back-office listings,
//! downloads) goes to PostgreSQL streaming replicas, everything else to
//! the primary. A replica is used only where it cannot show the past: a
//! pull only from a replica that has replayed the device's cursor (so the
//! cursor never moves backwards and nothing is skipped), a listing only
//! from one that has replayed the whole log as the primary holds it at the
//! call (so the back office reads its own writes), a blob only from one
//! that holds it whole. Otherwise the primary answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sambung_core::protocol::DocId;

use super::*;
use crate::scope_index::Reader;

/// Where a read went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The primary.
    Primary,
    /// A replica.
    Replica,
}

/// A primary and its read replicas (see the module's documentation).
pub struct Replicated {
    primary: Arc<dyn Storage>,
    replicas: Vec<Arc<dyn Storage>>,
    next: AtomicUsize,
    served: [AtomicU64; 2],
}

impl Replicated {
    /// Routes the read-only work of `primary` to `replicas`.
    pub fn new(primary: Arc<dyn Storage>, replicas: Vec<Arc<dyn Storage>>) -> Replicated {
        Replicated {
            primary,
            replicas,
            next: AtomicUsize::new(0),
            served: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// The routed reads each side answered so far: `(primary, replicas)`.
    pub fn served_counts(&self) -> (u64, u64) {
        (
            self.served[0].load(Ordering::Relaxed),
            self.served[1].load(Ordering::Relaxed),
        )
    }

    fn served(&self, target: Target) {
        self.served[target as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The replicas, starting with the next one in turn.
    fn rotation(&self) -> impl Iterator<Item = &Arc<dyn Storage>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.replicas.len();
        (0..n).map(move |i| &self.replicas[(start + i) % n])
    }

    /// A replica that has replayed the log up to `position`, if any (one
    /// that cannot be reached is passed over: the primary answers).
    fn replica_at(&self, position: u64) -> Result<Option<&Arc<dyn Storage>>, ServerError> {
        for r in self.rotation() {
            match r.log_head() {
                Ok(head) if head >= position => {
                    self.served(Target::Replica);
                    return Ok(Some(r));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "a replica did not answer; reading from the primary")
                }
            }
        }
        Ok(None)
    }
}

impl Storage for Replicated {
    fn transaction(
        &self,
        step: &mut dyn FnMut(&mut dyn Tx) -> Result<(), ServerError>,
    ) -> Result<(), ServerError> {
        self.primary.transaction(step)
    }

    fn device(&self, id: [u8; 16]) -> Result<Option<EnrolledDevice>, ServerError> {
        self.primary.device(id)
    }

    fn revoke_device(
        &self,
        id: [u8; 16],
        decision: Revocation,
        now: i64,
    ) -> Result<bool, ServerError> {
        self.primary.revoke_device(id, decision, now)
    }

    fn devices(
        &self,
        account: Option<&str>,
        role: Option<Role>,
    ) -> Result<Vec<DeviceSummary>, ServerError> {
        self.primary.devices(account, role)
    }

    fn remember_nonce(&self, device: [u8; 16], nonce: &str, now: i64) -> Result<bool, ServerError> {
        self.primary.remember_nonce(device, nonce, now)
    }

    fn document(&self, id: DocId) -> Result<Option<StoredDoc>, ServerError> {
        self.primary.document(id)
    }

    fn heads_at(&self, id: DocId, seq: u64) -> Result<Option<Vec<u8>>, ServerError> {
        self.primary.heads_at(id, seq)
    }

    fn receipts(&self, id: DocId) -> Result<Vec<Receipt>, ServerError> {
        self.primary.receipts(id)
    }

    fn log_tag(&self, seq: u64) -> Result<Option<u32>, ServerError> {
        self.primary.log_tag(seq)
    }

    fn high_cursor(&self, device: [u8; 16]) -> Result<u64, ServerError> {
        self.primary.high_cursor(device)
    }

    fn raise_high_cursor(&self, device: [u8; 16], cursor: u64) -> Result<(), ServerError> {
        self.primary.raise_high_cursor(device, cursor)
    }

    fn given(&self, device: [u8; 16], id: DocId) -> Result<u64, ServerError> {
        self.primary.given(device, id)
    }

    fn raise_given(&self, device: [u8; 16], id: DocId) -> Result<(), ServerError> {
        self.primary.raise_given(device, id)
    }

    fn log_head(&self) -> Result<u64, ServerError> {
        self.primary.log_head()
    }

    fn catalog_since(&self, seq: u64) -> Result<Vec<super::CatalogRow>, ServerError> {
        // From the primary: a device must never see a position go back.
        self.primary.catalog_since(seq)
    }

    fn log_since(&self, cursor: u64, limit: usize) -> Result<Vec<LogEntry>, ServerError> {
        self.primary.log_since(cursor, limit)
    }

    fn log_for(
        &self,
        reader: &Reader,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, ServerError> {
        // A replica holds a prefix of the log (positions are given in
        // commit order): one that has replayed the device's cursor reads
        // on from it without a gap, and never moves it backwards.
        match self.replica_at(cursor)? {
            Some(r) => r.log_for(reader, cursor, limit),
            None => {
                self.served(Target::Primary);
                self.primary.log_for(reader, cursor, limit)
            }
        }
    }

    fn legacy_secret(&self) -> Result<Option<Vec<u8>>, ServerError> {
        self.primary.legacy_secret()
    }

    fn forget_legacy_secret(&self) -> Result<(), ServerError> {
        self.primary.forget_legacy_secret()
    }

    fn bind_key_check(&self, check: &[u8]) -> Result<bool, ServerError> {
        self.primary.bind_key_check(check)
    }

    fn webhook_secrets(&self) -> Result<Vec<(String, Vec<u8>)>, ServerError> {
        self.primary.webhook_secrets()
    }

    fn set_webhook_secret(&self, id: &str, secret: &[u8]) -> Result<(), ServerError> {
        self.primary.set_webhook_secret(id, secret)
    }

    fn audit_entries(
        &self,
        filter: &AuditFilter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, ServerError> {
        self.primary.audit_entries(filter, after, limit)
    }

    fn documents_of_person(&self, nik_hash: &[u8]) -> Result<Vec<DocId>, ServerError> {
        self.primary.documents_of_person(nik_hash)
    }

    fn accounts_of_person(&self, nik_hash: &[u8]) -> Result<Vec<String>, ServerError> {
        self.primary.accounts_of_person(nik_hash)
    }

    fn blob_state(&self, sha256: &[u8; 32]) -> Result<Option<BlobState>, ServerError> {
        self.primary.blob_state(sha256)
    }

    fn blob_missing(
        &self,
        sha256: &[u8; 32],
        size: u64,
        uploader: &Uploader,
    ) -> Result<Option<u64>, ServerError> {
        self.primary.blob_missing(sha256, size, uploader)
    }

    fn blob_granted(&self, doc: DocId, sha256: &[u8; 32]) -> Result<bool, ServerError> {
        self.primary.blob_granted(doc, sha256)
    }

    fn erase_blob(&self, sha256: &[u8; 32]) -> Result<bool, ServerError> {
        self.primary.erase_blob(sha256)
    }

    fn sweep_blobs(&self, now: i64, policy: &BlobRetention) -> Result<BlobSweep, ServerError> {
        self.primary.sweep_blobs(now, policy)
    }

    fn blob_read(&self, sha256: &[u8; 32], offset: u64, len: u64) -> Result<Vec<u8>, ServerError> {
        // A verified blob never changes: any replica that holds it whole
        // serves it.
        for r in self.rotation() {
            if r.blob_state(sha256)?.is_some_and(|b| b.complete) {
                self.served(Target::Replica);
                return r.blob_read(sha256, offset, len);
            }
        }
        self.served(Target::Primary);
        self.primary.blob_read(sha256, offset, len)
    }

    fn release_freed(&self) -> Result<(), ServerError> {
        self.primary.release_freed()
    }

    fn add_webhook(&self, sub: &Subscription, secret: &[u8], now: i64) -> Result<(), ServerError> {
        self.primary.add_webhook(sub, secret, now)
    }

    fn webhooks(&self, account: Option<&str>) -> Result<Vec<Subscription>, ServerError> {
        self.primary.webhooks(account)
    }

    fn delete_webhook(&self, id: &str, account: &str) -> Result<bool, ServerError> {
        self.primary.delete_webhook(id, account)
    }

    fn claim_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, ServerError> {
        self.primary.claim_deliveries(now, lease_ms, limit)
    }

    fn finish_delivery(
        &self,
        seq: i64,
        lease_until: i64,
        outcome: &Outcome,
    ) -> Result<(), ServerError> {
        self.primary.finish_delivery(seq, lease_until, outcome)
    }

    fn queue_depth(&self) -> Result<u64, ServerError> {
        self.primary.queue_depth()
    }

    fn delivery_stats(&self, webhook: &str) -> Result<DeliveryStats, ServerError> {
        self.primary.delivery_stats(webhook)
    }

    fn count_documents(&self, filter: &DocFilter) -> Result<Vec<(String, u64)>, ServerError> {
        match self.replica_at(self.primary.log_head()?)? {
            Some(r) => r.count_documents(filter),
            None => {
                self.served(Target::Primary);
                self.primary.count_documents(filter)
            }
        }
    }

    fn list_documents(
        &self,
        filter: &DocFilter,
        after: Option<ListPosition>,
        limit: usize,
    ) -> Result<Vec<DocRow>, ServerError> {
        // The back office reads what it just wrote: a replica only when it
        // has replayed the whole log as the primary holds it now.
        match self.replica_at(self.primary.log_head()?)? {
            Some(r) => r.list_documents(filter, after, limit),
            None => {
                self.served(Target::Primary);
                self.primary.list_documents(filter, after, limit)
            }
        }
    }
}
