//! The request model: one [`Request`] per government service request, with
//! the applicant's [`RequestContent`], attachment references, the status
//! history and the notes exchanged about it.
//!
//! The JSON form (serde) is documented in `docs/requests.md`; the Automerge
//! form (autosurgeon) mirrors it with the same snake_case names.

mod complaint;
mod permits;
mod population;
mod service;
mod tax;

pub use complaint::*;
pub use permits::*;
pub use population::*;
pub use service::*;
pub use tax::*;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::identifiers::{Nik, Phone, RegionCode, Sex};
use crate::lifecycle::{self, Role, Status, StatusEntry};
use crate::time::{CivilDate, Date, Timestamp};
use crate::validation::{Code, ValidationReport, Validator};

/// Longest free text (complaint text, grounds, notes), in characters.
pub const MAX_LONG_TEXT: usize = 5_000;
/// Longest short text (names, references), in characters.
pub const MAX_SHORT_TEXT: usize = 200;

/// Random id of a request and of its document (UUIDv4, never derived from
/// personal data).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Reconcile)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(transparent)]
pub struct RequestId(pub String);

#[cfg(feature = "ffi")]
uniffi::custom_newtype!(RequestId, String);

impl Hydrate for RequestId {
    fn hydrate_string(s: &str) -> Result<Self, autosurgeon::HydrateError> {
        Ok(RequestId(s.to_owned()))
    }
}

impl RequestId {
    /// A fresh random id.
    pub fn random() -> Self {
        RequestId(uuid::Uuid::new_v4().to_string())
    }

    /// Parses a canonical UUID text (as printed by the CLI).
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s.trim())
            .ok()
            .map(|u| RequestId(u.to_string()))
    }

    /// The 16 bytes of the UUID, the store's primary key.
    pub fn to_bytes(&self) -> Option<[u8; 16]> {
        uuid::Uuid::parse_str(&self.0).ok().map(|u| *u.as_bytes())
    }

    /// The id of 16 UUID bytes.
    pub fn from_bytes(b: [u8; 16]) -> Self {
        RequestId(uuid::Uuid::from_bytes(b).to_string())
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The service area a kind belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// Permits (OSS-RBA, PBG).
    Permit,
    /// Population registry (Disdukcapil).
    Population,
    /// Regional taxes.
    Tax,
    /// Citizen complaints (LAPOR!/SP4N).
    Complaint,
    /// A service defined in the catalog (its definition names its category).
    Catalog,
}

impl Service {
    /// Every service area.
    pub const ALL: &'static [Service] = &[
        Service::Permit,
        Service::Population,
        Service::Tax,
        Service::Complaint,
        Service::Catalog,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Permit => "permit",
            Service::Population => "population",
            Service::Tax => "tax",
            Service::Complaint => "complaint",
            Service::Catalog => "catalog",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Service> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }
}

