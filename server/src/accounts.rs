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
}

impl Account {
    /// Whether this account may see (and so write to) a document.
    pub fn may_see(&self, doc: &Scope) -> bool {
        if doc.owner == self.id {
            return true;
        }
        match self.role {
            Role::Resident => self.nik_hash.is_some() && self.nik_hash == doc.applicant_nik_hash,
            Role::Officer => {
                self.in_regions(&doc.region) || doc.assignee.as_deref() == Some(self.id.as_str())
            }
            Role::Agency => self.regions.is_empty() || self.in_regions(&doc.region),
        }
    }

    fn in_regions(&self, region: &str) -> bool {
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
        }
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
