//! Device keys and request signatures. Each enrolled device holds an
//! Ed25519 key pair; every call carries one header, and the signature
//! covers the server's audience (which deployment the call is for), the
//! method, path, device, time, a random nonce, the SHA-256 of the body and
//! the headers that change what the call does ([`SignedHeader`]). The
//! server checks the signature and the time window here, and keeps the
//! nonces of the window to refuse replays. Enrollment proves possession of
//! the key by signing the redeemed code ([`DeviceKey::prove_enrollment`]).

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

/// What opens every signed text: the signature scheme. `sambung-v1` signed
/// neither the audience nor the headers; a server recognises such a
/// signature and answers "update the app" ([`AuthError::OldScheme`]).
const SCHEME: &str = "sambung-v2";
const OLD_SCHEME: &str = "sambung-v1";
/// What opens the text a device signs to prove it holds its key when it
/// enrolls.
const ENROLL_SCHEME: &str = "sambung-enroll-v1";

/// Checks an audience: the identity of one deployment (every server on one
/// database shares it), 32 lowercase hex digits, learnt at enrollment.
///
/// ```
/// use sambung_core::protocol::check_audience;
/// assert!(check_audience("0123456789abcdef0123456789abcdef").is_ok());
/// assert!(check_audience("sambung.example.go.id").is_err());
/// ```
pub fn check_audience(audience: &str) -> Result<(), AuthError> {
    if audience.len() == 32
        && audience
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(AuthError::BadAudience)
    }
}

/// A request header that changes what a call does, so it is signed with
/// the call: an upload's offset and length, a download's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedHeader {
    /// `upload-offset`: where a chunk starts.
    UploadOffset,
    /// `upload-length`: the blob's whole size.
    UploadLength,
    /// `range`: which bytes of a download.
    Range,
}

impl SignedHeader {
    /// All of them, in the order of the signed text.
    pub const ALL: [SignedHeader; 3] = [
        SignedHeader::UploadOffset,
        SignedHeader::UploadLength,
        SignedHeader::Range,
    ];

    /// The header's name (lowercase).
    pub fn name(self) -> &'static str {
        match self {
            SignedHeader::UploadOffset => "upload-offset",
            SignedHeader::UploadLength => "upload-length",
            SignedHeader::Range => "range",
        }
    }
}

/// What one signature covers: the call as the server will act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    audience: &'a str,
    method: &'a str,
    path: &'a str,
    body: &'a [u8],
    headers: [Option<&'a str>; 3],
}

impl<'a> Call<'a> {
    /// A call to the deployment `audience`: `path` is the path with its
    /// query, as sent.
    pub fn new(audience: &'a str, method: &'a str, path: &'a str, body: &'a [u8]) -> Self {
        Call {
            audience,
            method,
            path,
            body,
            headers: [None; 3],
        }
    }

    /// The same call carrying `header` with `value`.
    pub fn header(mut self, header: SignedHeader, value: &'a str) -> Self {
        self.headers[header as usize] = Some(value);
        self
    }

    /// The same call carrying the signed headers that `get` (a lookup in a
    /// received request's headers) finds.
    pub fn headers_from(mut self, get: impl Fn(&str) -> Option<&'a str>) -> Self {
        for h in SignedHeader::ALL {
            self.headers[h as usize] = get(h.name());
        }
        self
    }
}

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
    /// An audience is not a deployment id (32 lowercase hex digits).
    #[error("the server's audience must be 32 lowercase hex digits")]
    BadAudience,
    /// An enrollment proof is not an Ed25519 signature (128 hex digits).
    #[error("the enrollment proof must be 128 hex digits")]
    BadProof,
    /// The request is signed the way an older app signed (without the
    /// audience and headers).
    #[error("this app signs its requests the old way; update the app")]
    OldScheme,
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

    /// Signs a `call` of `device` at `now` (Unix seconds).
    ///
    /// ```
    /// use sambung_core::protocol::{Call, DeviceKey, SignedHeader, SignedHeaders};
    /// let key = DeviceKey::generate().unwrap();
    /// let aud = "0123456789abcdef0123456789abcdef";
    /// let call = Call::new(aud, "PATCH", "/v1/blobs/ab", b"chunk")
    ///     .header(SignedHeader::UploadOffset, "0");
    /// let h = key.sign([1; 16], &call, 1_800_000_000).unwrap();
    /// assert!(h.verify(&key.public_key(), &call, 1_800_000_010).is_ok());
    /// let moved = call.header(SignedHeader::UploadOffset, "5");
    /// assert!(h.verify(&key.public_key(), &moved, 1_800_000_010).is_err());
    /// let elsewhere = Call::new("ffffffffffffffffffffffffffffffff", "PATCH", "/v1/blobs/ab", b"chunk")
    ///     .header(SignedHeader::UploadOffset, "0");
    /// assert!(h.verify(&key.public_key(), &elsewhere, 1_800_000_010).is_err());
    /// ```
    pub fn sign(
        &self,
        device: [u8; 16],
        call: &Call<'_>,
        now: i64,
    ) -> Result<SignedHeaders, AuthError> {
        check_audience(call.audience)?;
        let nonce: [u8; 16] = crate::crypto::random_bytes().map_err(|_| AuthError::Key)?;
        let mut h = SignedHeaders {
            device: hex::encode(device),
            timestamp: now,
            nonce: hex::encode(nonce),
            signature: String::new(),
        };
        h.signature = hex::encode(self.pair.sign(&h.canonical(call)).as_ref());
        Ok(h)
    }

    /// The proof that the device enrolling with `code` holds this key: its
    /// signature (128 hex digits) over [`enrollment_text`].
    pub fn prove_enrollment(&self, code: &str) -> String {
        let device = device_id_of(&self.public_key());
        hex::encode(self.pair.sign(&enrollment_text(code, device)).as_ref())
    }
}

