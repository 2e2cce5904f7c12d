//! Regional taxes: PBB-P2 objection and reduction, payment verification,
//! vehicle tax (PKB) and land-transfer duty (BPHTB).

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::{AttachmentRole, KindRules, MAX_LONG_TEXT, MAX_SHORT_TEXT, check_nik};
use crate::identifiers::{Nik, Nop, Plate};
use crate::time::Date;
use crate::validation::{Code, Validator};

/// Objection to a PBB-P2 assessment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct PbbObjection {
    /// Tax object number (stored as 18 digits).
    pub nop: Nop,
    /// Tax year.
    pub tax_year: u32,
    /// SPPT (tax bill) reference.
    pub sppt_reference: String,
    /// Amount on the SPPT, in rupiah.
    pub sppt_amount_idr: u64,
    /// Taxpayer's NIK.
    pub taxpayer_nik: Nik,
    /// Grounds of the objection.
    pub grounds: String,
    /// The value the taxpayer claims, in rupiah.
    pub claimed_value_idr: u64,
    /// Filed for someone else (then a power of attorney is required).
    pub on_behalf_of_other: bool,
}

impl KindRules for PbbObjection {
    fn validate(&self, v: &mut Validator) {
        v.errors_at("nop", self.nop.check());
        v.tax_year("tax_year", self.tax_year);
        v.text("sppt_reference", &self.sppt_reference, 100);
        v.amount("sppt_amount_idr", self.sppt_amount_idr);
        check_nik(v, "taxpayer_nik", &self.taxpayer_nik);
        v.text("grounds", &self.grounds, MAX_LONG_TEXT);
    }

    fn required_attachments(&self) -> Vec<AttachmentRole> {
        let mut r = vec![AttachmentRole::Sppt, AttachmentRole::Spop];
        if self.on_behalf_of_other {
            r.push(AttachmentRole::PowerOfAttorney);
        }
        r
    }

    fn niks(&self) -> Vec<&Nik> {
        vec![&self.taxpayer_nik]
    }

    fn subject(&self) -> String {
        format!("tax year {}", self.tax_year)
    }
}

/// Why a reduction is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum ReductionReason {
    #[autosurgeon(rename = "hardship")]
    Hardship,
    #[autosurgeon(rename = "disaster")]
    Disaster,
    #[autosurgeon(rename = "social_purpose")]
    SocialPurpose,
}

/// Request for a PBB-P2 reduction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct PbbReduction {
    /// Tax object number.
    pub nop: Nop,
    /// Tax year.
    pub tax_year: u32,
    /// Reason.
    pub reason: ReductionReason,
    /// Requested reduction, percent (1–100).
    pub requested_percent: u8,
}

impl KindRules for PbbReduction {
    fn validate(&self, v: &mut Validator) {
        v.errors_at("nop", self.nop.check());
        v.tax_year("tax_year", self.tax_year);
        if !(1..=100).contains(&self.requested_percent) {
            v.error_at("requested_percent", Code::Percentage);
        }
    }

    fn niks(&self) -> Vec<&Nik> {
        Vec::new()
    }

    fn subject(&self) -> String {
        format!("tax year {}, {}%", self.tax_year, self.requested_percent)
    }
}

/// Which tax a payment was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum TaxType {
    /// Land and building tax (regency/city).
    #[autosurgeon(rename = "pbb")]
    Pbb,
    /// Vehicle tax (province).
    #[autosurgeon(rename = "pkb")]
    Pkb,
    /// Land-transfer duty (regency/city).
    #[autosurgeon(rename = "bphtb")]
    Bphtb,
}

/// Verification of a payment already made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct PaymentVerification {
    /// The tax paid.
    pub tax_type: TaxType,
    /// NOP, for PBB and BPHTB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nop: Option<Nop>,
    /// Vehicle plate, for PKB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicle_plate: Option<Plate>,
    /// Tax year.
    pub tax_year: u32,
    /// Amount paid, in rupiah.
    pub amount_idr: u64,
    /// Bank or NTPD payment reference.
    pub payment_reference: String,
    /// Date of payment.
    pub paid_on: Date,
}

