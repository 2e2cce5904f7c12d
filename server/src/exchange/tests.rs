//! The exchange without HTTP: pushes and pulls driven through
//! [`exchange`] on a real SQLite store in a temporary folder, with devices
//! enrolled as `sambung admin enroll` and `/v1/enroll` would.

use automerge::ActorId;
use sambung_core::document::RequestDoc;
use sambung_core::edits::{self, Author};
use sambung_core::identifiers::RegionCode;
use sambung_core::model::Kind;
use sambung_core::protocol::HeadPrefix;
use sambung_core::{Timestamp, templates};

use super::*;
use crate::storage::SqliteStorage;

const WARGA: &str = "warga-1";
const REGION: &str = "32.73.01.1001";

/// A store in a temporary folder and the server's NIK key.
struct Server {
    storage: SqliteStorage,
    nik_key: hmac::Key,
    _dir: tempfile::TempDir,
}

impl Server {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Server {
            storage: SqliteStorage::open(dir.path()).unwrap(),
            nik_key: hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]),
            _dir: dir,
        }
    }

    /// Enrolls device `device` of `account` (creating the account on its
    /// first device) and returns it as the sender of its exchanges.
    fn enrolled(&self, account: Account, device: u8) -> Caller {
        let now = Timestamp::now().as_millis() / 1000;
        let code = crate::enroll::create(&self.storage, &account, now, 3600).unwrap();
        let id = [device; 16];
        let account = crate::enroll::redeem(
            &self.storage,
            &crate::enroll::code_hash(&code),
            id,
            [device; 32],
            now,
        )
        .unwrap();
        Caller {
            device: id,
            account,
            exchange: [device; 16],
            push_only: false,
            catalog: std::sync::Arc::new(crate::catalog::Loaded::builtin().unwrap()),
        }
    }

    /// One exchange of `caller`.
    fn exchange(&self, caller: &Caller, request: &SyncRequest) -> Exchanged {
        exchange(&self.storage, &self.nik_key, caller, request).unwrap()
    }

    /// A pull from `cursor` (with the tag the server gave for it).
    fn pull(&self, caller: &Caller, cursor: (u64, u32)) -> SyncResponse {
        self.exchange(caller, &sync(cursor, Vec::new(), 1 << 20))
            .response
    }
}

fn account(id: &str, role: Role, regions: &[&str]) -> Account {
    Account {
        id: id.into(),
        role,
        regions: regions.iter().map(|r| r.to_string()).collect(),
        nik_hash: None,
    }
}

fn sync(cursor: (u64, u32), push: Vec<DocPush>, max_response_bytes: u32) -> SyncRequest {
    SyncRequest {
        cursor: cursor.0,
        cursor_tag: cursor.1,
        push,
        repair: Vec::new(),
        max_response_bytes,
        catalog: 0,
    }
}

/// Where a response leaves its device.
fn cursor_of(r: &SyncResponse) -> (u64, u32) {
    (r.cursor, r.cursor_tag)
}

fn heads_of(doc: &mut RequestDoc) -> Vec<HeadPrefix> {
    doc.heads().into_iter().map(HeadPrefix::from).collect()
}

/// A complaint `by` drafted in `region` on its device, as the device holds
/// it, and its id.
fn drafted(by: &Caller, region: &str) -> (RequestDoc, DocId) {
    let mut content = templates::example(Kind::Complaint);
    content.region = RegionCode::from(region);
    let request = Request::draft(content, &by.account.id, by.account.role, Timestamp::now());
    let id = request.id.to_bytes().unwrap();
    (
        RequestDoc::new(&request, ActorId::from(by.device)).unwrap(),
        id,
    )
}

/// A complaint `by` filed in `region`: drafted and submitted on its device.
fn filed(by: &Caller, region: &str) -> (RequestDoc, DocId) {
    let (mut doc, id) = drafted(by, region);
    let author = Author {
        user: &by.account.id,
        role: by.account.role,
    };
    doc.update(|r| edits::transition(r, author, Status::Submitted, None))
        .unwrap();
    (doc, id)
}

/// The push of a document new to the server (named by its own `id`), its
/// changes as a device sends them (change chunks, never a whole document).
fn push_new(doc: &mut RequestDoc) -> DocPush {
    DocPush {
        id: None,
        since: Vec::new(),
        changes: doc.save_after(&[]),
        heads: heads_of(doc),
    }
}

