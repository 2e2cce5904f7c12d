//! The wire format: snapshots of every message type (a change to the
//! encoding breaks them and forces a version decision), round trips, and bad
//! input.

use super::*;
use proptest::prelude::*;

fn id(n: u8) -> DocId {
    [n; 16]
}

fn hash(n: u8) -> Hash {
    Hash([n; 32])
}

/// Hex, 32 bytes a line: readable in a snapshot diff.
fn hex_lines(bytes: &[u8]) -> String {
    bytes
        .chunks(32)
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join("\n")
}

fn example_request() -> SyncRequest {
    SyncRequest {
        cursor: 42,
        cursor_tag: 0x1234_5678,
        push: vec![DocPush {
            id: Some(id(1)),
            since: vec![hash(2)],
            changes: vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3],
            heads: vec![HeadPrefix([11; 8])],
        }],
        repair: vec![DocRepair {
            id: id(3),
            message: vec![0x42, 0, 1],
        }],
        max_response_bytes: 65_536,
        catalog: 0,
    }
}

fn example_response() -> SyncResponse {
    SyncResponse {
        acked_all: false,
        gone: vec![DocRef(id(9))],
        acks: vec![DocAck {
            id: id(1),
            heads: vec![hash(4), hash(5)],
        }],
        refused: vec![Refusal {
            id: id(6),
            code: RefusalCode::Forbidden,
            reason: "a resident cannot approve".into(),
            errors: vec![],
        }],
        unknown_heads: vec![DocRef(id(7))],
        repair: vec![DocRepair {
            id: id(3),
            message: vec![0x42, 1],
        }],
        pull: vec![DocPull {
            id: id(8),
            changes: vec![0x85, 0x6f, 0x4a, 0x83, 9],
            heads: vec![hash(10)],
            replace: false,
        }],
        cursor: 43,
        cursor_tag: 0x9abc_def0,
        more: true,
        reset: true,
        wipe: true,
        catalog: Vec::new(),
        catalog_seq: 0,
    }
}

#[test]
fn wire_snapshots() {
    insta::assert_snapshot!(
        "sync_request_v1",
        hex_lines(&cbor(&example_request()).unwrap())
    );
    insta::assert_snapshot!(
        "sync_response_v1",
        hex_lines(&cbor(&example_response()).unwrap())
    );
    let error = ErrorBody {
        code: ErrorCode::UnsupportedVersion,
        message: "update the app".into(),
        wipe: false,
    };
    insta::assert_snapshot!("error_body_v1", serde_json::to_string(&error).unwrap());
    let revoked = ErrorBody {
        code: ErrorCode::Revoked,
        message: "the agency revoked this device".into(),
        wipe: true,
    };
    insta::assert_snapshot!(
        "error_body_revoked_v1",
        serde_json::to_string(&revoked).unwrap()
    );
}

#[test]
fn envelope_header_and_round_trip() {
    let bytes = encode(&example_request()).unwrap();
    assert_eq!(&bytes[..4], b"SBG\x03");
    assert_eq!(version(&bytes), Ok(PROTOCOL_VERSION));
    assert_eq!(decode::<SyncRequest>(&bytes).unwrap(), example_request());
}

#[test]
fn bad_envelopes_are_typed_errors() {
    let good = encode(&example_request()).unwrap();
    assert_eq!(decode::<SyncRequest>(b""), Err(EnvelopeError::BadMagic));
    assert_eq!(
        decode::<SyncRequest>(b"GET / HTTP/1.1"),
        Err(EnvelopeError::BadMagic)
    );
    // Version 1 (no dictionary), version 2 (the dictionary of scrambled
    // examples; both before any release) and a future one.
    for other in [1, 2, PROTOCOL_VERSION + 1] {
        let mut v = good.clone();
        v[3] = other;
        assert_eq!(
            decode::<SyncRequest>(&v),
            Err(EnvelopeError::UnsupportedVersion {
                found: other,
                supported: PROTOCOL_VERSION
            })
        );
    }
    assert_eq!(
        decode::<SyncRequest>(&good[..good.len() - 3]),
        Err(EnvelopeError::Decompress)
    );
    // Valid zstd, not CBOR of the message.
    let mut junk = b"SBG\x03".to_vec();
    junk.extend(zstd::bulk::compress(b"\xff\xff\xff not cbor", 3).unwrap());
    assert_eq!(decode::<SyncRequest>(&junk), Err(EnvelopeError::Malformed));
    // A request decoded as a response.
    assert_eq!(decode::<SyncResponse>(&good), Err(EnvelopeError::Malformed));
    // A zip bomb: a tiny body that would decompress past the limit.
    let mut bomb = b"SBG\x03".to_vec();
    bomb.extend(zstd::bulk::compress(&vec![0u8; MAX_DECODED_BYTES + 1], 3).unwrap());
    assert!(bomb.len() < 100_000);
    assert_eq!(decode::<SyncRequest>(&bomb), Err(EnvelopeError::Decompress));
    // A document id of the wrong length.
    #[derive(serde::Serialize)]
    struct BadPush {
        #[serde(with = "serde_bytes")]
        id: Vec<u8>,
        since: Vec<Hash>,
        #[serde(with = "serde_bytes")]
        changes: Vec<u8>,
    }
    let bad = BadPush {
        id: vec![1; 15],
        since: vec![],
        changes: vec![],
    };
    assert_eq!(
        decode::<DocPush>(&encode(&bad).unwrap()),
        Err(EnvelopeError::Malformed)
    );
}

