//! The server is the authority over what merges, end to end, against the
//! attacks of a tampered app that holds a device key and speaks the
//! protocol through `sambung-core`'s own types: decisions stay final,
//! floors are the server's own record, the history cannot be reordered,
//! content is validated, drafts stay private, and one exchange reads a
//! bounded part of the log. Honest devices keep syncing throughout.

use automerge::sync::{self, SyncDoc};
use automerge::{ActorId, AutoCommit, ChangeHash};
use sambung_core::document::RequestDoc;
use sambung_core::identifiers::{Nik, RegionCode};
use sambung_core::lifecycle::{Role, Status, StatusEntry};
use sambung_core::model::{Details, Kind, KtpReason, Request, RequestId};
use sambung_core::protocol::{DocPush, DocRepair, Hash, RefusalCode, SyncRequest, SyncResponse};
use sambung_core::{Timestamp, templates};
use sambung_e2e::{Agency, Device, RawDevice, TestServer};

fn complaint() -> sambung_core::model::RequestContent {
    let mut content = templates::example(Kind::Complaint);
    content.region = RegionCode::from("32.73.01.1001");
    content
}

fn server_doc(server: &TestServer, id: &RequestId) -> AutoCommit {
    let stored = server
        .state
        .storage()
        .document(id.to_bytes().unwrap())
        .unwrap()
        .unwrap();
    AutoCommit::load(&stored.data).unwrap()
}

fn server_request(server: &TestServer, id: &RequestId) -> Request {
    autosurgeon::hydrate(&server_doc(server, id)).unwrap()
}

/// The last change `dev` wrote to the server's copy of `id`.
fn last_change_by(server: &TestServer, dev: &Device, id: &RequestId) -> ChangeHash {
    let mut doc = server_doc(server, id);
    let me = dev.store.device_id();
    doc.get_changes(&[])
        .iter()
        .filter(|c| c.actor_id().to_bytes() == me)
        .map(|c| c.hash())
        .next_back()
        .expect("a change of the device")
}

/// A push of `edit` by `dev`'s actor built on the server's copy of `id` as
/// it stood at `base` (what a tampered app claims it saw).
fn built_on(
    server: &TestServer,
    dev: &Device,
    id: &RequestId,
    base: &[ChangeHash],
    edit: impl FnOnce(&mut Request),
) -> DocPush {
    let mut forked = server_doc(server, id).fork_at(base).unwrap();
    let actor = ActorId::from(dev.store.device_id().as_slice());
    let mut doc = RequestDoc::load(&forked.save(), [], actor).unwrap();
    let before = doc.heads();
    doc.update(|r| {
        edit(r);
        Ok(())
    })
    .unwrap();
    DocPush {
        id: Some(id.to_bytes().unwrap()),
        since: before.iter().copied().map(Hash::from).collect(),
        changes: doc.save_after(&before),
        heads: doc.heads().into_iter().map(Into::into).collect(),
    }
}

/// An exchange from cursor 0 that only repairs `id` with `message`, asking
/// at most `max_response_bytes` back.
fn repair_only(id: &RequestId, message: Vec<u8>, max_response_bytes: u32) -> SyncRequest {
    SyncRequest {
        cursor: 0,
        cursor_tag: 0,
        push: vec![],
        repair: vec![DocRepair {
            id: id.to_bytes().unwrap(),
            message,
        }],
        max_response_bytes,
        catalog: 0,
    }
}

/// The whole document read through a repair, by an exchange pinned at
/// cursor 0 with the smallest budget (so its pulls never move the
/// device's floor by themselves).
async fn read_by_repair(raw: &RawDevice, id: &RequestId) -> (SyncResponse, AutoCommit) {
    let mut doc = AutoCommit::new();
    let mut state = sync::State::new();
    let message = doc
        .sync()
        .generate_sync_message(&mut state)
        .unwrap()
        .encode();
    let answer = raw.send(&repair_only(id, message, 1)).await;
    assert_eq!(answer.repair.len(), 1, "{:?}", answer.refused);
    let reply = sync::Message::decode(&answer.repair[0].message).unwrap();
    doc.sync().receive_sync_message(&mut state, reply).unwrap();
    (answer, doc)
}