/// The agency's device `agency` assigns the stored request `id` to
/// `officer` and pushes the change.
fn assign(server: &Server, agency: &Caller, id: DocId, officer: &str) {
    let stored = server.storage.document(id).unwrap().unwrap();
    let mut doc = RequestDoc::load(&stored.data, [], ActorId::from(agency.device)).unwrap();
    let before = doc.heads();
    let author = Author {
        user: &agency.account.id,
        role: agency.account.role,
    };
    doc.update(|r| edits::assign(r, author, Some(officer)))
        .unwrap();
    let push = DocPush {
        id: Some(id),
        since: before.iter().map(|h| Hash::from(*h)).collect(),
        changes: doc.save_after(&before),
        heads: heads_of(&mut doc),
    };
    let done = server.exchange(agency, &sync((0, 0), vec![push], 1 << 20));
    assert!(
        done.response.refused.is_empty(),
        "{:?}",
        done.response.refused
    );
    assert_eq!(done.written, [id]);
}

fn pulled_ids(r: &SyncResponse) -> Vec<DocId> {
    r.pull.iter().map(|p| p.id).collect()
}

#[test]
fn a_push_is_acked_stored_and_logged_once() {
    let server = Server::new();
    let warga = server.enrolled(account(WARGA, Role::Resident, &[]), 1);
    let (mut doc, id) = filed(&warga, REGION);
    let push = push_new(&mut doc);

    let first = server.exchange(&warga, &sync((0, 0), vec![push.clone()], 1 << 20));
    // Taken exactly as pushed: said in one bit, the document named for the
    // audit trail only.
    assert!(first.response.acked_all);
    assert!(first.response.acks.is_empty() && first.response.refused.is_empty());
    assert_eq!(first.written, [id]);
    let stored = server.storage.document(id).unwrap().expect("stored");
    assert_eq!(stored.scope.owner, WARGA);
    assert_eq!(stored.scope.region, REGION);
    assert_eq!(stored.meta.status, "submitted");
    assert_eq!(server.storage.log_head().unwrap(), 1);
    // Its own change is not sent back to the device that pushed it, but
    // its cursor moves past it.
    assert!(first.response.pull.is_empty());
    assert_eq!(first.response.cursor, 1);

    // The same push again (its answer was lost): acked with the heads the
    // server holds (the device named none), nothing new logged.
    let again = server.exchange(
        &warga,
        &sync(cursor_of(&first.response), vec![push], 1 << 20),
    );
    let heads: Vec<Hash> = doc.heads().into_iter().map(Hash::from).collect();
    assert_eq!(again.response.acks, [DocAck { id, heads }]);
    assert!(!again.response.acked_all && again.response.refused.is_empty());
    assert_eq!(server.storage.log_head().unwrap(), 1);
}

#[test]
fn an_exchange_records_what_it_wrote_and_what_it_gave_to_read() {
    let server = Server::new();
    let warga = server.enrolled(account(WARGA, Role::Resident, &[]), 1);
    let officer = server.enrolled(account("petugas-1", Role::Officer, &["32.73"]), 2);
    let (mut doc, id) = filed(&warga, REGION);
    server.exchange(&warga, &sync((0, 0), vec![push_new(&mut doc)], 1 << 20));
    let pulled = server.pull(&officer, (0, 0));
    assert_eq!(pulled_ids(&pulled), [id]);

    let entries = server
        .storage
        .audit_entries(&crate::audit::AuditFilter::default(), 0, 100)
        .unwrap();
    type Seen<'a> = (&'a str, &'a str, Option<DocId>, Option<[u8; 16]>);
    let seen: Vec<Seen<'_>> = entries
        .iter()
        .map(|e| {
            let r = &e.record;
            (r.action.as_str(), r.account.as_str(), r.request, r.device)
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("write", WARGA, Some(id), Some(warga.device)),
            ("read", "petugas-1", Some(id), Some(officer.device)),
        ]
    );
    assert!(entries.iter().all(|e| e.record.endpoint == "POST /v1/sync"));
    // Chained: the trail verifies.
    let check = crate::audit::verify(|after| {
        server
            .storage
            .audit_entries(&crate::audit::AuditFilter::default(), after, 100)
    })
    .unwrap();
    assert_eq!(check, crate::audit::ChainCheck::Intact { entries: 2 });
}