macro_rules! kinds {
    ($($variant:ident => $name:literal, $service:ident, $label:literal;)*) => {
        /// The kind of a request: one of the compiled-in kinds, or
        /// `service`, a service defined as data in the catalog
        /// (`crate::catalog`, `docs/catalog.md`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
        pub enum Kind { $($variant,)* Service }

        impl Kind {
            /// Every compiled-in kind (each has an example and a built-in
            /// definition); [`Kind::Service`] is not among them.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];

            /// The stable snake_case name (`--kind` in the CLI, `kind` in JSON).
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$variant => $name,)* Kind::Service => "service" }
            }

            /// Parses the snake_case name.
            pub fn parse(s: &str) -> Option<Kind> {
                match s { $($name => Some(Kind::$variant),)* "service" => Some(Kind::Service), _ => None }
            }

            /// The service area.
            pub fn service(self) -> Service {
                match self { $(Kind::$variant => Service::$service,)* Kind::Service => Service::Catalog }
            }

            /// A short English label.
            pub fn label(self) -> &'static str {
                match self { $(Kind::$variant => $label,)* Kind::Service => "Service" }
            }
        }

        impl Details {
            /// Which kind this is.
            pub fn kind(&self) -> Kind {
                match self { $(Details::$variant(_) => Kind::$variant,)* Details::Service(_) => Kind::Service }
            }

            fn validate(&self, v: &mut Validator) {
                match self { $(Details::$variant(d) => d.validate(v),)* Details::Service(d) => d.validate(v) }
            }

            /// Documents that must be attached before submission (a catalog
            /// service's are its definition's: `crate::catalog`).
            pub fn required_attachments(&self) -> Vec<AttachmentRole> {
                match self { $(Details::$variant(d) => d.required_attachments(),)* Details::Service(d) => d.required_attachments() }
            }

            /// Every NIK in the details (for the store's lookup index).
            pub fn niks(&self) -> Vec<Nik> {
                match self {
                    $(Details::$variant(d) => d.niks().into_iter().cloned().collect(),)*
                    Details::Service(d) => d.answer_niks(),
                }
            }

            /// A short subject for the title of the request in lists.
            pub fn subject(&self) -> String {
                match self { $(Details::$variant(d) => d.subject(),)* Details::Service(d) => d.subject() }
            }
        }
    };
}

kinds! {
    BusinessLicence => "business_licence", Permit, "Business licence (NIB)";
    BuildingApproval => "building_approval", Permit, "Building approval (PBG)";
    Birth => "birth", Population, "Birth registration";
    Death => "death", Population, "Death registration";
    MoveAddress => "move_address", Population, "Move of address";
    FamilyCardUpdate => "family_card_update", Population, "Family card update";
    KtpEl => "ktp_el", Population, "KTP-el";
    PbbObjection => "pbb_objection", Tax, "PBB-P2 objection";
    PbbReduction => "pbb_reduction", Tax, "PBB-P2 reduction";
    PaymentVerification => "payment_verification", Tax, "Tax payment verification";
    VehicleTax => "vehicle_tax", Tax, "Vehicle tax (PKB)";
    Bphtb => "bphtb", Tax, "Land transfer duty (BPHTB)";
    Complaint => "complaint", Complaint, "Complaint";
}

/// The kind-specific part of a request. In JSON an object with a `kind`
/// member naming the variant (see `docs/requests.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Details {
    #[autosurgeon(rename = "business_licence")]
    BusinessLicence(BusinessLicence),
    #[autosurgeon(rename = "building_approval")]
    BuildingApproval(BuildingApproval),
    #[autosurgeon(rename = "birth")]
    Birth(Birth),
    #[autosurgeon(rename = "death")]
    Death(Death),
    #[autosurgeon(rename = "move_address")]
    MoveAddress(MoveAddress),
    #[autosurgeon(rename = "family_card_update")]
    FamilyCardUpdate(FamilyCardUpdate),
    #[autosurgeon(rename = "ktp_el")]
    KtpEl(KtpEl),
    #[autosurgeon(rename = "pbb_objection")]
    PbbObjection(PbbObjection),
    #[autosurgeon(rename = "pbb_reduction")]
    PbbReduction(PbbReduction),
    #[autosurgeon(rename = "payment_verification")]
    PaymentVerification(PaymentVerification),
    #[autosurgeon(rename = "vehicle_tax")]
    VehicleTax(VehicleTax),
    #[autosurgeon(rename = "bphtb")]
    Bphtb(Bphtb),
    #[autosurgeon(rename = "complaint")]
    Complaint(Complaint),
    /// A service defined as data in the catalog.
    #[autosurgeon(rename = "service")]
    Service(ServiceRequest),
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What each kind's details struct provides.
pub(crate) trait KindRules {
    fn validate(&self, v: &mut Validator);
    fn required_attachments(&self) -> Vec<AttachmentRole> {
        Vec::new()
    }
    fn niks(&self) -> Vec<&Nik>;
    fn subject(&self) -> String;
}