/// A resident's complaint taken to `needs_info`, with a note from the
/// resident on it, all synced; a filler request before it makes a pull
/// pinned at cursor 0 stop long before it.
async fn asked_complaint(
    server: &TestServer,
    dir: &std::path::Path,
) -> (Device, Agency, RequestId) {
    let w = server
        .device(dir, Role::Resident, "warga-1", &[], None)
        .await;
    let agency = Agency::enroll(server, "dinas", &[]).await;
    let filler = w.store.create(complaint()).unwrap();
    w.store
        .add_note(
            &filler,
            &"Catatan panjang tentang saluran air. ".repeat(130),
            false,
        )
        .unwrap();
    let id = w.store.create(complaint()).unwrap();
    w.store.submit(&id).unwrap();
    w.sync_until_ok(3).await;
    for to in ["received", "in_review", "needs_info"] {
        agency.move_to(&id, to).await;
    }
    w.sync_until_ok(3).await;
    w.store
        .add_note(&id, "Foto sudah saya kirim ulang", false)
        .unwrap();
    let s = w.sync_until_ok(3).await;
    assert!(s.refused.is_empty(), "{s:?}");
    (w, agency, id)
}

/// [`asked_complaint`] then reviewed and approved by the office: the
/// resident's device, the request, the resident's last change
/// (its needs_info note) and the approved request as the server holds it.
async fn approved_after_asking(
    server: &TestServer,
    dir: &std::path::Path,
) -> (Device, RequestId, ChangeHash, Request) {
    let (w, agency, id) = asked_complaint(server, dir).await;
    let note = last_change_by(server, &w, &id);
    agency.move_to(&id, "in_review").await;
    agency.move_to(&id, "approved").await;
    let approved = server_request(server, &id);
    (w, id, note, approved)
}

#[tokio::test]
async fn a_decided_request_cannot_be_rewritten_by_a_tampered_app() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (w, id, note, approved) = approved_after_asking(&server, dir.path()).await;
    assert_eq!(approved.status(), Status::Approved);
    let raw = RawDevice::of(&server.url(), &w);
    let log_before = server.log_len();

    // A new phone built on its own needs_info note (when a resident may
    // change details), without reading anything since.
    let phone = |r: &mut Request| r.content.contact_phone = Some("081299990000".into());
    let answer = raw
        .exchange(vec![built_on(&server, &w, &id, &[note], phone)])
        .await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(answer.refused[0].code, RefusalCode::Forbidden);
    assert_eq!(
        answer.refused[0].reason,
        "this request is approved: it takes notes only, no other change"
    );
    // The same after reading the approved state through a repair, pulls
    // pinned at cursor 0 with the smallest budget.
    let (pinned, read) = read_by_repair(&raw, &id).await;
    assert!(pinned.more, "the pinned pull stops early");
    let read: Request = autosurgeon::hydrate(&read).unwrap();
    assert_eq!(read.status(), Status::Approved);
    let answer = raw
        .exchange(vec![built_on(&server, &w, &id, &[note], phone)])
        .await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    // A withdrawal appended after the decision, claiming a late place.
    let withdraw = |r: &mut Request| {
        r.history.push(StatusEntry {
            seq: 99,
            at: Timestamp::now(),
            id: "w".into(),
            from: Status::InReview,
            to: Status::Withdrawn,
            by: "warga-1".into(),
            role: Role::Resident,
            note: None,
        })
    };
    let heads = server_doc(&server, &id).get_heads();
    let answer = raw
        .exchange(vec![built_on(&server, &w, &id, &heads, withdraw)])
        .await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(server.log_len(), log_before, "nothing written");
    assert_eq!(server_request(&server, &id), approved);

    // A freshly enrolled officer of the region builds on the draft (the
    // document's first change) and changes the applicant's NIK.
    let odir = tempfile::tempdir().unwrap();
    let officer = server
        .device(odir.path(), Role::Officer, "petugas-9", &["32.73"], None)
        .await;
    let first = server_doc(&server, &id).get_changes(&[])[0].hash();
    let nik = |r: &mut Request| {
        r.content.applicant.as_mut().unwrap().nik = Nik::from("3273011503850002");
    };
    let answer = RawDevice::of(&server.url(), &officer)
        .exchange(vec![built_on(&server, &officer, &id, &[first], nik)])
        .await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(answer.refused[0].code, RefusalCode::Forbidden);
    assert_eq!(server.log_len(), log_before, "nothing written");
    assert_eq!(server_request(&server, &id), approved);
    let receipts = server
        .state
        .storage()
        .receipts(id.to_bytes().unwrap())
        .unwrap();
    assert!(receipts.iter().all(|r| r.delivery.account != "petugas-9"));

    // The honest device: its note after the decision is taken, and it
    // converges on the decision.
    w.store.add_note(&id, "Terima kasih", false).unwrap();
    let s = w.sync_until_ok(3).await;
    assert!(s.refused.is_empty(), "{s:?}");
    let on_server = server_request(&server, &id);
    assert_eq!(on_server.status(), Status::Approved);
    assert_eq!(on_server.notes.len(), approved.notes.len() + 1);
    assert_eq!(w.store.get(&id).unwrap().status(), Status::Approved);
}