const AUD: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn signatures_cover_every_part_of_the_request() {
    let key = DeviceKey::generate().unwrap();
    let other = DeviceKey::generate().unwrap();
    let pk = key.public_key();
    let now = 1_800_000_000;
    let call = Call::new(AUD, "POST", SYNC_PATH, b"body");
    let h = key.sign(id(9), &call, now).unwrap();
    assert_eq!(h.device_id().unwrap(), id(9));
    assert!(h.verify(&pk, &call, now).is_ok());
    assert_eq!(
        h.verify(&other.public_key(), &call, now),
        Err(AuthError::BadSignature)
    );
    for changed in [
        Call::new(AUD, "POST", SYNC_PATH, b"bodY"),
        Call::new(AUD, "PUT", SYNC_PATH, b"body"),
        Call::new(AUD, "POST", "/v1/other", b"body"),
        // Another deployment.
        Call::new(
            "0123456789abcdef0123456789abcdee",
            "POST",
            SYNC_PATH,
            b"body",
        ),
        // A signed header added in flight.
        call.header(SignedHeader::UploadOffset, "0"),
        call.header(SignedHeader::UploadLength, "0"),
        call.header(SignedHeader::Range, "bytes=0-1"),
    ] {
        assert_eq!(
            h.verify(&pk, &changed, now),
            Err(AuthError::BadSignature),
            "{changed:?}"
        );
    }
    // Each signed header, changed or dropped, breaks it.
    let patch = Call::new(AUD, "PATCH", "/v1/blobs/x", b"chunk")
        .header(SignedHeader::UploadOffset, "10")
        .header(SignedHeader::UploadLength, "20")
        .header(SignedHeader::Range, "bytes=0-9");
    let hp = key.sign(id(9), &patch, now).unwrap();
    assert!(hp.verify(&pk, &patch, now).is_ok());
    for (i, h) in SignedHeader::ALL.into_iter().enumerate() {
        assert_eq!(
            hp.verify(&pk, &patch.header(h, "11"), now),
            Err(AuthError::BadSignature),
            "{h:?}"
        );
        let mut dropped = Call::new(AUD, "PATCH", "/v1/blobs/x", b"chunk");
        for (j, k) in SignedHeader::ALL.into_iter().enumerate() {
            if i != j {
                dropped = dropped.header(k, ["10", "20", "bytes=0-9"][j]);
            }
        }
        assert_eq!(hp.verify(&pk, &dropped, now), Err(AuthError::BadSignature));
    }
    // Headers read from a request: the same call.
    let headers = [
        ("upload-offset", "10"),
        ("upload-length", "20"),
        ("range", "bytes=0-9"),
        ("other", "x"),
    ];
    let read = Call::new(AUD, "PATCH", "/v1/blobs/x", b"chunk")
        .headers_from(|n| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v));
    assert!(hp.verify(&pk, &read, now).is_ok());
    // A malformed audience is refused before signing.
    assert_eq!(
        key.sign(
            id(9),
            &Call::new("Sambung.example", "POST", SYNC_PATH, b""),
            now
        ),
        Err(AuthError::BadAudience)
    );
    assert_eq!(
        key.sign(id(9), &Call::new("", "POST", SYNC_PATH, b""), now),
        Err(AuthError::BadAudience)
    );
    let mut moved = h.clone();
    moved.device = hex::encode(id(8));
    assert_eq!(moved.verify(&pk, &call, now), Err(AuthError::BadSignature));
    let mut renonced = h.clone();
    renonced.nonce = hex::encode([0u8; 16]);
    assert_eq!(
        renonced.verify(&pk, &call, now),
        Err(AuthError::BadSignature)
    );
    let mut retimed = h.clone();
    retimed.timestamp += 1;
    assert_eq!(
        retimed.verify(&pk, &call, now),
        Err(AuthError::BadSignature)
    );
    // The window, both ways.
    assert!(h.verify(&pk, &call, now + SIGNATURE_WINDOW_SECS).is_ok());
    assert_eq!(
        h.verify(&pk, &call, now + SIGNATURE_WINDOW_SECS + 1),
        Err(AuthError::Stale {
            skew_secs: SIGNATURE_WINDOW_SECS + 1
        })
    );
    assert!(matches!(
        h.verify(&pk, &call, now - 1000),
        Err(AuthError::Stale { .. })
    ));
    // Two signatures of the same request differ (fresh nonce).
    assert_ne!(key.sign(id(9), &call, now).unwrap().nonce, h.nonce);
    // The key survives storage as PKCS#8.
    let again = DeviceKey::from_pkcs8(key.pkcs8()).unwrap();
    assert_eq!(again.public_key(), pk);
    assert_eq!(
        DeviceKey::from_pkcs8(b"not a key").unwrap_err(),
        AuthError::Key
    );
}

