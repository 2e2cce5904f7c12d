//! Bad input to the server gets a clear 4xx (or a per-document refusal)
//! with a machine-readable code, and changes nothing.

use automerge::ActorId;
use sambung_core::document::RequestDoc;
use sambung_core::lifecycle::Role;
use sambung_core::model::{Kind, Request, RequestId};
use sambung_core::protocol::{
    self, Call, DeviceKey, DocPush, ErrorBody, ErrorCode, RefusalCode, SYNC_PATH, SyncRequest,
    SyncResponse,
};
use sambung_core::templates;
use sambung_e2e::{Device, RawDevice, TestServer, now, sync_body};

async fn expect_error(resp: reqwest::Response, status: u16, code: ErrorCode) {
    assert_eq!(resp.status().as_u16(), status);
    let body: ErrorBody = resp.json().await.unwrap();
    assert_eq!(body.code, code, "{}", body.message);
    assert!(!body.message.is_empty());
}

fn new_request(user: &str, kind: Kind) -> (Request, RequestDoc) {
    let r = Request::draft(
        templates::example(kind),
        user,
        Role::Resident,
        sambung_core::Timestamp::now(),
    );
    let doc = RequestDoc::new(&r, ActorId::random()).unwrap();
    (r, doc)
}

#[tokio::test]
async fn bad_exchanges_are_refused_clearly_and_change_nothing() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dev = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let raw = RawDevice::of(&server.url(), &dev);
    let stranger = DeviceKey::generate().unwrap();
    let log_before = server.log_len();
    let good = sync_body(vec![]);

    // Unsigned; missing one header; malformed header.
    let resp = raw
        .http
        .post(format!("{}{SYNC_PATH}", server.url()))
        .body(good.clone())
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, ErrorCode::Unauthenticated).await;
    let device = raw.device;
    let aud = raw.audience.clone();
    let resp = raw
        .post(good.clone(), |k, b| {
            let mut p = k
                .sign(device, &Call::new(&aud, "POST", SYNC_PATH, b), now())
                .unwrap()
                .pairs()
                .to_vec();
            p[0].1.truncate(100);
            p
        })
        .await;
    expect_error(resp, 401, ErrorCode::Unauthenticated).await;
    // Signed by another key; signed for another body; stale; unknown device.
    let resp = raw
        .post(good.clone(), |_, b| {
            stranger
                .sign(device, &Call::new(&aud, "POST", SYNC_PATH, b), now())
                .unwrap()
                .pairs()
                .to_vec()
        })
        .await;
    expect_error(resp, 401, ErrorCode::BadSignature).await;
    let resp = raw
        .post(good.clone(), |k, _| {
            k.sign(device, &Call::new(&aud, "POST", SYNC_PATH, b"other"), now())
                .unwrap()
                .pairs()
                .to_vec()
        })
        .await;
    expect_error(resp, 401, ErrorCode::BadSignature).await;
    let resp = raw
        .post(good.clone(), |k, b| {
            k.sign(device, &Call::new(&aud, "POST", SYNC_PATH, b), now() - 3600)
                .unwrap()
                .pairs()
                .to_vec()
        })
        .await;
    expect_error(resp, 401, ErrorCode::StaleRequest).await;
    let resp = raw
        .post(good.clone(), |_, b| {
            stranger
                .sign([9; 16], &Call::new(&aud, "POST", SYNC_PATH, b), now())
                .unwrap()
                .pairs()
                .to_vec()
        })
        .await;
    expect_error(resp, 401, ErrorCode::UnknownDevice).await;
    // A replay of a good request.
    let headers = raw
        .key
        .sign(device, &Call::new(&aud, "POST", SYNC_PATH, &good), now())
        .unwrap()
        .pairs()
        .to_vec();
    let h2 = headers.clone();
    assert_eq!(
        raw.post(good.clone(), move |_, _| headers)
            .await
            .status()
            .as_u16(),
        200
    );
    expect_error(
        raw.post(good.clone(), move |_, _| h2).await,
        401,
        ErrorCode::Replayed,
    )
    .await;
    // Garbage, another protocol version, truncated zstd, valid zstd of junk.
    expect_error(
        raw.signed(b"hello".to_vec()).await,
        400,
        ErrorCode::BadEnvelope,
    )
    .await;
    let mut v9 = good.clone();
    v9[3] = 9;
    expect_error(raw.signed(v9).await, 400, ErrorCode::UnsupportedVersion).await;
    let big = sync_body(vec![DocPush {
        id: Some([1; 16]),
        since: vec![],
        changes: (0..5000u32).flat_map(|i| i.to_le_bytes()).collect(),
        heads: vec![],
    }]);
    expect_error(
        raw.signed(big[..big.len() / 2].to_vec()).await,
        400,
        ErrorCode::BadEnvelope,
    )
    .await;
    let mut junk = b"SBG\x03".to_vec();
    junk.extend(b"\x28\xb5\x2f\xfd\x00\x58\x00\x00\x10\x00\x00\x01");
    expect_error(raw.signed(junk).await, 400, ErrorCode::BadEnvelope).await;
    // Oversized body.
    let oversized = vec![0u8; sambung_server::api::device::MAX_SYNC_BODY + 1];
    expect_error(raw.signed(oversized).await, 413, ErrorCode::TooLarge).await;
    assert_eq!(
        server.log_len(),
        log_before,
        "refused exchanges changed nothing"
    );
}

