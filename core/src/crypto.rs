//! Encryption at rest (design-notes decision 1): a 32-byte data key, HKDF
//! sub-keys per purpose, AES-256-GCM with a random nonce per value in a
//! versioned envelope whose associated data binds the value to its place,
//! and HMAC-SHA256 lookup hashes for equality search.

use std::num::NonZeroU32;

use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, hkdf, hmac, pbkdf2};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::Error;

/// Length of the data key.
pub const KEY_LEN: usize = 32;
/// PBKDF2 rounds for passphrases outside tests (OWASP 2023 for
/// PBKDF2-HMAC-SHA256).
pub const PBKDF2_ROUNDS: u32 = 600_000;
/// Envelope version 1: AES-256-GCM, 12-byte random nonce, 16-byte tag.
const ENVELOPE_V1: u8 = 1;
const NONCE_LEN: usize = 12;
/// Bytes an envelope adds to a plaintext.
pub const ENVELOPE_OVERHEAD: usize = 1 + NONCE_LEN + 16;

/// The store's 32-byte data key. Zeroised on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; KEY_LEN]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(…)")
    }
}

impl DataKey {
    /// A key from raw bytes (from a platform keystore).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        DataKey(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, Error> {
        let mut k = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut k)
            .map_err(|_| Error::Crypto("the system random generator failed"))?;
        Ok(DataKey(k))
    }

    /// Derives a key from a passphrase with PBKDF2-HMAC-SHA256.
    pub fn from_passphrase(passphrase: &[u8], salt: &[u8], rounds: NonZeroU32) -> Self {
        let mut k = [0u8; KEY_LEN];
        pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, rounds, salt, passphrase, &mut k);
        DataKey(k)
    }

    /// The raw bytes, for handing to a platform keystore.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Where the data key comes from on a phone: the app implements this over
/// Android Keystore or the iOS Keychain, which keep the key wrapped by
/// hardware. Called once per open; the key is raw (no KDF), so opening is
/// fast.
pub trait KeyProvider: Send + Sync {
    /// The store's data key. The provider creates and keeps one on first
    /// use. An error message must not contain the key.
    fn data_key(&self) -> Result<DataKey, String>;
}

/// A fixed key, for tests and tools.
#[derive(Debug)]
pub struct StaticKeyProvider(pub DataKey);

impl KeyProvider for StaticKeyProvider {
    fn data_key(&self) -> Result<DataKey, String> {
        Ok(self.0.clone())
    }
}

/// What a value is encrypted for; each purpose has its own sub-key.
#[derive(Clone, Copy)]
pub(crate) enum Purpose {
    Records,
    Attachments,
}

/// Sub-keys derived from one data key.
pub(crate) struct Keys {
    records: aead::LessSafeKey,
    attachments: aead::LessSafeKey,
    lookup: hmac::Key,
    rng: SystemRandom,
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl Keys {
    pub(crate) fn derive(key: &DataKey) -> Result<Keys, Error> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"sambung.store.v1").extract(&key.0);
        let expand = |info: &'static [u8]| -> Result<Zeroizing<[u8; 32]>, Error> {
            let mut out = Zeroizing::new([0u8; 32]);
            prk.expand(&[info], Len(32))
                .and_then(|okm| okm.fill(&mut out[..]))
                .map_err(|_| Error::Crypto("key derivation failed"))?;
            Ok(out)
        };
        let aead_key = |bytes: &[u8]| -> Result<aead::LessSafeKey, Error> {
            aead::UnboundKey::new(&aead::AES_256_GCM, bytes)
                .map(aead::LessSafeKey::new)
                .map_err(|_| Error::Crypto("bad key length"))
        };
        Ok(Keys {
            records: aead_key(&expand(b"records")?[..])?,
            attachments: aead_key(&expand(b"attachments")?[..])?,
            lookup: hmac::Key::new(hmac::HMAC_SHA256, &expand(b"lookup")?[..]),
            rng: SystemRandom::new(),
        })
    }

    fn key(&self, purpose: Purpose) -> &aead::LessSafeKey {
        match purpose {
            Purpose::Records => &self.records,
            Purpose::Attachments => &self.attachments,
        }
    }

    /// Encrypts `plaintext` bound to `place` (table, column, row).
    pub(crate) fn seal(
        &self,
        purpose: Purpose,
        place: &Place<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| Error::Crypto("the system random generator failed"))?;
        let mut out = Vec::with_capacity(plaintext.len() + ENVELOPE_OVERHEAD);
        out.push(ENVELOPE_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .key(purpose)
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(place.aad(ENVELOPE_V1)),
                &mut out[1 + NONCE_LEN..],
            )
            .map_err(|_| Error::Crypto("encryption failed"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts an envelope written by `seal` for the same place; any
    /// tampering, move to another row, or other key fails.
    pub(crate) fn open(
        &self,
        purpose: Purpose,
        place: &Place<'_>,
        envelope: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if envelope.len() < ENVELOPE_OVERHEAD || envelope[0] != ENVELOPE_V1 {
            return Err(OpenError);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&envelope[1..1 + NONCE_LEN]);
        let mut buf = Zeroizing::new(envelope[1 + NONCE_LEN..].to_vec());
        let len = self
            .key(purpose)
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(place.aad(envelope[0])),
                &mut buf[..],
            )
            .map_err(|_| OpenError)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    /// Keyed hash of a value for equality lookups (a NIK, a content hash),
    /// truncated to 128 bits: ample against collisions in one phone's store,
    /// and half the index size.
    pub(crate) fn lookup_hash(&self, domain: &str, value: &[u8]) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.lookup);
        ctx.update(domain.as_bytes());
        ctx.update(&[0]);
        ctx.update(value);
        ctx.sign().as_ref()[..16].to_vec()
    }
}

