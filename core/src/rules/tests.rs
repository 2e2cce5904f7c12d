use super::*;
use crate::Timestamp;
use crate::lifecycle::StatusEntry;
use crate::model::{AttachmentRef, AttachmentRole, Note};
use crate::templates;

/// [`super::check`] for the compiled-in kinds these tests file (their
/// kind says whether they are verified on site).
fn check(before: Option<&Request>, after: &Request, author: Author<'_>) -> Result<(), Denied> {
    super::check(before, after, author, after.kind().into())
}

fn author(user: &str, role: Role) -> Author<'_> {
    Author { user, role }
}

fn request(by: &str, kind: Kind) -> Request {
    Request::draft(templates::example(kind), by, Role::Resident, Timestamp(1))
}

fn entry(by: &str, role: Role, seq: u64, from: Status, to: Status) -> StatusEntry {
    StatusEntry {
        seq,
        at: Timestamp(2 + seq as i64),
        id: format!("{by}-{seq}-{to}"),
        from,
        to,
        by: by.into(),
        role,
        note: None,
    }
}

/// `r` moved along `path` by whoever may make each step.
fn at(mut r: Request, path: &[Status]) -> Request {
    let mut from = r.status();
    for &to in path {
        let role = [Role::Resident, Role::Officer, Role::Agency]
            .into_iter()
            .find(|&role| lifecycle::allowed(role, from, to))
            .expect("a step of the lifecycle");
        let seq = r.history.len() as u64;
        r.history.push(entry("x", role, seq, from, to));
        from = to;
    }
    assert_eq!(r.status(), from);
    r
}

fn photo(i: usize) -> AttachmentRef {
    AttachmentRef {
        sha256: format!("{i:064x}"),
        role: AttachmentRole::Photo,
        purpose: None,
        name: "p.jpg".into(),
        mime: "image/jpeg".into(),
        size: 1000,
        added_at: Timestamp(2),
    }
}

fn note(by: &str, role: Role) -> Note {
    Note {
        id: format!("n-{by}"),
        at: Timestamp(3),
        by: by.into(),
        role,
        text: "x".into(),
    }
}

const REVIEW: &[Status] = &[Status::Submitted, Status::Received, Status::InReview];

#[test]
fn the_table_says_what_the_issue_and_domain_say() {
    use Role::*;
    // A resident edits a draft and answers needs_info, never identity after.
    for s in Status::ALL {
        let k = Kind::KtpEl;
        assert_eq!(may_write(Resident, Part::Filing, k, s), s == Draft, "{s}");
        assert_eq!(
            may_write(Resident, Part::Details, k, s),
            matches!(s, Draft | NeedsInfo),
            "{s}"
        );
        assert!(!may_write(Resident, Part::Assignment, k, s));
        // Officers: identity and details only while filing a draft.
        assert_eq!(may_write(Officer, Part::Filing, k, s), s == Draft, "{s}");
        assert_eq!(may_write(Officer, Part::Details, k, s), s == Draft, "{s}");
        assert!(!may_write(Officer, Part::Assignment, k, s));
        // The back office never rewrites what the applicant filed.
        for part in [Part::Filing, Part::Details, Part::Attachments] {
            assert!(!may_write(Agency, part, k, s), "{part:?} {s}");
        }
        // Notes (questions, answers, field notes) from everyone.
        for role in [Resident, Officer, Agency] {
            assert!(may_write(role, Part::Notes, k, s));
        }
    }
    // Site photos during review, only for the kinds checked on site.
    for &kind in Kind::ALL {
        for &s in REVIEW {
            assert_eq!(
                may_write(Officer, Part::Attachments, kind, s),
                FIELD_CHECKED.contains(&kind),
                "{kind:?} {s}"
            );
        }
        assert!(!may_write(Officer, Part::Attachments, kind, Approved));
    }
}

