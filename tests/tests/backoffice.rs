//! The back-office API against a real server on loopback: an agency system
//! signs its calls with its enrolled key, lists and filters with cursors,
//! reads a request with its life, and acts on it; each action reaches
//! devices at their next sync, also when a device edited the same request
//! offline in the meantime. Every refusal is a 4xx with a code.

use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::Kind;
use sambung_core::templates;
use sambung_e2e::{Agency, TestServer};
use serde_json::json;

fn content(kind: Kind, region: &str) -> sambung_core::model::RequestContent {
    let mut c = templates::example(kind);
    c.region = RegionCode::from(region);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_lists_reads_and_acts_and_devices_follow() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let officer = server
        .device(
            &home.path().join("o"),
            Role::Officer,
            "petugas-9",
            &["91.01"],
            None,
        )
        .await;
    let agency = Agency::enroll(&server, "dinas-kota", &["32.73"]).await;
    let elsewhere = Agency::enroll(&server, "dinas-lain", &["33.01"]).await;

    // Five requests in the agency's regions, one outside, one a draft.
    let mut ids = Vec::new();
    for kind in [
        Kind::Complaint,
        Kind::PbbReduction,
        Kind::Complaint,
        Kind::KtpEl,
        Kind::Complaint,
    ] {
        let id = resident
            .store
            .create(content(kind, "32.73.01.1001"))
            .unwrap();
        resident.store.submit(&id).unwrap();
        ids.push(id);
    }
    let outside = resident
        .store
        .create(content(Kind::Complaint, "33.01.02.2001"))
        .unwrap();
    resident.store.submit(&outside).unwrap();
    resident
        .store
        .create(content(Kind::Complaint, "32.73.01.1001"))
        .unwrap();
    resident.sync().await.unwrap();

    // Pages of two, oldest change first, until the cursor runs out.
    let mut seen = Vec::new();
    let mut target = "/v1/agency/requests?limit=2".to_owned();
    loop {
        let page = agency.call("GET", &target, None, None).await;
        assert_eq!(page.status, 200, "{:?}", page.json);
        let items = page.json["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page.json["next_cursor"].as_str() {
            Some(c) => target = format!("/v1/agency/requests?limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut expected: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    expected.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(
        got, expected,
        "the agency's five, no draft, nothing outside"
    );

    // Filters.
    let count = |q: &'static str| {
        let agency = &agency;
        async move {
            let a = agency
                .call("GET", &format!("/v1/agency/requests?{q}"), None, None)
                .await;
            assert_eq!(a.status, 200, "{q}: {:?}", a.json);
            a.json["items"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("kind=complaint").await, 3);
    assert_eq!(count("service=tax").await, 1);
    assert_eq!(count("status=submitted&region=32.73.01").await, 5);
    assert_eq!(count("region=32.74").await, 0);
    assert_eq!(count("assignee=petugas-9").await, 0);
    assert_eq!(count("updated_since=99999999999999").await, 0);
    let other = elsewhere
        .call("GET", "/v1/agency/requests", None, None)
        .await;
    assert_eq!(other.json["items"].as_array().unwrap().len(), 1);

    // Bad filters: 400 bad_filter, each.
    for q in [
        "kind=rocket",
        "service=army",
        "status=lost",
        "region=abc",
        "region=32.7",
        "limit=0",
        "limit=501",
        "limit=many",
        "cursor=zz",
        "cursor=00",
        "colour=red",
    ] {
        let a = agency
            .call("GET", &format!("/v1/agency/requests?{q}"), None, None)
            .await;
        assert_eq!(
            (a.status, a.code()),
            (400, "bad_filter"),
            "{q}: {:?}",
            a.json
        );
    }

    // Read one: its life and a version.
    let x = &ids[0];
    let path = format!("/v1/agency/requests/{x}");
    let read = agency.call("GET", &path, None, None).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json["status"], "submitted");
    assert_eq!(read.json["request"]["history"].as_array().unwrap().len(), 1);
    let etag = read.etag.clone().unwrap();
    assert_eq!(read.json["etag"], etag.as_str());

    // Act: received, then in review, with the version read.
    let to = |s: &str| json!({ "to": s });
    let a = agency
        .call(
            "POST",
            &format!("{path}/status"),
            Some(to("received")),
            Some(&etag),
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    assert_ne!(a.etag.as_deref(), Some(etag.as_str()));
    // The old version is stale now.
    let stale = agency
        .call(
            "POST",
            &format!("{path}/status"),
            Some(to("in_review")),
            Some(&etag),
        )
        .await;
    assert_eq!((stale.status, stale.code()), (412, "stale"));
    let a = agency
        .call(
            "POST",
            &format!("{path}/status"),
            Some(to("in_review")),
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    // Forbidden by the lifecycle: 409.
    let a = agency
        .call("POST", &format!("{path}/status"), Some(to("draft")), None)
        .await;
    assert_eq!(
        (a.status, a.code()),
        (409, "forbidden_transition"),
        "{:?}",
        a.json
    );

    // Meanwhile the resident, offline, adds a note to the same request.
    resident
        .store
        .add_note(x, "saya lampirkan foto baru", false)
        .unwrap();
    // The agency asks a question and assigns an officer of another region.
    let a = agency
        .call(
            "POST",
            &format!("{path}/status"),
            Some(json!({"to": "needs_info", "note": "kirim foto KTP"})),
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    let a = agency
        .call(
            "POST",
            &format!("{path}/notes"),
            Some(json!({"text": "terima kasih, kami periksa"})),
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    let a = agency
        .call(
            "POST",
            &format!("{path}/assignee"),
            Some(json!({"officer": "petugas-9"})),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    assert_eq!(count("assignee=petugas-9").await, 1);

    // Devices follow at their next sync; the offline note is kept.
    resident.sync_until_ok(3).await;
    officer.sync_until_ok(3).await;
    let on_phone = resident.store.get(x).unwrap();
    assert_eq!(on_phone.status(), Status::NeedsInfo);
    let texts: Vec<&str> = on_phone.notes.iter().map(|n| n.text.as_str()).collect();
    assert!(texts.contains(&"saya lampirkan foto baru"));
    assert!(texts.contains(&"terima kasih, kami periksa"));
    assert_eq!(on_phone.assignee.as_deref(), Some("petugas-9"));
    assert_eq!(
        officer.store.get(x).unwrap(),
        on_phone,
        "the assigned officer has it"
    );
    let read = agency.call("GET", &path, None, None).await;
    assert_eq!(read.json["request"]["notes"].as_array().unwrap().len(), 2);
    // The resident answers; the agency sees it back in review.
    resident
        .store
        .add_note(x, "foto KTP terlampir", true)
        .unwrap();
    resident.sync_until_ok(3).await;
    let read = agency.call("GET", &path, None, None).await;
    assert_eq!(read.json["status"], "in_review");
    assert_eq!(
        read.json["next_statuses"],
        json!(["needs_info", "approved", "rejected"])
    );
    // Unassigned again.
    let a = agency
        .call(
            "POST",
            &format!("{path}/assignee"),
            Some(json!({"officer": null})),
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["request"]["assignee"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_4xx_with_codes_and_change_nothing() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let id = resident
        .store
        .create(content(Kind::Complaint, "32.73.01.1001"))
        .unwrap();
    resident.store.submit(&id).unwrap();
    resident.sync().await.unwrap();
    let agency = Agency::enroll(&server, "dinas-kota", &["32.73"]).await;
    let elsewhere = Agency::enroll(&server, "dinas-lain", &["33.01"]).await;
    let path = format!("/v1/agency/requests/{id}");

    // Not signed, signed over another body, replayed, by a resident's key.
    let a = agency.send("GET", &path, vec![], None, None).await;
    assert_eq!((a.status, a.code()), (401, "unauthenticated"));
    let body = br#"{"to":"received"}"#.to_vec();
    let signed = agency.sign("POST", &format!("{path}/status"), br#"{"to":"in_review"}"#);
    let a = agency
        .send(
            "POST",
            &format!("{path}/status"),
            body.clone(),
            Some(signed),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (401, "bad_signature"));
    let signed = agency.sign("GET", &path, b"");
    let a = agency
        .send("GET", &path, vec![], Some(signed.clone()), None)
        .await;
    assert_eq!(a.status, 200);
    let a = agency.send("GET", &path, vec![], Some(signed), None).await;
    assert_eq!((a.status, a.code()), (401, "replayed"));
    // A query altered in flight no longer matches its signature.
    let signed = agency.sign("GET", "/v1/agency/requests?region=32.73", b"");
    let a = agency
        .send(
            "GET",
            "/v1/agency/requests?region=33",
            vec![],
            Some(signed),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (401, "bad_signature"));
    let code = server.code(Role::Resident, "warga-2", &[], None);
    let not_agency = Agency::enroll_with(&server, &code).await;
    let a = not_agency
        .call("GET", "/v1/agency/requests", None, None)
        .await;
    assert_eq!((a.status, a.code()), (403, "forbidden"));

    // Unknown, malformed, or outside the agency's regions.
    let unknown = format!(
        "/v1/agency/requests/{}",
        sambung_core::model::RequestId::random()
    );
    let a = agency.call("GET", &unknown, None, None).await;
    assert_eq!((a.status, a.code()), (404, "not_found"));
    let a = agency
        .call(
            "POST",
            &format!("{unknown}/notes"),
            Some(json!({"text": "x"})),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (404, "not_found"));
    let a = agency
        .call("GET", "/v1/agency/requests/not-a-uuid", None, None)
        .await;
    assert_eq!((a.status, a.code()), (400, "bad_request"));
    let a = elsewhere.call("GET", &path, None, None).await;
    assert_eq!((a.status, a.code()), (404, "not_found"));
    let a = elsewhere
        .call(
            "POST",
            &format!("{path}/status"),
            Some(json!({"to": "received"})),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (404, "not_found"));

    let log = server.log_len();
    // Bad bodies.
    for (action, body) in [
        ("status", json!({"to": "teleported"})),
        ("status", json!({"status": "received"})),
        (
            "status",
            json!({"to": "received", "note": "x".repeat(5001)}),
        ),
        ("notes", json!({"text": ""})),
        ("notes", json!({"text": 5})),
        ("assignee", json!({"officer": ""})),
        ("assignee", json!({})),
    ] {
        let a = agency
            .call(
                "POST",
                &format!("{path}/{action}"),
                Some(body.clone()),
                None,
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (400, "bad_request"),
            "{action} {body}: {:?}",
            a.json
        );
    }
    let huge = json!({"text": "x".repeat(20_000)});
    let a = agency
        .call("POST", &format!("{path}/notes"), Some(huge), None)
        .await;
    assert_eq!((a.status, a.code()), (413, "too_large"));
    // The lifecycle: the agency may not approve what is not in review.
    let a = agency
        .call(
            "POST",
            &format!("{path}/status"),
            Some(json!({"to": "approved"})),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (409, "forbidden_transition"));

    assert_eq!(server.log_len(), log, "no refusal wrote anything");
    let read = agency.call("GET", &path, None, None).await;
    assert_eq!(read.json["status"], "submitted");
    assert_eq!(read.json["request"]["notes"].as_array().unwrap().len(), 0);
    // What the agency may do next, from the lifecycle's table (a client
    // offers only these): a submitted request can only be received.
    assert_eq!(read.json["next_statuses"], serde_json::json!(["received"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let r = reqwest::get(format!("{}/v1/openapi.json", server.url()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    for p in [
        "/v1/agency/requests",
        "/v1/agency/requests/{id}",
        "/v1/agency/requests/{id}/status",
        "/v1/agency/requests/{id}/notes",
        "/v1/agency/requests/{id}/assignee",
        "/v1/agency/webhooks",
        "/v1/agency/webhooks/{id}",
        "/v1/agency/audit",
        "/v1/agency/audit/verify",
        "/v1/agency/exposure",
        "/v1/agency/services",
        "/v1/agency/persons/export",
        "/v1/agency/persons/erase",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    let list = &doc["paths"]["/v1/agency/requests"]["get"];
    // The whole-list calls take the listing's filters, stated alike (the
    // patterns are literals in two places: held equal here).
    for whole in ["/v1/agency/requests/counts", "/v1/agency/requests/export"] {
        let op = &doc["paths"][whole]["get"];
        let filters: Vec<&serde_json::Value> =
            op["parameters"].as_array().unwrap().iter().collect();
        let names: Vec<&str> = filters
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "kind",
                "service",
                "status",
                "region",
                "assignee",
                "updated_since",
                "submitted_since",
                "submitted_before",
                "definition",
                "overdue"
            ],
            "{whole}"
        );
        for f in filters {
            let same = list["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == f["name"])
                .unwrap();
            assert_eq!(f["schema"], same["schema"], "{whole} {}", f["name"]);
        }
    }
    let params: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "kind",
        "service",
        "status",
        "region",
        "assignee",
        "updated_since",
        "cursor",
        "limit",
    ] {
        assert!(params.contains(&p), "{p} missing from {params:?}");
    }
    // The constraints the server enforces are stated (issue 17: a client
    // generated from the document, and schemathesis, rely on them): each
    // list of names is exactly the server's.
    let param = |name: &str| {
        list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["schema"]
            .clone()
    };
    let names = |name: &str| -> std::collections::BTreeSet<String> {
        let pattern = param(name)["pattern"].as_str().unwrap().to_owned();
        let inner = pattern
            .strip_prefix("^(")
            .unwrap()
            .strip_suffix(")$")
            .unwrap();
        inner.split('|').map(str::to_owned).collect()
    };
    let kinds: std::collections::BTreeSet<String> = Kind::ALL
        .iter()
        .map(|k| k.as_str().to_owned())
        .chain(["service".to_owned()])
        .collect();
    assert_eq!(names("kind"), kinds);
    let statuses = Status::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    assert_eq!(names("status"), statuses);
    let services = sambung_core::model::Service::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    assert_eq!(names("service"), services);
    assert_eq!(
        (
            param("limit")["minimum"].as_u64(),
            param("limit")["maximum"].as_u64()
        ),
        (Some(1), Some(500))
    );
    assert_eq!(param("assignee")["maxLength"], 128);
    // The region code and NIK patterns say what the server's validators
    // say, value by value.
    let region = regex::Regex::new(param("region")["pattern"].as_str().unwrap()).unwrap();
    for p in 0..100u8 {
        for code in [
            format!("{p:02}"),
            format!("{p:02}.73.01"),
            format!("{p:02}.73.01.1001"),
        ] {
            let server = RegionCode::from(code.as_str()).check().is_empty();
            assert_eq!(region.is_match(&code), server, "{code}");
        }
    }
    for bad in ["32.7", "32.73.01.100", "32..73", "32.73.01.1001.1"] {
        assert!(!region.is_match(bad), "{bad}");
    }
    let nik = regex::Regex::new(
        doc["components"]["schemas"]["PersonQuery"]["properties"]["nik"]["pattern"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let mut candidates: Vec<String> = (0..100u8)
        .map(|p| format!("{p:02}7301150890{:04}", 1))
        .collect();
    for day in 0..=72u8 {
        for month in 0..=13u8 {
            for yy in [0u8, 1, 4, 23, 96] {
                for serial in [0u16, 1, 9999] {
                    candidates.push(format!("327301{day:02}{month:02}{yy:02}{serial:04}"));
                }
            }
        }
    }
    for n in candidates {
        let server = sambung_core::identifiers::Nik(n.clone()).check().is_empty();
        assert_eq!(nik.is_match(&n), server, "{n}");
    }
    assert!(param("cursor")["pattern"].is_string());
    // The signature every call carries is declared, and every call states
    // the refusals any call can meet (issue 17: a client generated from
    // this document handles them all).
    let scheme = &doc["components"]["securitySchemes"]["sambung-auth"];
    assert_eq!(
        (
            scheme["type"].as_str(),
            scheme["in"].as_str(),
            scheme["name"].as_str()
        ),
        (Some("apiKey"), Some("header"), Some("sambung-auth")),
        "{scheme}"
    );
    assert!(
        doc["security"][0].get("sambung-auth").is_some(),
        "{}",
        doc["security"]
    );
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let codes: Vec<&str> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .collect();
            for code in ["401", "403", "429"] {
                assert!(
                    codes.contains(&code),
                    "{method} {path} does not state {code}: {codes:?}"
                );
            }
            if op.get("requestBody").is_some() {
                assert!(
                    codes.contains(&"413"),
                    "{method} {path} does not state 413: {codes:?}"
                );
            }
        }
    }
    assert!(operations >= 18, "{operations}");
}

/// What the document states is what the server answers: an unsigned call
/// and a resident's key meet the 401 and 403 every operation lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_answers_the_refusals_the_document_states() {
    let server = TestServer::start().await;
    // A resident's key, signing as agency systems do.
    let resident =
        Agency::enroll_with(&server, &server.code(Role::Resident, "warga-1", &[], None)).await;
    let client = reqwest::Client::new();
    for (method, path) in [
        ("GET", "/v1/agency/requests"),
        ("GET", "/v1/agency/services"),
        ("GET", "/v1/agency/audit"),
        ("GET", "/v1/agency/webhooks"),
        ("POST", "/v1/agency/catalog"),
    ] {
        let url = format!("{}{path}", server.url());
        let unsigned = client
            .request(method.parse().unwrap(), &url)
            .send()
            .await
            .unwrap();
        assert_eq!(unsigned.status(), 401, "{method} {path}");
        let body: &[u8] = if method == "GET" { b"" } else { b"{}" };
        let signed = resident.call_raw(method, path, body).await;
        assert_eq!(signed.status, 403, "{method} {path}: {}", signed.json);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agency_lists_the_service_catalog() {
    let server = TestServer::start().await;
    let agency = Agency::enroll(&server, "dpmptsp-kudus", &["33.19"]).await;
    let a = agency
        .call(
            "GET",
            "/v1/agency/services?region=33.19.05.2011",
            None,
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    let services = a.json["services"].as_array().unwrap();
    let ids: Vec<&str> = services.iter().map(|s| s["id"].as_str().unwrap()).collect();
    for id in [
        "complaint",
        "birth",
        "surat_keterangan_domisili",
        "izin_reklame",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let letter = services
        .iter()
        .find(|s| s["id"] == "surat_keterangan_domisili")
        .unwrap();
    assert_eq!(letter["level"], "desa");
    assert_eq!(letter["category"], "letter");
    assert_eq!(letter["name_en"], "Certificate of residence");
    assert!(!letter["legal_basis"].as_array().unwrap().is_empty());
    // All of them, without a region.
    let all = agency.call("GET", "/v1/agency/services", None, None).await;
    assert_eq!(all.json["services"].as_array().unwrap().len(), ids.len());
    // Bad input: not a region, an unknown parameter, unsigned.
    for target in [
        "/v1/agency/services?region=Kudus",
        "/v1/agency/services?kind=birth",
    ] {
        let a = agency.call("GET", target, None, None).await;
        assert_eq!(
            (a.status, a.code()),
            (400, "bad_filter"),
            "{target}: {}",
            a.json
        );
    }
    let a = agency
        .send("GET", "/v1/agency/services", vec![], None, None)
        .await;
    assert_eq!((a.status, a.code()), (401, "unauthenticated"));

    // One version's definition: the labels a client shows a request with.
    let def = agency
        .call("GET", "/v1/agency/services/complaint/1", None, None)
        .await;
    assert_eq!(def.status, 200, "{}", def.json);
    assert_eq!(def.json["id"], "complaint");
    let text = def.json["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "text")
        .unwrap();
    assert_eq!(text["label"]["en"], "What happened");
    for (target, status) in [
        ("/v1/agency/services/complaint/99", 404),
        ("/v1/agency/services/no_such_service/1", 404),
        ("/v1/agency/services/complaint/0", 400),
        ("/v1/agency/services/complaint/one", 400),
        ("/v1/agency/services/Complaint/1", 400),
        ("/v1/agency/services/9complaint/1", 400),
    ] {
        let a = agency.call("GET", target, None, None).await;
        assert_eq!(a.status, status, "{target}: {}", a.json);
    }
    let a = agency
        .send("GET", "/v1/agency/services/complaint/1", vec![], None, None)
        .await;
    assert_eq!(a.status, 401);
}

/// Lengths the document states in characters are counted in characters:
/// an account id of 40 four-byte letters (160 bytes) is within 128.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lengths_are_characters_as_the_document_states() {
    let server = TestServer::start().await;
    // Without region limits: the audit trail is the whole agency's.
    let agency = Agency::enroll(&server, "diskominfo", &[]).await;
    let wide = "%F0%9D%95%8B".repeat(40);
    for path in [
        format!("/v1/agency/requests?assignee={wide}"),
        format!("/v1/agency/audit?account={wide}"),
    ] {
        let a = agency.call("GET", &path, None, None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.json);
    }
    let too_long = "%F0%9D%95%8B".repeat(129);
    let a = agency
        .call(
            "GET",
            &format!("/v1/agency/requests?assignee={too_long}"),
            None,
            None,
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_the_csv_export_cover_the_list_and_are_audited() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let whole = Agency::enroll(&server, "dinas-pusat", &[]).await;
    // Two regions, one inside the other: nothing may be counted twice.
    let city = Agency::enroll(&server, "dinas-kota", &["32.73", "32.73.01", "33.01"]).await;
    let mut ids = Vec::new();
    for (kind, region) in [
        (Kind::Complaint, "32.73.01.1001"),
        (Kind::Complaint, "32.73.02.1002"),
        (Kind::KtpEl, "32.73.01.1003"),
        (Kind::Complaint, "33.01.02.2001"),
        (Kind::Complaint, "35.78.01.1001"),
    ] {
        let id = resident.store.create(content(kind, region)).unwrap();
        resident.store.submit(&id).unwrap();
        ids.push(id);
    }
    // A draft is the applicant's: never counted, never exported.
    resident
        .store
        .create(content(Kind::Complaint, "32.73.01.1001"))
        .unwrap();
    resident.sync().await.unwrap();
    whole.move_to(&ids[0], "received").await;

    assert_eq!(
        counts(&whole, "").await,
        json!({"counts": {"received": 1, "submitted": 4}, "total": 5})
    );
    assert_eq!(
        counts(&city, "").await,
        json!({"counts": {"received": 1, "submitted": 3}, "total": 4})
    );
    assert_eq!(counts(&city, "?kind=complaint").await["total"], 3);
    assert_eq!(counts(&city, "?region=32.73.01").await["total"], 2);
    assert_eq!(counts(&city, "?region=32").await["total"], 3);
    assert_eq!(counts(&city, "?region=35.78").await["total"], 0);
    assert_eq!(counts(&whole, "?region=35.78").await["total"], 1);
    assert_eq!(counts(&whole, "?status=submitted").await["total"], 4);

    // The export holds exactly what the listing holds, in its order.
    let list = whole
        .call("GET", "/v1/agency/requests?kind=complaint", None, None)
        .await;
    let listed: Vec<&str> = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    // Each complaint's place is in its row, for the map; a KTP has none.
    let sample = templates::example(Kind::Complaint);
    let place = match &sample.details {
        sambung_core::model::Details::Complaint(c) => c.location.clone().unwrap(),
        _ => unreachable!(),
    };
    for item in list.json["items"].as_array().unwrap() {
        assert_eq!(
            item["location"],
            json!({"lat": place.lat, "lon": place.lon}),
            "{item}"
        );
    }
    let ktp = whole
        .call("GET", "/v1/agency/requests?kind=ktp_el", None, None)
        .await;
    assert!(ktp.json["items"][0]["location"].is_null());
    let csv = whole
        .call(
            "GET",
            "/v1/agency/requests/export?kind=complaint",
            None,
            None,
        )
        .await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    let lines: Vec<&str> = csv.text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "id,kind,service,status,region,assignee,updated_at"
    );
    let exported: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(exported, listed);
    // Oldest change first: the request just received is the last row.
    let last: Vec<&str> = lines.last().unwrap().split(',').collect();
    assert_eq!(
        last[..5],
        [
            ids[0].to_string().as_str(),
            "complaint",
            "complaint",
            "received",
            "32.73.01.1001"
        ]
    );
    assert!(
        last[6].len() == 20 && last[6].ends_with('Z') && last[6].as_bytes()[10] == b'T',
        "{}",
        last[6]
    );
    // No content leaves in the export: not the applicant's name or NIK.
    let person = sample.applicant.unwrap();
    assert!(!csv.text.contains(person.name.as_str()) && !csv.text.contains(person.nik.as_str()));
    // A regional account exports its regions only.
    let csv = city
        .call("GET", "/v1/agency/requests/export", None, None)
        .await;
    assert_eq!(csv.text.lines().count(), 1 + 4);
    assert!(!csv.text.contains("35.78"));

    // Bad filters, and the paging a whole listing has no use for: 400.
    for target in [
        "/v1/agency/requests/counts?limit=5",
        "/v1/agency/requests/counts?cursor=00",
        "/v1/agency/requests/counts?kind=rocket",
        "/v1/agency/requests/export?region=abc",
        "/v1/agency/requests/export?limit=5",
        "/v1/agency/requests/export?updated_since=soon",
    ] {
        let a = whole.call("GET", target, None, None).await;
        assert_eq!((a.status, a.code()), (400, "bad_filter"), "{target}");
    }
    // Signed by nobody: refused.
    let a = whole
        .send("GET", "/v1/agency/requests/export", Vec::new(), None, None)
        .await;
    assert_eq!(a.status, 401);

    // Both are in the audit trail, by whom and through which call.
    let audit = whole.call("GET", "/v1/agency/audit", None, None).await;
    let actions: Vec<(String, String)> = audit.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["endpoint"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(actions.contains(&("export".into(), "GET /v1/agency/requests/export".into())));
    assert!(actions.contains(&("count".into(), "GET /v1/agency/requests/counts".into())));
}

/// The counts an agency gets for query `q` (`""` or `?...`).
async fn counts(agency: &Agency, q: &str) -> serde_json::Value {
    let target = format!("/v1/agency/requests/counts{q}");
    let a = agency.call("GET", &target, None, None).await;
    assert_eq!(a.status, 200, "{target}: {:?}", a.json);
    a.json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_listed_and_revoked_through_the_api_and_audited() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let phone = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let kept = server
        .device(&home.path().join("k"), Role::Resident, "warga-2", &[], None)
        .await;
    let dpo = Agency::enroll(&server, "dpo", &[]).await;
    let city = Agency::enroll(&server, "dinas-kota", &["32.73"]).await;
    let lost = hex::encode(phone.store.device_id());

    let all = dpo.call("GET", "/v1/agency/devices", None, None).await;
    assert_eq!(all.status, 200, "{}", all.json);
    let mine = all.json["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == lost.as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["account"], "warga-1");
    assert_eq!(mine["role"], "resident");
    assert!(mine["revoked_at"].is_null());
    let one = dpo
        .call("GET", "/v1/agency/devices?account=warga-1", None, None)
        .await;
    assert_eq!(one.json["devices"].as_array().unwrap().len(), 1);
    // A regional account manages no keys.
    let a = city.call("GET", "/v1/agency/devices", None, None).await;
    assert_eq!((a.status, a.code()), (403, "forbidden"));
    let a = city
        .call(
            "POST",
            &format!("/v1/agency/devices/{lost}/revoke"),
            Some(json!({})),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (403, "forbidden"));

    // Revoked with a wipe: the phone is refused at its next sync and told
    // to delete its store.
    let r = dpo
        .call(
            "POST",
            &format!("/v1/agency/devices/{lost}/revoke"),
            Some(json!({"wipe": true})),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(r.json["revoked_at"].as_i64().unwrap() > 0);
    match phone.sync().await {
        Err(sambung_core::Error::Revoked { wiped: true }) => {}
        other => panic!("expected a wipe, got {other:?}"),
    }
    kept.sync().await.unwrap();
    // Again: nothing changes, nothing more is recorded.
    let again = dpo
        .call(
            "POST",
            &format!("/v1/agency/devices/{lost}/revoke"),
            Some(json!({})),
            None,
        )
        .await;
    assert_eq!(again.json, r.json);

    // Refusals: the calling key itself, an unknown key, not an id, not
    // the body's shape.
    let own = hex::encode(dpo.device);
    for (target, body, status) in [
        (format!("/v1/agency/devices/{own}/revoke"), json!({}), 400),
        (
            "/v1/agency/devices/00000000000000000000000000000000/revoke".to_owned(),
            json!({}),
            404,
        ),
        ("/v1/agency/devices/xyz/revoke".to_owned(), json!({}), 400),
        (
            format!("/v1/agency/devices/{lost}/revoke"),
            json!({"wipe": "yes"}),
            400,
        ),
        (
            format!("/v1/agency/devices/{lost}/revoke"),
            json!({"delete": true}),
            400,
        ),
    ] {
        let a = dpo.call("POST", &target, Some(body), None).await;
        assert_eq!(a.status, status, "{target}: {}", a.json);
    }
    let a = dpo
        .call("GET", "/v1/agency/devices?account=", None, None)
        .await;
    assert_eq!((a.status, a.code()), (400, "bad_filter"));

    // The trail says who revoked which key, once.
    let audit = dpo.call("GET", "/v1/agency/audit", None, None).await;
    let revokes: Vec<&serde_json::Value> = audit.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "revoke")
        .collect();
    assert_eq!(revokes.len(), 1);
    assert_eq!(revokes[0]["account"], "dpo");
    let endpoint = revokes[0]["endpoint"].as_str().unwrap();
    assert!(
        endpoint.contains(&lost) && endpoint.contains("wipe"),
        "{endpoint}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_filters_by_submission_definition_and_overdue() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let agency = Agency::enroll(&server, "dinas-kota", &[]).await;
    let mut ids = Vec::new();
    for kind in [Kind::Complaint, Kind::Complaint, Kind::KtpEl] {
        let id = resident
            .store
            .create(content(kind, "32.73.01.1001"))
            .unwrap();
        resident.store.submit(&id).unwrap();
        ids.push(id);
    }
    resident.sync().await.unwrap();
    // One complaint has waited a month since the server took it: its row
    // as a server running for that month would have written it.
    let month_ago = sambung_core::Timestamp::now().as_millis() - 30 * 86_400_000;
    let old = ids[0].to_bytes().unwrap();
    sambung_server::documents::update_documents(
        server.state.storage(),
        &[old],
        &mut |_, current| {
            let mut stored = current.unwrap();
            stored.meta.submitted_at = Some(month_ago);
            let mut doc = automerge::AutoCommit::load(&stored.data).unwrap();
            Ok(sambung_server::documents::DocWrite::Write {
                scope_keys: Vec::new(),
                heads: sambung_core::document::encode_heads(&doc.get_heads()),
                log_data: stored.data.clone(),
                device: [7; 16],
                changes: Vec::new(),
                delivery: sambung_server::storage::Delivered {
                    account: "warga-1".into(),
                    device: None,
                    exchange: None,
                    at: month_ago,
                },
                events: Vec::new(),
                replace: false,
                attachments: Vec::new(),
                doc: stored,
            })
        },
    )
    .unwrap();
    // A tampered app backdates its submission by a year to jump the
    // overdue list: the server's own time of receipt is what counts.
    let year_ago = sambung_core::Timestamp(month_ago - 335 * 86_400_000);
    let before_push = sambung_core::Timestamp::now().as_millis();
    let mut request = sambung_core::model::Request::draft(
        content(Kind::Complaint, "32.73.01.1001"),
        "warga-1",
        Role::Resident,
        year_ago,
    );
    request.history.push(sambung_core::lifecycle::StatusEntry {
        seq: 0,
        at: year_ago,
        id: "submit".into(),
        from: Status::Draft,
        to: Status::Submitted,
        by: "warga-1".into(),
        role: Role::Resident,
        note: None,
    });
    let mut backdated = sambung_core::document::RequestDoc::new(
        &request,
        automerge::ActorId::from(resident.store.device_id().as_slice()),
    )
    .unwrap();
    let answer = sambung_e2e::RawDevice::of(&server.url(), &resident)
        .exchange(vec![sambung_core::protocol::DocPush {
            id: request.id.to_bytes(),
            since: vec![],
            changes: backdated.save_after(&[]),
            heads: backdated.heads().into_iter().map(Into::into).collect(),
        }])
        .await;
    assert!(answer.refused.is_empty(), "{answer:?}");
    let tampered = request.id.to_string();

    let listed = |q: &'static str| {
        let agency = &agency;
        async move {
            let a = agency
                .call("GET", &format!("/v1/agency/requests?{q}"), None, None)
                .await;
            assert_eq!(a.status, 200, "{q}: {}", a.json);
            let mut ids: Vec<String> = a.json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    let id = |k: usize| vec![ids[k].to_string()];
    // Every row says its definition and when it was submitted.
    let all = agency.call("GET", "/v1/agency/requests", None, None).await;
    for item in all.json["items"].as_array().unwrap() {
        assert!(item["submitted_at"].as_i64().unwrap() > 0, "{item}");
    }
    assert_eq!(listed("definition=ktp_el").await, id(2));
    assert_eq!(listed("definition=complaint").await.len(), 3);
    // A complaint's standard is 14 working days: only the month-old one is
    // past it, and only while it is open; not the backdated one.
    assert_eq!(listed("overdue=true").await, id(0));
    assert_eq!(listed("overdue=false").await.len(), 4);
    let row = all.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == tampered.as_str())
        .unwrap();
    assert!(
        row["submitted_at"].as_i64().unwrap() >= before_push,
        "{row}"
    );
    // Each row says so too, as the filter judges.
    let rows = agency.call("GET", "/v1/agency/requests", None, None).await;
    for item in rows.json["items"].as_array().unwrap() {
        assert_eq!(
            item["overdue"],
            item["id"] == ids[0].to_string().as_str(),
            "{item}"
        );
    }
    let week_ago = sambung_core::Timestamp::now().as_millis() - 7 * 86_400_000;
    assert_eq!(
        listed(Box::leak(
            format!("submitted_before={week_ago}").into_boxed_str()
        ))
        .await,
        id(0)
    );
    assert_eq!(
        listed(Box::leak(
            format!("submitted_since={week_ago}").into_boxed_str()
        ))
        .await
        .len(),
        3
    );
    let counts = counts(&agency, "?overdue=true").await;
    assert_eq!(counts["total"], 1);
    agency.move_to(&ids[0], "received").await;
    assert_eq!(
        listed("overdue=true").await,
        id(0),
        "received is still open"
    );
    agency.move_to(&ids[0], "in_review").await;
    let decided = agency
        .call(
            "POST",
            &format!("/v1/agency/requests/{}/status", ids[0]),
            Some(json!({"to": "approved"})),
            None,
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.json);
    assert!(
        listed("overdue=true").await.is_empty(),
        "decided: not overdue"
    );

    for q in [
        "definition=Complaint",
        "definition=",
        "overdue=yes",
        "submitted_since=soon",
    ] {
        let a = agency
            .call("GET", &format!("/v1/agency/requests?{q}"), None, None)
            .await;
        assert_eq!((a.status, a.code()), (400, "bad_filter"), "{q}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_to_assign_are_those_of_the_region_with_a_trusted_key() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let mut officers = Vec::new();
    for (user, region) in [
        ("petugas-kota", "32.73"),
        ("petugas-cicendo", "32.73.01"),
        ("petugas-lain", "33.01"),
        ("petugas-hilang", "32.73"),
    ] {
        officers.push(
            server
                .device(
                    &home.path().join(user),
                    Role::Officer,
                    user,
                    &[region],
                    None,
                )
                .await,
        );
    }
    server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let dpo = Agency::enroll(&server, "dpo", &[]).await;
    let city = Agency::enroll(&server, "dinas-kota", &["32.73"]).await;
    // A revoked key: that officer cannot receive an assignment.
    let lost = hex::encode(officers[3].store.device_id());
    let r = dpo
        .call(
            "POST",
            &format!("/v1/agency/devices/{lost}/revoke"),
            Some(json!({})),
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    let ids = |a: &sambung_e2e::ApiAnswer| -> Vec<String> {
        a.json["officers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = dpo.call("GET", "/v1/agency/officers", None, None).await;
    assert_eq!(all.status, 200, "{}", all.json);
    assert_eq!(
        ids(&all),
        ["petugas-cicendo", "petugas-kota", "petugas-lain"]
    );
    assert_eq!(all.json["officers"][1]["regions"], json!(["32.73"]));
    let here = dpo
        .call(
            "GET",
            "/v1/agency/officers?region=32.73.01.1001",
            None,
            None,
        )
        .await;
    assert_eq!(ids(&here), ["petugas-cicendo", "petugas-kota"]);
    let there = dpo
        .call(
            "GET",
            "/v1/agency/officers?region=32.73.02.1002",
            None,
            None,
        )
        .await;
    assert_eq!(ids(&there), ["petugas-kota"]);
    // A city's account sees its own region's officers only.
    let mine = city.call("GET", "/v1/agency/officers", None, None).await;
    assert_eq!(ids(&mine), ["petugas-cicendo", "petugas-kota"]);
    for q in ["region=abc", "region=32.7", "role=officer"] {
        let a = dpo
            .call("GET", &format!("/v1/agency/officers?{q}"), None, None)
            .await;
        assert_eq!((a.status, a.code()), (400, "bad_filter"), "{q}");
    }
}
