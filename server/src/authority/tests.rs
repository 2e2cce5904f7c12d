use super::*;
use sambung_core::edits::{self, Author};
use sambung_core::identifiers::{Nik, RegionCode};
use sambung_core::model::{Kind, Request};
use sambung_core::{Timestamp, templates};

const WARGA: Author<'static> = Author {
    user: "warga-1",
    role: Role::Resident,
};
const DINAS: Author<'static> = Author {
    user: "dinas",
    role: Role::Agency,
};

/// [`super::judge`] with the built-in catalog (the compiled-in kinds these
/// tests file are judged by their compiled-in checks).
fn judge(
    current: Option<&Request>,
    seen: Option<&Request>,
    after: &Request,
    account: &Account,
) -> Result<(), Refused> {
    let catalog = sambung_core::catalog::shared_builtin().unwrap();
    super::judge(current, seen, after, account, catalog)
}

fn account(id: &str, role: Role, regions: &[&str]) -> Account {
    Account {
        id: id.into(),
        role,
        regions: regions.iter().map(|r| r.to_string()).collect(),
        nik_hash: None,
    }
}

fn complaint() -> Request {
    let mut content = templates::example(Kind::Complaint);
    content.region = RegionCode::from("32.73.01.1001");
    Request::draft(content, "warga-1", Role::Resident, Timestamp(1))
}

/// A KTP-el request moved through `steps` by whoever may take each.
fn moved(steps: &[Status]) -> Request {
    let mut r = Request::draft(
        templates::example(Kind::KtpEl),
        "warga-1",
        Role::Resident,
        Timestamp(1),
    );
    for &to in steps {
        let by = if matches!(to, Status::Submitted | Status::Withdrawn) {
            WARGA
        } else {
            DINAS
        };
        edits::transition(&mut r, by, to, None).unwrap();
    }
    r
}

const DECIDED: &[Status] = &[
    Status::Submitted,
    Status::Received,
    Status::InReview,
    Status::Approved,
];

#[test]
fn a_decided_request_takes_notes_and_the_agencys_next_step_only() {
    let approved = moved(DECIDED);
    let warga = account("warga-1", Role::Resident, &[]);
    let dinas = account("dinas", Role::Agency, &[]);
    // A new phone number, whoever writes it.
    let mut phone = approved.clone();
    phone.content.contact_phone = Some("081299990000".into());
    for who in [&warga, &dinas] {
        let err = judge(Some(&approved), Some(&approved), &phone, who).unwrap_err();
        assert_eq!(err.code, RefusalCode::Forbidden);
        assert_eq!(
            err.reason,
            "this request is approved: it takes notes only, no other change"
        );
    }
    // A note is taken.
    let mut noted = approved.clone();
    edits::add_note(&mut noted, WARGA, "Terima kasih", false).unwrap();
    assert_eq!(
        judge(Some(&approved), Some(&approved), &noted, &warga),
        Ok(())
    );
    // The agency completes it; nobody else moves it.
    let mut completed = approved.clone();
    edits::transition(&mut completed, DINAS, Status::Completed, None).unwrap();
    assert_eq!(
        judge(Some(&approved), Some(&approved), &completed, &dinas),
        Ok(())
    );
    assert!(judge(Some(&approved), Some(&approved), &completed, &warga).is_err());
    // A withdrawal written offline before the resident saw the decision:
    // it sorts after the approval and takes no effect — kept, changing
    // nothing (the notes beside it are not lost).
    let mut late = approved.clone();
    let mut entry = approved.history.last().unwrap().clone();
    entry.seq += 1;
    entry.id = "w".into();
    entry.from = Status::InReview;
    entry.to = Status::Withdrawn;
    entry.by = "warga-1".into();
    entry.role = Role::Resident;
    late.history.push(entry.clone());
    assert_eq!(judge(Some(&approved), None, &late, &warga), Ok(()));
    assert_eq!(late.status(), Status::Approved);
    // The same withdrawal claiming an early place: the approval would lose
    // its effect. Refused.
    let mut early = approved.clone();
    entry.seq = 1;
    entry.at = Timestamp(0);
    entry.from = Status::Received;
    early.history.push(entry);
    assert_ne!(
        early.status(),
        Status::Approved,
        "the reorder would undo it"
    );
    assert!(judge(Some(&approved), None, &early, &warga).is_err());
}

