//! Real edits of a real request document, described by the fuzzer: a seed
//! request of any kind, then a sequence of operations (set a field, add a
//! note, append a status entry, add an attachment reference, …), each
//! written as one Automerge change by [`RequestDoc::update`] — what a
//! device's app writes, but with any values.

use arbitrary::Arbitrary;
use automerge::ActorId;
use sambung_core::Timestamp;
use sambung_core::document::RequestDoc;
use sambung_core::lifecycle::{Role, Status, StatusEntry};
use sambung_core::model::{AttachmentRef, AttachmentRole, Kind, Note, Request, RequestId};
use sambung_core::templates;

/// The enrolled account of the server targets.
pub const ACCOUNT: &str = "warga-1";
/// A region that passes the validators.
pub const REGION: &str = "32.73.01.1001";

/// An account name: the enrolled one, others, or any text.
#[derive(Arbitrary, Debug, Clone)]
pub enum Name {
    Enrolled,
    OtherResident,
    Officer,
    Empty,
    Any(String),
}

impl Name {
    fn text(&self) -> String {
        match self {
            Name::Enrolled => ACCOUNT.into(),
            Name::OtherResident => "warga-2".into(),
            Name::Officer => "petugas-1".into(),
            Name::Empty => String::new(),
            Name::Any(s) => s.clone(),
        }
    }
}

/// A text: any short text, or a long one (past the notes' limit).
#[derive(Arbitrary, Debug, Clone)]
pub enum Text {
    Short(String),
    Long { c: char, n: u16 },
}

impl Text {
    fn text(&self) -> String {
        match self {
            Text::Short(s) => s.clone(),
            Text::Long { c, n } => std::iter::repeat_n(*c, usize::from(*n % 6000)).collect(),
        }
    }
}

/// A region: valid ones, a province, or any text.
#[derive(Arbitrary, Debug, Clone)]
pub enum Region {
    Home,
    Neighbour,
    Province,
    Any(String),
}

impl Region {
    fn text(&self) -> String {
        match self {
            Region::Home => REGION.into(),
            Region::Neighbour => "32.73.01.1002".into(),
            Region::Province => "31".into(),
            Region::Any(s) => s.clone(),
        }
    }
}

fn role(r: u8) -> Role {
    [Role::Resident, Role::Officer, Role::Agency][usize::from(r % 3)]
}

fn status(s: u8) -> Status {
    Status::ALL[usize::from(s) % Status::ALL.len()]
}

fn kind(k: u8) -> Kind {
    Kind::ALL[usize::from(k) % Kind::ALL.len()]
}

/// One edit of a request.
#[derive(Arbitrary, Debug, Clone)]
pub enum Edit {
    Region(Region),
    Assignee(Option<Name>),
    CreatedBy(Name),
    CreatedRole(u8),
    CreatedAt(i64),
    /// The content replaced by another kind's example (region kept).
    Content(u8),
    Note {
        id: u8,
        at: i64,
        by: Name,
        role: u8,
        text: Text,
    },
    /// Many notes at once (past the limit of 500).
    Notes(u16),
    Status {
        seq: u64,
        at: i64,
        id: u8,
        from: u8,
        to: u8,
        by: Name,
        role: u8,
        note: Option<Text>,
    },
    Attachment {
        sha256: [u8; 32],
        role: u8,
        name: String,
        mime: String,
        size: u64,
        at: i64,
    },
    /// A status change as the app writes it: from the current status,
    /// having seen every entry, by the enrolled resident.
    Step {
        to: u8,
        at: i64,
        id: u8,
    },
    RemoveNote(u8),
    RemoveStatus(u8),
    RemoveAttachment(u8),
    Erase(i64),
}

