//! One sync exchange, independent of HTTP: apply every pushed document
//! (each on its own, so one refusal never blocks another), then collect what
//! the device may pull.

use std::borrow::Cow;

use automerge::ReadDoc;
use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, ChangeHash};
use ring::hmac;
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::{Request, RequestId};
use sambung_core::protocol::limits::{ChunkError, MAX_STORED_DOCUMENT_BYTES, Sender, check_chunks};
use sambung_core::protocol::{
    DocAck, DocId, DocPull, DocPush, DocRef, DocRepair, Hash, Refusal, RefusalCode, SYNC_PATH,
    SyncRequest, SyncResponse,
};

use crate::accounts::{Account, Draft, Scope};
use crate::audit::AuditRecord;
use crate::authority::Refused;
use crate::documents::{DocWrite, update_documents};
use crate::error::ServerError;
use crate::storage::{Delivered, DocMeta, LogEntry, Storage, StoredDoc};

/// The authenticated sender of an exchange.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Device id (its Automerge actor id).
    pub device: [u8; 16],
    /// Its account.
    pub account: Account,
    /// The nonce of the signed exchange (what receipts name it by).
    pub exchange: [u8; 16],
    /// Revoked with a wipe, after pushing what it holds: its pushes are
    /// taken, nothing is sent to it, and the answer says `wipe`.
    pub push_only: bool,
    /// The service catalog its requests are judged by, and handed to it.
    pub catalog: std::sync::Arc<crate::catalog::Loaded>,
}

/// The result of one pushed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushResult {
    /// Accepted; the server now holds these heads (empty: exactly the
    /// heads the device pushed).
    Ack(Vec<Hash>),
    /// Refused, with a reason for the device.
    Refused(Refused),
    /// The `since` heads are unknown here: the device must repair.
    UnknownHeads,
}

/// Keyed hash of a NIK on the server (links requests filed on a resident's
/// behalf to the resident's account without keeping NIKs in the clear).
pub fn nik_hash(key: &hmac::Key, nik: &str) -> Vec<u8> {
    hmac::sign(key, nik.trim().as_bytes()).as_ref()[..16].to_vec()
}

fn heads_bytes(heads: &[ChangeHash]) -> Vec<u8> {
    sambung_core::document::encode_heads(heads)
}

/// Whether `doc` holds a change matching each of `heads`.
fn holds_all(doc: &mut AutoCommit, heads: &[sambung_core::protocol::HeadPrefix]) -> bool {
    let current = doc.get_heads();
    // The common case: the sender's heads are the document's heads now.
    if heads.iter().all(|p| current.iter().any(|h| p.matches(h))) {
        return true;
    }
    let all: Vec<ChangeHash> = doc.get_changes(&[]).iter().map(|c| c.hash()).collect();
    heads.iter().all(|p| all.iter().any(|h| p.matches(h)))
}

/// The largest pushed changes of one document accepted (requests are
/// small; attachments never ride inside documents).
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// The id of a pushed document: as named, or — for a document new to the
/// server, sent without it — read from the document's own `id` field.
/// `None`: it cannot be named (no answer; the device names it next time).
pub fn pushed_id(push: &DocPush) -> Option<DocId> {
    if let Some(id) = push.id {
        return Some(id);
    }
    if !push.since.is_empty()
        || push.changes.len() > MAX_DOCUMENT_BYTES
        || check_chunks(&push.changes, Sender::Device).is_err()
    {
        return None;
    }
    // Hostile bytes must not take the exchange down.
    std::panic::catch_unwind(|| {
        let mut doc = AutoCommit::new();
        doc.load_incremental(&push.changes).ok()?;
        match doc.get(automerge::ROOT, "id").ok()?? {
            (automerge::Value::Scalar(v), _) => match v.as_ref() {
                automerge::ScalarValue::Str(s) => RequestId::parse(s)?.to_bytes(),
                _ => None,
            },
            _ => None,
        }
    })
    .ok()
    .flatten()
}

