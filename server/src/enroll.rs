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
use crate::storage::Storage;

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
    storage.add_enrollment(account, &code_hash(&code), now + ttl_secs)?;
    Ok(code)
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
    storage.change_account(id, role, regions, now_ms)
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
