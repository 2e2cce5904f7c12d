//! The server's own work per exchange, without HTTP and without devices,
//! on a real SQLite file: `cargo bench -p sambung-e2e --bench server`.
//! (`scripts/load` measures the whole system, both backends.)
//!
//! - `pull/scoped/N`: an officer whose region holds 20 requests pulls them
//!   from a fresh cursor while the log holds N entries of other regions,
//!   beside `pull/whole_log/N`: the same pull as it was before the scope
//!   index — every entry of the log read and filtered by the account's
//!   scope (over as many exchanges as the log took).
//!   Goal (issue 16): the scoped pull takes the same time at N = 200,000
//!   as at N = 2,000; the ratios are printed.
//! - `filing/20`: one exchange pushing 20 realistic complaints filed
//!   offline (created and submitted) into a fresh store, beside
//!   `filing/automerge_floor`: Automerge alone loading and saving the same
//!   20 documents — the least any server does with them.
//!
//! Without `--bench` (as `cargo test` runs it) the logs hold 200 and 2,000
//! entries and each benchmark runs once.

use std::sync::Arc;
use std::time::Duration;

use automerge::AutoCommit;
use criterion::{BatchSize, Criterion};
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::protocol::{SyncRequest, decode};
use sambung_core::store::{Enrollment, Identity, Secret, Store};
use sambung_core::sync::SyncSession;
use sambung_e2e::corpus::{Corpus, Data};
use sambung_server::accounts::{Account, Draft, Scope};
use sambung_server::documents::{DocWrite, update_documents};
use sambung_server::exchange::{Caller, exchange};
use sambung_server::scope_index;
use sambung_server::storage::{Delivered, DocMeta, SqliteStorage, Storage, StoredDoc};

fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn nik_key() -> ring::hmac::Key {
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7; 32])
}

fn account(id: &str, role: Role, regions: &[&str]) -> Account {
    Account {
        id: id.into(),
        role,
        regions: regions.iter().map(|r| r.to_string()).collect(),
        nik_hash: None,
    }
}

fn caller(account: Account, device: [u8; 16]) -> Caller {
    Caller {
        device,
        account,
        exchange: [1; 16],
        push_only: false,
        catalog: std::sync::Arc::new(sambung_server::catalog::Loaded::builtin().unwrap()),
    }
}

/// A resident's device that filed `n` realistic complaints in `region`
/// offline, and the exchange it would send.
fn filed(dir: &std::path::Path, n: usize, region: &str, seed: u64) -> (Store, SyncRequest) {
    let mut store = Store::init(
        dir,
        &Secret::Key(sambung_core::crypto::DataKey::from_bytes([3; 32])),
        Identity {
            user: "warga-1".into(),
            role: Role::Resident,
        },
    )
    .unwrap();
    store
        .set_enrollment(&Enrollment {
            server: "https://sambung.example.go.id".into(),
            account: "warga-1".into(),
            role: Role::Resident,
            regions: Vec::new(),
            audience: "0123456789abcdef0123456789abcdef".into(),
            ca_roots: Vec::new(),
            pins: Vec::new(),
        })
        .unwrap();
    let mut corpus = Corpus::new(seed);
    for _ in 0..n {
        let mut content = Data::Realistic.request(&mut corpus, Kind::Complaint);
        content.region = region.into();
        let id = store.create(content).unwrap();
        store.submit(&id).unwrap();
    }
    let mut session = SyncSession::new(&store, 1 << 22).unwrap();
    let body = session.next_request(&store).unwrap();
    (store, decode(&body).unwrap())
}

/// A log of `others` entries of documents in other regions (each as large
/// as a real filed complaint), then `mine` complaints filed in the
/// officer's region through a real exchange.
fn log(dir: &std::path::Path, others: usize) -> Arc<SqliteStorage> {
    let storage = Arc::new(SqliteStorage::open(dir).unwrap());
    let device = tempfile::tempdir().unwrap();
    let (resident, request) = filed(device.path(), 20, "32.74.02.2001", 11);
    let whole = request.push[0].changes.clone();
    let scopes: Vec<Scope> = (0..others)
        .map(|i| Scope {
            region: format!("32.73.{:02}.{}", 1 + i % 30, 1001 + i % 9),
            owner: format!("warga-{}", 100 + i % 5000),
            applicant_nik_hash: Some(vec![(i % 251) as u8; 32]),
            assignee: None,
            draft: Draft::No,
        })
        .collect();
    // A thousand documents a transaction: the log fills in seconds.
    for start in (0..others).step_by(1000) {
        let ids: Vec<[u8; 16]> = (start..others.min(start + 1000))
            .map(|i| {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
                id[8] = 0xEE;
                id
            })
            .collect();
        update_documents(&*storage, &ids, &mut |k, _| {
            let i = start + k;
            let scope = &scopes[i];
            Ok(DocWrite::Write {
                scope_keys: scope_index::write_keys(None, scope),
                doc: StoredDoc {
                    data: whole.clone(),
                    scope: scope.clone(),
                    meta: DocMeta {
                        kind: "complaint".into(),
                        service: "complaint".into(),
                        status: "submitted".into(),
                        updated_at: 0,
                        location: None,
                        submitted_at: None,
                        definition: "complaint".into(),
                    },
                },
                heads: vec![(i % 256) as u8; 32],
                log_data: whole.clone(),
                device: [2; 16],
                changes: Vec::new(),
                delivery: Delivered {
                    account: scope.owner.clone(),
                    device: None,
                    exchange: None,
                    at: 0,
                },
                events: Vec::new(),
                replace: false,
                attachments: Vec::new(),
            })
        })
        .unwrap();
    }
    let resident = caller(
        account("warga-1", Role::Resident, &[]),
        resident.device_id(),
    );
    let answer = exchange(storage.as_ref(), &nik_key(), &resident, &request).unwrap();
    assert!(answer.response.acked_all, "the 20 complaints are taken");
    storage
}

