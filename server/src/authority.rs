//! What the server decides beyond the rules table, because only the server
//! knows it: the state it holds now. A device's changes are judged by the
//! rules table against what their author saw (`exchange::authors_view`);
//! here they are judged against the server's current copy, so that
//! - a decided, withdrawn or erased request takes notes only (and the
//!   agency's own further steps the lifecycle allows);
//! - a device cannot reorder the status history: what it appends sorts
//!   after every entry its author saw by the server's own record (the
//!   floor), whatever `seq`/`at` it claims — entries it never received are
//!   concurrent, ordered as every device orders them;
//! - content is valid by the device's own validators when it leaves draft
//!   and whenever what was filed changes afterwards;
//! - an officer files only in the regions it works in.

use std::borrow::Cow;

use sambung_core::catalog::{Catalog, Side};
use sambung_core::lifecycle::{self, Role, Status, StatusEntry};
use sambung_core::model::{Details, Request};
use sambung_core::protocol::{FieldError, RefusalCode};
use sambung_core::rules::{Part, changed_parts};

use crate::accounts::Account;

/// Why the server refused a document, with the fields in error when the
/// content is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Machine-readable code.
    pub code: RefusalCode,
    /// A reason without personal data.
    pub reason: Cow<'static, str>,
    /// Every field in error (invalid content only).
    pub errors: Vec<FieldError>,
}

impl Refused {
    /// A refusal with a reason and no field errors.
    pub fn new(code: RefusalCode, reason: impl Into<Cow<'static, str>>) -> Refused {
        Refused {
            code,
            reason: reason.into(),
            errors: Vec::new(),
        }
    }
}

fn forbidden(reason: impl Into<Cow<'static, str>>) -> Refused {
    Refused::new(RefusalCode::Forbidden, reason)
}

/// Judges the change from `current` (the server's copy; absent for a new
/// request) to `after` (that copy with the caller's changes merged), made
/// by `account`, whose author saw `seen` (its changes' dependencies, and
/// no less than the server had given it).
pub fn judge(
    current: Option<&Request>,
    seen: Option<&Request>,
    after: &Request,
    account: &Account,
    catalog: &Catalog,
) -> Result<(), Refused> {
    if let Some(current) = current {
        nothing_held_is_dropped(current, seen, after)?;
        decisions_are_final(current, after, account.role)?;
        if let Some(seen) = seen {
            history_appends_after_what_was_seen(current, seen, after)?;
        }
    }
    filed_where_the_account_works(current, after, account)?;
    content_is_valid(current, after, catalog)
}

/// What the server holds stays: every status change and note (they are
/// append-only), and every attachment the author never saw. The rules
/// table compares the author's own view before and after, which a change
/// replacing a whole list (rather than editing it, as every honest device
/// does) would pass while dropping what others added meanwhile — a
/// decision among them.
fn nothing_held_is_dropped(
    current: &Request,
    seen: Option<&Request>,
    after: &Request,
) -> Result<(), Refused> {
    if current.history.iter().any(|e| !after.history.contains(e))
        || current.notes.iter().any(|n| !after.notes.contains(n))
    {
        return Err(forbidden(
            "the status changes and notes the server holds cannot be removed",
        ));
    }
    let unseen = |a: &&sambung_core::model::AttachmentRef| {
        seen.is_none_or(|s| !s.attachments.iter().any(|x| x.sha256 == a.sha256))
    };
    if current
        .attachments
        .iter()
        .filter(unseen)
        .any(|a| !after.attachments.iter().any(|x| x.sha256 == a.sha256))
    {
        return Err(forbidden(
            "an attachment added by someone else meanwhile cannot be removed",
        ));
    }
    Ok(())
}

/// Once decided, withdrawn or erased: notes only, plus the agency's own
/// further steps the lifecycle allows (approved → completed). A status
/// change written concurrently (its author had not seen the closure) is
/// kept without effect, as the lifecycle keeps every overtaken entry: it
/// changes nothing, and refusing it would refuse the notes beside it. No
/// entry the server holds may change its effect.
fn decisions_are_final(current: &Request, after: &Request, role: Role) -> Result<(), Refused> {
    let status = current.status();
    if !status.is_final() && current.erased_at.is_none() {
        return Ok(());
    }
    let closed = || {
        forbidden(format!(
            "this request is {status}: it takes notes only, no other change"
        ))
    };
    if changed_parts(current, after)
        .iter()
        .any(|p| *p != Part::Notes)
    {
        return Err(closed());
    }
    let held = lifecycle::derive(&current.history);
    let effect_before = |e: &StatusEntry| {
        held.entries
            .iter()
            .find(|(h, _)| *h == e)
            .map(|(_, ok)| *ok)
    };
    for (e, effective) in lifecycle::derive(&after.history).entries {
        match effect_before(e) {
            Some(was) if was != effective => return Err(closed()),
            Some(_) => {}
            // Appended: without effect, or the agency's next step.
            None if effective && role != Role::Agency => return Err(closed()),
            None => {}
        }
    }
    Ok(())
}

/// Entries of `after`'s history that `current` lacks, in history order.
fn appended<'a>(current: &Request, after: &'a Request) -> Vec<&'a StatusEntry> {
    let mut new: Vec<&StatusEntry> = after
        .history
        .iter()
        .filter(|e| !current.history.contains(e))
        .collect();
    new.sort();
    new
}

