//! Accounts, devices and who may see which document.

use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::Role;
use serde::{Deserialize, Serialize};

/// An enrolled account (a resident, a field officer, an agency system).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Pseudonymous account id, given by the agency at enrollment.
    pub id: String,
    /// Role.
    pub role: Role,
    /// Region codes an officer or agency works in (prefix match).
    pub regions: Vec<String>,
    /// Keyed hash of a resident's NIK, linking requests filed on their
    /// behalf (the NIK itself is not kept).
    #[serde(skip)]
    pub nik_hash: Option<Vec<u8>>,
}

/// What the server keeps of a document to decide who sees it, read from the
/// document after every merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Region the request is filed in.
    pub region: String,
    /// Account that created it.
    pub owner: String,
    /// Keyed hash of the applicant's NIK.
    pub applicant_nik_hash: Option<Vec<u8>>,
    /// The officer account it is assigned to.
    pub assignee: Option<String>,
    /// Whether it is a draft, and whose: drafts are served to no other
    /// account until they are submitted.
    pub draft: Draft,
}

/// Who may see a draft (a request not yet submitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Draft {
    /// Submitted (or further): the ordinary rules apply.
    #[default]
    No,
    /// A resident's draft: its creator's alone (the server keeps it as a
    /// backup).
    Own,
    /// Filed by an officer on a resident's behalf: the officer and the
    /// resident whose NIK it names.
    OnBehalf,
}

impl Draft {
    /// The stored number (column `draft`).
    pub fn as_i64(self) -> i64 {
        match self {
            Draft::No => 0,
            Draft::Own => 1,
            Draft::OnBehalf => 2,
        }
    }

    /// From the stored number; an unknown one is taken as the strictest.
    pub fn from_i64(n: i64) -> Draft {
        match n {
            0 => Draft::No,
            2 => Draft::OnBehalf,
            _ => Draft::Own,
        }
    }
}

impl Account {
    /// Whether this account may see (and so write to) a document.
    pub fn may_see(&self, doc: &Scope) -> bool {
        if doc.owner == self.id {
            return true;
        }
        let linked = || {
            self.role == Role::Resident
                && self.nik_hash.is_some()
                && self.nik_hash == doc.applicant_nik_hash
        };
        match doc.draft {
            Draft::No => {}
            Draft::Own => return false,
            Draft::OnBehalf => return linked(),
        }
        match self.role {
            Role::Resident => self.nik_hash.is_some() && self.nik_hash == doc.applicant_nik_hash,
            Role::Officer => {
                self.works_in(&doc.region) || doc.assignee.as_deref() == Some(self.id.as_str())
            }
            Role::Agency => self.regions.is_empty() || self.works_in(&doc.region),
        }
    }

    /// Whether `region` lies within one of this account's regions.
    pub fn works_in(&self, region: &str) -> bool {
        let region = RegionCode::from(region);
        self.regions
            .iter()
            .any(|r| region.is_within(&RegionCode::from(r.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(region: &str, owner: &str, nik: Option<&[u8]>) -> Scope {
        Scope {
            region: region.into(),
            owner: owner.into(),
            applicant_nik_hash: nik.map(|n| n.to_vec()),
            assignee: None,
            draft: Draft::No,
        }
    }

    #[test]
    fn drafts_are_seen_by_their_creator_and_the_resident_filed_for_only() {
        let accounts = [
            Account {
                id: "warga-1".into(),
                role: Role::Resident,
                regions: vec![],
                nik_hash: Some(vec![1]),
            },
            Account {
                id: "petugas-1".into(),
                role: Role::Officer,
                regions: vec!["32".into()],
                nik_hash: None,
            },
            Account {
                id: "dinas".into(),
                role: Role::Agency,
                regions: vec![],
                nik_hash: None,
            },
            Account {
                id: "warga-2".into(),
                role: Role::Resident,
                regions: vec![],
                nik_hash: Some(vec![2]),
            },
        ];
        let seen_by = |s: &Scope| -> Vec<&str> {
            accounts
                .iter()
                .filter(|a| a.may_see(s))
                .map(|a| a.id.as_str())
                .collect()
        };
        // A resident's draft: theirs alone, though region, NIK and
        // assignment would show it to others once submitted.
        let own = Scope {
            draft: Draft::Own,
            assignee: Some("petugas-1".into()),
            ..scope("32.73.01.1001", "warga-1", Some(&[2]))
        };
        assert_eq!(seen_by(&own), vec!["warga-1"]);
        assert_eq!(
            seen_by(&Scope {
                draft: Draft::No,
                ..own.clone()
            }),
            vec!["warga-1", "petugas-1", "dinas", "warga-2"]
        );
        // Filed by an officer for warga-1: the officer and warga-1.
        let filed = Scope {
            draft: Draft::OnBehalf,
            ..scope("32.73.01.1001", "petugas-1", Some(&[1]))
        };
        assert_eq!(seen_by(&filed), vec!["warga-1", "petugas-1"]);
        for n in [0, 1, 2, 7, -1] {
            let d = Draft::from_i64(n);
            assert!(n == 7 || n == -1 || d.as_i64() == n);
        }
        assert_eq!(Draft::from_i64(7), Draft::Own, "unknown is strictest");
    }

    #[test]
    fn residents_see_their_own_and_what_was_filed_for_them() {
        let r = Account {
            id: "warga-1".into(),
            role: Role::Resident,
            regions: vec![],
            nik_hash: Some(vec![1]),
        };
        assert!(r.may_see(&scope("32.73.01.1001", "warga-1", None)));
        assert!(r.may_see(&scope("32.73.01.1001", "petugas-1", Some(&[1]))));
        assert!(!r.may_see(&scope("32.73.01.1001", "petugas-1", Some(&[2]))));
        assert!(!r.may_see(&scope("32.73.01.1001", "warga-2", None)));
        let no_nik = Account {
            nik_hash: None,
            ..r
        };
        assert!(!no_nik.may_see(&scope("32", "x", None)));
    }

    #[test]
    fn officers_see_their_regions_by_prefix() {
        let o = Account {
            id: "petugas-1".into(),
            role: Role::Officer,
            regions: vec!["32.73".into(), "33.01.02".into()],
            nik_hash: None,
        };
        assert!(o.may_see(&scope("32.73.01.1001", "warga-1", None)));
        assert!(o.may_see(&scope("32.73", "warga-1", None)));
        assert!(o.may_see(&scope("33.01.02.2001", "warga-1", None)));
        assert!(!o.may_see(&scope("32.74.01.1001", "warga-1", None)));
        assert!(!o.may_see(&scope("32.7", "warga-1", None)));
        assert!(!o.may_see(&scope("33.01.03.2001", "warga-1", None)));
        // Assigned to them: seen whatever the region; to another: not.
        let assigned = |to: &str| Scope {
            assignee: Some(to.into()),
            ..scope("91.01.01.1001", "warga-1", None)
        };
        assert!(o.may_see(&assigned("petugas-1")));
        assert!(!o.may_see(&assigned("petugas-2")));
        // Assignment grants nothing to a resident of the same id.
        let r = Account {
            id: "petugas-1".into(),
            role: Role::Resident,
            regions: vec![],
            nik_hash: None,
        };
        assert!(!r.may_see(&assigned("petugas-1")));
        let agency = Account {
            id: "dinas".into(),
            role: Role::Agency,
            regions: vec![],
            nik_hash: None,
        };
        assert!(agency.may_see(&scope("91.01", "x", None)));
    }
}