/// Applies an exchange's pushed documents, each named (see
/// [`pushed_id`]), in one storage transaction: one commit for all of them.
/// `given` is the highest log position this device was given.
pub fn apply_pushes(
    storage: &dyn Storage,
    nik_key: &hmac::Key,
    caller: &Caller,
    given: u64,
    pushes: &[(DocId, &DocPush)],
) -> Result<Vec<PushResult>, ServerError> {
    let mut results: Vec<Option<PushResult>> = vec![None; pushes.len()];
    // Checked before anything is merged; and what the server had given
    // this device of each document — by its pulls, or by a repair of this
    // document — its changes are judged against no less.
    let mut ready = Vec::new();
    for (i, &(id, push)) in pushes.iter().enumerate() {
        if let Some(refused) = refused_unread(push) {
            results[i] = Some(refused);
            continue;
        }
        let given = given.max(storage.given(caller.device, id)?);
        let floor: Vec<ChangeHash> = match storage.heads_at(id, given)? {
            Some(h) => sambung_core::document::decode_heads(&h)
                .map_err(|_| ServerError::Storage("damaged heads".into()))?,
            None => Vec::new(),
        };
        ready.push((i, id, push, floor));
    }
    let ids: Vec<DocId> = ready.iter().map(|r| r.1).collect();
    let outcomes = update_documents(storage, &ids, &mut |k, current: Option<StoredDoc>| {
        let (i, id, push, floor) = &ready[k];
        // Hostile bytes must not take the exchange down with them: a panic
        // inside the merge refuses this document only.
        let merged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            merge(nik_key, caller, *id, push, floor, current)
        }));
        let (r, w) = match merged {
            Ok(outcome) => outcome?,
            Err(_) => {
                tracing::warn!("a pushed document made the merge panic; refused");
                (
                    PushResult::Refused(Refused::new(
                        RefusalCode::Invalid,
                        "the document could not be processed",
                    )),
                    DocWrite::Unchanged,
                )
            }
        };
        results[*i] = Some(r);
        Ok(w)
    })?;
    for (k, written) in outcomes.iter().enumerate() {
        if let Some(refused) = refused_reference(written) {
            results[ready[k].0] = Some(refused);
        }
    }
    Ok(results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                PushResult::Refused(Refused::new(RefusalCode::Invalid, "not processed"))
            })
        })
        .collect())
}

/// A refusal of a push decided before its bytes are read by Automerge:
/// too large, or chunks over the limits (`limits`).
fn refused_unread(push: &DocPush) -> Option<PushResult> {
    if push.changes.len() > MAX_DOCUMENT_BYTES {
        return Some(PushResult::Refused(Refused::new(
            RefusalCode::TooLarge,
            "the changes of this request are larger than the server accepts",
        )));
    }
    check_chunks(&push.changes, Sender::Device).err().map(|e| {
        let code = match e {
            ChunkError::TooManyOps => RefusalCode::TooLarge,
            ChunkError::Malformed | ChunkError::Encoding => RefusalCode::Invalid,
        };
        PushResult::Refused(Refused::new(code, e.to_string()))
    })
}

/// What an exchange does when the write of a pushed document failed:
/// a new reference to bytes the device's account may not reference
/// ([`ServerError::ForeignBlob`]) refuses that document only (its reason
/// for the device); any other error stays an error.
fn refused_reference(written: &Result<(), ServerError>) -> Option<PushResult> {
    matches!(written, Err(ServerError::ForeignBlob)).then(|| {
        PushResult::Refused(Refused::new(
            RefusalCode::Forbidden,
            ServerError::ForeignBlob.to_string(),
        ))
    })
}

