//! One-time enrollment codes. The agency creates an account and a code
//! (`sambung admin enroll`); the device redeems the code once, before it
//! expires, registering its public key and proving it holds the private
//! half (its signature over the code). Only the code's hash is stored.
//! Enrolling never changes an existing account; [`change_account`] does,
//! and writes the change to the audit trail.

use sambung_core::crypto::sha256;
use sambung_core::lifecycle::Role;

use crate::accounts::Account;
use crate::error::ServerError;
use crate::scope_index::{self, Notice};
use crate::storage::{NewLogEntry, Storage, Tx, in_transaction};

/// Letters and digits that cannot be mistaken for one another when read
/// aloud or copied by hand (no 0/O, 1/I/L).
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A fresh code: 12 characters (about 59 bits) as `XXXX-XXXX-XXXX`.
pub fn new_code() -> Result<String, ServerError> {
    let raw: [u8; 32] = sambung_core::crypto::random_key_bytes()
        .map_err(|_| ServerError::Storage("no randomness".into()))?;
    let chars: Vec<char> = raw
        .iter()
        .filter(|b| (**b as usize) < ALPHABET.len() * (256 / ALPHABET.len()))
        .take(12)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    if chars.len() < 12 {
        // Rejection sampling ran short (rare): draw again.
        return new_code();
    }
    Ok(format!(
        "{}-{}-{}",
        chars[..4].iter().collect::<String>(),
        chars[4..8].iter().collect::<String>(),
        chars[8..].iter().collect::<String>()
    ))
}

/// The stored form of a code: SHA-256 of its normalised text (case, dashes
/// and spaces do not matter when typed).
pub fn code_hash(code: &str) -> [u8; 32] {
    sha256(sambung_core::protocol::normalise_code(code).as_bytes())
}

/// Creates the account (or finds it, with the same role and regions) and a
/// code valid for `ttl_secs`. An existing account of another role or other
/// regions is refused ([`ServerError::AccountConflict`]) and left as it was.
pub fn create(
    storage: &dyn Storage,
    account: &Account,
    now: i64,
    ttl_secs: i64,
) -> Result<String, ServerError> {
    let code = new_code()?;
    let hash = code_hash(&code);
    in_transaction(storage, |tx| {
        add_enrollment_in_tx(tx, account, &hash, now + ttl_secs)
    })?;
    Ok(code)
}

/// Creates `account` (or finds it with the same role and regions, then
/// linking a NIK hash if given and it has none) and records a one-time
/// code for it, by hash.
pub fn add_enrollment_in_tx(
    tx: &mut dyn Tx,
    account: &Account,
    code_hash: &[u8],
    expires_at: i64,
) -> Result<(), ServerError> {
    match tx.account(&account.id)? {
        Some(before) => {
            check_same_account(&before, account)?;
            if let (None, Some(nik)) = (&before.nik_hash, &account.nik_hash) {
                tx.link_nik(&account.id, nik)?;
                // A NIK linked now: what was filed for it becomes visible.
                let after = Account {
                    nik_hash: Some(nik.clone()),
                    ..before.clone()
                };
                account_notices_in_tx(tx, &before, &after)?;
            }
        }
        None => tx.insert_account(account)?,
    }
    tx.insert_enrollment(code_hash, &account.id, expires_at)?;
    Ok(())
}

/// Sets an existing account's role and regions (`sambung admin account`),
/// recording the change — what it was, what it is — in the audit trail in
/// the same transaction. The account as it was; `None` when there is no
/// such account (nothing written).
pub fn change_account(
    storage: &dyn Storage,
    id: &str,
    role: Role,
    regions: &[String],
    now_ms: i64,
) -> Result<Option<Account>, ServerError> {
    in_transaction(storage, |tx| {
        let Some(before) = tx.account(id)? else {
            return Ok(None);
        };
        tx.set_account_scope(id, role, regions)?;
        let after = Account {
            role,
            regions: regions.to_vec(),
            ..before.clone()
        };
        account_notices_in_tx(tx, &before, &after)?;
        let record = crate::audit::account_change_record(&before, role, regions, now_ms);
        crate::audit::append_in_tx(tx, std::slice::from_ref(&record))?;
        Ok(Some(before))
    })
}

/// Redeems a code once, binding a device key to its account (which it
/// returns). An unknown, used or expired code is
/// [`ServerError::BadEnrollmentCode`]; a device id enrolled already is
/// refused, and the code stays unused.
pub fn redeem(
    storage: &dyn Storage,
    code_hash: &[u8],
    device: [u8; 16],
    public_key: [u8; 32],
    now: i64,
) -> Result<Account, ServerError> {
    in_transaction(storage, |tx| {
        let account = tx
            .use_enrollment(code_hash, now)?
            .ok_or(ServerError::BadEnrollmentCode)?;
        if !tx.insert_device(device, &account, public_key, now)? {
            return Err(ServerError::BadRequest(
                "this device id is already enrolled".into(),
            ));
        }
        tx.account(&account)?
            .ok_or_else(|| ServerError::Storage("a code of an account that is gone".into()))
    })
}

/// Writes what an account change from `before` to `after` made visible or
/// invisible to the account, as log entries meant for it alone (see
/// [`scope_index::account_notices`]), in the change's transaction.
pub fn account_notices_in_tx(
    tx: &mut dyn Tx,
    before: &Account,
    after: &Account,
) -> Result<(), ServerError> {
    let candidates = tx.document_scopes(&scope_index::candidates(before, after))?;
    let keys = vec![scope_index::account_key(&after.id)];
    let mut entries = Vec::new();
    for (id, notice) in scope_index::account_notices(before, after, &candidates) {
        let (data, heads) = tx
            .document_state(&id)?
            .ok_or_else(|| ServerError::Storage("a document went missing".into()))?;
        entries.push(NewLogEntry {
            doc: id,
            data: match notice {
                Notice::Visible => scope_index::whole_document(&data)?,
                Notice::Gone => Vec::new(),
            },
            heads,
            device: [0; 16],
            replaces: false,
            audience: Some(after.id.clone()),
            keys: keys.clone(),
        });
    }
    tx.append_log(&entries)?;
    Ok(())
}

/// Whether an enrollment for `wanted` may go on with the `existing`
/// account: the same role and the same regions (in any order), and never
/// another NIK.
fn check_same_account(existing: &Account, wanted: &Account) -> Result<(), ServerError> {
    let sorted = |r: &[String]| {
        let mut r = r.to_vec();
        r.sort();
        r.dedup();
        r
    };
    if existing.nik_hash.is_some()
        && wanted.nik_hash.is_some()
        && existing.nik_hash != wanted.nik_hash
    {
        return Err(ServerError::NikConflict {
            account: existing.id.clone(),
        });
    }
    if existing.role == wanted.role && sorted(&existing.regions) == sorted(&wanted.regions) {
        return Ok(());
    }
    Err(ServerError::AccountConflict {
        account: existing.id.clone(),
        role: existing.role.as_str().to_owned(),
        regions: existing.regions.join(","),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_readable_and_normalised() {
        let a = new_code().unwrap();
        let b = new_code().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 14);
        assert!(a.chars().all(|c| c == '-' || ALPHABET.contains(&(c as u8))));
        assert_eq!(
            code_hash(&a),
            code_hash(&a.to_lowercase().replace('-', " "))
        );
        assert_ne!(code_hash(&a), code_hash(&b));
    }
}
