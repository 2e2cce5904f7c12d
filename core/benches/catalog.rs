//! The catalog's form engine beside today's compiled-in validation, in the
//! same run (issue 15):
//!
//! - `evaluate/large`: a 207-field definition (20 groups of a person's
//!   details, a 50-entry repeat of household members) with 63 rules, on
//!   one keystroke's values; beside it `validate/large`, the same checks
//!   written in Rust over typed structs, as a compiled-in kind would.
//! - `evaluate/complaint` beside `validate/complaint`: the shipped
//!   complaint definition and the compiled-in `Complaint` on the same
//!   varied complaints.
//! - `create_submit/catalog` beside `create_submit/compiled`: a draft
//!   created and submitted in an encrypted store, the same varied
//!   complaints filed through the built-in `complaint` service (judged by
//!   its definition) and through the compiled-in kind.
//! - the catalog's bytes on the wire (printed): every shipped definition
//!   as a first delivery in a sync answer, and one service as a delta,
//!   against the definitions' JSON compressed alone with zstd -19.
//!
//! Every value is varied (names, NIKs agreeing with birth dates, regions,
//! coordinates, texts) from a seeded generator, not one template repeated.
//! `cargo bench -p sambung-core --bench catalog` measures and prints the
//! ratios and goals; `cargo test --benches` runs it once.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use sambung_core::catalog::{self, Form, Side, check_email};
use sambung_core::crypto::DataKey;
use sambung_core::identifiers::{Nik, Phone, RegionCode, Sex};
use sambung_core::lifecycle::Role;
use sambung_core::model::{Complaint, ComplaintCategory, Details, Kind, Location, ServiceRequest};
use sambung_core::protocol::{self, CatalogEntry, SyncResponse};
use sambung_core::store::{Identity, Secret, Store};
use sambung_core::templates;
use sambung_core::validation::Code;
use sambung_core::{CivilDate, Date};
use serde::Serialize;
use serde_json::{Value, json};
use support::{Rng, full_run, median_ns, output_dir, verdict};

const SECTIONS: usize = 20;
const RELATIONSHIPS: &[&str] = &["head", "spouse", "child", "parent", "other"];
const MEMBERS: usize = 50;

fn today() -> CivilDate {
    CivilDate::new(2026, 12, 3).unwrap()
}

fn text(id: &str, en: &str) -> Value {
    json!({"id": id, "en": en})
}

/// The large definition: `s01`…`s20`, each a person's details with three
/// rules (phone required when chosen, e-mail shown when chosen, NIK agreeing
/// with birth date and sex), then `members` and a calculated total.
fn large_definition() -> Value {
    let mut fields = Vec::new();
    for s in 1..=SECTIONS {
        let g = format!("s{s:02}");
        let contact = json!({"var": format!("{g}.contact")});
        fields.push(json!({
            "id": g, "type": "group", "required": true, "label": text(&format!("Bagian {s}"), &format!("Part {s}")),
            "fields": [
                {"id": "name", "type": "text", "required": true, "label": text("Nama", "Name")},
                {"id": "nik", "type": "nik", "required": true, "label": text("NIK", "NIK"),
                 "constraints": [{"code": "nik_mismatch",
                    "check": {"nik_agrees": [{"var": format!("{g}.nik")}, {"var": format!("{g}.birth_date")}, {"var": format!("{g}.sex")}, {"var": "today"}]},
                    "message": text("NIK tidak sesuai tanggal lahir/jenis kelamin", "The NIK does not match the birth date or sex")}]},
                {"id": "birth_date", "type": "date", "past": true, "required": true, "label": text("Tanggal lahir", "Birth date")},
                {"id": "sex", "type": "choice", "required": true, "label": text("Jenis kelamin", "Sex"),
                 "options": [{"value": "male", "label": text("Laki-laki", "Male")}, {"value": "female", "label": text("Perempuan", "Female")}]},
                {"id": "contact", "type": "choice", "required": true, "label": text("Dihubungi lewat", "Contact by"),
                 "options": [{"value": "phone", "label": text("Telepon", "Phone")}, {"value": "email", "label": text("Surel", "E-mail")}]},
                {"id": "phone", "type": "phone", "label": text("Telepon", "Phone"), "required": {"==": [contact, "phone"]}},
                {"id": "email", "type": "email", "label": text("Surel", "E-mail"), "required": true, "relevant": {"==": [contact, "email"]}},
                {"id": "region", "type": "region", "level": "village", "required": true, "label": text("Desa/kelurahan", "Village")},
                {"id": "income", "type": "money", "required": true, "label": text("Penghasilan", "Income")}
            ]
        }));
    }
    let relationships: Vec<Value> = RELATIONSHIPS
        .iter()
        .map(|v| json!({"value": v, "label": text(v, v)}))
        .collect();
    fields.push(json!({
        "id": "members", "type": "repeat", "min": 1, "max": 60, "required": true, "label": text("Anggota keluarga", "Members"),
        "fields": [
            {"id": "name", "type": "text", "required": true, "label": text("Nama", "Name")},
            {"id": "nik", "type": "nik", "required": true, "label": text("NIK", "NIK")},
            {"id": "birth_date", "type": "date", "past": true, "required": true, "label": text("Tanggal lahir", "Birth date"),
             "constraints": [{"code": "too_old", "check": {"<": [{"age_years": [{"var": "item.birth_date"}, {"var": "today"}]}, 130]},
                              "message": text("Umur tidak wajar", "Implausible age")}]},
            {"id": "relationship", "type": "choice", "required": true, "label": text("Hubungan", "Relationship"),
             "options": relationships},
            {"id": "income", "type": "money", "required": true, "label": text("Penghasilan", "Income")}
        ]
    }));
    fields.push(json!({
        "id": "total_income", "type": "money", "label": text("Total penghasilan", "Total income"),
        "calculate": {"reduce": [{"var": "members"}, {"+": [{"var": "accumulator"}, {"var": "current.income"}]}, 0]}
    }));
    json!({
        "format": 1, "id": "bench_large", "version": 1,
        "name": text("Formulir besar", "Large form"), "description": text("Untuk benchmark", "For the benchmark"),
        "category": "other", "level": "kabupaten", "standard": {"days": 5, "fee_idr": 0},
        "workflow": {"statuses": ["draft", "submitted", "approved", "rejected"]},
        "fields": fields,
        "checks": [{"code": "income_implausible", "fields": ["total_income"],
                    "check": {"<=": [{"var": "total_income"}, 1000000000]},
                    "message": text("Total penghasilan tidak wajar", "Implausible total income")}]
    })
}