fn merge(
    nik_key: &hmac::Key,
    caller: &Caller,
    id: DocId,
    push: &DocPush,
    floor: &[ChangeHash],
    current: Option<StoredDoc>,
) -> Result<(PushResult, DocWrite), ServerError> {
    use PushResult::*;
    fn refuse(
        code: RefusalCode,
        reason: impl Into<Cow<'static, str>>,
    ) -> Result<(PushResult, DocWrite), ServerError> {
        Ok((
            PushResult::Refused(crate::authority::Refused::new(code, reason)),
            DocWrite::Unchanged,
        ))
    }
    let mut doc = match &current {
        Some(c) => {
            if !caller.account.may_see(&c.scope) {
                return refuse(
                    RefusalCode::Forbidden,
                    "this account may not write this request",
                );
            }
            AutoCommit::load(&c.data)
                .map_err(|_| ServerError::Storage("a stored document does not load".into()))?
        }
        None => AutoCommit::new(),
    };
    let previous: Option<Request> = match &current {
        Some(_) => Some(
            autosurgeon::hydrate(&doc)
                .map_err(|_| ServerError::Storage("a stored document does not hydrate".into()))?,
        ),
        None => None,
    };
    // Erased is final: the device's copy holds the old history, and the
    // replacement reaches it in this exchange's pull.
    if previous.as_ref().is_some_and(|p| p.erased_at.is_some()) {
        return refuse(
            RefusalCode::Forbidden,
            "the personal data of this request was erased; it takes no more changes",
        );
    }
    let since: Vec<ChangeHash> = push.since.iter().map(|h| ChangeHash::from(*h)).collect();
    if since.iter().any(|h| doc.get_change_by_hash(h).is_none()) {
        return Ok((UnknownHeads, DocWrite::Unchanged));
    }
    let before = doc.get_heads();
    // When the server held exactly what the device says it acknowledged,
    // its heads after the merge are the device's own: the ack then carries
    // no heads (32 incompressible bytes a head saved per document).
    let same_base = {
        let (mut b, mut s) = (before.clone(), since.clone());
        b.sort();
        s.sort();
        b == s
    };
    if doc.load_incremental(&push.changes).is_err() {
        return refuse(
            RefusalCode::Invalid,
            "the changes are not valid Automerge data",
        );
    }
    if !doc.get_missing_deps(&[]).is_empty() {
        // Changes that build on changes this server does not have.
        return Ok((UnknownHeads, DocWrite::Unchanged));
    }
    // Automerge loads what it can of damaged bytes: unless every head the
    // device says it pushed is here now, something was lost on the way, and
    // acknowledging would make the device forget changes the server lacks.
    if push.heads.is_empty() || !holds_all(&mut doc, &push.heads) {
        return refuse(
            RefusalCode::Invalid,
            "the changes are damaged or incomplete",
        );
    }
    // Authorship: only the caller's own changes are taken (its actor id is
    // its enrolled device id). Another device's changes that it relays —
    // possible only after a restore from backup — wait for their author to
    // deliver them, and so do the caller's changes built on them; the ack
    // then names the heads the server holds, and the rest stays pending.
    let mut held_back = false;
    let new_changes = doc.get_changes(&before);
    if new_changes
        .iter()
        .any(|c| c.actor_id().to_bytes() != caller.device)
    {
        let mut base = match &current {
            Some(c) => AutoCommit::load(&c.data)
                .map_err(|_| ServerError::Storage("a stored document does not load".into()))?,
            None => AutoCommit::new(),
        };
        let mut taken = std::collections::HashSet::new();
        let mut own = Vec::new();
        // `get_changes` lists changes in causal order.
        for c in new_changes {
            let deps_here = c
                .deps()
                .iter()
                .all(|d| taken.contains(d) || base.get_change_by_hash(d).is_some());
            if c.actor_id().to_bytes() == caller.device && deps_here {
                taken.insert(c.hash());
                own.push(c);
            }
        }
        if own.is_empty() {
            return refuse(
                RefusalCode::Forbidden,
                "the changes were written by another device",
            );
        }
        if base.apply_changes(own).is_err() {
            return refuse(
                RefusalCode::Invalid,
                "the changes are not valid Automerge data",
            );
        }
        doc = base;
        held_back = true;
    }
    let after = doc.get_heads();
    let ack = |heads: &[ChangeHash]| {
        if same_base && !held_back {
            Vec::new()
        } else {
            heads.iter().map(|h| Hash::from(*h)).collect()
        }
    };
    if after == before {
        return Ok((Ack(ack(&after)), DocWrite::Unchanged));
    }
    let request: Request = match autosurgeon::hydrate(&doc) {
        Ok(r) => r,
        Err(_) => return refuse(RefusalCode::Invalid, "the document is not a valid request"),
    };
    if request.id.to_bytes() != Some(id) {
        return refuse(
            RefusalCode::Invalid,
            "the request id does not match the document id",
        );
    }
    // Who may write what: the caller's changes are judged by the rules
    // table against the state its author saw when writing them (their
    // dependencies, and no less than the server had given it), not
    // against changes made meanwhile by others.
    let (seen, written) = match authors_view(&mut doc, &before, floor, previous.as_ref(), &request)
    {
        Ok(view) => view,
        Err((code, reason)) => return refuse(code, reason),
    };
    if seen.is_none() && current.is_some() {
        return refuse(
            RefusalCode::Forbidden,
            "this request exists already; it cannot be created again",
        );
    }
    let author = sambung_core::edits::Author {
        user: &caller.account.id,
        role: caller.account.role,
    };
    // Judged as what it was: a service's kind and definition cannot change
    // (the rules table and the authority refuse that below).
    let subject = caller
        .catalog
        .catalog
        .subject(seen.as_ref().unwrap_or(&written));
    if let Err(denied) = sambung_core::rules::check(seen.as_ref(), &written, author, subject) {
        return refuse(RefusalCode::Forbidden, denied.0);
    }
    // What only the server knows: its copy now (decisions final, history
    // appended after what the author saw, content valid, filed where the
    // account works).
    if let Err(refused) = crate::authority::judge(
        previous.as_ref(),
        seen.as_ref(),
        &request,
        &caller.account,
        &caller.catalog.catalog,
    ) {
        return Ok((PushResult::Refused(refused), DocWrite::Unchanged));
    }
    let scope = scope_of(nik_key, &request);
    if !caller.account.may_see(&scope) {
        return refuse(
            RefusalCode::Forbidden,
            "the request would be outside what this account may see",
        );
    }
    let write = write_of(
        &mut doc,
        &before,
        current.as_ref(),
        previous.as_ref(),
        scope,
        &request,
        caller.device,
        Delivered {
            account: caller.account.id.clone(),
            device: Some(caller.device),
            exchange: Some(caller.exchange),
            at: sambung_core::Timestamp::now().as_millis(),
        },
    );
    // The whole document stays bounded, not only each push: its saved
    // bytes, and — walked as devices walk it — its operations and inflated
    // columns (many small pushes of run-length encoded writes would grow a
    // document to millions of operations in a few compressed bytes).
    if let DocWrite::Write { doc: stored, .. } = &write
        && (stored.data.len() > MAX_STORED_DOCUMENT_BYTES
            || check_chunks(&stored.data, Sender::Server).is_err())
    {
        return refuse(
            RefusalCode::TooLarge,
            "the request would grow larger than the server keeps",
        );
    }
    Ok((Ack(ack(&after)), write))
}

