//! Blobs have owners: a request references bytes the server holds only for
//! the account that uploaded them or one that sees another request
//! referencing them; downloads go through a request whose reference grants
//! the bytes; `blobs/missing` tells about the caller's own uploads only;
//! a claim fixes nothing for others; unfinished uploads expire, bytes no
//! request references are collected after a grace period, and an erasure
//! keeps bytes another request still references.

use automerge::ActorId;
use sambung_core::document::RequestDoc;
use sambung_core::identifiers::{Nik, RegionCode};
use sambung_core::lifecycle::Role;
use sambung_core::model::{AttachmentRef, AttachmentRole, Kind, Request, RequestId};
use sambung_core::protocol::blobs::{
    BLOB_PATH, MISSING_PATH, MissingResponse, UPLOAD_LENGTH, UPLOAD_OFFSET,
};
use sambung_core::protocol::{DocPush, Hash, RefusalCode};
use sambung_core::{Timestamp, templates};
use sambung_e2e::{Agency, Device, RawDevice, TestServer, noise as bytes, now};
use sambung_e2e::{sha256 as digest, sha256_hex as sha};
use sambung_server::storage::BlobRetention;

const DAY: i64 = 24 * 3600;

fn complaint(nik: &str) -> sambung_core::model::RequestContent {
    let mut c = templates::example(Kind::Complaint);
    c.region = RegionCode::from("32.73.01.1001");
    if let Some(a) = &mut c.applicant {
        a.nik = Nik::from(nik);
        a.birth_date = None;
        a.sex = None;
    }
    c
}

/// A signed call of `d` to the server, as its app would make it.
async fn signed(
    url: &str,
    d: &Device,
    method: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> reqwest::Response {
    let audience = d.store.enrollment().unwrap().unwrap().audience;
    let mut call = sambung_core::protocol::Call::new(&audience, method, path, body);
    for (name, value) in headers {
        if let Some(h) = sambung_core::protocol::SignedHeader::ALL
            .into_iter()
            .find(|h| h.name() == *name)
        {
            call = call.header(h, value);
        }
    }
    let signed = d
        .store
        .device_key()
        .unwrap()
        .sign(d.store.device_id(), &call, now())
        .unwrap();
    let mut req = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{url}{path}"),
        )
        .body(body.to_vec());
    for (k, v) in signed.pairs() {
        req = req.header(k, v);
    }
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap()
}

/// One chunk of an upload, as `d`.
async fn patch(url: &str, d: &Device, data: &[u8], offset: u64, length: u64) -> u16 {
    let chunk = &data[offset as usize..];
    let name = sha(data);
    signed(
        url,
        d,
        "PATCH",
        &format!("{BLOB_PATH}{name}"),
        chunk,
        &[
            (UPLOAD_OFFSET, offset.to_string()),
            (UPLOAD_LENGTH, length.to_string()),
        ],
    )
    .await
    .status()
    .as_u16()
}

