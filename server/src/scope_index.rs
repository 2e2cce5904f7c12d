//! The scope index: every log entry is filed under keys naming who may see
//! its document (its owner, the NIK it was filed for, its assignee, each
//! prefix of its region), and a pull reads the entries under the keys of
//! the caller's account — one indexed query, whose cost is what the caller
//! may see, not what the whole agency wrote (Couchbase's channels,
//! PowerSync's buckets).
//!
//! The index only finds candidates: [`crate::accounts::Account::may_see`]
//! on the document's current scope still decides. An entry is filed under
//! the keys of its document's scope before and after the write, so that
//! accounts that could see the document and no longer can find the entry,
//! and are told the document is gone.
//!
//! Keys are 64 bits of SHA-256 of a tagged name: a collision costs reading
//! one entry more, never showing one (`may_see` decides).

use std::collections::BTreeSet;

use sambung_core::lifecycle::Role;
use sambung_core::protocol::DocId;

use crate::accounts::{Account, Draft, Scope};
use crate::error::ServerError;

/// A key of the scope index.
pub type ScopeKey = i64;

/// Which entries of the log a caller reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    /// The whole log (an agency account without regions sees every
    /// submitted request), but for entries meant for other accounts only.
    All {
        /// The caller's account (its own entries of the log are read).
        account: String,
    },
    /// The entries filed under these keys.
    Keys(Vec<ScopeKey>),
}

fn key(tag: &str, value: &[u8]) -> ScopeKey {
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    h.update(tag.as_bytes());
    h.update(&[0]);
    h.update(value);
    let digest = h.finish();
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(b)
}

/// The key of the entries meant for one account: its own documents, and
/// the documents that became visible or invisible to it when the account
/// changed (see [`account_notices`]).
pub fn account_key(account: &str) -> ScopeKey {
    key("account", account.as_bytes())
}

fn nik_key(nik_hash: &[u8]) -> ScopeKey {
    key("nik", nik_hash)
}

fn assignee_key(account: &str) -> ScopeKey {
    key("assignee", account.as_bytes())
}

fn region_key(region: &str) -> ScopeKey {
    key("region", region.as_bytes())
}

/// Every whole-segment prefix of a region code and the code itself
/// (`32.73.01` gives `32`, `32.73`, `32.73.01`).
fn region_prefixes(region: &str) -> impl Iterator<Item = &str> {
    region
        .match_indices('.')
        .map(|(i, _)| &region[..i])
        .chain(std::iter::once(region))
        .filter(|p| !p.is_empty())
}

/// The keys a document of this scope is filed under.
pub fn doc_keys(scope: &Scope) -> BTreeSet<ScopeKey> {
    let mut keys = BTreeSet::from([account_key(&scope.owner)]);
    if scope.draft == Draft::Own {
        return keys;
    }
    if let Some(nik) = &scope.applicant_nik_hash {
        keys.insert(nik_key(nik));
    }
    if scope.draft == Draft::OnBehalf {
        return keys;
    }
    if let Some(a) = &scope.assignee {
        keys.insert(assignee_key(a));
    }
    keys.extend(region_prefixes(&scope.region).map(region_key));
    keys
}

/// The keys an entry of a write is filed under: those of the document's
/// scope now and, when it changed, before (so that who lost sight of it
/// learns so).
pub fn write_keys(before: Option<&Scope>, after: &Scope) -> Vec<ScopeKey> {
    let mut keys = doc_keys(after);
    if let Some(b) = before.filter(|b| *b != after) {
        keys.extend(doc_keys(b));
    }
    keys.into_iter().collect()
}

/// What an account reads of the log.
pub fn reader_of(account: &Account) -> Reader {
    let mut keys = BTreeSet::from([account_key(&account.id)]);
    match account.role {
        Role::Resident => keys.extend(account.nik_hash.as_deref().map(nik_key)),
        Role::Officer => {
            keys.insert(assignee_key(&account.id));
            keys.extend(account.regions.iter().map(|r| region_key(r)));
        }
        Role::Agency if account.regions.is_empty() => {
            return Reader::All {
                account: account.id.clone(),
            };
        }
        Role::Agency => keys.extend(account.regions.iter().map(|r| region_key(r))),
    }
    Reader::Keys(keys.into_iter().collect())
}

/// The documents to look at when an account changes from `before` to
/// `after`: those filed under a key only one of them reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidates {
    /// Nothing the account may see changed.
    None,
    /// Every document (one side reads the whole log).
    All,
    /// The documents filed under these keys.
    Keys(Vec<ScopeKey>),
}

/// See [`Candidates`].
pub fn candidates(before: &Account, after: &Account) -> Candidates {
    match (reader_of(before), reader_of(after)) {
        (Reader::All { .. }, Reader::All { .. }) => Candidates::None,
        (Reader::All { .. }, _) | (_, Reader::All { .. }) => Candidates::All,
        (Reader::Keys(b), Reader::Keys(a)) => {
            let (b, a): (BTreeSet<_>, BTreeSet<_>) =
                (b.into_iter().collect(), a.into_iter().collect());
            let changed: Vec<ScopeKey> = b.symmetric_difference(&a).copied().collect();
            if changed.is_empty() {
                Candidates::None
            } else {
                Candidates::Keys(changed)
            }
        }
    }
}

/// What an account's devices are told of a document when the account
/// changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Newly visible: the whole document is sent.
    Visible,
    /// No longer visible: the document is said to be gone.
    Gone,
}

/// Of the `candidates` (documents and their current scopes), those whose
/// visibility to the account changed from `before` to `after`, and how.
pub fn account_notices(
    before: &Account,
    after: &Account,
    candidates: &[(DocId, Scope)],
) -> Vec<(DocId, Notice)> {
    candidates
        .iter()
        .filter_map(
            |(id, scope)| match (before.may_see(scope), after.may_see(scope)) {
                (false, true) => Some((*id, Notice::Visible)),
                (true, false) => Some((*id, Notice::Gone)),
                _ => None,
            },
        )
        .collect()
}

/// A stored document (`save()`, compressed) as a pull carries a whole
/// document: without compressed columns, which devices refuse from the
/// server ([`sambung_core::protocol::limits::Sender::Server`]).
pub fn whole_document(stored: &[u8]) -> Result<Vec<u8>, ServerError> {
    Ok(automerge::AutoCommit::load(stored)
        .map_err(|_| ServerError::Storage("a stored document does not load".into()))?
        .save_nocompress())
}

#[cfg(test)]
mod tests;