/// The request as the author of the changes new since `before` saw it
/// (absent for a new request) and as those changes left it, without what
/// others wrote meanwhile. What it saw is the changes' dependencies, and
/// never less than `floor` (what the server had given this device): a
/// client cannot have its changes judged by an older state of its choosing.
/// In the common case — the author had everything the server held, and
/// nobody wrote meanwhile — these are `previous` and `merged` as they are;
/// otherwise the document is forked at those points.
fn authors_view(
    doc: &mut AutoCommit,
    before: &[ChangeHash],
    floor: &[ChangeHash],
    previous: Option<&Request>,
    merged: &Request,
) -> Result<(Option<Request>, Request), (RefusalCode, &'static str)> {
    use sambung_core::document::unknown_fields;
    const UNREADABLE: (RefusalCode, &str) =
        (RefusalCode::Invalid, "the document is not a valid request");
    let sorted = |mut v: Vec<ChangeHash>| {
        v.sort();
        v.dedup();
        v
    };
    let new: Vec<(ChangeHash, Vec<ChangeHash>)> = doc
        .get_changes(before)
        .into_iter()
        .map(|c| (c.hash(), c.deps().to_vec()))
        .collect();
    let hashes: std::collections::HashSet<ChangeHash> = new.iter().map(|c| c.0).collect();
    let seen = sorted(
        new.iter()
            .flat_map(|c| c.1.iter().copied())
            .filter(|d| !hashes.contains(d))
            .collect(),
    );
    let depended: std::collections::HashSet<ChangeHash> =
        new.iter().flat_map(|c| c.1.iter().copied()).collect();
    let tips = sorted(
        new.iter()
            .map(|c| c.0)
            .filter(|h| !depended.contains(h))
            .collect(),
    );
    let floor: Vec<ChangeHash> = floor
        .iter()
        .filter(|h| doc.get_change_by_hash(h).is_some())
        .copied()
        .collect();
    // Claimed dependencies older than the floor: the changes are judged as
    // if written on top of it — what the author saw is at least the floor,
    // and what it wrote is its changes applied to the floor.
    let (seen, tips) = if seen.is_empty() || covers(doc, &seen, &floor) {
        (seen, tips)
    } else {
        (
            sorted(seen.iter().chain(&floor).copied().collect()),
            sorted(tips.iter().chain(&floor).copied().collect()),
        )
    };
    let fork = |doc: &mut AutoCommit,
                heads: &[ChangeHash]|
     -> Result<(AutoCommit, Request), (RefusalCode, &'static str)> {
        let fork = doc.fork_at(heads).map_err(|_| UNREADABLE)?;
        let request = autosurgeon::hydrate(&fork).map_err(|_| UNREADABLE)?;
        Ok((fork, request))
    };
    let (after, unknown) = if tips == sorted(doc.get_heads()) {
        (merged.clone(), unknown_fields(doc, merged))
    } else {
        let (f, r) = fork(doc, &tips)?;
        let unknown = unknown_fields(&f, &r);
        (r, unknown)
    };
    // The seen state, forked only when it is not the stored one or its
    // unknown fields are needed.
    let stored_seen = !seen.is_empty() && seen == sorted(before.to_vec());
    let seen_fork = if seen.is_empty() || (stored_seen && previous.is_some() && unknown.is_empty())
    {
        None
    } else {
        Some(fork(doc, &seen)?)
    };
    // Fields beside the model, only those these changes added: a document
    // an older app wrote keeps syncing.
    if !unknown.is_empty() {
        let known = seen_fork
            .as_ref()
            .map(|(f, r)| unknown_fields(f, r))
            .unwrap_or_default();
        if unknown.iter().any(|p| !known.contains(p)) {
            return Err((
                RefusalCode::Forbidden,
                "the changes write fields a request does not have",
            ));
        }
    }
    let seen_view = match (seen_fork, previous) {
        (Some((_, r)), _) => Some(r),
        (None, Some(p)) if stored_seen => Some(p.clone()),
        _ => None,
    };
    Ok((seen_view, after))
}

