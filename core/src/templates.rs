//! A valid example of every kind of request: what `sambung device template`
//! prints, and the fixtures of tests, benchmarks and the demo. The people in
//! it are invented; their NIKs are well formed but belong to no one known.

use crate::identifiers::{Kbli, Kk, Nib, Nik, Nop, Phone, Plate, RegionCode, Sex};
use crate::model::*;
use crate::time::{Date, Timestamp};

fn person(nik: &str, name: &str, birth: &str, sex: Sex) -> Person {
    Person {
        nik: Nik::from(nik),
        name: name.to_owned(),
        birth_date: Some(Date(birth.to_owned())),
        sex: Some(sex),
    }
}

fn address(street: &str, village: &str) -> Address {
    Address {
        street: street.to_owned(),
        region: RegionCode::from(village),
        postal_code: Some("40111".to_owned()),
    }
}

fn witnesses() -> Vec<Person> {
    vec![
        person("3273012207800003", "Budi Santoso", "1980-07-22", Sex::Male),
        person(
            "3273015511880004",
            "Dewi Lestari",
            "1988-11-15",
            Sex::Female,
        ),
    ]
}

/// The applicant of the examples (a woman born 1 August 1990).
pub fn applicant() -> Person {
    person("3273014108900007", "Siti Aminah", "1990-08-01", Sex::Female)
}