#[test]
fn the_signed_text_is_the_documented_one() {
    let h = SignedHeaders {
        device: hex::encode(id(1)),
        timestamp: 1_800_000_000,
        nonce: hex::encode(id(2)),
        signature: String::new(),
    };
    let call = Call::new(AUD, "GET", "/v1/requests/x/attachments/y", b"")
        .header(SignedHeader::Range, "bytes=0-9");
    insta::assert_snapshot!(String::from_utf8(h.canonical(&call)).unwrap());
}

#[test]
fn an_old_app_signature_is_told_to_update() {
    // What a version-1 app signed: no audience, no headers.
    let key = DeviceKey::generate().unwrap();
    let now = 1_800_000_000;
    let mut h = key
        .sign(id(3), &Call::new(AUD, "POST", SYNC_PATH, b"b"), now)
        .unwrap();
    let old = format!(
        "sambung-v1\nPOST\n{SYNC_PATH}\n{}\n{now}\n{}\n{}",
        h.device,
        h.nonce,
        hex::encode(crate::crypto::sha256(b"b"))
    );
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(key.pkcs8()).unwrap();
    h.signature = hex::encode(pair.sign(old.as_bytes()).as_ref());
    assert_eq!(
        h.verify(
            &key.public_key(),
            &Call::new(AUD, "POST", SYNC_PATH, b"b"),
            now
        ),
        Err(AuthError::OldScheme)
    );
}

#[test]
fn enrollment_proofs_name_the_code_and_the_key() {
    let key = DeviceKey::generate().unwrap();
    let other = DeviceKey::generate().unwrap();
    let pk = key.public_key();
    let proof = key.prove_enrollment("ABCD-EFGH-JKMN");
    assert_eq!(proof.len(), 128);
    assert!(verify_enrollment(&pk, "ABCD-EFGH-JKMN", &proof).is_ok());
    // Typed as read aloud: the same code.
    assert!(verify_enrollment(&pk, "abcd efgh jkmn", &proof).is_ok());
    assert_eq!(
        verify_enrollment(&pk, "ABCD-EFGH-JKMP", &proof),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        verify_enrollment(
            &pk,
            "ABCD-EFGH-JKMN",
            &other.prove_enrollment("ABCD-EFGH-JKMN")
        ),
        Err(AuthError::BadSignature)
    );
    for bad in ["", "zz", &proof[..126], &format!("{proof}00")] {
        assert_eq!(
            verify_enrollment(&pk, "ABCD-EFGH-JKMN", bad),
            Err(AuthError::BadProof),
            "{bad}"
        );
    }
}

#[test]
fn signature_headers_are_parsed_strictly() {
    use std::collections::HashMap;
    let key = DeviceKey::generate().unwrap();
    let h = key
        .sign(id(1), &Call::new(AUD, "POST", SYNC_PATH, b""), 5)
        .unwrap();
    let good: HashMap<&str, String> = h.pairs().into_iter().collect();
    let parse =
        |m: &HashMap<&str, String>| SignedHeaders::parse(|name| m.get(name).map(|v| v.as_str()));
    assert_eq!(parse(&good).unwrap(), h);
    // Missing, not base64url, padded, too short, too long.
    assert_eq!(
        parse(&HashMap::new()),
        Err(AuthError::Missing(SignedHeaders::AUTH))
    );
    let value = &good[SignedHeaders::AUTH];
    assert_eq!(value.len(), 139, "104 bytes in base64url");
    for bad in [
        "ü".to_owned(),
        format!("{value}="),
        value[..138].to_owned(),
        format!("{value}AAAA"),
        value.replace('A', "+"),
    ] {
        let m = HashMap::from([(SignedHeaders::AUTH, bad.clone())]);
        if bad == *value {
            continue;
        }
        assert_eq!(
            parse(&m),
            Err(AuthError::Malformed(SignedHeaders::AUTH)),
            "{bad}"
        );
    }
}

