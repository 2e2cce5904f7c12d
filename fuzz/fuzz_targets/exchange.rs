//! The server's exchange handler, in-process, on structured sync requests:
//! the fuzzer describes exchanges (cursor, budget, pushes with or without
//! an id, `since` heads chosen among those the server holds, repairs), and
//! each push's changes are real Automerge edits of a real request document
//! (`common/edits.rs`) written by the enrolled device's actor — or another
//! actor's — and sent as `save_after` writes them, sometimes damaged. The
//! harness encodes and compresses the request, signs it with the enrolled
//! key and sends it through the real router, so mutations reach the merge,
//! authorship, `rules::check` and `authority::judge` rather than dying in
//! zstd or CBOR (the `envelope` and `messages` targets fuzz those bytes).
//! Sometimes the encoded body itself is damaged. The answer is a typed 4xx
//! or a 200 — never a panic in our code, never a 5xx.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::sync::Mutex;

use arbitrary::Arbitrary;
use automerge::{ActorId, AutoCommit, ChangeHash};
use common::edits::{self, Edit, Seed};
use libfuzzer_sys::fuzz_target;
use sambung_core::document::RequestDoc;
use sambung_core::protocol::{
    self, DocId, DocPush, DocRepair, Hash, HeadPrefix, SYNC_PATH, SyncRequest, SyncResponse,
};
use sambung_server::storage::Storage;

#[derive(Arbitrary, Debug)]
struct Input {
    exchanges: Vec<Exchange>,
}

#[derive(Arbitrary, Debug)]
struct Exchange {
    cursor: Cursor,
    max_response_bytes: u32,
    pushes: Vec<Push>,
    repairs: Vec<Repair>,
    /// Damage to the encoded body, applied one time in eight.
    body_damage: Damage,
}

#[derive(Arbitrary, Debug)]
enum Cursor {
    Start,
    /// The cursor of the previous answer in this input.
    Last,
    Any(u64, u32),
}

#[derive(Arbitrary, Debug)]
struct Push {
    target: Target,
    author: Author,
    edits: Vec<Edit>,
    since: Since,
    changes: Base,
    heads: Heads,
    /// Pushed with its id (else the server reads it from the document).
    named: bool,
    /// Damage to the changes, applied one time in four.
    damage: Damage,
}

/// Which document.
#[derive(Arbitrary, Debug)]
enum Target {
    /// A new request.
    New(Seed),
    /// One made earlier in this input (the device's copy).
    Local(u8),
    /// One the server took earlier in the run: its stored copy, as a
    /// device that pulled it holds it.
    Stored(u8),
}

/// Who writes the edits.
#[derive(Arbitrary, Debug)]
enum Author {
    /// The enrolled device.
    Own,
    /// Another device (its changes relayed by this one).
    Other(u8),
}

/// What the push says the device had.
#[derive(Arbitrary, Debug)]
enum Since {
    /// What this device pushed last of it (nothing, for a new one).
    Pushed,
    /// The heads the server holds now.
    ServerHeads,
    /// One change the server holds.
    ServerChange(u8),
    Nothing,
    Any([u8; 32]),
}

/// Which changes are sent.
#[derive(Arbitrary, Debug)]
enum Base {
    /// After the `since` heads (when the device holds them).
    AfterSince,
    AfterPushed,
    Everything,
}

/// Which heads the push names.
#[derive(Arbitrary, Debug)]
enum Heads {
    Document,
    Nothing,
    First,
    Any([u8; 8]),
}

#[derive(Arbitrary, Debug)]
enum Repair {
    /// A real repair message of a document of this input.
    Local(u8),
    /// Any bytes, for a document of this input or a stored one.
    Any { target: u8, message: Vec<u8> },
}

#[derive(Arbitrary, Debug)]
struct Damage {
    when: u8,
    flips: Vec<(u16, u8)>,
    truncate: Option<u16>,
}

impl Damage {
    fn apply(&self, bytes: &mut Vec<u8>, one_in: u8) {
        if !self.when.is_multiple_of(one_in) {
            return;
        }
        if !bytes.is_empty() {
            let len = bytes.len();
            for (at, x) in &self.flips {
                bytes[usize::from(*at) % len] ^= x;
            }
        }
        if let Some(n) = self.truncate {
            bytes.truncate(usize::from(n));
        }
    }
}

/// The device's copy of a document in this input.
struct Local {
    id: DocId,
    doc: RequestDoc,
    /// The heads it pushed last.
    pushed: Vec<ChangeHash>,
}

/// Documents the server took, across inputs (the server lives for the
/// whole run).
static STORED: Mutex<Vec<DocId>> = Mutex::new(Vec::new());
const STORED_KEPT: usize = 64;

fn pick<T: Copy>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[usize::from(i) % v.len()])
}

/// The server's copy of `id`, loaded.
fn stored(w: &common::World, id: DocId) -> Option<AutoCommit> {
    let doc = w.storage.document(id).ok()??;
    AutoCommit::load(&doc.data).ok()
}

fn device_actor(w: &common::World) -> ActorId {
    ActorId::from(&w.device[..])
}

