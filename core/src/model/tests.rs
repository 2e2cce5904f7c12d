//! Validation and JSON form of every kind.

use super::*;
use crate::identifiers::*;
use crate::templates;

fn today() -> CivilDate {
    CivilDate::new(2026, 11, 27).unwrap()
}

fn codes(report: &ValidationReport) -> Vec<(String, Code)> {
    report
        .errors
        .iter()
        .map(|e| (e.field.clone(), e.code))
        .collect()
}

fn errors_of(content: &RequestContent) -> Vec<(String, Code)> {
    codes(&content.validate(today()))
}

fn with_details(kind: Kind, f: impl FnOnce(&mut Details)) -> RequestContent {
    let mut c = templates::example(kind);
    f(&mut c.details);
    c
}

#[test]
fn every_template_is_valid_and_round_trips_through_json() {
    for kind in Kind::ALL {
        let c = templates::example(*kind);
        let r = c.validate(today());
        assert!(r.is_ok(), "{kind}: {r}");
        let json = serde_json::to_string(&c).unwrap();
        let back: RequestContent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c, "{kind}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["details"]["kind"], kind.as_str());
        assert_eq!(Kind::parse(kind.as_str()), Some(*kind));
    }
}

#[test]
fn unknown_fields_are_rejected_not_dropped() {
    let mut v = serde_json::to_value(templates::example(Kind::Birth)).unwrap();
    v["details"]["mothers_nik"] = "3273014108900007".into();
    let e = serde_json::from_value::<RequestContent>(v)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field"), "{e}");
    let mut v = serde_json::to_value(templates::example(Kind::Birth)).unwrap();
    v["colour"] = "blue".into();
    assert!(serde_json::from_value::<RequestContent>(v).is_err());
    let mut v = serde_json::to_value(templates::example(Kind::Birth)).unwrap();
    v["details"]["kind"] = "marriage".into();
    assert!(serde_json::from_value::<RequestContent>(v).is_err());
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let mut c = with_details(Kind::Birth, |d| {
        let Details::Birth(b) = d else { unreachable!() };
        b.child_name = " ".into();
        b.birth_date = Date("2026-02-30".into());
        b.birth_time = Some("25:00".into());
        b.mother_nik = Nik::from("12345");
        b.father_nik = Some(Nik::from("3273011503850000"));
        b.kk_number = Kk::from("0073010101200001");
        b.witnesses[1].nik = b.witnesses[0].nik.clone();
    });
    c.contact_phone = Some(Phone::from("12"));
    c.region = RegionCode::from("99");
    let errs = errors_of(&c);
    let expected = vec![
        ("region".to_string(), Code::RegionProvince),
        ("contact_phone".into(), Code::PhoneFormat),
        ("details.child_name".into(), Code::Required),
        ("details.birth_date".into(), Code::DateFormat),
        ("details.birth_time".into(), Code::TimeFormat),
        ("details.mother_nik".into(), Code::NikFormat),
        ("details.father_nik".into(), Code::NikSerial),
        ("details.kk_number".into(), Code::KkProvince),
        ("details.witnesses[1].nik".into(), Code::NikMismatch),
        ("details.witnesses[1].nik".into(), Code::Duplicate),
    ];
    assert_eq!(errs, expected);
    for e in &c.validate(today()).errors {
        assert!(!e.message_en.is_empty() && !e.message_id.is_empty());
    }
}

#[test]
fn nik_must_agree_with_stated_birth_date_and_sex() {
    let mut c = templates::example(Kind::KtpEl);
    let a = c.applicant.as_mut().unwrap();
    a.sex = Some(Sex::Male);
    assert_eq!(
        errors_of(&c),
        vec![("applicant.nik".to_string(), Code::NikMismatch)]
    );
    let a = c.applicant.as_mut().unwrap();
    a.sex = Some(Sex::Female);
    a.birth_date = Some(Date("1990-08-02".into()));
    assert_eq!(
        errors_of(&c),
        vec![("applicant.nik".to_string(), Code::NikMismatch)]
    );
    // Without a stated sex nothing can be compared: accepted.
    let a = c.applicant.as_mut().unwrap();
    a.sex = None;
    assert!(errors_of(&c).is_empty());
}

