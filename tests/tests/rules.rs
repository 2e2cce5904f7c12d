//! Who may write what, end to end: a tampered client writing what its role
//! may not is refused per document while its other documents keep syncing;
//! the server keeps who delivered every change; an honest device refused
//! for a request has a way out.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit};
use sambung_core::document::RequestDoc;
use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::{Role, Status, StatusEntry};
use sambung_core::model::{AttachmentRef, AttachmentRole, Kind, Request, RequestId};
use sambung_core::protocol::{DocPush, Hash, RefusalCode};
use sambung_core::{Timestamp, templates};
use sambung_e2e::{Agency, Device, RawDevice, TestServer};

fn complaint() -> sambung_core::model::RequestContent {
    let mut content = templates::example(Kind::Complaint);
    content.region = RegionCode::from("32.73.01.1001");
    content
}

/// The server's copy of a request.
fn server_copy(server: &TestServer, id: &RequestId) -> Vec<u8> {
    server
        .state
        .storage()
        .document(id.to_bytes().unwrap())
        .unwrap()
        .unwrap()
        .data
}

/// A resident's submitted complaint on `server`, synced, and the back
/// office that handles it.
async fn submitted_complaint(
    server: &TestServer,
    dir: &std::path::Path,
) -> (Device, Agency, RequestId) {
    let w = server
        .device(dir, Role::Resident, "warga-1", &[], None)
        .await;
    let agency = Agency::enroll(server, "dinas", &[]).await;
    let id = w.store.create(complaint()).unwrap();
    w.store.submit(&id).unwrap();
    w.sync_until_ok(3).await;
    (w, agency, id)
}