/// Whether every change in `these` is `heads` or an ancestor of them.
fn covers(doc: &AutoCommit, heads: &[ChangeHash], these: &[ChangeHash]) -> bool {
    let mut left: std::collections::HashSet<ChangeHash> = these.iter().copied().collect();
    let mut stack: Vec<ChangeHash> = heads.to_vec();
    let mut visited = std::collections::HashSet::new();
    while let Some(h) = stack.pop() {
        if left.is_empty() {
            break;
        }
        if !visited.insert(h) {
            continue;
        }
        left.remove(&h);
        if let Some(c) = doc.get_change_by_hash(&h) {
            stack.extend(c.deps().iter().copied());
        }
    }
    left.is_empty()
}

/// Who may see a request, as the server reads it from the document.
pub fn scope_of(nik_key: &hmac::Key, request: &Request) -> Scope {
    Scope {
        region: request.content.region.0.clone(),
        owner: request.created_by.clone(),
        applicant_nik_hash: request
            .content
            .applicant
            .as_ref()
            .map(|a| nik_hash(nik_key, a.nik.as_str())),
        assignee: request.assignee.clone(),
        draft: match (request.status(), request.created_role) {
            (Status::Draft, Role::Officer) => Draft::OnBehalf,
            (Status::Draft, _) => Draft::Own,
            _ => Draft::No,
        },
    }
}

/// What to store after `doc` changed from `before` (it holds `request`),
/// delivered by `device` (or the server's own actor) as `delivery` says.
#[allow(clippy::too_many_arguments)]
pub fn write_of(
    doc: &mut AutoCommit,
    before: &[ChangeHash],
    current: Option<&StoredDoc>,
    previous: Option<&Request>,
    scope: Scope,
    request: &Request,
    device: [u8; 16],
    delivery: Delivered,
) -> DocWrite {
    let changes = doc.get_changes(before).iter().map(|c| c.hash().0).collect();
    // When who may see the document changes, the log carries all of it, so
    // that devices entitled only now receive the whole document.
    let log_data = match current {
        Some(c) if c.scope == scope => doc.save_after(before),
        // Uncompressed: the envelope's zstd folds many documents together
        // far better than DEFLATE inside each one.
        _ => doc.save_nocompress(),
    };
    DocWrite::Write {
        scope_keys: crate::scope_index::write_keys(current.map(|c| &c.scope), &scope),
        doc: StoredDoc {
            data: doc.save(),
            scope,
            meta: doc_meta(request, current.map(|c| &c.meta)),
        },
        heads: heads_bytes(&doc.get_heads()),
        log_data,
        device,
        changes,
        delivery,
        events: crate::webhooks::events_between(previous, request),
        replace: false,
        attachments: crate::blobs::hashes(request),
    }
}