#[test]
fn one_refused_push_does_not_block_the_others() {
    let server = Server::new();
    let warga = server.enrolled(account(WARGA, Role::Resident, &[]), 1);
    let (mut own, own_id) = filed(&warga, REGION);
    // A request that names another resident as its creator: refused (a
    // new request is created by the account that sends it).
    let other = Caller {
        account: account("warga-2", Role::Resident, &[]),
        ..warga.clone()
    };
    let (mut foreign, foreign_id) = filed(&other, REGION);

    let done = server.exchange(
        &warga,
        &sync(
            (0, 0),
            vec![push_new(&mut foreign), push_new(&mut own)],
            1 << 20,
        ),
    );
    let r = &done.response;
    assert!(!r.acked_all);
    assert_eq!(r.acks.iter().map(|a| a.id).collect::<Vec<_>>(), [own_id]);
    assert_eq!(r.refused.len(), 1);
    assert_eq!(r.refused[0].id, foreign_id);
    assert_eq!(r.refused[0].code, RefusalCode::Forbidden);
    assert!(
        r.refused[0]
            .reason
            .contains("created by the account that sends it")
    );
    assert_eq!(done.written, [own_id]);
    assert!(server.storage.document(foreign_id).unwrap().is_none());
}

#[test]
fn a_pull_carries_what_the_account_may_see_and_nothing_else() {
    let server = Server::new();
    let warga = server.enrolled(account(WARGA, Role::Resident, &[]), 1);
    let (mut doc, id) = filed(&warga, REGION);
    // And a draft: the resident's own until submitted.
    let (mut draft, draft_id) = drafted(&warga, REGION);
    let pushed = server.exchange(
        &warga,
        &sync(
            (0, 0),
            vec![push_new(&mut doc), push_new(&mut draft)],
            1 << 20,
        ),
    );
    assert_eq!(pushed.written, [id, draft_id]);

    // An officer of the region receives the whole request, at its heads.
    let here = server.enrolled(account("petugas-1", Role::Officer, &["32.73"]), 2);
    let r = server.pull(&here, (0, 0));
    assert_eq!(pulled_ids(&r), [id]);
    let heads: Vec<Hash> = doc.heads().into_iter().map(Hash::from).collect();
    assert_eq!(r.pull[0].heads, heads);
    let mut received = RequestDoc::load(&r.pull[0].changes, [], ActorId::random()).unwrap();
    assert_eq!(received.heads(), doc.heads());
    assert!(r.gone.is_empty() && !r.more && !r.reset);
    // The agency reads the whole log, drafts too, but is sent only the
    // submitted request.
    let dinas = server.enrolled(account("dinas", Role::Agency, &[]), 7);
    let r = server.pull(&dinas, (0, 0));
    assert_eq!(pulled_ids(&r), [id]);
    assert!(r.gone.is_empty());
    // The resident's second phone receives both.
    let phone = server.enrolled(account(WARGA, Role::Resident, &[]), 3);
    assert_eq!(pulled_ids(&server.pull(&phone, (0, 0))), [id, draft_id]);

    // An officer of the neighbouring region, another resident, and an
    // agency account of another region receive nothing, not even that
    // something went.
    for (who, device) in [
        (account("petugas-2", Role::Officer, &["32.74"]), 4),
        (account("warga-2", Role::Resident, &[]), 5),
        (account("dinas-bogor", Role::Agency, &["32.01"]), 6),
    ] {
        let caller = server.enrolled(who, device);
        let r = server.pull(&caller, (0, 0));
        assert!(r.pull.is_empty(), "{}", caller.account.id);
        assert!(r.gone.is_empty(), "{}", caller.account.id);
    }
}

#[test]
fn a_pull_stops_at_the_byte_budget_and_the_next_goes_on_from_there() {
    let server = Server::new();
    let warga = server.enrolled(account(WARGA, Role::Resident, &[]), 1);
    let mut filed_ids = Vec::new();
    for _ in 0..12 {
        let (mut doc, id) = filed(&warga, REGION);
        server.exchange(&warga, &sync((0, 0), vec![push_new(&mut doc)], 1 << 20));
        filed_ids.push(id);
    }
    let sizes: Vec<usize> = server
        .storage
        .log_since(0, 100)
        .unwrap()
        .iter()
        .map(|e| e.data.len())
        .collect();
    let budget = 4 * 1024;
    assert!(
        sizes.iter().sum::<usize>() > budget,
        "the log must not fit one answer: {sizes:?}"
    );

    let officer = server.enrolled(account("petugas-1", Role::Officer, &["32.73"]), 2);
    let mut cursor = (0, 0);
    let mut received = Vec::new();
    let mut answers = 0;
    loop {
        let r = server
            .exchange(&officer, &sync(cursor, Vec::new(), 1024))
            .response;
        answers += 1;
        let used: usize = r.pull.iter().map(|p| p.changes.len()).sum();
        assert!(!r.pull.is_empty());
        if r.more {
            // Full: the next entry would have gone over the budget.
            let next = sizes[received.len() + r.pull.len()];
            assert!(used <= budget, "{used}");
            assert!(used + next > budget, "{used} + {next}");
        }
        received.extend(pulled_ids(&r));
        cursor = cursor_of(&r);
        if !r.more {
            break;
        }
    }
    assert!(answers > 1);
    // Every request once, in the order filed.
    assert_eq!(received, filed_ids);
}

