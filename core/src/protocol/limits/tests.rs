use super::*;
use crate::document::RequestDoc;
use crate::lifecycle::Role;
use crate::model::{Kind, Note};
use crate::time::Timestamp;
use automerge::ActorId;
use proptest::prelude::*;

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16].as_slice())
}

/// A request of `kind` as a device writes it, with one long note.
fn doc(kind: Kind) -> RequestDoc {
    let mut r = Request::draft(
        crate::templates::example(kind),
        "warga-1",
        Role::Resident,
        Timestamp(1),
    );
    r.notes.push(Note {
        id: "n1".into(),
        at: Timestamp(2),
        by: "warga-1".into(),
        role: Role::Resident,
        text: "Jalan berlubang di depan sekolah dasar, mohon segera diperbaiki. ".repeat(20),
    });
    RequestDoc::new(&r, actor(1)).unwrap()
}

/// A change chunk around `body` (checksum zeroed: the walk runs before
/// Automerge checks it).
fn chunk(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend([0; 4]);
    out.push(kind);
    leb(&mut out, body.len() as u64);
    out.extend(body);
    out
}

fn leb(out: &mut Vec<u8>, mut v: u64) {
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

/// A change body with one ops column of `spec` holding `data`.
fn change_body(spec: u64, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    leb(&mut b, 0); // deps
    leb(&mut b, 16);
    b.extend([7; 16]); // actor
    leb(&mut b, 1); // seq
    leb(&mut b, 1); // start op
    sleb(&mut b, 1_700_000_000_000); // time
    leb(&mut b, 0); // message
    leb(&mut b, 0); // other actors
    leb(&mut b, 1); // one column
    leb(&mut b, spec);
    leb(&mut b, data.len() as u64);
    b.extend(data);
    b
}

#[test]
fn the_limits_in_words_are_the_limits_in_numbers() {
    assert!(DOCUMENT_LIMITS.contains(&format!("at most {MAX_NOTES} notes")));
    assert!(DOCUMENT_LIMITS.contains(&format!("{MAX_NOTE_CHARS} characters")));
    assert!(DOCUMENT_LIMITS.contains(&format!("{MAX_HISTORY} status changes")));
}

#[test]
fn what_devices_and_the_server_write_passes_and_is_counted() {
    for &kind in Kind::ALL {
        let mut d = doc(kind);
        let pushed = d.save_after(&[]);
        let stats = check_chunks(&pushed, Sender::Device).unwrap();
        let changes = d.automerge().get_changes(&[]);
        assert_eq!(stats.chunks, changes.len(), "{kind:?}");
        let ops: u64 = changes.iter().map(|c| c.len() as u64).sum();
        // At least one row per operation, and no more than every column's
        // rows (preds of a fresh request are few).
        assert!(stats.ops >= ops, "{kind:?}");
        assert!(stats.ops <= 2 * ops + 16, "{kind:?}");
        // The whole document, uncompressed, as the server sends it on a
        // scope change.
        let whole = d.automerge().save_nocompress();
        assert!(check_chunks(&whole, Sender::Server).is_ok(), "{kind:?}");
        // A device never sends a document chunk.
        assert_eq!(
            check_chunks(&whole, Sender::Device),
            Err(ChunkError::Encoding)
        );
    }
}

#[test]
fn compressed_chunks_are_refused_before_anything_is_inflated() {
    let mut d = doc(Kind::Complaint);
    let mut change = d.automerge().get_changes(&[])[0].clone();
    let compressed = change.bytes().into_owned();
    assert_eq!(compressed[8], 2, "a compressed change chunk");
    for sender in [Sender::Device, Sender::Server] {
        assert_eq!(check_chunks(&compressed, sender), Err(ChunkError::Encoding));
    }
    // A document saved with DEFLATE columns (Automerge's `save`, as older
    // servers sent erased requests): walked with its columns inflated
    // under the limit, and counted the same as uncompressed.
    let saved = d.save();
    let plain = d.automerge().save_nocompress();
    assert_ne!(saved, plain, "some column is compressed");
    assert_eq!(
        check_chunks(&saved, Sender::Server),
        check_chunks(&plain, Sender::Server)
    );
    assert_eq!(
        check_chunks(&saved, Sender::Device),
        Err(ChunkError::Encoding)
    );
    // A bundle (chunk type 3) and an unknown type.
    for kind in [3, 9] {
        assert_eq!(
            check_chunks(&chunk(kind, &[0; 8]), Sender::Server),
            Err(ChunkError::Encoding)
        );
    }
}

#[test]
fn a_run_length_bomb_is_refused_without_expanding_it() {
    // An integer column saying "1, a billion times": four bytes.
    let mut data = Vec::new();
    sleb(&mut data, 1_000_000_000);
    leb(&mut data, 1);
    let bomb = chunk(CHANGE, &change_body(0x12, &data));
    assert!(bomb.len() < 100);
    assert_eq!(
        check_chunks(&bomb, Sender::Device),
        Err(ChunkError::TooManyOps)
    );
    // Nulls and booleans the same.
    let mut nulls = Vec::new();
    sleb(&mut nulls, 0);
    leb(&mut nulls, u64::MAX);
    assert_eq!(
        check_chunks(&chunk(CHANGE, &change_body(0x11, &nulls)), Sender::Device),
        Err(ChunkError::TooManyOps)
    );
    let mut bools = Vec::new();
    leb(&mut bools, 0);
    leb(&mut bools, MAX_OPS_PER_CHANGE + 1);
    assert_eq!(
        check_chunks(&chunk(CHANGE, &change_body(0x14, &bools)), Sender::Device),
        Err(ChunkError::TooManyOps)
    );
    // Just under the limit passes the walk (Automerge judges the rest).
    let mut ok = Vec::new();
    sleb(&mut ok, MAX_OPS_PER_CHANGE as i64);
    leb(&mut ok, 1);
    assert_eq!(
        check_chunks(&chunk(CHANGE, &change_body(0x12, &ok)), Sender::Device)
            .unwrap()
            .ops,
        MAX_OPS_PER_CHANGE
    );
    // A DEFLATE column inside a change chunk.
    assert_eq!(
        check_chunks(&chunk(CHANGE, &change_body(0x1a, &ok)), Sender::Device),
        Err(ChunkError::Encoding)
    );
}

#[test]
fn a_document_column_inflating_past_the_limit_is_refused_at_the_limit() {
    use std::io::Write;
    // A document chunk with one DEFLATE column of 64 MiB of one byte.
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1 << 20];
    for _ in 0..64 {
        enc.write_all(&block).unwrap();
    }
    let column = enc.finish().unwrap();
    let mut body = Vec::new();
    leb(&mut body, 0); // actors
    leb(&mut body, 0); // heads
    leb(&mut body, 0); // change columns
    leb(&mut body, 1); // one ops column, a compressed boolean column
    leb(&mut body, 0x1c);
    leb(&mut body, column.len() as u64);
    body.extend(&column);
    assert_eq!(
        check_chunks(&chunk(DOCUMENT, &body), Sender::Server),
        Err(ChunkError::TooManyOps)
    );
}

