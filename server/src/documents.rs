//! Writing documents: the steps an accepted change takes in its
//! transaction — the document's row, its log entry (filed in the scope
//! index), who delivered each change, the webhook deliveries it causes and
//! its attachment references — written once over the backends' building
//! blocks ([`Tx`]). The merge that decides *what* to write is
//! [`crate::exchange`]'s (and the back office's, and the erasure's).

use sambung_core::protocol::DocId;

use crate::error::ServerError;
use crate::scope_index::ScopeKey;
use crate::storage::{
    Delivered, NewLogEntry, Storage, StoredDoc, Subscription, Tx, in_transaction,
};
use crate::webhooks::Event;

/// What an update of one document writes.
#[derive(Debug)]
// Made and consumed once per merge, never collected: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum DocWrite {
    /// Nothing changed.
    Unchanged,
    /// The new state, and the log entry devices pull it from.
    Write {
        /// The document after the merge.
        doc: StoredDoc,
        /// Its heads, 32 bytes each.
        heads: Vec<u8>,
        /// What devices pull: the new changes, or the whole document when
        /// who may see it changed (so newly entitled devices get all of it).
        log_data: Vec<u8>,
        /// The device that delivered the change.
        device: [u8; 16],
        /// The changes new in this write, and who delivered them: kept
        /// for each change, so who wrote every decision and field note can
        /// be shown later.
        changes: Vec<[u8; 32]>,
        /// Who delivered `changes`.
        delivery: Delivered,
        /// What webhooks announce of it (queued in the same transaction,
        /// [`crate::webhooks::queue_in_tx`]).
        events: Vec<Event>,
        /// `doc` is a new document replacing the old one and its history
        /// (an erasure): the old log entries of it are purged, and devices
        /// replace their copy.
        replace: bool,
        /// The keys of the scope index the log entry is filed under
        /// ([`crate::scope_index::write_keys`]).
        scope_keys: Vec<ScopeKey>,
        /// The content addresses of its attachments now (see
        /// [`crate::blobs::hashes`]). A reference new to the document is
        /// written only if `delivery.account` owns the blob, may see
        /// another request whose reference grants it, or the blob is not
        /// on the server (its bytes follow the document; such a reference
        /// grants them once its account uploaded them); otherwise the
        /// write fails with
        /// [`ServerError::ForeignBlob`] and nothing is written.
        attachments: Vec<[u8; 32]>,
    },
}

/// Runs `f` on each document of `ids` in turn (with its index in `ids`),
/// under the database's lock on it (concurrent merges of one document are
/// serialised by the database, not in process memory), and writes what it
/// returns — all in one transaction, one commit for an exchange's pushes. A
/// write refused for its document alone ([`ServerError::is_per_document`])
/// undoes that document's write only and is its outcome; any other error
/// undoes them all.
///
/// Each document is first merged as it stands, before the transaction, so
/// that the merges (the costly part) of concurrent exchanges run side by
/// side instead of one behind the other under SQLite's one writer, and
/// PostgreSQL's locks and connections are held only while writing. In the
/// transaction, a document that did not change meanwhile (the same stored
/// bytes) takes that write, and one that did is merged again under its
/// lock.
pub fn update_documents(
    storage: &dyn Storage,
    ids: &[DocId],
    f: &mut dyn FnMut(usize, Option<StoredDoc>) -> Result<DocWrite, ServerError>,
) -> Result<Vec<Result<(), ServerError>>, ServerError> {
    let mut early = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let current = storage.document(*id)?;
        let seen = current.as_ref().map(|d| d.data.clone());
        early.push(Some((seen, f(i, current))));
    }
    in_transaction(storage, |tx| {
        update_documents_in_tx(tx, ids, &mut |i, current| match early
            .get_mut(i)
            .and_then(Option::take)
        {
            Some((seen, write)) if seen.as_deref() == current.as_ref().map(|d| &d.data[..]) => {
                write
            }
            _ => f(i, current),
        })
    })
}

/// [`update_documents`] of one document.
pub fn update_document(
    storage: &dyn Storage,
    id: DocId,
    f: &mut dyn FnMut(Option<StoredDoc>) -> Result<DocWrite, ServerError>,
) -> Result<(), ServerError> {
    update_documents(storage, &[id], &mut |_, current| f(current))?
        .pop()
        .unwrap_or(Ok(()))
}

/// [`update_documents`] in the transaction open on `tx`.
pub fn update_documents_in_tx(
    tx: &mut dyn Tx,
    ids: &[DocId],
    f: &mut dyn FnMut(usize, Option<StoredDoc>) -> Result<DocWrite, ServerError>,
) -> Result<Vec<Result<(), ServerError>>, ServerError> {
    // Every document's lock first, in one order: two exchanges sharing
    // documents never wait on each other in a circle.
    tx.lock_documents(ids)?;
    let mut subscriptions = None;
    let mut entries = Vec::new();
    let mut outcomes = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        tx.savepoint()?;
        let written = match f(i, tx.document(id)?) {
            Ok(DocWrite::Unchanged) => Ok(None),
            Ok(write) => write_in_tx(tx, id, write, &mut subscriptions).map(Some),
            Err(e) => Err(e),
        };
        match written {
            Ok(entry) => {
                tx.release_savepoint()?;
                entries.extend(entry);
                outcomes.push(Ok(()));
            }
            Err(e) if e.is_per_document() => {
                tx.rollback_to_savepoint()?;
                outcomes.push(Err(e));
            }
            Err(e) => return Err(e),
        }
    }
    // The log entries last, all at once: a backend numbers them in commit
    // order under a lock held only from here to the commit.
    tx.append_log(&entries)?;
    Ok(outcomes)
}

/// Writes one document's new state, receipts, webhook deliveries and
/// attachment references; its log entry is returned, to be appended with
/// the transaction's others. `subscriptions` is loaded on first need.
fn write_in_tx(
    tx: &mut dyn Tx,
    id: &DocId,
    write: DocWrite,
    subscriptions: &mut Option<Vec<Subscription>>,
) -> Result<NewLogEntry, ServerError> {
    let DocWrite::Write {
        doc,
        heads,
        log_data,
        device,
        changes,
        delivery,
        events,
        replace,
        attachments,
        scope_keys,
    } = write
    else {
        return Err(ServerError::Storage("nothing to write".into()));
    };
    if replace {
        // The old history is gone, and its receipts with it (they would
        // keep the times of erased notes); its log entries are emptied.
        tx.delete_receipts(id)?;
        tx.purge_log(id)?;
    }
    tx.insert_receipts(id, &changes, &delivery)?;
    if !events.is_empty() {
        if subscriptions.is_none() {
            *subscriptions = Some(tx.subscriptions()?);
        }
        let subs = subscriptions.as_deref().unwrap_or_default();
        crate::webhooks::queue_in_tx(tx, subs, &doc.scope, &events)?;
    }
    tx.write_document(id, &doc, &heads)?;
    crate::blobs::write_refs_in_tx(tx, id, &attachments, &delivery)?;
    Ok(NewLogEntry {
        doc: *id,
        data: log_data,
        heads,
        device,
        replaces: replace,
        audience: None,
        keys: scope_keys,
    })
}
