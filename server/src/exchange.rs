//! One sync exchange, independent of HTTP: apply every pushed document
//! (each on its own, so one refusal never blocks another), then collect what
//! the device may pull.

use automerge::{AutoCommit, ChangeHash};
use ring::hmac;
use sambung_core::model::Request;
use sambung_core::protocol::{
    DocAck, DocPull, DocPush, DocRef, Hash, Refusal, RefusalCode, SyncRequest, SyncResponse,
};

use crate::accounts::{Account, Scope};
use crate::error::ServerError;
use crate::storage::{DocWrite, Storage, StoredDoc};

/// The authenticated sender of an exchange.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Device id (its Automerge actor id).
    pub device: [u8; 16],
    /// Its account.
    pub account: Account,
}

/// The result of one pushed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushResult {
    /// Accepted; the server now holds these heads (empty: exactly the
    /// heads the device pushed).
    Ack(Vec<Hash>),
    /// Refused, with a reason for the device.
    Refused(RefusalCode, &'static str),
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

/// The largest pushed changes of one document accepted (requests are
/// small; attachments never ride inside documents).
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// Applies one pushed document.
pub fn apply_push(
    storage: &dyn Storage,
    nik_key: &hmac::Key,
    caller: &Caller,
    push: &DocPush,
) -> Result<PushResult, ServerError> {
    let mut result = PushResult::Refused(RefusalCode::Invalid, "not processed");
    if push.changes.len() > MAX_DOCUMENT_BYTES {
        return Ok(PushResult::Refused(
            RefusalCode::TooLarge,
            "the changes of this request are larger than the server accepts",
        ));
    }
    storage.update_document(push.id, &mut |current: Option<StoredDoc>| {
        // Hostile bytes must not take the exchange down with them: a panic
        // inside the merge refuses this document only.
        let merged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            merge(nik_key, caller, push, current)
        }));
        let (r, w) = match merged {
            Ok(outcome) => outcome?,
            Err(_) => {
                tracing::warn!("a pushed document made the merge panic; refused");
                (
                    PushResult::Refused(
                        RefusalCode::Invalid,
                        "the document could not be processed",
                    ),
                    DocWrite::Unchanged,
                )
            }
        };
        result = r;
        Ok(w)
    })?;
    Ok(result)
}

fn merge(
    nik_key: &hmac::Key,
    caller: &Caller,
    push: &DocPush,
    current: Option<StoredDoc>,
) -> Result<(PushResult, DocWrite), ServerError> {
    use PushResult::*;
    let refuse = |code, reason| Ok((Refused(code, reason), DocWrite::Unchanged));
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
    let ack = |heads: &[ChangeHash]| {
        if same_base {
            Vec::new()
        } else {
            heads.iter().map(|h| Hash::from(*h)).collect()
        }
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
    if push.heads.is_empty()
        || push
            .heads
            .iter()
            .any(|h| doc.get_change_by_hash(&ChangeHash::from(*h)).is_none())
    {
        return refuse(
            RefusalCode::Invalid,
            "the changes are damaged or incomplete",
        );
    }
    let after = doc.get_heads();
    if after == before {
        return Ok((Ack(ack(&after)), DocWrite::Unchanged));
    }
    // Authorship: every change new to the server must be the caller's own
    // (its actor id is its enrolled device id).
    if doc
        .get_changes(&before)
        .iter()
        .any(|c| c.actor_id().to_bytes() != caller.device)
    {
        return refuse(
            RefusalCode::Forbidden,
            "the changes were written by another device",
        );
    }
    let request: Request = match autosurgeon::hydrate(&doc) {
        Ok(r) => r,
        Err(_) => return refuse(RefusalCode::Invalid, "the document is not a valid request"),
    };
    if request.id.to_bytes() != Some(push.id) {
        return refuse(
            RefusalCode::Invalid,
            "the request id does not match the document id",
        );
    }
    if let Err(reason) = crate::rules::check(previous.as_ref(), &request, &caller.account) {
        return refuse(RefusalCode::Forbidden, reason);
    }
    let scope = Scope {
        region: request.content.region.0.clone(),
        owner: request.created_by.clone(),
        applicant_nik_hash: request
            .content
            .applicant
            .as_ref()
            .map(|a| nik_hash(nik_key, a.nik.as_str())),
    };
    if !caller.account.may_see(&scope) {
        return refuse(
            RefusalCode::Forbidden,
            "the request would be outside what this account may see",
        );
    }
    // When who may see the document changes, the log carries all of it, so
    // that devices entitled only now receive the whole document.
    let log_data = match &current {
        Some(c) if c.scope == scope => doc.save_after(&before),
        _ => doc.save(),
    };
    let heads = ack(&after);
    let write = DocWrite::Write {
        doc: StoredDoc {
            data: doc.save(),
            scope,
        },
        heads: heads_bytes(&after),
        log_data,
        device: caller.device,
    };
    Ok((Ack(heads), write))
}

/// Log entries read per storage call while filling a response.
const PAGE: usize = 256;

/// Runs one exchange.
pub fn exchange(
    storage: &dyn Storage,
    nik_key: &hmac::Key,
    caller: &Caller,
    request: &SyncRequest,
) -> Result<SyncResponse, ServerError> {
    let mut response = SyncResponse {
        acks: Vec::new(),
        refused: Vec::new(),
        unknown_heads: Vec::new(),
        repair: Vec::new(),
        pull: Vec::new(),
        cursor: request.cursor,
        more: false,
    };
    for push in &request.push {
        match apply_push(storage, nik_key, caller, push)? {
            PushResult::Ack(heads) => response.acks.push(DocAck { id: push.id, heads }),
            PushResult::Refused(code, reason) => {
                tracing::info!(code = ?code, reason, "document refused");
                response.refused.push(Refusal {
                    id: push.id,
                    code,
                    reason: reason.to_owned(),
                })
            }
            PushResult::UnknownHeads => response.unknown_heads.push(DocRef(push.id)),
        }
    }
    // Pull: what this device may see, since its cursor, within its budget.
    let budget = request.max_response_bytes.max(1024) as usize;
    let mut used = 0usize;
    'pages: loop {
        let page = storage.log_since(response.cursor, PAGE)?;
        if page.is_empty() {
            break;
        }
        for entry in page {
            let visible = caller.account.may_see(&entry.scope);
            // A device's own changes are already on it.
            if visible && entry.device != caller.device {
                if used > 0 && used + entry.data.len() > budget {
                    response.more = true;
                    break 'pages;
                }
                used += entry.data.len();
                let heads = sambung_core::document::decode_heads(&entry.heads)
                    .map_err(|_| ServerError::Storage("damaged heads".into()))?;
                response.pull.push(DocPull {
                    id: entry.doc,
                    changes: entry.data,
                    heads: heads.into_iter().map(Hash::from).collect(),
                });
            }
            response.cursor = entry.seq;
        }
    }
    Ok(response)
}
