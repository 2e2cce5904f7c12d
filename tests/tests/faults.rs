//! A flapping link — short outages every few seconds (the proxy answers 503
//! while the link is down), lost requests and responses, duplicates —
//! across many seeds: every sync ends within a bounded number of attempts,
//! nothing is lost, and nothing reaches the server twice.

use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::templates;
use sambung_e2e::{Profile, TestServer};

const REQUESTS: usize = 60;
/// Attempts (HTTP exchanges through the link) one seed may take at most.
const BOUND: u64 = 60;

fn flapping() -> Profile {
    Profile {
        name: "flapping",
        rtt_s: 0.3,
        down_bps: 200_000.0,
        up_bps: 100_000.0,
        loss_percent: 25.0,
        duplicate_percent: 20.0,
        // Down 2 s of every 5.
        outage: Some((2.0, 5.0)),
        ..Profile::lossless()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_link_converges_within_bounds_exactly_once_across_seeds() {
    let mut faults = 0;
    for seed in 1..=12u64 {
        let server = TestServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut dev = server
            .device(dir.path(), Role::Resident, "warga-1", &[], None)
            .await;
        let (url, link) = sambung_linksim::start(&server.url(), flapping(), seed).await;
        dev.client = sambung_core::sync::Client::new(&url, &dev.config).unwrap();
        // Small exchanges, so a sync takes several and faults land between.
        dev.config.budget_bytes = 4096;
        for i in 0..REQUESTS {
            dev.store
                .create(templates::example(Kind::ALL[i % Kind::ALL.len()]))
                .unwrap();
        }
        let mut tries = 0;
        while dev.store.pending_count().unwrap() > 0 {
            tries += 1;
            assert!(tries <= 30, "seed {seed}: no end after {tries} syncs");
            let _ = dev.sync().await;
        }
        let attempts = link.stats().snapshot()[2];
        assert!(attempts <= BOUND, "seed {seed}: {attempts} exchanges");
        // Exactly once: one log entry per request, whatever was retried or
        // duplicated.
        assert_eq!(server.log_len(), REQUESTS, "seed {seed}");
        let injected = link.stats().snapshot()[4..].iter().sum::<u64>();
        println!("seed {seed}: {tries} syncs, {attempts} exchanges, {injected} faults");
        faults += injected;
    }
    assert!(faults >= 12, "the link injected only {faults} faults");
}
