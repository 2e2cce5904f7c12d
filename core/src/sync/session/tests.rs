//! The session driven by answers made here, on real stores in temporary
//! folders: no server, no transport. Where an answer needs a server's copy
//! of a document, a second store or a plain Automerge document plays it.

use automerge::sync::SyncDoc;
use automerge::{AutoCommit, ChangeHash};

use super::*;
use crate::crypto::DataKey;
use crate::lifecycle::Role;
use crate::model::Kind;
use crate::protocol::{DocPull, DocRef, Hash, HeadPrefix, Refusal, RefusalCode};
use crate::store::{DB_FILE, Enrollment, Identity, ListFilter, Secret};

/// A device's store, enrolled (the session needs no more of enrollment).
fn device(dir: &std::path::Path) -> Store {
    let who = Identity {
        user: "resident-1".into(),
        role: Role::Resident,
    };
    let mut store = Store::init(dir, &Secret::Key(DataKey::from_bytes([3; 32])), who).unwrap();
    store
        .set_enrollment(&Enrollment {
            server: "https://sambung.example.go.id".into(),
            account: "resident-1".into(),
            role: Role::Resident,
            regions: Vec::new(),
            audience: "0123456789abcdef0123456789abcdef".into(),
            ca_roots: Vec::new(),
            pins: Vec::new(),
        })
        .unwrap();
    store
}

fn draft(store: &Store) -> RequestId {
    store
        .create(crate::templates::example(Kind::Complaint))
        .unwrap()
}

/// An answer that says nothing, at `cursor`.
/// A draft the server took as pushed, the device's cursor at `cursor`.
fn synced_draft(store: &Store, cursor: u64) -> RequestId {
    let id = draft(store);
    let mut session = SyncSession::new(store, 64 * 1024).unwrap();
    session.next_request(store).unwrap();
    let acked = SyncResponse {
        acked_all: true,
        ..answer(cursor)
    };
    assert_eq!(session.apply(store, &wire(&acked)).unwrap(), Step::Done);
    id
}

fn answer(cursor: u64) -> SyncResponse {
    SyncResponse::at(cursor, 7)
}

fn wire(response: &SyncResponse) -> Vec<u8> {
    protocol::encode(response).unwrap()
}

fn read(body: &[u8]) -> SyncRequest {
    protocol::decode(body).unwrap()
}

fn doc_id(id: &RequestId) -> DocId {
    id.to_bytes().unwrap()
}

/// The document a push is about: as named, or read from the document as
/// the server reads a new one.
fn pushed_id(push: &DocPush) -> DocId {
    if let Some(id) = push.id {
        return id;
    }
    let mut doc = AutoCommit::new();
    doc.load_incremental(&push.changes).unwrap();
    let request: crate::model::Request = autosurgeon::hydrate(&doc).unwrap();
    doc_id(&request.id)
}

/// Half of what one request carrying everything pending would take: a
/// budget that splits the pushes.
fn half_budget(store: &Store) -> usize {
    let mut whole = SyncSession::new(store, 1 << 20).unwrap();
    whole.next_request(store).unwrap().len() / 2
}

fn pending_ids(store: &Store) -> Vec<RequestId> {
    store.pending().unwrap().into_iter().map(|p| p.id).collect()
}

fn heads_of(store: &Store, id: &RequestId) -> Vec<ChangeHash> {
    let mut doc = AutoCommit::load(&store.document_bytes(id).unwrap()).unwrap();
    doc.get_heads()
}

/// What the server would send of `id` as held by `store`: the whole
/// document as changes, with its heads.
fn pull_of(store: &Store, id: &RequestId) -> DocPull {
    let mut doc = AutoCommit::load(&store.document_bytes(id).unwrap()).unwrap();
    DocPull {
        id: doc_id(id),
        changes: doc.save_after(&[]),
        heads: doc.get_heads().into_iter().map(Hash::from).collect(),
        replace: false,
    }
}