impl KindRules for PaymentVerification {
    fn validate(&self, v: &mut Validator) {
        match (self.tax_type, &self.nop, &self.vehicle_plate) {
            (TaxType::Pkb, _, None) => v.error_at("vehicle_plate", Code::Required),
            (TaxType::Pbb | TaxType::Bphtb, None, _) => v.error_at("nop", Code::Required),
            _ => {}
        }
        if let Some(n) = &self.nop {
            v.errors_at("nop", n.check());
        }
        if let Some(p) = &self.vehicle_plate {
            v.errors_at("vehicle_plate", p.check());
        }
        v.tax_year("tax_year", self.tax_year);
        v.amount("amount_idr", self.amount_idr);
        v.text("payment_reference", &self.payment_reference, 100);
        v.past_date("paid_on", &self.paid_on);
    }

    fn required_attachments(&self) -> Vec<AttachmentRole> {
        vec![AttachmentRole::PaymentProof]
    }

    fn niks(&self) -> Vec<&Nik> {
        Vec::new()
    }

    fn subject(&self) -> String {
        format!("tax year {}", self.tax_year)
    }
}

/// What is asked about a vehicle's tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum VehicleTaxService {
    /// Yearly payment and STNK endorsement.
    #[autosurgeon(rename = "annual")]
    Annual,
    /// Five-yearly renewal of the STNK and plates.
    #[autosurgeon(rename = "five_yearly")]
    FiveYearly,
    /// Transfer of title (BBNKB).
    #[autosurgeon(rename = "transfer_of_title")]
    TransferOfTitle,
}

/// Vehicle tax (PKB, provincial).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct VehicleTax {
    /// Registration plate.
    pub plate: Plate,
    /// Owner's NIK.
    pub owner_nik: Nik,
    /// Frame (chassis) number, as on the STNK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_number: Option<String>,
    /// Tax year.
    pub tax_year: u32,
    /// The service asked.
    pub service: VehicleTaxService,
}

impl KindRules for VehicleTax {
    fn validate(&self, v: &mut Validator) {
        v.errors_at("plate", self.plate.check());
        check_nik(v, "owner_nik", &self.owner_nik);
        v.opt_text("frame_number", self.frame_number.as_deref(), 30);
        v.tax_year("tax_year", self.tax_year);
    }

    fn niks(&self) -> Vec<&Nik> {
        vec![&self.owner_nik]
    }

    fn subject(&self) -> String {
        format!("tax year {}", self.tax_year)
    }
}

/// How the land or building was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum TransferType {
    #[autosurgeon(rename = "sale")]
    Sale,
    #[autosurgeon(rename = "grant")]
    Grant,
    #[autosurgeon(rename = "inheritance")]
    Inheritance,
    #[autosurgeon(rename = "exchange")]
    Exchange,
    #[autosurgeon(rename = "auction")]
    Auction,
    #[autosurgeon(rename = "other")]
    Other,
}

/// Land and building acquisition duty (BPHTB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct Bphtb {
    /// Tax object number.
    pub nop: Nop,
    /// How it was acquired.
    pub transfer: TransferType,
    /// Acquisition value (NPOP), in rupiah.
    pub acquisition_value_idr: u64,
    /// NIK of the buyer / recipient.
    pub buyer_nik: Nik,
    /// NIK of the seller / giver, when a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_nik: Option<Nik>,
    /// Deed reference from the land deed official (PPAT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deed_reference: Option<String>,
}

impl KindRules for Bphtb {
    fn validate(&self, v: &mut Validator) {
        v.errors_at("nop", self.nop.check());
        v.amount("acquisition_value_idr", self.acquisition_value_idr);
        check_nik(v, "buyer_nik", &self.buyer_nik);
        if let Some(s) = &self.seller_nik {
            check_nik(v, "seller_nik", s);
            if *s == self.buyer_nik {
                v.error_at("seller_nik", Code::Duplicate);
            }
        }
        v.opt_text(
            "deed_reference",
            self.deed_reference.as_deref(),
            MAX_SHORT_TEXT,
        );
    }

    fn niks(&self) -> Vec<&Nik> {
        let mut n = vec![&self.buyer_nik];
        n.extend(self.seller_nik.iter());
        n
    }

    fn subject(&self) -> String {
        format!("{:?}", self.transfer).to_lowercase()
    }
}