proptest! {
    #[test]
    fn the_signature_header_round_trips(
        device in any::<[u8; 16]>(),
        timestamp in any::<i64>(),
        nonce in any::<[u8; 16]>(),
        sig in proptest::collection::vec(any::<u8>(), 64),
    ) {
        let h = SignedHeaders {
            device: hex::encode(device),
            timestamp,
            nonce: hex::encode(nonce),
            signature: hex::encode(sig),
        };
        let [(name, value)] = h.pairs();
        let back = SignedHeaders::parse(|n| (n == name).then_some(value.as_str())).unwrap();
        prop_assert_eq!(back, h);
    }

    #[test]
    fn requests_round_trip(m in any::<SyncRequest>()) {
        prop_assert_eq!(decode::<SyncRequest>(&encode(&m).unwrap()).unwrap(), m);
    }

    #[test]
    fn responses_round_trip(m in any::<SyncResponse>()) {
        prop_assert_eq!(decode::<SyncResponse>(&encode(&m).unwrap()).unwrap(), m);
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::<SyncRequest>(&bytes);
        let mut framed = b"SBG\x03".to_vec();
        framed.extend(&bytes);
        let _ = decode::<SyncResponse>(&framed);
    }

    #[test]
    fn any_cbor_under_a_valid_frame_is_handled(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut framed = b"SBG\x03".to_vec();
        framed.extend(zstd::bulk::compress(&bytes, 1).unwrap());
        let _ = decode::<SyncRequest>(&framed);
    }
}

#[test]
fn a_new_document_is_pushed_without_its_id() {
    let mut named = example_request();
    named.push[0].since.clear();
    let mut nameless = named.clone();
    nameless.push[0].id = None;
    let a = cbor(&named).unwrap();
    let b = cbor(&nameless).unwrap();
    // The id and its key are gone: 16 bytes, a CBOR byte-string header
    // and the two-letter key.
    assert_eq!(a.len() - b.len(), 16 + 1 + 3);
    let back: SyncRequest = decode(&encode(&nameless).unwrap()).unwrap();
    assert_eq!(back.push[0].id, None);
    let back: SyncRequest = decode(&encode(&named).unwrap()).unwrap();
    assert_eq!(back.push[0].id, Some(id(1)));
}

#[test]
fn the_dictionary_is_in_use_and_pays_for_small_messages() {
    // A pull-only request: almost nothing but field names.
    let m = SyncRequest {
        cursor: 1234,
        cursor_tag: 99,
        push: vec![],
        repair: vec![],
        max_response_bytes: 65_536,
        catalog: 0,
    };
    let plain = zstd::bulk::compress(&cbor(&m).unwrap(), 19).unwrap().len() + 4;
    let ours = encode(&m).unwrap().len();
    assert!(
        ours < plain,
        "{ours} bytes with the dictionary, {plain} without"
    );
    // Without the dictionary the frame does not decode.
    let bytes = encode(&m).unwrap();
    assert!(zstd::bulk::decompress(&bytes[4..], 1 << 20).is_err());
}

/// The catalog's bytes on the wire stay within 10 % of the definitions'
/// JSON compressed alone at zstd -19 (measured 1.01×: docs/benchmarks.md),
/// for a first delivery of every shipped definition and for one service.
#[test]
fn the_catalog_costs_no_more_on_the_wire_than_its_json_compressed() {
    use crate::catalog::{BUILTIN, EXAMPLES};
    let entry = |json: &str| CatalogEntry::published(json).unwrap();
    // An answer carrying nothing else: its other fields cost a few bytes.
    let answer = |entries: Vec<CatalogEntry>| SyncResponse {
        catalog_seq: entries.len() as u64,
        catalog: entries,
        ..SyncResponse::at(91_234, 0x5a3c_11e2)
    };
    let all: Vec<&str> = BUILTIN.iter().chain(EXAMPLES).map(|(_, j)| *j).collect();
    let cases = [
        (all.clone(), all.concat()),
        (vec![EXAMPLES[0].1], EXAMPLES[0].1.to_owned()),
    ];
    for (definitions, json) in cases {
        let wire = encode(&answer(definitions.iter().map(|j| entry(j)).collect()))
            .unwrap()
            .len();
        let alone = zstd::bulk::compress(json.as_bytes(), 19).unwrap().len();
        assert!(
            wire as f64 <= 1.1 * alone as f64,
            "{} definition(s): {wire} B on the wire, {alone} B as JSON at zstd -19",
            definitions.len()
        );
    }
}
