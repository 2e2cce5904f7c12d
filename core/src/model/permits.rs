//! Permits: business licence / NIB (OSS-RBA) and building approval (PBG).

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::{Address, AttachmentRole, KindRules, Location, MAX_SHORT_TEXT, check_nik};
use crate::identifiers::{Kbli, Nib, Nik};
use crate::validation::{Code, Validator};

/// OSS-RBA risk tier; it decides what the applicant receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum RiskTier {
    /// NIB only.
    #[autosurgeon(rename = "low")]
    Low,
    /// NIB plus a self-declared standard certificate.
    #[autosurgeon(rename = "medium_low")]
    MediumLow,
    /// NIB plus a verified standard certificate.
    #[autosurgeon(rename = "medium_high")]
    MediumHigh,
    /// NIB plus a licence.
    #[autosurgeon(rename = "high")]
    High,
}

/// Whether the business premises are owned or rented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum BuildingStatus {
    #[autosurgeon(rename = "owned")]
    Owned,
    #[autosurgeon(rename = "rented")]
    Rented,
    #[autosurgeon(rename = "other")]
    Other,
}

/// Business licence (NIB) through OSS-RBA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct BusinessLicence {
    /// NIK of an individual applicant (or give `company_legal_number`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applicant_nik: Option<Nik>,
    /// Legal entity number of a company applicant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_legal_number: Option<String>,
    /// Business name.
    pub business_name: String,
    /// One or more KBLI 2020 codes.
    pub kbli: Vec<Kbli>,
    /// Business address.
    pub address: Address,
    /// Business location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Spatial-use approval (KKPR) reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kkpr_reference: Option<String>,
    /// Investment value in rupiah.
    pub investment_idr: u64,
    /// Number of workers.
    pub workers: u32,
    /// Whether the premises are owned or rented.
    pub building_status: BuildingStatus,
    /// Risk tier.
    pub risk_tier: RiskTier,
}

impl KindRules for BusinessLicence {
    fn validate(&self, v: &mut Validator) {
        match (&self.applicant_nik, &self.company_legal_number) {
            (None, None) => {
                v.error_at("applicant_nik", Code::OneOfRequired);
                v.error_at("company_legal_number", Code::OneOfRequired);
            }
            (nik, number) => {
                if let Some(n) = nik {
                    check_nik(v, "applicant_nik", n);
                }
                v.opt_text("company_legal_number", number.as_deref(), 50);
            }
        }
        v.text("business_name", &self.business_name, MAX_SHORT_TEXT);
        v.at("kbli", |v| {
            if self.kbli.is_empty() || self.kbli.len() > 20 {
                v.error(Code::Count);
            }
            for (i, k) in self.kbli.iter().enumerate() {
                v.at_index(i, |v| {
                    for c in k.check() {
                        v.error(c);
                    }
                    if self.kbli[..i].contains(k) {
                        v.error(Code::Duplicate);
                    }
                });
            }
        });
        v.at("address", |v| self.address.validate(v));
        if let Some(l) = &self.location {
            v.at("location", |v| l.validate(v));
        }
        v.opt_text("kkpr_reference", self.kkpr_reference.as_deref(), 100);
    }

    fn niks(&self) -> Vec<&Nik> {
        self.applicant_nik.iter().collect()
    }

    fn subject(&self) -> String {
        self.business_name.clone()
    }
}

/// The environmental document a building needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentalDocument {
    /// Statement of environmental management capability (small works).
    #[autosurgeon(rename = "sppl")]
    Sppl,
    /// Environmental management and monitoring efforts.
    #[autosurgeon(rename = "ukl_upl")]
    UklUpl,
    /// Environmental impact assessment.
    #[autosurgeon(rename = "amdal")]
    Amdal,
}

/// Building approval (Persetujuan Bangunan Gedung).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct BuildingApproval {
    /// Land title (certificate) reference.
    pub land_title_reference: String,
    /// NIK of the owner.
    pub owner_nik: Nik,
    /// NIB, when the building is for a business.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nib: Option<Nib>,
    /// KKPR/KRK reference.
    pub kkpr_reference: String,
    /// Environmental document type.
    pub environmental_document: EnvironmentalDocument,
    /// Architect's licence number.
    pub architect_licence: String,
    /// Where the building stands.
    pub address: Address,
}

impl KindRules for BuildingApproval {
    fn validate(&self, v: &mut Validator) {
        v.text("land_title_reference", &self.land_title_reference, 100);
        check_nik(v, "owner_nik", &self.owner_nik);
        if let Some(n) = &self.nib {
            v.errors_at("nib", n.check());
        }
        v.text("kkpr_reference", &self.kkpr_reference, 100);
        v.text("architect_licence", &self.architect_licence, 100);
        v.at("address", |v| self.address.validate(v));
    }

    fn required_attachments(&self) -> Vec<AttachmentRole> {
        vec![
            AttachmentRole::SitePlan,
            AttachmentRole::FloorPlan,
            AttachmentRole::SectionDrawing,
            AttachmentRole::ElevationDrawing,
            AttachmentRole::StructureDrawing,
        ]
    }

    fn niks(&self) -> Vec<&Nik> {
        vec![&self.owner_nik]
    }

    fn subject(&self) -> String {
        self.address.street.clone()
    }
}
