//! Who may write what: the one table of write permissions — which role may
//! change which part of which kind of request in which status — and the
//! invariants no role may break (authorship, append-only history, erasure).
//!
//! The device checks every edit against it before writing, and the server
//! checks every pushed change against it, judged by the state its author
//! saw (and no older than what the server had given that device): a
//! tampered app cannot write what its role may not, and an honest device
//! is not refused for an edit it made while up to date. Status changes themselves follow
//! [`lifecycle::allowed`], the lifecycle's own table.
//!
//! ```
//! use sambung_core::lifecycle::{Role, Status};
//! use sambung_core::model::Kind;
//! use sambung_core::rules::{Part, may_write};
//!
//! // A resident answers a question by correcting the details…
//! assert!(may_write(Role::Resident, Part::Details, Kind::KtpEl, Status::NeedsInfo));
//! // …but never changes who the applicant is after filing.
//! assert!(!may_write(Role::Resident, Part::Filing, Kind::KtpEl, Status::NeedsInfo));
//! // Officers add site photos to the kinds the office checks on site.
//! assert!(may_write(Role::Officer, Part::Attachments, Kind::Complaint, Status::InReview));
//! assert!(!may_write(Role::Officer, Part::Attachments, Kind::KtpEl, Status::InReview));
//! ```

use std::borrow::Cow;

use crate::edits::Author;
use crate::lifecycle::{self, Role, Status};
use crate::model::{Kind, Request};

/// A part of a request that edits change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Who files and where: the applicant (identity, NIK), the region, the
    /// lawful basis and consent.
    Filing,
    /// The kind-specific details and the contact phone.
    Details,
    /// Attachment references (adding or removing).
    Attachments,
    /// New notes: questions, answers, field notes, verification results.
    Notes,
    /// The officer a request is assigned to.
    Assignment,
}

impl Part {
    /// The name used in refusals.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Filing => "applicant, region and lawful basis",
            Part::Details => "details",
            Part::Attachments => "attachments",
            Part::Notes => "notes",
            Part::Assignment => "assignee",
        }
    }
}

/// What the table is asked about: a request's kind and what its service
/// says of it — for a catalog service, its definition
/// (`Catalog::subject`); for a compiled-in kind, the kind itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    /// The kind.
    pub kind: Kind,
    /// The office verifies it on site (officers add photos and documents
    /// while it is reviewed): [`FIELD_CHECKED`] kinds, and catalog services
    /// whose workflow says `field_check`.
    pub field_checked: bool,
}

impl From<Kind> for Subject {
    fn from(kind: Kind) -> Subject {
        Subject {
            kind,
            field_checked: FIELD_CHECKED.contains(&kind),
        }
    }
}

/// Which requests a rule covers.
#[derive(Debug, Clone, Copy)]
pub enum Kinds {
    /// Every kind.
    Any,
    /// Those the office verifies on site.
    FieldChecked,
}

impl Kinds {
    fn covers(self, subject: Subject) -> bool {
        match self {
            Kinds::Any => true,
            Kinds::FieldChecked => subject.field_checked,
        }
    }
}

/// One permission: `role` may change `part` of requests of `kinds` while
/// they are in one of `statuses`.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Who.
    pub role: Role,
    /// What.
    pub part: Part,
    /// Of which kinds.
    pub kinds: Kinds,
    /// In which statuses (the status the author saw).
    pub statuses: &'static [Status],
}

/// The kinds the office verifies on site (domain.md: building approvals,
/// objections and reductions of land tax, complaints with a field check):
/// officers add photos and documents to them during review.
pub const FIELD_CHECKED: &[Kind] = &[
    Kind::BuildingApproval,
    Kind::PbbObjection,
    Kind::PbbReduction,
    Kind::Complaint,
];

use Status::*;

const OPEN: &[Status] = &[Draft, Submitted, Received, InReview, NeedsInfo];
const EVERY: &[Status] = &Status::ALL;

