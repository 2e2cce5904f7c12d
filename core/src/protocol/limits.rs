//! Bounds on what one request document may cost whoever receives it: the
//! Automerge chunks of a push, a pull or a repair are walked here before
//! Automerge sees them, and a request's notes and history are counted
//! before it is written. Device and server check the same numbers.
//!
//! Automerge inflates a DEFLATE-compressed chunk without a bound, and its
//! columns are run-length encoded: a few bytes can say "this value a
//! billion times". [`check_chunks`] reads only the chunk headers and the
//! run lengths of each column (never the values), so its work and memory
//! are linear in the bytes received, and it refuses before anything is
//! inflated or expanded:
//! - compressed change chunks and bundles (devices write neither: a
//!   change is pushed as `save_after` writes it, uncompressed);
//! - document chunks from devices (the server's whole documents are
//!   walked too: a DEFLATE column in one is inflated here with a hard
//!   limit, [`MAX_INFLATED_DOCUMENT_BYTES`], and its rows counted);
//! - a change of more than [`MAX_OPS_PER_CHANGE`] operations, or chunks of
//!   more than [`MAX_OPS_PER_MESSAGE`] together.
//!
//! ```
//! use sambung_core::protocol::limits::{ChunkError, Sender, check_chunks};
//! assert_eq!(check_chunks(b"not automerge", Sender::Device), Err(ChunkError::Malformed));
//! assert!(check_chunks(&[], Sender::Device).is_ok());
//! ```

use crate::model::Request;

/// The most operations one change may hold (a request written whole, with
/// its longest texts, is a few hundred).
pub const MAX_OPS_PER_CHANGE: u64 = 20_000;
/// The most operations all chunks of one document in one message may
/// hold together (a whole document sent on a scope change included).
pub const MAX_OPS_PER_MESSAGE: u64 = 200_000;
/// The longest note, in characters (the longest text a form takes, and
/// the back office's limit).
pub const MAX_NOTE_CHARS: usize = crate::model::MAX_LONG_TEXT;
/// The most notes one request may carry.
pub const MAX_NOTES: usize = 500;
/// The most status changes one request may carry (the whole lifecycle is
/// under ten; questions and answers repeat).
pub const MAX_HISTORY: usize = 200;
/// The largest document the server stores, saved (compressed) bytes.
pub const MAX_STORED_DOCUMENT_BYTES: usize = 2 * 1024 * 1024;
/// The most bytes a whole document's columns may inflate to.
pub const MAX_INFLATED_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// The limits on a request's size in words (a test holds them to the
/// numbers).
pub const DOCUMENT_LIMITS: &str =
    "a request carries at most 500 notes of 5000 characters each and 200 status changes";

/// Who sent the chunks (what each may send differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// A device's push: uncompressed change chunks only.
    Device,
    /// The server's pull: change chunks, or a whole document without
    /// compressed columns.
    Server,
}

/// Why chunks were refused before Automerge saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Not Automerge chunks, or truncated.
    #[error("the changes are not valid Automerge data")]
    Malformed,
    /// A compressed chunk or column, a bundle, or a document chunk from a
    /// device.
    #[error(
        "the changes use an encoding this server does not take (compressed or whole-document chunks)"
    )]
    Encoding,
    /// More operations than the limits allow.
    #[error("the changes hold more operations than a request may")]
    TooManyOps,
}

/// What the walk found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkStats {
    /// Chunks.
    pub chunks: usize,
    /// Operations (the most rows of any column, summed over the chunks).
    pub ops: u64,
}

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
/// Bit of a column specification saying its data is DEFLATE-compressed.
const DEFLATE_BIT: u64 = 0b1000;

/// Checks chunks received from `sender` (see the module's documentation).
pub fn check_chunks(bytes: &[u8], sender: Sender) -> Result<ChunkStats, ChunkError> {
    let mut r = Reader { bytes, at: 0 };
    let mut stats = ChunkStats::default();
    while !r.done() {
        if r.take(4)? != MAGIC {
            return Err(ChunkError::Malformed);
        }
        r.take(4)?; // checksum: Automerge checks it, after us
        let kind = r.byte()?;
        let len = usize::try_from(r.uleb()?).map_err(|_| ChunkError::Malformed)?;
        let body = r.take(len)?;
        let ops = match (kind, sender) {
            (CHANGE, _) => change_ops(body)?,
            (DOCUMENT, Sender::Server) => document_ops(body)?,
            _ => return Err(ChunkError::Encoding),
        };
        if kind == CHANGE && ops > MAX_OPS_PER_CHANGE {
            return Err(ChunkError::TooManyOps);
        }
        stats.chunks += 1;
        stats.ops = stats.ops.saturating_add(ops);
        if stats.ops > MAX_OPS_PER_MESSAGE {
            return Err(ChunkError::TooManyOps);
        }
    }
    Ok(stats)
}