#[test]
fn a_cursor_this_log_did_not_give_pulls_from_the_start() {
    let server = Server::new();
    let warga = server.enrolled(account(WARGA, Role::Resident, &[]), 1);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (mut doc, id) = filed(&warga, REGION);
        server.exchange(&warga, &sync((0, 0), vec![push_new(&mut doc)], 1 << 20));
        ids.push(id);
    }
    let officer = server.enrolled(account("petugas-1", Role::Officer, &["32.73"]), 2);
    let first = server.pull(&officer, (0, 0));
    assert_eq!(pulled_ids(&first), ids);
    let (cursor, tag) = cursor_of(&first);

    // Its own cursor: nothing new, no reset.
    let same = server.pull(&officer, (cursor, tag));
    assert!(same.pull.is_empty() && !same.reset);
    assert_eq!(cursor_of(&same), (cursor, tag));

    // The same position with another tag (a server restored from an older
    // backup wrote other entries there), or a position past the log: the
    // device is told, and receives everything again.
    for stranger in [(cursor, tag ^ 1), (cursor + 10, tag)] {
        let r = server.pull(&officer, stranger);
        assert!(r.reset, "{stranger:?}");
        assert_eq!(pulled_ids(&r), ids, "{stranger:?}");
        assert_eq!(cursor_of(&r), (cursor, tag));
    }
}

#[test]
fn a_reassigned_request_is_gone_for_the_officer_it_was_taken_from() {
    let server = Server::new();
    let warga = server.enrolled(account(WARGA, Role::Resident, &[]), 1);
    let dinas = server.enrolled(account("dinas", Role::Agency, &[]), 2);
    // Both officers work elsewhere: they see the request only by its
    // assignment.
    let first = server.enrolled(account("petugas-1", Role::Officer, &["32.74"]), 3);
    let second = server.enrolled(account("petugas-2", Role::Officer, &["32.74"]), 4);
    let (mut doc, id) = filed(&warga, REGION);
    server.exchange(&warga, &sync((0, 0), vec![push_new(&mut doc)], 1 << 20));
    assert!(server.pull(&first, (0, 0)).pull.is_empty());

    assign(&server, &dinas, id, "petugas-1");
    let assigned = server.pull(&first, (0, 0));
    assert_eq!(pulled_ids(&assigned), [id]);
    assert!(assigned.gone.is_empty());

    assign(&server, &dinas, id, "petugas-2");
    let after = server.pull(&first, cursor_of(&assigned));
    assert!(after.pull.is_empty());
    assert_eq!(after.gone, [DocRef(id)]);
    // The new assignee receives the whole request.
    let taken = server.pull(&second, (0, 0));
    assert_eq!(pulled_ids(&taken), [id]);
    assert!(taken.gone.is_empty());
    // Gone is said once: the officer's next pull from its new cursor is
    // empty.
    let quiet = server.pull(&first, cursor_of(&after));
    assert!(quiet.pull.is_empty() && quiet.gone.is_empty());
}

#[test]
fn a_device_revoked_with_a_wipe_pushes_but_receives_nothing() {
    let server = Server::new();
    let warga = server.enrolled(account(WARGA, Role::Resident, &[]), 1);
    let (mut doc, _) = filed(&warga, REGION);
    server.exchange(&warga, &sync((0, 0), vec![push_new(&mut doc)], 1 << 20));
    let mut phone = server.enrolled(account(WARGA, Role::Resident, &[]), 2);
    phone.push_only = true;
    let (mut last, last_id) = filed(&phone, REGION);

    let r = server.exchange(&phone, &sync((0, 0), vec![push_new(&mut last)], 1 << 20));
    assert!(r.response.wipe);
    assert!(r.response.acked_all);
    assert_eq!(r.written, [last_id]);
    // The first request is the account's, yet not sent to this phone.
    assert!(r.response.pull.is_empty());
    assert_eq!(r.response.cursor, 0);
}