/// A push of `edit` made by `dev`'s actor on top of the server's copy, as a
/// tampered app would send it (nothing on the device checks it).
fn tampered(
    server: &TestServer,
    dev: &Device,
    id: &RequestId,
    edit: impl FnOnce(&mut Request),
) -> DocPush {
    let actor = ActorId::from(dev.store.device_id().as_slice());
    let mut doc = RequestDoc::load(&server_copy(server, id), [], actor).unwrap();
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

#[tokio::test]
async fn a_tampered_client_is_refused_what_its_role_may_not_write_and_the_rest_syncs() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let w = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let submitted = w.store.create(complaint()).unwrap();
    w.store.submit(&submitted).unwrap();
    let draft = w.store.create(complaint()).unwrap();
    w.sync_until_ok(3).await;
    let raw = RawDevice::of(&server.url(), &w);
    let log_before = server.log_len();

    let photo = AttachmentRef {
        sha256: "ab".repeat(32),
        role: AttachmentRole::Photo,
        purpose: None,
        name: "p.jpg".into(),
        mime: "image/jpeg".into(),
        size: 10,
        added_at: Timestamp::now(),
    };
    type Edit = Box<dyn FnOnce(&mut Request)>;
    let forbidden: Vec<(&str, Edit)> = vec![
        (
            "change the applicant, region and lawful basis",
            Box::new(|r| r.content.applicant.as_mut().unwrap().nik = "3273011503850002".into()),
        ),
        (
            "change the details",
            Box::new(|r| r.content.contact_phone = Some("081299990000".into())),
        ),
        (
            "change the attachments",
            Box::new(move |r| r.attachments.push(photo)),
        ),
        (
            "change the assignee",
            Box::new(|r| r.assignee = Some("warga-1".into())),
        ),
        (
            "move a request from submitted to approved",
            Box::new(|r| {
                r.history.push(StatusEntry {
                    seq: r.history.len() as u64,
                    at: Timestamp::now(),
                    id: "self-approved".into(),
                    from: Status::Submitted,
                    to: Status::Approved,
                    by: "warga-1".into(),
                    role: Role::Resident,
                    note: None,
                })
            }),
        ),
    ];
    for (round, (what, edit)) in forbidden.into_iter().enumerate() {
        let bad = tampered(&server, &w, &submitted, edit);
        // The draft, in the same exchange, is the resident's to edit.
        let good = tampered(&server, &w, &draft, |r| {
            r.content.contact_phone = Some(format!("08121111222{round}").as_str().into());
        });
        let answer = raw.exchange(vec![bad, good]).await;
        assert_eq!(answer.refused.len(), 1, "{what}: {answer:?}");
        let refusal = &answer.refused[0];
        assert_eq!(refusal.id, submitted.to_bytes().unwrap());
        assert_eq!(refusal.code, RefusalCode::Forbidden, "{what}");
        assert!(
            refusal.reason.contains(what) && refusal.reason.starts_with("a resident may not"),
            "{what}: {}",
            refusal.reason
        );
        // The draft's edit (a new phone each round) was taken.
        assert!(answer.acked_all || answer.acks.len() == 1, "{answer:?}");
        assert!(
            !answer
                .acks
                .iter()
                .any(|a| a.id == submitted.to_bytes().unwrap())
        );
    }
    // Fields beside the model (hydration would ignore them): refused too.
    let actor = ActorId::from(w.store.device_id().as_slice());
    let mut doc = AutoCommit::load(&server_copy(&server, &submitted))
        .unwrap()
        .with_actor(actor);
    let base = doc.get_heads();
    doc.put(automerge::ROOT, "hidden", "x".repeat(1000))
        .unwrap();
    doc.commit();
    let stuffed = DocPush {
        id: Some(submitted.to_bytes().unwrap()),
        since: base.iter().copied().map(Hash::from).collect(),
        changes: doc.save_after(&base),
        heads: doc.get_heads().into_iter().map(Into::into).collect(),
    };
    let answer = raw.exchange(vec![stuffed]).await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(answer.refused[0].code, RefusalCode::Forbidden);
    assert_eq!(
        answer.refused[0].reason,
        "the changes write fields a request does not have"
    );
    // Only the draft's edits were written; the submitted request is as it
    // was, and the honest device still syncs both.
    assert!(server.log_len() > log_before);
    let kept: Request =
        autosurgeon::hydrate(&AutoCommit::load(&server_copy(&server, &submitted)).unwrap())
            .unwrap();
    assert_eq!(kept, w.store.get(&submitted).unwrap());
    let summary = w.sync_until_ok(3).await;
    assert!(summary.refused.is_empty(), "{summary:?}");
    assert_eq!(
        w.store.get(&draft).unwrap().content.contact_phone,
        Some("081211112224".into())
    );
}