/// The operations of a change chunk's body (its ops columns' rows).
fn change_ops(body: &[u8]) -> Result<u64, ChunkError> {
    let mut r = Reader { bytes: body, at: 0 };
    let deps = r.count()?;
    for _ in 0..deps {
        r.take(32)?;
    }
    r.prefixed()?; // actor
    r.uleb()?; // seq
    r.uleb()?; // start op
    r.uleb()?; // time (signed; its bytes are all we skip)
    r.prefixed()?; // message
    let others = r.count()?;
    for _ in 0..others {
        r.prefixed()?;
    }
    let columns = r.columns()?;
    let mut most = 0;
    for (spec, len) in columns {
        if spec & DEFLATE_BIT != 0 {
            return Err(ChunkError::Encoding);
        }
        most = most.max(rows(spec, r.take(len)?, MAX_OPS_PER_CHANGE)?);
    }
    Ok(most)
}

/// The operations of a document chunk's body (its changes and ops
/// columns' rows).
fn document_ops(body: &[u8]) -> Result<u64, ChunkError> {
    let mut r = Reader { bytes: body, at: 0 };
    let actors = r.count()?;
    for _ in 0..actors {
        r.prefixed()?;
    }
    let heads = r.count()?;
    for _ in 0..heads {
        r.take(32)?;
    }
    let change_columns = r.columns()?;
    let op_columns = r.columns()?;
    let mut most = 0;
    let mut inflated = 0usize;
    for (spec, len) in change_columns.into_iter().chain(op_columns) {
        let data = r.take(len)?;
        let counted = if spec & DEFLATE_BIT != 0 {
            let plain = inflate(data, MAX_INFLATED_DOCUMENT_BYTES - inflated)?;
            inflated += plain.len();
            rows(spec, &plain, MAX_OPS_PER_MESSAGE)?
        } else {
            rows(spec, data, MAX_OPS_PER_MESSAGE)?
        };
        most = most.max(counted);
    }
    Ok(most)
}

/// Inflates a DEFLATE column, refusing it past `limit` bytes (read in
/// bounded steps: never more than `limit` is held).
fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, ChunkError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| ChunkError::Malformed)?;
    if out.len() > limit {
        return Err(ChunkError::TooManyOps);
    }
    Ok(out)
}

/// The rows a column encodes, read from its run lengths without expanding
/// them; refused past `cap`.
fn rows(spec: u64, data: &[u8], cap: u64) -> Result<u64, ChunkError> {
    let mut r = Reader { bytes: data, at: 0 };
    let mut rows: u64 = 0;
    let mut add = |n: u64| -> Result<(), ChunkError> {
        rows = rows.saturating_add(n);
        if rows > cap {
            Err(ChunkError::TooManyOps)
        } else {
            Ok(())
        }
    };
    match spec & 0b111 {
        // Raw values: their rows are counted by their metadata column.
        7 => {}
        // Booleans: alternating run lengths.
        4 => {
            while !r.done() {
                add(r.uleb()?)?;
            }
        }
        // Run-length encoded: a positive count and one value, a negative
        // count and that many values, or zero and a count of nulls.
        kind => {
            while !r.done() {
                let count = r.sleb()?;
                if count > 0 {
                    r.value(kind)?;
                    add(count.unsigned_abs())?;
                } else if count < 0 {
                    for _ in 0..count.unsigned_abs() {
                        r.value(kind)?;
                    }
                    add(count.unsigned_abs())?;
                } else {
                    add(r.uleb()?)?;
                }
            }
        }
    }
    Ok(rows)
}

