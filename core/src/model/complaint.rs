//! Citizen complaints (LAPOR!/SP4N-style reports).

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::{KindRules, Location, MAX_LONG_TEXT};
use crate::identifiers::Nik;
use crate::time::Date;
use crate::validation::Validator;

/// What a complaint is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum ComplaintCategory {
    #[autosurgeon(rename = "infrastructure")]
    Infrastructure,
    #[autosurgeon(rename = "environment")]
    Environment,
    #[autosurgeon(rename = "traffic")]
    Traffic,
    #[autosurgeon(rename = "public_service")]
    PublicService,
    #[autosurgeon(rename = "illegal_levy")]
    IllegalLevy,
    #[autosurgeon(rename = "abuse_of_authority")]
    AbuseOfAuthority,
    #[autosurgeon(rename = "discrimination")]
    Discrimination,
    #[autosurgeon(rename = "other")]
    Other,
}

/// A citizen complaint, optionally anonymous; photos are attachments with
/// the `photo` role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct Complaint {
    /// Category.
    pub category: ComplaintCategory,
    /// What happened.
    pub text: String,
    /// Where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// When it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_on: Option<Date>,
    /// Whether the complainant's identity is withheld from the agency.
    pub anonymous: bool,
}

impl KindRules for Complaint {
    fn validate(&self, v: &mut Validator) {
        v.text("text", &self.text, MAX_LONG_TEXT);
        if let Some(l) = &self.location {
            v.at("location", |v| l.validate(v));
        }
        if let Some(d) = &self.occurred_on {
            v.past_date("occurred_on", d);
        }
    }

    fn niks(&self) -> Vec<&Nik> {
        Vec::new()
    }

    fn subject(&self) -> String {
        let mut s: String = self.text.chars().take(60).collect();
        if self.text.chars().count() > 60 {
            s.push('…');
        }
        s
    }
}
