//! The audit trail: every sync and back-office access is recorded with who
//! (account, role, key), what, which request and which endpoint; it is
//! queryable by request, account and key; the database refuses to change
//! it, and a change made behind the server's back is detected by the hash
//! chain. Breach support lists what a lost phone could read and did.

use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::templates;
use sambung_e2e::{Agency, TestDb, TestServer};
use serde_json::{Value, json};

fn actions(page: &Value) -> Vec<(String, String, String)> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["account"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["endpoint"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_access_is_recorded_chained_and_tampering_shows() {
    let db = TestDb::fresh().await;
    let server = TestServer::start_on(&db).await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
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
    let dpo = Agency::enroll(&server, "dinas-dpo", &[]).await;
    let desk = Agency::enroll(&server, "dinas-loket", &["32.73"]).await;

    let mut c = templates::example(Kind::Complaint);
    c.region = RegionCode::from("32.73.01.1001");
    let id = resident.store.create(c).unwrap();
    resident.store.submit(&id).unwrap();
    resident.sync().await.unwrap();
    officer.sync().await.unwrap();
    let path = format!("/v1/agency/requests/{id}");
    assert_eq!(desk.call("GET", &path, None, None).await.status, 200);
    let a = desk
        .call(
            "POST",
            &format!("{path}/status"),
            Some(json!({"to": "received"})),
            None,
        )
        .await;
    assert_eq!(a.status, 200);

    // By request: the resident's write, the officer's read, the desk's
    // read and decision, in order, with endpoints.
    let page = dpo
        .call("GET", &format!("/v1/agency/audit?request={id}"), None, None)
        .await;
    assert_eq!(page.status, 200, "{:?}", page.json);
    let got = actions(&page.json);
    let expected = [
        ("warga-1", "write", "POST /v1/sync"),
        ("petugas-1", "read", "POST /v1/sync"),
        ("dinas-loket", "read", "GET /v1/agency/requests/{id}"),
        (
            "dinas-loket",
            "status",
            "POST /v1/agency/requests/{id}/status",
        ),
    ];
    for (who, what, how) in expected {
        assert!(
            got.contains(&(who.into(), what.into(), how.into())),
            "{who} {what} {how} missing from {got:?}"
        );
    }
    let roles: Vec<&str> = page.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["role"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"officer") && roles.contains(&"resident") && roles.contains(&"agency"));
    // By account, and by key.
    let page = dpo
        .call("GET", "/v1/agency/audit?account=petugas-1", None, None)
        .await;
    assert!(
        actions(&page.json)
            .iter()
            .all(|(who, _, _)| who == "petugas-1")
    );
    assert!(!actions(&page.json).is_empty());
    // Paging by position.
    let first = dpo
        .call("GET", "/v1/agency/audit?limit=2", None, None)
        .await;
    assert_eq!(first.json["entries"].as_array().unwrap().len(), 2);
    let after = first.json["next_after"].as_u64().unwrap();
    let next = dpo
        .call(
            "GET",
            &format!("/v1/agency/audit?limit=2&after={after}"),
            None,
            None,
        )
        .await;
    assert_eq!(next.json["entries"][0]["seq"].as_u64().unwrap(), after + 1);
    assert_eq!(
        next.json["entries"][0]["prev"],
        first.json["entries"][1]["hash"]
    );

    // Only a whole-agency account reads the trail; bad filters are 400.
    let a = desk.call("GET", "/v1/agency/audit", None, None).await;
    assert_eq!((a.status, a.code()), (403, "forbidden"));
    for q in ["request=x", "device=zz", "limit=0", "after=-1", "who=me"] {
        let a = dpo
            .call("GET", &format!("/v1/agency/audit?{q}"), None, None)
            .await;
        assert_eq!((a.status, a.code()), (400, "bad_filter"), "{q}");
    }

    // Breach support: the officer's phone is lost.
    let devices = server
        .state
        .storage()
        .devices(Some("petugas-1"), None)
        .unwrap();
    let phone = &devices[0].id;
    let e = dpo
        .call(
            "GET",
            &format!("/v1/agency/exposure?device={phone}"),
            None,
            None,
        )
        .await;
    assert_eq!(e.status, 200, "{:?}", e.json);
    assert_eq!(e.json["account"], "petugas-1");
    assert_eq!(e.json["could_read"], json!([id.to_string()]));
    assert_eq!(e.json["did_read"], json!([id.to_string()]));
    for q in ["", "account=a&device=00", "device=00", "account=nobody"] {
        let a = dpo
            .call("GET", &format!("/v1/agency/exposure?{q}"), None, None)
            .await;
        assert!(matches!(a.status, 400 | 404), "{q}: {:?}", a.json);
    }

    let v = dpo.call("GET", "/v1/agency/audit/verify", None, None).await;
    assert_eq!(v.json["intact"], true, "{:?}", v.json);
    let entries = v.json["entries"].as_u64().unwrap();
    assert!(entries >= 8);

    // The database refuses changes to the trail...
    server.stop().await;
    let refused = db
        .execute_raw("UPDATE audit SET account = 'someone' WHERE seq = 3")
        .await;
    assert!(refused.unwrap_err().contains("append only"));
    let refused = db.execute_raw("DELETE FROM audit WHERE seq = 3").await;
    assert!(refused.unwrap_err().contains("append only"));
    // ...and one made behind its back, triggers removed, is detected.
    let disable = match db.backend() {
        "sqlite" => "DROP TRIGGER audit_no_update;",
        _ => "ALTER TABLE audit DISABLE TRIGGER audit_append_only;",
    };
    db.execute_raw(&format!(
        "{disable} UPDATE audit SET account = 'someone' WHERE seq = 3"
    ))
    .await
    .unwrap();
    let server = TestServer::start_on(&db).await;
    let dpo2 = Agency::enroll(&server, "dinas-dpo-2", &[]).await;
    let v = dpo2
        .call("GET", "/v1/agency/audit/verify", None, None)
        .await;
    assert_eq!(v.json["intact"], false);
    assert_eq!(v.json["broken_at"], 3);
    server.stop().await;
}