#[test]
fn a_device_not_enrolled_has_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let who = Identity {
        user: "resident-1".into(),
        role: Role::Resident,
    };
    let store = Store::init(dir.path(), &Secret::Key(DataKey::from_bytes([3; 32])), who).unwrap();
    assert!(matches!(
        SyncSession::new(&store, 64 * 1024),
        Err(Error::NotEnrolled)
    ));
}

#[test]
fn every_push_taken_as_pushed_ends_the_sync_and_moves_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    let (a, b) = (draft(&store), draft(&store));
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    let body = session.next_request(&store).unwrap();
    let sent = read(&body);
    assert_eq!((sent.cursor, sent.push.len()), (0, 2));
    // Never acknowledged: new to the server, sent without their ids.
    assert!(
        sent.push
            .iter()
            .all(|p| p.id.is_none() && p.since.is_empty())
    );
    let step = session
        .apply(
            &store,
            &wire(&SyncResponse {
                acked_all: true,
                ..answer(5)
            }),
        )
        .unwrap();
    assert_eq!(step, Step::Done);
    assert!(store.pending().unwrap().is_empty());
    assert!(store.is_acked(&a, &heads_of(&store, &a)).unwrap());
    assert!(store.is_acked(&b, &heads_of(&store, &b)).unwrap());
    assert_eq!(store.cursor().unwrap(), (5, 7));
    let s = session.into_summary();
    assert_eq!((s.pushed, s.round_trips, s.pulled), (2, 1, 0));
    assert_eq!(s.bytes_up, body.len() as u64);
    assert!(s.bytes_down > 0);
}

#[test]
fn a_refusal_marks_that_request_and_the_others_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    let ids = [draft(&store), draft(&store), draft(&store)];
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    session.next_request(&store).unwrap();
    let refused = ids[1].clone();
    let response = SyncResponse {
        acks: [&ids[0], &ids[2]]
            .map(|id| DocAck {
                id: doc_id(id),
                heads: Vec::new(),
            })
            .to_vec(),
        refused: vec![Refusal {
            id: doc_id(&refused),
            code: RefusalCode::Forbidden,
            reason: "not yours to change".into(),
            errors: Vec::new(),
        }],
        ..answer(1)
    };
    // The refused request is not tried again in this sync: done.
    assert_eq!(session.apply(&store, &wire(&response)).unwrap(), Step::Done);
    assert_eq!(pending_ids(&store), vec![refused.clone()]);
    let listed = store.list(&ListFilter::default()).unwrap();
    let refusal = |id: &RequestId| {
        listed
            .iter()
            .find(|s| &s.id == id)
            .and_then(|s| s.refusal.clone())
    };
    let reason = "Forbidden: not yours to change".to_owned();
    assert_eq!(refusal(&refused), Some(reason.clone()));
    assert_eq!((refusal(&ids[0]), refusal(&ids[2])), (None, None));
    // Only the server's refusal may be discarded; this one is.
    assert!(store.discard_refused(&ids[0]).is_err());
    let s = session.into_summary();
    assert_eq!(s.pushed, 2);
    assert_eq!(s.refused, vec![(refused.to_string(), reason)]);
    // The next sync asks again (the server's rules may have changed).
    let mut next = SyncSession::new(&store, 64 * 1024).unwrap();
    let again = read(&next.next_request(&store).unwrap());
    assert_eq!(again.push.len(), 1);
    assert_eq!(pushed_id(&again.push[0]), doc_id(&refused));
}

#[test]
fn more_asks_again_from_the_new_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    // Another device's request, as the server would send it.
    let other_dir = tempfile::tempdir().unwrap();
    let other = device(other_dir.path());
    let theirs = draft(&other);
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    assert_eq!(read(&session.next_request(&store).unwrap()).cursor, 0);
    let first = SyncResponse {
        pull: vec![pull_of(&other, &theirs)],
        more: true,
        ..answer(3)
    };
    assert_eq!(session.apply(&store, &wire(&first)).unwrap(), Step::Again);
    assert_eq!(store.cursor().unwrap(), (3, 7));
    assert_eq!(store.get(&theirs).unwrap(), other.get(&theirs).unwrap());
    // Pulled changes are the server's: nothing to push back.
    assert!(store.pending().unwrap().is_empty());
    let second = read(&session.next_request(&store).unwrap());
    assert_eq!((second.cursor, second.cursor_tag), (3, 7));
    assert!(second.push.is_empty());
    assert_eq!(
        session.apply(&store, &wire(&answer(3))).unwrap(),
        Step::Done
    );
    let s = session.into_summary();
    assert_eq!((s.pulled, s.round_trips), (1, 2));
    assert_eq!(s.changed, vec![theirs]);
}