/// An enrollment code as typed or read aloud, normalised: dashes and
/// spaces do not matter, nor does case.
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// What a device signs to enroll: `"sambung-enroll-v1\n" code "\n"
/// device`, the code normalised ([`normalise_code`]) and the device id in
/// lowercase hex. A copy of the request with another key cannot be signed
/// without that key's private half, and the signature names the code, so
/// it is useless for any other enrollment.
pub fn enrollment_text(code: &str, device: [u8; 16]) -> Vec<u8> {
    format!(
        "{ENROLL_SCHEME}\n{}\n{}",
        normalise_code(code),
        hex::encode(device)
    )
    .into_bytes()
}

/// Checks an enrollment `proof` (128 hex digits): the signature of
/// `public_key` over the [`enrollment_text`] of `code` and the key's
/// device id.
pub fn verify_enrollment(public_key: &[u8; 32], code: &str, proof: &str) -> Result<(), AuthError> {
    let sig = hex::decode(proof)
        .ok()
        .filter(|s| s.len() == 64)
        .ok_or(AuthError::BadProof)?;
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(&enrollment_text(code, device_id_of(public_key)), &sig)
        .map_err(|_| AuthError::BadSignature)
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

    /// The signed text of `call`: `"sambung-v2\n" audience "\n" METHOD
    /// "\n" PATH "\n" device "\n" timestamp "\n" nonce "\n"
    /// hex(sha256(body))`, then one line per [`SignedHeader`] in order, its
    /// value or empty when the call does not carry it. No part holds a
    /// newline (the audience is hex; HTTP forbids them in values).
    pub fn canonical(&self, call: &Call<'_>) -> Vec<u8> {
        let mut text = format!(
            "{SCHEME}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            call.audience,
            call.method,
            call.path,
            self.device,
            self.timestamp,
            self.nonce,
            hex::encode(crate::crypto::sha256(call.body))
        );
        for value in call.headers {
            text.push('\n');
            text.push_str(value.unwrap_or(""));
        }
        text.into_bytes()
    }

    /// What a version-1 app signed.
    fn old_canonical(&self, call: &Call<'_>) -> Vec<u8> {
        format!(
            "{OLD_SCHEME}\n{}\n{}\n{}\n{}\n{}\n{}",
            call.method,
            call.path,
            self.device,
            self.timestamp,
            self.nonce,
            hex::encode(crate::crypto::sha256(call.body))
        )
        .into_bytes()
    }

    /// Checks the signature with the device's public key, and that the
    /// request was signed within [`SIGNATURE_WINDOW_SECS`] of `now`.
    /// (Replays inside the window are the server's to refuse: it remembers
    /// the nonces it has seen.)
    ///
    /// A signature that does not verify but would have in the old scheme
    /// (an app from before the audience) is [`AuthError::OldScheme`], so
    /// that app hears "update the app" rather than "bad signature".
    pub fn verify(
        &self,
        public_key: &[u8; 32],
        call: &Call<'_>,
        now: i64,
    ) -> Result<(), AuthError> {
        let skew = now.saturating_sub(self.timestamp);
        if skew.abs() > SIGNATURE_WINDOW_SECS {
            return Err(AuthError::Stale { skew_secs: skew });
        }
        let sig = hex::decode(&self.signature).map_err(|_| AuthError::Malformed(Self::AUTH))?;
        let key = signature::UnparsedPublicKey::new(&signature::ED25519, public_key);
        if key.verify(&self.canonical(call), &sig).is_ok() {
            return Ok(());
        }
        if key.verify(&self.old_canonical(call), &sig).is_ok() {
            return Err(AuthError::OldScheme);
        }
        Err(AuthError::BadSignature)
    }
}