/// What `blobs/missing` answers `d` about `data`: `None` when it is not
/// missing, else the offset to go on from.
async fn missing(url: &str, d: &Device, data: &[u8]) -> Option<u64> {
    let body = serde_json::json!({"blobs": [{"sha256": sha(data), "size": data.len()}]});
    let r = signed(
        url,
        d,
        "POST",
        MISSING_PATH,
        body.to_string().as_bytes(),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    let answer: MissingResponse = r.json().await.unwrap();
    assert!(answer.refused.is_empty());
    answer.missing.first().map(|m| m.offset)
}

/// `d` downloads an attachment of request `id`, whole.
async fn device_download(url: &str, d: &Device, id: &RequestId, data: &[u8]) -> (u16, Vec<u8>) {
    let r = signed(
        url,
        d,
        "GET",
        &format!("/v1/requests/{id}/attachments/{}", sha(data)),
        b"",
        &[],
    )
    .await;
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// A reference to `data` as an attachment.
fn reference(data: &[u8]) -> AttachmentRef {
    AttachmentRef {
        sha256: sha(data),
        role: AttachmentRole::Photo,
        purpose: None,
        name: "foto.jpg".into(),
        mime: "image/jpeg".into(),
        size: data.len() as u64,
        added_at: Timestamp::now(),
    }
}

/// A push of `edit` by `dev`'s actor on top of the server's copy of `id`,
/// as a tampered app would send it (its store checks nothing).
fn tampered(
    server: &TestServer,
    dev: &Device,
    id: &RequestId,
    edit: impl FnOnce(&mut Request),
) -> DocPush {
    let actor = ActorId::from(dev.store.device_id().as_slice());
    let data = server
        .state
        .storage()
        .document(id.to_bytes().unwrap())
        .unwrap()
        .unwrap()
        .data;
    let mut doc = RequestDoc::load(&data, [], actor).unwrap();
    let before = doc.heads();
    doc.update(|r| {
        edit(r);
        Ok(())
    })
    .unwrap();
    DocPush {
        id: Some(id.to_bytes().unwrap()),
        since: before.iter().copied().map(Hash::from).collect(),
        changes: doc.save_after(&before),
        heads: doc.heads().into_iter().map(Into::into).collect(),
    }
}

/// The attachments the server holds in its copy of `id`.
fn server_attachments(server: &TestServer, id: &RequestId) -> Vec<String> {
    let data = server
        .state
        .storage()
        .document(id.to_bytes().unwrap())
        .unwrap()
        .unwrap()
        .data;
    RequestDoc::load(&data, [], ActorId::random())
        .unwrap()
        .hydrate()
        .unwrap()
        .attachments
        .into_iter()
        .map(|a| a.sha256)
        .collect()
}

/// The one outcome of a raw exchange pushing one document.
async fn push_one(server: &TestServer, dev: &Device, push: DocPush) -> Result<(), String> {
    let answer = RawDevice::of(&server.url(), dev).exchange(vec![push]).await;
    match (
        answer.acked_all || answer.acks.len() == 1,
        answer.refused.first(),
    ) {
        (true, None) => Ok(()),
        (false, Some(r)) => {
            assert_eq!(r.code, RefusalCode::Forbidden, "{}", r.reason);
            Err(r.reason.clone())
        }
        other => panic!("unexpected answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_are_referenced_and_read_only_by_whom_they_belong_to() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let url = server.url();
    let home = tempfile::tempdir().unwrap();
    let a = server
        .device(&home.path().join("a"), Role::Resident, "warga-a", &[], None)
        .await;
    let b = server
        .device(&home.path().join("b"), Role::Resident, "warga-b", &[], None)
        .await;
    let agency = Agency::enroll(&server, "dinas", &["32.73"]).await;

    // A's photo, uploaded by A.
    let photo = bytes(300 * 1024, 1);
    let a_id = a.store.create(complaint("3273014108900007")).unwrap();
    a.store
        .attach(
            &a_id,
            AttachmentRole::Photo,
            "f.jpg",
            "image/jpeg",
            &photo[..],
        )
        .unwrap();
    a.store.submit(&a_id).unwrap();
    let s = a.sync().await.unwrap();
    assert_eq!((s.attachments_uploaded, s.refused.len()), (1, 0));
    assert_eq!(missing(&url, &a, &photo).await, None, "A holds it");

    // B knows the hash, not the bytes: the server does not tell B it
    // holds them, B cannot read them through A's request, and B's draft
    // may not take a reference to them.
    assert_eq!(missing(&url, &b, &photo).await, Some(0), "missing for B");
    assert_eq!(device_download(&url, &b, &a_id, &photo).await.0, 404);
    let b_id = b.store.create(complaint("3273016607990042")).unwrap();
    b.sync_until_ok(3).await;
    let planted = tampered(&server, &b, &b_id, |r| {
        r.attachments.push(reference(&photo))
    });
    let reason = push_one(&server, &b, planted).await.unwrap_err();
    assert!(reason.contains("did not upload"), "{reason}");
    assert!(server_attachments(&server, &b_id).is_empty(), "not written");

    // B's own attachment is taken: the document first, its bytes after.
    let own = bytes(20_000, 2);
    b.store
        .attach(
            &b_id,
            AttachmentRole::Photo,
            "g.jpg",
            "image/jpeg",
            &own[..],
        )
        .unwrap();
    let s = b.sync().await.unwrap();
    assert_eq!((s.attachments_uploaded, s.refused.len()), (1, 0));
    assert_eq!(server_attachments(&server, &b_id), vec![sha(&own)]);
    assert_eq!(
        device_download(&url, &b, &b_id, &own).await,
        (200, own.clone())
    );
    // ... and A cannot read B's bytes.
    assert_eq!(device_download(&url, &a, &b_id, &own).await.0, 404);

    // A reference to bytes nobody uploaded yet is taken (the document goes
    // before its bytes), but grants nothing: when A uploads those bytes
    // later, B's request does not show them.
    let later = bytes(5_000, 3);
    let early = tampered(&server, &b, &b_id, |r| {
        r.attachments.push(reference(&later))
    });
    push_one(&server, &b, early).await.unwrap();
    let a2 = a.store.create(complaint("3273014108900007")).unwrap();
    a.store
        .attach(
            &a2,
            AttachmentRole::Photo,
            "h.jpg",
            "image/jpeg",
            &later[..],
        )
        .unwrap();
    a.store.submit(&a2).unwrap();
    assert_eq!(a.sync().await.unwrap().attachments_uploaded, 1);
    assert_eq!(device_download(&url, &a, &a2, &later).await.0, 200);
    assert_eq!(device_download(&url, &b, &b_id, &later).await.0, 404);
    let (status, _) = agency
        .raw_get(
            &format!("/v1/agency/requests/{b_id}/attachments/{}", sha(&later)),
            None,
        )
        .await;
    assert_eq!(status, 404, "nor to the office through B's request");

    // B holding the same bytes uploads them whole itself (missing for B,
    // from zero), and owns them too: the reference is then taken and
    // grants them; the server keeps one copy.
    assert_eq!(missing(&url, &b, &photo).await, Some(0));
    assert_eq!(patch(&url, &b, &photo, 0, photo.len() as u64).await, 204);
    assert_eq!(missing(&url, &b, &photo).await, None);
    let again = tampered(&server, &b, &b_id, |r| {
        r.attachments.push(reference(&photo))
    });
    push_one(&server, &b, again).await.unwrap();
    assert_eq!(
        device_download(&url, &b, &b_id, &photo).await,
        (200, photo.clone())
    );
    assert_eq!(
        server
            .state
            .storage()
            .blob_state(&digest(&photo))
            .unwrap()
            .map(|s| (s.size, s.complete)),
        Some((photo.len() as u64, true))
    );
    // A sending more of bytes it holds whole: nothing more is taken.
    assert_eq!(patch(&url, &a, &photo, 0, photo.len() as u64).await, 409);
    // The office sees A's photo through A's request as before.
    let (status, got) = agency
        .raw_get(
            &format!("/v1/agency/requests/{a_id}/attachments/{}", sha(&photo)),
            None,
        )
        .await;
    assert_eq!((status, got == photo), (200, true));

    // An officer who sees A's request may put the photo into a request of
    // its own without uploading it (it sees the bytes already).
    let officer = server
        .device(
            &home.path().join("o"),
            Role::Officer,
            "petugas-1",
            &["32.73"],
            None,
        )
        .await;
    officer.sync().await.unwrap();
    let o_id = officer.store.create(complaint("3273014108900007")).unwrap();
    officer
        .store
        .attach(
            &o_id,
            AttachmentRole::Photo,
            "f.jpg",
            "image/jpeg",
            &photo[..],
        )
        .unwrap();
    let s = officer.sync().await.unwrap();
    assert_eq!(
        (
            s.refused.len(),
            s.attachments_uploaded,
            s.attachment_bytes_up
        ),
        (0, 1, 0),
        "taken, and not sent again"
    );
    assert_eq!(device_download(&url, &officer, &o_id, &photo).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_with_a_wrong_size_blocks_nobody_else() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let url = server.url();
    let home = tempfile::tempdir().unwrap();
    let a = server
        .device(&home.path().join("a"), Role::Resident, "warga-a", &[], None)
        .await;
    let b = server
        .device(&home.path().join("b"), Role::Resident, "warga-b", &[], None)
        .await;
    let agency = Agency::enroll(&server, "dinas", &["32.73"]).await;
    let photo = bytes(100_000, 4);
    let name = sha(&photo);

    // B squats on the hash first, with a size of its choosing.
    let r = signed(
        &url,
        &b,
        "PATCH",
        &format!("{BLOB_PATH}{name}"),
        &[0u8; 10],
        &[(UPLOAD_OFFSET, "0".into()), (UPLOAD_LENGTH, "999".into())],
    )
    .await;
    assert_eq!(r.status(), 204);
    // A does not see B's claim and uploads the real bytes whole.
    assert_eq!(missing(&url, &a, &photo).await, Some(0));
    let id = a.store.create(complaint("3273014108900007")).unwrap();
    a.store
        .attach(
            &id,
            AttachmentRole::Photo,
            "f.jpg",
            "image/jpeg",
            &photo[..],
        )
        .unwrap();
    a.store.submit(&id).unwrap();
    let s = a.sync().await.unwrap();
    assert_eq!(
        (s.attachments_uploaded, s.attachment_bytes_up),
        (1, photo.len() as u64)
    );
    let (status, got) = agency
        .raw_get(
            &format!("/v1/agency/requests/{id}/attachments/{name}"),
            None,
        )
        .await;
    assert_eq!((status, got == photo), (200, true));
    // B's claim is its own still: it goes on from where it stands, and
    // cannot grow past its declared size.
    let r = signed(
        &url,
        &b,
        "PATCH",
        &format!("{BLOB_PATH}{name}"),
        &[0u8; 10],
        &[(UPLOAD_OFFSET, "0".into()), (UPLOAD_LENGTH, "999".into())],
    )
    .await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()[UPLOAD_OFFSET], "10");
    // Another length from offset 0 starts B's own upload again; the same
    // length elsewhere is refused clearly.
    let r = signed(
        &url,
        &b,
        "PATCH",
        &format!("{BLOB_PATH}{name}"),
        &[0u8; 10],
        &[(UPLOAD_OFFSET, "10".into()), (UPLOAD_LENGTH, "500".into())],
    )
    .await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("upload-length"),
        "{body}"
    );
    // Wrong bytes under the right name never replace the right ones.
    assert_eq!(patch(&url, &b, &photo, 0, photo.len() as u64).await, 204);
    let mut wrong = photo.clone();
    wrong[5] ^= 1;
    let r = signed(
        &url,
        &b,
        "PATCH",
        &format!("{BLOB_PATH}{name}"),
        &wrong,
        &[
            (UPLOAD_OFFSET, "0".into()),
            (UPLOAD_LENGTH, "100000".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), 409, "B holds it whole now");
    let (status, got) = agency
        .raw_get(
            &format!("/v1/agency/requests/{id}/attachments/{name}"),
            None,
        )
        .await;
    assert_eq!((status, got == photo), (200, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_uploads_expire_and_unreferenced_bytes_are_collected() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let url = server.url();
    let storage = server.state.storage();
    let policy = BlobRetention::default();
    let home = tempfile::tempdir().unwrap();
    let a = server
        .device(&home.path().join("a"), Role::Resident, "warga-a", &[], None)
        .await;

    // Half an upload, then silence.
    let half = bytes(40_000, 5);
    let r = signed(
        &url,
        &a,
        "PATCH",
        &format!("{BLOB_PATH}{}", sha(&half)),
        &half[..20_000],
        &[(UPLOAD_OFFSET, "0".into()), (UPLOAD_LENGTH, "40000".into())],
    )
    .await;
    assert_eq!(r.status(), 204);
    // Bytes uploaded whole that no request references.
    let stray = bytes(3_000, 6);
    assert_eq!(patch(&url, &a, &stray, 0, stray.len() as u64).await, 204);
    // Bytes a request references.
    let kept = bytes(3_000, 7);
    let id = a.store.create(complaint("3273014108900007")).unwrap();
    a.store
        .attach(&id, AttachmentRole::Photo, "f.jpg", "image/jpeg", &kept[..])
        .unwrap();
    a.sync().await.unwrap();
    // Bytes a request referenced, until the reference was removed.
    let dropped = bytes(3_000, 8);
    a.store
        .attach(
            &id,
            AttachmentRole::Photo,
            "g.jpg",
            "image/jpeg",
            &dropped[..],
        )
        .unwrap();
    a.sync().await.unwrap();
    assert!(storage.blob_state(&digest(&dropped)).unwrap().is_some());

    // Nothing goes before its time.
    let t0 = now();
    let swept = storage.sweep_blobs(t0 + DAY, &policy).unwrap();
    assert_eq!((swept.uploads, swept.blobs), (0, 0));
    assert_eq!(missing(&url, &a, &half).await, Some(20_000));

    // After 8 days the unfinished upload is gone: it starts from zero.
    let swept = storage.sweep_blobs(t0 + 8 * DAY, &policy).unwrap();
    assert_eq!((swept.uploads, swept.blobs), (1, 0));
    assert_eq!(missing(&url, &a, &half).await, Some(0));

    // The request stops referencing `dropped` (a tampered app here: the
    // store has no removal).
    let remove = tampered(&server, &a, &id, |r| {
        r.attachments.retain(|x| x.sha256 != sha(&dropped))
    });
    push_one(&server, &a, remove).await.unwrap();
    assert_eq!(server_attachments(&server, &id), vec![sha(&kept)]);
    let swept = storage.sweep_blobs(t0 + 29 * DAY, &policy).unwrap();
    assert_eq!((swept.uploads, swept.blobs), (0, 0), "within the grace");

    // After 31 days, bytes no request references are gone (and nobody
    // owns them any more); referenced ones stay.
    let swept = storage.sweep_blobs(t0 + 31 * DAY, &policy).unwrap();
    assert_eq!((swept.uploads, swept.blobs), (0, 2));
    assert!(storage.blob_state(&digest(&stray)).unwrap().is_none());
    assert!(storage.blob_state(&digest(&dropped)).unwrap().is_none());
    assert_eq!(missing(&url, &a, &stray).await, Some(0), "owned no more");
    assert!(storage.blob_state(&digest(&kept)).unwrap().is_some());
    assert_eq!(device_download(&url, &a, &id, &kept).await, (200, kept));
}

/// The agency erases the person with `nik` (one request about them).
async fn erase(agency: &Agency, nik: &str) {
    let r = agency
        .call(
            "POST",
            "/v1/agency/persons/erase",
            Some(serde_json::json!({ "nik": nik })),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["erased"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_keeps_bytes_another_request_still_references() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let storage = server.state.storage();
    let home = tempfile::tempdir().unwrap();
    const NIK: &str = "3273014108900007";
    const OTHER_NIK: &str = "3273016607990042";
    let resident = server
        .device(
            &home.path().join("r"),
            Role::Resident,
            "warga-1",
            &[],
            Some(NIK),
        )
        .await;
    let officer = server
        .device(
            &home.path().join("o"),
            Role::Officer,
            "petugas-1",
            &["32.73"],
            None,
        )
        .await;
    let agency = Agency::enroll(&server, "dinas-dpo", &[]).await;
    // The same photo in a request about the resident and in one the
    // officer files about someone else.
    let photo = bytes(10_000, 9);
    let own = resident.store.create(complaint(NIK)).unwrap();
    resident
        .store
        .attach(
            &own,
            AttachmentRole::Photo,
            "f.jpg",
            "image/jpeg",
            &photo[..],
        )
        .unwrap();
    resident.store.submit(&own).unwrap();
    resident.sync().await.unwrap();
    officer.sync().await.unwrap();
    let other = officer.store.create(complaint(OTHER_NIK)).unwrap();
    officer
        .store
        .attach(
            &other,
            AttachmentRole::Photo,
            "f.jpg",
            "image/jpeg",
            &photo[..],
        )
        .unwrap();
    officer.store.submit(&other).unwrap();
    let s = officer.sync().await.unwrap();
    assert_eq!(s.refused.len(), 0);

    // Erasing the resident keeps the bytes for the other request.
    erase(&agency, NIK).await;
    assert!(storage.blob_state(&digest(&photo)).unwrap().is_some());
    let path = |id: &RequestId| format!("/v1/agency/requests/{id}/attachments/{}", sha(&photo));
    assert_eq!(agency.raw_get(&path(&own), None).await.0, 404);
    let (status, got) = agency.raw_get(&path(&other), None).await;
    assert_eq!((status, got == photo), (200, true));
    // Erasing the other person too removes them.
    erase(&agency, OTHER_NIK).await;
    assert!(storage.blob_state(&digest(&photo)).unwrap().is_none());
    assert_eq!(agency.raw_get(&path(&other), None).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_stored_before_owners_existed_still_grant_their_bytes() {
    sambung_core::sync::install_crypto_provider();
    let db = sambung_e2e::TestDb::fresh().await;
    let home = tempfile::tempdir().unwrap();
    let photo = bytes(8_000, 10);
    let (resident, id) = {
        let server = TestServer::start_on(&db).await;
        let resident = server
            .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
            .await;
        let id = resident
            .store
            .create(complaint("3273014108900007"))
            .unwrap();
        resident
            .store
            .attach(
                &id,
                AttachmentRole::Photo,
                "f.jpg",
                "image/jpeg",
                &photo[..],
            )
            .unwrap();
        resident.store.submit(&id).unwrap();
        assert_eq!(resident.sync().await.unwrap().attachments_uploaded, 1);
        server.stop().await;
        (resident, id)
    };
    // As a database from before this migration holds it: the bytes and
    // the documents, no owners, no recorded references.
    db.execute_raw(
        "DELETE FROM blob_refs; DELETE FROM blob_owners; \
         UPDATE documents SET blob_refs_known = (1 = 0)",
    )
    .await
    .unwrap();

    // Opening the storage records the references of every stored
    // document: they grant the bytes as every reference did before.
    let server = TestServer::start_on(&db).await;
    let url = server.url();
    assert_eq!(
        device_download(&url, &resident, &id, &photo).await,
        (200, photo.clone())
    );
    let agency = Agency::enroll(&server, "dinas", &["32.73"]).await;
    let (status, got) = agency
        .raw_get(
            &format!("/v1/agency/requests/{id}/attachments/{}", sha(&photo)),
            None,
        )
        .await;
    assert_eq!((status, got == photo), (200, true));
    // Nobody owns them yet: someone who sees no request with them still
    // may not reference them.
    let other = server
        .device(&home.path().join("o"), Role::Resident, "warga-2", &[], None)
        .await;
    let draft = other.store.create(complaint("3273016607990042")).unwrap();
    other.sync_until_ok(3).await;
    let planted = tampered(&server, &other, &draft, |r| {
        r.attachments.push(reference(&photo))
    });
    assert!(push_one(&server, &other, planted).await.is_err());
    // An officer who sees the request may (it sees the bytes already).
    let officer = server
        .device(
            &home.path().join("p"),
            Role::Officer,
            "petugas-1",
            &["32.73"],
            None,
        )
        .await;
    officer.sync().await.unwrap();
    let own = officer.store.create(complaint("3273014108900007")).unwrap();
    officer
        .store
        .attach(
            &own,
            AttachmentRole::Photo,
            "f.jpg",
            "image/jpeg",
            &photo[..],
        )
        .unwrap();
    let s = officer.sync().await.unwrap();
    assert_eq!((s.refused.len(), s.attachment_bytes_up), (0, 0));
}

/// A claim by `dev` of a made-up hash declaring `length` bytes, ten sent;
/// the answer's status.
async fn claim(url: &str, dev: &Device, seed: u32, length: u64) -> u16 {
    let data = bytes(10, seed);
    let name = sha(&[dev.user.as_bytes(), &data].concat());
    signed(
        url,
        dev,
        "PATCH",
        &format!("{BLOB_PATH}{name}"),
        &data,
        &[
            (UPLOAD_OFFSET, "0".into()),
            (UPLOAD_LENGTH, length.to_string()),
        ],
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test]
async fn one_device_cannot_hold_more_unfinished_uploads_than_its_quota() {
    use sambung_core::protocol::blobs::{MAX_BLOB_BYTES, MAX_OPEN_UPLOAD_BYTES, MAX_OPEN_UPLOADS};
    let server = TestServer::start().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = server
        .device(da.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let b = server
        .device(db.path(), Role::Resident, "warga-2", &[], None)
        .await;
    let url = server.url();
    for i in 0..MAX_OPEN_UPLOADS as u32 {
        assert_eq!(claim(&url, &a, i, 1000).await, 204, "upload {i}");
    }
    assert_eq!(claim(&url, &a, 999, 1000).await, 429, "one upload too many");
    // Another device is not affected, up to its own byte quota.
    let fit = (MAX_OPEN_UPLOAD_BYTES / MAX_BLOB_BYTES) as u32;
    for i in 0..fit {
        assert_eq!(claim(&url, &b, i, MAX_BLOB_BYTES).await, 204, "claim {i}");
    }
    assert_eq!(
        claim(&url, &b, fit, MAX_BLOB_BYTES).await,
        429,
        "bytes over the quota"
    );
}