/// A person named in a request. Birth date and sex, when given, must agree
/// with the NIK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// NIK.
    pub nik: Nik,
    /// Full name as on the KTP.
    pub name: String,
    /// Date of birth, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<Date>,
    /// Sex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
}

impl Person {
    pub(crate) fn validate(&self, v: &mut Validator) {
        let nik_codes = self.nik.check();
        let nik_ok = nik_codes.is_empty();
        v.errors_at("nik", nik_codes);
        v.text("name", &self.name, MAX_SHORT_TEXT);
        let birth = self
            .birth_date
            .as_ref()
            .and_then(|d| v.past_date("birth_date", d));
        if let (true, Some(b), Some(sex)) = (nik_ok, birth, self.sex)
            && !self.nik.agrees_with(b, sex)
        {
            v.error_at("nik", Code::NikMismatch);
        }
    }
}

/// Validates a NIK at `field`.
pub(crate) fn check_nik(v: &mut Validator, field: &str, nik: &Nik) {
    v.errors_at(field, nik.check());
}

/// A list of people with a required count range; each validated, and no NIK
/// twice.
pub(crate) fn check_people(
    v: &mut Validator,
    field: &str,
    people: &[Person],
    min: usize,
    max: usize,
) {
    v.at(field, |v| {
        if people.len() < min || people.len() > max {
            v.error(Code::Count);
        }
        for (i, p) in people.iter().enumerate() {
            v.at_index(i, |v| {
                p.validate(v);
                if people[..i].iter().any(|q| q.nik == p.nik) {
                    v.error_at("nik", Code::Duplicate);
                }
            });
        }
    });
}

/// A postal address down to the village.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street, house number, RT/RW.
    pub street: String,
    /// Village code `PP.RR.DD.VVVV`.
    pub region: RegionCode,
    /// Five-digit postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

impl Address {
    pub(crate) fn validate(&self, v: &mut Validator) {
        v.text("street", &self.street, MAX_SHORT_TEXT);
        v.errors_at("region", self.region.check_village());
        if let Some(pc) = &self.postal_code
            && !(pc.len() == 5 && pc.bytes().all(|b| b.is_ascii_digit()))
        {
            v.error_at("postal_code", Code::PostalCode);
        }
    }
}

/// A WGS84 position with its accuracy radius.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Latitude in degrees.
    #[cfg_attr(test, proptest(strategy = "-90.0f64..90.0"))]
    pub lat: f64,
    /// Longitude in degrees.
    #[cfg_attr(test, proptest(strategy = "-180.0f64..180.0"))]
    pub lon: f64,
    /// Accuracy radius in metres.
    #[cfg_attr(test, proptest(strategy = "0.0f64..10_000.0"))]
    pub accuracy_m: f64,
}

impl Location {
    pub(crate) fn validate(&self, v: &mut Validator) {
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            v.error_at("lat", Code::Latitude);
        }
        if !(self.lon.is_finite() && (-180.0..=180.0).contains(&self.lon)) {
            v.error_at("lon", Code::Longitude);
        }
        if !(self.accuracy_m.is_finite() && self.accuracy_m > 0.0) {
            v.error_at("accuracy_m", Code::Accuracy);
        }
        let inside = (-11.1..=6.1).contains(&self.lat) && (94.7..=141.1).contains(&self.lon);
        let valid = self.lat.is_finite()
            && self.lon.is_finite()
            && self.lat.abs() <= 90.0
            && self.lon.abs() <= 180.0;
        if valid && !inside {
            v.warn(Code::OutsideIndonesia);
        }
    }
}

/// The lawful basis for processing (UU PDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum LawfulBasis {
    /// Performance of a public service.
    #[autosurgeon(rename = "public_service")]
    PublicService,
    /// A legal obligation of the agency.
    #[autosurgeon(rename = "legal_obligation")]
    LegalObligation,
    /// The data subject's consent (a [`Consent`] record is then required).
    #[autosurgeon(rename = "consent")]
    Consent,
}