const GIVEN: &[&str] = &[
    "Siti",
    "Budi",
    "Agus",
    "Dewi",
    "Yohanes",
    "Ni Made",
    "I Wayan",
    "Rahmat",
    "Nur",
    "Fransiska",
    "Ahmad",
    "Maria",
    "Putu",
    "Teuku",
    "Cut",
    "Andi",
    "La Ode",
    "Wa Ode",
    "Kristina",
    "Hendra",
];
const FAMILY: &[&str] = &[
    "Rahayu",
    "Santoso",
    "Siregar",
    "Nainggolan",
    "Wibowo",
    "Pattimura",
    "Lumbantobing",
    "Hasibuan",
    "Suryadi",
    "Tanjung",
    "Daeng Matta",
    "Manuputty",
    "Sembiring",
    "Kusuma",
    "Ginting",
    "Simanjuntak",
];
/// Real kecamatan codes (province, regency, district) across the islands.
const DISTRICTS: &[&str] = &[
    "32.73.01", "31.71.03", "35.78.13", "33.74.11", "61.71.02", "51.03.01", "73.71.01", "11.01.01",
    "64.02.01", "91.01.01", "18.71.02", "72.71.04", "82.71.01", "53.71.03", "16.71.05",
];

#[derive(Serialize, Clone)]
struct Section {
    name: String,
    nik: Nik,
    birth_date: Date,
    sex: Sex,
    contact: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<Phone>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    region: RegionCode,
    income: u64,
}

#[derive(Serialize, Clone)]
struct Member {
    name: String,
    nik: Nik,
    birth_date: Date,
    relationship: String,
    income: u64,
}

/// A person: a name, a birth date, and a NIK of their district that agrees
/// with both.
fn person(rng: &mut Rng) -> (String, Nik, CivilDate, Sex, String) {
    let name = format!("{} {}", rng.pick(GIVEN), rng.pick(FAMILY));
    let sex = if rng.below(2) == 0 {
        Sex::Male
    } else {
        Sex::Female
    };
    let birth = CivilDate::new(
        1940 + rng.below(85) as i32,
        1 + rng.below(12) as u8,
        1 + rng.below(28) as u8,
    )
    .unwrap();
    let district = rng.pick(DISTRICTS).to_string();
    let day = birth.day + if sex == Sex::Female { 40 } else { 0 };
    let nik = format!(
        "{}{day:02}{:02}{:02}{:04}",
        district.replace('.', ""),
        birth.month,
        birth.year % 100,
        1 + rng.below(9998)
    );
    (name, Nik(nik), birth, sex, district)
}

