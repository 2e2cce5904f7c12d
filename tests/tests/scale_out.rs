//! Several servers on one database behave as one: devices spread across
//! three servers edit the same request and file new ones at the same
//! moment; the database serialises the merges and numbers the log in
//! commit order, so nothing is lost or doubled and every device converges,
//! whichever server it talks to. Runs on the backend under test (three
//! connections to one SQLite file, or three pools on one PostgreSQL
//! database when `SAMBUNG_TEST_POSTGRES` is set).

use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::templates;
use sambung_e2e::{TestDb, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_on_one_database_act_as_one() {
    let db = TestDb::fresh().await;
    let servers = vec![
        TestServer::start_on(&db).await,
        TestServer::start_on(&db).await,
        TestServer::start_on(&db).await,
    ];
    let home = tempfile::tempdir().unwrap();
    let resident = servers[0]
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let id = resident
        .store
        .create(templates::example(Kind::Complaint))
        .unwrap();
    resident.store.submit(&id).unwrap();
    resident.sync_until_ok(3).await;
    let mut officers = Vec::new();
    for i in 0..9 {
        let user = format!("petugas-{i}");
        // Enrolled through one server, syncing through another.
        let d = servers[i % 3]
            .device(
                &home.path().join(&user),
                Role::Officer,
                &user,
                &["32.73"],
                None,
            )
            .await;
        let d = sambung_e2e::Device::open(
            &home.path().join(&user),
            &servers[(i + 1) % 3].url(),
            d.key,
            &user,
        );
        d.sync_until_ok(3).await;
        officers.push(d);
    }
    // Offline: each officer adds notes to the shared request and files a
    // new one.
    for (i, o) in officers.iter().enumerate() {
        for n in 0..3 {
            o.store
                .add_note(&id, &format!("catatan {n} dari petugas {i}"), false)
                .unwrap();
        }
        let mine = o
            .store
            .create(templates::example(Kind::PbbReduction))
            .unwrap();
        o.store.submit(&mine).unwrap();
    }
    resident.store.add_note(&id, "terima kasih", false).unwrap();
    let everyone: Vec<&sambung_e2e::Device> =
        officers.iter().chain(std::iter::once(&resident)).collect();
    let results = futures::future::join_all(everyone.iter().map(|d| d.sync())).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    for d in &everyone {
        d.sync_until_ok(3).await;
    }

    let expected = resident.store.get(&id).unwrap();
    assert_eq!(expected.notes.len(), 9 * 3 + 1, "no note lost");
    let all_ids = officers[0].ids();
    assert_eq!(all_ids.len(), 1 + 9, "every new request on every officer");
    for o in &officers {
        assert_eq!(o.store.get(&id).unwrap(), expected);
        assert_eq!(o.ids(), all_ids);
        assert_eq!(o.store.pending_count().unwrap(), 0);
    }
    // One log, seen the same through each server, strictly ordered, and
    // each change in it once: the shared request's notes arrived in one
    // entry per pushing device at most (no entry repeated).
    let logs: Vec<Vec<(u64, Vec<u8>)>> = servers
        .iter()
        .map(|s| {
            s.state
                .storage()
                .log_since(0, 100_000)
                .unwrap()
                .into_iter()
                .map(|e| (e.seq, e.heads))
                .collect()
        })
        .collect();
    assert_eq!(logs[0], logs[1]);
    assert_eq!(logs[1], logs[2]);
    assert!(logs[0].windows(2).all(|w| w[0].0 < w[1].0));
    let mut heads: Vec<&Vec<u8>> = logs[0].iter().map(|(_, h)| h).collect();
    let n = heads.len();
    heads.sort();
    heads.dedup();
    assert_eq!(heads.len(), n, "no document state logged twice");
    for s in servers {
        s.stop().await;
    }
}
