//! Large batches split into exchanges under the byte budget, with progress
//! after each; a sync cancelled mid-way (its future dropped) loses nothing.

use std::time::Duration;

use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::sync::{Client, SyncConfig, SyncSummary};
use sambung_core::templates;
use sambung_e2e::TestServer;

const BUDGET: usize = 4 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_batch_goes_in_exchanges_under_the_budget_with_progress() {
    let server = TestServer::start().await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut resident = server
        .device(d1.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let mut officer = server
        .device(d2.path(), Role::Officer, "petugas-1", &["32.73"], None)
        .await;
    for d in [&mut resident, &mut officer] {
        d.config.budget_bytes = BUDGET;
    }
    // Submitted (drafts stay with their writer), of every kind that needs
    // no attachment to be submitted.
    let kinds = sambung_e2e::kinds_without_required_attachments();
    for i in 0..80 {
        let mut c = templates::example(kinds[i % kinds.len()]);
        c.region = RegionCode::from("32.73.01.1001");
        let id = resident.store.create(c).unwrap();
        resident.store.submit(&id).unwrap();
    }

    let mut seen: Vec<SyncSummary> = Vec::new();
    let summary = resident
        .client
        .sync(&resident.store, &resident.config, |s| seen.push(s.clone()))
        .await
        .unwrap();
    assert!(summary.round_trips > 1, "{summary:?}");
    assert_eq!(summary.pushed, 80);
    assert_eq!(resident.store.pending_count().unwrap(), 0);
    assert_eq!(server.log_len(), 80);
    // Progress after every exchange, growing; no request body over the
    // budget.
    assert_eq!(seen.len(), summary.round_trips as usize);
    let mut up = 0;
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.round_trips as usize, i + 1);
        let body = s.bytes_up - up;
        assert!(body as usize <= BUDGET, "exchange {i}: {body} B");
        up = s.bytes_up;
    }
    assert_eq!(seen.last().unwrap(), &summary);

    // Pulling them: the server stops at the budget and says `more`.
    let mut seen: Vec<SyncSummary> = Vec::new();
    let summary = officer
        .client
        .sync(&officer.store, &officer.config, |s| seen.push(s.clone()))
        .await
        .unwrap();
    assert!(summary.round_trips > 1, "{summary:?}");
    assert_eq!(summary.pulled, 80);
    assert_eq!(seen.len(), summary.round_trips as usize);
    let mut down = 0;
    for s in &seen {
        // A response may pass the budget by at most one document (a
        // document larger than the budget still has to travel).
        assert!(((s.bytes_down - down) as usize) < 2 * BUDGET);
        down = s.bytes_down;
    }
    assert_eq!(officer.store.list(&Default::default()).unwrap().len(), 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_sync_loses_nothing() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dev = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let id = dev
        .store
        .create(templates::example(Kind::Complaint))
        .unwrap();
    // A server that accepts the connection and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s);
        }
    });
    let client = Client::new(&silent_url, &SyncConfig::default()).unwrap();
    let sync = client.sync(&dev.store, &dev.config, |_| {});
    // Cancelled by dropping the future, as a UI's cancel button does.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sync)
            .await
            .is_err()
    );
    assert_eq!(dev.store.pending_count().unwrap(), 1);
    assert!(dev.store.get(&id).is_ok());
    dev.store.integrity_check().unwrap();
    // The next sync, to the real server, delivers it.
    let summary = dev.sync().await.unwrap();
    assert_eq!(summary.pushed, 1);
    assert_eq!(dev.store.pending_count().unwrap(), 0);
    hold.abort();
}
