//! Writes the seed corpora of the `validators`, `upload` and `envelope` fuzz
//! targets and the fixed test key the server targets sign with
//! (`fuzz/fuzz_targets/common/device.pk8`; kept when it exists, so the
//! grown corpora stay valid). The `exchange` target builds its
//! sync requests itself from structured input, its changes written by that
//! key's device, so its seeds are grown by the fuzzer (`fuzz/README.md`).
//!
//! `cargo run -p sambung-e2e --example fuzz_seeds` (from the repository
//! root); the output is committed.

use std::path::Path;

use sambung_core::document::RequestDoc;
use sambung_core::lifecycle::Role;
use sambung_core::model::{Kind, Request};
use sambung_core::protocol::{self, DeviceKey, DocPull, DocPush, SyncRequest, SyncResponse};
use sambung_core::{Timestamp, templates};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    if !root.join("fuzz_targets/common/device.pk8").exists() {
        let key = DeviceKey::generate().unwrap();
        write(&root.join("fuzz_targets/common"), "device.pk8", key.pkcs8());
    }

    let mut content = templates::example(Kind::Complaint);
    content.region = "32.73.01.1001".into();
    let request = Request::draft(content, "warga-1", Role::Resident, Timestamp::now());
    // Validators: identifiers (a role byte, then text) and a pair of
    // requests for the rules table.
    let validators = root.join("corpus/validators");
    for (name, text) in [
        ("nik", "3273011503850001"),
        ("region", "32.73.01.1001"),
        ("nop", "32.73.010.001.002-0003.0"),
        ("plate", "D 1234 ABC"),
    ] {
        write(&validators, name, &[&[0u8][..], text.as_bytes()].concat());
    }
    let mut edited = request.clone();
    edited.assignee = Some("petugas-1".into());
    let pair = serde_json::to_vec(&[&request, &edited]).unwrap();
    write(
        &validators,
        "request-pair",
        &[&[2u8][..], &pair[..]].concat(),
    );

    // Envelopes of this protocol version: a push of a new request, a
    // pull-only request, and an answer pulling a document.
    let envelope = root.join("corpus/envelope");
    for old in std::fs::read_dir(&envelope).into_iter().flatten().flatten() {
        std::fs::remove_file(old.path()).unwrap();
    }
    let mut doc =
        RequestDoc::new(&request, automerge::ActorId::from([3u8; 16].as_slice())).unwrap();
    let heads = doc.heads();
    let push = SyncRequest {
        cursor: 41,
        cursor_tag: 7,
        push: vec![DocPush {
            id: None,
            since: vec![],
            changes: doc.save_after(&[]),
            heads: heads.iter().copied().map(Into::into).collect(),
        }],
        repair: vec![],
        max_response_bytes: 65_536,
        catalog: 0,
    };
    write(&envelope, "request-push", &protocol::encode(&push).unwrap());
    let pull_only = SyncRequest {
        push: vec![],
        ..push
    };
    write(
        &envelope,
        "request-pull",
        &protocol::encode(&pull_only).unwrap(),
    );
    let answer = SyncResponse {
        acks: vec![],
        refused: vec![],
        unknown_heads: vec![],
        repair: vec![],
        pull: vec![DocPull {
            id: request.id.to_bytes().unwrap(),
            changes: doc.save_after(&[]),
            heads: heads.iter().copied().map(Into::into).collect(),
            replace: false,
        }],
        cursor: 42,
        cursor_tag: 7,
        more: false,
        reset: false,
        wipe: false,
        acked_all: true,
        gone: Vec::new(),
        catalog: Vec::new(),
        catalog_seq: 0,
    };
    write(
        &envelope,
        "response-pull",
        &protocol::encode(&answer).unwrap(),
    );

    // Uploads: mode, offset (2), length (3), chunk.
    let corpus = root.join("corpus/upload");
    let chunk = b"%PDF-1.4 a small attachment".to_vec();
    let mut whole = vec![1u8, 0, 0];
    whole.extend_from_slice(&(chunk.len() as u32).to_le_bytes()[..3]);
    whole.extend_from_slice(&chunk);
    write(&corpus, "whole-chunk", &whole);
    let mut later = vec![2u8, 16, 0, 0, 1, 0];
    later.extend_from_slice(&chunk);
    write(&corpus, "offset-chunk", &later);
    let mut missing = vec![0u8];
    missing.extend_from_slice(
        format!(
            r#"{{"blobs":[{{"sha256":"{}","size":27}}]}}"#,
            "ab".repeat(32)
        )
        .as_bytes(),
    );
    write(&corpus, "missing", &missing);
    println!("seeds written under {}", root.display());
}