#[test]
fn a_resident_edits_a_draft_and_answers_needs_info_but_no_more() {
    let warga = author("warga-1", Role::Resident);
    let draft = request("warga-1", Kind::KtpEl);
    assert_eq!(check(None, &draft, warga), Ok(()));
    let edit = |r: &Request| {
        let mut e = r.clone();
        e.content.contact_phone = Some("081234567890".into());
        e
    };
    assert_eq!(check(Some(&draft), &edit(&draft), warga), Ok(()));
    let asked = at(
        draft.clone(),
        &[
            Status::Submitted,
            Status::Received,
            Status::InReview,
            Status::NeedsInfo,
        ],
    );
    assert_eq!(check(Some(&asked), &edit(&asked), warga), Ok(()));
    let submitted = at(draft.clone(), &[Status::Submitted]);
    let err = check(Some(&submitted), &edit(&submitted), warga).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a resident may not change the details of a ktp_el request in status submitted"
    );
    // Identity: never after filing, not even when asked for information.
    let mut renamed = asked.clone();
    renamed.content.applicant.as_mut().unwrap().nik = "3273011503850002".into();
    assert!(check(Some(&asked), &renamed, warga).is_err());
    // No status beyond submit, withdraw and answering.
    let mut approved = asked.clone();
    approved.history.push(entry(
        "warga-1",
        Role::Resident,
        4,
        Status::NeedsInfo,
        Status::Approved,
    ));
    assert_eq!(
        check(Some(&asked), &approved, warga)
            .unwrap_err()
            .to_string(),
        "a resident may not move a request from needs_info to approved"
    );
    let mut answered = asked.clone();
    answered.history.push(entry(
        "warga-1",
        Role::Resident,
        4,
        Status::NeedsInfo,
        Status::InReview,
    ));
    assert_eq!(check(Some(&asked), &answered, warga), Ok(()));
}

#[test]
fn an_officer_files_verifies_and_never_changes_identity_after_submission() {
    let petugas = author("petugas-1", Role::Officer);
    let mut draft = request("petugas-1", Kind::BuildingApproval);
    draft.created_role = Role::Officer;
    assert_eq!(check(None, &draft, petugas), Ok(()));
    let mut corrected = draft.clone();
    corrected.content.applicant.as_mut().unwrap().nik = "3273011503850002".into();
    assert_eq!(check(Some(&draft), &corrected, petugas), Ok(()));
    let review = at(
        draft.clone(),
        &[Status::Submitted, Status::Received, Status::InReview],
    );
    let mut renamed = review.clone();
    renamed.content.applicant.as_mut().unwrap().nik = "3273011503850002".into();
    assert!(check(Some(&review), &renamed, petugas).is_err());
    // Field notes and site photos are the officer's to add.
    let mut verified = review.clone();
    verified.notes.push(note("petugas-1", Role::Officer));
    verified.attachments.push(photo(1));
    assert_eq!(check(Some(&review), &verified, petugas), Ok(()));
    // Not on a kind the office does not check on site.
    let ktp = at(
        request("warga-1", Kind::KtpEl),
        &[Status::Submitted, Status::Received],
    );
    let mut photographed = ktp.clone();
    photographed.attachments.push(photo(1));
    assert!(check(Some(&ktp), &photographed, petugas).is_err());
    // Deciding is the back office's.
    let mut approved = review.clone();
    approved.history.push(entry(
        "petugas-1",
        Role::Officer,
        3,
        Status::InReview,
        Status::Approved,
    ));
    assert!(check(Some(&review), &approved, petugas).is_err());
}

#[test]
fn the_agency_decides_and_assigns_but_neither_files_nor_edits() {
    let dinas = author("dinas", Role::Agency);
    let review = at(
        request("warga-1", Kind::KtpEl),
        &[Status::Submitted, Status::Received, Status::InReview],
    );
    let mut approved = review.clone();
    approved.history.push(entry(
        "dinas",
        Role::Agency,
        3,
        Status::InReview,
        Status::Approved,
    ));
    assert_eq!(check(Some(&review), &approved, dinas), Ok(()));
    let mut edited = review.clone();
    edited.content.contact_phone = Some("081234567890".into());
    assert!(check(Some(&review), &edited, dinas).is_err());
    let mut own = request("dinas", Kind::KtpEl);
    own.created_role = Role::Agency;
    assert_eq!(
        check(None, &own, dinas).unwrap_err().to_string(),
        "the agency may not file requests"
    );
}

