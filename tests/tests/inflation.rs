//! A push that would inflate to gigabytes is refused before anything is
//! inflated, in bounded memory, while the server serves others. Alone in
//! its test binary: the process's peak memory is the server's (and this
//! test's few kilobytes).

use std::io::Write;

use sambung_core::lifecycle::Role;
use sambung_core::model::{Kind, RequestId};
use sambung_core::protocol::{DocPush, HeadPrefix, RefusalCode};
use sambung_core::templates;
use sambung_e2e::{RawDevice, TestServer, sync_body};

const MIB: u64 = 1024 * 1024;

/// The process's peak resident memory, bytes (`VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Resets the peak to the current resident memory (Linux `clear_refs`).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
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

/// An Automerge chunk of `kind` around `body` (the checksum is never
/// reached: the walk refuses first).
fn chunk(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, kind];
    leb(&mut out, body.len() as u64);
    out.extend(body);
    out
}

/// A compressed change chunk whose DEFLATE data inflates to `size` bytes
/// (a value of that size), built without ever holding them.
fn deflate_bomb(size: u64) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b'a'; MIB as usize];
    for _ in 0..size / MIB {
        enc.write_all(&block).unwrap();
    }
    chunk(2, &enc.finish().unwrap())
}

/// A change chunk whose one column says "this value, a billion times".
fn run_length_bomb() -> Vec<u8> {
    let mut body = vec![0]; // no deps
    body.push(16);
    body.extend([7; 16]); // actor
    body.extend([1, 1, 1, 0, 0]); // seq, start op, time, message, other actors
    body.push(1); // one column: an integer column…
    body.push(0x12);
    let mut data = Vec::new();
    // …holding the run (count 1e9, signed LEB128) of the value 1.
    let mut n: i64 = 1_000_000_000;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 && b & 0x40 == 0 {
            data.push(b);
            break;
        }
        data.push(b | 0x80);
    }
    data.push(1);
    leb(&mut body, data.len() as u64);
    body.extend(data);
    chunk(1, &body)
}

fn push_of(changes: Vec<u8>) -> DocPush {
    DocPush {
        id: Some(RequestId::random().to_bytes().unwrap()),
        since: vec![],
        changes,
        heads: vec![HeadPrefix([1; 8])],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inflating_push_is_refused_in_bounded_memory_while_others_sync() {
    let server = TestServer::start().await;
    let (ad, bd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let attacker = server
        .device(ad.path(), Role::Resident, "warga-x", &[], None)
        .await;
    let honest = server
        .device(bd.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let raw = RawDevice::of(&server.url(), &attacker);
    let bombs = [
        (
            "deflate",
            push_of(deflate_bomb(256 * MIB)),
            RefusalCode::Invalid,
        ),
        (
            "run-length",
            push_of(run_length_bomb()),
            RefusalCode::TooLarge,
        ),
    ];
    for (name, bomb, code) in bombs {
        let body = sync_body(vec![bomb.clone()]);
        println!("{name} bomb: {} bytes signed and sent", body.len());
        assert!(body.len() < 8 * 1024, "a few kilobytes: {}", body.len());
        let id = honest
            .store
            .create(templates::example(Kind::Complaint))
            .unwrap();
        reset_peak();
        let before = peak_rss();
        let (answer, synced) = tokio::join!(raw.exchange(vec![bomb]), honest.sync());
        let grown = peak_rss().saturating_sub(before);
        println!("{name} bomb: peak memory grew by {} KiB", grown / 1024);
        assert_eq!(answer.refused.len(), 1, "{answer:?}");
        assert_eq!(answer.refused[0].code, code, "{name}");
        assert!(grown < 64 * MIB, "{name}: grew by {grown} bytes");
        // The honest device was served meanwhile.
        let synced = synced.unwrap();
        assert!(synced.refused.is_empty(), "{synced:?}");
        assert!(
            server
                .state
                .storage()
                .document(id.to_bytes().unwrap())
                .unwrap()
                .is_some()
        );
    }
}
