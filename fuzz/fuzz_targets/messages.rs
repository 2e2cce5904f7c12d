//! The CBOR messages inside the envelope, without zstd in front, so the
//! fuzzer reaches the structure: requests and responses decode to typed
//! values or fail cleanly, and round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_core::protocol::{SyncRequest, SyncResponse, cbor};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = ciborium::from_reader::<SyncRequest, _>(data) {
        let bytes = cbor(&m).expect("encodes");
        let again: SyncRequest = ciborium::from_reader(bytes.as_slice()).expect("decodes");
        assert_eq!(again, m);
    }
    if let Ok(m) = ciborium::from_reader::<SyncResponse, _>(data) {
        let bytes = cbor(&m).expect("encodes");
        let again: SyncResponse = ciborium::from_reader(bytes.as_slice()).expect("decodes");
        assert_eq!(again, m);
    }
});