#[test]
fn dates_that_cannot_be_in_the_future_are_refused() {
    let c = with_details(Kind::Death, |d| {
        let Details::Death(x) = d else { unreachable!() };
        x.date_of_death = Date("2026-11-28".into());
    });
    assert_eq!(
        errors_of(&c),
        vec![("details.date_of_death".to_string(), Code::DateInFuture)]
    );
    // Today is fine.
    let c = with_details(Kind::Death, |d| {
        let Details::Death(x) = d else { unreachable!() };
        x.date_of_death = Date("2026-11-27".into());
    });
    assert!(errors_of(&c).is_empty());
    // A death reported after 30 days is accepted with a warning.
    let c = with_details(Kind::Death, |d| {
        let Details::Death(x) = d else { unreachable!() };
        x.date_of_death = Date("2026-09-01".into());
    });
    let r = c.validate(today());
    assert!(r.is_ok());
    assert_eq!(r.warnings[0].code, Code::LateReport);
}

#[test]
fn coordinates_outside_indonesia_warn_and_impossible_ones_fail() {
    let c = with_details(Kind::Complaint, |d| {
        let Details::Complaint(x) = d else {
            unreachable!()
        };
        x.location = Some(Location {
            lat: 35.68,
            lon: 139.69,
            accuracy_m: 10.0,
        });
    });
    let r = c.validate(today());
    assert!(r.is_ok());
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.warnings[0].code, Code::OutsideIndonesia);
    let c = with_details(Kind::Complaint, |d| {
        let Details::Complaint(x) = d else {
            unreachable!()
        };
        x.location = Some(Location {
            lat: 91.0,
            lon: f64::NAN,
            accuracy_m: -1.0,
        });
    });
    assert_eq!(
        errors_of(&c),
        vec![
            ("details.location.lat".to_string(), Code::Latitude),
            ("details.location.lon".into(), Code::Longitude),
            ("details.location.accuracy_m".into(), Code::Accuracy),
        ]
    );
}

#[test]
fn kind_specific_rules() {
    let c = with_details(Kind::BusinessLicence, |d| {
        let Details::BusinessLicence(x) = d else {
            unreachable!()
        };
        x.applicant_nik = None;
        x.kbli = vec![Kbli::from("47111"), Kbli::from("47111"), Kbli::from("4711")];
        x.address.region = RegionCode::from("32.73");
    });
    assert_eq!(
        errors_of(&c),
        vec![
            ("details.applicant_nik".to_string(), Code::OneOfRequired),
            ("details.company_legal_number".into(), Code::OneOfRequired),
            ("details.kbli[1]".into(), Code::Duplicate),
            ("details.kbli[2]".into(), Code::KbliFormat),
            ("details.address.region".into(), Code::RegionLevel),
        ]
    );
    let c = with_details(Kind::PbbReduction, |d| {
        let Details::PbbReduction(x) = d else {
            unreachable!()
        };
        x.tax_year = 2027;
        x.requested_percent = 0;
        x.nop = Nop::from("32.73.010.001.001-0001.5");
    });
    assert_eq!(
        errors_of(&c),
        vec![
            ("details.nop".to_string(), Code::NopSpecialCode),
            ("details.tax_year".into(), Code::TaxYear),
            ("details.requested_percent".into(), Code::Percentage),
        ]
    );
    let c = with_details(Kind::PaymentVerification, |d| {
        let Details::PaymentVerification(x) = d else {
            unreachable!()
        };
        x.tax_type = TaxType::Pkb;
        x.amount_idr = 0;
    });
    assert_eq!(
        errors_of(&c),
        vec![
            ("details.vehicle_plate".to_string(), Code::Required),
            ("details.amount_idr".into(), Code::Amount),
        ]
    );
    let c = with_details(Kind::Bphtb, |d| {
        let Details::Bphtb(x) = d else { unreachable!() };
        x.seller_nik = Some(x.buyer_nik.clone());
    });
    assert_eq!(
        errors_of(&c),
        vec![("details.seller_nik".to_string(), Code::Duplicate)]
    );
    let c = with_details(Kind::MoveAddress, |d| {
        let Details::MoveAddress(x) = d else {
            unreachable!()
        };
        x.movers.clear();
    });
    assert_eq!(
        errors_of(&c),
        vec![("details.movers".to_string(), Code::Count)]
    );
    let c = with_details(Kind::VehicleTax, |d| {
        let Details::VehicleTax(x) = d else {
            unreachable!()
        };
        x.plate = Plate::from("1234");
    });
    assert_eq!(
        errors_of(&c),
        vec![("details.plate".to_string(), Code::PlateFormat)]
    );
}

