//! The built-in catalog, the lint's refusals, the live form state, and the
//! catalog path agreeing with the compiled-in validation of the same
//! content.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::codes::NoCodes;
use super::*;
use crate::model::{Details, Kind};
use crate::templates;
use crate::time::CivilDate;

fn today() -> CivilDate {
    CivilDate::new(2026, 12, 3).unwrap()
}

fn form(id: &str) -> Form {
    let catalog = builtin().unwrap();
    let d = catalog.latest(id).unwrap().definition().clone();
    Form::compile(d).unwrap()
}

/// The SKU letter as JSON, to be broken one way per test.
fn sku() -> Value {
    let (_, json) = BUILTIN
        .iter()
        .find(|(n, _)| n.starts_with("surat_keterangan_usaha"))
        .unwrap();
    serde_json::from_str(json).unwrap()
}

fn refused(v: Value) -> Vec<String> {
    match Catalog::new(vec![parse(&v.to_string()).unwrap()]) {
        Err(CatalogError::Invalid { problems, .. }) => problems,
        other => panic!("expected the lint to refuse it, got {other:?}"),
    }
}

fn has(problems: &[String], needle: &str) -> bool {
    problems.iter().any(|p| p.contains(needle))
}

#[test]
fn the_builtin_catalog_loads_and_every_test_vector_passes() {
    let catalog = builtin().unwrap();
    assert_eq!(catalog.len(), BUILTIN.len());
    for d in catalog.services(None) {
        // `Catalog::new` ran the lint, which runs the vectors; run them here
        // again so a lint that stopped running them is caught.
        assert!(!d.tests.is_empty(), "{} ships without test vectors", d.id);
        assert_eq!(
            lint::check(d, &Default::default()),
            Vec::<String>::new(),
            "{}",
            d.id
        );
    }
    assert!(catalog.latest("surat_keterangan_tidak_mampu").is_none());
    for new in [
        "surat_keterangan_domisili",
        "surat_keterangan_usaha",
        "surat_pengantar_skck",
        "izin_reklame",
    ] {
        assert!(catalog.latest(new).is_some(), "{new} is missing");
    }
    // The examples an agency publishes load on top of it, with their hash.
    let mut published = catalog;
    for (name, json) in EXAMPLES {
        let key = published.add_published(json, None).unwrap();
        let (id, version) = key.split_once('@').unwrap();
        let p = published.published(id, version.parse().unwrap()).unwrap();
        assert_eq!(p.hash, definition_hash(json), "{name}");
    }
    assert!(published.latest("surat_keterangan_tidak_mampu").is_some());
}

#[test]
fn a_test_vector_that_disagrees_with_the_form_is_refused() {
    let mut v = sku();
    v["tests"][1]["errors"] = json!(["workers: wrong_type"]);
    let p = refused(v);
    assert!(has(&p, "tests[1]"), "{p:?}");
    assert!(has(&p, "turnover_implausible"), "{p:?}");
}

#[test]
fn services_are_listed_by_region() {
    let mut v = sku();
    v["id"] = "izin_keramaian_kudus".into();
    v["regions"] = json!(["33.19"]);
    let mut catalog = builtin().unwrap();
    catalog.add(parse(&v.to_string()).unwrap()).unwrap();
    let ids = |region: Option<&str>| -> Vec<String> {
        catalog
            .services(region)
            .iter()
            .map(|d| d.id.clone())
            .collect()
    };
    assert!(ids(Some("33.19.05.2011")).contains(&"izin_keramaian_kudus".to_string()));
    assert!(!ids(Some("35.09.14.2005")).contains(&"izin_keramaian_kudus".to_string()));
    // Services with no regions are offered everywhere.
    assert!(ids(Some("35.09.14.2005")).contains(&"complaint".to_string()));
    assert_eq!(ids(None).len(), BUILTIN.len() + 1);
}