/// A device's status changes come after every one its author saw: an
/// entry sorting earlier would replay the history differently (an early
/// withdrawal making an office's step void, say). Entries its author never
/// received are concurrent: they sort by `(seq, at, id)` on every device
/// alike, and a decided request is kept by [`decisions_are_final`].
fn history_appends_after_what_was_seen(
    current: &Request,
    seen: &Request,
    after: &Request,
) -> Result<(), Refused> {
    let Some(last) = seen.history.iter().max() else {
        return Ok(());
    };
    if appended(current, after).iter().any(|e| e <= &last) {
        return Err(forbidden(
            "a status change must come after every status change its author saw",
        ));
    }
    // Nor far after: `seq` is how many entries its author had seen (its own
    // earlier ones included), so a later step by anyone sorts after it. An
    // inflated `seq` would make every later step sort first, void.
    let base = seen.history.len() as u64;
    if appended(current, after)
        .iter()
        .enumerate()
        .any(|(i, e)| e.seq > base + i as u64)
    {
        return Err(forbidden(
            "a status change claims to follow more status changes than its author saw",
        ));
    }
    Ok(())
}

/// An officer files (or moves the filing) only inside its regions; an
/// agency account bound to regions likewise.
fn filed_where_the_account_works(
    current: Option<&Request>,
    after: &Request,
    account: &Account,
) -> Result<(), Refused> {
    let moved = current.is_none_or(|c| c.content.region != after.content.region);
    if !moved || account.role == Role::Resident || account.regions.is_empty() {
        return Ok(());
    }
    if account.works_in(&after.content.region.0) {
        Ok(())
    } else {
        Err(forbidden(
            "the request's region is outside the regions this account works in",
        ))
    }
}

/// Leaving draft: every field and the required attachments. After that,
/// any change to what was filed or its details: every field.
fn content_is_valid(
    current: Option<&Request>,
    after: &Request,
    catalog: &Catalog,
) -> Result<(), Refused> {
    if after.status() == Status::Draft {
        return Ok(());
    }
    let today = sambung_core::Timestamp::now().today_in_indonesia();
    if matches!(after.content.details, Details::Service(_)) {
        return service_is_valid(current, after, catalog, today);
    }
    let report = match current {
        Some(c) if c.status() != Status::Draft => {
            let parts = changed_parts(c, after);
            if parts.contains(&Part::Filing) || parts.contains(&Part::Details) {
                after.content.validate(today)
            } else if parts.contains(&Part::Attachments) {
                // A required document removed after submission.
                let mut report = sambung_core::validation::ValidationReport::default();
                for role in after.content.details.required_attachments() {
                    if !after.attachments.iter().any(|a| a.role == role) {
                        report
                            .errors
                            .push(sambung_core::validation::FieldIssue::new(
                                format!("attachments.{}", role.as_str()),
                                sambung_core::validation::Code::AttachmentMissing,
                            ));
                    }
                }
                report
            } else {
                return Ok(());
            }
        }
        _ => after.validate_for_submit(today),
    };
    if report.is_ok() {
        return Ok(());
    }
    Err(invalid(
        report.errors.iter().map(FieldError::from).collect(),
    ))
}

/// [`content_is_valid`] for a catalog service: judged by the definition
/// version it was created on, with the server's own rules too. Leaving
/// draft: the answers and the required documents; after that, any change
/// to what was filed, its answers or its documents: the same again.
fn service_is_valid(
    current: Option<&Request>,
    after: &Request,
    catalog: &Catalog,
    today: sambung_core::CivilDate,
) -> Result<(), Refused> {
    if let Some(c) = current
        && c.status() != Status::Draft
    {
        let parts = changed_parts(c, after);
        if !(parts.contains(&Part::Filing)
            || parts.contains(&Part::Details)
            || parts.contains(&Part::Attachments))
        {
            return Ok(());
        }
        if let (Details::Service(was), Details::Service(now)) =
            (&c.content.details, &after.content.details)
            && (was.service != now.service || was.version != now.version)
        {
            return Err(forbidden(
                "a filed request stays on the service version it was filed on",
            ));
        }
    }
    let mut issues = catalog.check_request(after, today, Side::Server, true, catalog);
    // Only documents changed after filing: only the documents are judged
    // (as the compiled-in kinds do), so a rule that reads today's date
    // cannot refuse a document the office asked for.
    if let Some(c) = current
        && c.status() != Status::Draft
        && !changed_parts(c, after)
            .iter()
            .any(|p| matches!(p, Part::Filing | Part::Details))
    {
        issues.retain(|i| i.field.starts_with("attachments."));
    }
    if issues.is_empty() {
        return Ok(());
    }
    Err(invalid(issues.into_iter().map(FieldError::from).collect()))
}

fn invalid(errors: Vec<FieldError>) -> Refused {
    let fields: Vec<String> = errors
        .iter()
        .map(|e| format!("{} ({})", e.field, e.code))
        .collect();
    Refused {
        code: RefusalCode::Invalid,
        reason: format!("the request is not valid: {}", fields.join(", ")).into(),
        errors,
    }
}

#[cfg(test)]
mod tests;