/// A record of consent given by the data subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// When it was given.
    pub given_at: Timestamp,
    /// What it covers.
    pub purpose: String,
    /// Version of the consent text shown.
    pub text_version: String,
}

/// What the applicant (or an officer on their behalf) fills in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct RequestContent {
    /// The region the request is filed in (routes it to the office and the
    /// officers of that region); any level, usually the village.
    pub region: RegionCode,
    /// The lawful basis for processing the data in it.
    pub lawful_basis: LawfulBasis,
    /// The consent record, when consent is the basis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
    /// The applicant; absent only for an anonymous complaint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applicant: Option<Person>,
    /// A phone number to reach the applicant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_phone: Option<Phone>,
    /// The kind-specific fields.
    pub details: Details,
}

impl RequestContent {
    /// Where the request is about, when it says (a complaint's place, a
    /// business's location, a catalog service's location field — the
    /// first by field id): what a map plots. Only real coordinates.
    ///
    /// ```
    /// use sambung_core::model::Kind;
    /// let c = sambung_core::templates::example(Kind::Complaint);
    /// assert!(c.location().is_some());
    /// assert!(sambung_core::templates::example(Kind::KtpEl).location().is_none());
    /// ```
    pub fn location(&self) -> Option<Location> {
        let found = match &self.details {
            Details::Complaint(c) => c.location.clone(),
            Details::BusinessLicence(b) => b.location.clone(),
            Details::Service(s) => {
                let mut ids: Vec<&String> = s.answers.keys().collect();
                ids.sort();
                ids.into_iter()
                    .find_map(|id| serde_json::from_str::<Location>(&s.answers[id]).ok())
            }
            _ => None,
        };
        found.filter(|l| {
            l.lat.is_finite()
                && l.lon.is_finite()
                && (-90.0..=90.0).contains(&l.lat)
                && (-180.0..=180.0).contains(&l.lon)
        })
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.details.kind()
    }

    /// Rewrites fields to their stored form (NOP digits only, trimmed
    /// identifiers); run before validation and storage.
    pub fn normalise(&mut self) {
        if let Some(a) = &mut self.applicant {
            a.nik.0 = a.nik.0.trim().to_owned();
        }
        match &mut self.details {
            Details::PbbObjection(d) => d.nop = d.nop.normalised(),
            Details::PbbReduction(d) => d.nop = d.nop.normalised(),
            Details::PaymentVerification(d) => {
                d.nop = d.nop.as_ref().map(|n| n.normalised());
            }
            Details::Bphtb(d) => d.nop = d.nop.normalised(),
            _ => {}
        }
    }

    /// Validates every field; `today` is the date in Indonesia.
    ///
    /// ```
    /// use sambung_core::{templates, model::Kind, CivilDate};
    /// let content = templates::example(Kind::Birth);
    /// let report = content.validate(CivilDate::new(2026, 11, 27).unwrap());
    /// assert!(report.is_ok(), "{report}");
    /// ```
    pub fn validate(&self, today: CivilDate) -> ValidationReport {
        let mut v = Validator::new(today);
        self.validate_into(&mut v);
        v.finish()
    }

    fn validate_into(&self, v: &mut Validator) {
        v.errors_at("region", self.region.check());
        if self.lawful_basis == LawfulBasis::Consent {
            match &self.consent {
                None => v.error_at("consent", Code::ConsentMissing),
                Some(c) => v.at("consent", |v| {
                    v.text("purpose", &c.purpose, MAX_SHORT_TEXT);
                    v.text("text_version", &c.text_version, 50);
                }),
            }
        }
        let anonymous = matches!(&self.details, Details::Complaint(c) if c.anonymous);
        match &self.applicant {
            // Anonymity is kept by never putting the identity in the
            // document, which travels to the agency.
            Some(_) if anonymous => v.error_at("applicant", Code::AnonymousIdentity),
            Some(a) => v.at("applicant", |v| a.validate(v)),
            None if !anonymous => v.error_at("applicant", Code::Required),
            None => {}
        }
        if anonymous && self.contact_phone.is_some() {
            v.error_at("contact_phone", Code::AnonymousIdentity);
        }
        if let Some(p) = &self.contact_phone {
            v.errors_at("contact_phone", p.check());
        }
        v.at("details", |v| self.details.validate(v));
    }

