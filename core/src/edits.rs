//! The edits a party makes to a request — a status change, a note, an
//! assignment — with the checks the lifecycle puts on them. One place for
//! the device store and the server's back office alike, so both write the
//! same changes under the same rules.

use crate::Timestamp;
use crate::error::Error;
use crate::lifecycle::{self, Role, Status, StatusEntry};
use crate::model::{Note, Request};

/// Who makes an edit.
#[derive(Debug, Clone, Copy)]
pub struct Author<'a> {
    /// Account id.
    pub user: &'a str,
    /// Its role.
    pub role: Role,
}

/// Checks a note's text (also before any document is touched).
pub fn check_note(text: &str) -> Result<(), Error> {
    let mut v = crate::validation::Validator::new(Timestamp::now().today_in_indonesia());
    v.text("text", text, crate::model::MAX_LONG_TEXT);
    let report = v.finish();
    if report.is_ok() {
        Ok(())
    } else {
        Err(Error::Validation(report))
    }
}

/// Moves `r` to `to` when `by`'s role may from its current status; returns
/// the new status. Submitting also checks every field and the required
/// attachments.
pub fn transition(
    r: &mut Request,
    by: Author<'_>,
    to: Status,
    note: Option<String>,
) -> Result<Status, Error> {
    if let Some(n) = &note {
        check_note(n)?;
    }
    let from = r.status();
    if !lifecycle::allowed(by.role, from, to) {
        return Err(Error::Forbidden(format!(
            "a {} cannot move a request from {from} to {to}",
            by.role.as_str()
        )));
    }
    if to == Status::Submitted {
        let report = r.validate_for_submit(Timestamp::now().today_in_indonesia());
        if !report.is_ok() {
            return Err(Error::Validation(report));
        }
    }
    r.history.push(StatusEntry {
        seq: r.history.len() as u64,
        at: Timestamp::now(),
        id: uuid::Uuid::new_v4().to_string(),
        from,
        to,
        by: by.user.to_owned(),
        role: by.role,
        note,
    });
    Ok(r.status())
}

/// Adds a note. With `answer`, the note answers a `needs_info` question and
/// the request goes back to review in the same change.
pub fn add_note(
    r: &mut Request,
    by: Author<'_>,
    text: &str,
    answer: bool,
) -> Result<Status, Error> {
    check_note(text)?;
    let now = Timestamp::now();
    r.notes.push(Note {
        id: uuid::Uuid::new_v4().to_string(),
        at: now,
        by: by.user.to_owned(),
        role: by.role,
        text: text.to_owned(),
    });
    if answer {
        let from = r.status();
        if from != Status::NeedsInfo {
            return Err(Error::Forbidden(format!(
                "only a request in status needs_info can be answered; this one is {from}"
            )));
        }
        r.history.push(StatusEntry {
            seq: r.history.len() as u64,
            at: now,
            id: uuid::Uuid::new_v4().to_string(),
            from,
            to: Status::InReview,
            by: by.user.to_owned(),
            role: by.role,
            note: None,
        });
    }
    Ok(r.status())
}

/// Checks an assignment before any document is touched: only the agency
/// assigns, to a plausible account id.
pub fn check_assign(by: Author<'_>, officer: Option<&str>) -> Result<(), Error> {
    if by.role != Role::Agency {
        return Err(Error::Forbidden(
            "only the agency assigns a request to an officer".into(),
        ));
    }
    if let Some(o) = officer {
        let mut v = crate::validation::Validator::new(Timestamp::now().today_in_indonesia());
        v.text("assignee", o, 128);
        let report = v.finish();
        if !report.is_ok() {
            return Err(Error::Validation(report));
        }
    }
    Ok(())
}

/// Assigns `r` to a field officer's account, or unassigns it (`None`).
pub fn assign(r: &mut Request, by: Author<'_>, officer: Option<&str>) -> Result<(), Error> {
    check_assign(by, officer)?;
    r.assignee = officer.map(str::to_owned);
    Ok(())
}
