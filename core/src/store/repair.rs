//! Documents waiting for a repair, and one step of it on the device side
//! (protocol in `docs/protocol.md`, "Repair"): when the server does not know
//! the heads this device believes it acknowledged, or the device cannot
//! apply what it pulled, both sides find a base they share with Automerge's
//! Bloom-filter sync protocol; the device then pushes the rest as usual.

use automerge::sync::State;
use rusqlite::params;

use super::{Store, id_bytes};
use crate::document::{RequestDoc, encode_heads};
use crate::error::Error;
use crate::model::RequestId;

/// What to do after one repair step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairStep {
    /// Send this sync-protocol message to the server.
    Send(Vec<u8>),
    /// The device holds everything the server holds: the server's heads are
    /// recorded as acknowledged and ordinary pushes resume.
    Done,
    /// The protocol has nothing more to ask yet the server's heads are not
    /// all here: the request stays marked and is tried at the next sync.
    Stuck,
}

impl Store {
    /// Marks a request for repair, with a reason shown to the user until it
    /// is done. Nothing of the document is touched.
    pub fn mark_for_repair(&self, id: &RequestId, reason: &str) -> Result<(), Error> {
        let idb = id_bytes(id)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO repairs (id, reason) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET reason = ?2",
                params![idb.as_slice(), reason],
            )?;
            tx.execute(
                "UPDATE requests SET refusal = ?2, refused = 0 WHERE id = ?1",
                params![idb.as_slice(), reason],
            )?;
            Ok(())
        })
    }

    /// Marks every request held here for repair (the server was restored
    /// from a backup and may have lost what it acknowledged).
    pub fn mark_all_for_repair(&self, reason: &str) -> Result<(), Error> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO repairs (id, reason) SELECT id, ?1 FROM requests WHERE true
                 ON CONFLICT (id) DO UPDATE SET reason = ?1",
                [reason],
            )?;
            Ok(())
        })
    }

    /// Requests waiting for a repair.
    pub fn repairs(&self) -> Result<Vec<RequestId>, Error> {
        self.read(|tx| {
            let mut st = tx.prepare_cached("SELECT id FROM repairs ORDER BY id")?;
            let ids = st
                .query_map([], |r| r.get::<_, Vec<u8>>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            ids.iter()
                .map(|b| super::stored_id(b).map(RequestId::from_bytes))
                .collect()
        })
    }

    /// One step of a repair: receives the server's message (if any) into
    /// the document — creating it when it is not held here — and either
    /// finishes or says what to send next. `state` lives for one sync;
    /// nothing of it needs to survive a cut, since a repair can always
    /// start over.
    pub fn repair_step(
        &self,
        id: &RequestId,
        state: &mut State,
        incoming: Option<&[u8]>,
    ) -> Result<RepairStep, Error> {
        let idb = id_bytes(id)?;
        self.write(|tx| {
            let held = match self.load_doc(tx, &idb) {
                Ok(found) => Some(found),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            let (mut doc, row) = match held {
                Some((doc, row)) => (doc, Some(row)),
                None => (RequestDoc::empty(self.actor.clone()), None),
            };
            if let Some(message) = incoming {
                let before = doc.heads();
                doc.receive_sync_message(state, message)?;
                if doc.heads() != before {
                    let request = doc.hydrate()?;
                    if request.id != *id {
                        return Err(Error::Document("the repaired document's id does not match"));
                    }
                    match &row {
                        Some(row) => self.persist(tx, &idb, row, &mut doc, &before, &request)?,
                        None => self.insert_doc(tx, &request, &mut doc)?,
                    }
                }
                let theirs = state.their_heads.clone().unwrap_or_default();
                let exists = row.is_some() || doc.heads() != before;
                if doc.has_all(&theirs) {
                    if exists {
                        // The server holds exactly `theirs`: the new base.
                        // Empty means it holds nothing, and the whole
                        // document is pushed.
                        let acked = (!theirs.is_empty()).then(|| encode_heads(&theirs));
                        tx.execute(
                            "UPDATE requests SET acked_heads = ?2, refusal = NULL, refused = 0 WHERE id = ?1",
                            params![idb.as_slice(), acked],
                        )?;
                    }
                    tx.execute("DELETE FROM repairs WHERE id = ?1", [idb.as_slice()])?;
                    return Ok(RepairStep::Done);
                }
            }
            Ok(doc
                .sync_message(state)
                .map_or(RepairStep::Stuck, RepairStep::Send))
        })
    }
}
