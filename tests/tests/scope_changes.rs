//! Scope changes arrive: when an account gains a region or a linked NIK,
//! the requests that become visible reach its devices at their next sync,
//! though their cursors are long past them; when it loses sight of
//! requests (a region taken away, a reassignment, an agency narrowed to
//! regions), its devices are told and drop their copies — except a copy
//! holding changes the server lacks, which is never deleted. And a pull
//! reads what the caller may see, not the whole log. On both backends
//! (`SAMBUNG_TEST_POSTGRES` set: PostgreSQL).

use std::collections::BTreeSet;

use sambung_core::identifiers::{Nik, RegionCode};
use sambung_core::lifecycle::Role;
use sambung_core::model::{Kind, RequestContent, RequestId};
use sambung_core::templates;
use sambung_e2e::{Device, TestDb, TestServer};
use sambung_server::scope_index::reader_of;

const NIK: &str = "3273014108900007";

fn set(ids: &[&RequestId]) -> BTreeSet<RequestId> {
    ids.iter().map(|&id| id.clone()).collect()
}

fn complaint(region: &str, nik: Option<&str>) -> RequestContent {
    let mut c = templates::example(Kind::Complaint);
    c.region = RegionCode::from(region);
    if let (Some(a), Some(nik)) = (&mut c.applicant, nik) {
        a.nik = Nik::from(nik);
        a.birth_date = None;
        a.sex = None;
    }
    c
}

async fn file(device: &Device, region: &str, nik: Option<&str>) -> RequestId {
    let id = device.store.create(complaint(region, nik)).unwrap();
    device.store.submit(&id).unwrap();
    device.sync().await.unwrap();
    id
}