#[test]
fn malformed_definitions_are_refused_with_what_is_wrong() {
    let e = parse("{not json").unwrap_err();
    assert!(matches!(e, CatalogError::Malformed { .. }), "{e}");
    let mut v = sku();
    v["fields"][0]["type"] = "signature".into();
    let e = parse(&v.to_string()).unwrap_err();
    assert!(e.to_string().contains("signature"), "{e}");
    let mut v = sku();
    v["fields"][0]["colour"] = "red".into();
    let e = parse(&v.to_string()).unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
    let mut v = sku();
    v.as_object_mut().unwrap().remove("fields");
    assert!(matches!(
        parse(&v.to_string()),
        Err(CatalogError::Malformed { .. })
    ));
}

#[test]
fn a_definition_for_a_newer_engine_says_update_the_app() {
    let mut v = sku();
    v["format"] = 2.into();
    // It may use what this engine does not know; that must not matter.
    v["fields"][0]["type"] = "signature".into();
    let e = parse(&v.to_string()).unwrap_err();
    assert_eq!(
        e,
        CatalogError::NeedsNewerEngine {
            service: "surat_keterangan_usaha".into(),
            format: 2
        }
    );
    assert!(e.to_string().contains("update the app"));
}

#[test]
fn the_lint_names_every_problem_at_once() {
    let mut v = sku();
    v["fields"][1]["id"] = "business_name".into();
    v["fields"][0]["label"]["en"] = " ".into();
    v["fields"][6]["relevant"] = json!({"==": [{"var": "owner_age"}, 3]});
    v["checks"][0]["check"] = json!({"frobnicate": [1]});
    v["fields"][8]["options"][1]["value"] = "bank_loan".into();
    v["fields"][2]["code_list"] = "kbli_1990".into();
    v["workflow"]["statuses"] = json!(["draft", "submitted", "stamped"]);
    v["id"] = "SKU!".into();
    let p = refused(v);
    for needle in [
        "business_name",
        "(en) is empty",
        "owner_age",
        "frobnicate",
        "bank_loan",
        "kbli_1990",
        "stamped",
        "id: use lowercase",
    ] {
        assert!(has(&p, needle), "{needle} not named in {p:?}");
    }
}

#[test]
fn settings_that_do_not_fit_the_type_are_refused() {
    let mut v = sku();
    v["fields"][0]["options"] = json!([{"value": "a", "label": {"id": "A", "en": "A"}}]);
    v["fields"][6]["min"] = 10.into();
    v["fields"][6]["max"] = 1.into();
    let p = refused(v);
    assert!(has(&p, "(business_name).options"), "{p:?}");
    assert!(has(&p, "(workers): min is above max"), "{p:?}");
}

#[test]
fn publishing_keeps_ids_types_and_options() {
    let prev = parse(&sku().to_string()).unwrap();
    let mut catalog = Catalog::new(vec![prev.clone()]).unwrap();

    let same = prev.clone();
    let e = catalog.add(same).unwrap_err();
    assert!(e.to_string().contains("does not come after"), "{e}");

    let mut v = sku();
    v["version"] = 2.into();
    v["fields"].as_array_mut().unwrap().remove(3); // started_on
    v["fields"][6]["type"] = "text".into(); // monthly_turnover_idr, after the removal
    v["fields"][7]["options"].as_array_mut().unwrap().remove(1); // social_aid
    v["fields"][5]["max"] = 50.into(); // workers narrowed
    v["tests"] = json!([]);
    let next = parse(&v.to_string()).unwrap();
    let p = lint::check_publish(&prev, &next);
    for needle in [
        "started_on was removed",
        "monthly_turnover_idr changed type",
        "social_aid",
        "workers narrows",
    ] {
        assert!(has(&p, needle), "{needle} not in {p:?}");
    }
    assert!(catalog.add(next).is_err());

    // Deprecating an option and widening a range is a compatible upgrade.
    let mut v = sku();
    v["version"] = 2.into();
    v["fields"][8]["options"][1]["deprecated"] = true.into();
    v["fields"][6]["max"] = 100000.into();
    let next = parse(&v.to_string()).unwrap();
    assert_eq!(lint::upgrade_blockers(&prev, &next), Vec::<String>::new());
    catalog.add(next).unwrap();
    assert_eq!(
        catalog
            .latest("surat_keterangan_usaha")
            .unwrap()
            .definition()
            .version,
        2
    );
    assert!(catalog.get("surat_keterangan_usaha", 1).is_some());

    // A new required field blocks a draft's upgrade, but may be published.
    let mut v = sku();
    v["version"] = 3.into();
    v["fields"].as_array_mut().unwrap().push(json!({
        "id": "rt", "type": "text", "required": true, "label": {"id": "RT", "en": "RT"}
    }));
    v["tests"] = json!([]);
    let next = parse(&v.to_string()).unwrap();
    assert!(has(
        &lint::upgrade_blockers(&prev, &next),
        "rt is new and required"
    ));
}