/// A server with two residents, warga-1 and warga-2, enrolled (the folders
/// must outlive the devices).
async fn two_residents() -> (TestServer, [tempfile::TempDir; 2], Device, Device) {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let w1 = server
        .device(dirs[0].path(), Role::Resident, "warga-1", &[], None)
        .await;
    let w2 = server
        .device(dirs[1].path(), Role::Resident, "warga-2", &[], None)
        .await;
    (server, dirs, w1, w2)
}

#[tokio::test]
async fn pushes_all_taken_as_pushed_are_acknowledged_in_one_bit() {
    let (server, _dirs, w1, _w2) = two_residents().await;
    let raw = RawDevice::of(&server.url(), &w1);
    let actor = ActorId::from(w1.store.device_id().as_slice());
    let push = |kind| {
        let (mut r, _) = new_request("warga-1", kind);
        r.created_by = "warga-1".into();
        let mut doc = RequestDoc::new(&r, actor.clone()).unwrap();
        DocPush {
            id: None,
            since: vec![],
            changes: doc.save_after(&[]),
            heads: heads_of(&mut doc),
        }
    };
    let answer = raw
        .exchange(vec![push(Kind::Complaint), push(Kind::KtpEl)])
        .await;
    assert!(answer.acked_all);
    assert!(answer.acks.is_empty() && answer.refused.is_empty());
    assert_eq!(server.log_len(), 2);
    // One refused among them: every answer named.
    let mut bad = push(Kind::Complaint);
    bad.heads = vec![protocol::HeadPrefix([1; 8])];
    let good = push(Kind::Complaint);
    let answer = raw.exchange(vec![good, bad]).await;
    assert!(!answer.acked_all);
    assert_eq!((answer.acks.len(), answer.refused.len()), (1, 1));
}

