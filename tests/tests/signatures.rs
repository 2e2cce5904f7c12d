//! Signatures name their server and all that matters (`docs/protocol.md`,
//! "Signatures"): a call signed for one deployment is refused by another;
//! the upload and download headers are signed with the call; enrollment
//! proves possession of the key and leaves the code unused when it does
//! not; enrolling never changes an existing account, `admin account` does
//! and the audit trail records it. Run on both backends
//! (`SAMBUNG_TEST_POSTGRES`).

use sambung_core::lifecycle::Role;
use sambung_core::model::{AttachmentRole, Kind};
use sambung_core::protocol::blobs::{BLOB_PATH, UPLOAD_LENGTH, UPLOAD_OFFSET};
use sambung_core::protocol::{
    Call, DeviceKey, ErrorBody, ErrorCode, SYNC_PATH, SignedHeader, device_id_of,
};
use sambung_core::templates;
use sambung_e2e::{Agency, TestServer, now, sync_body};
use sambung_server::accounts::Account;
use sambung_server::audit::AuditFilter;
use sambung_server::error::ServerError;

/// Posts an enrollment of `key` with `code` and `proof` (none: the field is
/// left out); the status and the JSON answer.
async fn enroll_raw(
    server: &TestServer,
    key: &DeviceKey,
    code: &str,
    proof: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut body = serde_json::json!({
        "code": code,
        "device": hex::encode(device_id_of(&key.public_key())),
        "public_key": hex::encode(key.public_key()),
    });
    if let Some(p) = proof {
        body["proof"] = serde_json::Value::String(p.to_owned());
    }
    let r = reqwest::Client::new()
        .post(format!("{}/v1/enroll", server.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// A request sent with the signature of `call` and the headers given.
async fn send(
    url: &str,
    method: reqwest::Method,
    key: &DeviceKey,
    call: &Call<'_>,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let device = device_id_of(&key.public_key());
    let signed = key.sign(device, call, now()).unwrap();
    let mut req = reqwest::Client::new()
        .request(method, format!("{url}{path}"))
        .body(body);
    for (k, v) in signed.pairs() {
        req = req.header(k, v);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn expect(resp: reqwest::Response, status: u16, code: ErrorCode) -> ErrorBody {
    assert_eq!(resp.status().as_u16(), status);
    let body: ErrorBody = resp.json().await.unwrap();
    assert_eq!(body.code, code, "{}", body.message);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_signed_for_one_server_is_refused_by_another() {
    sambung_core::sync::install_crypto_provider();
    let a = TestServer::start().await;
    let b = TestServer::start().await;
    assert_ne!(a.audience(), b.audience(), "two deployments, two audiences");
    // The same key enrolled with both.
    let key = DeviceKey::generate().unwrap();
    for server in [&a, &b] {
        let code = server.code(Role::Resident, "warga-1", &[], None);
        let (status, answer) =
            enroll_raw(server, &key, &code, Some(&key.prove_enrollment(&code))).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["audience"], server.audience().as_str());
    }
    let body = sync_body(vec![]);
    let aud_a = a.audience();
    let for_a = Call::new(&aud_a, "POST", SYNC_PATH, &body);
    // The very bytes signed for A, replayed against B: refused there.
    let device = device_id_of(&key.public_key());
    let signed = key.sign(device, &for_a, now()).unwrap();
    let post = |url: String| {
        let mut req = reqwest::Client::new()
            .post(format!("{url}{SYNC_PATH}"))
            .body(body.clone());
        for (k, v) in signed.pairs() {
            req = req.header(k, v);
        }
        async move { req.send().await.unwrap() }
    };
    expect(post(b.url()).await, 401, ErrorCode::BadSignature).await;
    // A takes them: the signature was good, for A.
    assert_eq!(post(a.url()).await.status().as_u16(), 200);
    // A back-office call too: an agency key signing for B's audience is
    // refused by A.
    let agency = Agency::enroll(&a, "dinas", &[]).await;
    assert_eq!(agency.audience, a.audience());
    let listed = agency.call("GET", "/v1/agency/requests", None, None).await;
    assert_eq!(listed.status, 200, "{}", listed.json);
    let mut wrong = agency;
    wrong.audience = b.audience();
    let refused = wrong.call("GET", "/v1/agency/requests", None, None).await;
    assert_eq!((refused.status, refused.code()), (401, "bad_signature"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_headers_altered_after_signing_are_refused() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let key = DeviceKey::generate().unwrap();
    let code = server.code(Role::Resident, "warga-1", &[], None);
    assert_eq!(
        enroll_raw(&server, &key, &code, Some(&key.prove_enrollment(&code)))
            .await
            .0,
        200
    );
    let aud = server.audience();
    let data = b"the bytes of an attachment".to_vec();
    let sha = hex::encode(sambung_core::crypto::sha256(&data));
    let path = format!("{BLOB_PATH}{sha}");
    let len = data.len().to_string();
    let signed_call = Call::new(&aud, "PATCH", &path, &data)
        .header(SignedHeader::UploadOffset, "0")
        .header(SignedHeader::UploadLength, &len);
    let url = server.url();
    let patch = reqwest::Method::PATCH;
    // The offset altered, the length altered, a header left out: refused,
    // and nothing stored.
    for headers in [
        vec![(UPLOAD_OFFSET, "5"), (UPLOAD_LENGTH, len.as_str())],
        vec![(UPLOAD_OFFSET, "0"), (UPLOAD_LENGTH, "999")],
        vec![(UPLOAD_LENGTH, len.as_str())],
    ] {
        let r = send(
            &url,
            patch.clone(),
            &key,
            &signed_call,
            &path,
            &headers,
            data.clone(),
        )
        .await;
        expect(r, 401, ErrorCode::BadSignature).await;
    }
    let digest: [u8; 32] = sambung_core::crypto::sha256(&data);
    assert!(
        server
            .state
            .storage()
            .blob_state(&digest)
            .unwrap()
            .is_none()
    );
    // As signed: taken.
    let headers = [(UPLOAD_OFFSET, "0"), (UPLOAD_LENGTH, len.as_str())];
    let r = send(
        &url,
        patch,
        &key,
        &signed_call,
        &path,
        &headers,
        data.clone(),
    )
    .await;
    assert_eq!(r.status().as_u16(), 204);
    assert!(
        server
            .state
            .storage()
            .blob_state(&digest)
            .unwrap()
            .unwrap()
            .complete
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_whose_range_was_altered_is_refused() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(home.path(), Role::Resident, "warga-1", &[], None)
        .await;
    assert_eq!(
        resident.store.enrollment().unwrap().unwrap().audience,
        server.audience(),
        "the enrollment record keeps the audience"
    );
    let mut content = templates::example(Kind::Complaint);
    content.region = sambung_core::identifiers::RegionCode::from("32.73.01.1001");
    let id = resident.store.create(content).unwrap();
    let photo: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let a = resident
        .store
        .attach(
            &id,
            AttachmentRole::Photo,
            "foto.jpg",
            "image/jpeg",
            &photo[..],
        )
        .unwrap();
    resident.store.submit(&id).unwrap();
    let s = resident.sync().await.unwrap();
    assert_eq!(s.attachments_uploaded, 1);

    let key = resident.store.device_key().unwrap();
    let aud = server.audience();
    let path = format!("/v1/requests/{id}/attachments/{}", a.sha256);
    let signed = Call::new(&aud, "GET", &path, b"").header(SignedHeader::Range, "bytes=0-9");
    let url = server.url();
    let get = reqwest::Method::GET;
    // Another range than signed, or none: refused.
    for headers in [vec![("range", "bytes=0-4999")], vec![]] {
        let r = send(&url, get.clone(), &key, &signed, &path, &headers, vec![]).await;
        expect(r, 401, ErrorCode::BadSignature).await;
    }
    // As signed: those ten bytes.
    let r = send(
        &url,
        get,
        &key,
        &signed,
        &path,
        &[("range", "bytes=0-9")],
        vec![],
    )
    .await;
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &photo[..10]);
    // The agency's download is held to its range the same way.
    let agency = Agency::enroll(&server, "dinas", &[]).await;
    let agency_path = format!("/v1/agency/requests/{id}/attachments/{}", a.sha256);
    let (status, part) = agency.raw_get(&agency_path, Some("bytes=10-19")).await;
    assert_eq!((status, part.as_slice()), (206, &photo[10..20]));
    let signed_range = agency.sign("GET", &agency_path, b"");
    let sent = agency
        .send("GET", &agency_path, vec![], Some(signed_range), None)
        .await;
    assert_eq!(sent.status, 200, "no range signed, none sent: whole");
    let mut req = reqwest::Client::new().get(format!("{}{agency_path}", server.url()));
    for (k, v) in agency.sign("GET", &agency_path, b"").pairs() {
        req = req.header(k, v);
    }
    let r = req.header("range", "bytes=0-9").send().await.unwrap();
    expect(r, 401, ErrorCode::BadSignature).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_proves_the_key_and_a_bad_proof_leaves_the_code_unused() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let key = DeviceKey::generate().unwrap();
    let other = DeviceKey::generate().unwrap();
    let code = server.code(Role::Resident, "warga-1", &[], None);
    // Signed by another key: refused, 401.
    let (status, answer) =
        enroll_raw(&server, &key, &code, Some(&other.prove_enrollment(&code))).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("bad_signature")),
        "{answer}"
    );
    // Signed by the key, but over another code.
    let (status, _) = enroll_raw(
        &server,
        &key,
        &code,
        Some(&key.prove_enrollment("AAAA-BBBB-CCCC")),
    )
    .await;
    assert_eq!(status, 401);
    // Missing, or not a signature: 400 with a clear message.
    let (status, answer) = enroll_raw(&server, &key, &code, None).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("bad_request"))
    );
    assert!(
        answer["message"].as_str().unwrap().contains("proof"),
        "{answer}"
    );
    for bad in ["", "zz", &"ab".repeat(63), &"ab".repeat(65)] {
        let (status, answer) = enroll_raw(&server, &key, &code, Some(bad)).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("proof must be 128 hex digits"),
            "{answer}"
        );
    }
    assert!(
        server
            .state
            .storage()
            .device(device_id_of(&key.public_key()))
            .unwrap()
            .is_none()
    );
    // The code was never consumed: the real proof still enrolls with it.
    let (status, answer) =
        enroll_raw(&server, &key, &code, Some(&key.prove_enrollment(&code))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["audience"], server.audience().as_str());
    // Once only.
    let (status, _) = enroll_raw(&server, &key, &code, Some(&key.prove_enrollment(&code))).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolling_never_changes_an_account_and_the_explicit_change_is_audited() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let storage = server.state.storage();
    let officer = |role: Role, regions: &[&str]| Account {
        id: "petugas-1".into(),
        role,
        regions: regions.iter().map(|r| r.to_string()).collect(),
        nik_hash: None,
    };
    let first =
        sambung_server::enroll::create(storage, &officer(Role::Officer, &["32.73"]), now(), 3600)
            .unwrap();
    let key = DeviceKey::generate().unwrap();
    assert_eq!(
        enroll_raw(&server, &key, &first, Some(&key.prove_enrollment(&first)))
            .await
            .0,
        200
    );
    let held = || {
        storage
            .device(device_id_of(&key.public_key()))
            .unwrap()
            .unwrap()
            .account
    };
    // Another role, other regions: refused, naming the explicit command;
    // the account stays as it was and no code is made.
    for wanted in [
        officer(Role::Agency, &["32.73"]),
        officer(Role::Officer, &["32.74"]),
        officer(Role::Officer, &["32.73", "32.74"]),
    ] {
        let e = sambung_server::enroll::create(storage, &wanted, now(), 3600).unwrap_err();
        assert!(matches!(e, ServerError::AccountConflict { .. }), "{e}");
        let message = e.to_string();
        assert!(
            message.contains("sambung admin account petugas-1 --role"),
            "{message}"
        );
        assert_eq!(held().role, Role::Officer);
        assert_eq!(held().regions, vec!["32.73".to_owned()]);
    }
    // The same role and regions: another code for another phone.
    let second =
        sambung_server::enroll::create(storage, &officer(Role::Officer, &["32.73"]), now(), 3600)
            .unwrap();
    assert_ne!(first, second);
    // The explicit change: done, and recorded.
    let before = sambung_server::enroll::change_account(
        storage,
        "petugas-1",
        Role::Agency,
        &["32.73".into(), "32.74".into()],
        sambung_core::Timestamp::now().as_millis(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(before.role, Role::Officer);
    assert_eq!(held().role, Role::Agency);
    assert_eq!(held().regions, vec!["32.73".to_owned(), "32.74".to_owned()]);
    let entries = storage
        .audit_entries(
            &AuditFilter {
                account: Some("petugas-1".into()),
                ..Default::default()
            },
            0,
            100,
        )
        .unwrap();
    let change = entries
        .iter()
        .find(|e| e.record.action == "account")
        .expect("the change is in the audit trail");
    assert_eq!(change.record.role, "agency");
    assert!(
        change.record.endpoint.contains("officer -> agency")
            && change.record.endpoint.contains("[32.73] -> [32.73,32.74]"),
        "{}",
        change.record.endpoint
    );
    assert!(matches!(
        sambung_server::audit::verify(|after| storage.audit_entries(
            &AuditFilter::default(),
            after,
            1000
        ))
        .unwrap(),
        sambung_server::audit::ChainCheck::Intact { .. }
    ));
    // No such account: nothing changed, nothing recorded.
    let count = storage
        .audit_entries(&AuditFilter::default(), 0, 1000)
        .unwrap()
        .len();
    assert!(
        sambung_server::enroll::change_account(storage, "nobody", Role::Resident, &[], 1)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        storage
            .audit_entries(&AuditFilter::default(), 0, 1000)
            .unwrap()
            .len(),
        count
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_audience_is_refused_and_an_old_record_must_enroll_again() {
    use sambung_core::crypto::DataKey;
    use sambung_core::store::{Identity, Secret, Store};
    sambung_core::sync::install_crypto_provider();
    // A broken (or hostile) server whose enrollment answer names no valid
    // audience: a typed error, and the device records nothing.
    for audience in [
        "sambung.example.go.id",
        "",
        &"AB".repeat(16),
        &"ab".repeat(17),
    ] {
        let answer = serde_json::json!({
            "account": "warga-1",
            "role": "resident",
            "regions": [],
            "audience": audience,
        });
        let app = axum::Router::new().route(
            "/v1/enroll",
            axum::routing::post(move || async move { axum::Json(answer) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let home = tempfile::tempdir().unwrap();
        let mut store = Store::init(
            home.path(),
            &Secret::Key(DataKey::generate().unwrap()),
            Identity {
                user: "local".into(),
                role: Role::Resident,
            },
        )
        .unwrap();
        let client = sambung_core::sync::Client::new(&url, &Default::default()).unwrap();
        match client.enroll(&mut store, "AAAA-BBBB-CCCC").await {
            Err(sambung_core::Error::Server { message, .. }) => {
                assert!(message.contains("audience"), "{message}")
            }
            other => panic!("{audience}: {other:?}"),
        }
        assert!(store.enrollment().unwrap().is_none(), "{audience}");
    }

    // An enrollment record from before audiences signs nothing: the device
    // hears "not enrolled" (enroll again), and nothing reaches the server.
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let mut dev = server
        .device(home.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let mut old = dev.store.enrollment().unwrap().unwrap();
    old.audience = String::new();
    dev.store.set_enrollment(&old).unwrap();
    let before = server.log_len();
    let mut content = templates::example(Kind::Complaint);
    content.region = sambung_core::identifiers::RegionCode::from("32.73.01.1001");
    dev.store.create(content).unwrap();
    assert!(matches!(
        dev.sync().await,
        Err(sambung_core::Error::NotEnrolled)
    ));
    assert_eq!(server.log_len(), before);
}