/// The listed fields of a request, as the server writes it now;
/// `previous`: what it stored of it before.
///
/// The submission time is the **server's**: when it first stored the
/// request submitted, kept from then on. A history entry's time is the
/// device's clock, which a tampered app sets at will (a backdated request
/// would jump the overdue list); and the service standard's days start
/// when the office has the request, not when a phone offline for a week
/// pressed submit.
pub fn doc_meta(request: &Request, previous: Option<&DocMeta>) -> DocMeta {
    let now = sambung_core::Timestamp::now().as_millis();
    let submitted = request.history.iter().any(|h| h.to == Status::Submitted);
    DocMeta {
        kind: request.kind().as_str().to_owned(),
        service: request.kind().service().as_str().to_owned(),
        status: request.status().as_str().to_owned(),
        updated_at: now,
        // In range by `location()`: the products fit an i32.
        location: request
            .content
            .location()
            .map(|l| ((l.lat * 1e6).round() as i32, (l.lon * 1e6).round() as i32)),
        submitted_at: previous
            .and_then(|m| m.submitted_at)
            .or(submitted.then_some(now)),
        definition: match &request.content.details {
            sambung_core::model::Details::Service(s) => s.service.clone(),
            _ => request.kind().as_str().to_owned(),
        },
    }
}

/// Answers one repair message (Automerge's Bloom-filter sync protocol).
///
/// Repair only finds a base both sides hold: the server sends the changes
/// the device lacks and its heads, and never takes changes from a repair
/// message — the device's own changes then travel as an ordinary push, with
/// every check that a push gets (authorship, rules, scope). A fresh sync
/// state per message keeps the server stateless.
pub fn repair(
    storage: &dyn Storage,
    caller: &Caller,
    request: &DocRepair,
) -> Result<Result<Vec<u8>, (RefusalCode, &'static str)>, ServerError> {
    let Ok(mut message) = sync::Message::decode(&request.message) else {
        return Ok(Err((
            RefusalCode::Invalid,
            "the repair message is not valid",
        )));
    };
    // Bounded before Automerge acts on what the message claims.
    if sambung_core::protocol::limits::check_sync_message(&message).is_err() {
        return Ok(Err((
            RefusalCode::Invalid,
            "the repair message asks more than the server answers",
        )));
    }
    message.changes = sync::ChunkList::empty();
    let mut doc = match storage.document(request.id)? {
        Some(stored) => {
            if !caller.account.may_see(&stored.scope) {
                return Ok(Err((
                    RefusalCode::Forbidden,
                    "this account may not read this request",
                )));
            }
            let doc = AutoCommit::load(&stored.data)
                .map_err(|_| ServerError::Storage("a stored document does not load".into()))?;
            // An erased request is not repaired: its old history must not
            // come back; the device gets the replacement by its cursor.
            if autosurgeon::hydrate::<_, Request>(&doc).is_ok_and(|r| r.erased_at.is_some()) {
                return Ok(Err((
                    RefusalCode::Forbidden,
                    "the personal data of this request was erased",
                )));
            }
            doc
        }
        // Unknown here (a server restored from before it arrived): the
        // answer says the server holds nothing, and the device pushes all.
        None => AutoCommit::new(),
    };
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut state = sync::State::new();
        doc.sync().receive_sync_message(&mut state, message).ok()?;
        Some(
            doc.sync()
                .generate_sync_message(&mut state)
                .map(|m| m.encode())
                .unwrap_or_default(),
        )
    }));
    match answered {
        Ok(Some(reply)) => Ok(Ok(reply)),
        _ => Ok(Err((
            RefusalCode::Invalid,
            "the repair message could not be processed",
        ))),
    }
}

/// Log entries read per storage call while filling a response.
const PAGE: usize = 256;
/// The most log entries one exchange reads, visible to the caller or not:
/// past them the answer says `more` (what one exchange may cost the server
/// does not grow with the log).
pub const MAX_LOG_READ: usize = 4 * PAGE;

