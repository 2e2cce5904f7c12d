//! One sync without a transport: a [`SyncSession`] builds each exchange's
//! request from the store and applies each answer to it, and says what
//! comes next; whoever drives it only moves bytes (the HTTP client in
//! `client.rs`, a test, a simulator). The shape of the server's
//! `exchange.rs` and of matrix-rust-sdk's sans-I/O base: the protocol's
//! decisions are testable with answers made in the test, no server needed.
//!
//! ```no_run
//! # fn post(body: Vec<u8>) -> Vec<u8> { body }
//! # fn demo(store: &sambung_core::store::Store) -> Result<(), sambung_core::Error> {
//! use sambung_core::sync::{Step, SyncSession};
//! let mut session = SyncSession::new(store, 64 * 1024)?;
//! loop {
//!     let body = session.next_request(store)?;
//!     match session.apply(store, &post(body))? {
//!         Step::Again => continue,
//!         Step::Done => break,
//!         // The agency revoked this device: `wipe_if_asked` deletes the store.
//!         Step::Wipe => return Err(sambung_core::Error::Revoked { wiped: true }),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Every step is recorded in the store as it is applied, so a request or
//! an answer lost on the way costs nothing: the next request is built from
//! what the store holds, and the server takes a repeated push as a no-op.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::Error;
use crate::model::RequestId;
use crate::protocol::{self, DocAck, DocId, DocPush, DocRepair, SyncRequest, SyncResponse};
use crate::store::{Pending, RepairStep, Store};

#[cfg(test)]
mod tests;

/// Repair messages one document may exchange in one sync before it is
/// left for the next (Automerge's protocol needs two or three; a bound
/// keeps a confused peer from looping).
const MAX_REPAIR_ROUNDS: u32 = 8;

/// What one `sync` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    /// Request bodies sent, bytes.
    pub bytes_up: u64,
    /// Response bodies received, bytes.
    pub bytes_down: u64,
    /// HTTP exchanges.
    pub round_trips: u32,
    /// Documents the server acknowledged.
    pub pushed: u32,
    /// Document updates applied from the server.
    pub pulled: u32,
    /// Service catalog changes received (published versions, retirements).
    pub services: u32,
    /// Parts of code lists received (`catalog::codes`).
    pub code_parts: u32,
    /// Requests this device's account may no longer see (reassigned, out
    /// of its regions), deleted here; a copy holding what the server lacks
    /// is kept.
    pub forgotten: u32,
    /// Documents the server refused, with its reason.
    pub refused: Vec<(String, String)>,
    /// Requests changed here by what came from the server (pulls and
    /// repairs), for observers.
    pub changed: Vec<RequestId>,
    /// Attachments now held whole by the server (sent or found there).
    pub attachments_uploaded: u32,
    /// Attachment bytes sent.
    pub attachment_bytes_up: u64,
    /// Attachments still to upload after this sync (a cut, a refusal):
    /// tried again at the next one. Text never waits for them.
    pub attachments_waiting: u32,
    /// Attachments the server will not take (content address, reason).
    pub attachments_refused: Vec<(String, String)>,
    /// Whether the uploads stopped on a network failure (the text synced):
    /// the engine tries again after a backoff, not at the next write.
    pub attachments_interrupted: bool,
}

/// What the driver does after an answer was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send the next request ([`SyncSession::next_request`]).
    Again,
    /// Nothing is left to push, pull or repair in this sync.
    Done,
    /// The agency revoked this device and asked for its store to be
    /// deleted, and everything that could still be pushed was: end the
    /// sync with [`Error::Revoked`]` { wiped: true }` and [`wipe_if_asked`] it.
    Wipe,
}

/// A repair under way in this sync.
struct Repair {
    state: automerge::sync::State,
    /// The message to send in the next exchange.
    next: Option<Vec<u8>>,
    rounds: u32,
}