#[test]
fn nop_is_stored_as_digits() {
    let mut c = with_details(Kind::PbbObjection, |d| {
        let Details::PbbObjection(x) = d else {
            unreachable!()
        };
        x.nop = Nop::from("32.73.010.001.001-0001.0");
    });
    c.normalise();
    let Details::PbbObjection(x) = &c.details else {
        unreachable!()
    };
    assert_eq!(x.nop.as_str(), "327301000100100010");
}

#[test]
fn applicant_and_consent_rules() {
    let mut c = templates::example(Kind::KtpEl);
    c.applicant = None;
    c.lawful_basis = LawfulBasis::Consent;
    assert_eq!(
        errors_of(&c),
        vec![
            ("consent".to_string(), Code::ConsentMissing),
            ("applicant".into(), Code::Required),
        ]
    );
    c.consent = Some(templates::consent(Timestamp(0)));
    c.applicant = Some(templates::applicant());
    assert!(errors_of(&c).is_empty());
    // An anonymous complaint needs no applicant.
    let mut c = with_details(Kind::Complaint, |d| {
        let Details::Complaint(x) = d else {
            unreachable!()
        };
        x.anonymous = true;
    });
    c.applicant = None;
    assert_eq!(
        errors_of(&c),
        vec![("contact_phone".to_string(), Code::AnonymousIdentity)]
    );
    c.contact_phone = None;
    assert!(errors_of(&c).is_empty());
    c.applicant = Some(templates::applicant());
    assert_eq!(
        errors_of(&c),
        vec![("applicant".to_string(), Code::AnonymousIdentity)]
    );
}

#[test]
fn parents_niks_encode_their_sex() {
    let c = with_details(Kind::Birth, |d| {
        let Details::Birth(b) = d else { unreachable!() };
        std::mem::swap(&mut b.mother_nik, b.father_nik.as_mut().unwrap());
    });
    assert_eq!(
        errors_of(&c),
        vec![
            ("details.mother_nik".to_string(), Code::NikSex),
            ("details.father_nik".into(), Code::NikSex),
        ]
    );
}

#[test]
fn required_attachments_per_kind() {
    let expect = |kind: Kind| templates::example(kind).details.required_attachments();
    assert_eq!(expect(Kind::Birth), vec![AttachmentRole::BirthLetter]);
    assert_eq!(expect(Kind::Death), vec![AttachmentRole::DeathStatement]);
    assert_eq!(expect(Kind::BuildingApproval).len(), 5);
    assert_eq!(expect(Kind::Complaint), vec![]);
    let lost = with_details(Kind::KtpEl, |d| {
        let Details::KtpEl(x) = d else { unreachable!() };
        x.reason = KtpReason::Lost;
    });
    assert_eq!(
        lost.details.required_attachments(),
        vec![AttachmentRole::PoliceReport]
    );
    let for_other = with_details(Kind::PbbObjection, |d| {
        let Details::PbbObjection(x) = d else {
            unreachable!()
        };
        x.on_behalf_of_other = true;
    });
    assert!(
        for_other
            .details
            .required_attachments()
            .contains(&AttachmentRole::PowerOfAttorney)
    );
    for role in AttachmentRole::ALL {
        assert_eq!(AttachmentRole::parse(role.as_str()), Some(*role));
        assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
    }
}

#[test]
fn request_ids_are_random_uuids() {
    let a = RequestId::random();
    let b = RequestId::random();
    assert_ne!(a, b);
    assert_eq!(RequestId::from_bytes(a.to_bytes().unwrap()), a);
    assert_eq!(RequestId::parse(&a.0), Some(a));
    assert_eq!(RequestId::parse("not-an-id"), None);
}

proptest::proptest! {
    // Validation never panics, whatever the content.
    #[test]
    fn validation_never_panics(c in proptest::prelude::any::<RequestContent>()) {
        let _ = c.validate(today());
    }

    // The JSON form round-trips for arbitrary content.
    #[test]
    fn json_round_trip(c in proptest::prelude::any::<RequestContent>()) {
        let json = serde_json::to_string(&c).unwrap();
        let back: RequestContent = serde_json::from_str(&json).unwrap();
        proptest::prop_assert_eq!(back, c);
    }
}
