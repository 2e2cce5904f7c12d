//! Restores from backup: a server restored to an older copy of its database,
//! and a phone restored to an older copy of its store. The parties find a
//! shared base with Automerge's sync protocol and converge; nothing that one
//! of them still holds is lost.

use sambung_core::identifiers::{Nik, RegionCode};
use sambung_core::lifecycle::Role;
use sambung_core::model::{Kind, Request, RequestContent, RequestId};
use sambung_core::store::ListFilter;
use sambung_core::sync::Client;
use sambung_core::templates;
use sambung_e2e::{Device, TestDb, TestServer, copy_files};

const NIK: &str = "3273014108900007";

fn content(kind: Kind) -> RequestContent {
    let mut c = templates::example(kind);
    c.region = RegionCode::from("32.73.01.1001");
    if let Some(a) = &mut c.applicant {
        a.nik = Nik::from(NIK);
        a.birth_date = None;
        a.sex = None;
    }
    c
}

/// The server's copy of a request.
fn on_server(server: &TestServer, id: &RequestId) -> Option<Request> {
    let stored = server
        .state
        .storage()
        .document(id.to_bytes().unwrap())
        .unwrap()?;
    let doc = automerge::AutoCommit::load(&stored.data).unwrap();
    Some(autosurgeon::hydrate(&doc).unwrap())
}

fn notes(r: &Request) -> Vec<&str> {
    let mut n: Vec<&str> = r.notes.iter().map(|n| n.text.as_str()).collect();
    n.sort();
    n
}

async fn restart(server: TestServer, db: &TestDb, restore_from: Option<&TestDb>) -> TestServer {
    server.stop().await;
    if let Some(backup) = restore_from {
        db.restore(backup).await;
    }
    TestServer::start_on(db).await
}

fn repoint(d: &mut Device, server: &TestServer) {
    d.client = Client::new(&server.url(), &d.config).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restored_from_backup_gets_back_what_devices_hold() {
    let db = TestDb::fresh().await;
    let (rdir, odir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = TestServer::start_on(&db).await;
    let mut r = server
        .device(rdir.path(), Role::Resident, "warga-1", &[], Some(NIK))
        .await;
    let mut o = server
        .device(odir.path(), Role::Officer, "petugas-1", &["32.73"], None)
        .await;
    let x = r.store.create(content(Kind::Complaint)).unwrap();
    r.store.submit(&x).unwrap();
    r.sync().await.unwrap();
    o.sync().await.unwrap();

    // The nightly backup.
    server.stop().await;
    let backup = db.backup().await;
    let server = TestServer::start_on(&db).await;
    repoint(&mut r, &server);
    repoint(&mut o, &server);

    // A day's work after it: a new request, a note from each side, the
    // officer's built on the resident's.
    let y = r.store.create(content(Kind::PbbReduction)).unwrap();
    r.store.submit(&y).unwrap();
    r.store
        .add_note(&x, "resident after backup", false)
        .unwrap();
    r.sync().await.unwrap();
    o.sync().await.unwrap();
    o.store.add_note(&x, "officer after backup", false).unwrap();
    o.sync().await.unwrap();
    assert_eq!(r.store.pending_count().unwrap(), 0);
    assert_eq!(o.store.pending_count().unwrap(), 0);

    // The server is restored to the backup: it lost all of that.
    let server = restart(server, &db, Some(&backup)).await;
    repoint(&mut r, &server);
    repoint(&mut o, &server);
    assert!(on_server(&server, &y).is_none());
    assert!(notes(&on_server(&server, &x).unwrap()).is_empty());

    // Each device repairs what it holds and pushes its own changes; the
    // officer's note waits for the resident's, on which it builds.
    let mut rounds = 0;
    loop {
        rounds += 1;
        let (sr, so) = (r.sync().await.unwrap(), o.sync().await.unwrap());
        let done = r.store.pending_count().unwrap() == 0
            && o.store.pending_count().unwrap() == 0
            && r.store.repairs().unwrap().is_empty()
            && o.store.repairs().unwrap().is_empty();
        if done {
            break;
        }
        assert!(rounds < 4, "no convergence: {sr:?} {so:?}");
    }
    // One more pull each brings what the other pushed last.
    r.sync().await.unwrap();
    o.sync().await.unwrap();
    let sx = on_server(&server, &x).unwrap();
    assert_eq!(
        notes(&sx),
        vec!["officer after backup", "resident after backup"]
    );
    assert!(on_server(&server, &y).is_some(), "the lost request is back");
    for d in [&r, &o] {
        assert_eq!(d.store.get(&x).unwrap(), sx);
        assert_eq!(d.store.get(&y).unwrap(), on_server(&server, &y).unwrap());
        for s in d.store.list(&ListFilter::default()).unwrap() {
            assert_eq!(s.refusal, None);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_restored_from_backup_gets_back_its_requests() {
    let server = TestServer::start().await;
    let (rdir, odir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let backup = tempfile::tempdir().unwrap();
    let r = server
        .device(rdir.path(), Role::Resident, "warga-1", &[], Some(NIK))
        .await;
    let o = server
        .device(odir.path(), Role::Officer, "petugas-1", &["32.73"], None)
        .await;
    let x = r.store.create(content(Kind::Complaint)).unwrap();
    r.store.submit(&x).unwrap();
    r.sync().await.unwrap();

    // The phone's backup, taken while the store is closed.
    let key = r.key;
    drop(r);
    copy_files(rdir.path(), backup.path());
    let r = Device::open(rdir.path(), &server.url(), key, "warga-1");

    // After it: two more requests and a note, all synced; the officer adds
    // a note to one of the new requests.
    let y = r.store.create(content(Kind::PbbReduction)).unwrap();
    r.store.submit(&y).unwrap();
    let z = r.store.create(content(Kind::KtpEl)).unwrap();
    r.store.submit(&z).unwrap();
    r.store
        .add_note(&x, "resident after backup", false)
        .unwrap();
    r.sync().await.unwrap();
    o.sync().await.unwrap();
    o.store.add_note(&y, "officer on y", false).unwrap();
    o.sync().await.unwrap();

    // The phone is restored to the backup: it holds only `x`, without
    // its note.
    drop(r);
    copy_files(backup.path(), rdir.path());
    let r = Device::open(rdir.path(), &server.url(), key, "warga-1");
    assert_eq!(r.ids(), [x.clone()].into());

    let mut rounds = 0;
    while rounds < 3 {
        rounds += 1;
        r.sync().await.unwrap();
        if r.store.repairs().unwrap().is_empty() && r.ids().len() == 3 {
            break;
        }
    }
    assert_eq!(
        r.ids(),
        [x.clone(), y.clone(), z.clone()].into(),
        "every request is back on the phone"
    );
    for id in [&x, &y, &z] {
        assert_eq!(r.store.get(id).unwrap(), on_server(&server, id).unwrap());
    }
    assert_eq!(notes(&r.store.get(&y).unwrap()), vec!["officer on y"]);
    assert_eq!(
        notes(&r.store.get(&x).unwrap()),
        vec!["resident after backup"]
    );
    assert_eq!(r.store.pending_count().unwrap(), 0);
}