#[test]
fn pushes_over_the_budget_go_in_the_next_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    let ids: Vec<RequestId> = (0..6).map(|_| draft(&store)).collect();
    let budget = half_budget(&store);
    let mut session = SyncSession::new(&store, budget).unwrap();
    let mut pushed = Vec::new();
    let mut exchanges = 0;
    loop {
        let body = session.next_request(&store).unwrap();
        let sent = read(&body);
        assert!(
            body.len() <= budget || sent.push.len() == 1,
            "{}",
            body.len()
        );
        assert!(!sent.push.is_empty());
        exchanges += 1;
        pushed.extend(sent.push.iter().map(pushed_id));
        let response = SyncResponse {
            acked_all: true,
            ..answer(0)
        };
        match session.apply(&store, &wire(&response)).unwrap() {
            Step::Again => continue,
            Step::Done => break,
            Step::Wipe => panic!("not revoked"),
        }
    }
    assert!(exchanges > 1, "the budget split the pushes");
    pushed.sort();
    let mut expected: Vec<DocId> = ids.iter().map(doc_id).collect();
    expected.sort();
    assert_eq!(pushed, expected, "each draft pushed once");
    assert!(store.pending().unwrap().is_empty());
}

#[test]
fn a_new_request_the_server_could_not_name_goes_again_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    let id = draft(&store);
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    assert_eq!(
        read(&session.next_request(&store).unwrap()).push[0].id,
        None
    );
    // No answer about it at all.
    assert_eq!(
        session.apply(&store, &wire(&answer(0))).unwrap(),
        Step::Again
    );
    let again = read(&session.next_request(&store).unwrap());
    assert_eq!(again.push[0].id, Some(doc_id(&id)));
    // Still no answer: nothing more to try in this sync.
    assert_eq!(
        session.apply(&store, &wire(&answer(0))).unwrap(),
        Step::Done
    );
    assert_eq!(pending_ids(&store), vec![id]);
}

#[test]
fn a_push_taken_only_in_part_waits_without_being_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    let id = draft(&store);
    let first = heads_of(&store, &id);
    let mut content = crate::templates::example(Kind::Complaint);
    content.contact_phone = None;
    store.update_content(&id, content).unwrap();
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    session.next_request(&store).unwrap();
    // The server holds only the first change.
    let response = SyncResponse {
        acks: vec![DocAck {
            id: doc_id(&id),
            heads: first.iter().copied().map(Hash::from).collect(),
        }],
        ..answer(0)
    };
    assert_eq!(session.apply(&store, &wire(&response)).unwrap(), Step::Done);
    assert!(store.is_acked(&id, &first).unwrap());
    assert_eq!(pending_ids(&store), vec![id.clone()]);
    let listed = store.list(&ListFilter::default()).unwrap();
    assert!(
        listed[0]
            .refusal
            .as_deref()
            .unwrap()
            .contains("another device")
    );
    // A wait, not a refusal: nothing of it may be discarded.
    assert!(store.discard_refused(&id).is_err());
}

/// Plays the server's side of a repair as `server::exchange::repair` does:
/// a fresh sync state per message, never taking the device's changes.
fn server_reply(server: &mut AutoCommit, message: &[u8]) -> Vec<u8> {
    let mut message = automerge::sync::Message::decode(message).unwrap();
    message.changes = automerge::sync::ChunkList::empty();
    let mut state = automerge::sync::State::new();
    server
        .sync()
        .receive_sync_message(&mut state, message)
        .unwrap();
    server
        .sync()
        .generate_sync_message(&mut state)
        .map(|m| m.encode())
        .unwrap_or_default()
}