/// A cursor over bytes that fails cleanly at their end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn byte(&mut self) -> Result<u8, ChunkError> {
        let b = *self.bytes.get(self.at).ok_or(ChunkError::Malformed)?;
        self.at += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ChunkError> {
        let end = self.at.checked_add(n).ok_or(ChunkError::Malformed)?;
        let s = self.bytes.get(self.at..end).ok_or(ChunkError::Malformed)?;
        self.at = end;
        Ok(s)
    }

    fn uleb(&mut self) -> Result<u64, ChunkError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f)
                .checked_shl(shift)
                .ok_or(ChunkError::Malformed)?;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ChunkError::Malformed)
    }

    fn sleb(&mut self) -> Result<i64, ChunkError> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return Err(ChunkError::Malformed);
            }
            value |= i64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
        }
    }

    /// A count of items that each take at least one byte: never more than
    /// the bytes left (no allocation or loop is sized by a claim).
    fn count(&mut self) -> Result<usize, ChunkError> {
        let n = self.uleb()?;
        if n > (self.bytes.len() - self.at) as u64 {
            return Err(ChunkError::Malformed);
        }
        Ok(n as usize)
    }

    fn prefixed(&mut self) -> Result<&'a [u8], ChunkError> {
        let n = usize::try_from(self.uleb()?).map_err(|_| ChunkError::Malformed)?;
        self.take(n)
    }

    /// Column specifications and lengths.
    fn columns(&mut self) -> Result<Vec<(u64, usize)>, ChunkError> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let spec = self.uleb()?;
            let len = usize::try_from(self.uleb()?).map_err(|_| ChunkError::Malformed)?;
            out.push((spec, len));
        }
        Ok(out)
    }

    /// Skips one value of a run-length encoded column of type `kind`.
    fn value(&mut self, kind: u64) -> Result<(), ChunkError> {
        match kind {
            // Strings: length-prefixed UTF-8.
            5 => self.prefixed().map(|_| ()),
            // Deltas are signed, the rest unsigned: LEB128 either way.
            _ => self.uleb().map(|_| ()),
        }
    }
}

/// The most `have` entries a repair message may carry (Automerge sends
/// one).
pub const MAX_REPAIR_HAVES: usize = 8;
/// The most heads, needed changes or `last_sync` heads a repair message
/// may name.
pub const MAX_REPAIR_HASHES: usize = 1024;
/// The most probes and bits per entry a repair message's Bloom filter may
/// ask for (Automerge writes 7 and 10): Automerge allocates and loops by
/// the probes a message claims, per change of the document.
pub const MAX_BLOOM_PARAMETER: u64 = 64;

/// Checks a decoded repair (Automerge sync) message before Automerge acts
/// on it: counts bounded, and each Bloom filter's parameters sane (a
/// filter asking four billion probes allocates gigabytes; one with
/// entries and no bits divides by zero).
pub fn check_sync_message(message: &automerge::sync::Message) -> Result<(), ChunkError> {
    if message.have.len() > MAX_REPAIR_HAVES
        || message.heads.len() > MAX_REPAIR_HASHES
        || message.need.len() > MAX_REPAIR_HASHES
        || message
            .have
            .iter()
            .any(|h| h.last_sync.len() > MAX_REPAIR_HASHES)
    {
        return Err(ChunkError::TooManyOps);
    }
    for have in &message.have {
        let bytes = have.bloom.to_bytes();
        if bytes.is_empty() {
            continue; // an empty filter
        }
        let mut r = Reader {
            bytes: &bytes,
            at: 0,
        };
        let _entries = r.uleb()?;
        let bits_per_entry = r.uleb()?;
        let probes = r.uleb()?;
        if !(1..=MAX_BLOOM_PARAMETER).contains(&bits_per_entry)
            || !(1..=MAX_BLOOM_PARAMETER).contains(&probes)
            || r.done()
        {
            return Err(ChunkError::Malformed);
        }
    }
    Ok(())
}

/// Whether a request stays within [`DOCUMENT_LIMITS`].
pub fn check_request(request: &Request) -> Result<(), &'static str> {
    if request.notes.len() > MAX_NOTES
        || request.history.len() > MAX_HISTORY
        || request
            .notes
            .iter()
            .any(|n| n.text.chars().count() > MAX_NOTE_CHARS)
        || request.history.iter().any(|e| {
            e.note
                .as_ref()
                .is_some_and(|t| t.chars().count() > MAX_NOTE_CHARS)
        })
    {
        return Err(DOCUMENT_LIMITS);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
