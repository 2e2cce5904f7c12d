//! Device keys and request signatures. Each enrolled device holds an
//! Ed25519 key pair; every exchange carries four headers, and the signature
//! covers the method, path, device, time, a random nonce and the SHA-256 of
//! the body. The server checks the signature and the time window here, and
//! keeps the nonces of the window to refuse replays.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, Ed25519KeyPair, KeyPair};
use zeroize::Zeroizing;

/// The device id that belongs to a public key: the first 16 bytes of its
/// SHA-256. It is also the device's Automerge actor id, so the author of
/// every change is bound to the key that signs its exchanges.
pub fn device_id_of(public_key: &[u8; 32]) -> [u8; 16] {
    let h = crate::crypto::sha256(public_key);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[..16]);
    id
}

/// Seconds a signed request stays valid either side of the server's clock.
pub const SIGNATURE_WINDOW_SECS: i64 = 300;

/// Why a request's authentication failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// A signature header is missing.
    #[error("the request is not signed (header {0} is missing)")]
    Missing(&'static str),
    /// A signature header is malformed.
    #[error("the signature header {0} is malformed")]
    Malformed(&'static str),
    /// The signature does not verify with the device's key.
    #[error("the signature does not match")]
    BadSignature,
    /// The request's time is too far from the server's.
    #[error("the request's time is {skew_secs} s away from the server's; check the device clock")]
    Stale {
        /// Seconds between the request's time and the server's.
        skew_secs: i64,
    },
    /// A key could not be made or read.
    #[error("the device key is unusable")]
    Key,
}

/// A device's Ed25519 key pair. The PKCS#8 bytes are zeroised on drop.
pub struct DeviceKey {
    pair: Ed25519KeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", hex::encode(self.public_key()))
    }
}

impl DeviceKey {
    /// A fresh key pair.
    pub fn generate() -> Result<Self, AuthError> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| AuthError::Key)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// The key pair stored as PKCS#8.
    pub fn from_pkcs8(bytes: &[u8]) -> Result<Self, AuthError> {
        let pair = Ed25519KeyPair::from_pkcs8(bytes).map_err(|_| AuthError::Key)?;
        Ok(DeviceKey {
            pair,
            pkcs8: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// PKCS#8 bytes, to keep in the encrypted store or a keystore.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key, registered with the server at enrollment.
    pub fn public_key(&self) -> [u8; 32] {
        let mut k = [0u8; 32];
        k.copy_from_slice(self.pair.public_key().as_ref());
        k
    }

    /// Signs a request of `device` at `now` (Unix seconds).
    ///
    /// ```
    /// use sambung_core::protocol::{DeviceKey, SignedHeaders};
    /// let key = DeviceKey::generate().unwrap();
    /// let h = key.sign([1; 16], "POST", "/v1/sync", b"body", 1_800_000_000).unwrap();
    /// assert!(h.verify(&key.public_key(), "POST", "/v1/sync", b"body", 1_800_000_010).is_ok());
    /// assert!(h.verify(&key.public_key(), "POST", "/v1/sync", b"other", 1_800_000_010).is_err());
    /// ```
    pub fn sign(
        &self,
        device: [u8; 16],
        method: &str,
        path: &str,
        body: &[u8],
        now: i64,
    ) -> Result<SignedHeaders, AuthError> {
        let nonce: [u8; 16] = crate::crypto::random_bytes().map_err(|_| AuthError::Key)?;
        let mut h = SignedHeaders {
            device: hex::encode(device),
            timestamp: now,
            nonce: hex::encode(nonce),
            signature: String::new(),
        };
        h.signature = hex::encode(self.pair.sign(&h.canonical(method, path, body)).as_ref());
        Ok(h)
    }
}

/// The signature of one request (carried by the [`SignedHeaders::AUTH`]
/// header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The device id (its Automerge actor id), 32 hex digits.
    pub device: String,
    /// Unix seconds when signed.
    pub timestamp: i64,
    /// 16 random bytes, 32 hex digits; unique per request.
    pub nonce: String,
    /// Ed25519 signature, 128 hex digits.
    pub signature: String,
}

impl SignedHeaders {
    /// The one header that carries it all, compact for a 2G link: the
    /// base64url text (no padding) of the device id (16 bytes), the
    /// timestamp (8, big-endian), the nonce (16) and the Ed25519 signature
    /// (64) — 155 bytes on the wire where four hex headers took 279.
    pub const AUTH: &'static str = "sambung-auth";

    const LEN: usize = 16 + 8 + 16 + 64;

    /// The header as a (name, value) pair.
    pub fn pairs(&self) -> [(&'static str, String); 1] {
        let mut raw = Vec::with_capacity(Self::LEN);
        raw.extend_from_slice(&hex::decode(&self.device).unwrap_or_default());
        raw.extend_from_slice(&self.timestamp.to_be_bytes());
        raw.extend_from_slice(&hex::decode(&self.nonce).unwrap_or_default());
        raw.extend_from_slice(&hex::decode(&self.signature).unwrap_or_default());
        [(Self::AUTH, URL_SAFE_NO_PAD.encode(raw))]
    }

    /// Reads the header through `get` (a header lookup), checking its
    /// shape.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, AuthError> {
        let value = get(Self::AUTH).ok_or(AuthError::Missing(Self::AUTH))?;
        let raw = URL_SAFE_NO_PAD
            .decode(value.trim())
            .ok()
            .filter(|r| r.len() == Self::LEN)
            .ok_or(AuthError::Malformed(Self::AUTH))?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[16..24]);
        Ok(SignedHeaders {
            device: hex::encode(&raw[..16]),
            timestamp: i64::from_be_bytes(ts),
            nonce: hex::encode(&raw[24..40]),
            signature: hex::encode(&raw[40..]),
        })
    }

    /// The device id as bytes.
    pub fn device_id(&self) -> Result<[u8; 16], AuthError> {
        hex::decode(&self.device)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(AuthError::Malformed(Self::AUTH))
    }

    /// The nonce as bytes: what names this signed call (receipts keep it).
    pub fn nonce_bytes(&self) -> Result<[u8; 16], AuthError> {
        hex::decode(&self.nonce)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(AuthError::Malformed(Self::AUTH))
    }

    fn canonical(&self, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
        format!(
            "sambung-v1\n{method}\n{path}\n{}\n{}\n{}\n{}",
            self.device,
            self.timestamp,
            self.nonce,
            hex::encode(crate::crypto::sha256(body))
        )
        .into_bytes()
    }

    /// Checks the signature with the device's public key, and that the
    /// request was signed within [`SIGNATURE_WINDOW_SECS`] of `now`.
    /// (Replays inside the window are the server's to refuse: it remembers
    /// the nonces it has seen.)
    pub fn verify(
        &self,
        public_key: &[u8; 32],
        method: &str,
        path: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), AuthError> {
        let skew = now.saturating_sub(self.timestamp);
        if skew.abs() > SIGNATURE_WINDOW_SECS {
            return Err(AuthError::Stale { skew_secs: skew });
        }
        let sig = hex::decode(&self.signature).map_err(|_| AuthError::Malformed(Self::AUTH))?;
        signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
            .verify(&self.canonical(method, path, body), &sig)
            .map_err(|_| AuthError::BadSignature)
    }
}
