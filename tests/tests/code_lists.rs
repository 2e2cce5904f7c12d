//! Code lists end to end (issue 15, `docs/catalog.md`, "Code lists"), on
//! the backend under test: an agency publishes a list of villages, then a
//! service whose field chooses from it; a phone on a small budget receives
//! the list in parts over several exchanges, searches it offline, and has
//! a code that is not in it refused — as the server refuses it from a
//! tampered app. A second version reaches the phone as its changes only.
//! Publishing refuses bad lists with every problem named.

use sambung_core::catalog::codes::{self, Code, CodeList};
use sambung_core::catalog::{EXAMPLES, Text, definition_hash};
use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::Role;
use sambung_core::model::{Details, Kind, ServiceRequest};
use sambung_core::templates;
use sambung_e2e::{Agency, RawDevice, TestServer, splitmix};
use serde_json::{Map, Value, json};

const LIST: &str = "desa_kalbar";
const SERVICE: &str = "sktm_asal_desa";
const VILLAGE: &str = "61.71.03.1004";

/// Village names from syllables (distinct enough to search by words).
fn village_name(seed: &mut u64) -> String {
    const SYLLABLES: &[&str] = &[
        "ba", "keu", "de", "lu", "ngan", "ri", "ma", "sa", "ta", "jo", "gam", "pong", "su", "ra",
        "we", "di", "to", "sei", "ka", "pu", "ang", "mem", "pa", "wah", "nan", "ti", "bo", "rneo",
    ];
    let n = 2 + (splitmix(seed) % 3) as usize;
    let word: String = (0..n)
        .map(|_| SYLLABLES[(splitmix(seed) % SYLLABLES.len() as u64) as usize])
        .collect();
    let mut c = word.chars();
    let first = c.next().unwrap().to_uppercase().collect::<String>();
    let kind = ["Desa", "Kelurahan", "Gampong"][(splitmix(seed) % 3) as usize];
    format!("{kind} {first}{}", c.as_str())
}

/// Version 1: 2,500 villages of 25 districts of West Kalimantan.
fn villages() -> CodeList {
    let mut seed = 61;
    let codes = (0..2500)
        .map(|i| Code {
            code: format!("61.71.{:02}.{}", 1 + i / 100, 1001 + i % 100),
            name: village_name(&mut seed),
            en: None,
            parent: None,
        })
        .collect();
    CodeList {
        format: 1,
        code_list: LIST.into(),
        version: 1,
        names: Text {
            id: "Desa/kelurahan Kalimantan Barat".into(),
            en: "Villages of West Kalimantan".into(),
        },
        source: "generated for the test".into(),
        codes,
    }
}

/// The SKTM as another service, with a field choosing the village of
/// origin from the list.
fn service_json() -> String {
    let (_, sktm) = EXAMPLES[0];
    let mut d: Value = serde_json::from_str(sktm).unwrap();
    d["id"] = SERVICE.into();
    d["fields"].as_array_mut().unwrap().push(json!({
        "id": "desa_asal", "type": "choice", "code_list": LIST,
        "label": {"id": "Desa asal", "en": "Village of origin"}
    }));
    serde_json::to_string_pretty(&d).unwrap()
}

fn content(answers: &Map<String, Value>, json: &str) -> sambung_core::model::RequestContent {
    let d = sambung_core::catalog::parse(json).unwrap();
    let mut c = templates::example(Kind::Service);
    c.region = RegionCode::from(VILLAGE);
    c.details = Details::Service(ServiceRequest::new(&d, &definition_hash(json), answers));
    c
}

