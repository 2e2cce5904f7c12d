//! Population registry (Disdukcapil): birth, death, move of address,
//! family-card update and KTP-el.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::{Address, AttachmentRole, KindRules, MAX_SHORT_TEXT, Person, check_nik, check_people};
use crate::identifiers::{Kk, Nik, Sex};
use crate::time::Date;
use crate::validation::{Code, Validator};

/// Birth registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct Birth {
    /// The child's name.
    pub child_name: String,
    /// The child's sex.
    pub child_sex: Sex,
    /// Date of birth.
    pub birth_date: Date,
    /// Time of birth, `HH:MM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_time: Option<String>,
    /// Place of birth.
    pub birth_place: String,
    /// Mother's NIK.
    pub mother_nik: Nik,
    /// Father's NIK, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub father_nik: Option<Nik>,
    /// The family card the child joins.
    pub kk_number: Kk,
    /// Two witnesses.
    pub witnesses: Vec<Person>,
}

/// A parent's NIK: valid, and encoding the parent's sex, which is certain.
fn check_parent(v: &mut Validator, field: &str, nik: &Nik, sex: Sex) {
    let codes = nik.check();
    if codes.is_empty() && nik.birth().is_some_and(|(_, _, _, s)| s != sex) {
        v.error_at(field, Code::NikSex);
    }
    v.errors_at(field, codes);
}

impl KindRules for Birth {
    fn validate(&self, v: &mut Validator) {
        v.text("child_name", &self.child_name, MAX_SHORT_TEXT);
        v.past_date("birth_date", &self.birth_date);
        if let Some(t) = &self.birth_time
            && !crate::time::is_time_of_day(t)
        {
            v.error_at("birth_time", Code::TimeFormat);
        }
        v.text("birth_place", &self.birth_place, MAX_SHORT_TEXT);
        check_parent(v, "mother_nik", &self.mother_nik, Sex::Female);
        if let Some(f) = &self.father_nik {
            check_parent(v, "father_nik", f, Sex::Male);
            if *f == self.mother_nik {
                v.error_at("father_nik", Code::Duplicate);
            }
        }
        v.errors_at("kk_number", self.kk_number.check());
        check_people(v, "witnesses", &self.witnesses, 2, 2);
    }

    fn required_attachments(&self) -> Vec<AttachmentRole> {
        vec![AttachmentRole::BirthLetter]
    }

    fn niks(&self) -> Vec<&Nik> {
        let mut n = vec![&self.mother_nik];
        n.extend(self.father_nik.iter());
        n.extend(self.witnesses.iter().map(|w| &w.nik));
        n
    }

    fn subject(&self) -> String {
        self.child_name.clone()
    }
}

/// Cause of death, as categorised on the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum DeathCause {
    #[autosurgeon(rename = "illness")]
    Illness,
    #[autosurgeon(rename = "old_age")]
    OldAge,
    #[autosurgeon(rename = "accident")]
    Accident,
    #[autosurgeon(rename = "disaster")]
    Disaster,
    #[autosurgeon(rename = "other")]
    Other,
    #[autosurgeon(rename = "unknown")]
    Unknown,
}

/// Death registration (to be reported within 30 days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct Death {
    /// NIK of the deceased.
    pub deceased_nik: Nik,
    /// Name of the deceased.
    pub deceased_name: String,
    /// Date of death.
    pub date_of_death: Date,
    /// Place of death.
    pub place_of_death: String,
    /// Cause category.
    pub cause: DeathCause,
    /// NIK of the person reporting.
    pub reporter_nik: Nik,
    /// Two witnesses.
    pub witnesses: Vec<Person>,
}

impl KindRules for Death {
    fn validate(&self, v: &mut Validator) {
        check_nik(v, "deceased_nik", &self.deceased_nik);
        v.text("deceased_name", &self.deceased_name, MAX_SHORT_TEXT);
        if let Some(d) = v.past_date("date_of_death", &self.date_of_death)
            && v.today.to_days() - d.to_days() > 30
        {
            v.warn_at("date_of_death", Code::LateReport);
        }
        v.text("place_of_death", &self.place_of_death, MAX_SHORT_TEXT);
        check_nik(v, "reporter_nik", &self.reporter_nik);
        if self.reporter_nik == self.deceased_nik {
            v.error_at("reporter_nik", Code::Duplicate);
        }
        check_people(v, "witnesses", &self.witnesses, 2, 2);
    }

    fn required_attachments(&self) -> Vec<AttachmentRole> {
        vec![AttachmentRole::DeathStatement]
    }

