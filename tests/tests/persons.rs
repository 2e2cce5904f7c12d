//! UU PDP access requests: everything the server holds about a person, by
//! NIK, as one JSON document — and the export is itself audited.

use sambung_core::identifiers::{Nik, RegionCode};
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::templates;
use sambung_e2e::{Agency, TestServer};
use serde_json::json;

const NIK: &str = "3273014108900007";
const OTHER_NIK: &str = "3273016607990042";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_data_is_exported_whole_and_only_theirs() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
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
    let content = |nik: &str| {
        let mut c = templates::example(Kind::Complaint);
        c.region = RegionCode::from("32.73.01.1001");
        if let Some(a) = &mut c.applicant {
            a.nik = Nik::from(nik);
            a.birth_date = None;
            a.sex = None;
        }
        c
    };
    // Their own, one filed for them by an officer, one for someone else.
    let own = resident.store.create(content(NIK)).unwrap();
    resident.store.submit(&own).unwrap();
    resident
        .store
        .add_note(&own, "catatan saya", false)
        .unwrap();
    let for_them = officer.store.create(content(NIK)).unwrap();
    officer.store.submit(&for_them).unwrap();
    let someone_else = officer.store.create(content(OTHER_NIK)).unwrap();
    officer.store.submit(&someone_else).unwrap();
    resident.sync().await.unwrap();
    officer.sync().await.unwrap();

    let dpo = Agency::enroll(&server, "dinas-dpo", &[]).await;
    let a = dpo
        .call(
            "POST",
            "/v1/agency/persons/export",
            Some(json!({"nik": NIK})),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    assert_eq!(a.json["accounts"], json!(["warga-1"]));
    let mut ids: Vec<&str> = a.json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![own.to_string(), for_them.to_string()];
    expected.sort();
    assert_eq!(ids, expected);
    let mine = a.json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == own.to_string().as_str())
        .unwrap();
    assert_eq!(mine["notes"][0]["text"], "catatan saya");
    assert_eq!(mine["content"]["applicant"]["nik"], NIK);
    let processing = a.json["processing"].as_array().unwrap();
    assert!(
        processing
            .iter()
            .any(|e| e["account"] == "petugas-1" && e["action"] == "write")
    );
    assert!(
        !a.json.to_string().contains(OTHER_NIK),
        "nothing of anyone else"
    );

    // The export is recorded for each request it disclosed.
    let trail = dpo
        .call(
            "GET",
            &format!("/v1/agency/audit?request={own}"),
            None,
            None,
        )
        .await;
    assert!(
        trail.json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "export" && e["account"] == "dinas-dpo")
    );

    // Nobody known: an empty export. Bad input and limited accounts: 4xx.
    let a = dpo
        .call(
            "POST",
            "/v1/agency/persons/export",
            Some(json!({"nik": "3201010101010001"})),
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["requests"], json!([]));
    for body in [
        json!({"nik": "123"}),
        json!({"nik": 3273014108900007u64}),
        json!({}),
    ] {
        let a = dpo
            .call(
                "POST",
                "/v1/agency/persons/export",
                Some(body.clone()),
                None,
            )
            .await;
        assert_eq!((a.status, a.code()), (400, "bad_request"), "{body}");
    }
    let desk = Agency::enroll(&server, "dinas-loket", &["32.73"]).await;
    let a = desk
        .call(
            "POST",
            "/v1/agency/persons/export",
            Some(json!({"nik": NIK})),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (403, "forbidden"));
}

/// Automerge bytes saved without compression, as text, for marker checks.
fn uncompressed(data: &[u8]) -> String {
    let mut doc = automerge::AutoCommit::load(data).unwrap();
    String::from_utf8_lossy(&doc.save_nocompress()).into_owned()
}

/// The server's stored document of a request, uncompressed.
fn server_text(server: &TestServer, id: &sambung_core::model::RequestId) -> String {
    let stored = server
        .state
        .storage()
        .document(id.to_bytes().unwrap())
        .unwrap()
        .unwrap();
    uncompressed(&stored.data)
}

