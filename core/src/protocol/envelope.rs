//! The binary envelope: `SBG` · version byte · zstd frame of the CBOR
//! message, compressed with the protocol's dictionary. The version byte
//! sits outside the compressed part so that any server can refuse an
//! unknown version before decompressing anything.
//!
//! The dictionary (`sync-v3.dict`, 16 KiB, trained by
//! `scripts/train-dictionary` on sync messages over realistic requests)
//! holds the field names and Automerge's recurring structure, which a
//! small message cannot amortise on its own. It belongs to the protocol
//! version: a new dictionary is a new version.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::PROTOCOL_VERSION;

const MAGIC: &[u8; 3] = b"SBG";
/// zstd level: fast on a phone, and most of the gain for small messages.
const LEVEL: i32 = 19;
/// The dictionary of this protocol version.
const DICTIONARY: &[u8] = include_bytes!("sync-v3.dict");

fn encoder_dictionary() -> &'static zstd::dict::EncoderDictionary<'static> {
    static D: std::sync::OnceLock<zstd::dict::EncoderDictionary<'static>> =
        std::sync::OnceLock::new();
    D.get_or_init(|| zstd::dict::EncoderDictionary::copy(DICTIONARY, LEVEL))
}

fn decoder_dictionary() -> &'static zstd::dict::DecoderDictionary<'static> {
    static D: std::sync::OnceLock<zstd::dict::DecoderDictionary<'static>> =
        std::sync::OnceLock::new();
    D.get_or_init(|| zstd::dict::DecoderDictionary::copy(DICTIONARY))
}

/// The largest decompressed message accepted (zip-bomb guard).
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

/// Why bytes are not a valid envelope.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not a Sambung envelope at all.
    #[error("not a Sambung sync message")]
    BadMagic,
    /// Another protocol version.
    #[error(
        "protocol version {found} is not supported (this side speaks {supported}); update the app"
    )]
    UnsupportedVersion {
        /// The version in the message.
        found: u8,
        /// The version spoken here.
        supported: u8,
    },
    /// The compressed part is damaged or too large.
    #[error(
        "the message could not be decompressed (damaged, truncated, or over {MAX_DECODED_BYTES} bytes)"
    )]
    Decompress,
    /// The message does not have the expected shape.
    #[error("the message is malformed")]
    Malformed,
    /// The message could not be encoded (out of memory).
    #[error("the message could not be encoded")]
    Encode,
}

/// Encodes a message into an envelope.
///
/// ```
/// use sambung_core::protocol::{decode, encode, SyncRequest};
/// let m = SyncRequest { cursor: 7, cursor_tag: 0, push: vec![], repair: vec![], max_response_bytes: 1 << 16, catalog: 0 };
/// assert_eq!(decode::<SyncRequest>(&encode(&m).unwrap()).unwrap(), m);
/// ```
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, EnvelopeError> {
    let cbor = cbor(message)?;
    let compressed = zstd::bulk::Compressor::with_prepared_dictionary(encoder_dictionary())
        .and_then(|mut c| c.compress(&cbor))
        .map_err(|_| EnvelopeError::Encode)?;
    let mut out = Vec::with_capacity(compressed.len() + 4);
    out.extend_from_slice(MAGIC);
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&compressed);
    Ok(out)
}

/// The protocol version of an envelope, read without decoding it.
pub fn version(bytes: &[u8]) -> Result<u8, EnvelopeError> {
    match bytes {
        [a, b, c, v, ..] if [*a, *b, *c] == *MAGIC => Ok(*v),
        _ => Err(EnvelopeError::BadMagic),
    }
}

/// Decodes an envelope; never panics on any input.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, EnvelopeError> {
    let v = version(bytes)?;
    if v != PROTOCOL_VERSION {
        return Err(EnvelopeError::UnsupportedVersion {
            found: v,
            supported: PROTOCOL_VERSION,
        });
    }
    let cbor = zstd::bulk::Decompressor::with_prepared_dictionary(decoder_dictionary())
        .and_then(|mut d| d.decompress(&bytes[4..], MAX_DECODED_BYTES))
        .map_err(|_| EnvelopeError::Decompress)?;
    ciborium::from_reader(cbor.as_slice()).map_err(|_| EnvelopeError::Malformed)
}

/// The CBOR bytes of a message, without compression (for tests and
/// measurements of the wire format).
pub fn cbor<T: Serialize>(message: &T) -> Result<Vec<u8>, EnvelopeError> {
    let mut out = Vec::new();
    ciborium::into_writer(message, &mut out).map_err(|_| EnvelopeError::Encode)?;
    Ok(out)
}
