//! The walk that bounds Automerge chunks before Automerge sees them
//! (`sambung_core::protocol::limits::check_chunks`), on chunks of every
//! kind: change chunks and documents (compressed and not) written from real
//! edits, compressed change chunks, bundles, chunks built by hand with any
//! column specifications, run lengths and DEFLATE bits, raw bytes — each
//! sometimes damaged. The walk never panics, and what it takes from a
//! device is safe to hand to Automerge: change chunks only (no compressed
//! chunk, bundle or document), and no more operations than it counted
//! (Automerge's own count after loading them). Loading runs under
//! libFuzzer's `-rss_limit_mb`, so an allocation bomb that gets through
//! fails the run.
#![no_main]

#[path = "common/edits.rs"]
mod edits;
#[path = "common/panics.rs"]
mod panics;

use arbitrary::Arbitrary;
use automerge::{ActorId, AutoCommit, ChangeHash};
use libfuzzer_sys::fuzz_target;
use sambung_core::protocol::limits::{MAX_OPS_PER_MESSAGE, Sender, check_chunks};

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

#[derive(Arbitrary, Debug)]
struct Input {
    pieces: Vec<Piece>,
    /// Damage: bytes XORed at these positions (modulo the length).
    flips: Vec<(u16, u8)>,
    truncate: Option<u16>,
}

#[derive(Arbitrary, Debug)]
enum Piece {
    /// `save_after` (uncompressed change chunks) of the edits after the
    /// first `from` of them.
    Changes {
        seed: edits::Seed,
        edits: Vec<edits::Edit>,
        from: u8,
    },
    /// The whole document: `save()` (DEFLATE columns past 256 bytes) or
    /// `save_nocompress()`.
    Document {
        seed: edits::Seed,
        edits: Vec<edits::Edit>,
        compress: bool,
    },
    /// Each change as `Change::bytes()` writes it: compressed (chunk type
    /// 2) when larger than 256 bytes.
    ChangeBytes {
        seed: edits::Seed,
        edits: Vec<edits::Edit>,
    },
    /// A bundle (chunk type 3) of the document's changes.
    Bundle {
        seed: edits::Seed,
        edits: Vec<edits::Edit>,
    },
    Built(Built),
    Raw(Vec<u8>),
}

/// A chunk built by hand.
#[derive(Arbitrary, Debug)]
struct Built {
    chunk_type: u8,
    /// The checksum Automerge expects, or none.
    checksum: bool,
    /// A document chunk's layout (actors, heads, change and op columns)
    /// rather than a change's.
    document: bool,
    deps: u8,
    seq: u64,
    start_op: u64,
    time: i64,
    others: u8,
    columns: Vec<Column>,
    more_columns: Vec<Column>,
    /// The whole body DEFLATE-compressed (what chunk type 2 holds).
    deflate_body: bool,
}

#[derive(Arbitrary, Debug)]
struct Column {
    spec: Spec,
    /// The DEFLATE bit of the specification.
    deflate_bit: bool,
    /// The data really DEFLATE-compressed.
    deflate_data: bool,
    data: Data,
}

#[derive(Arbitrary, Debug)]
enum Spec {
    /// One Automerge writes (change and document columns).
    Known(u8),
    Any(u64),
}

/// Specifications Automerge writes: id << 4 | type.
const SPECS: &[u64] = &[
    1, 2, 17, 19, 21, 33, 35, 52, 66, 86, 87, 112, 113, 115, 128, 130, 148, 162, 164, 165, 182, 183,
];

