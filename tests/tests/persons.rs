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
