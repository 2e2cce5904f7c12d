//! The audit trail (UU PDP art. 31's record of processing): who — account,
//! role and signing key — read or changed which request, when, through
//! which endpoint. Append only, and tamper-evident: each entry carries the
//! SHA-256 of the previous entry's hash and its own fields, so changing,
//! removing or reordering any entry breaks every hash after it
//! ([`verify`]). Entries hold ids and roles, never request content.

use sambung_core::lifecycle::Role;

use crate::accounts::Account;
use crate::error::ServerError;
pub use crate::storage::{AuditEntry, AuditFilter, AuditRecord};
use crate::storage::{Storage, Tx, in_transaction};

/// The hash of an entry: SHA-256 over the previous hash and each field,
/// length-prefixed so that no two entries encode alike.
pub fn chain_hash(prev: &[u8; 32], seq: u64, r: &AuditRecord) -> [u8; 32] {
    let mut buf = Vec::with_capacity(160);
    buf.extend_from_slice(b"sambung-audit-v1");
    buf.extend_from_slice(prev);
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&r.at.to_be_bytes());
    let mut field = |b: &[u8]| {
        buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
        buf.extend_from_slice(b);
    };
    field(r.account.as_bytes());
    field(r.role.as_bytes());
    field(r.device.as_ref().map(|d| d.as_slice()).unwrap_or(&[]));
    field(r.action.as_bytes());
    field(r.request.as_ref().map(|d| d.as_slice()).unwrap_or(&[]));
    field(r.endpoint.as_bytes());
    sambung_core::crypto::sha256(&buf)
}

/// The outcome of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    /// Every entry links to the one before and hashes to what it says.
    Intact {
        /// Number of entries.
        entries: u64,
    },
    /// The first entry that does not.
    Broken {
        /// Its position.
        seq: u64,
    },
}

/// Checks the whole chain from the first entry, read a page at a time:
/// `page(after)` gives the entries after position `after`, oldest first
/// (empty at the end), e.g. `|after| storage.audit_entries(&AuditFilter::default(), after, 1000)`.
pub fn verify(
    mut page: impl FnMut(u64) -> Result<Vec<AuditEntry>, ServerError>,
) -> Result<ChainCheck, ServerError> {
    let mut prev = [0u8; 32];
    let mut expected_seq = 1;
    loop {
        let page = page(expected_seq - 1)?;
        if page.is_empty() {
            return Ok(ChainCheck::Intact {
                entries: expected_seq - 1,
            });
        }
        for e in page {
            if e.seq != expected_seq
                || e.prev != prev
                || e.hash != chain_hash(&prev, e.seq, &e.record)
            {
                return Ok(ChainCheck::Broken { seq: expected_seq });
            }
            prev = e.hash;
            expected_seq += 1;
        }
    }
}

/// Appends `records` to the trail, chained, in one transaction.
pub fn append(storage: &dyn Storage, records: &[AuditRecord]) -> Result<(), ServerError> {
    if records.is_empty() {
        return Ok(());
    }
    in_transaction(storage, |tx| append_in_tx(tx, records))
}

/// [`append`] in the transaction open on `tx` (with the change the records
/// tell of: both are kept, or neither).
pub fn append_in_tx(tx: &mut dyn Tx, records: &[AuditRecord]) -> Result<(), ServerError> {
    let (mut seq, mut prev) = tx.audit_tail()?.unwrap_or((0, [0u8; 32]));
    let mut entries = Vec::with_capacity(records.len());
    for record in records {
        seq += 1;
        let hash = chain_hash(&prev, seq, record);
        entries.push(AuditEntry {
            seq,
            record: record.clone(),
            prev,
            hash,
        });
        prev = hash;
    }
    tx.insert_audit(&entries)?;
    Ok(())
}

/// The audit record of an account change (`sambung admin account`):
/// action `account`, the account and its new role, and in the endpoint
/// field the command and what changed (roles and region codes, no
/// personal data).
pub fn account_change_record(
    before: &Account,
    role: Role,
    regions: &[String],
    now_ms: i64,
) -> AuditRecord {
    AuditRecord {
        at: now_ms,
        account: before.id.clone(),
        role: role.as_str().to_owned(),
        device: None,
        action: "account".to_owned(),
        request: None,
        endpoint: format!(
            "sambung admin account: role {} -> {}; regions [{}] -> [{}]",
            before.role.as_str(),
            role.as_str(),
            before.regions.join(","),
            regions.join(",")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str) -> AuditRecord {
        AuditRecord {
            at: 1,
            account: "dinas".into(),
            role: "agency".into(),
            device: Some([7; 16]),
            action: action.into(),
            request: Some([9; 16]),
            endpoint: "GET /v1/agency/requests/{id}".into(),
        }
    }

    #[test]
    fn every_field_and_the_link_change_the_hash() {
        let base = chain_hash(&[0; 32], 1, &record("read"));
        assert_ne!(base, chain_hash(&[1; 32], 1, &record("read")));
        assert_ne!(base, chain_hash(&[0; 32], 2, &record("read")));
        assert_ne!(base, chain_hash(&[0; 32], 1, &record("write")));
        let mut r = record("read");
        r.request = None;
        assert_ne!(base, chain_hash(&[0; 32], 1, &r));
        // Moving bytes between fields changes it too (length prefixes).
        let mut a = record("read");
        a.account = "dinasa".into();
        a.role = "gency".into();
        assert_ne!(base, chain_hash(&[0; 32], 1, &a));
    }
}