/// The request as JSON on a device, for marker checks.
fn as_json(d: &sambung_e2e::Device, id: &sambung_core::model::RequestId) -> String {
    serde_json::to_string(&d.store.get(id).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_reaches_every_device_and_keeps_the_record() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
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
    let content = |nik: &str| {
        let mut c = templates::example(Kind::Complaint);
        c.region = RegionCode::from("32.73.01.1001");
        if let Some(a) = &mut c.applicant {
            a.nik = Nik::from(nik);
            a.birth_date = None;
            a.sex = None;
        }
        c
    };
    let own = resident.store.create(content(NIK)).unwrap();
    let photo = resident
        .store
        .attach(
            &own,
            sambung_core::model::AttachmentRole::Photo,
            "foto-rumah.jpg",
            "image/jpeg",
            &b"FOTO-RUMAH-RAHASIA"[..],
        )
        .unwrap();
    resident.store.submit(&own).unwrap();
    resident
        .store
        .add_note(&own, "rumah saya di gang 3", false)
        .unwrap();
    // The resident also files for a neighbour: the neighbour's record.
    let neighbour = resident.store.create(content(OTHER_NIK)).unwrap();
    resident.store.submit(&neighbour).unwrap();
    let for_them = officer.store.create(content(NIK)).unwrap();
    officer.store.submit(&for_them).unwrap();
    let someone_else = officer.store.create(content(OTHER_NIK)).unwrap();
    officer.store.submit(&someone_else).unwrap();
    resident.sync().await.unwrap();
    officer.sync().await.unwrap();
    resident.sync().await.unwrap();
    let agency = Agency::enroll(&server, "dinas-dpo", &[]).await;
    let path = format!("/v1/agency/requests/{own}");
    let a = agency
        .call(
            "POST",
            &format!("{path}/status"),
            Some(json!({"to": "received"})),
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    officer.sync().await.unwrap();
    resident.sync().await.unwrap();
    // The resident writes one more note offline, not yet synced.
    resident
        .store
        .add_note(&own, "nomor HP saya 0812", false)
        .unwrap();

    let a = agency
        .call(
            "POST",
            "/v1/agency/persons/erase",
            Some(json!({"nik": NIK})),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    let mut erased: Vec<&str> = a.json["erased"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    erased.sort();
    let mut expected = vec![own.to_string(), for_them.to_string()];
    expected.sort();
    assert_eq!(erased, expected);
    assert_eq!(a.json["filed_for_others"], json!([neighbour.to_string()]));
    assert!(a.json["kept"].as_str().unwrap().contains("status history"));

    // Every device's copy is replaced at its next sync; the resident's
    // unsynced note is refused and goes with the old copy.
    resident.sync_until_ok(3).await;
    officer.sync_until_ok(3).await;
    let newcomer = server
        .device(
            &home.path().join("n"),
            Role::Officer,
            "petugas-2",
            &["32.73"],
            None,
        )
        .await;
    newcomer.sync_until_ok(3).await;
    let markers = [
        NIK,
        "Siti Aminah",
        "+62 812",
        "gang 3",
        // The unsynced note's words (its digits alone, "0812", could match
        // a timestamp or an id by chance: the flake of earlier runs).
        "nomor HP saya",
        "Jalan berlubang",
    ];
    for (who, d) in [
        ("resident", &resident),
        ("officer", &officer),
        ("newcomer", &newcomer),
    ] {
        for id in [&own, &for_them] {
            let r = d.store.get(id).unwrap();
            assert!(r.erased_at.is_some(), "{who}: {id} erased");
            assert!(r.content.applicant.is_none());
            let text = as_json(d, id);
            for m in markers {
                assert!(!text.contains(m), "{who}: {m} survived in {id}");
            }
            // The non-personal record stays.
            assert_eq!(r.kind(), Kind::Complaint);
            assert_eq!(r.content.region, RegionCode::from("32.73.01.1001"));
        }
        assert_eq!(d.store.pending_count().unwrap(), 0, "{who}");
    }
    let r = resident.store.get(&own).unwrap();
    assert_eq!(
        r.status(),
        sambung_core::lifecycle::Status::Received,
        "decisions kept"
    );
    assert_eq!(r.history.len(), 2);
    // Someone else's requests are untouched, also the one the person filed.
    assert!(as_json(&officer, &someone_else).contains(OTHER_NIK));
    assert!(as_json(&resident, &neighbour).contains(OTHER_NIK));
    // The photo is gone from the server and from the phone.
    let digest: [u8; 32] = hex::decode(&photo.sha256).unwrap().try_into().unwrap();
    assert!(
        server
            .state
            .storage()
            .blob_state(&digest)
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        resident.store.attachment_info(&photo.sha256),
        Err(sambung_core::Error::NotFound { .. })
    ));

    // The server holds no trace in the document or the log it serves
    // (read uncompressed: Automerge deflates long columns).
    for id in [&own, &for_them] {
        let text = server_text(&server, id);
        for m in markers {
            assert!(!text.contains(m), "{m} in the stored document");
        }
    }
    for e in server.state.storage().log_since(0, 100_000).unwrap() {
        if e.doc == own.to_bytes().unwrap() || e.doc == for_them.to_bytes().unwrap() {
            assert!(e.purged || e.replace);
            if e.purged {
                assert!(e.data.is_empty());
            } else {
                let text = uncompressed(&e.data);
                for m in markers {
                    assert!(!text.contains(m), "{m} in the log");
                }
            }
        }
    }

    // Erased is final: no more edits, anywhere; erasing again is a no-op.
    assert!(resident.store.add_note(&own, "lagi", false).is_err());
    let a = agency
        .call(
            "POST",
            &format!("{path}/notes"),
            Some(json!({"text": "x"})),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (409, "forbidden_transition"));
    let a = agency
        .call(
            "POST",
            "/v1/agency/persons/erase",
            Some(json!({"nik": NIK})),
            None,
        )
        .await;
    assert_eq!(a.json["erased"], json!([]));
    assert_eq!(a.json["already_erased"].as_array().unwrap().len(), 2);
    let trail = agency
        .call(
            "GET",
            &format!("/v1/agency/audit?request={own}"),
            None,
            None,
        )
        .await;
    assert!(
        trail.json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "erase")
    );
    for body in [json!({"nik": "12"}), json!({"name": "x"})] {
        let a = agency
            .call("POST", "/v1/agency/persons/erase", Some(body), None)
            .await;
        assert_eq!((a.status, a.code()), (400, "bad_request"));
    }
}
