//! The server's schema on the backend under test: versioned, migrated once
//! when several servers start at the same moment, and never used by a
//! server older than it.

use sambung_core::lifecycle::Role;
use sambung_e2e::{TestDb, TestServer};
use sambung_server::ServerError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_at_once_migrate_once_and_agree_on_one_key() {
    // Three servers start at once, each with a secrets file of its own
    // (an operator's mistake): the database takes the first key's check
    // value, and only that server may run on it.
    let db = std::sync::Arc::new(TestDb::fresh().await);
    let accepted: Vec<bool> = (0..3u8)
        .map(|i| {
            let db = db.clone();
            std::thread::spawn(move || db.open().bind_key_check(&[i; 16]).unwrap())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(accepted.iter().filter(|a| **a).count(), 1, "{accepted:?}");
    let winner = accepted.iter().position(|a| *a).unwrap() as u8;
    assert!(db.open().bind_key_check(&[winner; 16]).unwrap());
    assert!(!db.open().bind_key_check(&[9; 16]).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_newer_than_the_server_is_refused_untouched() {
    let db = TestDb::fresh().await;
    assert!(db.open().bind_key_check(&[1; 16]).unwrap());
    let current = db.schema_version().await;
    assert!(current >= 1);
    db.set_schema_version(99).await;
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sambung_server::storage::open(db.dir(), db.url().as_deref()).map(|_| ())
    }))
    .expect("a clear error, not a panic");
    match opened {
        Err(ServerError::Config(m)) => assert!(m.contains("99"), "{m}"),
        other => panic!("expected a refusal on {}, got {other:?}", db.backend()),
    }
    // Back at a version it knows, the same data opens again.
    db.set_schema_version(current).await;
    assert!(db.open().bind_key_check(&[1; 16]).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_recovers_when_its_connections_are_cut() {
    let db = TestDb::fresh().await;
    let storage = db.open();
    assert!(storage.bind_key_check(&[1; 16]).unwrap());
    let cut = db.drop_connections().await;
    assert_eq!(cut, db.backend() == "postgres");
    // Calls in flight at the cut may fail, clearly; the pool then opens
    // new connections instead of waiting for the dead ones.
    let mut healed = false;
    for _ in 0..40 {
        if storage.bind_key_check(&[1; 16]).is_ok() {
            healed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(healed, "the storage did not recover on {}", db.backend());
    // No connection slot was lost: many calls in a row all work.
    for _ in 0..50 {
        assert!(storage.bind_key_check(&[1; 16]).unwrap());
    }
}

#[tokio::test]
async fn enrolling_again_never_moves_an_account_to_another_nik() {
    let server = TestServer::start().await;
    let (a, b) = ("3273014108900007", "3273011503850002");
    server.code(Role::Resident, "warga-1", &[], Some(a));
    let again = |nik: Option<&str>| {
        let account = sambung_server::accounts::Account {
            id: "warga-1".into(),
            role: Role::Resident,
            regions: vec![],
            nik_hash: nik.map(|n| sambung_server::exchange::nik_hash(server.state.nik_key(), n)),
        };
        sambung_server::enroll::create(server.state.storage(), &account, 0, 3600)
    };
    assert!(matches!(
        again(Some(b)),
        Err(ServerError::NikConflict { .. })
    ));
    // The same NIK, or none given: a new code for the same account.
    assert!(again(Some(a)).is_ok());
    assert!(again(None).is_ok());
    // Still linked to the first: requests filed for it reach the account.
    let linked = server
        .state
        .storage()
        .accounts_of_person(&sambung_server::exchange::nik_hash(
            server.state.nik_key(),
            a,
        ))
        .unwrap();
    assert_eq!(linked, vec!["warga-1".to_string()]);
}
