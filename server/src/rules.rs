//! What an incoming change may do, judged by comparing the request before
//! and after the merge, with the author known from the device's enrollment.
//! This is the seed of the full rules table (which fields each role may
//! write in each status); today it holds what the sync protocol cannot do
//! without: authorship cannot be forged, history is append-only, and who a
//! request belongs to cannot be rewritten to leak it elsewhere.

use sambung_core::lifecycle::Role;
use sambung_core::model::Request;

use crate::accounts::Account;

/// Checks the change from `before` (absent for a new request) to `after`
/// made by `caller`; the error is the reason given to the device.
pub fn check(
    before: Option<&Request>,
    after: &Request,
    caller: &Account,
) -> Result<(), &'static str> {
    match before {
        None => {
            if after.created_by != caller.id || after.created_role != caller.role {
                return Err("a new request must be created by the account that sends it");
            }
        }
        Some(b) => {
            if (b.created_by.as_str(), b.created_role, b.created_at)
                != (
                    after.created_by.as_str(),
                    after.created_role,
                    after.created_at,
                )
            {
                return Err("the creator of a request cannot change");
            }
            let nik = |r: &Request| r.content.applicant.as_ref().map(|a| a.nik.clone());
            if caller.role == Role::Resident && nik(b) != nik(after) {
                return Err("a resident cannot change the applicant's NIK after filing");
            }
        }
    }
    // Erasure is the server's alone, and final.
    if before.is_some_and(|b| b.erased_at.is_some()) {
        return Err("the personal data of this request was erased; it takes no more changes");
    }
    if after.erased_at.is_some() {
        return Err("only the server erases a request's personal data");
    }
    // Limits on attachments, checked when the list grows (a request over
    // newer limits may still shed attachments, and keeps syncing).
    let total = |r: &Request| r.attachments.iter().map(|a| a.size).sum::<u64>();
    if before
        .is_none_or(|b| after.attachments.len() > b.attachments.len() || total(after) > total(b))
    {
        sambung_core::protocol::blobs::check_request_attachments(&after.attachments)?;
    }
    // Assignment is the back office's decision.
    if before.and_then(|b| b.assignee.as_ref()) != after.assignee.as_ref()
        && caller.role != Role::Agency
    {
        return Err("only the agency assigns a request to an officer");
    }
    let old_history = before.map(|b| b.history.as_slice()).unwrap_or_default();
    let old_notes = before.map(|b| b.notes.as_slice()).unwrap_or_default();
    // Append-only: everything that was there stays as it was.
    if old_history.iter().any(|e| !after.history.contains(e))
        || old_notes.iter().any(|n| !after.notes.contains(n))
    {
        return Err("the history and notes of a request are append-only");
    }
    let mine = |by: &str, role: Role| by == caller.id && role == caller.role;
    if after
        .history
        .iter()
        .filter(|e| !old_history.contains(e))
        .any(|e| !mine(&e.by, e.role))
    {
        return Err("a status change must carry its author's own account and role");
    }
    if after
        .notes
        .iter()
        .filter(|n| !old_notes.contains(n))
        .any(|n| !mine(&n.by, n.role))
    {
        return Err("a note must carry its author's own account and role");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sambung_core::lifecycle::{Status, StatusEntry};
    use sambung_core::model::{Kind, Note, RequestId};
    use sambung_core::{Timestamp, templates};

    fn account(id: &str, role: Role) -> Account {
        Account {
            id: id.into(),
            role,
            regions: vec!["32".into()],
            nik_hash: None,
        }
    }

    fn request(by: &str) -> Request {
        Request {
            id: RequestId::random(),
            created_at: Timestamp(1),
            created_by: by.into(),
            created_role: Role::Resident,
            content: templates::example(Kind::KtpEl),
            attachments: vec![],
            history: vec![],
            notes: vec![],
            assignee: None,
            erased_at: None,
        }
    }

    fn entry(by: &str, role: Role, to: Status) -> StatusEntry {
        StatusEntry {
            seq: 0,
            at: Timestamp(2),
            id: format!("{by}-{to}"),
            from: Status::Draft,
            to,
            by: by.into(),
            role,
            note: None,
        }
    }

    #[test]
    fn attachments_over_the_limits_are_refused_when_the_list_changes() {
        use sambung_core::model::{AttachmentRef, AttachmentRole};
        use sambung_core::protocol::blobs::{MAX_REQUEST_ATTACHMENTS, REQUEST_LIMITS};
        let warga = account("warga-1", Role::Resident);
        let photo = |i: usize| AttachmentRef {
            sha256: format!("{i:064x}"),
            role: AttachmentRole::Photo,
            name: "p.jpg".into(),
            mime: "image/jpeg".into(),
            size: 1000,
            added_at: Timestamp(2),
        };
        let mut full = request("warga-1");
        full.attachments = (0..MAX_REQUEST_ATTACHMENTS).map(photo).collect();
        assert_eq!(check(None, &full, &warga), Ok(()));
        // A tampered client adds one more than the device would allow.
        let mut over = full.clone();
        over.attachments.push(photo(99));
        over.attachments.push(photo(98));
        assert_eq!(check(Some(&full), &over, &warga), Err(REQUEST_LIMITS));
        assert_eq!(check(None, &over, &warga), Err(REQUEST_LIMITS));
        // A request that met older limits keeps taking other changes.
        let mut note = over.clone();
        note.notes.push(Note {
            id: "n".into(),
            at: Timestamp(3),
            by: "warga-1".into(),
            role: Role::Resident,
            text: "x".into(),
        });
        assert_eq!(check(Some(&over), &note, &warga), Ok(()));
        // And may shed attachments, even while still over.
        let mut fewer = over.clone();
        fewer.attachments.pop();
        assert_eq!(check(Some(&over), &fewer, &warga), Ok(()));
    }

    #[test]
    fn authorship_cannot_be_forged_and_history_is_append_only() {
        let warga = account("warga-1", Role::Resident);
        let b = request("warga-1");
        assert_eq!(check(None, &b, &warga), Ok(()));
        assert!(check(None, &request("warga-2"), &warga).is_err());
        // A resident approving "as the agency".
        let mut forged = b.clone();
        forged
            .history
            .push(entry("dinas", Role::Agency, Status::Approved));
        assert!(check(Some(&b), &forged, &warga).is_err());
        let mut honest = b.clone();
        honest
            .history
            .push(entry("warga-1", Role::Resident, Status::Submitted));
        assert_eq!(check(Some(&b), &honest, &warga), Ok(()));
        // Rewriting what was there.
        let mut rewritten = honest.clone();
        rewritten.history[0].to = Status::Withdrawn;
        assert!(check(Some(&honest), &rewritten, &warga).is_err());
        let mut note = b.clone();
        note.notes.push(Note {
            id: "n".into(),
            at: Timestamp(3),
            by: "petugas-1".into(),
            role: Role::Officer,
            text: "x".into(),
        });
        assert!(check(Some(&b), &note, &warga).is_err());
    }

    #[test]
    fn ownership_and_applicant_cannot_be_rewritten_to_leak_a_request() {
        let officer = account("petugas-1", Role::Officer);
        let warga = account("warga-1", Role::Resident);
        let b = request("warga-1");
        let mut moved = b.clone();
        moved.created_by = "warga-2".into();
        assert!(check(Some(&b), &moved, &officer).is_err());
        let mut renamed = b.clone();
        renamed.content.applicant.as_mut().unwrap().nik = "3273011503850002".into();
        assert!(check(Some(&b), &renamed, &warga).is_err());
        // An officer may correct the applicant's NIK.
        assert_eq!(check(Some(&b), &renamed, &officer), Ok(()));
    }

    #[test]
    fn only_the_agency_assigns() {
        let b = request("warga-1");
        let mut assigned = b.clone();
        assigned.assignee = Some("petugas-2".into());
        for who in [
            account("warga-1", Role::Resident),
            account("petugas-2", Role::Officer),
        ] {
            assert!(check(Some(&b), &assigned, &who).is_err(), "{who:?}");
            // Nor unassigning, nor arriving already assigned.
            assert!(check(Some(&assigned), &b, &who).is_err(), "{who:?}");
        }
        let mut new_assigned = assigned.clone();
        new_assigned.created_by = "petugas-2".into();
        new_assigned.created_role = Role::Officer;
        assert!(check(None, &new_assigned, &account("petugas-2", Role::Officer)).is_err());
        let agency = account("dinas", Role::Agency);
        assert_eq!(check(Some(&b), &assigned, &agency), Ok(()));
        assert_eq!(check(Some(&assigned), &b, &agency), Ok(()));
    }
}