#[test]
fn a_status_change_must_start_where_the_author_stood() {
    let warga = author("warga-1", Role::Resident);
    let draft = request("warga-1", Kind::KtpEl);
    // "Withdrawn from in_review" on a draft: a step that skips the lifecycle.
    let mut skipped = draft.clone();
    skipped.history.push(entry(
        "warga-1",
        Role::Resident,
        0,
        Status::InReview,
        Status::Withdrawn,
    ));
    assert!(check(Some(&draft), &skipped, warga).is_err());
    // Submit then withdraw in one change: each step from the one before.
    let mut both = draft.clone();
    both.history.push(entry(
        "warga-1",
        Role::Resident,
        0,
        Status::Draft,
        Status::Submitted,
    ));
    both.history.push(entry(
        "warga-1",
        Role::Resident,
        1,
        Status::Submitted,
        Status::Withdrawn,
    ));
    assert_eq!(check(Some(&draft), &both, warga), Ok(()));
    assert_eq!(check(None, &both, warga), Ok(()));
}

#[test]
fn attachments_over_the_limits_are_refused_when_the_list_changes() {
    use crate::attachment_limits::{MAX_REQUEST_ATTACHMENTS, REQUEST_LIMITS};
    let warga = author("warga-1", Role::Resident);
    let mut full = request("warga-1", Kind::KtpEl);
    full.attachments = (0..MAX_REQUEST_ATTACHMENTS).map(photo).collect();
    assert_eq!(check(None, &full, warga), Ok(()));
    // A tampered client adds one more than the device would allow.
    let mut over = full.clone();
    over.attachments.push(photo(99));
    over.attachments.push(photo(98));
    assert_eq!(
        check(Some(&full), &over, warga).unwrap_err().to_string(),
        REQUEST_LIMITS
    );
    assert!(check(None, &over, warga).is_err());
    // A request that met older limits keeps taking other changes.
    let mut noted = over.clone();
    noted.notes.push(note("warga-1", Role::Resident));
    assert_eq!(check(Some(&over), &noted, warga), Ok(()));
    // And may shed attachments, even while still over.
    let mut fewer = over.clone();
    fewer.attachments.pop();
    assert_eq!(check(Some(&over), &fewer, warga), Ok(()));
}

#[test]
fn authorship_cannot_be_forged_and_history_is_append_only() {
    let warga = author("warga-1", Role::Resident);
    let b = request("warga-1", Kind::KtpEl);
    assert_eq!(check(None, &b, warga), Ok(()));
    assert!(check(None, &request("warga-2", Kind::KtpEl), warga).is_err());
    // A resident approving "as the agency".
    let mut forged = b.clone();
    forged.history.push(entry(
        "dinas",
        Role::Agency,
        0,
        Status::Draft,
        Status::Approved,
    ));
    assert!(check(Some(&b), &forged, warga).is_err());
    let mut honest = b.clone();
    honest.history.push(entry(
        "warga-1",
        Role::Resident,
        0,
        Status::Draft,
        Status::Submitted,
    ));
    assert_eq!(check(Some(&b), &honest, warga), Ok(()));
    // Rewriting what was there.
    let mut rewritten = honest.clone();
    rewritten.history[0].to = Status::Withdrawn;
    assert!(check(Some(&honest), &rewritten, warga).is_err());
    let mut noted = b.clone();
    noted.notes.push(note("petugas-1", Role::Officer));
    assert!(check(Some(&b), &noted, warga).is_err());
    // Nor the kind, nor the erasure.
    let mut other_kind = b.clone();
    other_kind.content.details = templates::example(Kind::Birth).details;
    assert!(check(Some(&b), &other_kind, warga).is_err());
    let mut erased = b.clone();
    erased.erased_at = Some(Timestamp(9));
    assert!(check(Some(&b), &erased, warga).is_err());
    assert!(check(Some(&erased), &noted, warga).is_err());
}

