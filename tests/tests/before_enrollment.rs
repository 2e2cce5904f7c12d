//! A resident may file before the device ever enrolled (the app installed
//! at home, the code from the office days later): everything written
//! before enrollment reaches the server as the account's own.

use sambung_core::crypto::DataKey;
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::Kind;
use sambung_core::store::{Identity, Secret, Store};
use sambung_core::sync::{Client, SyncConfig};
use sambung_core::templates;
use sambung_e2e::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_written_before_enrollment_is_the_accounts() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::init(
        dir.path(),
        &Secret::Key(DataKey::generate().unwrap()),
        Identity {
            user: "local".into(),
            role: Role::Resident,
        },
    )
    .unwrap();
    let id = store.create(templates::example(Kind::Complaint)).unwrap();
    store.submit(&id).unwrap();
    store.add_note(&id, "foto menyusul", false).unwrap();

    let config = SyncConfig::default();
    let client = Client::new(&server.url(), &config).unwrap();
    let code = server.code(Role::Resident, "warga-7", &[], None);
    client.enroll(&mut store, &code).await.unwrap();
    let r = store.get(&id).unwrap();
    assert_eq!(r.created_by, "warga-7");
    assert!(r.history.iter().all(|e| e.by == "warga-7"));
    assert!(r.notes.iter().all(|n| n.by == "warga-7"));

    let summary = client.sync(&store, &config, |_| {}).await.unwrap();
    assert_eq!(summary.pushed, 1, "{summary:?}");
    assert!(summary.refused.is_empty(), "{summary:?}");
    assert_eq!(store.get(&id).unwrap().status(), Status::Submitted);
    assert_eq!(store.pending_count().unwrap(), 0);
}
