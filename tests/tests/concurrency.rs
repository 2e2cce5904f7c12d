//! Many devices exchanging at the same moment, all touching one document:
//! the database serialises the merges, nothing is lost, everyone converges.

use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::templates;
use sambung_e2e::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exchanges_on_one_document_merge() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let id = resident
        .store
        .create(templates::example(Kind::Complaint))
        .unwrap();
    resident.store.submit(&id).unwrap();
    resident.sync_until_ok(3).await;
    let mut officers = Vec::new();
    for i in 0..8 {
        let user = format!("petugas-{i}");
        let d = server
            .device(
                &home.path().join(&user),
                Role::Officer,
                &user,
                &["32.73"],
                None,
            )
            .await;
        d.sync_until_ok(3).await;
        officers.push(d);
    }
    // Everyone edits the same request offline...
    for (i, o) in officers.iter().enumerate() {
        for n in 0..3 {
            o.store
                .add_note(&id, &format!("catatan {n} dari petugas {i}"), false)
                .unwrap();
        }
    }
    resident.store.add_note(&id, "terima kasih", false).unwrap();
    // ...and all sync at once.
    let results = futures::future::join_all(
        officers
            .iter()
            .chain(std::iter::once(&resident))
            .map(|d| d.sync()),
    )
    .await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    // Quiet rounds to pull what the others pushed.
    for d in officers.iter().chain(std::iter::once(&resident)) {
        d.sync_until_ok(3).await;
    }
    let expected = resident.store.get(&id).unwrap();
    assert_eq!(expected.notes.len(), 8 * 3 + 1);
    for o in &officers {
        assert_eq!(o.store.get(&id).unwrap(), expected);
        assert_eq!(o.store.pending_count().unwrap(), 0);
    }
}