/// The request on its way: what its answer is about.
struct InFlight {
    /// The pull cursor it carried.
    cursor: u64,
    /// Its pushes' ids, in the order sent.
    order: Vec<DocId>,
    /// Whether each of them went without its id (new to the server).
    nameless: Vec<bool>,
    /// The heads pushed for each document.
    pushed_heads: HashMap<DocId, Vec<automerge::ChangeHash>>,
    /// Whether pending documents were left for a later exchange.
    left_out: bool,
    /// The repair messages it carried, given back if it is never answered.
    repairs: Vec<(RequestId, Vec<u8>)>,
}

/// One sync between this store and its server, without the transport.
pub struct SyncSession {
    /// Largest request body, and the response size asked for.
    budget_bytes: usize,
    summary: SyncSummary,
    /// Refused in this sync: left alone until the next one.
    skip: HashSet<RequestId>,
    repairs: HashMap<RequestId, Repair>,
    /// What waits: read once per exchange, after its answer is applied.
    waiting: Vec<RequestId>,
    pending: Vec<Pending>,
    /// New documents pushed without their id that the server could not
    /// name: named from now on, so the answer is about them.
    named: HashSet<RequestId>,
    in_flight: Option<InFlight>,
}

impl SyncSession {
    /// A sync of `store` whose requests stay within `budget_bytes`
    /// (compressed), asking for answers of that size too.
    pub fn new(store: &Store, budget_bytes: usize) -> Result<SyncSession, Error> {
        if store.enrollment()?.is_none() {
            return Err(Error::NotEnrolled);
        }
        store.retry_code_parts()?;
        Ok(SyncSession {
            budget_bytes,
            summary: SyncSummary::default(),
            skip: HashSet::new(),
            repairs: HashMap::new(),
            waiting: store.repairs()?,
            pending: store.pending()?,
            named: HashSet::new(),
            in_flight: None,
        })
    }

    /// What this sync did so far.
    pub fn summary(&self) -> &SyncSummary {
        &self.summary
    }

    /// What this sync did, once it is over.
    pub fn into_summary(self) -> SyncSummary {
        self.summary
    }

    /// The next request's body (the `SBG` envelope), built from what the
    /// store holds: the pull cursor, pending documents' changes, repair
    /// messages. Calling it again before an answer came means the last one
    /// was lost: the request is built afresh from the store.
    pub fn next_request(&mut self, store: &Store) -> Result<Vec<u8>, Error> {
        if let Some(lost) = self.in_flight.take() {
            // The pending list went into the lost request; its repair
            // messages go again.
            self.waiting = store.repairs()?;
            self.pending = store.pending()?;
            for (id, message) in lost.repairs {
                if let Some(r) = self.repairs.get_mut(&id) {
                    r.next.get_or_insert(message);
                }
            }
        }
        let (cursor, cursor_tag) = store.cursor()?;
        let mut raw = 0usize;
        let repair = self.repair_messages(store, &mut raw)?;
        let pending = std::mem::take(&mut self.pending);
        let (push, order, pushed_heads, mut left_out) = self.pending_pushes(store, pending, raw)?;
        let mut request = SyncRequest {
            cursor,
            cursor_tag,
            push,
            repair,
            max_response_bytes: self.budget_bytes.min(u32::MAX as usize) as u32,
            catalog: store.catalog_seq()?,
        };
        let mut body = protocol::encode(&request).map_err(|_| Error::Crypto("encoding failed"))?;
        // Halved until the compressed body fits the budget (changes
        // compress well across documents, so the budget is applied to
        // what actually goes on the wire).
        while body.len() > self.budget_bytes && request.push.len() > 1 {
            let keep = request.push.len() / 2;
            request.push.truncate(keep);
            left_out = true;
            body = protocol::encode(&request).map_err(|_| Error::Crypto("encoding failed"))?;
        }
        self.summary.bytes_up += body.len() as u64;
        let sent = request.push.len();
        self.in_flight = Some(InFlight {
            cursor,
            order: order.into_iter().take(sent).collect(),
            nameless: request.push.iter().map(|p| p.id.is_none()).collect(),
            pushed_heads,
            left_out,
            repairs: request
                .repair
                .into_iter()
                .map(|r| (RequestId::from_bytes(r.id), r.message))
                .collect(),
        });
        Ok(body)
    }

