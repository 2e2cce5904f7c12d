//! A lost phone: the agency revokes the device. From then on the server
//! refuses it; with a wipe instruction the device deletes its store at its
//! next contact — after pushing what it holds, if the agency allows.

use sambung_core::Error;
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::store::Store;
use sambung_core::templates;
use sambung_e2e::{Device, TestServer};
use sambung_server::storage::Revocation;

async fn phone_with_unsynced(server: &TestServer, dir: &std::path::Path, user: &str) -> Device {
    let d = server.device(dir, Role::Resident, user, &[], None).await;
    d.store.create(templates::example(Kind::Complaint)).unwrap();
    d.sync().await.unwrap();
    // Filed after the last sync: only on the phone.
    d.store.create(templates::example(Kind::KtpEl)).unwrap();
    d.store.create(templates::example(Kind::Birth)).unwrap();
    assert_eq!(d.store.pending_count().unwrap(), 2);
    d
}

fn revoke(server: &TestServer, d: &Device, wipe: bool, push_first: bool) {
    let found = server
        .state
        .storage()
        .revoke_device(
            d.store.device_id(),
            Revocation { wipe, push_first },
            sambung_e2e::now(),
        )
        .unwrap();
    assert!(found);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_phone_pushes_what_it_holds_then_wipes_when_allowed() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("phone");
    let d = phone_with_unsynced(&server, &home, "warga-1").await;
    let log_before = server.log_len();
    revoke(&server, &d, true, true);
    match d.sync().await {
        Err(Error::Revoked { wiped: true }) => {}
        other => panic!("expected a wipe, got {other:?}"),
    }
    assert_eq!(
        server.log_len(),
        log_before + 2,
        "its unsynced requests arrived"
    );
    assert!(!Store::exists(&home), "the store is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_phone_wipes_at_once_when_told_so_and_is_refused_when_not() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (h1, h2) = (dir.path().join("lost"), dir.path().join("kept"));
    let lost = phone_with_unsynced(&server, &h1, "warga-1").await;
    let kept = phone_with_unsynced(&server, &h2, "warga-2").await;
    let log_before = server.log_len();

    revoke(&server, &lost, true, false);
    match lost.sync().await {
        Err(Error::Revoked { wiped: true }) => {}
        other => panic!("expected a wipe, got {other:?}"),
    }
    assert!(!Store::exists(&h1), "wiped as the agency decided");

    // Revoked without a wipe: refused, nothing deleted, nothing taken, and
    // not something to retry in a loop.
    revoke(&server, &kept, false, false);
    match kept.sync().await {
        Err(e @ Error::Revoked { wiped: false }) => assert!(!e.is_retryable()),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(kept.store.pending_count().unwrap(), 2);
    assert_eq!(server.log_len(), log_before);
    // Unknown device ids are told apart from revoked ones.
    assert!(
        !server
            .state
            .storage()
            .revoke_device(
                [0; 16],
                Revocation {
                    wipe: true,
                    push_first: false
                },
                0
            )
            .unwrap()
    );
}