/// The pull before the scope index, for `account`: every log entry after
/// the cursor read, 256 at a time, and kept when the account may see its
/// document (what `exchange` did, spread over as many exchanges as the log
/// took). The entries it keeps.
fn whole_log_pull(storage: &dyn Storage, account: &Account) -> usize {
    let (mut cursor, mut kept) = (0, 0);
    loop {
        let page = storage.log_since(cursor, 256).unwrap();
        kept += page.iter().filter(|e| account.may_see(&e.scope)).count();
        match page.last() {
            Some(e) if page.len() == 256 => cursor = e.seq,
            _ => return kept,
        }
    }
}

fn pull(c: &mut Criterion) {
    let sizes: &[usize] = if full() {
        &[2_000, 200_000]
    } else {
        &[200, 2_000]
    };
    let officer = caller(account("petugas-1", Role::Officer, &["32.74"]), [5; 16]);
    let request = SyncRequest {
        cursor: 0,
        cursor_tag: 0,
        push: Vec::new(),
        repair: Vec::new(),
        max_response_bytes: 1 << 20,
        catalog: 0,
    };
    let mut group = c.benchmark_group("pull");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    let mut dirs = Vec::new();
    for &n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let storage = log(dir.path(), n);
        let got = exchange(storage.as_ref(), &nik_key(), &officer, &request).unwrap();
        assert_eq!(got.response.pull.len(), 20, "the officer's 20, no more");
        assert_eq!(whole_log_pull(storage.as_ref(), &officer.account), 20);
        group.bench_function(format!("scoped/{n}"), |b| {
            b.iter(|| exchange(storage.as_ref(), &nik_key(), &officer, &request).unwrap())
        });
        group.bench_function(format!("whole_log/{n}"), |b| {
            b.iter(|| whole_log_pull(storage.as_ref(), &officer.account))
        });
        dirs.push((dir, storage));
    }
    group.finish();
}

fn filing(c: &mut Criterion) {
    let device = tempfile::tempdir().unwrap();
    let (resident, request) = filed(device.path(), 20, "32.73.01.1001", 5);
    let resident = caller(
        account("warga-1", Role::Resident, &[]),
        resident.device_id(),
    );
    let mut group = c.benchmark_group("filing");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("20", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let storage = SqliteStorage::open(dir.path()).unwrap();
                (dir, storage)
            },
            |(dir, storage)| {
                let answer = exchange(&storage, &nik_key(), &resident, &request).unwrap();
                assert!(answer.response.acked_all);
                (dir, storage)
            },
            BatchSize::PerIteration,
        )
    });
    // The check for fields beside the model (`unknown_fields`): a walk of
    // the whole document against the request reconciled anew, as an
    // exchange makes for every pushed document.
    let docs: Vec<(AutoCommit, sambung_core::model::Request)> = request
        .push
        .iter()
        .map(|push| {
            let mut doc = AutoCommit::new();
            doc.load_incremental(&push.changes).unwrap();
            let request = autosurgeon::hydrate(&doc).unwrap();
            (doc, request)
        })
        .collect();
    group.bench_function("unknown_fields", |b| {
        b.iter(|| {
            for (doc, request) in &docs {
                assert!(sambung_core::document::unknown_fields(doc, request).is_empty());
            }
        })
    });
    group.bench_function("automerge_floor", |b| {
        b.iter(|| {
            for push in &request.push {
                let mut doc = AutoCommit::new();
                doc.load_incremental(&push.changes).unwrap();
                std::hint::black_box(doc.save());
            }
        })
    });
    group.finish();
}

/// The medians, as ratios: the goals' numbers.
fn ratios() {
    // Criterion writes beside the binary's target folder
    // (`target/criterion`), whatever the working directory.
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.parent()?.join("criterion")))
    else {
        return;
    };
    let median = |group: &str, name: &str| -> Option<f64> {
        let text =
            std::fs::read_to_string(dir.join(group).join(name).join("new/estimates.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["median"]["point_estimate"].as_f64()
    };
    let sizes: &[usize] = if full() {
        &[2_000, 200_000]
    } else {
        &[200, 2_000]
    };
    let (small, large) = (sizes[0], sizes[1]);
    println!("\n== server work per exchange (medians)");
    for kind in ["scoped", "whole_log"] {
        if let (Some(a), Some(b)) = (
            median("pull", &format!("{kind}_{small}")),
            median("pull", &format!("{kind}_{large}")),
        ) {
            println!(
                "pull {kind:<9}: {:>9.0} µs at {small} entries, {:>9.0} µs at {large}: {:.2}× (goal for scoped: 1×)",
                a / 1e3,
                b / 1e3,
                b / a
            );
        }
    }
    if let (Some(s), Some(w)) = (
        median("pull", &format!("scoped_{large}")),
        median("pull", &format!("whole_log_{large}")),
    ) {
        println!(
            "at {large} entries the whole-log read takes {:.1}× the scoped pull",
            w / s
        );
    }
    if let (Some(f), Some(a)) = (median("filing", "20"), median("filing", "automerge_floor")) {
        println!(
            "filing: {:.0} µs a request, {:.1}× Automerge's own load and save ({:.0} µs)",
            f / 20e3,
            f / a,
            a / 20e3
        );
        if let Some(u) = median("filing", "unknown_fields") {
            println!(
                "of which the walk for fields beside the model: {:.0} µs a request ({:.1}% of filing)",
                u / 20e3,
                100.0 * u / f
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    pull(&mut c);
    filing(&mut c);
    c.final_summary();
    if full() {
        ratios();
    }
}
