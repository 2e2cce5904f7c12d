//! The lifecycle of a request (domain.md): an append-only history of
//! transitions, from which the current status is derived deterministically —
//! also when parties acted concurrently while offline.
//!
//! ```text
//! draft → submitted → received → in_review ⇄ needs_info
//!                                in_review → approved | rejected → completed
//! withdrawn: by the applicant, any time before a decision
//! ```

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Where a request stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Reconcile,
    Hydrate,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[autosurgeon(rename = "draft")]
    Draft,
    #[autosurgeon(rename = "submitted")]
    Submitted,
    #[autosurgeon(rename = "received")]
    Received,
    #[autosurgeon(rename = "in_review")]
    InReview,
    #[autosurgeon(rename = "needs_info")]
    NeedsInfo,
    #[autosurgeon(rename = "approved")]
    Approved,
    #[autosurgeon(rename = "rejected")]
    Rejected,
    #[autosurgeon(rename = "completed")]
    Completed,
    #[autosurgeon(rename = "withdrawn")]
    Withdrawn,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 9] = [
        Status::Draft,
        Status::Submitted,
        Status::Received,
        Status::InReview,
        Status::NeedsInfo,
        Status::Approved,
        Status::Rejected,
        Status::Completed,
        Status::Withdrawn,
    ];

    /// The stable snake_case name, as in JSON and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::Received => "received",
            Status::InReview => "in_review",
            Status::NeedsInfo => "needs_info",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Completed => "completed",
            Status::Withdrawn => "withdrawn",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether a decision has been made or the request ended.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Approved | Status::Rejected | Status::Completed | Status::Withdrawn
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who acts.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Reconcile,
    Hydrate,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The applicant on their own phone.
    #[autosurgeon(rename = "resident")]
    Resident,
    /// A field officer (door-to-door registration, inspections).
    #[autosurgeon(rename = "officer")]
    Officer,
    /// The back office of the agency.
    #[autosurgeon(rename = "agency")]
    Agency,
}

impl Role {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Resident => "resident",
            Role::Officer => "officer",
            Role::Agency => "agency",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Resident, Role::Officer, Role::Agency]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Whether `role` may move a request from `from` to `to`. This table is the
/// one place that states the lifecycle's permissions.
pub fn allowed(role: Role, from: Status, to: Status) -> bool {
    use Role::*;
    use Status::*;
    match (from, to) {
        // A resident submits their draft; an officer submits what they filed
        // on a resident's behalf during a visit.
        (Draft, Submitted) => matches!(role, Resident | Officer),
        (Submitted, Received) | (Received, InReview) | (InReview, NeedsInfo) => {
            matches!(role, Officer | Agency)
        }
        // Answering a request for information puts it back in review.
        (NeedsInfo, InReview) => true,
        (InReview, Approved) | (InReview, Rejected) => role == Agency,
        (Approved, Completed) | (Rejected, Completed) => role == Agency,
        (Draft | Submitted | Received | InReview | NeedsInfo, Withdrawn) => {
            matches!(role, Resident | Officer)
        }
        _ => false,
    }
}

/// One transition in the history. Fields are in sort order: the derived
/// `Ord` is the total order in which history is replayed.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Reconcile, Hydrate,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct StatusEntry {
    /// How many history entries the author had seen when writing this one;
    /// an entry that saw another always sorts after it.
    pub seq: u64,
    /// When, by the author's clock; orders concurrent entries.
    pub at: Timestamp,
    /// Random id of this entry; breaks remaining ties.
    #[key]
    pub id: String,
    /// Status the author saw.
    pub from: Status,
    /// Status the author moved to.
    pub to: Status,
    /// Pseudonymous account id of the author.
    pub by: String,
    /// The author's role.
    pub role: Role,
    /// An optional note on the transition.
    pub note: Option<String>,
}

/// The history with the effect of each entry, in the deterministic order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived<'a> {
    /// The current status.
    pub status: Status,
    /// Entries in order, each with whether it took effect (an entry made
    /// concurrently with another from the same status may have been
    /// overtaken; it stays in the history, with no effect).
    pub entries: Vec<(&'a StatusEntry, bool)>,
}