#[derive(Arbitrary, Debug)]
enum Data {
    Runs(Vec<Run>),
    Bools(Vec<u64>),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Run {
    /// `count` times one value (any count: billions too).
    Repeat(u64, Value),
    Literal(Vec<Value>),
    Nulls(u64),
}

#[derive(Arbitrary, Debug)]
enum Value {
    Int(u64),
    Str(String),
}

fn uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn sleb(out: &mut Vec<u8>, mut v: i64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0) {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Int(i) => uleb(out, *i),
        Value::Str(s) => {
            uleb(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

impl Data {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Data::Raw(b) => out.extend_from_slice(b),
            Data::Bools(runs) => runs.iter().for_each(|r| uleb(&mut out, *r)),
            Data::Runs(runs) => {
                for r in runs {
                    match r {
                        Run::Repeat(n, v) => {
                            sleb(&mut out, (*n).min(i64::MAX as u64) as i64);
                            value(&mut out, v);
                        }
                        Run::Literal(vs) => {
                            sleb(&mut out, -(vs.len() as i64));
                            vs.iter().for_each(|v| value(&mut out, v));
                        }
                        Run::Nulls(n) => {
                            out.push(0);
                            uleb(&mut out, *n);
                        }
                    }
                }
            }
        }
        out
    }
}

/// Column specifications and lengths, then their data.
fn columns(out: &mut Vec<u8>, columns: &[Column]) -> Vec<u8> {
    uleb(out, columns.len() as u64);
    let mut data = Vec::new();
    for c in columns {
        let mut spec = match c.spec {
            Spec::Known(i) => SPECS[usize::from(i) % SPECS.len()],
            Spec::Any(s) => s,
        };
        if c.deflate_bit {
            spec |= 0b1000;
        }
        let mut bytes = c.data.bytes();
        if c.deflate_data {
            bytes = deflate(&bytes);
        }
        uleb(out, spec);
        uleb(out, bytes.len() as u64);
        data.extend_from_slice(&bytes);
    }
    data
}

fn chunk(out: &mut Vec<u8>, chunk_type: u8, body: &[u8], checksum: bool) {
    let mut header = vec![chunk_type];
    uleb(&mut header, body.len() as u64);
    let sum = if checksum {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&header);
        ctx.update(body);
        let d = ctx.finish();
        [d.as_ref()[0], d.as_ref()[1], d.as_ref()[2], d.as_ref()[3]]
    } else {
        [0; 4]
    };
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&sum);
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
}

impl Built {
    fn write(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        let actor = |body: &mut Vec<u8>, i: u8| {
            uleb(body, 16);
            body.extend_from_slice(&[i; 16]);
        };
        let data = if self.document {
            let actors = 1 + self.others % 3;
            uleb(&mut body, u64::from(actors));
            (0..actors).for_each(|i| actor(&mut body, i));
            uleb(&mut body, u64::from(self.deps % 3));
            (0..self.deps % 3).for_each(|i| body.extend_from_slice(&[i; 32]));
            let mut data = columns(&mut body, &self.columns);
            data.extend(columns(&mut body, &self.more_columns));
            data
        } else {
            uleb(&mut body, u64::from(self.deps % 3));
            (0..self.deps % 3).for_each(|i| body.extend_from_slice(&[i; 32]));
            actor(&mut body, 0);
            uleb(&mut body, self.seq);
            uleb(&mut body, self.start_op);
            sleb(&mut body, self.time);
            uleb(&mut body, 0); // message
            uleb(&mut body, u64::from(self.others % 3));
            (0..self.others % 3).for_each(|i| actor(&mut body, i + 1));
            columns(&mut body, &self.columns)
        };
        body.extend_from_slice(&data);
        if self.deflate_body {
            body = deflate(&body);
        }
        chunk(out, self.chunk_type % 5, &body, self.checksum);
    }
}

fn actor() -> ActorId {
    ActorId::from(&[7u8; 16][..])
}

