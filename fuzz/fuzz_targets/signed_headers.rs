//! The four signature headers of a request and their verification: any
//! header values give a typed error or a verdict, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_core::protocol::SignedHeaders;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(5, '\n');
    let values: Vec<&str> = (0..4).map(|_| parts.next().unwrap_or("")).collect();
    let body = parts.next().unwrap_or("").as_bytes();
    let names = ["sambung-device", "sambung-timestamp", "sambung-nonce", "sambung-signature"];
    let get = |name: &str| names.iter().position(|n| *n == name).map(|i| values[i]);
    if let Ok(signed) = SignedHeaders::parse(get) {
        let _ = signed.device_id();
        let _ = signed.verify(&[7u8; 32], "POST", "/v1/sync", body, 1_800_000_000);
    }
});
