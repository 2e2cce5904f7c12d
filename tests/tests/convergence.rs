//! Two residents and two officers with overlapping regions edit offline and
//! sync in random orders over a link that drops and duplicates exchanges:
//! everyone converges, nobody sees what they may not, nothing is lost or
//! doubled.

use std::collections::{BTreeMap, BTreeSet};

use sambung_core::identifiers::{Nik, RegionCode};
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::{Kind, Request, RequestContent, RequestId};
use sambung_core::templates;
use sambung_e2e::{Device, Rng, TestServer, faulty_link};

const NIK_R1: &str = "3273014108900007"; // the templates' applicant
const NIK_R2: &str = "3301015507920003";

fn content(kind: Kind, region: &str, applicant_nik: &str) -> RequestContent {
    let mut c = templates::example(kind);
    c.region = RegionCode::from(region);
    if let Some(a) = &mut c.applicant {
        a.nik = Nik::from(applicant_nik);
        a.birth_date = None;
        a.sex = None;
    }
    c
}

fn requests(d: &Device) -> BTreeMap<RequestId, Request> {
    d.ids()
        .into_iter()
        .map(|id| (id.clone(), d.store.get(&id).unwrap()))
        .collect()
}

async fn scenario(seed: u64) {
    let server = TestServer::start().await;
    let (link, sim) = faulty_link(&server.url(), seed).await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let r1 = server
        .device(dirs[0].path(), Role::Resident, "warga-1", &[], Some(NIK_R1))
        .await;
    let r2 = server
        .device(dirs[1].path(), Role::Resident, "warga-2", &[], Some(NIK_R2))
        .await;
    let o1 = server
        .device(dirs[2].path(), Role::Officer, "petugas-1", &["32.73"], None)
        .await;
    let o2 = server
        .device(
            dirs[3].path(),
            Role::Officer,
            "petugas-2",
            &["32.73.01", "33"],
            None,
        )
        .await;
    // Enrollment went direct; from here on every exchange crosses the faulty link.
    let devices = [r1, r2, o1, o2].map(|mut d| {
        d.client = sambung_core::sync::Client::new(&link, &d.config).unwrap();
        d
    });
    let [r1, r2, o1, o2] = &devices;

    // Offline filings.
    let a = r1
        .store
        .create(content(Kind::Complaint, "32.73.01.1001", NIK_R1))
        .unwrap(); // o1, o2
    let b = r1
        .store
        .create(content(Kind::PbbReduction, "32.73.02.1001", NIK_R1))
        .unwrap(); // o1
    let c = r2
        .store
        .create(content(Kind::KtpEl, "33.01.01.2001", NIK_R2))
        .unwrap(); // o2
    // An officer files on r1's behalf during a visit: r1 must receive it.
    let d = o1
        .store
        .create(content(Kind::VehicleTax, "32.73.03.1001", NIK_R1))
        .unwrap(); // o1, r1
    for (dev, id) in [(r1, &a), (r1, &b), (r2, &c), (o1, &d)] {
        dev.store.submit(id).unwrap();
    }

    // Random interleaving of syncs and offline edits.
    let mut rng = Rng::new(seed);
    let mut notes_written: BTreeMap<RequestId, usize> = BTreeMap::new();
    for step in 0..40 {
        let who = rng.below(4) as usize;
        let dev = &devices[who];
        if rng.below(2) == 0 {
            let _ = dev.sync().await; // may fail on the faulty link
            continue;
        }
        let visible: Vec<RequestId> = dev.ids().into_iter().collect();
        if visible.is_empty() {
            continue;
        }
        let id = &visible[rng.below(visible.len() as u64) as usize];
        match rng.below(3) {
            0 | 1 => {
                dev.store
                    .add_note(id, &format!("catatan {step} dari {}", dev.user), false)
                    .unwrap();
                *notes_written.entry(id.clone()).or_default() += 1;
            }
            _ => {
                let to = if dev.store.identity().role == Role::Officer {
                    Status::Received
                } else {
                    Status::Withdrawn
                };
                let _ = dev.store.transition(id, to, None); // may be not allowed now: fine
            }
        }
    }

    // The link heals: everyone syncs until quiet, twice round.
    for _ in 0..2 {
        for dev in &devices {
            dev.sync_until_ok(50).await;
        }
    }

    // Scope: exactly what each account may see.
    let expect =
        |v: &[&RequestId]| -> BTreeSet<RequestId> { v.iter().map(|i| (*i).clone()).collect() };
    assert_eq!(r1.ids(), expect(&[&a, &b, &d]), "resident 1");
    assert_eq!(r2.ids(), expect(&[&c]), "resident 2");
    assert_eq!(o1.ids(), expect(&[&a, &b, &d]), "officer 1 (32.73)");
    assert_eq!(o2.ids(), expect(&[&a, &c]), "officer 2 (32.73.01, 33)");

    // Convergence: every copy of a request is the same request.
    let all: Vec<BTreeMap<RequestId, Request>> = devices.iter().map(requests).collect();
    for id in [&a, &b, &c, &d] {
        let copies: Vec<&Request> = all.iter().filter_map(|m| m.get(id)).collect();
        assert!(copies.len() >= 2, "{id} is on at least two devices");
        for copy in &copies {
            assert_eq!(*copy, copies[0], "copies of {id} differ (seed {seed})");
        }
        // Nothing lost, nothing doubled.
        assert_eq!(
            copies[0].notes.len(),
            notes_written.get(id).copied().unwrap_or(0),
            "notes of {id} (seed {seed})"
        );
        let mut note_ids: Vec<&str> = copies[0].notes.iter().map(|n| n.id.as_str()).collect();
        note_ids.sort();
        note_ids.dedup();
        assert_eq!(note_ids.len(), copies[0].notes.len());
    }
    for dev in &devices {
        assert_eq!(
            dev.store.pending_count().unwrap(),
            0,
            "{} has unsynced changes left",
            dev.user
        );
    }
    let [_, _, attempts, _, lost_req, lost_resp, dup, _, _] = sim.stats().snapshot();
    assert!(
        lost_req + lost_resp + dup > 0,
        "the link injected no fault (seed {seed})"
    );
    let written: usize = notes_written.values().sum();
    eprintln!(
        "seed {seed}: {written} notes offline; {attempts} exchanges, {lost_req} requests lost, {lost_resp} responses lost, {dup} duplicated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_converges_over_a_faulty_link() {
    for seed in [1u64, 7, 42, 2026, 31337] {
        scenario(seed).await;
    }
}