    /// Every NIK in the request.
    pub fn niks(&self) -> Vec<Nik> {
        let mut all: Vec<Nik> = self.applicant.iter().map(|a| a.nik.clone()).collect();
        all.extend(self.details.niks());
        all.sort();
        all.dedup();
        all
    }
}

/// The purpose of an attached document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum AttachmentRole {
    #[autosurgeon(rename = "photo")]
    Photo,
    #[autosurgeon(rename = "supporting_document")]
    SupportingDocument,
    #[autosurgeon(rename = "birth_letter")]
    BirthLetter,
    #[autosurgeon(rename = "death_statement")]
    DeathStatement,
    #[autosurgeon(rename = "form_f103")]
    FormF103,
    #[autosurgeon(rename = "kk_copy")]
    KkCopy,
    #[autosurgeon(rename = "ktp_copy")]
    KtpCopy,
    #[autosurgeon(rename = "police_report")]
    PoliceReport,
    #[autosurgeon(rename = "site_plan")]
    SitePlan,
    #[autosurgeon(rename = "floor_plan")]
    FloorPlan,
    #[autosurgeon(rename = "section_drawing")]
    SectionDrawing,
    #[autosurgeon(rename = "elevation_drawing")]
    ElevationDrawing,
    #[autosurgeon(rename = "structure_drawing")]
    StructureDrawing,
    #[autosurgeon(rename = "sppt")]
    Sppt,
    #[autosurgeon(rename = "spop")]
    Spop,
    #[autosurgeon(rename = "power_of_attorney")]
    PowerOfAttorney,
    #[autosurgeon(rename = "payment_proof")]
    PaymentProof,
}

impl AttachmentRole {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        use AttachmentRole::*;
        match self {
            Photo => "photo",
            SupportingDocument => "supporting_document",
            BirthLetter => "birth_letter",
            DeathStatement => "death_statement",
            FormF103 => "form_f103",
            KkCopy => "kk_copy",
            KtpCopy => "ktp_copy",
            PoliceReport => "police_report",
            SitePlan => "site_plan",
            FloorPlan => "floor_plan",
            SectionDrawing => "section_drawing",
            ElevationDrawing => "elevation_drawing",
            StructureDrawing => "structure_drawing",
            Sppt => "sppt",
            Spop => "spop",
            PowerOfAttorney => "power_of_attorney",
            PaymentProof => "payment_proof",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == s)
    }

    /// Every role.
    pub const ALL: &'static [AttachmentRole] = &[
        AttachmentRole::Photo,
        AttachmentRole::SupportingDocument,
        AttachmentRole::BirthLetter,
        AttachmentRole::DeathStatement,
        AttachmentRole::FormF103,
        AttachmentRole::KkCopy,
        AttachmentRole::KtpCopy,
        AttachmentRole::PoliceReport,
        AttachmentRole::SitePlan,
        AttachmentRole::FloorPlan,
        AttachmentRole::SectionDrawing,
        AttachmentRole::ElevationDrawing,
        AttachmentRole::StructureDrawing,
        AttachmentRole::Sppt,
        AttachmentRole::Spop,
        AttachmentRole::PowerOfAttorney,
        AttachmentRole::PaymentProof,
    ];
}

/// A reference to an attachment: the document carries only this, never the
/// bytes (design-notes decision 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct AttachmentRef {
    /// SHA-256 of the plaintext bytes, lowercase hex: the content address.
    #[key]
    pub sha256: String,
    /// What it is for.
    pub role: AttachmentRole,
    /// For a catalog service's document that is none of the engine's
    /// roles: the name the service's definition gives it (`rt_letter`);
    /// `role` is then `supporting_document` or `photo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The original file name.
    pub name: String,
    /// MIME type.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was attached.
    pub added_at: Timestamp,
}

