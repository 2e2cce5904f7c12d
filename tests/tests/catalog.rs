//! The service catalog end to end (issue 15), on the backend under test:
//! an agency publishes a service as data while a resident's phone is
//! offline; the phone receives it in its next sync's one round trip, files
//! it offline (one answer refused by the definition, then fixed), and the
//! office decides it. A tampered app that bypasses its store's checks
//! meets the same definition on the server: answers the definition
//! refuses, a service the server does not know, a definition other than
//! the one published, a retired version, missing documents. Publishing
//! refuses bad definitions with every problem named.

use sambung_core::catalog::{EXAMPLES, Side, definition_hash};
use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::{AttachmentRole, Details, Kind, Request, RequestContent, ServiceRequest};
use sambung_core::protocol::{DocPush, RefusalCode};
use sambung_core::{Timestamp, templates};
use sambung_e2e::{Agency, Device, RawDevice, TestServer};
use serde_json::{Map, Value, json};

const SKTM: &str = "surat_keterangan_tidak_mampu";
const VILLAGE: &str = "61.71.03.1004";

fn sktm_json() -> &'static str {
    EXAMPLES
        .iter()
        .find(|(n, _)| n.starts_with(SKTM))
        .map(|(_, j)| *j)
        .unwrap()
}

/// The SKTM's first test vector's answers.
fn answers() -> Map<String, Value> {
    let d = sambung_core::catalog::parse(sktm_json()).unwrap();
    d.example().unwrap().as_object().unwrap().clone()
}

/// A request's content for the SKTM with `answers`, recording `hash`.
fn content(answers: &Map<String, Value>, hash: &str) -> RequestContent {
    let d = sambung_core::catalog::parse(sktm_json()).unwrap();
    let mut c = templates::example(Kind::Service);
    c.region = RegionCode::from(VILLAGE);
    c.details = Details::Service(ServiceRequest::new(&d, hash, answers));
    c
}

fn attach(dev: &Device, id: &sambung_core::model::RequestId, role: AttachmentRole, text: &str) {
    dev.store
        .attach(id, role, "scan.pdf", "application/pdf", text.as_bytes())
        .unwrap();
}