/// The table. Anything not granted here is refused.
pub const RULES: &[Rule] = &[
    // Residents fill in their draft, and correct details and add documents
    // when the office asks (needs_info); who files never changes after.
    rule(Role::Resident, Part::Filing, Kinds::Any, &[Draft]),
    rule(
        Role::Resident,
        Part::Details,
        Kinds::Any,
        &[Draft, NeedsInfo],
    ),
    rule(
        Role::Resident,
        Part::Attachments,
        Kinds::Any,
        &[Draft, NeedsInfo],
    ),
    rule(Role::Resident, Part::Notes, Kinds::Any, EVERY),
    // Officers file on a resident's behalf during a visit, then verify on
    // site: field notes always, photos while the office reviews.
    rule(Role::Officer, Part::Filing, Kinds::Any, &[Draft]),
    rule(Role::Officer, Part::Details, Kinds::Any, &[Draft]),
    rule(Role::Officer, Part::Attachments, Kinds::Any, &[Draft]),
    rule(
        Role::Officer,
        Part::Attachments,
        Kinds::FieldChecked,
        &[Submitted, Received, InReview],
    ),
    rule(Role::Officer, Part::Notes, Kinds::Any, EVERY),
    // The back office asks, assigns and decides (decisions: the lifecycle).
    rule(Role::Agency, Part::Assignment, Kinds::Any, OPEN),
    rule(Role::Agency, Part::Notes, Kinds::Any, EVERY),
];

const fn rule(role: Role, part: Part, kinds: Kinds, statuses: &'static [Status]) -> Rule {
    Rule {
        role,
        part,
        kinds,
        statuses,
    }
}

/// Whether `role` may change `part` of a request of `subject` (a kind, or
/// a [`Subject`]) in `status`.
pub fn may_write(role: Role, part: Part, subject: impl Into<Subject>, status: Status) -> bool {
    let subject = subject.into();
    RULES.iter().any(|r| {
        r.role == role && r.part == part && r.kinds.covers(subject) && r.statuses.contains(&status)
    })
}

/// [`may_write`] for `role` changing `part` of `r` (of `subject`) as it
/// stands, with the reason when not.
pub fn may_change(role: Role, part: Part, r: &Request, subject: Subject) -> Result<(), Denied> {
    let (kind, status) = (r.kind(), r.status());
    if may_write(role, part, subject, status) {
        Ok(())
    } else {
        Err(Denied(Cow::Owned(format!(
            "{} may not change the {} of a {} request in status {status}",
            who(role),
            part.as_str(),
            kind.as_str()
        ))))
    }
}

/// Why a change was refused: a sentence for the person on the device (it
/// names roles, parts and statuses, never a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub Cow<'static, str>);

/// "a resident", "an officer", "the agency": the subject of a refusal.
fn who(role: Role) -> &'static str {
    match role {
        Role::Resident => "a resident",
        Role::Officer => "an officer",
        Role::Agency => "the agency",
    }
}

impl From<Denied> for crate::Error {
    fn from(d: Denied) -> Self {
        crate::Error::Forbidden(d.0.into_owned())
    }
}

fn deny<T>(reason: &'static str) -> Result<T, Denied> {
    Err(Denied(Cow::Borrowed(reason)))
}

/// The parts `after` changes relative to `before` (history, creator and
/// erasure are checked apart).
pub fn changed_parts(before: &Request, after: &Request) -> Vec<Part> {
    let (b, a) = (&before.content, &after.content);
    let mut parts = Vec::new();
    if b.applicant != a.applicant
        || b.region != a.region
        || b.lawful_basis != a.lawful_basis
        || b.consent != a.consent
    {
        parts.push(Part::Filing);
    }
    if b.details != a.details || b.contact_phone != a.contact_phone {
        parts.push(Part::Details);
    }
    if before.attachments != after.attachments {
        parts.push(Part::Attachments);
    }
    if before.notes != after.notes {
        parts.push(Part::Notes);
    }
    if before.assignee != after.assignee {
        parts.push(Part::Assignment);
    }
    parts
}