/// What one document's id costs in an answer's `gone`.
const GONE_BYTES: usize = 17;

/// What a pull sends of a log entry the reader's index found.
#[derive(Debug, PartialEq, Eq)]
enum Pulled {
    /// Nothing: the device holds it, its history was erased, or it says
    /// nothing (a notice of a document the caller may see).
    Nothing,
    /// Its data.
    Data,
    /// That the caller may no longer see its document.
    Gone,
}

fn pulled(
    caller: &Caller,
    reader: &crate::scope_index::Reader,
    high: u64,
    entry: &LogEntry,
) -> Pulled {
    // Entries of an erased request's old history are not sent.
    if entry.purged {
        return Pulled::Nothing;
    }
    if !caller.account.may_see(&entry.scope) {
        // Found under one of the caller's keys (or meant for it), the
        // document was visible to it once: the device drops its copy.
        // Reading the whole log finds every draft: those say nothing.
        let once_seen = entry.for_account || matches!(reader, crate::scope_index::Reader::Keys(_));
        return if once_seen {
            Pulled::Gone
        } else {
            Pulled::Nothing
        };
    }
    let own_and_held = entry.device == caller.device && entry.seq > high;
    if own_and_held || entry.data.is_empty() {
        return Pulled::Nothing;
    }
    Pulled::Data
}

/// One exchange's answer, and the documents it wrote (for the audit
/// trail: with `acked_all` the answer no longer names them).
pub struct Exchanged {
    /// The answer.
    pub response: SyncResponse,
    /// The documents whose pushed changes the server accepted.
    pub written: Vec<DocId>,
}

/// Runs one exchange, and records in the audit trail what it wrote and
/// what it gave the device to read — before the answer leaves: no read
/// without its record.
pub fn exchange(
    storage: &dyn Storage,
    nik_key: &hmac::Key,
    caller: &Caller,
    request: &SyncRequest,
) -> Result<Exchanged, ServerError> {
    let exchanged = run(storage, nik_key, caller, request)?;
    crate::audit::append(storage, &audit_records(caller, &exchanged))?;
    Ok(exchanged)
}

/// The audit records of an exchange: a `write` for each document whose
/// changes were taken, a `read` for each sent (pulled, or repaired).
fn audit_records(caller: &Caller, exchanged: &Exchanged) -> Vec<AuditRecord> {
    let at = sambung_core::Timestamp::now().as_millis();
    let record = |action: &str, id: DocId| AuditRecord {
        at,
        account: caller.account.id.clone(),
        role: caller.account.role.as_str().to_owned(),
        device: Some(caller.device),
        action: action.to_owned(),
        request: Some(id),
        endpoint: format!("POST {SYNC_PATH}"),
    };
    let response = &exchanged.response;
    exchanged
        .written
        .iter()
        .map(|id| record("write", *id))
        .chain(response.pull.iter().map(|p| record("read", p.id)))
        // A repair answer carries the document's changes too.
        .chain(response.repair.iter().map(|r| record("read", r.id)))
        .collect()
}