/// A valid example of `kind`.
///
/// ```
/// use sambung_core::{templates, model::Kind};
/// for kind in Kind::ALL {
///     assert_eq!(templates::example(*kind).kind(), *kind);
/// }
/// ```
pub fn example(kind: Kind) -> RequestContent {
    let details = match kind {
        Kind::BusinessLicence => Details::BusinessLicence(BusinessLicence {
            applicant_nik: Some(Nik::from("3273014108900007")),
            company_legal_number: None,
            business_name: "Warung Nasi Bu Siti".into(),
            kbli: vec![Kbli::from("56101")],
            address: address("Jl. Merdeka No. 10, RT 02/RW 05", "32.73.01.1001"),
            location: Some(Location {
                lat: -6.9175,
                lon: 107.6191,
                accuracy_m: 15.0,
            }),
            kkpr_reference: None,
            investment_idr: 25_000_000,
            workers: 3,
            building_status: BuildingStatus::Rented,
            risk_tier: RiskTier::Low,
        }),
        Kind::BuildingApproval => Details::BuildingApproval(BuildingApproval {
            land_title_reference: "SHM 1234/Sukajadi".into(),
            owner_nik: Nik::from("3273014108900007"),
            nib: Some(Nib::from("9120001234567")),
            kkpr_reference: "KKPR-3273-2026-0042".into(),
            environmental_document: EnvironmentalDocument::Sppl,
            architect_licence: "IPTB-32-1234".into(),
            address: address("Jl. Cihampelas No. 5", "32.73.01.1001"),
        }),
        Kind::Birth => Details::Birth(Birth {
            child_name: "Putri Ayu".into(),
            child_sex: Sex::Female,
            birth_date: Date("2026-11-01".into()),
            birth_time: Some("04:30".into()),
            birth_place: "Bandung".into(),
            mother_nik: Nik::from("3273014108900007"),
            father_nik: Some(Nik::from("3273011503850002")),
            kk_number: Kk::from("3273010101200001"),
            witnesses: witnesses(),
        }),
        Kind::Death => Details::Death(Death {
            deceased_nik: Nik::from("3273010102400005"),
            deceased_name: "Ahmad Wijaya".into(),
            date_of_death: Date("2026-11-10".into()),
            place_of_death: "RSUD Kota Bandung".into(),
            cause: DeathCause::OldAge,
            reporter_nik: Nik::from("3273011503850002"),
            witnesses: witnesses(),
        }),
        Kind::MoveAddress => Details::MoveAddress(MoveAddress {
            movers: vec![Nik::from("3273014108900007"), Nik::from("3273011503850002")],
            origin: address("Jl. Merdeka No. 10", "32.73.01.1001"),
            destination: address("Jl. Pajajaran No. 3", "32.71.02.1003"),
            reason: MoveReason::Work,
        }),
        Kind::FamilyCardUpdate => Details::FamilyCardUpdate(FamilyCardUpdate {
            kk_number: Kk::from("3273010101200001"),
            change: FamilyCardChange::CorrectData,
            members: vec![applicant()],
        }),
        Kind::KtpEl => Details::KtpEl(KtpEl {
            nik: Nik::from("3273014108900007"),
            reason: KtpReason::Damaged,
        }),
        Kind::PbbObjection => Details::PbbObjection(PbbObjection {
            nop: Nop::from("327301000100100010"),
            tax_year: 2026,
            sppt_reference: "SPPT-2026-3273-000123".into(),
            sppt_amount_idr: 1_250_000,
            taxpayer_nik: Nik::from("3273014108900007"),
            grounds: "Luas bangunan pada SPPT 120 m², sebenarnya 80 m².".into(),
            claimed_value_idr: 850_000,
            on_behalf_of_other: false,
        }),
        Kind::PbbReduction => Details::PbbReduction(PbbReduction {
            nop: Nop::from("327301000100100010"),
            tax_year: 2026,
            reason: ReductionReason::Disaster,
            requested_percent: 50,
        }),
        Kind::PaymentVerification => Details::PaymentVerification(PaymentVerification {
            tax_type: TaxType::Pbb,
            nop: Some(Nop::from("327301000100100010")),
            vehicle_plate: None,
            tax_year: 2026,
            amount_idr: 1_250_000,
            payment_reference: "NTPD 0123456789ABCDEF".into(),
            paid_on: Date("2026-08-31".into()),
        }),
        Kind::VehicleTax => Details::VehicleTax(VehicleTax {
            plate: Plate::from("D 1234 ABC"),
            owner_nik: Nik::from("3273014108900007"),
            frame_number: Some("MH1JFZ130KK123456".into()),
            tax_year: 2026,
            service: VehicleTaxService::Annual,
        }),
        Kind::Bphtb => Details::Bphtb(Bphtb {
            nop: Nop::from("327301000100100010"),
            transfer: TransferType::Sale,
            acquisition_value_idr: 450_000_000,
            buyer_nik: Nik::from("3273014108900007"),
            seller_nik: Some(Nik::from("3273011503850002")),
            deed_reference: Some("AJB 12/2026".into()),
        }),
        Kind::Complaint => Details::Complaint(Complaint {
            category: ComplaintCategory::Infrastructure,
            text: "Jalan berlubang besar di depan SD Negeri 1, membahayakan pengendara motor."
                .into(),
            location: Some(Location {
                lat: -6.9147,
                lon: 107.6098,
                accuracy_m: 8.0,
            }),
            occurred_on: Some(Date("2026-11-20".into())),
            anonymous: false,
        }),
        Kind::Service => Details::Service(service_example()),
    };
    RequestContent {
        region: RegionCode::from("32.73.01.1001"),
        lawful_basis: LawfulBasis::PublicService,
        consent: None,
        applicant: Some(applicant()),
        contact_phone: Some(Phone::from("+62 812-3456-7890")),
        details,
    }
}

/// The example of catalog services: the built-in certificate of domicile,
/// filled in as its first test vector (empty answers if the built-in
/// catalog could not be read, which its tests rule out).
fn service_example() -> ServiceRequest {
    const SERVICE: &str = "surat_keterangan_domisili";
    let built = crate::catalog::shared_builtin().ok();
    let found = built.and_then(|c| Some((c.latest(SERVICE)?, c)));
    match found {
        Some((form, catalog)) => {
            let d = form.definition();
            let hash = catalog
                .published(&d.id, d.version)
                .map(|p| p.hash.clone())
                .unwrap_or_default();
            let empty = serde_json::Map::new();
            let answers = d.example().and_then(|v| v.as_object()).unwrap_or(&empty);
            ServiceRequest::new(d, &hash, answers)
        }
        None => ServiceRequest {
            service: SERVICE.to_owned(),
            version: 1,
            hash: String::new(),
            answers: Default::default(),
        },
    }
}

/// A consent record for examples where consent is the basis.
pub fn consent(at: Timestamp) -> Consent {
    Consent {
        given_at: at,
        purpose: "Processing of this request".into(),
        text_version: "2026-01".into(),
    }
}