#[tokio::test]
async fn the_server_keeps_which_device_delivered_each_change_in_which_exchange() {
    let server = TestServer::start().await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let w = server
        .device(dirs[0].path(), Role::Resident, "warga-1", &[], None)
        .await;
    let officer = server
        .device(dirs[1].path(), Role::Officer, "petugas-1", &["32.73"], None)
        .await;
    let agency = Agency::enroll(&server, "dinas", &[]).await;
    let id = w.store.create(complaint()).unwrap();
    w.store.submit(&id).unwrap();
    w.sync_until_ok(3).await;
    officer.sync_until_ok(3).await;
    officer
        .store
        .add_note(&id, "sudah dicek di lokasi", false)
        .unwrap();
    officer.sync_until_ok(3).await;
    agency.move_to(&id, "received").await;

    let answer = agency
        .call(
            "GET",
            &format!("/v1/agency/requests/{id}/receipts"),
            None,
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.json);
    let receipts = answer.json["receipts"].as_array().unwrap().clone();
    // One receipt per change the server holds, each naming its author's key.
    let mut doc = AutoCommit::load(&server_copy(&server, &id)).unwrap();
    let changes = doc.get_changes(&[]);
    assert_eq!(receipts.len(), changes.len(), "{receipts:?}");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let resident_key = hex(&w.store.device_id());
    let officer_key = hex(&officer.store.device_id());
    for c in &changes {
        let r = receipts
            .iter()
            .find(|r| r["change"] == hex(&c.hash().0))
            .unwrap_or_else(|| panic!("no receipt for a change: {receipts:?}"));
        let actor = hex(c.actor_id().to_bytes());
        let exchange = r["exchange"].as_str().unwrap();
        assert_eq!(exchange.len(), 32, "the signed exchange's nonce");
        if actor == resident_key {
            assert_eq!(r["device"], resident_key.as_str());
            assert_eq!(r["account"], "warga-1");
        } else if actor == officer_key {
            assert_eq!(r["device"], officer_key.as_str());
            assert_eq!(r["account"], "petugas-1");
        } else {
            // The back office's decision: its account and signing key.
            assert_eq!(r["account"], "dinas");
            assert_eq!(r["device"], hex(&agency.device).as_str());
        }
    }
    // Each exchange is one receipt's nonce: the resident's and the
    // officer's exchanges differ.
    let nonce_of = |key: &str| -> std::collections::BTreeSet<String> {
        receipts
            .iter()
            .filter(|r| r["device"] == key)
            .map(|r| r["exchange"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(nonce_of(&resident_key).is_disjoint(&nonce_of(&officer_key)));
    assert_eq!(nonce_of(&officer_key).len(), 1);
    // Outside the account's regions: not found.
    let elsewhere = Agency::enroll(&server, "dinas-lain", &["33"]).await;
    let hidden = elsewhere
        .call(
            "GET",
            &format!("/v1/agency/requests/{id}/receipts"),
            None,
            None,
        )
        .await;
    assert_eq!(hidden.status, 404);
    let bad = agency
        .call("GET", "/v1/agency/requests/not-a-uuid/receipts", None, None)
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_shows_its_reason_and_only_its_refused_changes_can_be_discarded() {
    let server = TestServer::start().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let resident = server
        .device(dirs[0].path(), Role::Resident, "warga-1", &[], None)
        .await;
    let visiting = server
        .device(dirs[1].path(), Role::Officer, "petugas-2", &["33.01"], None)
        .await;
    let agency = server
        .device(dirs[2].path(), Role::Agency, "dinas", &[], None)
        .await;
    let id = resident.store.create(complaint()).unwrap();
    resident.store.submit(&id).unwrap();
    resident.sync().await.unwrap();
    agency.sync().await.unwrap();
    agency.store.assign(&id, Some("petugas-2")).unwrap();
    agency.sync().await.unwrap();
    visiting.sync().await.unwrap();
    visiting.store.add_note(&id, "dikunjungi", false).unwrap();
    visiting.sync().await.unwrap();
    // Unassigned while the officer writes offline: that note is refused.
    agency.sync().await.unwrap();
    agency.store.assign(&id, None).unwrap();
    agency.sync().await.unwrap();
    visiting
        .store
        .add_note(&id, "catatan terlambat", false)
        .unwrap();
    // Another request of the officer's own, in the same sync.
    let mut own = complaint();
    own.region = RegionCode::from("33.01.01.2001");
    let other = visiting.store.create(own).unwrap();
    let summary = visiting.sync().await.unwrap();
    assert_eq!(summary.refused.len(), 1, "{summary:?}");
    assert_eq!(visiting.store.pending_count().unwrap(), 1);
    let listed = visiting
        .store
        .list(&Default::default())
        .unwrap()
        .into_iter()
        .find(|s| s.id == id)
        .unwrap();
    assert!(
        listed
            .refusal
            .as_deref()
            .is_some_and(|r| r.contains("may not write")),
        "{listed:?}"
    );
    assert!(
        server
            .state
            .storage()
            .document(other.to_bytes().unwrap())
            .unwrap()
            .is_some(),
        "the rest synced"
    );

    // Nothing else can be discarded: not a request the server took.
    assert!(matches!(
        visiting.store.discard_refused(&other),
        Err(sambung_core::Error::Forbidden(_))
    ));
    assert!(matches!(
        visiting.store.discard_refused(&RequestId::random()),
        Err(sambung_core::Error::NotFound { .. })
    ));
    let discarded = visiting.store.discard_refused(&id).unwrap();
    assert_eq!(
        discarded.notes.len(),
        2,
        "what was discarded is handed back"
    );
    let now = visiting.store.get(&id).unwrap();
    assert_eq!(now.notes.len(), 1, "the note the server took stays");
    assert_eq!(now.assignee.as_deref(), Some("petugas-2"), "as last pulled");
    assert_eq!(visiting.store.pending_count().unwrap(), 0);
    let summary = visiting.sync().await.unwrap();
    assert!(summary.refused.is_empty(), "{summary:?}");
    assert!(visiting.store.integrity_check().is_ok());
}

#[tokio::test]
async fn an_honest_device_is_judged_by_what_it_saw_not_by_what_happened_meanwhile() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (w, agency, id) = submitted_complaint(&server, dir.path()).await;
    for to in ["received", "in_review", "needs_info"] {
        agency.move_to(&id, to).await;
    }
    w.sync_until_ok(3).await;
    assert_eq!(w.store.get(&id).unwrap().status(), Status::NeedsInfo);
    // Offline, the resident corrects the details, as asked; meanwhile the
    // office takes the request back into review.
    let mut content = w.store.get(&id).unwrap().content;
    content.contact_phone = Some("081277778888".into());
    w.store.update_content(&id, content).unwrap();
    agency.move_to(&id, "in_review").await;
    let summary = w.sync_until_ok(3).await;
    assert!(summary.refused.is_empty(), "{summary:?}");
    let on_server: Request =
        autosurgeon::hydrate(&AutoCommit::load(&server_copy(&server, &id)).unwrap()).unwrap();
    assert_eq!(on_server.content.contact_phone, Some("081277778888".into()));
    assert_eq!(on_server.status(), Status::InReview);
    // Now that the device has seen the review, the same edit is refused
    // on the device itself, before anything is written.
    let mut again = w.store.get(&id).unwrap().content;
    again.contact_phone = Some("081299990000".into());
    assert!(matches!(
        w.store.update_content(&id, again),
        Err(sambung_core::Error::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_client_cannot_have_its_edit_judged_by_an_old_state_of_its_choosing() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (w, agency, id) = submitted_complaint(&server, dir.path()).await;
    for to in ["received", "in_review", "needs_info"] {
        agency.move_to(&id, to).await;
    }
    let asked = server_copy(&server, &id);
    w.sync_until_ok(3).await;
    agency.move_to(&id, "in_review").await;
    // The device has been given the review; it pushes a change of the
    // details built on the request as it stood while the office asked
    // (when a resident may change them) — claiming it never saw the rest.
    w.sync_until_ok(3).await;
    assert_eq!(w.store.get(&id).unwrap().status(), Status::InReview);
    let actor = ActorId::from(w.store.device_id().as_slice());
    let mut old = RequestDoc::load(&asked, [], actor).unwrap();
    let base = old.heads();
    old.update(|r| {
        r.content.contact_phone = Some("081299990000".into());
        Ok(())
    })
    .unwrap();
    let push = DocPush {
        id: Some(id.to_bytes().unwrap()),
        since: base.iter().copied().map(Hash::from).collect(),
        changes: old.save_after(&base),
        heads: old.heads().into_iter().map(Into::into).collect(),
    };
    let log_before = server.log_len();
    let answer = RawDevice::of(&server.url(), &w).exchange(vec![push]).await;
    assert_eq!(answer.refused.len(), 1, "{answer:?}");
    assert_eq!(answer.refused[0].code, RefusalCode::Forbidden);
    assert_eq!(
        answer.refused[0].reason,
        "a resident may not change the details of a complaint request in status in_review"
    );
    assert_eq!(server.log_len(), log_before, "nothing written");
}
