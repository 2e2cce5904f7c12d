//! Helpers shared by the store tests.
#![allow(dead_code)]

use std::num::NonZeroU32;
use std::path::Path;

use sambung_core::crypto::DataKey;
use sambung_core::lifecycle::Role;
use sambung_core::store::{Identity, Secret, Store};

pub fn key(n: u8) -> Secret {
    Secret::Key(DataKey::from_bytes([n; 32]))
}

pub fn resident() -> Identity {
    Identity {
        user: "resident-1".into(),
        role: Role::Resident,
    }
}

pub fn officer() -> Identity {
    Identity {
        user: "officer-7".into(),
        role: Role::Officer,
    }
}

/// A store with a raw key.
pub fn store(dir: &Path, who: Identity) -> Store {
    Store::init(dir, &key(1), who).unwrap()
}

/// Few PBKDF2 rounds: tests check behaviour, not key stretching cost.
pub fn rounds() -> NonZeroU32 {
    NonZeroU32::new(1_000).unwrap()
}

/// Every file under `dir`, recursively, with its bytes.
pub fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            out.push((p, bytes));
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