/// Checks the change from `before` (absent for a new request) to `after`
/// written by `author`, who saw `before`.
///
/// ```
/// use sambung_core::edits::Author;
/// use sambung_core::lifecycle::Role;
/// use sambung_core::model::{Kind, Request};
/// use sambung_core::{Timestamp, rules, templates};
///
/// let draft = Request::draft(templates::example(Kind::KtpEl), "warga-1", Role::Resident, Timestamp(1));
/// let warga = Author { user: "warga-1", role: Role::Resident };
/// let ktp = Kind::KtpEl.into();
/// assert!(rules::check(None, &draft, warga, ktp).is_ok());
/// let mut assigned = draft.clone();
/// assigned.assignee = Some("petugas-1".into());
/// assert!(rules::check(Some(&draft), &assigned, warga, ktp).is_err());
/// ```
pub fn check(
    before: Option<&Request>,
    after: &Request,
    author: Author<'_>,
    subject: Subject,
) -> Result<(), Denied> {
    let mine = |by: &str, role: Role| by == author.user && role == author.role;
    // Erasure is the server's alone, and final.
    if before.is_some_and(|b| b.erased_at.is_some()) {
        return deny("the personal data of this request was erased; it takes no more changes");
    }
    if after.erased_at.is_some() {
        return deny("only the server erases a request's personal data");
    }
    let empty;
    let before = match before {
        Some(b) => {
            if (b.created_by.as_str(), b.created_role, b.created_at)
                != (
                    after.created_by.as_str(),
                    after.created_role,
                    after.created_at,
                )
            {
                return deny("the creator of a request cannot change");
            }
            if b.id != after.id {
                return deny("the id of a request cannot change");
            }
            b
        }
        None => {
            if !mine(&after.created_by, after.created_role) {
                return deny("a new request must be created by the account that sends it");
            }
            if !may_write(author.role, Part::Filing, subject, Status::Draft) {
                return Err(Denied(Cow::Owned(format!(
                    "{} may not file requests",
                    who(author.role)
                ))));
            }
            // A new request is judged as its filing in a draft, then every
            // other part written to it.
            empty = Request {
                attachments: Vec::new(),
                history: Vec::new(),
                notes: Vec::new(),
                assignee: None,
                ..after.clone()
            };
            &empty
        }
    };
    if before.kind() != after.kind() {
        return deny("the kind of a request cannot change");
    }
    let parts = changed_parts(before, after);
    // A draft is its creator's to fill in and submit (an officer's filing
    // on a resident's behalf included): nobody else writes it but notes.
    let submits = after
        .history
        .iter()
        .any(|e| e.from == Status::Draft && !before.history.contains(e));
    if before.status() == Status::Draft
        && before.created_by != author.user
        && (submits || parts.iter().any(|p| *p != Part::Notes))
    {
        return deny("only the account that created a draft may change or submit it");
    }
    for part in parts {
        may_change(author.role, part, before, subject)?;
    }
    // Bounded: notes, their length and the history (`protocol::limits`),
    // checked when they grow (an older, larger request keeps syncing).
    if after.notes.len() > before.notes.len() || after.history.len() > before.history.len() {
        crate::protocol::limits::check_request(after).or_else(deny)?;
    }
    // Limits on attachments, checked when a reference is added or changed
    // (a request over newer limits may still shed attachments, and keeps
    // syncing).
    if after
        .attachments
        .iter()
        .any(|a| !before.attachments.contains(a))
    {
        crate::attachment_limits::check_request_attachments(&after.attachments).or_else(deny)?;
    }
    // Append-only: everything that was there stays as it was.
    if before.history.iter().any(|e| !after.history.contains(e))
        || before.notes.iter().any(|n| !after.notes.contains(n))
    {
        return deny("the history and notes of a request are append-only");
    }
    if after
        .notes
        .iter()
        .filter(|n| !before.notes.contains(n))
        .any(|n| !mine(&n.by, n.role))
    {
        return deny("a note must carry its author's own account and role");
    }
    // Status changes: the author's own, each one the lifecycle allows from
    // the status before it.
    let mut new: Vec<_> = after
        .history
        .iter()
        .filter(|e| !before.history.contains(e))
        .collect();
    new.sort();
    let mut from = before.status();
    for e in new {
        if !mine(&e.by, e.role) {
            return deny("a status change must carry its author's own account and role");
        }
        if e.from != from || !lifecycle::allowed(author.role, e.from, e.to) {
            return Err(Denied(Cow::Owned(format!(
                "{} may not move a request from {} to {}",
                who(author.role),
                e.from,
                e.to
            ))));
        }
        from = e.to;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