/// The device's copy for a push (made or found), its index in `locals`.
fn local_for(w: &common::World, locals: &mut Vec<Local>, target: &Target) -> Option<usize> {
    match target {
        Target::Local(i) => (!locals.is_empty()).then(|| usize::from(*i) % locals.len()),
        Target::Stored(i) => {
            let id = pick(&STORED.lock().expect("not poisoned"), *i)?;
            if let Some(at) = locals.iter().position(|l| l.id == id) {
                return Some(at);
            }
            let mut server = stored(w, id)?;
            let doc = RequestDoc::load(&server.save(), [], device_actor(w)).ok()?;
            let pushed = server.get_heads();
            locals.push(Local { id, doc, pushed });
            Some(locals.len() - 1)
        }
        Target::New(seed) => {
            let doc = seed.doc(device_actor(w))?;
            locals.push(Local {
                id: seed.id,
                doc,
                pushed: Vec::new(),
            });
            Some(locals.len() - 1)
        }
    }
}

fn build_push(w: &common::World, locals: &mut Vec<Local>, p: &Push) -> Option<DocPush> {
    let at = local_for(w, locals, &p.target)?;
    let local = &mut locals[at];
    match p.author {
        Author::Own => edits::apply_all(&mut local.doc, &p.edits),
        Author::Other(x) => {
            // Another device's actor: never the enrolled one.
            let mut actor = [x; 16];
            actor[0] = !w.device[0];
            let mut other = local.doc.fork(ActorId::from(&actor[..]));
            edits::apply_all(&mut other, &p.edits);
            let _ = local.doc.merge(&mut other);
        }
    }
    let since: Vec<ChangeHash> = match p.since {
        Since::Pushed => local.pushed.clone(),
        Since::ServerHeads => stored(w, local.id).map_or(Vec::new(), |mut d| d.get_heads()),
        Since::ServerChange(i) => stored(w, local.id)
            .and_then(|mut d| {
                let all: Vec<ChangeHash> = d.get_changes(&[]).iter().map(|c| c.hash()).collect();
                pick(&all, i)
            })
            .into_iter()
            .collect(),
        Since::Nothing => Vec::new(),
        Since::Any(h) => vec![ChangeHash(h)],
    };
    let base = match p.changes {
        Base::AfterSince if local.doc.has_all(&since) => since.clone(),
        Base::AfterSince | Base::AfterPushed => local.pushed.clone(),
        Base::Everything => Vec::new(),
    };
    let mut changes = local.doc.save_after(&base);
    p.damage.apply(&mut changes, 4);
    let doc_heads = local.doc.heads();
    let heads: Vec<HeadPrefix> = match p.heads {
        Heads::Document => doc_heads.iter().map(|h| HeadPrefix::from(*h)).collect(),
        Heads::Nothing => Vec::new(),
        Heads::First => doc_heads
            .first()
            .map(|h| HeadPrefix::from(*h))
            .into_iter()
            .collect(),
        Heads::Any(h) => vec![HeadPrefix(h)],
    };
    local.pushed = doc_heads;
    Some(DocPush {
        id: p.named.then_some(local.id),
        since: since.into_iter().map(Hash::from).collect(),
        changes,
        heads,
    })
}

fn build_repair(locals: &mut [Local], r: &Repair) -> Option<DocRepair> {
    match r {
        Repair::Local(i) if !locals.is_empty() => {
            let n = locals.len();
            let local = &mut locals[usize::from(*i) % n];
            let mut state = automerge::sync::State::new();
            let message = local.doc.sync_message(&mut state)?;
            Some(DocRepair {
                id: local.id,
                message,
            })
        }
        Repair::Local(_) => None,
        Repair::Any { target, message } => {
            let ids: Vec<DocId> = locals.iter().map(|l| l.id).collect();
            let id = pick(&ids, *target)
                .or_else(|| pick(&STORED.lock().expect("not poisoned"), *target))?;
            Some(DocRepair {
                id,
                message: message.clone(),
            })
        }
    }
}

fuzz_target!(|input: Input| {
    let w = common::world();
    let mut locals: Vec<Local> = Vec::new();
    let mut last = (0u64, 0u32);
    for x in input.exchanges.iter().take(3) {
        let push: Vec<DocPush> = x
            .pushes
            .iter()
            .take(4)
            .filter_map(|p| build_push(w, &mut locals, p))
            .collect();
        let repair: Vec<DocRepair> = x
            .repairs
            .iter()
            .take(2)
            .filter_map(|r| build_repair(&mut locals, r))
            .collect();
        let (cursor, cursor_tag) = match x.cursor {
            Cursor::Start => (0, 0),
            Cursor::Last => last,
            Cursor::Any(c, t) => (c, t),
        };
        let request = SyncRequest {
            cursor,
            cursor_tag,
            push,
            repair,
            max_response_bytes: x.max_response_bytes,
            catalog: 0,
        };
        let Ok(mut body) = protocol::encode(&request) else {
            continue;
        };
        x.body_damage.apply(&mut body, 8);
        let (status, answer) = w.call_for_body("POST", SYNC_PATH, &[], body);
        if status != 200 {
            continue;
        }
        if let Ok(response) = protocol::decode::<SyncResponse>(&answer) {
            last = (response.cursor, response.cursor_tag);
        }
        // What the server took, for later pushes on its copies.
        let mut known = STORED.lock().expect("not poisoned");
        for l in &locals {
            if !known.contains(&l.id) && w.storage.document(l.id).ok().flatten().is_some() {
                if known.len() == STORED_KEPT {
                    known.remove(0);
                }
                known.push(l.id);
            }
        }
    }
});
