//! Assignment: the back office assigns a request to a field officer, who
//! then syncs it whatever its region — and drops it once it is
//! unassigned. Nobody but the agency may assign.

use sambung_core::Error;
use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::templates;
use sambung_e2e::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assigned_officer_syncs_the_request_and_only_the_agency_assigns() {
    let server = TestServer::start().await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let resident = server
        .device(dirs[0].path(), Role::Resident, "warga-1", &[], None)
        .await;
    let local = server
        .device(dirs[1].path(), Role::Officer, "petugas-1", &["32.73"], None)
        .await;
    // An officer from another regency, sent to help.
    let visiting = server
        .device(dirs[2].path(), Role::Officer, "petugas-2", &["33.01"], None)
        .await;
    let agency = server
        .device(dirs[3].path(), Role::Agency, "dinas", &[], None)
        .await;

    let mut content = templates::example(Kind::Complaint);
    content.region = RegionCode::from("32.73.01.1001");
    let id = resident.store.create(content).unwrap();
    resident.store.submit(&id).unwrap();
    resident.sync().await.unwrap();
    visiting.sync().await.unwrap();
    assert!(visiting.store.get(&id).is_err(), "outside their region");

    // Only the agency assigns — checked on the device before writing.
    for (who, d) in [("resident", &resident), ("officer", &local)] {
        assert!(
            matches!(
                d.store.assign(&id, Some("petugas-2")),
                Err(Error::Forbidden(_))
            ),
            "{who}"
        );
    }
    agency.sync().await.unwrap();
    assert!(matches!(
        agency.store.assign(&id, Some("  ")),
        Err(Error::Validation(_))
    ));
    agency.store.assign(&id, Some("petugas-2")).unwrap();
    agency.sync().await.unwrap();

    visiting.sync().await.unwrap();
    let seen = visiting.store.get(&id).unwrap();
    assert_eq!(seen.assignee.as_deref(), Some("petugas-2"));
    assert_eq!(seen.content.region, RegionCode::from("32.73.01.1001"));
    // The visiting officer works on it; everyone converges.
    visiting
        .store
        .add_note(&id, "sudah dikunjungi", false)
        .unwrap();
    visiting.sync().await.unwrap();
    for d in [&resident, &local, &agency] {
        d.sync().await.unwrap();
        assert_eq!(d.store.get(&id).unwrap(), visiting.store.get(&id).unwrap());
    }

    // Unassigned: the visiting officer is told, and its copy (nothing in
    // it unsynced) is dropped; later changes never reach it.
    agency.store.assign(&id, None).unwrap();
    agency.sync().await.unwrap();
    local.sync().await.unwrap();
    local
        .store
        .add_note(&id, "ditangani petugas lokal", false)
        .unwrap();
    local.sync().await.unwrap();
    let summary = visiting.sync().await.unwrap();
    assert_eq!(summary.forgotten, 1, "{summary:?}");
    assert!(visiting.store.get(&id).is_err(), "dropped");
    visiting.sync().await.unwrap();
    assert!(visiting.store.get(&id).is_err(), "and never sent again");
    // (An officer holding unsynced work on a request taken from it keeps
    // it, and its push is refused: tests/tests/scope_changes.rs.)
}