    fn niks(&self) -> Vec<&Nik> {
        let mut n = vec![&self.deceased_nik, &self.reporter_nik];
        n.extend(self.witnesses.iter().map(|w| &w.nik));
        n
    }

    fn subject(&self) -> String {
        self.deceased_name.clone()
    }
}

/// Why people move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum MoveReason {
    #[autosurgeon(rename = "work")]
    Work,
    #[autosurgeon(rename = "education")]
    Education,
    #[autosurgeon(rename = "family")]
    Family,
    #[autosurgeon(rename = "housing")]
    Housing,
    #[autosurgeon(rename = "health")]
    Health,
    #[autosurgeon(rename = "security")]
    Security,
    #[autosurgeon(rename = "other")]
    Other,
}

/// Move of address (pindah/datang).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct MoveAddress {
    /// NIK of each person moving.
    pub movers: Vec<Nik>,
    /// Where they live now.
    pub origin: Address,
    /// Where they move to.
    pub destination: Address,
    /// Why.
    pub reason: MoveReason,
}

impl MoveAddress {
    /// Whether the move crosses a regency border, so that the origin office
    /// issues an SKPWNI and both offices are involved.
    pub fn crosses_regency(&self) -> bool {
        self.origin.region.regency() != self.destination.region.regency()
    }
}

impl KindRules for MoveAddress {
    fn validate(&self, v: &mut Validator) {
        v.at("movers", |v| {
            if self.movers.is_empty() || self.movers.len() > 30 {
                v.error(Code::Count);
            }
            for (i, n) in self.movers.iter().enumerate() {
                v.at_index(i, |v| {
                    for c in n.check() {
                        v.error(c);
                    }
                    if self.movers[..i].contains(n) {
                        v.error(Code::Duplicate);
                    }
                });
            }
        });
        v.at("origin", |v| self.origin.validate(v));
        v.at("destination", |v| self.destination.validate(v));
    }

    fn required_attachments(&self) -> Vec<AttachmentRole> {
        vec![
            AttachmentRole::FormF103,
            AttachmentRole::KkCopy,
            AttachmentRole::KtpCopy,
        ]
    }

    fn niks(&self) -> Vec<&Nik> {
        self.movers.iter().collect()
    }

    fn subject(&self) -> String {
        format!("{} person(s)", self.movers.len())
    }
}

/// What changes on the family card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum FamilyCardChange {
    #[autosurgeon(rename = "add_member")]
    AddMember,
    #[autosurgeon(rename = "remove_member")]
    RemoveMember,
    #[autosurgeon(rename = "correct_data")]
    CorrectData,
}

/// Family-card (KK) update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct FamilyCardUpdate {
    /// The family card.
    pub kk_number: Kk,
    /// The change.
    pub change: FamilyCardChange,
    /// The members affected.
    pub members: Vec<Person>,
}

impl KindRules for FamilyCardUpdate {
    fn validate(&self, v: &mut Validator) {
        v.errors_at("kk_number", self.kk_number.check());
        check_people(v, "members", &self.members, 1, 30);
    }

    fn niks(&self) -> Vec<&Nik> {
        self.members.iter().map(|m| &m.nik).collect()
    }

    fn subject(&self) -> String {
        format!("{} member(s)", self.members.len())
    }
}

/// Why a KTP-el is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum KtpReason {
    #[autosurgeon(rename = "new")]
    New,
    #[autosurgeon(rename = "lost")]
    Lost,
    #[autosurgeon(rename = "damaged")]
    Damaged,
    #[autosurgeon(rename = "data_change")]
    DataChange,
}

/// Electronic identity card (KTP-el).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct KtpEl {
    /// NIK of the card holder.
    pub nik: Nik,
    /// Why.
    pub reason: KtpReason,
}

impl KindRules for KtpEl {
    fn validate(&self, v: &mut Validator) {
        check_nik(v, "nik", &self.nik);
    }

    fn required_attachments(&self) -> Vec<AttachmentRole> {
        match self.reason {
            KtpReason::Lost => vec![AttachmentRole::PoliceReport],
            _ => Vec::new(),
        }
    }

    fn niks(&self) -> Vec<&Nik> {
        vec![&self.nik]
    }

    fn subject(&self) -> String {
        match self.reason {
            KtpReason::New => "new card",
            KtpReason::Lost => "lost card",
            KtpReason::Damaged => "damaged card",
            KtpReason::DataChange => "data change",
        }
        .to_owned()
    }
}