#[test]
fn withdrawn_and_erased_requests_are_closed_too() {
    let withdrawn = moved(&[Status::Submitted, Status::Withdrawn]);
    let mut edited = withdrawn.clone();
    edited.content.contact_phone = Some("081299990000".into());
    let warga = account("warga-1", Role::Resident, &[]);
    assert!(judge(Some(&withdrawn), Some(&withdrawn), &edited, &warga).is_err());
    let mut erased = moved(&[Status::Submitted]);
    erased.erased_at = Some(Timestamp(5));
    let mut edited = erased.clone();
    edited.content.contact_phone = Some("081299990000".into());
    assert!(judge(Some(&erased), Some(&erased), &edited, &warga).is_err());
}

#[test]
fn status_changes_sort_after_everything_their_author_saw() {
    let in_review = moved(&[Status::Submitted, Status::Received, Status::InReview]);
    let warga = account("warga-1", Role::Resident, &[]);
    // A withdrawal claiming an early place in the history.
    let mut early = in_review.clone();
    let mut entry = in_review.history[0].clone();
    entry.id = "zz".into();
    entry.from = Status::Submitted;
    entry.to = Status::Withdrawn;
    entry.at = Timestamp(0);
    early.history.push(entry.clone());
    let err = judge(Some(&in_review), Some(&in_review), &early, &warga).unwrap_err();
    assert_eq!(err.code, RefusalCode::Forbidden);
    // The same, written as an honest device writes it: after the rest.
    let mut honest = in_review.clone();
    edits::transition(&mut honest, WARGA, Status::Withdrawn, None).unwrap();
    assert_eq!(
        judge(Some(&in_review), Some(&in_review), &honest, &warga),
        Ok(())
    );
    // Made offline while the office moved on (it saw `received` only): a
    // concurrent entry, taken, and ordered as every device orders it.
    let received = moved(&[Status::Submitted, Status::Received]);
    let mut offline = received.clone();
    edits::transition(&mut offline, WARGA, Status::Withdrawn, None).unwrap();
    let mut merged = in_review.clone();
    merged.history.push(offline.history.last().unwrap().clone());
    assert_eq!(
        judge(Some(&in_review), Some(&received), &merged, &warga),
        Ok(())
    );
    assert_eq!(merged.status(), Status::Withdrawn);
}

#[test]
fn content_is_validated_on_leaving_draft_and_on_later_changes_to_it() {
    let warga = account("warga-1", Role::Resident, &[]);
    let draft = complaint();
    let mut bad = draft.clone();
    bad.content.applicant.as_mut().unwrap().nik = Nik::from("9999999999999999");
    // A draft may hold anything its author is still fixing.
    assert_eq!(judge(Some(&draft), Some(&draft), &bad, &warga), Ok(()));
    // Submitted like that: refused with the field, never its value.
    let mut submitted = bad.clone();
    submitted
        .history
        .push(sambung_core::lifecycle::StatusEntry {
            seq: 0,
            at: Timestamp(2),
            id: "s".into(),
            from: Status::Draft,
            to: Status::Submitted,
            by: "warga-1".into(),
            role: Role::Resident,
            note: None,
        });
    let err = judge(Some(&draft), Some(&draft), &submitted, &warga).unwrap_err();
    assert_eq!(err.code, RefusalCode::Invalid);
    assert!(
        err.errors.iter().any(|e| e.field == "applicant.nik"),
        "{err:?}"
    );
    assert!(!err.reason.contains("9999"), "{}", err.reason);
    assert!(
        !format!("{:?}", err.errors).contains("9999999999999999"),
        "no values"
    );
    // A new request arriving already submitted, the same.
    assert_eq!(
        judge(None, None, &submitted, &warga).unwrap_err().code,
        RefusalCode::Invalid
    );
    // After submission, changing the details to something invalid.
    let ok = moved(&[Status::Submitted]);
    let mut worse = ok.clone();
    worse.content.applicant.as_mut().unwrap().nik = Nik::from("12");
    assert_eq!(
        judge(Some(&ok), Some(&ok), &worse, &warga)
            .unwrap_err()
            .code,
        RefusalCode::Invalid
    );
    // A note on a request with old content is not a reason to refuse it.
    let mut noted = ok.clone();
    edits::add_note(&mut noted, WARGA, "Tambahan", false).unwrap();
    assert_eq!(judge(Some(&ok), Some(&ok), &noted, &warga), Ok(()));
}