#[test]
fn ownership_cannot_be_rewritten_to_leak_a_request() {
    let officer = author("petugas-1", Role::Officer);
    let b = request("warga-1", Kind::KtpEl);
    let mut moved = b.clone();
    moved.created_by = "warga-2".into();
    assert!(check(Some(&b), &moved, officer).is_err());
}

#[test]
fn only_the_agency_assigns() {
    let b = at(request("warga-1", Kind::KtpEl), &[Status::Submitted]);
    let mut assigned = b.clone();
    assigned.assignee = Some("petugas-2".into());
    for who in [
        author("warga-1", Role::Resident),
        author("petugas-2", Role::Officer),
    ] {
        assert!(check(Some(&b), &assigned, who).is_err(), "{who:?}");
        // Nor unassigning, nor arriving already assigned.
        assert!(check(Some(&assigned), &b, who).is_err(), "{who:?}");
    }
    let mut new_assigned = request("petugas-2", Kind::KtpEl);
    new_assigned.created_role = Role::Officer;
    new_assigned.assignee = Some("petugas-2".into());
    assert!(check(None, &new_assigned, author("petugas-2", Role::Officer)).is_err());
    let agency = author("dinas", Role::Agency);
    assert_eq!(check(Some(&b), &assigned, agency), Ok(()));
    assert_eq!(check(Some(&assigned), &b, agency), Ok(()));
}

#[test]
fn a_draft_is_written_and_submitted_by_its_creator_only() {
    let mut filed = Request::draft(
        templates::example(Kind::KtpEl),
        "petugas-1",
        Role::Officer,
        Timestamp(1),
    );
    filed.content.contact_phone = Some("081211112222".into());
    let mut edited = filed.clone();
    edited.content.contact_phone = Some("081233334444".into());
    // The officer who filed it may; another officer of the region may not,
    // nor may the resident it was filed for.
    assert!(check(Some(&filed), &edited, author("petugas-1", Role::Officer)).is_ok());
    for (user, role) in [("petugas-2", Role::Officer), ("warga-1", Role::Resident)] {
        assert_eq!(
            check(Some(&filed), &edited, author(user, role)),
            Err(Denied(
                "only the account that created a draft may change or submit it".into()
            )),
            "{user}"
        );
    }
    // Nor submit it.
    let mut submitted = filed.clone();
    submitted.history.push(entry(
        "petugas-2",
        Role::Officer,
        0,
        Status::Draft,
        Status::Submitted,
    ));
    assert!(check(Some(&filed), &submitted, author("petugas-2", Role::Officer)).is_err());
    // A note is anyone's who may see it.
    let mut noted = filed.clone();
    noted.notes.push(note("petugas-2", Role::Officer));
    assert!(check(Some(&filed), &noted, author("petugas-2", Role::Officer)).is_ok());
}

#[test]
fn notes_and_history_stay_within_the_limits_on_device_and_server() {
    use crate::protocol::limits::{DOCUMENT_LIMITS, MAX_NOTE_CHARS};
    let r = at(request("warga-1", Kind::Complaint), &[Status::Submitted]);
    let w = author("warga-1", Role::Resident);
    let mut long = r.clone();
    let mut n = note("warga-1", Role::Resident);
    n.text = "a".repeat(MAX_NOTE_CHARS + 1);
    long.notes.push(n.clone());
    assert_eq!(
        check(Some(&r), &long, w),
        Err(Denied(DOCUMENT_LIMITS.into()))
    );
    n.text.pop();
    let mut fits = r.clone();
    fits.notes.push(n);
    assert!(check(Some(&r), &fits, w).is_ok());
}
