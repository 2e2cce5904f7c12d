//! Writes the seed corpora of the server fuzz targets (`fuzz/corpus/exchange`,
//! `fuzz/corpus/upload`) and the fixed test key they sign with
//! (`fuzz/fuzz_targets/common/device.pk8`): real sync requests whose changes
//! are written by that key's device, so that mutations reach the merge and
//! the rules table rather than stopping at authorship.
//!
//! `cargo run -p sambung-e2e --example fuzz_seeds` (from the repository
//! root); the output is committed.

use std::path::Path;

use automerge::ActorId;
use sambung_core::document::RequestDoc;
use sambung_core::lifecycle::{Role, Status, StatusEntry};
use sambung_core::model::{Kind, Note, Request};
use sambung_core::protocol::{DeviceKey, DocPush, Hash, device_id_of};
use sambung_core::{Timestamp, templates};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let key = DeviceKey::generate().unwrap();
    write(&root.join("fuzz_targets/common"), "device.pk8", key.pkcs8());
    let actor = ActorId::from(device_id_of(&key.public_key()).as_slice());
    let corpus = root.join("corpus/exchange");

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

    let mut doc = RequestDoc::new(&request, actor).unwrap();
    let new = DocPush {
        id: None,
        since: vec![],
        changes: doc.save_after(&[]),
        heads: doc.heads().into_iter().map(Into::into).collect(),
    };
    write(
        &corpus,
        "new-request",
        &sambung_e2e::sync_body(vec![new.clone()]),
    );
    // On top of it: a note and a submission, then a forbidden approval.
    let base = doc.heads();
    doc.update(|r| {
        r.notes.push(Note {
            id: "n1".into(),
            at: Timestamp::now(),
            by: "warga-1".into(),
            role: Role::Resident,
            text: "lubang makin besar".into(),
        });
        r.history.push(StatusEntry {
            seq: 0,
            at: Timestamp::now(),
            id: "s1".into(),
            from: Status::Draft,
            to: Status::Submitted,
            by: "warga-1".into(),
            role: Role::Resident,
            note: None,
        });
        Ok(())
    })
    .unwrap();
    let edit = DocPush {
        id: request.id.to_bytes(),
        since: base.iter().copied().map(Hash::from).collect(),
        changes: doc.save_after(&base),
        heads: doc.heads().into_iter().map(Into::into).collect(),
    };
    write(
        &corpus,
        "new-then-edit",
        &sambung_e2e::sync_body(vec![new, edit.clone()]),
    );
    let submitted = doc.heads();
    doc.update(|r| {
        r.history.push(StatusEntry {
            seq: 1,
            at: Timestamp::now(),
            id: "s2".into(),
            from: Status::Submitted,
            to: Status::Approved,
            by: "warga-1".into(),
            role: Role::Resident,
            note: None,
        });
        r.assignee = Some("warga-1".into());
        Ok(())
    })
    .unwrap();
    let forbidden = DocPush {
        id: request.id.to_bytes(),
        since: submitted.iter().copied().map(Hash::from).collect(),
        changes: doc.save_after(&submitted),
        heads: doc.heads().into_iter().map(Into::into).collect(),
    };
    write(
        &corpus,
        "edit-and-forbidden",
        &sambung_e2e::sync_body(vec![edit, forbidden]),
    );
    write(&corpus, "empty", &sambung_e2e::sync_body(vec![]));

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