#[tokio::test]
async fn a_repair_raises_the_floor_a_device_is_judged_by() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (w, agency, id) = asked_complaint(&server, dir.path()).await;
    let note = last_change_by(&server, &w, &id);
    agency.move_to(&id, "in_review").await;
    let raw = RawDevice::of(&server.url(), &w);
    // Read the review through a repair (pulls pinned at cursor 0), then
    // claim the edit was built on the needs_info state.
    let (pinned, read) = read_by_repair(&raw, &id).await;
    assert!(pinned.more);
    let read: Request = autosurgeon::hydrate(&read).unwrap();
    assert_eq!(read.status(), Status::InReview);
    let log_before = server.log_len();
    let phone = |r: &mut Request| r.content.contact_phone = Some("081299990000".into());
    let answer = raw
        .exchange(vec![built_on(&server, &w, &id, &[note], phone)])
        .await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(
        answer.refused[0].reason,
        "a resident may not change the details of a complaint request in status in_review"
    );
    assert_eq!(server.log_len(), log_before, "nothing written");
}

#[tokio::test]
async fn status_changes_cannot_be_slipped_in_before_the_server_s() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let w = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let agency = Agency::enroll(&server, "dinas", &[]).await;
    let id = w.store.create(complaint()).unwrap();
    w.store.submit(&id).unwrap();
    w.sync_until_ok(3).await;
    agency.move_to(&id, "received").await;
    agency.move_to(&id, "in_review").await;
    w.sync_until_ok(3).await;
    let raw = RawDevice::of(&server.url(), &w);
    // A withdrawal from the review it saw, claiming seq 0 and an old time:
    // it would sort before the office's entries and replay the history
    // differently.
    let early = |r: &mut Request| {
        r.history.push(StatusEntry {
            seq: 0,
            at: Timestamp(0),
            id: "0".into(),
            from: Status::InReview,
            to: Status::Withdrawn,
            by: "warga-1".into(),
            role: Role::Resident,
            note: None,
        })
    };
    let heads = server_doc(&server, &id).get_heads();
    let log_before = server.log_len();
    let answer = raw
        .exchange(vec![built_on(&server, &w, &id, &heads, early)])
        .await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(
        answer.refused[0].reason,
        "a status change must come after every status change its author saw"
    );
    assert_eq!(server.log_len(), log_before);
    // The honest withdrawal, written by the store: taken.
    w.store.withdraw(&id, None).unwrap();
    let s = w.sync_until_ok(3).await;
    assert!(s.refused.is_empty(), "{s:?}");
    assert_eq!(server_request(&server, &id).status(), Status::Withdrawn);
}