#[test]
fn a_missing_required_attachment_is_refused_on_submission() {
    let warga = account("warga-1", Role::Resident, &[]);
    // A KTP-el replacement for a lost card needs the police report.
    let mut draft = Request::draft(
        templates::example(Kind::KtpEl),
        "warga-1",
        Role::Resident,
        Timestamp(1),
    );
    if let sambung_core::model::Details::KtpEl(d) = &mut draft.content.details {
        d.reason = sambung_core::model::KtpReason::Lost;
    }
    assert!(!draft.content.details.required_attachments().is_empty());
    draft.attachments.clear();
    let mut submitted = draft.clone();
    submitted
        .history
        .push(sambung_core::lifecycle::StatusEntry {
            seq: 0,
            at: Timestamp(2),
            id: "s".into(),
            from: Status::Draft,
            to: Status::Submitted,
            by: "warga-1".into(),
            role: Role::Resident,
            note: None,
        });
    let err = judge(Some(&draft), Some(&draft), &submitted, &warga).unwrap_err();
    assert_eq!(err.code, RefusalCode::Invalid);
    assert!(
        err.errors
            .iter()
            .any(|e| e.field.starts_with("attachments") && e.code == "attachment_missing"),
        "{err:?}"
    );
}

#[test]
fn officers_file_only_in_their_regions() {
    let officer = account("petugas-1", Role::Officer, &["32.73"]);
    let mut inside = complaint();
    inside.created_by = "petugas-1".into();
    inside.created_role = Role::Officer;
    assert_eq!(judge(None, None, &inside, &officer), Ok(()));
    let mut outside = inside.clone();
    outside.content.region = RegionCode::from("33.01.01.1001");
    assert_eq!(
        judge(None, None, &outside, &officer).unwrap_err().reason,
        "the request's region is outside the regions this account works in"
    );
    // Moving a draft out of them, the same.
    assert!(judge(Some(&inside), Some(&inside), &outside, &officer).is_err());
    // Residents file wherever they live.
    let warga = account("warga-1", Role::Resident, &[]);
    let mut theirs = complaint();
    theirs.content.region = RegionCode::from("33.01.01.1001");
    assert_eq!(judge(None, None, &theirs, &warga), Ok(()));
}

