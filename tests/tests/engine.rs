//! The sync engine against a real server through the link simulator:
//! debounced writes, retries on its own after failures, silence while
//! offline, and a stop when dropped.

use std::sync::Arc;
use std::time::Duration;

use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::store::Store;
use sambung_core::sync::{Client, EngineConfig, SyncEngine};
use sambung_core::templates;
use sambung_e2e::{Device, Link, Profile, TestServer};

fn config() -> EngineConfig {
    EngineConfig {
        // Pauses of 200 ms between writes stay well under it, even on a
        // loaded CI machine.
        debounce: Duration::from_millis(800),
        max_delay: Duration::from_secs(20),
        min_backoff: Duration::from_millis(40),
        max_backoff: Duration::from_millis(200),
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

fn profile(offline_first_s: f64) -> Profile {
    Profile {
        offline_first_s,
        ..Profile::lossless()
    }
}

/// The device's store with an engine syncing to `server` through the
/// link simulator (offline for its first `offline_s` of virtual time).
async fn engine_behind_link(
    dev: Device,
    server: &str,
    offline_s: f64,
    seed: u64,
    timing: EngineConfig,
) -> (Arc<Store>, SyncEngine, Arc<Link>) {
    let (url, link) = sambung_linksim::start(server, profile(offline_s), seed).await;
    let store = Arc::new(dev.store);
    let engine = SyncEngine::start(
        store.clone(),
        Client::new(&url, &dev.config).unwrap(),
        dev.config.clone(),
        timing,
    );
    (store, engine, link)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_writes_costs_one_exchange() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dev = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let (store, engine, link) = engine_behind_link(dev, &server.url(), 0.0, 1, config()).await;
    let id = store.create(templates::example(Kind::Complaint)).unwrap();
    engine.local_write();
    // Ten edits over two seconds, each within the debounce of the last:
    // the sync waits for the pause after them (a debounce from the first
    // write alone would have synced two or three times).
    for i in 0..9 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        store.add_note(&id, &format!("catatan {i}"), false).unwrap();
        engine.local_write();
    }
    wait_for("the sync", || engine.status().syncs >= 1).await;
    assert_eq!(store.pending_count().unwrap(), 0);
    assert_eq!(link.stats().snapshot()[2], 1, "ten writes, one exchange");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_never_pause_still_sync_within_the_max_delay() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dev = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let timing = EngineConfig {
        max_delay: Duration::from_millis(1200),
        ..config()
    };
    let (store, engine, _link) = engine_behind_link(dev, &server.url(), 0.0, 1, timing).await;
    let id = store.create(templates::example(Kind::Complaint)).unwrap();
    engine.local_write();
    for i in 0..15 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        store.add_note(&id, &format!("catatan {i}"), false).unwrap();
        engine.local_write();
    }
    // Three seconds of writes, never 800 ms apart: the max delay synced.
    assert!(engine.status().syncs >= 1, "{:?}", engine.status());
    wait_for("the last writes", || store.pending_count().unwrap() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_is_retried_without_a_new_write_and_nothing_runs_offline() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dev = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await;
    // The link is down for its first hour of virtual time.
    let (store, engine, link) = engine_behind_link(dev, &server.url(), 3600.0, 2, config()).await;
    store.create(templates::example(Kind::KtpEl)).unwrap();
    engine.local_write();
    wait_for("failures", || engine.status().consecutive_failures >= 2).await;
    assert!(engine.status().last_error.is_some());
    // The link comes back; no new write: the engine retries on its own.
    link.advance(3600.0);
    wait_for("the retry", || engine.status().syncs >= 1).await;
    assert_eq!(store.pending_count().unwrap(), 0);
    assert_eq!(engine.status().consecutive_failures, 0);

    // Offline by the platform's word: writes wait, nothing is tried.
    engine.connectivity_changed(false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let attempts = link.stats().snapshot()[2];
    store.create(templates::example(Kind::KtpEl)).unwrap();
    engine.local_write();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        link.stats().snapshot()[2],
        attempts,
        "nothing tried while offline"
    );
    assert!(!engine.status().online);
    engine.connectivity_changed(true);
    wait_for("the sync after coming online", || {
        engine.status().syncs >= 2
    })
    .await;
    assert_eq!(store.pending_count().unwrap(), 0);

    // Dropped, it stops.
    drop(engine);
    store.create(templates::example(Kind::KtpEl)).unwrap();
    let attempts = link.stats().snapshot()[2];
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(link.stats().snapshot()[2], attempts);
    assert_eq!(
        store.pending_count().unwrap(),
        1,
        "the write is kept for the next engine"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_retrying_cannot_fix_waits_for_the_next_trigger() {
    // Enrolled with one server, pointed at another that does not know it:
    // `unknown_device` — enrolling again fixes it, retrying does not.
    let first = TestServer::start().await;
    let other = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dev = first
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let (store, engine, link) = engine_behind_link(dev, &other.url(), 0.0, 3, config()).await;
    store.create(templates::example(Kind::KtpEl)).unwrap();
    engine.local_write();
    wait_for("the failure", || engine.status().consecutive_failures >= 1).await;
    assert!(engine.status().last_error.unwrap().contains("not enrolled"));
    // Several maximum backoffs later, still one attempt.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(link.stats().snapshot()[2], 1, "no retry loop");
    // An explicit trigger tries again.
    engine.sync_now();
    wait_for("the second attempt", || {
        engine.status().consecutive_failures >= 2
    })
    .await;
    assert_eq!(link.stats().snapshot()[2], 2);
    assert_eq!(store.pending_count().unwrap(), 1, "nothing lost");
}