fn section(rng: &mut Rng) -> Section {
    let (name, nik, birth, sex, district) = person(rng);
    let by_phone = rng.below(3) > 0;
    Section {
        email: (!by_phone).then(|| {
            format!(
                "{}.{}@mail.co.id",
                name.split(' ').next().unwrap().to_lowercase(),
                rng.below(999)
            )
        }),
        name,
        nik,
        birth_date: Date(birth.to_string()),
        sex,
        contact: if by_phone { "phone" } else { "email" }.into(),
        phone: by_phone.then(|| Phone(format!("08{}", 1_000_000_000 + rng.below(8_999_999_999)))),
        region: RegionCode(format!("{district}.{}", 1001 + rng.below(20))),
        income: 500_000 + rng.below(40) * 250_000,
    }
}

fn member(rng: &mut Rng) -> Member {
    let (name, nik, birth, _, _) = person(rng);
    Member {
        name,
        nik,
        birth_date: Date(birth.to_string()),
        relationship: rng.pick(RELATIONSHIPS).to_string(),
        income: rng.below(20) * 300_000,
    }
}

struct Large {
    sections: Vec<Section>,
    members: Vec<Member>,
}

impl Large {
    fn json(&self) -> Value {
        let mut o = serde_json::Map::new();
        for (i, s) in self.sections.iter().enumerate() {
            o.insert(format!("s{:02}", i + 1), serde_json::to_value(s).unwrap());
        }
        o.insert(
            "members".into(),
            serde_json::to_value(&self.members).unwrap(),
        );
        Value::Object(o)
    }
}

fn person_checks(
    out: &mut Vec<(String, Code)>,
    at: &str,
    name: &str,
    nik: &Nik,
    birth: &Date,
    today: CivilDate,
) -> Option<CivilDate> {
    if name.trim().is_empty() {
        out.push((format!("{at}.name"), Code::Required));
    } else if name.chars().count() > 200 {
        out.push((format!("{at}.name"), Code::TooLong));
    }
    for c in nik.check() {
        out.push((format!("{at}.nik"), c));
    }
    match birth.civil() {
        None => out.push((format!("{at}.birth_date"), Code::DateFormat)),
        Some(d) if d > today => out.push((format!("{at}.birth_date"), Code::DateInFuture)),
        Some(d) => return Some(d),
    }
    None
}

/// The same checks as the large definition, in Rust over typed values: what
/// a compiled-in kind of this size would run.
fn validate_large(l: &Large, today: CivilDate) -> Vec<(String, Code)> {
    let mut out = Vec::new();
    for (i, s) in l.sections.iter().enumerate() {
        let at = format!("s{:02}", i + 1);
        let birth = person_checks(&mut out, &at, &s.name, &s.nik, &s.birth_date, today);
        if let Some(b) = birth
            && s.nik.check().is_empty()
            && !s.nik.agrees_with(b, s.sex)
        {
            out.push((format!("{at}.nik"), Code::NikMismatch));
        }
        match (s.contact.as_str(), &s.phone, &s.email) {
            ("phone", None, _) => out.push((format!("{at}.phone"), Code::Required)),
            ("email", _, None) => out.push((format!("{at}.email"), Code::Required)),
            ("phone" | "email", _, _) => {}
            _ => out.push((format!("{at}.contact"), Code::NotAnOption)),
        }
        if let Some(p) = &s.phone {
            for c in p.check() {
                out.push((format!("{at}.phone"), c));
            }
        }
        if let (Some(e), "email") = (&s.email, s.contact.as_str()) {
            for c in check_email(e) {
                out.push((format!("{at}.email"), c));
            }
        }
        for c in s.region.check_village() {
            out.push((format!("{at}.region"), c));
        }
    }
    let mut total = 0u64;
    for (i, m) in l.members.iter().enumerate() {
        let at = format!("members[{i}]");
        if let Some(b) = person_checks(&mut out, &at, &m.name, &m.nik, &m.birth_date, today)
            && today.year - b.year >= 130
        {
            out.push((format!("{at}.birth_date"), Code::OutOfRange));
        }
        if !RELATIONSHIPS.contains(&m.relationship.as_str()) {
            out.push((format!("{at}.relationship"), Code::NotAnOption));
        }
        total += m.income;
    }
    if total > 1_000_000_000 {
        out.push(("total_income".into(), Code::OutOfRange));
    }
    out
}