#[test]
fn a_back_office_edit_and_its_audit_record_commit_together_or_not_at_all() {
    use crate::agency::Staff;
    let server = Server::new();
    let warga = server.enrolled(account(WARGA, Role::Resident, &[]), 1);
    let dinas = server.enrolled(account("dinas", Role::Agency, &[]), 2);
    let (mut doc, id) = filed(&warga, REGION);
    server.exchange(&warga, &sync((0, 0), vec![push_new(&mut doc)], 1 << 20));
    let staff = Staff {
        account: dinas.account.clone(),
        device: dinas.device,
        call: [9; 16],
    };
    let trail = || {
        server
            .storage
            .audit_entries(&crate::audit::AuditFilter::default(), 0, 100)
            .unwrap()
    };
    let before = trail().len();
    let actor = [0xAA; 16];
    let to = |status: Status| {
        move |r: &mut Request, by: Author<'_>| edits::transition(r, by, status, None).map(|_| ())
    };

    // Taken: the request moves on, and its record is in the trail.
    let (request, etag) = staff
        .act(
            &server.storage,
            &server.nik_key,
            actor,
            id,
            None,
            "status",
            "POST /v1/agency/requests/{id}/status",
            &to(Status::Received),
        )
        .unwrap();
    assert_eq!(request.status(), Status::Received);
    let stored = server.storage.document(id).unwrap().unwrap();
    assert_eq!(stored.meta.status, "received");
    let entries = trail();
    assert_eq!(entries.len(), before + 1);
    let last = &entries.last().unwrap().record;
    assert_eq!(
        (last.action.as_str(), last.request, last.device),
        ("status", Some(id), Some(dinas.device))
    );

    // Refused by the rules table (received cannot go back to draft), and
    // stale against an old entity tag: nothing written, nothing recorded.
    let refused = staff.act(
        &server.storage,
        &server.nik_key,
        actor,
        id,
        None,
        "status",
        "POST /v1/agency/requests/{id}/status",
        &to(Status::Draft),
    );
    assert!(
        matches!(refused, Err(ServerError::ForbiddenTransition(_))),
        "{refused:?}"
    );
    let stale = staff.act(
        &server.storage,
        &server.nik_key,
        actor,
        id,
        Some("\"0000\""),
        "status",
        "POST /v1/agency/requests/{id}/status",
        &to(Status::InReview),
    );
    assert!(matches!(stale, Err(ServerError::Stale)), "{stale:?}");
    assert_eq!(trail().len(), before + 1);
    assert_eq!(
        server.storage.document(id).unwrap().unwrap().meta.status,
        "received"
    );

    // With the entity tag it was given, the next edit goes through.
    staff
        .act(
            &server.storage,
            &server.nik_key,
            actor,
            id,
            Some(&etag),
            "status",
            "POST /v1/agency/requests/{id}/status",
            &to(Status::InReview),
        )
        .unwrap();
    assert_eq!(trail().len(), before + 2);
}

#[test]
fn a_document_written_between_its_early_merge_and_its_transaction_is_merged_again() {
    use crate::agency::Staff;
    use crate::documents::{DocWrite, update_documents};
    let server = Server::new();
    let warga = server.enrolled(account(WARGA, Role::Resident, &[]), 1);
    let dinas = server.enrolled(account("dinas", Role::Agency, &[]), 2);
    let (mut doc, id) = filed(&warga, REGION);
    server.exchange(&warga, &sync((0, 0), vec![push_new(&mut doc)], 1 << 20));
    let staff = Staff {
        account: dinas.account.clone(),
        device: dinas.device,
        call: [9; 16],
    };

    // Nobody writes meanwhile: merged once.
    let mut seen = Vec::new();
    update_documents(&server.storage, &[id], &mut |_, current| {
        seen.push(current.map(|c| c.data));
        Ok(DocWrite::Unchanged)
    })
    .unwrap();
    assert_eq!(seen.len(), 1);

    // The back office adds a note after the early merge read the request:
    // the merge runs again, on the request with the note.
    let mut seen = Vec::new();
    update_documents(&server.storage, &[id], &mut |_, current| {
        seen.push(current.map(|c| c.data));
        if seen.len() == 1 {
            staff
                .act(
                    &server.storage,
                    &server.nik_key,
                    [0xAA; 16],
                    id,
                    None,
                    "note",
                    "POST /v1/agency/requests/{id}/notes",
                    &|r, by| {
                        edits::add_note(r, by, "Mohon lengkapi foto lokasi.", false).map(|_| ())
                    },
                )
                .unwrap();
        }
        Ok(DocWrite::Unchanged)
    })
    .unwrap();
    assert_eq!(seen.len(), 2, "merged again under the lock");
    assert_ne!(seen[0], seen[1]);
    let stored = server.storage.document(id).unwrap().unwrap();
    assert_eq!(seen[1].as_deref(), Some(&stored.data[..]));
}
