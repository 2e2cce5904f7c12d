//! Read replicas: a server sends its read-only work to a real PostgreSQL
//! streaming standby (made with `pg_basebackup` by `scripts/test`), and
//! its writes to the primary. A lagging replica (its replay paused) never
//! moves a device's cursor backwards, never resets it, and never hides
//! from the back office what it just wrote; once it catches up, devices
//! receive the rest. These run against PostgreSQL in every pass of the
//! test command (there is no SQLite form of a replica).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::Role;
use sambung_core::model::{AttachmentRole, Kind, RequestId};
use sambung_core::protocol::SyncRequest;
use sambung_core::templates;
use sambung_e2e::{Agency, Device, RawDevice, Replication, TestServer, noise, sha256_hex};
use sambung_server::storage::{PostgresStorage, Replicated, Storage};

/// The replica's storage, once the standby has replayed the new database
/// (it cannot be connected to before).
async fn replica(rep: &Replication) -> Arc<dyn Storage> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = rep.standby_url.clone();
        match tokio::task::spawn_blocking(move || PostgresStorage::connect_replica(&url))
            .await
            .unwrap()
        {
            Ok(s) => return Arc::new(s),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the standby never served the database: {e}"),
        }
    }
}

/// Waits until the replica has replayed the primary's whole log.
async fn caught_up(primary: &dyn Storage, replica: &dyn Storage) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while replica.log_head().unwrap() < primary.log_head().unwrap() {
        assert!(Instant::now() < deadline, "the standby did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn file(device: &Device, n: usize) -> Vec<RequestId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let mut c = templates::example(Kind::Complaint);
        c.region = RegionCode::from("32.73.01.1001");
        let id = device.store.create(c).unwrap();
        device.store.submit(&id).unwrap();
        ids.push(id);
    }
    device.sync_until_ok(5).await;
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_replica_serves_reads_without_going_back_in_time() {
    let rep = Replication::fresh().await;
    let primary = rep.db.open();
    let replica = replica(&rep).await;
    let routed = Arc::new(Replicated::new(primary.clone(), vec![replica.clone()]));
    let server = TestServer::start_with_storage(&rep.db, routed.clone()).await;
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
    let first = file(&resident, 5).await;
    caught_up(primary.as_ref(), replica.as_ref()).await;
    let (_, by_replica) = routed.served_counts();
    officer.sync().await.unwrap();
    assert_eq!(officer.ids(), first.iter().cloned().collect());
    assert!(
        routed.served_counts().1 > by_replica,
        "the officer's pull was read on the replica"
    );
    let officer_cursor = officer.store.cursor().unwrap();

    // The replica stops replaying; the resident files three more.
    rep.standby_sql("SELECT pg_wal_replay_pause()").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while rep
        .standby_sql("SELECT pg_get_wal_replay_pause_state()")
        .await
        != ["paused"]
    {
        assert!(Instant::now() < deadline, "replay did not pause");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let later = file(&resident, 3).await;
    let replica_head = replica.log_head().unwrap();
    assert!(
        replica_head < primary.log_head().unwrap(),
        "the replica lags"
    );

    // A new phone of the officer pulls from the replica: what it has
    // replayed, no more — its cursor where the replica stands.
    let second = Device::enroll(
        &home.path().join("o2"),
        &server.url(),
        &server.code(Role::Officer, "petugas-1", &["32.73"], None),
        Role::Officer,
        "petugas-1",
    )
    .await;
    second.sync().await.unwrap();
    assert_eq!(second.ids(), first.iter().cloned().collect());
    assert_eq!(second.store.cursor().unwrap().0, replica_head);
    // The first phone is where the replica is: nothing new, nothing lost,
    // its cursor unmoved.
    officer.sync().await.unwrap();
    assert_eq!(officer.store.cursor().unwrap(), officer_cursor);

    // A device whose cursor is past the replica (given by the primary)
    // is answered by the primary: not reset, not moved back.
    let log = primary.log_since(0, 1000).unwrap();
    let newest = log.last().unwrap();
    let (primary_reads, _) = routed.served_counts();
    let answer = RawDevice::of(&server.url(), &second)
        .send(&SyncRequest {
            cursor: newest.seq,
            cursor_tag: sambung_server::storage::log_tag(&newest.heads),
            push: vec![],
            repair: vec![],
            max_response_bytes: 65536,
            catalog: 0,
        })
        .await;
    assert!(
        !answer.reset,
        "a cursor the replica lacks is not a foreign one"
    );
    assert!(answer.cursor >= newest.seq);
    assert!(routed.served_counts().0 > primary_reads);

    // The back office reads what was just written, though the replica
    // lags: the listing comes from the primary.
    let agency = Agency::enroll(&server, "dinas", &[]).await;
    let listed = agency
        .call("GET", "/v1/agency/requests?limit=100", None, None)
        .await;
    assert_eq!(listed.status, 200);
    let ids: BTreeSet<String> = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let all: BTreeSet<String> = first.iter().chain(&later).map(|i| i.to_string()).collect();
    assert_eq!(ids, all);

    // Replay resumes: the officer's phones receive the rest.
    rep.standby_sql("SELECT pg_wal_replay_resume()").await;
    caught_up(primary.as_ref(), replica.as_ref()).await;
    for phone in [&officer, &second] {
        let before = phone.store.cursor().unwrap().0;
        phone.sync().await.unwrap();
        assert!(phone.store.cursor().unwrap().0 >= before);
        assert_eq!(
            phone.ids(),
            first.iter().chain(&later).cloned().collect::<BTreeSet<_>>()
        );
    }

    // Downloads: bytes the replica holds whole come from it; bytes it has
    // not replayed yet, from the primary.
    let attach = |seed: u32| {
        let letter = noise(40_000, seed);
        let mut c = templates::example(Kind::Complaint);
        c.region = RegionCode::from("32.73.01.1001");
        let id = resident.store.create(c).unwrap();
        resident
            .store
            .attach(
                &id,
                AttachmentRole::SupportingDocument,
                "surat.pdf",
                "application/pdf",
                &letter[..],
            )
            .unwrap();
        resident.store.submit(&id).unwrap();
        let path = format!(
            "/v1/agency/requests/{id}/attachments/{}",
            sha256_hex(&letter)
        );
        (path, letter)
    };
    let (path, replayed) = attach(1);
    resident.sync_until_ok(5).await;
    caught_up(primary.as_ref(), replica.as_ref()).await;
    let by_replica = routed.served_counts().1;
    assert_eq!(agency.raw_get(&path, None).await, (200, replayed));
    assert!(
        routed.served_counts().1 > by_replica,
        "served by the replica"
    );
    rep.standby_sql("SELECT pg_wal_replay_pause()").await;
    while rep
        .standby_sql("SELECT pg_get_wal_replay_pause_state()")
        .await
        != ["paused"]
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (path, fresh) = attach(2);
    resident.sync_until_ok(5).await;
    let by_primary = routed.served_counts().0;
    assert_eq!(agency.raw_get(&path, None).await, (200, fresh));
    assert!(
        routed.served_counts().0 > by_primary,
        "served by the primary"
    );
    rep.standby_sql("SELECT pg_wal_replay_resume()").await;
}

/// `--replica` needs a PostgreSQL `--database`, and must be a URL: refused
/// with a clear error before anything is opened.
#[test]
fn replicas_without_a_postgres_primary_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_primary = sambung_server::storage::open_with_replicas(
        dir.path(),
        None,
        &["postgres://sambung@127.0.0.1:1/x".to_owned()],
    );
    assert!(
        matches!(&sqlite_primary, Err(sambung_server::ServerError::Config(m)) if m.contains("--database")),
        "{:?}",
        sqlite_primary.err()
    );
    let not_a_url = sambung_server::storage::open_with_replicas(
        dir.path(),
        Some("postgres://sambung@127.0.0.1:1/x"),
        &["replica.example".to_owned()],
    );
    assert!(
        matches!(&not_a_url, Err(sambung_server::ServerError::Config(m)) if m.contains("--replica")),
        "{:?}",
        not_a_url.err()
    );
}

/// A `--replica` that is not a standby of this server's database — its
/// schema is newer than this server knows — is refused at once, saying
/// what to give instead, rather than served from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_of_another_schema_is_refused() {
    let rep = Replication::fresh().await;
    let primary = rep.db.url().expect("a PostgreSQL database");
    sambung_e2e::admin_sql(
        &primary,
        &[
            "CREATE TABLE schema_version (version INTEGER NOT NULL)".to_owned(),
            "INSERT INTO schema_version VALUES (999)".to_owned(),
        ],
    )
    .await;
    // Until the standby has the new database, it cannot be connected to;
    // once it has it, a schema not yet replayed is waited for, so the
    // answer is the refusal of version 999.
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let url = rep.standby_url.clone();
        let opened = tokio::task::spawn_blocking(move || PostgresStorage::connect_replica(&url))
            .await
            .unwrap();
        match opened {
            Ok(_) => panic!("a replica of schema 999 was taken"),
            Err(sambung_server::ServerError::Config(m)) if m.contains("schema version") => break m,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "the standby never served it: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(refused.contains("999"), "{refused}");
    assert!(refused.contains("--database"), "{refused}");
}