/// A complaint pushed as a tampered app writes it.
fn tampered_submission(
    dev: &Device,
    user: &str,
    role: Role,
    r: impl FnOnce(&mut Request),
) -> DocPush {
    sambung_e2e::tampered_submission(dev, complaint(), user, role, r)
}

#[tokio::test]
async fn the_server_validates_content_with_the_devices_own_rules() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let w = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let raw = RawDevice::of(&server.url(), &w);
    let bad_nik = "1234567890123456";
    let invalid = tampered_submission(&w, "warga-1", Role::Resident, |r| {
        r.content.applicant.as_mut().unwrap().nik = Nik::from(bad_nik);
    });
    // A lost KTP-el needs the police report.
    let missing = tampered_submission(&w, "warga-1", Role::Resident, |r| {
        let mut ktp = templates::example(Kind::KtpEl);
        if let Details::KtpEl(d) = &mut ktp.details {
            d.reason = KtpReason::Lost;
        }
        r.content = ktp;
    });
    let fine = tampered_submission(&w, "warga-1", Role::Resident, |_| {});
    let answer = raw.exchange(vec![invalid, missing, fine]).await;
    assert_eq!(answer.refused.len(), 2, "{answer:?}");
    let nik = &answer.refused[0];
    assert_eq!(nik.code, RefusalCode::Invalid);
    assert!(
        nik.errors.iter().any(|e| e.field == "applicant.nik"
            && !e.message_id.is_empty()
            && !e.message_en.is_empty()),
        "{nik:?}"
    );
    assert!(
        !format!("{nik:?}").contains(bad_nik),
        "no values in refusals"
    );
    let attachment = &answer.refused[1];
    assert!(
        attachment
            .errors
            .iter()
            .any(|e| e.field == "attachments.police_report" && e.code == "attachment_missing"),
        "{attachment:?}"
    );
    // The valid one beside them is taken.
    assert_eq!(server.log_len(), 1);

    // An officer filing in a region it does not work in.
    let odir = tempfile::tempdir().unwrap();
    let officer = server
        .device(odir.path(), Role::Officer, "petugas-1", &["33.01"], None)
        .await;
    let outside = tampered_submission(&officer, "petugas-1", Role::Officer, |_| {});
    let answer = RawDevice::of(&server.url(), &officer)
        .exchange(vec![outside])
        .await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(
        answer.refused[0].reason,
        "the request's region is outside the regions this account works in"
    );
    // The honest device never gets there: its store refuses first.
    let mut bad = complaint();
    bad.applicant.as_mut().unwrap().nik = Nik::from(bad_nik);
    assert!(w.store.create(bad).is_err());
}

#[tokio::test]
async fn drafts_stay_with_whoever_wrote_them_until_submitted() {
    let server = TestServer::start().await;
    let (wd, od, o2d, ad) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let applicant = templates::example(Kind::Complaint)
        .applicant
        .unwrap()
        .nik
        .as_str()
        .to_owned();
    let w = server
        .device(wd.path(), Role::Resident, "warga-1", &[], Some(&applicant))
        .await;
    let officer = server
        .device(od.path(), Role::Officer, "petugas-1", &["32.73"], None)
        .await;
    let other = server
        .device(o2d.path(), Role::Officer, "petugas-2", &["32.73"], None)
        .await;
    let dinas = server
        .device(ad.path(), Role::Agency, "dinas-app", &[], None)
        .await;
    let agency = Agency::enroll(&server, "dinas", &[]).await;
    let draft = w.store.create(complaint()).unwrap();
    w.sync_until_ok(3).await;
    assert!(
        server
            .state
            .storage()
            .document(draft.to_bytes().unwrap())
            .unwrap()
            .is_some(),
        "kept as a backup"
    );
    for d in [&officer, &other, &dinas] {
        d.sync_until_ok(3).await;
        assert!(!d.ids().contains(&draft), "{} holds a draft", d.user);
    }
    // Nor by repair, nor from the back office.
    let mut doc = AutoCommit::new();
    let message = doc
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .unwrap()
        .encode();
    let answer = RawDevice::of(&server.url(), &officer)
        .send(&repair_only(&draft, message, 65536))
        .await;
    assert!(answer.repair.is_empty());
    assert_eq!(answer.refused.len(), 1);
    let read = agency
        .call("GET", &format!("/v1/agency/requests/{draft}"), None, None)
        .await;
    assert_eq!(read.status, 404);
    // Submitted: everyone whose scope holds it receives the whole of it.
    w.store.submit(&draft).unwrap();
    w.sync_until_ok(3).await;
    for d in [&officer, &other, &dinas] {
        d.sync_until_ok(3).await;
        assert!(d.ids().contains(&draft), "{} lacks the submission", d.user);
        assert_eq!(d.store.get(&draft).unwrap().status(), Status::Submitted);
    }

    // Filed by an officer on the resident's behalf: the officer and that
    // resident see the draft, another officer of the region does not, and
    // the resident may not change it.
    let filed = officer.store.create(complaint()).unwrap();
    officer.sync_until_ok(3).await;
    w.sync_until_ok(3).await;
    other.sync_until_ok(3).await;
    assert!(w.ids().contains(&filed), "the resident it was filed for");
    assert!(!other.ids().contains(&filed), "another officer");
    let mut content = w.store.get(&filed).unwrap().content;
    content.contact_phone = Some("081277778888".into());
    assert!(matches!(
        w.store.update_content(&filed, content),
        Err(sambung_core::Error::Forbidden(_))
    ));
}