/// Answers the session's repair messages from `server` until a request
/// pushes instead; returns that request.
fn repair_until_pushed(
    session: &mut SyncSession,
    store: &Store,
    server: &mut AutoCommit,
    mut sent: SyncRequest,
) -> SyncRequest {
    for _ in 0..MAX_REPAIR_ROUNDS {
        if !sent.push.is_empty() {
            return sent;
        }
        assert!(!sent.repair.is_empty(), "neither a push nor a repair");
        let replies = sent
            .repair
            .iter()
            .map(|r| DocRepair {
                id: r.id,
                message: server_reply(server, &r.message),
            })
            .collect();
        let step = session
            .apply(
                store,
                &wire(&SyncResponse {
                    repair: replies,
                    ..answer(0)
                }),
            )
            .unwrap();
        assert_eq!(step, Step::Again);
        sent = read(&session.next_request(store).unwrap());
    }
    panic!("the repair did not end");
}

#[test]
fn unknown_heads_are_repaired_from_the_servers_copy_then_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    let id = synced_draft(&store, 0);
    // The server's copy moved on with another device's change; this one
    // edits too.
    let other_dir = tempfile::tempdir().unwrap();
    let other = device(other_dir.path());
    other.apply_pull(&pull_of(&store, &id)).unwrap();
    let mut theirs = crate::templates::example(Kind::Complaint);
    theirs.contact_phone = None;
    other.update_content(&id, theirs).unwrap();
    let mut server = AutoCommit::load(&other.document_bytes(&id).unwrap()).unwrap();
    let mut mine = store.get(&id).unwrap().content;
    let crate::model::Details::Complaint(c) = &mut mine.details else {
        unreachable!("a complaint")
    };
    c.text = "Lubangnya makin besar setelah hujan.".into();
    store.update_content(&id, mine.clone()).unwrap();

    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    let push = read(&session.next_request(&store).unwrap());
    assert_eq!(push.push[0].id, Some(doc_id(&id)));
    let unknown = SyncResponse {
        unknown_heads: vec![DocRef(doc_id(&id))],
        ..answer(0)
    };
    // Nothing else moved in that exchange: the repair is for the next
    // sync (marked in the store, so it survives until then).
    assert_eq!(session.apply(&store, &wire(&unknown)).unwrap(), Step::Done);
    assert_eq!(store.repairs().unwrap(), vec![id.clone()]);
    assert_eq!(pending_ids(&store), vec![id.clone()]);
    // Repaired, not pushed, until both sides share a base.
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    let sent = read(&session.next_request(&store).unwrap());
    assert!(sent.push.is_empty());
    assert_eq!(sent.repair.len(), 1);
    let pushed = repair_until_pushed(&mut session, &store, &mut server, sent);
    assert!(store.repairs().unwrap().is_empty());
    // The server's change arrived; this device's own change stays, and
    // goes as an ordinary push on top of what the server holds.
    let merged = store.get(&id).unwrap();
    assert_eq!(merged.content.contact_phone, None);
    assert_eq!(merged.content.details, mine.details);
    let server_heads: Vec<HeadPrefix> = server.get_heads().into_iter().map(Into::into).collect();
    let since: Vec<HeadPrefix> = pushed.push[0]
        .since
        .iter()
        .map(|h| ChangeHash::from(*h).into())
        .collect();
    assert_eq!(since, server_heads);
    assert_eq!(pushed.push[0].id, Some(doc_id(&id)));
    assert!(session.summary().changed.contains(&id));
}