    /// Applies the server's answer (the `SBG` envelope) to the store and
    /// says what comes next.
    pub fn apply(&mut self, store: &Store, answer: &[u8]) -> Result<Step, Error> {
        self.summary.round_trips += 1;
        self.summary.bytes_down += answer.len() as u64;
        let response: SyncResponse = protocol::decode(answer).map_err(|e| Error::Network {
            retryable: false,
            message: e.to_string(),
        })?;
        self.apply_response(store, response)
    }

    fn apply_response(&mut self, store: &Store, response: SyncResponse) -> Result<Step, Error> {
        // An answer to no request (none built, or built afresh since) is
        // taken as the answer to one that pushed nothing.
        let sent = match self.in_flight.take() {
            Some(sent) => sent,
            None => InFlight {
                cursor: store.cursor()?.0,
                order: Vec::new(),
                nameless: Vec::new(),
                pushed_heads: HashMap::new(),
                left_out: false,
                repairs: Vec::new(),
            },
        };
        // Every push taken as pushed: the acks are the pushes, in order.
        let acks: Vec<DocAck> = if response.acked_all {
            sent.order
                .iter()
                .map(|id| DocAck {
                    id: *id,
                    heads: Vec::new(),
                })
                .collect()
        } else {
            response.acks.clone()
        };
        let answered: HashSet<DocId> = acks
            .iter()
            .map(|a| a.id)
            .chain(response.refused.iter().map(|r| r.id))
            .chain(response.unknown_heads.iter().map(|u| u.0))
            .collect();
        // A nameless push without an answer goes again at once, named,
        // so that its answer (a refusal, say) is about it: that counts
        // as progress, or the next sync would start nameless again.
        let mut named_now = false;
        for (nameless, id) in sent.nameless.iter().zip(&sent.order) {
            if *nameless && !answered.contains(id) {
                named_now |= self.named.insert(RequestId::from_bytes(*id));
            }
        }
        let progressed = named_now
            || !acks.is_empty()
            || !response.pull.is_empty()
            || !response.repair.is_empty()
            || !response.catalog.is_empty()
            || response.cursor != sent.cursor;
        for ack in &acks {
            let id = RequestId::from_bytes(ack.id);
            // No heads: exactly the heads this device pushed.
            let heads: Vec<automerge::ChangeHash> = if ack.heads.is_empty() {
                sent.pushed_heads.get(&ack.id).cloned().unwrap_or_default()
            } else {
                ack.heads.iter().map(|h| (*h).into()).collect()
            };
            if !heads.is_empty() {
                store.mark_acked(&id, &heads)?;
            }
            self.summary.pushed += 1;
            let pushed = sent.pushed_heads.get(&ack.id).cloned().unwrap_or_default();
            if store.is_acked(&id, &pushed)? {
                store.set_refusal(&id, None)?;
            } else {
                // The server took only part: the rest builds on changes
                // of another device that it must deliver itself (after
                // a restore from backup). Pending, not retried now.
                store.set_waiting(&id, "some changes wait for another device to sync first")?;
                self.skip.insert(id);
            }
        }
        for r in &response.refused {
            let id = RequestId::from_bytes(r.id);
            let reason = format!("{:?}: {}", r.code, r.reason);
            store.set_refusal(&id, Some(&reason))?;
            self.summary.refused.push((id.to_string(), reason));
            self.repairs.remove(&id);
            self.skip.insert(id);
        }
        for unknown in &response.unknown_heads {
            // The server does not hold what this device believes it
            // acknowledged: repair (the document stays, and stays
            // pending).
            store.mark_for_repair(
                &RequestId::from_bytes(unknown.0),
                "the server does not know this request's history; it is being repaired",
            )?;
        }
        for r in &response.repair {
            self.continue_repair(store, r)?;
        }
        if response.catalog_seq != 0 || !response.catalog.is_empty() {
            store.apply_catalog(&response.catalog, response.catalog_seq)?;
            let (parts, services): (Vec<_>, Vec<_>) = response
                .catalog
                .iter()
                .partition(|e| crate::catalog::codes::is_part_key(&e.service));
            self.summary.services += services.len() as u32;
            self.summary.code_parts += parts.len() as u32;
        }
        for pull in &response.pull {
            // One document that cannot be applied must not stop the
            // others: it is marked and repaired.
            match store.apply_pull(pull) {
                Ok(id) => {
                    self.summary.pulled += 1;
                    if !self.summary.changed.contains(&id) {
                        self.summary.changed.push(id);
                    }
                }
                Err(e @ (Error::Document(_) | Error::Corrupt(_))) => {
                    tracing::warn!(error = %e, "pulled changes could not be applied; repairing");
                    store.mark_for_repair(
                        &RequestId::from_bytes(pull.id),
                        "changes from the server could not be applied; the request is being repaired",
                    )?;
                }
                Err(e) => return Err(e),
            }
        }
        for gone in &response.gone {
            if store.forget_unseen(&gone.0)? {
                self.summary.forgotten += 1;
                // Observers re-read it, and find it gone.
                let id = RequestId::from_bytes(gone.0);
                if !self.summary.changed.contains(&id) {
                    self.summary.changed.push(id);
                }
            }
        }
        if response.reset {
            // The server was restored from a backup: anything it
            // acknowledged may be gone from it, so check every request.
            store.mark_all_for_repair("the server was restored; checking this request")?;
        }
        self.waiting = store.repairs()?;
        self.pending = store.pending()?;
        if response.wipe {
            // Revoked, allowed to push first: push what is left, then
            // wipe (also when nothing more goes through).
            let left = self.pending.iter().any(|p| !self.skip.contains(&p.id));
            if !left || !progressed {
                return Ok(Step::Wipe);
            }
            return Ok(Step::Again);
        }
        store.set_cursor(response.cursor, response.cursor_tag)?;
        let repairs_left = self.waiting.iter().any(|id| {
            !self.skip.contains(id) && self.repairs.get(id).is_none_or(|r| r.next.is_some())
        });
        let pending_left = self
            .pending
            .iter()
            .any(|p| !self.skip.contains(&p.id) && !self.repairs.contains_key(&p.id));
        if !(response.more || sent.left_out || pending_left || repairs_left) {
            return Ok(Step::Done);
        }
        if !progressed && !response.more {
            return Ok(Step::Done);
        }
        Ok(Step::Again)
    }