impl AttachmentRef {
    /// The name a form knows this document by: its purpose, or its role.
    pub fn purpose_name(&self) -> &str {
        self.purpose.as_deref().unwrap_or(self.role.as_str())
    }
}

/// Whether `s` can be a document's purpose: a service definition's role
/// name (lowercase letters, digits and `_`, at most 64).
pub fn is_purpose(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A message on a request: questions from the office, answers from the
/// applicant, field notes from officers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct Note {
    /// Random id.
    #[key]
    pub id: String,
    /// When it was written.
    pub at: Timestamp,
    /// Pseudonymous account id of the author.
    pub by: String,
    /// The author's role.
    pub role: Role,
    /// The text.
    pub text: String,
}

/// A request: its content and its whole life, as held in one Automerge
/// document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct Request {
    /// Random id.
    pub id: RequestId,
    /// When the draft was created.
    pub created_at: Timestamp,
    /// Account that created it.
    pub created_by: String,
    /// Role of that account (an officer files on behalf of residents).
    pub created_role: Role,
    /// What the applicant filled in.
    pub content: RequestContent,
    /// Attached documents, by reference.
    pub attachments: Vec<AttachmentRef>,
    /// Append-only status history.
    pub history: Vec<StatusEntry>,
    /// Notes and messages.
    pub notes: Vec<Note>,
    /// The field officer's account the back office assigned the request
    /// to (the officer then syncs it whatever its region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// When the applicant's personal data was erased (UU PDP); an erased
    /// request keeps only its non-personal record and takes no more
    /// changes (see [`erase::erased`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<Timestamp>,
}

impl Request {
    /// A new draft of `content`, created by account `by` in `role` at
    /// `at`: a fresh random id, nothing attached, no history, no notes.
    ///
    /// ```
    /// use sambung_core::lifecycle::{Role, Status};
    /// use sambung_core::model::{Kind, Request};
    /// use sambung_core::{Timestamp, templates};
    /// let r = Request::draft(templates::example(Kind::KtpEl), "warga-1", Role::Resident, Timestamp(1));
    /// assert_eq!(r.status(), Status::Draft);
    /// ```
    pub fn draft(content: RequestContent, by: &str, role: Role, at: Timestamp) -> Request {
        Request {
            id: RequestId::random(),
            created_at: at,
            created_by: by.to_owned(),
            created_role: role,
            content,
            attachments: Vec::new(),
            history: Vec::new(),
            notes: Vec::new(),
            assignee: None,
            erased_at: None,
        }
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.content.kind()
    }

    /// The current status, derived from the history.
    pub fn status(&self) -> Status {
        lifecycle::derive(&self.history).status
    }

    /// A title for lists: the kind and a short subject.
    pub fn title(&self) -> String {
        format!(
            "{}: {}",
            self.kind().label(),
            self.content.details.subject()
        )
    }

    /// The time of the latest change to the history, notes or attachments.
    pub fn updated_at(&self) -> Timestamp {
        let h = self.history.iter().map(|e| e.at);
        let n = self.notes.iter().map(|n| n.at);
        let a = self.attachments.iter().map(|a| a.added_at);
        h.chain(n)
            .chain(a)
            .max()
            .unwrap_or(self.created_at)
            .max(self.created_at)
    }

    /// Validates the content and, for submission, the required attachments.
    pub fn validate_for_submit(&self, today: CivilDate) -> ValidationReport {
        let mut v = Validator::new(today);
        self.content.validate_into(&mut v);
        for role in self.content.details.required_attachments() {
            if !self.attachments.iter().any(|a| a.role == role) {
                v.at("attachments", |v| {
                    v.error_at(role.as_str(), Code::AttachmentMissing)
                });
            }
        }
        v.finish()
    }
}

pub mod erase;

#[cfg(test)]
mod tests;