#[test]
fn nothing_the_server_holds_is_dropped_by_a_replaced_list() {
    let warga = account("warga-1", Role::Resident, &[]);
    let asked = moved(&[
        Status::Submitted,
        Status::Received,
        Status::InReview,
        Status::NeedsInfo,
    ]);
    // The office's later steps, which the device never saw.
    let mut current = asked.clone();
    edits::transition(&mut current, DINAS, Status::InReview, None).unwrap();
    edits::transition(&mut current, DINAS, Status::Approved, None).unwrap();
    edits::add_note(&mut current, DINAS, "Disetujui", false).unwrap();
    // A merge in which the device's new list replaced the history.
    let mut dropped = current.clone();
    dropped.history.truncate(asked.history.len());
    let err = judge(Some(&current), Some(&asked), &dropped, &warga).unwrap_err();
    assert_eq!(
        err.reason,
        "the status changes and notes the server holds cannot be removed"
    );
    let mut no_note = current.clone();
    no_note.notes.clear();
    assert!(judge(Some(&current), Some(&asked), &no_note, &warga).is_err());
    // An attachment another account added meanwhile stays; one the author
    // saw may go where its role may remove it (judged by the rules table).
    let photo = |n: u8| sambung_core::model::AttachmentRef {
        sha256: format!("{n:064x}"),
        role: sambung_core::model::AttachmentRole::Photo,
        purpose: None,
        name: "p.jpg".into(),
        mime: "image/jpeg".into(),
        size: 10,
        added_at: Timestamp(3),
    };
    let mut seen = asked.clone();
    seen.attachments.push(photo(1));
    let mut held = seen.clone();
    held.attachments.push(photo(2)); // the officer's, added meanwhile
    let mut without_theirs = held.clone();
    without_theirs
        .attachments
        .retain(|a| a.sha256 != photo(2).sha256);
    assert_eq!(
        judge(Some(&held), Some(&seen), &without_theirs, &warga)
            .unwrap_err()
            .reason,
        "an attachment added by someone else meanwhile cannot be removed"
    );
    let mut without_own = held.clone();
    without_own
        .attachments
        .retain(|a| a.sha256 != photo(1).sha256);
    assert_eq!(
        judge(Some(&held), Some(&seen), &without_own, &warga),
        Ok(())
    );
}

#[test]
fn a_status_change_cannot_claim_to_follow_more_than_its_author_saw() {
    let warga = account("warga-1", Role::Resident, &[]);
    let asked = moved(&[
        Status::Submitted,
        Status::Received,
        Status::InReview,
        Status::NeedsInfo,
    ]);
    // The answer with seq u64::MAX would make every later step void.
    let mut inflated = asked.clone();
    edits::transition(&mut inflated, WARGA, Status::InReview, None).unwrap();
    inflated.history.last_mut().unwrap().seq = u64::MAX;
    assert_eq!(
        judge(Some(&asked), Some(&asked), &inflated, &warga)
            .unwrap_err()
            .reason,
        "a status change claims to follow more status changes than its author saw"
    );
    // Two steps written offline one after the other: seq n and n + 1.
    let mut honest = asked.clone();
    edits::transition(&mut honest, WARGA, Status::InReview, None).unwrap();
    edits::transition(&mut honest, WARGA, Status::Withdrawn, None).unwrap();
    assert_eq!(judge(Some(&asked), Some(&asked), &honest, &warga), Ok(()));
}

#[test]
fn a_required_document_removed_after_submission_is_refused() {
    let warga = account("warga-1", Role::Resident, &[]);
    let mut draft = Request::draft(
        templates::example(Kind::KtpEl),
        "warga-1",
        Role::Resident,
        Timestamp(1),
    );
    if let sambung_core::model::Details::KtpEl(d) = &mut draft.content.details {
        d.reason = sambung_core::model::KtpReason::Lost;
    }
    draft.attachments = vec![sambung_core::model::AttachmentRef {
        sha256: "a".repeat(64),
        role: sambung_core::model::AttachmentRole::PoliceReport,
        purpose: None,
        name: "laporan.pdf".into(),
        mime: "application/pdf".into(),
        size: 10,
        added_at: Timestamp(2),
    }];
    let mut asked = draft.clone();
    edits::transition(&mut asked, WARGA, Status::Submitted, None).unwrap();
    for to in [Status::Received, Status::InReview, Status::NeedsInfo] {
        edits::transition(&mut asked, DINAS, to, None).unwrap();
    }
    let mut removed = asked.clone();
    removed.attachments.clear();
    let err = judge(Some(&asked), Some(&asked), &removed, &warga).unwrap_err();
    assert_eq!(err.code, RefusalCode::Invalid);
    assert_eq!(err.errors[0].field, "attachments.police_report");
}