fn change_account(server: &TestServer, id: &str, role: Role, regions: &[&str]) {
    let regions: Vec<String> = regions.iter().map(|r| r.to_string()).collect();
    sambung_server::enroll::change_account(
        server.state.storage(),
        id,
        role,
        &regions,
        sambung_core::Timestamp::now().as_millis(),
    )
    .unwrap()
    .expect("the account exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_given_later_arrives_and_a_region_taken_away_is_dropped() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let officer = server
        .device(
            &home.path().join("o"),
            Role::Officer,
            "petugas-1",
            &["32.73"],
            None,
        )
        .await;
    // Filed in the neighbouring city first: the officer's cursor passes it.
    let there = file(&resident, "32.74.02.2001", None).await;
    let here = file(&resident, "32.73.01.1001", None).await;
    officer.sync().await.unwrap();
    assert_eq!(officer.ids(), set(&[&here]), "its region only");

    // Given the neighbouring city: the request filed there before (behind
    // its cursor) arrives whole, and later changes follow.
    change_account(&server, "petugas-1", Role::Officer, &["32.73", "32.74"]);
    let s = officer.sync().await.unwrap();
    assert_eq!(officer.ids(), set(&[&here, &there]), "{s:?}");
    assert_eq!(
        officer.store.get(&there).unwrap(),
        resident.store.get(&there).unwrap()
    );
    resident
        .store
        .add_note(&there, "lampu jalan mati lagi malam ini", false)
        .unwrap();
    resident.sync().await.unwrap();
    officer.sync().await.unwrap();
    assert_eq!(officer.store.get(&there).unwrap().notes.len(), 1);

    // Taken away again: the device is told, and drops its copy.
    change_account(&server, "petugas-1", Role::Officer, &["32.73"]);
    let s = officer.sync().await.unwrap();
    assert_eq!(s.forgotten, 1, "{s:?}");
    assert_eq!(officer.ids(), set(&[&here]));
    // A fresh device of the account is told nothing it never held matters:
    // it holds its region's request only.
    let second = Device::enroll(
        &home.path().join("o2"),
        &server.url(),
        &server.code(Role::Officer, "petugas-1", &["32.73"], None),
        Role::Officer,
        "petugas-1",
    )
    .await;
    second.sync().await.unwrap();
    assert_eq!(second.ids(), set(&[&here]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nik_linked_later_brings_what_was_filed_for_it() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let officer = server
        .device(
            &home.path().join("o"),
            Role::Officer,
            "petugas-1",
            &["32.73"],
            None,
        )
        .await;
    // The resident's phone is enrolled before their NIK is known here.
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let filed_for_them = file(&officer, "32.73.01.1001", Some(NIK)).await;
    let someone_else = file(&officer, "32.73.01.1001", Some("3273016607990042")).await;
    // The resident files one of their own: their cursor passes the two.
    let own = file(&resident, "32.73.01.1001", None).await;
    assert_eq!(resident.ids(), set(&[&own]));

    // The office links the NIK (a new code for the same account, with it).
    let _ = server.code(Role::Resident, "warga-1", &[], Some(NIK));
    let s = resident.sync().await.unwrap();
    assert_eq!(resident.ids(), set(&[&own, &filed_for_them]), "{s:?}");
    assert!(!resident.ids().contains(&someone_else));
    // Linking again changes nothing: nothing is sent twice.
    let _ = server.code(Role::Resident, "warga-1", &[], Some(NIK));
    let s = resident.sync().await.unwrap();
    assert_eq!((s.pulled, s.forgotten), (0, 0), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reassignment_tells_the_officer_it_lost_and_keeps_unsynced_work() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let first = server
        .device(
            &home.path().join("a"),
            Role::Officer,
            "petugas-a",
            &["33.01"],
            None,
        )
        .await;
    let second = server
        .device(
            &home.path().join("b"),
            Role::Officer,
            "petugas-b",
            &["33.02"],
            None,
        )
        .await;
    let agency = server
        .device(&home.path().join("d"), Role::Agency, "dinas", &[], None)
        .await;
    let quiet = file(&resident, "32.73.01.1001", None).await;
    let busy = file(&resident, "32.73.01.1002", None).await;
    agency.sync().await.unwrap();
    for id in [&quiet, &busy] {
        agency.store.assign(id, Some("petugas-a")).unwrap();
    }
    agency.sync().await.unwrap();
    first.sync().await.unwrap();
    assert_eq!(first.ids(), set(&[&quiet, &busy]));

    // The officer writes a note on one while offline; meanwhile both are
    // reassigned.
    first
        .store
        .add_note(&busy, "sudah survei lokasi, foto menyusul", false)
        .unwrap();
    for id in [&quiet, &busy] {
        agency.store.assign(id, Some("petugas-b")).unwrap();
    }
    agency.sync().await.unwrap();
    let s = first.sync().await.unwrap();
    // The untouched one is dropped; the one with the unsynced note stays,
    // its push refused with a reason the app shows.
    assert_eq!(s.forgotten, 1, "{s:?}");
    assert_eq!(first.ids(), set(&[&busy]));
    assert_eq!(s.refused.len(), 1, "{s:?}");
    assert!(s.refused[0].1.contains("may not write"), "{s:?}");
    assert_eq!(
        first.store.get(&busy).unwrap().notes.len(),
        1,
        "the officer's note is still on its phone"
    );
    second.sync().await.unwrap();
    assert_eq!(second.ids(), set(&[&quiet, &busy]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_narrowed_to_regions_drops_the_rest() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let agency = server
        .device(&home.path().join("d"), Role::Agency, "dinas", &[], None)
        .await;
    let here = file(&resident, "32.73.01.1001", None).await;
    let there = file(&resident, "32.74.02.2001", None).await;
    agency.sync().await.unwrap();
    assert_eq!(agency.ids(), set(&[&here, &there]));
    change_account(&server, "dinas", Role::Agency, &["32.73"]);
    let s = agency.sync().await.unwrap();
    assert_eq!((s.forgotten, agency.ids()), (1, set(&[&here])), "{s:?}");
    // And widened to the whole agency again: it comes back.
    change_account(&server, "dinas", Role::Agency, &[]);
    agency.sync().await.unwrap();
    assert_eq!(agency.ids(), set(&[&here, &there]));
}

/// A pull reads what the caller may see: with thousands of entries of
/// other regions in the log, the index hands the officer of a small region
/// its own entries and nothing else (the time it takes is measured by
/// `scripts/load`, not here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_reads_only_what_its_account_may_see() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let officer = server
        .device(
            &home.path().join("o"),
            Role::Officer,
            "petugas-1",
            &["32.74"],
            None,
        )
        .await;
    for i in 0..400 {
        let id = resident
            .store
            .create(complaint(&format!("32.73.01.{}", 1001 + i % 7), None))
            .unwrap();
        resident.store.submit(&id).unwrap();
    }
    let mine: Vec<RequestId> = (0..20)
        .map(|_| {
            let id = resident
                .store
                .create(complaint("32.74.02.2001", None))
                .unwrap();
            resident.store.submit(&id).unwrap();
            id
        })
        .collect();
    resident.sync_until_ok(20).await;
    assert!(server.log_len() >= 420);
    let account = server
        .state
        .storage()
        .device(officer.store.device_id())
        .unwrap()
        .unwrap()
        .account;
    let found = server
        .state
        .storage()
        .log_for(&reader_of(&account), 0, 10_000)
        .unwrap();
    assert_eq!(found.len(), 20, "the officer's 20 entries, and no other");
    assert!(found.iter().all(|e| account.may_see(&e.scope)));
    // Page by page, in log order.
    let first = server
        .state
        .storage()
        .log_for(&reader_of(&account), 0, 7)
        .unwrap();
    let rest = server
        .state
        .storage()
        .log_for(&reader_of(&account), first.last().unwrap().seq, 10_000)
        .unwrap();
    let seqs: Vec<u64> = first.iter().chain(&rest).map(|e| e.seq).collect();
    assert_eq!(seqs, found.iter().map(|e| e.seq).collect::<Vec<_>>());
    let s = officer.sync().await.unwrap();
    assert_eq!(officer.ids(), mine.into_iter().collect(), "{s:?}");
}

/// A server upgraded from before the index files the log it holds: the
/// index is built at the first start, and devices pull as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_before_the_index_is_filed_at_the_upgrade() {
    let db = TestDb::fresh().await;
    let server = TestServer::start_on(&db).await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let mut here = BTreeSet::new();
    for i in 0..5 {
        let region = if i % 2 == 0 {
            "32.73.01.1001"
        } else {
            "32.74.02.2001"
        };
        let id = file(&resident, region, None).await;
        if i % 2 == 0 {
            here.insert(id);
        }
    }
    let code = server.code(Role::Officer, "petugas-1", &["32.73"], None);
    server.stop().await;
    // The database as the server before the index left it: without the
    // migrations after it either (the service catalog; the console's
    // locations, submission times and definitions, and its counts index).
    let version = db.schema_version().await;
    db.execute_raw(
        "DROP INDEX documents_by_status; \
         ALTER TABLE documents DROP COLUMN submitted_at; \
         ALTER TABLE documents DROP COLUMN definition; \
         ALTER TABLE documents DROP COLUMN lat_e6; \
         ALTER TABLE documents DROP COLUMN lon_e6; \
         DROP TABLE scope_log; ALTER TABLE log DROP COLUMN audience; DROP TABLE catalog;",
    )
    .await
    .unwrap();
    db.set_schema_version(version - 5).await;

    let server = TestServer::start_on(&db).await;
    assert_eq!(db.schema_version().await, version);
    let officer = Device::enroll(
        &home.path().join("o"),
        &server.url(),
        &code,
        Role::Officer,
        "petugas-1",
    )
    .await;
    officer.sync().await.unwrap();
    assert_eq!(officer.ids(), here);
}