#[test]
fn many_changes_in_one_message_are_refused_past_the_total() {
    let mut one = Vec::new();
    sleb(&mut one, MAX_OPS_PER_CHANGE as i64);
    leb(&mut one, 1);
    let c = chunk(CHANGE, &change_body(0x12, &one));
    let n = (MAX_OPS_PER_MESSAGE / MAX_OPS_PER_CHANGE) as usize;
    let fits = c.repeat(n);
    assert!(check_chunks(&fits, Sender::Device).is_ok());
    let over = c.repeat(n + 1);
    assert_eq!(
        check_chunks(&over, Sender::Device),
        Err(ChunkError::TooManyOps)
    );
}

#[test]
fn notes_and_history_are_capped() {
    let d = doc(Kind::Complaint);
    let mut r = d.hydrate().unwrap();
    assert_eq!(check_request(&r), Ok(()));
    r.notes[0].text = "a".repeat(MAX_NOTE_CHARS);
    assert_eq!(check_request(&r), Ok(()));
    r.notes[0].text.push('b');
    assert_eq!(check_request(&r), Err(DOCUMENT_LIMITS));
    r.notes[0].text.pop();
    let note = r.notes[0].clone();
    r.notes = vec![note; MAX_NOTES + 1];
    assert_eq!(check_request(&r), Err(DOCUMENT_LIMITS));
}

proptest! {
    // Whatever the bytes, the walk ends cleanly, and never lets through a
    // chunk Automerge would inflate.
    #[test]
    fn any_bytes_are_walked_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = check_chunks(&bytes, Sender::Device);
        let _ = check_chunks(&bytes, Sender::Server);
    }

    // Honest changes cut short or damaged anywhere: an error or a pass,
    // never a panic, and a cut change is never taken as whole.
    #[test]
    fn damaged_honest_changes_are_walked_without_panic(
        kind in proptest::sample::select(Kind::ALL),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let bytes = doc(kind).save_after(&[]);
        let at = cut.index(bytes.len());
        prop_assert!(check_chunks(&bytes[..at], Sender::Device).is_err() || at == 0);
        let mut damaged = bytes.clone();
        let i = flip.index(damaged.len());
        damaged[i] ^= 1 << bit;
        let _ = check_chunks(&damaged, Sender::Device);
    }
}

/// A repair message (Automerge sync, v1) with one `have` whose Bloom
/// filter says `entries`, `bits_per_entry`, `probes`, then `bits`.
fn repair_message(entries: u64, bits_per_entry: u64, probes: u64, bits: &[u8]) -> Vec<u8> {
    let mut m = vec![0x42];
    leb(&mut m, 0); // heads
    leb(&mut m, 0); // need
    leb(&mut m, 1); // one have
    leb(&mut m, 0); // no last_sync
    let mut bloom = Vec::new();
    leb(&mut bloom, entries);
    leb(&mut bloom, bits_per_entry);
    leb(&mut bloom, probes);
    bloom.extend(bits);
    leb(&mut m, bloom.len() as u64);
    m.extend(bloom);
    leb(&mut m, 0); // no changes
    m
}

#[test]
fn repair_messages_with_wild_bloom_filters_are_refused() {
    use automerge::sync::Message;
    // What Automerge itself writes passes.
    let mut d = doc(Kind::Complaint);
    let mut state = automerge::sync::State::new();
    let honest = d.sync_message(&mut state).unwrap();
    assert!(check_sync_message(&Message::decode(&honest).unwrap()).is_ok());
    let sane = Message::decode(&repair_message(1, 10, 7, &[0xff, 0x03])).unwrap();
    assert_eq!(check_sync_message(&sane), Ok(()));
    // Four billion probes (16 GiB of them per change), no bits, no probes.
    for (bpe, probes, bits) in [
        (10, u64::from(u32::MAX), &[0xffu8, 0x03][..]),
        (u64::from(u32::MAX), 7, &[0xff; 8][..]),
        (0, 7, &[][..]),
        (10, 0, &[0xff, 0x03][..]),
    ] {
        if let Ok(m) = Message::decode(&repair_message(1, bpe, probes, bits)) {
            assert!(check_sync_message(&m).is_err(), "{bpe} {probes}");
        }
    }
}
