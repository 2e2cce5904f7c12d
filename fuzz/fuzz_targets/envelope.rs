//! The sync envelope as the server receives it: version byte, zstd frame,
//! CBOR. Any bytes: a typed error or a message, never a panic, never more
//! than the decompression limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_core::protocol::{SyncRequest, SyncResponse, decode, encode, version};

fuzz_target!(|data: &[u8]| {
    let _ = version(data);
    if let Ok(request) = decode::<SyncRequest>(data) {
        // What decodes encodes back to the same message.
        let again: SyncRequest = decode(&encode(&request).expect("encodes")).expect("decodes");
        assert_eq!(again, request);
    }
    let _ = decode::<SyncResponse>(data);
});