#[test]
fn the_form_state_says_what_is_shown_required_and_calculated() {
    let f = form("izin_reklame");
    let mut values = json!({
        "owner_kind": "company", "company_name": "PT Cahaya Reklame Borneo", "nib": "9120301234567",
        "npwp": "01.855.081.4-091.000", "billboard_type": "billboard", "text_content": "Rumah Makan Padang Sederhana",
        "width_m": 6, "height_m": 3, "sides": 2, "location": {"lat": -0.0227, "lon": 109.3336, "accuracy_m": 9},
        "address": {"street": "Jl. Tanjungpura No. 301", "region": "61.71.02.1001"},
        "land_owner_consent": true, "start_date": "2026-12-15", "months": 12
    });
    let s = f.evaluate(&values, today(), Side::Device);
    assert_eq!(s.error_keys(), Vec::<String>::new());
    assert_eq!(s.calculated.get("area_m2"), Some(&json!(36)));
    assert_eq!(s.visible("nib"), Some(true));
    let nib = s.fields.iter().find(|x| x.field == "nib").unwrap();
    assert!(nib.required);
    // Over 24 m²: the construction drawing is required at submission.
    let s = f.evaluate_for_submit(
        &values,
        &["ktp_copy", "design", "site_photo"],
        today(),
        Side::Device,
    );
    assert_eq!(
        s.error_keys(),
        vec!["attachments.construction_drawing: attachment_missing"]
    );
    values["width_m"] = 2.into();
    let s = f.evaluate_for_submit(
        &values,
        &["ktp_copy", "design", "site_photo"],
        today(),
        Side::Device,
    );
    assert!(s.is_ok(), "{:?}", s.error_keys());
    // A person has no company fields; a value left in one is not judged.
    values["owner_kind"] = "person".into();
    values["nib"] = "not a nib".into();
    let s = f.evaluate(&values, today(), Side::Device);
    assert_eq!(s.visible("nib"), Some(false));
    assert!(s.is_ok(), "{:?}", s.error_keys());
    // Messages come in both languages.
    values["land_owner_consent"] = false.into();
    let s = f.evaluate(&values, today(), Side::Device);
    let issue = &s.errors[0];
    assert_eq!(issue.code, "consent_needed");
    assert!(!issue.message.id.is_empty() && !issue.message.en.is_empty());
}

#[test]
fn bad_values_get_typed_errors_and_unknown_keys_are_named() {
    let f = form("surat_keterangan_usaha");
    let s = f.evaluate(&json!([1, 2]), today(), Side::Device);
    assert_eq!(s.error_keys(), vec![": wrong_type"]);
    let s = f.evaluate(
        &json!({
            "business_name": 7, "description": "Jahit", "started_on": "2026-02-30",
            "address": {"street": "Jl. Melati 3", "region": "35.09"},
            "workers": "three", "monthly_turnover_idr": -5, "purpose": "gift", "colour": "red",
            "location": {"lat": 95, "lon": 110, "accuracy_m": 5}
        }),
        today(),
        Side::Device,
    );
    let keys = s.error_keys();
    for k in [
        "business_name: wrong_type",
        "started_on: date_format",
        "workers: wrong_type",
        "purpose: not_an_option",
        "colour: unknown_field",
        "location.lat: latitude",
    ] {
        assert!(keys.contains(&k.to_string()), "{k} not in {keys:?}");
    }
    assert!(
        keys.iter().any(|k| k.starts_with("address.region: ")),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.starts_with("monthly_turnover_idr: ")),
        "{keys:?}"
    );
}