/// [`exchange`] without its audit records.
fn run(
    storage: &dyn Storage,
    nik_key: &hmac::Key,
    caller: &Caller,
    request: &SyncRequest,
) -> Result<Exchanged, ServerError> {
    let mut written = Vec::new();
    let mut response = SyncResponse::at(request.cursor, request.cursor_tag);
    // A cursor this log did not give (the server was restored from a
    // backup older than it): pull from the start rather than skip entries
    // the device never saw; merging what it already holds changes nothing.
    if !caller.push_only
        && request.cursor > 0
        && storage.log_tag(request.cursor)? != Some(request.cursor_tag)
    {
        tracing::info!("a device's cursor is not in this log; it pulls from the start");
        response.cursor = 0;
        response.cursor_tag = 0;
        response.reset = true;
    }
    // The highest log position this device was given (its pushes are
    // judged against no less; its pull resends up to it).
    let high = storage.high_cursor(caller.device)?;
    let mut named = Vec::with_capacity(request.push.len());
    for push in &request.push {
        match pushed_id(push) {
            Some(id) => named.push((id, push)),
            None => {
                tracing::info!("a new document could not be named; the device names it next time")
            }
        }
    }
    let results = apply_pushes(storage, nik_key, caller, high, &named)?;
    for (&(id, _), result) in named.iter().zip(results) {
        match result {
            PushResult::Ack(heads) => {
                written.push(id);
                response.acks.push(DocAck { id, heads })
            }
            PushResult::Refused(r) => {
                tracing::info!(code = ?r.code, reason = %r.reason, "document refused");
                response.refused.push(Refusal {
                    id,
                    code: r.code,
                    reason: r.reason.into_owned(),
                    errors: r.errors,
                })
            }
            PushResult::UnknownHeads => response.unknown_heads.push(DocRef(id)),
        }
    }
    // The common case, said in one bit: every push taken as pushed.
    if !request.push.is_empty()
        && response.acks.len() == request.push.len()
        && response.acks.iter().all(|a| a.heads.is_empty())
    {
        response.acks.clear();
        response.acked_all = true;
    }
    if caller.push_only {
        response.wipe = true;
        return Ok(Exchanged { response, written });
    }
    for r in &request.repair {
        match repair(storage, caller, r)? {
            Ok(message) => {
                // The device now holds the document as it stands: its later
                // pushes are judged against no less.
                storage.raise_given(caller.device, r.id)?;
                response.repair.push(DocRepair { id: r.id, message })
            }
            Err((code, reason)) => response.refused.push(Refusal {
                id: r.id,
                code,
                reason: reason.to_owned(),
                errors: Vec::new(),
            }),
        }
    }
    // A device is not sent its own entries (it holds them) — except those
    // up to the highest cursor it was given: a device coming back with a
    // lower one lost a response, or was restored from a backup and may
    // lack them (resending costs bytes; skipping would lose requests).
    // Pull: what this device may see, since its cursor, within its budget.
    // The budget is for the compressed body; documents shrink four to
    // seven times in the envelope (the dictionary, and zstd across them),
    // so four times the budget of raw changes stays under it: a first
    // sync of 500 requests takes 2 exchanges, not 6.
    let budget = (request.max_response_bytes.max(1024) as usize).saturating_mul(4);
    let reader = crate::scope_index::reader_of(&caller.account);
    let mut gone = std::collections::BTreeSet::new();
    // The service catalog first: requests pulled may be on services new
    // to the device. A position beyond this server's (a server restored
    // from a backup) starts over; what the device holds is kept.
    let since = if request.catalog > caller.catalog.seq {
        0
    } else {
        request.catalog
    };
    let (entries, reached) = caller.catalog.delta(since, budget / 2);
    let mut used: usize = entries
        .iter()
        .map(|e| e.definition.as_ref().map_or(64, String::len))
        .sum();
    response.more |= reached < caller.catalog.seq;
    response.catalog = entries;
    response.catalog_seq = reached;
    let mut read = 0usize;
    'pages: loop {
        if read >= MAX_LOG_READ {
            response.more = true;
            break;
        }
        let limit = PAGE.min(MAX_LOG_READ - read);
        let page = storage.log_for(&reader, response.cursor, limit)?;
        let last_page = page.len() < limit;
        read += page.len();
        for entry in page {
            match pulled(caller, &reader, high, &entry) {
                Pulled::Nothing => {}
                Pulled::Gone => {
                    if used > 0 && used + GONE_BYTES > budget {
                        response.more = true;
                        break 'pages;
                    }
                    if gone.insert(DocRef(entry.doc)) {
                        used += GONE_BYTES;
                    }
                }
                Pulled::Data => {
                    if used > 0 && used + entry.data.len() > budget {
                        response.more = true;
                        break 'pages;
                    }
                    used += entry.data.len();
                    let heads = sambung_core::document::decode_heads(&entry.heads)
                        .map_err(|_| ServerError::Storage("damaged heads".into()))?;
                    // Sent again later (its visibility came back): no
                    // longer gone.
                    gone.remove(&DocRef(entry.doc));
                    response.pull.push(DocPull {
                        id: entry.doc,
                        changes: entry.data,
                        heads: heads.into_iter().map(Hash::from).collect(),
                        replace: entry.replace,
                    });
                }
            }
            response.cursor = entry.seq;
            response.cursor_tag = crate::storage::log_tag(&entry.heads);
        }
        if last_page {
            break;
        }
    }
    response.gone = gone.into_iter().collect();
    storage.raise_high_cursor(caller.device, response.cursor)?;
    Ok(Exchanged { response, written })
}

#[cfg(test)]
mod tests;
