//! A person's erasure (UU PDP art. 8), without HTTP. Each request about
//! them is replaced — under its lock, as the server's own actor — by a new
//! document with a new history that keeps only the non-personal record of
//! the decision ([`KEPT`]; `sambung_core::model::erase`); devices replace
//! their copies at their next sync. Then the bytes of its attachments go
//! ([`finish`]).

use automerge::ActorId;
use ring::hmac;
use sambung_core::document::RequestDoc;
use sambung_core::protocol::DocId;

use crate::audit::AuditRecord;
use crate::documents::{DocWrite, update_documents_in_tx};
use crate::error::ServerError;
use crate::exchange::{doc_meta, scope_of};
use crate::storage::{Delivered, Storage, StoredDoc, Tx, in_transaction};

/// What an erased request keeps, for the answer and the docs.
pub const KEPT: &str = "id, kind, region, lawful basis, creation time and account, status history (who decided what, when; notes removed), assignment, attachment roles and sizes: the non-personal record of a government decision that archival and administrative law require (UU 43/2009, UU 30/2014)";

/// What an erasure did with one request about the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erased {
    /// Erased now (or no longer stored); the content addresses its
    /// attachments named, whose bytes go at [`finish`].
    Now(Vec<[u8; 32]>),
    /// Erased before: left as it is.
    Before,
    /// Filed by the person's account for someone else: that someone's
    /// record, not theirs to erase, left as it is.
    FiledForOther,
}

/// Erases the request `id` about the person whose keyed NIK hash is
/// `person` (see [`crate::exchange::nik_hash`]): the replacement is written
/// by `actor` (the server's) and delivered as `delivery` says; `record`,
/// the audit record of the erasure, is written in the same transaction
/// (unless the request was another person's record, left as it is).
pub fn erase_request(
    storage: &dyn Storage,
    nik_key: &hmac::Key,
    actor: [u8; 16],
    person: &[u8],
    id: DocId,
    delivery: &Delivered,
    record: Option<&AuditRecord>,
) -> Result<Erased, ServerError> {
    in_transaction(storage, |tx| {
        let outcome = erase_in_tx(tx, nik_key, actor, person, id, delivery)?;
        if let Some(r) = record
            && outcome != Erased::FiledForOther
        {
            crate::audit::append_in_tx(tx, std::slice::from_ref(r))?;
        }
        Ok(outcome)
    })
}

/// [`erase_request`] in the transaction open on `tx`, without a record.
fn erase_in_tx(
    tx: &mut dyn Tx,
    nik_key: &hmac::Key,
    actor: [u8; 16],
    person: &[u8],
    id: DocId,
    delivery: &Delivered,
) -> Result<Erased, ServerError> {
    let mut outcome = Erased::Now(Vec::new());
    let written = update_documents_in_tx(tx, &[id], &mut |_, current| {
        let Some(current) = current else {
            outcome = Erased::Now(Vec::new());
            return Ok(DocWrite::Unchanged);
        };
        let old = RequestDoc::load(&current.data, [], ActorId::from(actor))
            .and_then(|d| d.hydrate())
            .map_err(|_| ServerError::Storage("a stored document does not load".into()))?;
        if old.erased_at.is_some() {
            outcome = Erased::Before;
            return Ok(DocWrite::Unchanged);
        }
        if current
            .scope
            .applicant_nik_hash
            .as_deref()
            .is_some_and(|h| h != person)
        {
            outcome = Erased::FiledForOther;
            return Ok(DocWrite::Unchanged);
        }
        outcome = Erased::Now(crate::blobs::hashes(&old));
        let request = sambung_core::model::erase::erased(&old, sambung_core::Timestamp::now());
        // A new document with a new history: the old one holds the erased
        // values.
        let mut doc = RequestDoc::new(&request, ActorId::from(actor))
            .map_err(|_| ServerError::Storage("the erased request cannot be written".into()))?;
        let mut scope = scope_of(nik_key, &request);
        // The keyed NIK hash stays so that the person's own devices still
        // receive the replacement.
        scope.applicant_nik_hash = current.scope.applicant_nik_hash.clone();
        let data = doc.save();
        Ok(DocWrite::Write {
            scope_keys: crate::scope_index::write_keys(Some(&current.scope), &scope),
            doc: StoredDoc {
                data,
                scope,
                meta: doc_meta(&request, Some(&current.meta)),
            },
            heads: sambung_core::document::encode_heads(&doc.heads()),
            // Uncompressed, as devices take whole documents
            // (`protocol::limits`).
            log_data: doc.automerge().save_nocompress(),
            device: actor,
            changes: doc
                .automerge()
                .get_changes(&[])
                .iter()
                .map(|c| c.hash().0)
                .collect(),
            delivery: delivery.clone(),
            events: Vec::new(),
            replace: true,
            attachments: crate::blobs::hashes(&request),
        })
    })?;
    if let Some(Err(e)) = written.into_iter().next() {
        return Err(e);
    }
    Ok(outcome)
}

/// Ends an erasure: the bytes of the erased requests' `attachments` go,
/// with every unfinished upload of them — unless another request still
/// references the same bytes (then they are that request's too, and go
/// when it no longer references them: erased, or collected after the grace
/// period) — and the space of what was deleted or overwritten is made
/// unreadable ([`Storage::release_freed`]).
pub fn finish(storage: &dyn Storage, attachments: &[[u8; 32]]) -> Result<(), ServerError> {
    for digest in attachments {
        storage.erase_blob(digest)?;
    }
    storage.release_freed()
}