#[tokio::test]
async fn one_exchange_reads_a_bounded_part_of_the_log() {
    let server = TestServer::start().await;
    let (ad, bd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = server
        .device(ad.path(), Role::Resident, "warga-a", &[], None)
        .await;
    let b = server
        .device(bd.path(), Role::Resident, "warga-b", &[], None)
        .await;
    let n = sambung_server::exchange::MAX_LOG_READ + 100;
    for _ in 0..n {
        a.store.create(complaint()).unwrap();
    }
    for _ in 0..20 {
        if a.store.pending_count().unwrap() == 0 {
            break;
        }
        a.sync().await.unwrap();
    }
    assert_eq!(server.log_len(), n);
    // B may see none of them: the scope index gives it nothing to read.
    let raw = RawDevice::of(&server.url(), &b);
    let nothing = raw.exchange(vec![]).await;
    assert!(nothing.pull.is_empty() && !nothing.more && nothing.cursor == 0);
    // An agency account without regions reads the log itself, and sees
    // none of these drafts: its first exchange reads at most the bound and
    // says there is more; the next reads the rest.
    let agency_dir = tempfile::tempdir().unwrap();
    let agency = server
        .device(agency_dir.path(), Role::Agency, "dinas", &[], None)
        .await;
    let raw = RawDevice::of(&server.url(), &agency);
    let first = raw.exchange(vec![]).await;
    assert!(first.pull.is_empty());
    assert!(first.more, "stopped at the bound");
    let log = server.state.storage().log_since(0, n).unwrap();
    assert_eq!(
        first.cursor,
        log[sambung_server::exchange::MAX_LOG_READ - 1].seq
    );
    let second = raw
        .send(&SyncRequest {
            cursor: first.cursor,
            cursor_tag: first.cursor_tag,
            push: vec![],
            repair: vec![],
            max_response_bytes: 65536,
            catalog: 0,
        })
        .await;
    assert!(!second.more);
    assert_eq!(second.cursor, log.last().unwrap().seq);
    // The device's own client follows `more` to the end.
    let s = agency.sync_until_ok(3).await;
    assert!(s.refused.is_empty());
    assert!(agency.ids().is_empty(), "drafts are their creator's");
}

#[tokio::test]
async fn a_replaced_history_cannot_drop_the_decision() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (w, id, note, approved) = approved_after_asking(&server, dir.path()).await;
    // Built on its own needs_info note: a new list put in place of the
    // history (not edited, as every honest device does), holding what the
    // device saw — so the approval, added to the old list, would be gone.
    let forked = server_doc(&server, &id).fork_at(&[note]).unwrap();
    let seen: Request = autosurgeon::hydrate(&forked).unwrap();
    let actor = ActorId::from(w.store.device_id().as_slice());
    let mut doc = forked.with_actor(actor);
    let before = doc.get_heads();
    {
        use automerge::transaction::Transactable;
        let list = doc
            .put_object(automerge::ROOT, "history", automerge::ObjType::List)
            .unwrap();
        for (i, e) in seen.history.iter().enumerate() {
            autosurgeon::reconcile_insert(&mut doc, list.clone(), i, e).unwrap();
        }
    }
    doc.commit();
    let push = DocPush {
        id: Some(id.to_bytes().unwrap()),
        since: before.iter().copied().map(Hash::from).collect(),
        changes: doc.save_after(&before),
        heads: doc.get_heads().into_iter().map(Into::into).collect(),
    };
    let log_before = server.log_len();
    let answer = RawDevice::of(&server.url(), &w).exchange(vec![push]).await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(
        answer.refused[0].reason,
        "the status changes and notes the server holds cannot be removed"
    );
    assert_eq!(server.log_len(), log_before);
    assert_eq!(server_request(&server, &id), approved);
}