/// A stored value failed authentication.
#[derive(Debug)]
pub(crate) struct OpenError;

/// Where a value lives: its associated data.
pub(crate) struct Place<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub row: &'a [u8],
    pub index: u64,
}

impl Place<'_> {
    fn aad(&self, version: u8) -> Vec<u8> {
        let mut a = Vec::with_capacity(48 + self.row.len());
        a.extend_from_slice(b"sambung");
        a.push(version);
        for part in [self.table.as_bytes(), self.column.as_bytes(), self.row] {
            a.extend_from_slice(&(part.len() as u32).to_be_bytes());
            a.extend_from_slice(part);
        }
        a.extend_from_slice(&self.index.to_be_bytes());
        a
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// 32 random bytes (a server secret, a key).
pub fn random_key_bytes() -> Result<[u8; 32], Error> {
    random_bytes()
}

/// Random bytes.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Error::Crypto("the system random generator failed"))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn place(row: &[u8]) -> Place<'_> {
        Place {
            table: "t",
            column: "c",
            row,
            index: 0,
        }
    }

    #[test]
    fn envelope_is_bound_to_its_place_and_key() {
        let keys = Keys::derive(&DataKey::from_bytes([7; 32])).unwrap();
        let other = Keys::derive(&DataKey::from_bytes([8; 32])).unwrap();
        let env = keys
            .seal(Purpose::Records, &place(b"row1"), b"secret")
            .unwrap();
        assert_eq!(
            &keys.open(Purpose::Records, &place(b"row1"), &env).unwrap()[..],
            b"secret"
        );
        assert!(keys.open(Purpose::Records, &place(b"row2"), &env).is_err());
        assert!(
            keys.open(Purpose::Attachments, &place(b"row1"), &env)
                .is_err()
        );
        assert!(other.open(Purpose::Records, &place(b"row1"), &env).is_err());
        let mut tampered = env.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(
            keys.open(Purpose::Records, &place(b"row1"), &tampered)
                .is_err()
        );
        assert!(
            keys.open(Purpose::Records, &place(b"row1"), &env[..5])
                .is_err()
        );
        // Same plaintext twice: different ciphertexts (random nonce).
        let env2 = keys
            .seal(Purpose::Records, &place(b"row1"), b"secret")
            .unwrap();
        assert_ne!(env, env2);
    }

    #[test]
    fn lookup_hash_is_keyed_and_domain_separated() {
        let keys = Keys::derive(&DataKey::from_bytes([7; 32])).unwrap();
        let other = Keys::derive(&DataKey::from_bytes([8; 32])).unwrap();
        assert_eq!(keys.lookup_hash("nik", b"1"), keys.lookup_hash("nik", b"1"));
        assert_ne!(keys.lookup_hash("nik", b"1"), keys.lookup_hash("sha", b"1"));
        assert_ne!(
            keys.lookup_hash("nik", b"1"),
            other.lookup_hash("nik", b"1")
        );
    }

    #[test]
    fn passphrase_derivation_depends_on_salt() {
        let r = NonZeroU32::new(10).unwrap();
        let a = DataKey::from_passphrase(b"pw", b"salt-a", r);
        let b = DataKey::from_passphrase(b"pw", b"salt-b", r);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "DataKey(…)");
    }

    proptest! {
        #[test]
        fn seal_open_roundtrip(data in proptest::collection::vec(any::<u8>(), 0..2048), row in proptest::collection::vec(any::<u8>(), 0..32), index: u64) {
            let keys = Keys::derive(&DataKey::from_bytes([1; 32])).unwrap();
            let p = Place { table: "x", column: "y", row: &row, index };
            let env = keys.seal(Purpose::Attachments, &p, &data).unwrap();
            prop_assert_eq!(env.len(), data.len() + ENVELOPE_OVERHEAD);
            prop_assert_eq!(&keys.open(Purpose::Attachments, &p, &env).unwrap()[..], &data[..]);
        }

        #[test]
        fn open_never_panics_on_garbage(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let keys = Keys::derive(&DataKey::from_bytes([1; 32])).unwrap();
            prop_assert!(keys.open(Purpose::Records, &place(b"r"), &data).is_err());
        }
    }
}