    /// The repair messages of this exchange: the first step of repairs not
    /// begun yet, and the answers to the server's last messages.
    fn repair_messages(&mut self, store: &Store, raw: &mut usize) -> Result<Vec<DocRepair>, Error> {
        for id in &self.waiting {
            if self.skip.contains(id) || self.repairs.contains_key(id) {
                continue;
            }
            let mut state = automerge::sync::State::new();
            let next = match store.repair_step(id, &mut state, None)? {
                RepairStep::Send(m) => Some(m),
                RepairStep::Done | RepairStep::Stuck => None,
            };
            self.repairs.insert(
                id.clone(),
                Repair {
                    state,
                    next,
                    rounds: 0,
                },
            );
        }
        let mut out = Vec::new();
        for (id, r) in self.repairs.iter_mut() {
            if *raw > self.budget_bytes {
                break;
            }
            if let Some(message) = r.next.take() {
                *raw += message.len();
                let id = id.to_bytes().ok_or(Error::NotFound { what: "request" })?;
                out.push(DocRepair { id, message });
            }
        }
        Ok(out)
    }

    /// Applies one of the server's repair messages.
    fn continue_repair(&mut self, store: &Store, r: &DocRepair) -> Result<(), Error> {
        let id = RequestId::from_bytes(r.id);
        let Some(slot) = self.repairs.get_mut(&id) else {
            return Ok(()); // not asked for in this sync: a duplicate
        };
        slot.rounds += 1;
        let give_up = |skip: &mut HashSet<RequestId>, summary: &mut SyncSummary, why: &str| {
            summary.refused.push((id.to_string(), why.to_owned()));
            skip.insert(id.clone());
        };
        match store.repair_step(&id, &mut slot.state, Some(&r.message)) {
            Ok(RepairStep::Done) => {
                self.repairs.remove(&id);
                self.summary.pulled += 1;
                if !self.summary.changed.contains(&id) {
                    self.summary.changed.push(id);
                }
            }
            Ok(RepairStep::Send(m)) if slot.rounds < MAX_REPAIR_ROUNDS => slot.next = Some(m),
            Ok(_) => give_up(
                &mut self.skip,
                &mut self.summary,
                "the repair did not finish; it continues at the next sync",
            ),
            Err(e @ (Error::Document(_) | Error::Corrupt(_))) => {
                tracing::warn!(error = %e, "a repair message could not be applied");
                give_up(
                    &mut self.skip,
                    &mut self.summary,
                    "the server's repair could not be applied",
                );
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The pending documents that go into this exchange (not refused in
    /// this sync, not being repaired), the heads pushed for each, and
    /// whether some were left for the next exchange.
    #[allow(clippy::type_complexity)]
    fn pending_pushes(
        &self,
        store: &Store,
        pending: Vec<Pending>,
        mut raw: usize,
    ) -> Result<
        (
            Vec<DocPush>,
            Vec<DocId>,
            HashMap<DocId, Vec<automerge::ChangeHash>>,
            bool,
        ),
        Error,
    > {
        let mut push = Vec::new();
        let mut order = Vec::new();
        let mut pushed_heads = HashMap::new();
        // Every request waiting for a repair is in `repairs` by now (or
        // skipped): `repair_messages` began them all.
        for p in pending {
            if self.skip.contains(&p.id) || self.repairs.contains_key(&p.id) {
                continue;
            }
            if raw > self.budget_bytes.saturating_mul(16) {
                return Ok((push, order, pushed_heads, true));
            }
            let (changes, heads) = store.changes_to_push(&p.id)?;
            raw += changes.len();
            let id = p.id.to_bytes().ok_or(Error::NotFound { what: "request" })?;
            // A document the server never acknowledged is new to it: it
            // reads the id from the document.
            let new = p.acked_heads.is_empty() && !self.named.contains(&p.id);
            push.push(DocPush {
                id: (!new).then_some(id),
                since: p.acked_heads.into_iter().map(Into::into).collect(),
                changes,
                heads: heads.iter().copied().map(Into::into).collect(),
            });
            pushed_heads.insert(id, heads);
            order.push(id);
        }
        Ok((push, order, pushed_heads, false))
    }
}

/// How a sync ends for the store: when the agency revoked this device and
/// asked for a wipe — in an answer ([`Step::Wipe`]) or by refusing the
/// exchange — the store is deleted here, whoever drives the sync (the app,
/// the engine, the CLI); the handle is unusable afterwards. Anything else
/// passes through.
pub fn wipe_if_asked(
    store: &Store,
    result: Result<SyncSummary, Error>,
) -> Result<SyncSummary, Error> {
    match result {
        Err(Error::Revoked { wiped: true }) => {
            Store::wipe(store.dir(), true)?;
            tracing::warn!("the agency revoked this device; its store was deleted");
            Err(Error::Revoked { wiped: true })
        }
        other => other,
    }
}