/// Derives the current status from a history in any order: entries are
/// sorted by (seq, at, id, …) and applied when they start from the status
/// reached so far and the author's role allows them. A withdrawal applies
/// from any status that still allows one.
///
/// ```
/// use sambung_core::lifecycle::{derive, Status};
/// assert_eq!(derive(&[]).status, Status::Draft);
/// ```
pub fn derive(history: &[StatusEntry]) -> Derived<'_> {
    let mut sorted: Vec<&StatusEntry> = history.iter().collect();
    sorted.sort();
    let mut status = Status::Draft;
    let mut entries = Vec::with_capacity(sorted.len());
    for e in sorted {
        // A withdrawal counts as long as no decision has been made, even if
        // another party moved the request on concurrently: the applicant's
        // wish to withdraw is never lost to a race with an officer.
        let effective = if e.to == Status::Withdrawn {
            allowed(e.role, status, Status::Withdrawn)
        } else {
            e.from == status && allowed(e.role, e.from, e.to)
        };
        if effective {
            status = e.to;
        }
        entries.push((e, effective));
    }
    Derived { status, entries }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(id: &str, seq: u64, from: Status, to: Status, role: Role) -> StatusEntry {
        StatusEntry {
            id: id.into(),
            seq,
            from,
            to,
            at: Timestamp(1000 + seq as i64),
            by: "u".into(),
            role,
            note: None,
        }
    }

    #[test]
    fn resident_may_only_submit_answer_and_withdraw() {
        use Status::*;
        let mut resident = Vec::new();
        for from in Status::ALL {
            for to in Status::ALL {
                if allowed(Role::Resident, from, to) {
                    resident.push((from, to));
                }
            }
        }
        assert_eq!(
            resident,
            vec![
                (Draft, Submitted),
                (Draft, Withdrawn),
                (Submitted, Withdrawn),
                (Received, Withdrawn),
                (InReview, Withdrawn),
                (NeedsInfo, InReview),
                (NeedsInfo, Withdrawn),
            ]
        );
        assert!(!allowed(Role::Officer, InReview, Approved));
        assert!(allowed(Role::Agency, InReview, Approved));
        assert!(!allowed(Role::Agency, Approved, Withdrawn));
    }

    #[test]
    fn a_concurrent_withdrawal_is_never_lost_before_a_decision() {
        use Status::*;
        let base = vec![
            entry("a", 0, Draft, Submitted, Role::Resident),
            entry("b", 1, Submitted, Received, Role::Officer),
        ];
        // Both saw `received`; whichever sorts first, the withdrawal holds.
        for (w_id, r_id) in [("w", "r"), ("r", "w")] {
            let w = entry(w_id, 2, Received, Withdrawn, Role::Resident);
            let r = entry(r_id, 2, Received, InReview, Role::Officer);
            let mut h = base.clone();
            h.extend([w.clone(), r.clone()]);
            assert_eq!(derive(&h).status, Withdrawn, "withdrawal id {w_id}");
        }
        // After a decision, a concurrent withdrawal has no effect.
        let mut h = base.clone();
        h.push(entry("c", 2, Received, InReview, Role::Officer));
        h.push(entry("d", 3, InReview, Approved, Role::Agency));
        h.push(entry("e", 4, InReview, Withdrawn, Role::Resident));
        let d = derive(&h);
        assert_eq!(d.status, Approved);
        assert!(!d.entries.last().unwrap().1);
        // Two concurrent reviews from the same status: one is overtaken.
        let mut h = base;
        h.push(entry("x", 2, Received, InReview, Role::Officer));
        h.push(entry("y", 2, Received, InReview, Role::Agency));
        let d = derive(&h);
        assert_eq!(d.status, InReview);
        let ineffective: Vec<_> = d
            .entries
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(e, _)| e.id.as_str())
            .collect();
        assert_eq!(ineffective, vec!["y"]);
    }

    #[test]
    fn forbidden_entries_have_no_effect() {
        use Status::*;
        let h = vec![
            entry("a", 0, Draft, Submitted, Role::Resident),
            entry("b", 1, Submitted, Approved, Role::Resident),
        ];
        assert_eq!(derive(&h).status, Submitted);
    }

    proptest! {
        // Whatever the history (forged, concurrent, out of order), the
        // derivation only ever takes steps the lifecycle allows, and the
        // effective entries alone derive the same status.
        #[test]
        fn derivation_only_takes_allowed_steps(h in proptest::collection::vec(any::<StatusEntry>(), 0..12)) {
            let d = derive(&h);
            let mut status = Status::Draft;
            let mut effective = Vec::new();
            for (e, ok) in &d.entries {
                if *ok {
                    prop_assert!(allowed(e.role, status, e.to), "{:?} -> {:?} by {:?}", status, e.to, e.role);
                    status = e.to;
                    effective.push((*e).clone());
                }
            }
            prop_assert_eq!(status, d.status);
            prop_assert_eq!(derive(&effective).status, d.status);
        }
    }
}
