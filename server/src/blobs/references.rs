//! A document's attachment references, written with the document: a
//! reference new to it is recorded only for an owner of the bytes, for
//! bytes still to come, or for an account that may see another request
//! whose reference grants them (it then becomes an owner by gift, not an
//! uploader); a blob whose last reference went away starts its grace
//! period.

use sambung_core::protocol::DocId;

use crate::accounts::{Account, Scope};
use crate::error::ServerError;
use crate::storage::{Delivered, Tx};

/// Replaces document `id`'s references with `now_refs`, in the write's
/// transaction; [`ServerError::ForeignBlob`] (and nothing of the document
/// written) for a reference its delivering account may not add.
pub fn write_refs_in_tx(
    tx: &mut dyn Tx,
    id: &DocId,
    now_refs: &[[u8; 32]],
    delivery: &Delivered,
) -> Result<(), ServerError> {
    let now = delivery.at.div_euclid(1000);
    let held = tx.blob_refs(id)?;
    let mut account: Option<Option<Account>> = None;
    for h in now_refs.iter().filter(|h| !held.contains(h)) {
        let owns = tx.owns_blob(h, &delivery.account)?;
        let blob_held = tx.blob_held(h)?;
        let mut scopes = Vec::new();
        if !owns && blob_held {
            if account.is_none() {
                account = Some(tx.account(&delivery.account)?);
            }
            scopes = tx.granting_scopes(h, id)?;
        }
        let who = account.as_ref().and_then(|a| a.as_ref());
        if judge(who, owns, blob_held, &scopes)? == NewReference::Given {
            tx.give_blob(h, &delivery.account, delivery.device, now)?;
        }
        tx.add_blob_ref(id, h, &delivery.account)?;
    }
    for h in held.iter().filter(|h| !now_refs.contains(h)) {
        tx.remove_blob_ref(id, h, now)?;
    }
    tx.mark_refs_known(id)?;
    Ok(())
}

/// What to do with a reference new to a document, from the facts read in
/// the write's transaction.
fn judge(
    account: Option<&Account>,
    owns: bool,
    blob_held: bool,
    granting_scopes: &[Scope],
) -> Result<NewReference, ServerError> {
    if owns || !blob_held {
        // Owned, or its bytes are still to come: the reference grants
        // them only once its account owns them (`blob_granted`).
        return Ok(NewReference::Plain);
    }
    match account {
        Some(a) if granting_scopes.iter().any(|s| a.may_see(s)) => Ok(NewReference::Given),
        _ => Err(ServerError::ForeignBlob),
    }
}

/// See [`judge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NewReference {
    /// Recorded as it is.
    Plain,
    /// Recorded, and the account becomes an owner (not an uploader): it
    /// could see the bytes already through another request.
    Given,
}
