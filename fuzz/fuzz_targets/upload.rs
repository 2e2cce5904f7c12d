//! The attachment upload handlers, in-process: asking which blobs are
//! missing (any JSON) and appending a chunk (any hash text, offset, length
//! and bytes), signed by an enrolled device — a typed 4xx or a success,
//! never a panic, never a 5xx.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use sambung_core::protocol::blobs::{MISSING_PATH, UPLOAD_LENGTH, UPLOAD_OFFSET};

fuzz_target!(|data: &[u8]| {
    let w = common::world();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 4 == 0 {
        w.call("POST", MISSING_PATH, &[], rest.to_vec());
        return;
    }
    // offset (2 bytes), length (3 bytes), then the chunk; the hash is the
    // chunk's own for some inputs (so appends complete), a fixed one else.
    if rest.len() < 5 {
        return;
    }
    let offset = u64::from(u16::from_le_bytes([rest[0], rest[1]]));
    let length = u64::from(rest[2]) | u64::from(rest[3]) << 8 | u64::from(rest[4]) << 16;
    let chunk = rest[5..].to_vec();
    let sha = if mode % 4 == 1 {
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &chunk))
    } else if mode % 4 == 2 {
        "ab".repeat(32)
    } else {
        String::from_utf8_lossy(&chunk[..chunk.len().min(70)]).into_owned()
    };
    let path = format!("/v1/blobs/{sha}");
    if path.parse::<axum::http::Uri>().is_err() {
        return;
    }
    w.call(
        "PATCH",
        &path,
        &[
            (UPLOAD_OFFSET, offset.to_string()),
            (UPLOAD_LENGTH, length.to_string()),
        ],
        chunk,
    );
});
