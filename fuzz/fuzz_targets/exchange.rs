//! The server's exchange handler, in-process: any body signed by an
//! enrolled device reaches the envelope decoder, every push reaches the
//! merge and the rules table, and the answer is a typed 4xx or a 200 —
//! never a panic, never a 5xx. The seed corpus holds real sync requests
//! (pushes of new and edited requests, notes, status changes).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let w = common::world();
    w.call(
        "POST",
        sambung_core::protocol::SYNC_PATH,
        &[],
        data.to_vec(),
    );
});