impl Edit {
    /// Applies the edit to `r`.
    pub fn apply(&self, r: &mut Request) {
        match self {
            Edit::Region(x) => r.content.region = x.text().as_str().into(),
            Edit::Assignee(x) => r.assignee = x.as_ref().map(Name::text),
            Edit::CreatedBy(x) => r.created_by = x.text(),
            Edit::CreatedRole(x) => r.created_role = role(*x),
            Edit::CreatedAt(t) => r.created_at = Timestamp(*t),
            Edit::Content(k) => {
                let region = r.content.region.clone();
                r.content = templates::example(kind(*k));
                r.content.region = region;
            }
            Edit::Note {
                id,
                at,
                by,
                role: ro,
                text,
            } => r.notes.push(Note {
                id: format!("n{id}"),
                at: Timestamp(*at),
                by: by.text(),
                role: role(*ro),
                text: text.text(),
            }),
            Edit::Notes(n) => {
                for i in 0..(n % 600) {
                    r.notes.push(Note {
                        id: format!("m{i}"),
                        at: Timestamp(i64::from(i)),
                        by: ACCOUNT.into(),
                        role: Role::Resident,
                        text: "?".into(),
                    });
                }
            }
            Edit::Status {
                seq,
                at,
                id,
                from,
                to,
                by,
                role: ro,
                note,
            } => r.history.push(StatusEntry {
                seq: *seq,
                at: Timestamp(*at),
                id: format!("s{id}"),
                from: status(*from),
                to: status(*to),
                by: by.text(),
                role: role(*ro),
                note: note.as_ref().map(Text::text),
            }),
            Edit::Attachment {
                sha256,
                role: ro,
                name,
                mime,
                size,
                at,
            } => r.attachments.push(AttachmentRef {
                sha256: hex::encode(sha256),
                role: AttachmentRole::ALL[usize::from(*ro) % AttachmentRole::ALL.len()],
                // A service's own name for it, as hostile as the file name.
                purpose: (*ro >= 128).then(|| name.clone()),
                name: name.clone(),
                mime: mime.clone(),
                size: *size,
                added_at: Timestamp(*at),
            }),
            Edit::Step { to, at, id } => {
                let from = r.status();
                r.history.push(StatusEntry {
                    seq: r.history.len() as u64,
                    at: Timestamp(*at),
                    id: format!("t{id}"),
                    from,
                    to: status(*to),
                    by: ACCOUNT.into(),
                    role: Role::Resident,
                    note: None,
                });
            }
            Edit::RemoveNote(i) => remove(&mut r.notes, *i),
            Edit::RemoveStatus(i) => remove(&mut r.history, *i),
            Edit::RemoveAttachment(i) => remove(&mut r.attachments, *i),
            Edit::Erase(t) => r.erased_at = Some(Timestamp(*t)),
        }
    }
}

fn remove<T>(v: &mut Vec<T>, i: u8) {
    if !v.is_empty() {
        v.remove(usize::from(i) % v.len());
    }
}

/// A new request: a draft of one kind's example, created by the enrolled
/// resident in [`REGION`], named by `id`.
#[derive(Arbitrary, Debug, Clone)]
pub struct Seed {
    pub id: [u8; 16],
    pub kind: u8,
    pub at: i64,
}

impl Seed {
    pub fn request(&self) -> Request {
        let mut content = templates::example(kind(self.kind));
        content.region = REGION.into();
        let mut r = Request::draft(content, ACCOUNT, Role::Resident, Timestamp(self.at));
        r.id = RequestId::from_bytes(self.id);
        r
    }

    /// The request's document, written by `actor`.
    pub fn doc(&self, actor: ActorId) -> Option<RequestDoc> {
        RequestDoc::new(&self.request(), actor).ok()
    }
}

/// Applies each edit as one change (an edit the document refuses — an
/// erased request — is skipped).
pub fn apply_all(doc: &mut RequestDoc, edits: &[Edit]) {
    for e in edits {
        let _ = doc.update(|r| {
            e.apply(r);
            Ok(())
        });
    }
}