#[test]
fn side_decides_which_rules_run() {
    let mut v = sku();
    v["checks"][1]["on"] = "server".into();
    let d = parse(&v.to_string()).unwrap();
    // The shipped vector expects the server's check; make the vectors
    // about the device-free path.
    let mut d2 = d.clone();
    d2.tests.clear();
    let f = Form::compile(d2).unwrap();
    let values = &d.tests[1].values;
    let device = f.evaluate(values, today(), Side::Device).error_keys();
    let server = f.evaluate(values, today(), Side::Server).error_keys();
    assert!(!device.contains(&"monthly_turnover_idr: turnover_implausible".to_string()));
    assert!(server.contains(&"monthly_turnover_idr: turnover_implausible".to_string()));
}

/// The catalog's verdict on a kind's details and the compiled-in one, as
/// sorted `E field: code` / `W field: code` lines under `details.`, plus
/// the documents each requires (`A role`), nothing attached.
fn both_verdicts(details: &Details) -> (Vec<String>, Vec<String>) {
    let kind = details.kind();
    let mut content = templates::example(kind);
    content.details = details.clone();
    let report = content.validate(today());
    let mut compiled: Vec<String> = report
        .errors
        .iter()
        .map(|e| format!("E {}: {}", e.field, e.code.as_str()))
        .chain(
            report
                .warnings
                .iter()
                .map(|e| format!("W {}: {}", e.field, e.code.as_str())),
        )
        .filter(|k| k.contains(" details."))
        .map(|k| k.replacen(" details.", " ", 1))
        .chain(
            details
                .required_attachments()
                .iter()
                .map(|r| format!("A {}", r.as_str())),
        )
        .collect();
    compiled.sort();
    let mut values = serde_json::to_value(details).unwrap();
    values.as_object_mut().unwrap().remove("kind");
    let s = form(kind.as_str()).evaluate_for_submit(&values, &[], today(), Side::Both);
    let mut catalog: Vec<String> = s
        .errors
        .iter()
        .map(|e| match e.field.strip_prefix("attachments.") {
            Some(role) if e.code == "attachment_missing" => format!("A {role}"),
            _ => format!("E {}: {}", e.field, e.code),
        })
        .chain(
            s.warnings
                .iter()
                .map(|e| format!("W {}: {}", e.field, e.code)),
        )
        .collect();
    catalog.sort();
    (compiled, catalog)
}

/// The compiled-in kinds that are also built-in definitions: all of them.
const CONVERTED: &[Kind] = Kind::ALL;

#[test]
fn the_catalog_and_the_compiled_in_kinds_agree_on_the_templates_and_their_faults() {
    for kind in CONVERTED {
        let (a, b) = both_verdicts(&templates::example(*kind).details);
        assert_eq!(a, b, "{kind}");
        assert!(a.iter().all(|l| l.starts_with("A ")), "{kind}: {a:?}");
    }
    let Details::Complaint(mut c) = templates::example(Kind::Complaint).details else {
        panic!("the complaint template is not a complaint")
    };
    c.text = "  ".into();
    c.occurred_on = Some(crate::time::Date("2027-01-01".into()));
    c.location = Some(crate::model::Location {
        lat: 35.68,
        lon: 139.69,
        accuracy_m: 0.0,
    });
    let (a, b) = both_verdicts(&Details::Complaint(c));
    assert_eq!(a, b);
    assert_eq!(a.len(), 4, "{a:?}");
    let Details::Death(mut d) = templates::example(Kind::Death).details else {
        panic!("the death template is not a death")
    };
    d.date_of_death = crate::time::Date("2026-09-01".into());
    d.reporter_nik = d.deceased_nik.clone();
    d.witnesses[1].nik = d.witnesses[0].nik.clone();
    d.witnesses[0].sex = Some(crate::identifiers::Sex::Female);
    let (a, b) = both_verdicts(&Details::Death(d));
    assert_eq!(a, b);
    for line in [
        "W date_of_death: late_report",
        "E reporter_nik: duplicate",
        "E witnesses[1].nik: duplicate",
        "E witnesses[0].nik: nik_mismatch",
    ] {
        assert!(a.contains(&line.to_string()), "{line} not in {a:?}");
    }
}