#[test]
fn a_reset_checks_every_request_and_resends_what_the_server_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    let id = synced_draft(&store, 9);
    assert!(store.pending().unwrap().is_empty());

    // Restored from a backup taken before the request arrived.
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    assert_eq!(read(&session.next_request(&store).unwrap()).cursor, 9);
    let reset = SyncResponse {
        reset: true,
        ..answer(2)
    };
    assert_eq!(session.apply(&store, &wire(&reset)).unwrap(), Step::Again);
    assert_eq!(store.repairs().unwrap(), vec![id.clone()]);
    assert_eq!(store.cursor().unwrap(), (2, 7));
    let sent = read(&session.next_request(&store).unwrap());
    let mut lost = AutoCommit::new();
    let pushed = repair_until_pushed(&mut session, &store, &mut lost, sent);
    // The server holds nothing of it: the whole document goes again.
    assert_eq!(pushed.push.len(), 1);
    assert!(pushed.push[0].since.is_empty());
    let mut whole = AutoCommit::new();
    whole.load_incremental(&pushed.push[0].changes).unwrap();
    assert_eq!(whole.get_heads(), heads_of(&store, &id));
}

#[test]
fn a_pull_that_cannot_be_applied_is_repaired_and_the_others_applied() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    let other_dir = tempfile::tempdir().unwrap();
    let other = device(other_dir.path());
    let good = draft(&other);
    let bad = RequestId::from_bytes([9; 16]);
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    session.next_request(&store).unwrap();
    let response = SyncResponse {
        pull: vec![
            DocPull {
                id: doc_id(&bad),
                changes: b"not automerge".to_vec(),
                heads: vec![Hash([1; 32])],
                replace: false,
            },
            pull_of(&other, &good),
        ],
        ..answer(4)
    };
    // The damaged one waits for its repair.
    assert_eq!(
        session.apply(&store, &wire(&response)).unwrap(),
        Step::Again
    );
    assert_eq!(store.repairs().unwrap(), vec![bad]);
    assert!(store.get(&good).is_ok());
    assert_eq!(session.summary().pulled, 1);
}

#[test]
fn revoked_with_a_wipe_pushes_what_is_left_then_wipes() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    for _ in 0..6 {
        draft(&store);
    }
    let mut session = SyncSession::new(&store, half_budget(&store)).unwrap();
    let wipe = SyncResponse {
        acked_all: true,
        wipe: true,
        ..answer(8)
    };
    let mut exchanges = 0;
    let step = loop {
        let sent = read(&session.next_request(&store).unwrap());
        assert!(!sent.push.is_empty());
        exchanges += 1;
        match session.apply(&store, &wire(&wipe)).unwrap() {
            Step::Again => continue,
            other => break other,
        }
    };
    assert_eq!(step, Step::Wipe);
    assert!(exchanges > 1, "pushed across several exchanges first");
    assert!(store.pending().unwrap().is_empty());
    // A revoked device pulls nothing: its cursor never moved.
    assert_eq!(store.cursor().unwrap(), (0, 0));
    assert!(matches!(
        wipe_if_asked(&store, Err(Error::Revoked { wiped: true })),
        Err(Error::Revoked { wiped: true })
    ));
    assert!(!dir.path().join(DB_FILE).exists());
}

#[test]
fn revoked_with_nothing_going_through_wipes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    let id = draft(&store);
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    session.next_request(&store).unwrap();
    // Refused and revoked: what is left can never go.
    let response = SyncResponse {
        refused: vec![Refusal {
            id: doc_id(&id),
            code: RefusalCode::Forbidden,
            reason: "revoked".into(),
            errors: Vec::new(),
        }],
        wipe: true,
        ..answer(0)
    };
    assert_eq!(session.apply(&store, &wire(&response)).unwrap(), Step::Wipe);
    // Only a wipe the agency asked for deletes anything.
    let kept = wipe_if_asked(&store, Err(Error::Revoked { wiped: false }));
    assert!(matches!(kept, Err(Error::Revoked { wiped: false })));
    assert!(dir.path().join(DB_FILE).exists());
    wipe_if_asked(&store, Err(Error::Revoked { wiped: true })).unwrap_err();
    assert!(!dir.path().join(DB_FILE).exists());
}