/// A service request pushed as a tampered app writes it.
fn tampered(dev: &Device, content: RequestContent, edit: impl FnOnce(&mut Request)) -> DocPush {
    sambung_e2e::tampered_submission(dev, content, "warga-1", Role::Resident, edit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_publishes_a_service_and_an_offline_phone_files_it() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let phone = server
        .device(home.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let agency = Agency::enroll(&server, "desa-sungai-bangkong", &["61.71"]).await;
    // The catalog is the deployment's: published by an account without
    // region limits.
    let publisher = Agency::enroll(&server, "diskominfo", &[]).await;
    // The phone syncs once, then goes offline; it knows no SKTM.
    phone.sync_until_ok(3).await;
    assert!(phone.store.catalog().unwrap().latest(SKTM).is_none());
    let hash = definition_hash(sktm_json());
    let unknown = phone.store.create(content(&answers(), &hash));
    assert!(
        matches!(&unknown, Err(sambung_core::Error::Form(i)) if i[0].code == "unknown_service"),
        "{unknown:?}"
    );

    // An account of one region may not change every device's forms.
    let regional = agency
        .call_raw("POST", "/v1/agency/catalog", sktm_json().as_bytes())
        .await;
    assert_eq!(regional.status, 403, "{}", regional.json);
    // The agency publishes it, byte for byte.
    let published = publisher
        .call_raw("POST", "/v1/agency/catalog", sktm_json().as_bytes())
        .await;
    assert_eq!(published.status, 201, "{}", published.json);
    assert_eq!(published.json["id"], SKTM);
    assert_eq!(published.json["version"], 1);
    assert_eq!(published.json["hash"], hash.as_str());
    let listed = agency
        .call(
            "GET",
            "/v1/agency/services?region=61.71.03.1004",
            None,
            None,
        )
        .await;
    assert!(
        listed.json["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == SKTM),
        "{}",
        listed.json
    );
    let trail = publisher.call("GET", "/v1/agency/audit", None, None).await;
    assert!(
        trail
            .json
            .to_string()
            .contains("publish surat_keterangan_tidak_mampu@1"),
        "{trail:?}"
    );

    // Back in coverage: the next sync brings it, in the same round trip.
    let summary = phone.sync_until_ok(3).await;
    assert_eq!(summary.services, 1, "{summary:?}");
    assert_eq!(summary.round_trips, 1, "{summary:?}");
    let catalog = phone.store.catalog().unwrap();
    let form = catalog.latest(SKTM).unwrap();
    assert_eq!(catalog.published(SKTM, 1).unwrap().hash, hash);
    // A second sync brings nothing again.
    assert_eq!(phone.sync_until_ok(3).await.services, 0);

    // Offline again: one answer refused by the definition, then fixed.
    let mut wrong = answers();
    wrong.insert("kk_number".into(), json!("6171031204"));
    let refused = phone.store.create(content(&wrong, &hash)).unwrap_err();
    match &refused {
        sambung_core::Error::Form(issues) => {
            let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
            assert_eq!(fields, ["details.answers.kk_number"], "{issues:?}");
            assert!(!issues[0].message.id.is_empty() && !issues[0].message.en.is_empty());
        }
        other => panic!("expected the form's refusal, got {other:?}"),
    }
    assert!(
        !refused.to_string().contains("6171031204"),
        "no values in errors"
    );
    // The live form state says the same, before anything is stored.
    let state = form.evaluate(
        &Value::Object(wrong),
        Timestamp::now().today_in_indonesia(),
        Side::Device,
    );
    assert_eq!(state.error_keys(), ["kk_number: kk_format"]);
    let id = phone.store.create(content(&answers(), &hash)).unwrap();
    // Submitting needs its documents.
    assert!(matches!(
        phone.store.submit(&id),
        Err(sambung_core::Error::Form(i)) if i.iter().any(|i| i.field == "attachments.ktp_copy")
    ));
    attach(&phone, &id, AttachmentRole::KtpCopy, "ktp");
    attach(&phone, &id, AttachmentRole::KkCopy, "kk");
    // The RT letter is the service's own document, not an engine role.
    assert!(matches!(
        phone.store.submit(&id),
        Err(sambung_core::Error::Form(i)) if i.len() == 1 && i[0].field == "attachments.rt_letter"
    ));
    assert!(
        phone
            .store
            .attach_for_service(&id, "RT letter", "rt.pdf", "application/pdf", &b"rt"[..])
            .is_err()
    );
    let rt = phone
        .store
        .attach_for_service(&id, "rt_letter", "rt.pdf", "application/pdf", &b"rt"[..])
        .unwrap();
    assert_eq!(
        (rt.role, rt.purpose.as_deref()),
        (AttachmentRole::SupportingDocument, Some("rt_letter"))
    );
    assert_eq!(phone.store.submit(&id).unwrap(), Status::Submitted);
    let summary = phone.sync_until_ok(3).await;
    assert!(summary.refused.is_empty(), "{summary:?}");

    // The office decides it; the phone sees the decision.
    for to in ["received", "in_review", "approved"] {
        agency.move_to(&id, to).await;
    }
    let read = agency
        .call("GET", &format!("/v1/agency/requests/{id}"), None, None)
        .await;
    assert_eq!(
        read.json["request"]["content"]["details"]["service"], SKTM,
        "{}",
        read.json
    );
    assert_eq!(
        read.json["request"]["content"]["details"]["hash"],
        hash.as_str()
    );
    phone.sync_until_ok(3).await;
    assert_eq!(phone.store.get(&id).unwrap().status(), Status::Approved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_app_meets_the_definition_on_the_server() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let w = server
        .device(home.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let agency = Agency::enroll(&server, "diskominfo", &[]).await;
    let raw = RawDevice::of(&server.url(), &w);
    let hash = definition_hash(sktm_json());

    // Not published yet: the server does not know the service.
    let early = tampered(&w, content(&answers(), &hash), sambung_e2e::sktm_documents);
    let answer = raw.exchange(vec![early]).await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(answer.refused[0].errors[0].code, "unknown_service");

    let p = agency
        .call_raw("POST", "/v1/agency/catalog", sktm_json().as_bytes())
        .await;
    assert_eq!(p.status, 201, "{}", p.json);

    let mut wrong = answers();
    wrong.insert("kk_number".into(), json!("12"));
    wrong.remove("addressed_to");
    let invalid = tampered(&w, content(&wrong, &hash), sambung_e2e::sktm_documents);
    let forged = tampered(
        &w,
        content(&answers(), &"ab".repeat(32)),
        sambung_e2e::sktm_documents,
    );
    let undocumented = tampered(&w, content(&answers(), &hash), |_| {});
    let mut unknown = content(&answers(), &hash);
    if let Details::Service(s) = &mut unknown.details {
        s.version = 7;
    }
    let unknown_version = tampered(&w, unknown, sambung_e2e::sktm_documents);
    let fine = tampered(&w, content(&answers(), &hash), sambung_e2e::sktm_documents);
    let answer = raw
        .exchange(vec![invalid, forged, undocumented, unknown_version, fine])
        .await;
    let got: Vec<Vec<String>> = answer
        .refused
        .iter()
        .map(|r| {
            assert_eq!(r.code, RefusalCode::Invalid);
            r.errors
                .iter()
                .map(|e| format!("{} {}", e.field, e.code))
                .collect()
        })
        .collect();
    assert_eq!(
        got,
        vec![
            vec![
                "details.answers.addressed_to required".to_owned(),
                "details.answers.kk_number kk_format".to_owned()
            ],
            vec!["details.hash definition_mismatch".to_owned()],
            vec![
                "attachments.ktp_copy attachment_missing".to_owned(),
                "attachments.kk_copy attachment_missing".to_owned(),
                "attachments.rt_letter attachment_missing".to_owned()
            ],
            vec!["details.service unknown_service".to_owned()],
        ],
        "{answer:?}"
    );
    assert!(
        !format!("{:?}", answer.refused).contains("Yohanes"),
        "no values in refusals"
    );
    // The valid one beside them is taken.
    assert_eq!(server.log_len(), 1);

    // A repeat of eighty thousand entries (within the answers' byte
    // limit): a count, answered at once, not walked entry by entry.
    let mut huge = answers();
    huge.insert("members".into(), Value::Array(vec![json!({}); 80_000]));
    let answer = raw
        .exchange(vec![tampered(
            &w,
            content(&huge, &hash),
            sambung_e2e::sktm_documents,
        )])
        .await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    let fields: Vec<&str> = answer.refused[0]
        .errors
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert!(fields.contains(&"details.answers.members"), "{fields:?}");
    assert!(answer.refused[0].errors.len() <= 3, "{fields:?}");
    assert_eq!(server.log_len(), 1);

    // Retired with accept-until yesterday: a request created now on it is
    // refused; one created before then is still taken.
    let yesterday =
        sambung_core::CivilDate::from_days(Timestamp::now().today_in_indonesia().to_days() - 1);
    let r = agency
        .call(
            "POST",
            &format!("/v1/agency/catalog/{SKTM}/1/retire"),
            Some(json!({"accept_until": yesterday.to_string()})),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.json);
    let late = tampered(&w, content(&answers(), &hash), sambung_e2e::sktm_documents);
    let before = tampered(&w, content(&answers(), &hash), |r| {
        sambung_e2e::sktm_documents(r);
        r.created_at = Timestamp(r.created_at.0 - 3 * 86_400_000);
    });
    let answer = raw.exchange(vec![late, before]).await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(answer.refused[0].errors[0].code, "service_retired");
    assert_eq!(server.log_len(), 2);
    // Devices learn the retirement at their next sync.
    w.sync_until_ok(3).await;
    let held = w.store.catalog().unwrap();
    assert_eq!(
        held.published(SKTM, 1).unwrap().accept_until,
        Some(yesterday)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_refuses_bad_definitions_with_every_problem_named() {
    let server = TestServer::start().await;
    let agency = Agency::enroll(&server, "diskominfo", &[]).await;
    let publish = |body: Vec<u8>| {
        let agency = &agency;
        async move { agency.call_raw("POST", "/v1/agency/catalog", &body).await }
    };
    // Not JSON; not a definition; a definition the lint refuses.
    let a = publish(b"{\"id\": ".to_vec()).await;
    assert_eq!((a.status, a.code()), (400, "bad_request"), "{}", a.json);
    let a = publish(br#"{"format": 1, "id": "x"}"#.to_vec()).await;
    assert_eq!((a.status, a.code()), (400, "bad_request"), "{}", a.json);
    let mut v: Value = serde_json::from_str(sktm_json()).unwrap();
    v["fields"][1]["id"] = v["fields"][0]["id"].clone();
    v["name"]["en"] = json!("");
    let a = publish(v.to_string().into_bytes()).await;
    assert_eq!(a.status, 400, "{}", a.json);
    let message = a.json["message"].as_str().unwrap();
    assert!(
        message.contains("listed twice") || message.contains("twice"),
        "{message}"
    );
    assert!(message.contains("name"), "{message}");
    // A format newer than this server reads.
    let mut newer: Value = serde_json::from_str(sktm_json()).unwrap();
    newer["format"] = json!(99);
    let a = publish(newer.to_string().into_bytes()).await;
    assert_eq!(a.status, 400, "{}", a.json);
    assert!(
        a.json["message"].as_str().unwrap().contains("update"),
        "{}",
        a.json
    );
    // Published once; the same version again is a conflict; a version 2
    // that removes a field is refused by the compatibility lint.
    assert_eq!(publish(sktm_json().as_bytes().to_vec()).await.status, 201);
    let again = publish(sktm_json().as_bytes().to_vec()).await;
    assert_eq!(again.status, 409, "{}", again.json);
    let mut v2: Value = serde_json::from_str(sktm_json()).unwrap();
    v2["version"] = json!(2);
    let removed = v2["fields"].as_array_mut().unwrap().remove(2);
    let a = publish(v2.to_string().into_bytes()).await;
    assert_eq!(a.status, 400, "{}", a.json);
    assert!(
        a.json["message"]
            .as_str()
            .unwrap()
            .contains(removed["id"].as_str().unwrap()),
        "{}",
        a.json
    );
    // A built-in service's version 1 cannot be published again either.
    let builtin = sambung_core::catalog::BUILTIN[0].1;
    assert_eq!(publish(builtin.as_bytes().to_vec()).await.status, 409);
    // Too large.
    let a = publish(vec![b' '; 300 * 1024]).await;
    assert_eq!(a.status, 413, "{}", a.json);
    // Retire: a version that does not exist; not a date; extra fields.
    for (target, body, status) in [
        (
            "/v1/agency/catalog/no_such/1/retire",
            json!({"accept_until": "2027-01-31"}),
            404,
        ),
        (
            &format!("/v1/agency/catalog/{SKTM}/1/retire") as &str,
            json!({"accept_until": "31-01-2027"}),
            400,
        ),
        (
            &format!("/v1/agency/catalog/{SKTM}/x/retire"),
            json!({"accept_until": "2027-01-31"}),
            400,
        ),
        (
            &format!("/v1/agency/catalog/{SKTM}/1/retire"),
            json!({"accept_until": "2027-01-31", "x": 1}),
            400,
        ),
    ] {
        let a = agency.call("POST", target, Some(body), None).await;
        assert_eq!(a.status, status, "{target}: {}", a.json);
    }
    // Unsigned, and signed by a resident's key.
    let unsigned = agency
        .send(
            "POST",
            "/v1/agency/catalog",
            sktm_json().as_bytes().to_vec(),
            None,
            None,
        )
        .await;
    assert_eq!(unsigned.status, 401, "{}", unsigned.json);
    let resident_key =
        Agency::enroll_with(&server, &server.code(Role::Resident, "warga-9", &[], None)).await;
    let as_resident = resident_key
        .call_raw("POST", "/v1/agency/catalog", sktm_json().as_bytes())
        .await;
    assert_eq!(as_resident.status, 403, "{}", as_resident.json);
    // An agency account of one region may neither publish nor retire.
    let regional = Agency::enroll(&server, "dpmptsp-kudus", &["33.19"]).await;
    let a = regional
        .call_raw("POST", "/v1/agency/catalog", sktm_json().as_bytes())
        .await;
    assert_eq!(a.status, 403, "{}", a.json);
    let a = regional
        .call(
            "POST",
            &format!("/v1/agency/catalog/{SKTM}/1/retire"),
            Some(json!({"accept_until": "2027-01-31"})),
            None,
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.json);
    // Nothing refused changed the catalog: one publication.
    let services = agency.call("GET", "/v1/agency/services", None, None).await;
    let sktm: Vec<&Value> = services.json["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] == SKTM)
        .collect();
    assert_eq!(sktm.len(), 1);
    assert_eq!(sktm[0]["version"], 1);
}
