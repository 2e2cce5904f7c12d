//! The signature header of a request and its verification: any header
//! value gives a typed error or a verdict, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_core::protocol::{Call, SignedHeaders};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (value, body) = text.split_once('\n').unwrap_or((&text, ""));
    let get = |name: &str| (name == SignedHeaders::AUTH).then_some(value);
    if let Ok(signed) = SignedHeaders::parse(get) {
        let _ = signed.device_id();
        let _ = signed.pairs();
        let call = Call::new(
            "0123456789abcdef0123456789abcdef",
            "POST",
            "/v1/sync",
            body.as_bytes(),
        );
        let _ = signed.verify(&[7u8; 32], &call, 1_800_000_000);
    }
});