fn answers(json: &str, village: &str) -> Map<String, Value> {
    let d = sambung_core::catalog::parse(json).unwrap();
    let mut a = d.example().unwrap().as_object().unwrap().clone();
    a.insert("desa_asal".into(), json!(village));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_village_list_reaches_a_phone_in_parts_then_as_its_changes_and_judges_choices() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let mut phone = server
        .device(home.path(), Role::Resident, "warga-1", &[], None)
        .await;
    // A small budget: one part (1,000 codes) per exchange.
    phone.config.budget_bytes = 12 * 1024;
    let agency = Agency::enroll(&server, "diskominfo", &[]).await;
    let regional = Agency::enroll(&server, "desa-sungai-bangkong", &["61.71"]).await;
    let service = service_json();
    let v1 = villages();
    let v1_json = serde_json::to_string(&v1).unwrap();

    // A service naming a list not published is refused, naming the list.
    let early = agency
        .call_raw("POST", "/v1/agency/catalog", service.as_bytes())
        .await;
    assert_eq!(early.status, 400, "{}", early.json);
    assert!(
        early
            .json
            .to_string()
            .contains("no code list named desa_kalbar"),
        "{}",
        early.json
    );
    // Lists are the deployment's, as services are.
    let denied = regional
        .call_raw("POST", "/v1/agency/catalog", v1_json.as_bytes())
        .await;
    assert_eq!(denied.status, 403, "{}", denied.json);
    let published = agency
        .call_raw("POST", "/v1/agency/catalog", v1_json.as_bytes())
        .await;
    assert_eq!(published.status, 201, "{}", published.json);
    assert_eq!(
        (
            published.json["id"].as_str(),
            published.json["version"].as_u64()
        ),
        (Some(LIST), Some(1))
    );
    let again = agency
        .call_raw("POST", "/v1/agency/catalog", v1_json.as_bytes())
        .await;
    assert_eq!(again.status, 409, "{}", again.json);
    let p = agency
        .call_raw("POST", "/v1/agency/catalog", service.as_bytes())
        .await;
    assert_eq!(p.status, 201, "{}", p.json);
    let trail = agency.call("GET", "/v1/agency/audit", None, None).await;
    assert!(
        trail
            .json
            .to_string()
            .contains("publish code list desa_kalbar@1"),
        "{}",
        trail.json
    );

    // The phone receives the list in three parts, one per exchange, then
    // the service that names it.
    let first = phone.sync_until_ok(3).await;
    assert_eq!((first.code_parts, first.services), (3, 1), "{first:?}");
    assert!(first.round_trips >= 3, "{first:?}");
    let held = phone.store.code_lists().unwrap();
    assert_eq!(
        (held[0].list.as_str(), held[0].version, held[0].codes),
        (LIST, 1, 2500)
    );
    let target = &v1.codes[1234];
    let word = target.name.split(' ').nth(1).unwrap().to_lowercase();
    let found = phone.store.search_codes(LIST, &word[..4], 200).unwrap();
    assert!(
        found.iter().any(|c| c.code == target.code),
        "{} not found by {}",
        target.code,
        &word[..4]
    );
    let district = phone.store.search_codes(LIST, "61.71.13", 200).unwrap();
    assert_eq!(district.len(), 100);
    assert!(district.iter().all(|c| c.code.starts_with("61.71.13.")));

    // Filing: a code of the list passes; one that is not is refused on
    // the phone, naming the field and not the value.
    let good = content(&answers(&service, &target.code), &service);
    let id = phone.store.create(good).unwrap();
    let bad = phone
        .store
        .create(content(&answers(&service, "61.71.99.9999"), &service))
        .unwrap_err();
    match &bad {
        sambung_core::Error::Form(issues) => {
            let keys: Vec<(&str, &str)> = issues
                .iter()
                .map(|i| (i.field.as_str(), i.code.as_str()))
                .collect();
            assert_eq!(keys, [("details.answers.desa_asal", "not_a_code")]);
        }
        other => panic!("expected the form's refusal, got {other:?}"),
    }
    assert!(!bad.to_string().contains("61.71.99"));
    assert!(phone.store.get(&id).is_ok());

    // A tampered app that skips its store's checks meets the list on the
    // server.
    let raw = RawDevice::of(&server.url(), &phone);
    let forged = sambung_e2e::tampered_submission(
        &phone,
        content(&answers(&service, "61.71.99.9999"), &service),
        "warga-1",
        Role::Resident,
        sambung_e2e::sktm_documents,
    );
    let honest = sambung_e2e::tampered_submission(
        &phone,
        content(&answers(&service, &v1.codes[7].code), &service),
        "warga-1",
        Role::Resident,
        sambung_e2e::sktm_documents,
    );
    let answer = raw.exchange(vec![forged, honest]).await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(
        answer.refused[0].errors[0].field,
        "details.answers.desa_asal"
    );
    assert_eq!(answer.refused[0].errors[0].code, "not_a_code");
    assert_eq!(answer.acks.len(), 1, "{answer:?}");

    // Version 2: one village renamed, one merged away, one new. The phone
    // receives the three changes, not the list.
    let mut v2 = v1.clone();
    v2.version = 2;
    v2.codes[0].name = "Desa Pemekaran Baru".into();
    let merged = v2.codes.remove(5).code;
    v2.codes.push(Code {
        code: "61.71.26.1001".into(),
        name: "Kelurahan Sungai Jawi Dalam".into(),
        en: None,
        parent: None,
    });
    let p = agency
        .call_raw(
            "POST",
            "/v1/agency/catalog",
            serde_json::to_string(&v2).unwrap().as_bytes(),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.json);
    let second = phone.sync_until_ok(3).await;
    assert_eq!(second.code_parts, 1, "{second:?}");
    assert!(
        second.bytes_down * 10 < first.bytes_down,
        "a delta of 3 codes cost {} B against {} B for the list",
        second.bytes_down,
        first.bytes_down
    );
    assert_eq!(phone.store.code_lists().unwrap()[0].version, 2);
    let sungai = phone.store.search_codes(LIST, "sungai jaw", 10).unwrap();
    assert_eq!(sungai[0].code, "61.71.26.1001");
    assert_eq!(
        phone.store.search_codes(LIST, "pemekaran", 10).unwrap()[0].code,
        v1.codes[0].code
    );
    assert!(
        phone
            .store
            .search_codes(LIST, &merged, 10)
            .unwrap()
            .is_empty()
    );
    // Merged away, no longer offered; but a draft that chose it is judged
    // alike on the phone and on the server: still a code of the list.
    phone
        .store
        .create(content(&answers(&service, &merged), &service))
        .unwrap();
    // The server still takes the merged village from a phone that chose it
    // on version 1 before it heard of version 2.
    let late = sambung_e2e::tampered_submission(
        &phone,
        content(&answers(&service, &merged), &service),
        "warga-1",
        Role::Resident,
        sambung_e2e::sktm_documents,
    );
    let answer = raw.exchange(vec![late]).await;
    assert!(answer.refused.is_empty(), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_refuses_bad_code_lists_with_every_problem_named() {
    let server = TestServer::start().await;
    let agency = Agency::enroll(&server, "diskominfo", &[]).await;
    let post = |body: Vec<u8>| {
        let agency = &agency;
        async move { agency.call_raw("POST", "/v1/agency/catalog", &body).await }
    };

    let mut bad = villages();
    bad.codes[10].code = bad.codes[3].code.clone();
    bad.codes[20].parent = Some("61.99".into());
    bad.codes[30].name = " ".into();
    bad.names.en = String::new();
    let answer = post(serde_json::to_vec(&bad).unwrap()).await;
    assert_eq!(answer.status, 400, "{}", answer.json);
    let text = answer.json.to_string();
    for needle in [
        "codes[10]: 61.71.01.1004 is listed twice (first at codes[3])",
        "codes[20].parent: 61.99 is not another code of the list",
        "codes[30] (61.71.01.1031).name",
        "names.en: give the name",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }

    // Not JSON; a newer format; an empty list; a body over the limit.
    let answer = post(br#"{"code_list": "x", "codes": [1"#.to_vec()).await;
    assert_eq!(answer.status, 400, "{}", answer.json);
    let answer = post(br#"{"format": 2, "code_list": "kbli2025", "version": 1}"#.to_vec()).await;
    assert_eq!(answer.status, 400, "{}", answer.json);
    assert!(
        answer.json.to_string().contains("newer version"),
        "{}",
        answer.json
    );
    let mut empty = villages();
    empty.codes.clear();
    let answer = post(serde_json::to_vec(&empty).unwrap()).await;
    assert_eq!(answer.status, 400, "{}", answer.json);
    assert!(answer.json.to_string().contains("codes: empty"));
    let mut huge = br#"{"code_list": "x", "format": 1, "source": ""#.to_vec();
    huge.resize(codes::MAX_CODE_LIST_BYTES + 10, b'a');
    huge.extend_from_slice(br#""}"#);
    let answer = post(huge).await;
    assert_eq!(answer.status, 413, "{}", answer.json);

    // A version that goes backwards, after version 2.
    let mut v2 = villages();
    v2.version = 2;
    let answer = post(serde_json::to_vec(&v2).unwrap()).await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    let answer = post(serde_json::to_vec(&villages()).unwrap()).await;
    assert_eq!(answer.status, 409, "{}", answer.json);
    assert!(
        answer.json.to_string().contains("publish version 3"),
        "{}",
        answer.json
    );
    // Nothing refused was stored: the catalog lists the one version.
    let trail = agency.call("GET", "/v1/agency/audit", None, None).await;
    assert_eq!(
        trail.json.to_string().matches("publish code list").count(),
        1,
        "{}",
        trail.json
    );
}

/// A budget that landed (docs/benchmarks.md, "Code lists"): on real data
/// — Aceh's 6,814 region codes — a list's first delivery costs at most
/// 1.2× its JSON at zstd -19, all exchanges' bytes counted, and a yearly
/// update at most 1.2× its changes alone at zstd -19; and the phone's
/// store grows by at most 150 bytes a code (codes, key, word index:
/// measured 108; staging a first version as text had doubled it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_region_list_costs_no_more_on_the_wire_than_its_json_compressed() {
    use sambung_e2e::regions::{regions, store_bytes, yearly_update};
    let floor = |json: &[u8]| zstd::bulk::compress(json, 19).unwrap().len() as f64;
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let phone = server
        .device(home.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let agency = Agency::enroll(&server, "diskominfo", &[]).await;
    phone.sync_until_ok(3).await;
    let before = store_bytes(home.path());
    let v1 = regions("11");
    assert_eq!(v1.codes.len(), 6814);
    let v1_json = serde_json::to_vec(&v1).unwrap();
    let p = agency
        .call_raw("POST", "/v1/agency/catalog", &v1_json)
        .await;
    assert_eq!(p.status, 201, "{}", p.json);
    let first = phone.sync_until_ok(3).await;
    let cost = (first.bytes_up + first.bytes_down) as f64;
    assert!(
        cost <= 1.2 * floor(&v1_json),
        "first delivery {cost} B against {} B",
        floor(&v1_json)
    );
    assert_eq!(phone.store.code_lists().unwrap()[0].codes, 6814);
    let grown = store_bytes(home.path()).saturating_sub(before);
    assert!(
        grown <= 150 * 6814,
        "the list cost the phone {grown} B, {} B a code",
        grown / 6814
    );

    let v2 = yearly_update(&v1);
    let held = v1
        .codes
        .iter()
        .map(|c| (c.code.clone(), c.clone()))
        .collect();
    let changes = serde_json::to_vec(&codes::parts(&held, 1, &v2)).unwrap();
    let p = agency
        .call_raw(
            "POST",
            "/v1/agency/catalog",
            &serde_json::to_vec(&v2).unwrap(),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.json);
    let update = phone.sync_until_ok(3).await;
    let cost = (update.bytes_up + update.bytes_down) as f64;
    assert!(
        cost <= 1.2 * floor(&changes),
        "update {cost} B against {} B",
        floor(&changes)
    );
    assert_eq!(phone.store.code_lists().unwrap()[0].codes, 6814 - 25 + 40);
}