#[test]
fn an_erasure_replaces_the_local_copy_and_its_attachment() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    let id = draft(&store);
    let photo = store
        .attach(
            &id,
            crate::model::AttachmentRole::Photo,
            "p.bin",
            "application/octet-stream",
            &[5u8; 3000][..],
        )
        .unwrap();
    let before = store.get(&id).unwrap();
    assert!(before.content.applicant.is_some());
    // The server's replacement: a new document, a new history.
    let erased = crate::model::erase::erased(&before, crate::Timestamp::now());
    let mut doc = crate::document::RequestDoc::new(&erased, automerge::ActorId::random()).unwrap();
    let pull = DocPull {
        id: doc_id(&id),
        changes: doc.automerge().save_nocompress(),
        heads: doc.heads().into_iter().map(Hash::from).collect(),
        replace: true,
    };
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    session.next_request(&store).unwrap();
    let response = SyncResponse {
        pull: vec![pull],
        ..answer(6)
    };
    // The local changes never reached the server; the erasure drops them.
    assert_eq!(session.apply(&store, &wire(&response)).unwrap(), Step::Done);
    let now = store.get(&id).unwrap();
    assert!(now.erased_at.is_some());
    assert_eq!(now.content.applicant, None);
    assert!(store.pending().unwrap().is_empty());
    assert!(matches!(
        store.attachment_info(&photo.sha256),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(session.summary().changed, vec![id]);
}

#[test]
fn a_lost_request_is_built_again_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    let id = draft(&store);
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    let first = read(&session.next_request(&store).unwrap());
    // No answer came: the same pushes go again.
    let again = read(&session.next_request(&store).unwrap());
    assert_eq!(first, again);
    assert_eq!(again.push.len(), 1);
    let response = SyncResponse {
        acked_all: true,
        ..answer(1)
    };
    assert_eq!(session.apply(&store, &wire(&response)).unwrap(), Step::Done);
    assert!(store.is_acked(&id, &heads_of(&store, &id)).unwrap());
}

#[test]
fn an_answer_that_is_not_an_envelope_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    draft(&store);
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    session.next_request(&store).unwrap();
    assert!(matches!(
        session.apply(&store, b"<html>proxy error</html>"),
        Err(Error::Network {
            retryable: false,
            ..
        })
    ));
    // Nothing was applied.
    assert_eq!(store.pending().unwrap().len(), 1);
    assert_eq!(store.cursor().unwrap(), (0, 0));
}

#[test]
fn a_request_gone_from_sight_is_dropped_unless_it_holds_unsynced_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = device(dir.path());
    let clean = synced_draft(&store, 3);
    let busy = synced_draft(&store, 4);
    store.add_note(&busy, "belum terkirim", false).unwrap();
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    session.next_request(&store).unwrap();
    // The server refuses the note and says both are gone; it also names
    // one this device never held.
    let told = SyncResponse {
        refused: vec![Refusal {
            id: doc_id(&busy),
            code: RefusalCode::Forbidden,
            reason: "this account may not write to this request".into(),
            errors: vec![],
        }],
        gone: vec![
            DocRef(doc_id(&clean)),
            DocRef(doc_id(&busy)),
            DocRef([9; 16]),
        ],
        ..answer(5)
    };
    assert_eq!(session.apply(&store, &wire(&told)).unwrap(), Step::Done);
    assert_eq!(session.summary().forgotten, 1);
    assert!(session.summary().changed.contains(&clean));
    assert!(matches!(store.get(&clean), Err(Error::NotFound { .. })));
    let kept = store.get(&busy).unwrap();
    assert_eq!(kept.notes.len(), 1, "the unsynced note is never deleted");
    assert_eq!(pending_ids(&store), vec![busy.clone()]);
    // Once the refused note is discarded, nothing holds it: told again,
    // the copy goes.
    store.discard_refused(&busy).unwrap();
    let mut session = SyncSession::new(&store, 64 * 1024).unwrap();
    session.next_request(&store).unwrap();
    let again = SyncResponse {
        gone: vec![DocRef(doc_id(&busy))],
        ..answer(6)
    };
    session.apply(&store, &wire(&again)).unwrap();
    assert_eq!(session.summary().forgotten, 1);
    assert!(store.get(&busy).is_err());
}