proptest! {
    // Cases enough for each converted kind to get its few hundred.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Every converted kind, on arbitrary details (malformed identifiers,
    /// blank texts, impossible dates and coordinates, any list lengths).
    #[test]
    fn the_catalog_and_the_compiled_in_kinds_agree(
        details in any::<Details>().prop_filter("a converted kind", |d| CONVERTED.contains(&d.kind())),
    ) {
        let (a, b) = both_verdicts(&details);
        prop_assert_eq!(a, b);
    }
}

proptest! {
    /// The template's parents and times, mutated: the NIKs' sexes, the
    /// parents equal, times of day near the edges.
    #[test]
    fn the_catalog_and_the_compiled_in_birth_agree_near_valid(
        swap in any::<bool>(), same in any::<bool>(), no_father in any::<bool>(),
        hour in 0u8..30, minute in 0u8..70, short in any::<bool>(),
    ) {
        let Details::Birth(mut b) = templates::example(Kind::Birth).details else {
            panic!("the birth template is not a birth")
        };
        if swap {
            let father = b.father_nik.clone().unwrap();
            b.father_nik = Some(b.mother_nik.clone());
            b.mother_nik = father;
        }
        if same {
            b.father_nik = Some(b.mother_nik.clone());
        }
        if no_father {
            b.father_nik = None;
        }
        b.birth_time = Some(if short { format!("{hour}:{minute}") } else { format!("{hour:02}:{minute:02}") });
        let (a, b) = both_verdicts(&Details::Birth(b));
        prop_assert_eq!(a, b);
    }

    /// The template mutated where its rules are: who applies, the KBLI
    /// list, the village, the postal code.
    #[test]
    fn the_catalog_and_the_compiled_in_business_licence_agree_near_valid(
        nik in any::<bool>(), company in proptest::option::of("[A-Z0-9 ./-]{0,60}"),
        kbli in proptest::collection::vec("[0-9]{4,6}", 0..23), region in "[0-9]{2}(\\.[0-9]{2}){0,2}(\\.[0-9]{4})?",
        postal in proptest::option::of("[0-9]{4,6}"),
    ) {
        let Details::BusinessLicence(mut b) = templates::example(Kind::BusinessLicence).details else {
            panic!("the business licence template is not one")
        };
        if !nik {
            b.applicant_nik = None;
        }
        b.company_legal_number = company;
        b.kbli = kbli.into_iter().map(crate::identifiers::Kbli).collect();
        b.address.region = crate::identifiers::RegionCode(region);
        b.address.postal_code = postal;
        let (a, b) = both_verdicts(&Details::BusinessLicence(b));
        prop_assert_eq!(a, b);
    }

    /// Arbitrary NIKs rarely agree with anything; mutate the template's
    /// well-formed people instead, so the agreement rules are exercised.
    #[test]
    fn the_catalog_and_the_compiled_in_death_agree_near_valid(
        day in 1u8..=31, month in 1u8..=12, female in any::<bool>(), days_ago in 0i64..120,
        same_reporter in any::<bool>(), twin in any::<bool>(),
    ) {
        let Details::Death(mut d) = templates::example(Kind::Death).details else {
            panic!("the death template is not a death")
        };
        let birth = format!("1985-{month:02}-{day:02}");
        d.witnesses[0].birth_date = Some(crate::time::Date(birth));
        d.witnesses[0].sex = Some(if female { crate::identifiers::Sex::Female } else { crate::identifiers::Sex::Male });
        let died = CivilDate::from_days(today().to_days() - days_ago);
        d.date_of_death = crate::time::Date(died.to_string());
        if same_reporter {
            d.reporter_nik = d.deceased_nik.clone();
        }
        if twin {
            d.witnesses[1].nik = d.witnesses[0].nik.clone();
        }
        let (a, b) = both_verdicts(&Details::Death(d));
        prop_assert_eq!(a, b);
    }
}

fn schema() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(include_str!("../../../catalog/service.schema.json")).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