#[tokio::test]
async fn a_repair_asking_billions_of_probes_is_refused_and_the_server_stays_up() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let w = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let id = w.store.create(complaint()).unwrap();
    w.sync_until_ok(3).await;
    // A sync message whose one Bloom filter asks 2^32 - 1 probes.
    let mut message = vec![0x42, 0, 0, 1, 0];
    let bloom = [1u8, 10, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xff, 0x03];
    message.push(bloom.len() as u8);
    message.extend(bloom);
    message.push(0);
    let raw = RawDevice::of(&server.url(), &w);
    let answer = raw.send(&repair_only(&id, message, 65536)).await;
    assert!(answer.repair.is_empty());
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(answer.refused[0].code, RefusalCode::Invalid);
    // Still serving.
    let s = w.sync_until_ok(3).await;
    assert!(s.refused.is_empty());
}

#[tokio::test]
async fn a_document_grown_by_many_small_pushes_stops_at_the_bound() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let w = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let id = w.store.create(complaint()).unwrap();
    w.sync_until_ok(3).await;
    let raw = RawDevice::of(&server.url(), &w);
    let actor = ActorId::from(w.store.device_id().as_slice());
    let per_push = sambung_core::protocol::limits::MAX_OPS_PER_CHANGE - 10; // even: ends on null
    let mut refused = None;
    for round in 0..20u64 {
        let mut doc = server_doc(&server, &id).with_actor(actor.clone());
        let before = doc.get_heads();
        {
            use automerge::transaction::Transactable;
            // The same field written over and over (Automerge skips a
            // write of the value already there, so two values alternate),
            // left as it was.
            for i in 0..per_push {
                let v = if i % 2 == 0 {
                    automerge::ScalarValue::Str("a".into())
                } else {
                    automerge::ScalarValue::Null
                };
                doc.put(automerge::ROOT, "assignee", v).unwrap();
            }
        }
        doc.commit();
        let push = DocPush {
            id: Some(id.to_bytes().unwrap()),
            since: before.iter().copied().map(Hash::from).collect(),
            changes: doc.save_after(&before),
            heads: doc.get_heads().into_iter().map(Into::into).collect(),
        };
        let answer = raw.exchange(vec![push]).await;
        if let Some(r) = answer.refused.first() {
            refused = Some((round, r.clone()));
            break;
        }
    }
    let (round, r) = refused.expect("refused before 20 pushes");
    assert_eq!(r.code, RefusalCode::TooLarge, "{r:?}");
    assert!(round >= 1, "a few pushes are taken first");
    // The stored document is within what devices take whole.
    let stored = server
        .state
        .storage()
        .document(id.to_bytes().unwrap())
        .unwrap()
        .unwrap();
    assert!(
        sambung_core::protocol::limits::check_chunks(
            &stored.data,
            sambung_core::protocol::limits::Sender::Server
        )
        .is_ok()
    );
}
