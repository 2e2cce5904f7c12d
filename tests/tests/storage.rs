//! The server's schema on the backend under test: versioned, migrated once
//! when several servers start at the same moment, and never used by a
//! server older than it.

use sambung_e2e::TestDb;
use sambung_server::ServerError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_at_once_migrate_once_and_agree_on_the_secret() {
    let db = std::sync::Arc::new(TestDb::fresh().await);
    let secrets: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || db.open().secret().unwrap())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(secrets[0].len(), 32);
    assert!(
        secrets.iter().all(|s| *s == secrets[0]),
        "one secret for all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_newer_than_the_server_is_refused_untouched() {
    let db = TestDb::fresh().await;
    let secret = db.open().secret().unwrap();
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
    assert_eq!(db.open().secret().unwrap(), secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_recovers_when_its_connections_are_cut() {
    let db = TestDb::fresh().await;
    let storage = db.open();
    let secret = storage.secret().unwrap();
    let cut = db.drop_connections().await;
    assert_eq!(cut, db.backend() == "postgres");
    // Calls in flight at the cut may fail, clearly; the pool then opens
    // new connections instead of waiting for the dead ones.
    let mut healed = false;
    for _ in 0..40 {
        if storage.secret().is_ok() {
            healed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(healed, "the storage did not recover on {}", db.backend());
    // No connection slot was lost: many calls in a row all work.
    for _ in 0..50 {
        assert_eq!(storage.secret().unwrap(), secret);
    }
}