#[test]
fn every_shipped_definition_is_valid_by_the_json_schema() {
    let schema = schema();
    for (name, json) in BUILTIN.iter().chain(EXAMPLES) {
        let v: Value = serde_json::from_str(json).unwrap();
        let errors: Vec<String> = schema.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    // Every file in catalog/services/ is shipped (none forgotten in
    // BUILTIN), and every one of catalog/examples/ is checked here.
    for (folder, list) in [("services", BUILTIN), ("examples", EXAMPLES)] {
        let dir = format!("{}/../catalog/{folder}", env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut shipped: Vec<String> = list.iter().map(|(n, _)| n.to_string()).collect();
        shipped.sort();
        assert_eq!(files, shipped, "catalog/{folder}");
    }
}

#[test]
fn every_shipped_code_list_is_valid_by_its_schema_and_the_check() {
    let schema: Value =
        serde_json::from_str(include_str!("../../../catalog/code_list.schema.json")).unwrap();
    let schema = jsonschema::draft202012::new(&schema).unwrap();
    for (name, json) in CODE_LIST_EXAMPLES {
        let v: Value = serde_json::from_str(json).unwrap();
        let errors: Vec<String> = schema.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
        let list = codes::parse_code_list(json).unwrap();
        assert_eq!(
            codes::check_code_list(&list),
            Vec::<String>::new(),
            "{name}"
        );
        assert!(codes::is_code_list(json));
    }
    let dir = format!("{}/../catalog/code-lists", env!("CARGO_MANIFEST_DIR"));
    let files = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(files, CODE_LIST_EXAMPLES.len(), "catalog/code-lists");
    // The schema refuses what the parser refuses.
    let mut bad: Value = serde_json::from_str(CODE_LIST_EXAMPLES[0].1).unwrap();
    bad["codes"][0]["colour"] = "red".into();
    assert!(!schema.is_valid(&bad));
    assert!(codes::parse_code_list(&bad.to_string()).is_err());
    let mut bad: Value = serde_json::from_str(CODE_LIST_EXAMPLES[0].1).unwrap();
    bad["codes"][0]["code"] = "a b".into();
    assert!(!schema.is_valid(&bad));
    assert!(!codes::check_code_list(&codes::parse_code_list(&bad.to_string()).unwrap()).is_empty());
}

#[test]
fn names_are_the_formats_own() {
    let schema: Value =
        serde_json::from_str(include_str!("../../../catalog/service.schema.json")).unwrap();
    let names = |v: &Value| -> Vec<String> {
        v["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    };
    let types = names(&schema["$defs"]["field"]["properties"]["type"]);
    assert_eq!(types.len(), 24);
    for n in types {
        let t: FieldType = serde_json::from_value(json!(n)).unwrap();
        assert_eq!(t.as_str(), n);
    }
    for n in names(&schema["properties"]["category"]) {
        let c: Category = serde_json::from_value(json!(n)).unwrap();
        assert_eq!(c.as_str(), n);
    }
    for n in names(&schema["properties"]["level"]) {
        let l: Level = serde_json::from_value(json!(n)).unwrap();
        assert_eq!(l.as_str(), n);
    }
}

#[test]
fn the_json_schema_and_the_parser_refuse_the_same_shapes() {
    let schema = schema();
    let mut bad = Vec::new();
    let mut v = sku();
    v["fields"][0]["type"] = "signature".into();
    bad.push(v);
    let mut v = sku();
    v["fields"][3]["colour"] = "red".into();
    bad.push(v);
    let mut v = sku();
    v["category"] = "festival".into();
    bad.push(v);
    let mut v = sku();
    v["name"].as_object_mut().unwrap().remove("en");
    bad.push(v);
    let mut v = sku();
    v["workflow"]["sla_days"]["stamped"] = 3.into();
    bad.push(v);
    for v in bad {
        assert!(!schema.is_valid(&v), "the schema accepts {v}");
        let parsed = parse(&v.to_string()).map(|d| lint::check(&d, &Default::default()));
        assert!(
            !matches!(&parsed, Ok(p) if p.is_empty()),
            "the engine accepts what the schema refuses"
        );
    }
}

/// The SKTM example published on top of the built-in catalog.
fn with_sktm() -> (Catalog, String) {
    let mut catalog = builtin().unwrap();
    let (_, json) = EXAMPLES[0];
    catalog.add_published(json, None).unwrap();
    (catalog, definition_hash(json))
}

/// A draft of the SKTM letter with its first test vector's answers.
fn sktm_request(catalog: &Catalog, hash: &str) -> crate::model::Request {
    let form = catalog.latest("surat_keterangan_tidak_mampu").unwrap();
    let d = form.definition();
    let answers = d.example().unwrap().as_object().unwrap().clone();
    let mut content = templates::example(Kind::Service);
    content.details = Details::Service(crate::model::ServiceRequest::new(d, hash, &answers));
    crate::model::Request::draft(
        content,
        "warga-1",
        crate::lifecycle::Role::Resident,
        crate::Timestamp::now(),
    )
}

fn codes(issues: &[Issue]) -> Vec<String> {
    issues
        .iter()
        .map(|i| format!("{} {}", i.field, i.code))
        .collect()
}

#[test]
fn a_service_request_is_judged_by_the_definition_it_names() {
    let (catalog, hash) = with_sktm();
    let today = crate::Timestamp::now().today_in_indonesia();
    let mut r = sktm_request(&catalog, &hash);
    assert_eq!(
        codes(&catalog.check_request(&r, today, Side::Device, false, &NoCodes)),
        Vec::<String>::new()
    );
    // Submission needs its documents.
    let missing = codes(&catalog.check_request(&r, today, Side::Server, true, &NoCodes));
    assert!(
        missing.contains(&"attachments.ktp_copy attachment_missing".to_owned()),
        "{missing:?}"
    );
    // An answer broken: named under details.answers, by the rule's code.
    let Details::Service(s) = &mut r.content.details else {
        unreachable!()
    };
    s.answers.insert("kk_number".into(), "\"12\"".into());
    s.answers.remove("purpose");
    let broken = codes(&catalog.check_request(&r, today, Side::Device, false, &NoCodes));
    assert!(
        broken.contains(&"details.answers.kk_number kk_format".to_owned()),
        "{broken:?}"
    );
    assert!(
        broken.contains(&"details.answers.purpose required".to_owned()),
        "{broken:?}"
    );
}

#[test]
fn an_unknown_service_a_changed_definition_and_a_retired_version_are_refused() {
    let (catalog, hash) = with_sktm();
    let today = crate::Timestamp::now().today_in_indonesia();
    let r = sktm_request(&catalog, &hash);
    // A device without the service (not delivered yet).
    let bare = builtin().unwrap();
    assert_eq!(
        codes(&bare.check_request(&r, today, Side::Server, false, &NoCodes)),
        vec!["details.service unknown_service"]
    );
    // A definition other than the one published, under the same version.
    let mut forged = r.clone();
    let Details::Service(s) = &mut forged.content.details else {
        unreachable!()
    };
    s.hash = "0".repeat(64);
    assert_eq!(
        codes(&catalog.check_request(&forged, today, Side::Server, false, &NoCodes)),
        vec!["details.hash definition_mismatch"]
    );
    // Retired: created before accept-until, still taken; after, refused.
    let mut retired = catalog.clone();
    let created = r.created_at.today_in_indonesia();
    assert!(retired.retire("surat_keterangan_tidak_mampu", 1, created));
    assert!(
        retired
            .check_request(&r, today, Side::Server, false, &NoCodes)
            .is_empty()
    );
    let yesterday = CivilDate::from_days(created.to_days() - 1);
    retired.retire("surat_keterangan_tidak_mampu", 1, yesterday);
    assert_eq!(
        codes(&retired.check_request(&r, today, Side::Server, false, &NoCodes)),
        vec!["details.version service_retired"]
    );
    assert!(!retired.retire("no_such_service", 1, yesterday));
}

#[test]
fn service_answers_keep_their_json_and_name_their_niks() {
    let (catalog, hash) = with_sktm();
    let r = sktm_request(&catalog, &hash);
    let json = serde_json::to_value(&r.content).unwrap();
    // In JSON the answers are values, not texts.
    assert!(json["details"]["answers"]["members"].is_array(), "{json}");
    let back: crate::model::RequestContent = serde_json::from_value(json).unwrap();
    assert_eq!(back, r.content);
    let niks: Vec<String> = r.content.niks().into_iter().map(|n| n.0).collect();
    // The applicant and the three household members.
    assert!(niks.contains(&"6171031507850002".to_owned()), "{niks:?}");
    assert_eq!(niks.len(), 4, "{niks:?}");
}

#[test]
fn the_rules_table_learns_site_checks_from_the_definition() {
    use crate::lifecycle::{Role, Status};
    use crate::rules::{FIELD_CHECKED, Part, may_write};
    let catalog = builtin().unwrap();
    // The built-in definitions say what the compiled-in kinds say.
    for &kind in Kind::ALL {
        let d = catalog.latest(kind.as_str()).unwrap().definition();
        assert_eq!(
            d.workflow.field_check,
            FIELD_CHECKED.contains(&kind),
            "{kind:?}"
        );
    }
    // A catalog service: its definition decides.
    let (catalog, hash) = with_sktm();
    let r = sktm_request(&catalog, &hash);
    let subject = catalog.subject(&r);
    assert!(!subject.field_checked);
    assert!(!may_write(
        Role::Officer,
        Part::Attachments,
        subject,
        Status::InReview
    ));
    let mut v: Value = serde_json::from_str(EXAMPLES[0].1).unwrap();
    v["version"] = json!(2);
    v["workflow"]["field_check"] = json!(true);
    let mut checked = catalog.clone();
    checked.add_published(&v.to_string(), None).unwrap();
    let mut r2 = r.clone();
    if let Details::Service(s) = &mut r2.content.details {
        s.version = 2;
    }
    let subject = checked.subject(&r2);
    assert!(subject.field_checked);
    assert!(may_write(
        Role::Officer,
        Part::Attachments,
        subject,
        Status::InReview
    ));
    // A service the catalog does not hold is not verified on site.
    assert!(!builtin().unwrap().subject(&r).field_checked);
}

#[test]
fn hostile_answers_cost_no_more_than_their_count_allows() {
    let (catalog, hash) = with_sktm();
    let today = crate::Timestamp::now().today_in_indonesia();
    let mut r = sktm_request(&catalog, &hash);
    let Details::Service(s) = &mut r.content.details else {
        unreachable!()
    };
    // A repeat of a hundred thousand entries: a count, not walked.
    let many = format!("[{}]", vec!["{}"; 100_000].join(","));
    s.answers.insert("members".into(), many);
    let issues = catalog.check_request(&r, today, Side::Server, false, &NoCodes);
    assert!(
        issues.len() <= crate::catalog::MAX_ISSUES,
        "{}",
        issues.len()
    );
    // Over the answers' size limits: the shape alone is judged.
    assert!(
        codes(&issues).contains(&"details.answers.members too_long".to_owned())
            || codes(&issues).contains(&"details.answers.members count".to_owned()),
        "{:?}",
        codes(&issues)
    );
    let Details::Service(s) = &mut r.content.details else {
        unreachable!()
    };
    s.answers.insert(
        "members".into(),
        format!("[{}]", vec!["{}"; 5_000].join(",")),
    );
    let issues = codes(&catalog.check_request(&r, today, Side::Server, false, &NoCodes));
    assert!(
        issues.contains(&"details.answers.members count".to_owned()) && issues.len() <= 2,
        "{issues:?}"
    );
    // A key that is not an id is never echoed.
    let Details::Service(s) = &mut r.content.details else {
        unreachable!()
    };
    s.answers.remove("members");
    let mut values = s.values();
    values["Siti Aminah 3273014108900007"] = json!(1);
    let form = catalog.latest("surat_keterangan_tidak_mampu").unwrap();
    let state = form.evaluate(&values, today, Side::Server);
    let text = format!("{:?}", state.errors);
    assert!(
        !text.contains("Siti") && !text.contains("3273014108900007"),
        "{text}"
    );
    assert!(
        state
            .errors
            .iter()
            .any(|e| e.code == "unknown_field" && e.field.is_empty())
    );
    // A created_at at the end of time does not overflow.
    r.created_at = crate::Timestamp(i64::MAX);
    let _ = catalog.check_request(&r, today, Side::Server, false, &NoCodes);
}