impl Piece {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Piece::Changes { seed, edits, from } => {
                let Some(mut doc) = seed.doc(actor()) else {
                    return;
                };
                let from = usize::from(*from) % (edits.len() + 1);
                edits::apply_all(&mut doc, &edits[..from]);
                let base: Vec<ChangeHash> = if from == 0 { vec![] } else { doc.heads() };
                edits::apply_all(&mut doc, &edits[from..]);
                out.extend(doc.save_after(&base));
            }
            Piece::Document {
                seed,
                edits,
                compress,
            } => {
                let Some(mut doc) = seed.doc(actor()) else {
                    return;
                };
                edits::apply_all(&mut doc, edits);
                let am = doc.automerge();
                out.extend(if *compress {
                    am.save()
                } else {
                    am.save_nocompress()
                });
            }
            Piece::ChangeBytes { seed, edits } => {
                let Some(mut doc) = seed.doc(actor()) else {
                    return;
                };
                edits::apply_all(&mut doc, edits);
                for mut c in doc.automerge().get_changes(&[]) {
                    out.extend_from_slice(&c.bytes());
                }
            }
            Piece::Bundle { seed, edits } => {
                let Some(mut doc) = seed.doc(actor()) else {
                    return;
                };
                edits::apply_all(&mut doc, edits);
                let am = doc.automerge();
                let hashes: Vec<ChangeHash> =
                    am.get_changes(&[]).iter().map(|c| c.hash()).collect();
                if let Ok(b) = am.bundle(hashes) {
                    out.extend_from_slice(b.bytes());
                }
            }
            Piece::Built(b) => b.write(out),
            Piece::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
}

/// The types of the chunks in `bytes`, read from their headers the way
/// Automerge reads them (`None`: not a sequence of whole chunks).
fn chunk_types(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    let mut types = Vec::new();
    while at < bytes.len() {
        if bytes.get(at..at + 4)? != MAGIC {
            return None;
        }
        at += 8;
        types.push(*bytes.get(at)?);
        at += 1;
        let mut len: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *bytes.get(at)?;
            at += 1;
            len |= u64::from(b & 0x7f).checked_shl(shift)?;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
            if shift >= 64 {
                return None;
            }
        }
        at = at.checked_add(usize::try_from(len).ok()?)?;
        if at > bytes.len() {
            return None;
        }
    }
    Some(types)
}

/// Automerge's own count of the operations it loaded from `bytes` into a
/// new document (`None`: it refused them, or panicked).
fn loaded_ops(bytes: &[u8]) -> Option<u64> {
    std::panic::catch_unwind(|| {
        let mut doc = AutoCommit::new();
        doc.load_incremental(bytes).ok()?;
        Some(doc.get_changes(&[]).iter().map(|c| c.len() as u64).sum())
    })
    .ok()
    .flatten()
}

fuzz_target!(|input: Input| {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(panics::abort_unless_in_automerge);

    let mut bytes = Vec::new();
    for p in input.pieces.iter().take(4) {
        p.write(&mut bytes);
    }
    if !bytes.is_empty() {
        let len = bytes.len();
        for (at, x) in &input.flips {
            bytes[usize::from(*at) % len] ^= x;
        }
    }
    if let Some(n) = input.truncate {
        bytes.truncate(usize::from(n));
    }

    let device = check_chunks(&bytes, Sender::Device);
    let server = check_chunks(&bytes, Sender::Server);
    if let Ok(stats) = device {
        // A server takes whatever a device may send, counted the same.
        assert_eq!(server, Ok(stats), "the server's walk differs");
        let types = chunk_types(&bytes).expect("the walk took something that is not chunks");
        assert_eq!(types.len(), stats.chunks);
        assert!(
            types.iter().all(|&t| t == 1),
            "a device's chunks taken with types {types:?}"
        );
        assert!(stats.ops <= MAX_OPS_PER_MESSAGE);
        if let Some(ops) = loaded_ops(&bytes) {
            assert!(
                ops <= stats.ops,
                "Automerge loaded {ops} operations, the walk counted {}",
                stats.ops
            );
        }
    } else if let Ok(stats) = server {
        let types = chunk_types(&bytes).expect("the walk took something that is not chunks");
        assert_eq!(types.len(), stats.chunks);
        assert!(
            types.iter().all(|&t| t <= 1),
            "a server's chunks taken with types {types:?}"
        );
        assert!(stats.ops <= MAX_OPS_PER_MESSAGE);
        // Loading is bounded too (`-rss_limit_mb`): no op count is held to
        // here, as a document chunk's deletions are not rows of their own.
        let _ = loaded_ops(&bytes);
    }
});