#[tokio::test]
async fn bad_documents_are_refused_one_by_one_and_change_nothing() {
    let (server, _dirs, w1, w2) = two_residents().await;
    // warga-2 has a request on the server.
    let theirs = w2.store.create(templates::example(Kind::KtpEl)).unwrap();
    w2.sync_until_ok(3).await;
    let log_before = server.log_len();
    let raw = RawDevice::of(&server.url(), &w1);
    let actor = ActorId::from(w1.store.device_id().as_slice());

    // 1. Corrupt Automerge bytes.
    let corrupt = DocPush {
        id: Some([3; 16]),
        since: vec![],
        changes: b"\x85\x6f\x4a\x83 not automerge".to_vec(),
        heads: vec![protocol::HeadPrefix([8; 8])],
    };
    // 2. A change to warga-2's request, by warga-1.
    let mut doc = RequestDoc::load(&server_doc(&server, &theirs), [], actor.clone()).unwrap();
    let before = doc.heads();
    doc.update(|r| {
        r.notes.push(sambung_core::model::Note {
            id: "x".into(),
            at: sambung_core::Timestamp(1),
            by: "warga-1".into(),
            role: Role::Resident,
            text: "hi".into(),
        });
        Ok(())
    })
    .unwrap();
    let foreign = DocPush {
        id: Some(theirs.to_bytes().unwrap()),
        since: before.iter().map(|h| (*h).into()).collect(),
        changes: doc.save_after(&before),
        heads: heads_of(&mut doc),
    };
    // 3. A new request claiming to be created by someone else.
    let (r, _) = new_request("warga-2", Kind::Complaint);
    let mut d = RequestDoc::new(&r, actor.clone()).unwrap();
    let impostor = DocPush {
        id: Some(r.id.to_bytes().unwrap()),
        since: vec![],
        changes: d.save_after(&[]),
        heads: heads_of(&mut d),
    };
    // 4. A new request written by another device's actor (authorship).
    let (r4, mut d4) = new_request("warga-1", Kind::Complaint);
    let ghost = DocPush {
        id: Some(r4.id.to_bytes().unwrap()),
        since: vec![],
        changes: d4.save_after(&[]),
        heads: heads_of(&mut d4),
    };
    // 5. A document whose content is not a request.
    let mut other = automerge::AutoCommit::new().with_actor(actor.clone());
    autosurgeon::reconcile(
        &mut other,
        std::collections::HashMap::from([("x".to_string(), 1u64)]),
    )
    .unwrap();
    let not_request = DocPush {
        id: Some([5; 16]),
        since: vec![],
        changes: other.save_after(&[]),
        heads: other.get_heads().into_iter().map(Into::into).collect(),
    };
    // 6. Unknown `since` heads.
    let unknown = DocPush {
        id: Some([6; 16]),
        since: vec![protocol::Hash([7; 32])],
        changes: vec![],
        heads: vec![],
    };
    // 7. And one good document, which must go through.
    let (mut good_req, _) = new_request("warga-1", Kind::KtpEl);
    good_req.created_by = "warga-1".into();
    let mut good_doc = RequestDoc::new(&good_req, actor.clone()).unwrap();
    let good = DocPush {
        id: Some(good_req.id.to_bytes().unwrap()),
        since: vec![],
        changes: good_doc.save_after(&[]),
        heads: heads_of(&mut good_doc),
    };

    // 8. A document over the server's size limit.
    let huge = DocPush {
        id: Some([8; 16]),
        since: vec![],
        changes: vec![0x85; sambung_server::exchange::MAX_DOCUMENT_BYTES + 1],
        heads: vec![],
    };

    // 9–11. New documents sent without their id: named from the document
    // when it holds one; no answer when it does not (or claims a base).
    let nameless = DocPush {
        id: None,
        ..not_request.clone()
    };
    let nameless_with_base = DocPush {
        id: None,
        since: vec![protocol::Hash([9; 32])],
        ..good.clone()
    };
    let (mut unnamed_req, _) = new_request("warga-1", Kind::Complaint);
    unnamed_req.created_by = "warga-1".into();
    let mut unnamed_doc = RequestDoc::new(&unnamed_req, actor.clone()).unwrap();
    let unnamed = DocPush {
        id: None,
        since: vec![],
        changes: unnamed_doc.save_after(&[]),
        heads: heads_of(&mut unnamed_doc),
    };
    let refused_before = 6;
    let answer = raw
        .exchange(vec![
            huge,
            corrupt,
            foreign,
            impostor,
            ghost,
            not_request,
            unknown,
            good.clone(),
            nameless,
            nameless_with_base,
            unnamed,
        ])
        .await;
    assert_eq!(
        answer.refused.len(),
        refused_before,
        "no answer for the nameless"
    );
    let code_of = |id: [u8; 16]| answer.refused.iter().find(|r| r.id == id).map(|r| r.code);
    assert_eq!(code_of([8; 16]), Some(RefusalCode::TooLarge));
    assert_eq!(code_of([3; 16]), Some(RefusalCode::Invalid));
    assert_eq!(
        code_of(theirs.to_bytes().unwrap()),
        Some(RefusalCode::Forbidden)
    );
    assert_eq!(
        code_of(r.id.to_bytes().unwrap()),
        Some(RefusalCode::Forbidden)
    );
    assert_eq!(
        code_of(r4.id.to_bytes().unwrap()),
        Some(RefusalCode::Forbidden)
    );
    assert_eq!(code_of([5; 16]), Some(RefusalCode::Invalid));
    assert_eq!(answer.unknown_heads, vec![protocol::DocRef([6; 16])]);
    assert_eq!(answer.acks.len(), 2);
    assert_eq!(Some(answer.acks[0].id), good.id);
    assert_eq!(Some(answer.acks[1].id), unnamed_req.id.to_bytes());
    assert!(answer.refused.iter().all(|r| !r.reason.is_empty()));
    // Only the good documents reached the log.
    assert_eq!(server.log_len(), log_before + 2);
    // warga-2's request is untouched, and warga-1 never sees it.
    w2.sync_until_ok(3).await;
    assert!(w2.store.get(&theirs).unwrap().notes.is_empty());
    w1.sync_until_ok(3).await;
    assert!(matches!(
        w1.store.get(&theirs),
        Err(sambung_core::Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn enrollment_codes_are_single_use_and_expire() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let code = server.code(Role::Resident, "warga-1", &[], None);
    let d1 = tempfile::tempdir().unwrap();
    Device::enroll(d1.path(), &server.url(), &code, Role::Resident, "warga-1").await;
    // The same code again, from another device.
    let d2 = tempfile::tempdir().unwrap();
    let mut store = sambung_core::store::Store::init(
        d2.path(),
        &sambung_core::store::Secret::Key(sambung_core::crypto::DataKey::generate().unwrap()),
        sambung_core::store::Identity {
            user: "x".into(),
            role: Role::Resident,
        },
    )
    .unwrap();
    let client = sambung_core::sync::Client::new(&server.url(), &Default::default()).unwrap();
    match client.enroll(&mut store, &code).await {
        Err(sambung_core::Error::Server {
            status: 403,
            code: ErrorCode::BadEnrollmentCode,
            ..
        }) => {}
        other => panic!("expected a refused code, got {other:?}"),
    }
    // An expired code.
    let account = sambung_server::accounts::Account {
        id: "warga-3".into(),
        role: Role::Resident,
        regions: vec![],
        nik_hash: None,
    };
    let expired =
        sambung_server::enroll::create(server.state.storage(), &account, now() - 7200, 3600)
            .unwrap();
    assert!(matches!(
        client.enroll(&mut store, &expired).await,
        Err(sambung_core::Error::Server {
            code: ErrorCode::BadEnrollmentCode,
            ..
        })
    ));
    assert!(
        store.enrollment().unwrap().is_none(),
        "a refused enrollment records nothing"
    );
    // Malformed enrollment bodies.
    let http = reqwest::Client::new();
    for body in [
        "",
        "{}",
        "{\"code\":\"x\",\"device\":\"zz\",\"public_key\":\"00\"}",
    ] {
        let resp = http
            .post(format!("{}/v1/enroll", server.url()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{body}");
        let e: ErrorBody = resp.json().await.unwrap();
        assert!(!e.message.is_empty());
    }
    // An enrollment body over its 4 KiB limit.
    let resp = http
        .post(format!("{}/v1/enroll", server.url()))
        .body("x".repeat(5000))
        .send()
        .await
        .unwrap();
    expect_error(resp, 413, ErrorCode::TooLarge).await;
    // A device id that is not the one derived from the public key (someone
    // trying to enroll under another device's author id).
    let fresh = server.code(Role::Resident, "warga-4", &[], None);
    let key = DeviceKey::generate().unwrap();
    let body = format!(
        "{{\"code\":\"{fresh}\",\"device\":\"{}\",\"public_key\":\"{}\",\"proof\":\"{}\"}}",
        hex_string(&[7u8; 16]),
        hex_string(&key.public_key()),
        key.prove_enrollment(&fresh)
    );
    let resp = http
        .post(format!("{}/v1/enroll", server.url()))
        .body(body)
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, ErrorCode::BadRequest).await;
    // A plain-http server that is not loopback is refused by the client.
    assert!(matches!(
        sambung_core::sync::Client::new("http://sambung.example.go.id", &Default::default()),
        Err(sambung_core::Error::BadServerUrl(_))
    ));
    assert!(
        sambung_core::sync::Client::new("https://sambung.example.go.id", &Default::default())
            .is_ok()
    );
    // Health.
    assert_eq!(
        http.get(format!("{}/health", server.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn heads_of(doc: &mut RequestDoc) -> Vec<protocol::HeadPrefix> {
    doc.heads().into_iter().map(Into::into).collect()
}

/// The server's copy of a document, read through a fresh device's eyes is
/// not possible (scope); read it from the server's storage instead.
fn server_doc(server: &TestServer, id: &RequestId) -> Vec<u8> {
    let entries = server.state.storage().log_since(0, 1000).unwrap();
    let e = entries
        .iter()
        .find(|e| e.doc == id.to_bytes().unwrap())
        .unwrap();
    e.data.clone()
}

#[tokio::test]
async fn damaged_changes_and_forged_authorship_are_refused_on_existing_documents() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let w = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let id = w.store.create(templates::example(Kind::KtpEl)).unwrap();
    w.sync_until_ok(3).await;
    let raw = RawDevice::of(&server.url(), &w);
    let actor = ActorId::from(w.store.device_id().as_slice());
    let log_before = server.log_len();
    let mut doc = RequestDoc::load(&server_doc(&server, &id), [], actor).unwrap();
    let base: Vec<protocol::Hash> = doc.heads().into_iter().map(Into::into).collect();
    let base_heads = doc.heads();
    // A long note, so that a truncated change loses something.
    doc.update(|r| {
        r.notes.push(sambung_core::model::Note {
            id: "n1".into(),
            at: sambung_core::Timestamp(5),
            by: "warga-1".into(),
            role: Role::Resident,
            text: "x".repeat(2000),
        });
        Ok(())
    })
    .unwrap();
    let changes = doc.save_after(&base_heads);
    let truncated = DocPush {
        id: Some(id.to_bytes().unwrap()),
        since: base.clone(),
        changes: changes[..changes.len() - 40].to_vec(),
        heads: heads_of(&mut doc),
    };
    let answer = raw.exchange(vec![truncated]).await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(answer.refused[0].code, RefusalCode::Invalid);
    assert!(answer.acks.is_empty());
    // A resident approving its own request "as the agency".
    let mut forged = RequestDoc::load(
        &server_doc(&server, &id),
        [],
        ActorId::from(w.store.device_id().as_slice()),
    )
    .unwrap();
    let before = forged.heads();
    forged
        .update(|r| {
            r.history.push(sambung_core::lifecycle::StatusEntry {
                seq: 0,
                at: sambung_core::Timestamp(6),
                id: "forged".into(),
                from: sambung_core::lifecycle::Status::Draft,
                to: sambung_core::lifecycle::Status::Approved,
                by: "dinas".into(),
                role: Role::Agency,
                note: None,
            });
            Ok(())
        })
        .unwrap();
    let push = DocPush {
        id: Some(id.to_bytes().unwrap()),
        since: base,
        changes: forged.save_after(&before),
        heads: heads_of(&mut forged),
    };
    let answer = raw.exchange(vec![push]).await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(answer.refused[0].code, RefusalCode::Forbidden);
    assert_eq!(server.log_len(), log_before, "nothing was written");
}

#[tokio::test]
async fn bad_repairs_and_foreign_cursors_are_handled_and_change_nothing() {
    let (server, _dirs, w1, w2) = two_residents().await;
    let theirs = w2.store.create(templates::example(Kind::KtpEl)).unwrap();
    w2.sync_until_ok(3).await;
    let mine = w1
        .store
        .create(templates::example(Kind::Complaint))
        .unwrap();
    w1.sync_until_ok(3).await;
    let log_before = server.log_len();
    let mine_before = server_doc(&server, &mine);
    let raw = RawDevice::of(&server.url(), &w1);
    let actor = ActorId::from(w1.store.device_id().as_slice());

    // A repair message that carries a change (an edit of warga-1's own
    // request): repair never takes changes, so nothing is written.
    let mut doc = RequestDoc::load(&mine_before, [], actor.clone()).unwrap();
    let before = doc.heads();
    doc.update(|r| {
        r.notes.push(sambung_core::model::Note {
            id: "n".into(),
            at: sambung_core::Timestamp(1),
            by: "warga-1".into(),
            role: Role::Resident,
            text: "smuggled in a repair".into(),
        });
        Ok(())
    })
    .unwrap();
    let first = doc
        .sync_message(&mut automerge::sync::State::new())
        .unwrap();
    let mut carrying = automerge::sync::Message::decode(&first).unwrap();
    carrying.changes = automerge::sync::ChunkList::from(doc.save_after(&before));
    let repairs = vec![
        // Not a sync message at all.
        protocol::DocRepair {
            id: [9; 16],
            message: b"garbage".to_vec(),
        },
        // warga-2's request: forbidden, and nothing of it is sent back.
        protocol::DocRepair {
            id: theirs.to_bytes().unwrap(),
            message: first.clone(),
        },
        // An id the server does not hold: it answers that it holds nothing.
        protocol::DocRepair {
            id: [10; 16],
            message: first.clone(),
        },
        protocol::DocRepair {
            id: mine.to_bytes().unwrap(),
            message: carrying.encode(),
        },
    ];
    // A cursor this server never gave (wrong tag): the pull starts over.
    let body = protocol::encode(&SyncRequest {
        cursor: log_before as u64,
        cursor_tag: 0xdead_beef,
        push: vec![],
        repair: repairs,
        max_response_bytes: 65536,
        catalog: 0,
    })
    .unwrap();
    let resp = raw.signed(body).await;
    assert_eq!(resp.status().as_u16(), 200);
    let answer: SyncResponse = protocol::decode(&resp.bytes().await.unwrap()).unwrap();
    let code_of = |id: [u8; 16]| answer.refused.iter().find(|r| r.id == id).map(|r| r.code);
    assert_eq!(code_of([9; 16]), Some(RefusalCode::Invalid));
    assert_eq!(
        code_of(theirs.to_bytes().unwrap()),
        Some(RefusalCode::Forbidden)
    );
    let replied: Vec<[u8; 16]> = answer.repair.iter().map(|r| r.id).collect();
    assert!(!replied.contains(&theirs.to_bytes().unwrap()));
    let unknown = answer.repair.iter().find(|r| r.id == [10; 16]).unwrap();
    assert!(
        automerge::sync::Message::decode(&unknown.message)
            .unwrap()
            .heads
            .is_empty()
    );
    assert!(replied.contains(&mine.to_bytes().unwrap()));
    assert!(answer.reset, "a foreign cursor restarts the pull");
    assert_eq!(answer.cursor as usize, log_before);
    // The pull started over: warga-1 gets again what it may see — its own
    // request too, as entries up to the highest cursor a device was given
    // are resent — and never warga-2's.
    assert!(
        answer
            .pull
            .iter()
            .all(|p| p.id != theirs.to_bytes().unwrap())
    );
    assert_eq!(server.log_len(), log_before);
    assert_eq!(server_doc(&server, &mine), mine_before);
}

#[tokio::test]
async fn a_request_that_stalls_gets_a_timeout_and_frees_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let storage =
        std::sync::Arc::new(sambung_server::storage::SqliteStorage::open(dir.path()).unwrap());
    let state = sambung_server::api::AppState::with_settings(
        storage,
        sambung_server::secrets::Secrets::generate().unwrap(),
        sambung_server::api::Settings {
            request_timeout: std::time::Duration::from_millis(300),
            ..Default::default()
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sambung_server::api::serve(
        listener,
        state,
        std::future::pending(),
    ));
    // Headers announce 1000 bytes; 10 arrive, then nothing.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!(
            "POST {SYNC_PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nSBG\x03zzzzzz"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tcp.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"timeout""#), "{answer}");
    // The server still answers others.
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_request_in_flight_and_takes_no_new_one() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let addr = server.addr;
    let body = br#"{"code":"AAAA-BBBB-CCCC","device":"00","public_key":"00"}"#;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!(
            "POST /v1/enroll HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tcp.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // Shut down while the request is half sent.
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !stopping.is_finished(),
        "it waits for the request in flight"
    );
    // New connections are no longer taken.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    // The rest of the body arrives: the request gets its full answer.
    tcp.write_all(&body[10..]).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("bad_request"), "{answer}");
    tokio::time::timeout(std::time::Duration::from_secs(10), stopping)
        .await
        .expect("the server stops once the request is answered")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_get_429_with_retry_after_per_device_and_per_address() {
    use sambung_server::limits::{Limits, Rate};
    sambung_core::sync::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let storage =
        std::sync::Arc::new(sambung_server::storage::SqliteStorage::open(dir.path()).unwrap());
    let limits = Limits {
        per_address: Rate {
            per_minute: 60,
            burst: 8,
        },
        per_device: Rate {
            per_minute: 60,
            burst: 2,
        },
    };
    let state = sambung_server::api::AppState::with_settings(
        storage,
        sambung_server::secrets::Secrets::generate().unwrap(),
        sambung_server::api::Settings {
            request_timeout: std::time::Duration::from_secs(30),
            limits,
            ..Default::default()
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sambung_server::api::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    let account = sambung_server::accounts::Account {
        id: "warga-1".into(),
        role: Role::Resident,
        regions: vec![],
        nik_hash: None,
    };
    let code = sambung_server::enroll::create(state.storage(), &account, now(), 3600).unwrap();
    let d = tempfile::tempdir().unwrap();
    let dev = Device::enroll(d.path(), &url, &code, Role::Resident, "warga-1").await; // 1 from this address
    let raw = RawDevice::of(&url, &dev);
    // The device's burst of 2, then 429 with Retry-After (address: 3 of 8).
    for _ in 0..2 {
        assert_eq!(raw.signed(sync_body(vec![])).await.status().as_u16(), 200);
    }
    let limited = raw.signed(sync_body(vec![])).await;
    assert!(limited.headers().get("retry-after").is_some());
    expect_error(limited, 429, ErrorCode::RateLimited).await;
    // And the sync client sees a retryable error.
    match dev.sync().await {
        Err(e) => assert!(e.is_retryable(), "{e}"),
        Ok(s) => panic!("expected 429, got {s:?}"),
    }
    // Unsigned noise from the same address runs into the address limit
    // (5 used so far; the rest of the burst of 8, then 429).
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            raw.http
                .post(format!("{url}{SYNC_PATH}"))
                .body("x")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert!(statuses.iter().take(3).all(|s| *s != 429), "{statuses:?}");
    assert!(statuses.iter().skip(3).all(|s| *s == 429), "{statuses:?}");
}
