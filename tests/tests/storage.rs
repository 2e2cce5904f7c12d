//! The server's schema on the backend under test: versioned, migrated once
//! when several servers start at the same moment, and never used by a
//! server older than it.

use sambung_e2e::TestDb;
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