fn complaints(rng: &mut Rng, n: usize) -> Vec<Complaint> {
    const WHAT: &[&str] = &[
        "Jalan berlubang di depan SD Negeri {} sejak musim hujan, sudah dua motor jatuh.",
        "Lampu penerangan jalan di gang {} mati lebih dari sebulan, warga takut keluar malam.",
        "Petugas kelurahan meminta uang Rp{}.000 untuk surat pengantar yang seharusnya gratis.",
        "Sampah menumpuk di TPS pasar, tidak diangkut {} hari, baunya sampai ke rumah warga.",
        "Saluran air di RT {} tersumbat sehingga rumah warga tergenang setiap hujan deras.",
        "Antrean di puskesmas dibuka jam {} padahal jadwalnya jam tujuh pagi.",
    ];
    let cats = [
        ComplaintCategory::Infrastructure,
        ComplaintCategory::Environment,
        ComplaintCategory::IllegalLevy,
        ComplaintCategory::PublicService,
    ];
    (0..n)
        .map(|_| Complaint {
            category: *rng.pick(&cats),
            text: rng
                .pick(WHAT)
                .replace("{}", &(2 + rng.below(40)).to_string()),
            location: (rng.below(4) > 0).then(|| Location {
                lat: rng.float(-10.5, 5.5),
                lon: rng.float(95.5, 140.5),
                accuracy_m: rng.float(3.0, 60.0),
            }),
            occurred_on: Some(Date(format!(
                "2026-{:02}-{:02}",
                1 + rng.below(11),
                1 + rng.below(28)
            ))),
            anonymous: rng.below(5) == 0,
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let mut rng = Rng::new(15);
    let form = Form::compile(catalog::parse(&large_definition().to_string()).unwrap()).unwrap();
    let problems = catalog::lint::check(form.definition(), &Default::default());
    assert!(problems.is_empty(), "{problems:?}");
    // Eight households: each call evaluates the next, as keystrokes would.
    let households: Vec<Large> = (0..8)
        .map(|_| Large {
            sections: (0..SECTIONS).map(|_| section(&mut rng)).collect(),
            members: (0..MEMBERS).map(|_| member(&mut rng)).collect(),
        })
        .collect();
    let values: Vec<Value> = households.iter().map(Large::json).collect();
    for (h, v) in households.iter().zip(&values) {
        let state = form.evaluate(v, today(), Side::Device);
        // Both sides must agree that the generated data is valid, or one of
        // them is measuring error paths.
        assert!(state.is_ok(), "{:?}", state.error_keys());
        assert!(validate_large(h, today()).is_empty());
    }
    let mut g = c.benchmark_group("catalog");
    let mut i = 0;
    g.bench_function("evaluate_large", |b| {
        b.iter(|| {
            i = (i + 1) % values.len();
            black_box(form.evaluate(&values[i], today(), Side::Device))
        })
    });
    g.bench_function("validate_large", |b| {
        b.iter(|| {
            i = (i + 1) % households.len();
            black_box(validate_large(&households[i], today()))
        })
    });

    let builtin = catalog::builtin().unwrap();
    let complaint = builtin.latest("complaint").unwrap();
    let typed = complaints(&mut rng, 64);
    let contents: Vec<_> = typed
        .iter()
        .map(|c| {
            let mut content = templates::example(Kind::Complaint);
            content.details = Details::Complaint(c.clone());
            content
        })
        .collect();
    let json: Vec<Value> = typed
        .iter()
        .map(|c| {
            let mut v = serde_json::to_value(c).unwrap();
            v.as_object_mut().unwrap().remove("kind");
            v
        })
        .collect();
    g.bench_function("evaluate_complaint", |b| {
        b.iter(|| {
            i = (i + 1) % json.len();
            black_box(complaint.evaluate(&json[i], today(), Side::Device))
        })
    });
    g.bench_function("validate_complaint", |b| {
        b.iter(|| {
            i = (i + 1) % contents.len();
            black_box(contents[i].validate(today()))
        })
    });
    g.finish();

    // Create + submit in a store: the compiled-in kind, and the same
    // answers as the built-in complaint service (the catalog's path).
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(
        &dir.path().join("s"),
        &Secret::Key(DataKey::from_bytes([7; 32])),
        Identity {
            user: "resident-bench".into(),
            role: Role::Resident,
        },
    )
    .unwrap();
    let hash = builtin.published("complaint", 1).unwrap().hash.clone();
    let named: Vec<_> = contents
        .iter()
        .filter(|c| !matches!(&c.details, Details::Complaint(d) if d.anonymous))
        .cloned()
        .collect();
    let as_service: Vec<_> = named
        .iter()
        .map(|c| {
            let Details::Complaint(d) = &c.details else {
                unreachable!()
            };
            let mut v = serde_json::to_value(d).unwrap();
            v.as_object_mut().unwrap().remove("kind");
            let mut s = c.clone();
            s.details = Details::Service(ServiceRequest::new(
                complaint.definition(),
                &hash,
                v.as_object().unwrap(),
            ));
            s
        })
        .collect();
    // Both paths must take every one of them.
    for c in named.iter().chain(&as_service) {
        let id = store.create(c.clone()).unwrap();
        store.submit(&id).unwrap();
    }
    let mut g = c.benchmark_group("create_submit");
    g.bench_function("compiled", |b| {
        b.iter(|| {
            i = (i + 1) % named.len();
            let id = store.create(named[i].clone()).unwrap();
            black_box(store.submit(&id).unwrap())
        })
    });
    g.bench_function("catalog", |b| {
        b.iter(|| {
            i = (i + 1) % as_service.len();
            let id = store.create(as_service[i].clone()).unwrap();
            black_box(store.submit(&id).unwrap())
        })
    });
    g.finish();
}

/// Bytes of the catalog on the wire: (first delivery of every shipped
/// definition, their JSON alone with zstd -19, one service as a delta,
/// its JSON alone with zstd -19).
fn wire_bytes() -> (usize, usize, usize, usize) {
    let entry = |json: &str| CatalogEntry::published(json).unwrap();
    let answer = |entries: Vec<CatalogEntry>| SyncResponse {
        catalog_seq: entries.len() as u64,
        catalog: entries,
        ..SyncResponse::at(91_234, 0x5a3c_11e2)
    };
    let all: Vec<&str> = catalog::BUILTIN
        .iter()
        .chain(catalog::EXAMPLES)
        .map(|(_, j)| *j)
        .collect();
    let first = protocol::encode(&answer(all.iter().map(|j| entry(j)).collect()))
        .unwrap()
        .len();
    let joined: String = all.concat();
    let first_base = zstd::bulk::compress(joined.as_bytes(), 19).unwrap().len();
    let one = catalog::EXAMPLES[0].1;
    let delta = protocol::encode(&answer(vec![entry(one)])).unwrap().len();
    let delta_base = zstd::bulk::compress(one.as_bytes(), 19).unwrap().len();
    (first, first_base, delta, delta_base)
}

fn report() {
    if !full_run() {
        return;
    }
    println!("\n== sambung-core catalog benchmarks (medians; baselines measured in this run)");
    if let (Some(e), Some(v)) = (
        median_ns("catalog", "evaluate_large"),
        median_ns("catalog", "validate_large"),
    ) {
        println!(
            "evaluate, 207 fields, 63 rules, 50 entries: {:>8.1} µs  vs compiled-in {:>7.1} µs  ratio {:>5.1}×  goals ≤ 1 ms ({}), ≤ 3× ({})",
            e / 1e3,
            v / 1e3,
            e / v,
            verdict(e <= 1e6),
            verdict(e / v <= 3.0)
        );
    }
    if let (Some(e), Some(v)) = (
        median_ns("catalog", "evaluate_complaint"),
        median_ns("catalog", "validate_complaint"),
    ) {
        println!(
            "evaluate, complaint:                        {:>8.1} µs  vs compiled-in {:>7.1} µs  ratio {:>5.1}×",
            e / 1e3,
            v / 1e3,
            e / v
        );
    }
    if let (Some(s), Some(c)) = (
        median_ns("create_submit", "catalog"),
        median_ns("create_submit", "compiled"),
    ) {
        println!(
            "create + submit, complaint, in a store:     {:>8.1} µs  vs compiled-in {:>7.1} µs  ratio {:>5.2}×  goal ≤ 1.2× ({})",
            s / 1e3,
            c / 1e3,
            s / c,
            verdict(s / c <= 1.2)
        );
    }
    let (first, first_base, delta, delta_base) = wire_bytes();
    println!(
        "catalog on the wire: {} definitions first delivered {first} B vs their JSON at zstd -19 {first_base} B ({:.2}×); one service as a delta {delta} B vs {delta_base} B ({:.2}×)",
        catalog::BUILTIN.len() + catalog::EXAMPLES.len(),
        first as f64 / first_base as f64,
        delta as f64 / delta_base as f64
    );
}

fn config() -> Criterion {
    Criterion::default()
        .output_directory(&output_dir())
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = group; config = config(); targets = benches }

fn main() {
    support::start();
    group();
    Criterion::default().configure_from_args().final_summary();
    report();
}
