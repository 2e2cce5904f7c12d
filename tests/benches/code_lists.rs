//! Code lists on real data (issue 15): Kemendagri's 91,599 region codes
//! (`tests/data/regions-2025.csv.zst`, ODbL) published on a real server,
//! delivered to a phone's encrypted store, searched there:
//! `cargo bench -p sambung-e2e --bench code_lists`.
//!
//! - **Bytes on the wire**: the list's first delivery (every part, every
//!   exchange's bytes as the phone counts them) against the list's JSON at
//!   zstd -19; a yearly update (60 villages renamed, 25 merged away, 40
//!   new) as the delta the phone receives, against the new version's JSON
//!   at zstd -19 (what a re-download would cost at best) and against the
//!   changes alone as JSON at zstd -19 (the floor of any delta).
//! - **Search** (`search/*`): `Store::search_codes` for what a resident
//!   types — a whole village name, two word starts, a two-letter start
//!   (tens of thousands of matches, answered in list order), a three-letter
//!   start (the worst case ranked: every "Sungai" of the country), a
//!   district's code prefix — beside `scan/*`: the same question answered by a linear scan
//!   of the list in memory (what an app without the index does). Goal:
//!   ≤ 5 ms per search.
//!
//! Without `--bench` (as `cargo test` runs it) the list is Aceh's alone
//! (6,500 codes) and each benchmark runs once.

#[path = "../../core/benches/support/mod.rs"]
mod support;

use criterion::Criterion;
use sambung_core::catalog::codes::{self, Code, CodeList};
use sambung_core::lifecycle::Role;
use sambung_core::store::Store;
use sambung_e2e::regions::{regions, store_bytes, yearly_update};
use sambung_e2e::{Agency, TestServer};
use support::{full_run, median_ns, verdict};

fn floor(json: &[u8]) -> u64 {
    zstd::bulk::compress(json, 19).expect("zstd").len() as u64
}

struct Wire {
    codes: usize,
    /// The phone's store files before and after the list.
    store_bytes: (u64, u64),
    first: (u64, u32),
    first_floor: u64,
    delta: (u64, u32),
    changes: usize,
    v2_floor: u64,
    changes_floor: u64,
}

/// Publishes both versions on a real server and syncs a phone after each.
fn delivered(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    full: bool,
) -> (Wire, Store, CodeList) {
    let v1 = regions(if full { "" } else { "11" });
    let v2 = yearly_update(&v1);
    rt.block_on(async {
        let server = TestServer::start().await;
        let phone = server
            .device(dir, Role::Resident, "warga-1", &[], None)
            .await;
        let agency = Agency::enroll(&server, "diskominfo", &[]).await;
        phone.sync_until_ok(3).await;
        let before = store_bytes(dir);
        let v1_json = serde_json::to_vec(&v1).expect("json");
        let p = agency
            .call_raw("POST", "/v1/agency/catalog", &v1_json)
            .await;
        assert_eq!(p.status, 201, "{}", p.json);
        let first = phone.sync_until_ok(3).await;
        assert!(first.code_parts > 0, "{first:?}");
        let after = store_bytes(dir);
        let v2_json = serde_json::to_vec(&v2).expect("json");
        let p = agency
            .call_raw("POST", "/v1/agency/catalog", &v2_json)
            .await;
        assert_eq!(p.status, 201, "{}", p.json);
        let delta = phone.sync_until_ok(3).await;
        assert_eq!(phone.store.code_lists().unwrap()[0].version, 2);
        // The changes alone, as JSON: what any delta must carry.
        let held = v1
            .codes
            .iter()
            .map(|c| (c.code.clone(), c.clone()))
            .collect();
        let parts = codes::parts(&held, 1, &v2);
        let changes = parts.iter().map(|p| p.set.len() + p.remove.len()).sum();
        let changes_json = serde_json::to_vec(&parts).expect("json");
        let wire = Wire {
            codes: v1.codes.len(),
            store_bytes: (before, after),
            first: (first.bytes_down + first.bytes_up, first.round_trips),
            first_floor: floor(&v1_json),
            delta: (delta.bytes_down + delta.bytes_up, delta.round_trips),
            changes,
            v2_floor: floor(&v2_json),
            changes_floor: floor(&changes_json),
        };
        (wire, phone.store, v2)
    })
}

/// What a resident types, and how an app without the index answers it.
const QUERIES: &[(&str, &str)] = &[
    ("village_name", "keude bakongan"),
    ("two_word_starts", "sung ray"),
    ("two_letters", "ka"),
    ("three_letters", "sun"),
    ("district_prefix", "11.01.01"),
];

fn scan<'a>(list: &'a [Code], query: &str) -> Vec<&'a Code> {
    let words: Vec<String> = query.split(' ').map(str::to_lowercase).collect();
    let code_like = query.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let mut found: Vec<&Code> = list
        .iter()
        .filter(|c| {
            if code_like {
                return c.code.starts_with(query);
            }
            let name = c.name.to_lowercase();
            let name_words: Vec<&str> = name.split(|ch: char| !ch.is_alphanumeric()).collect();
            words
                .iter()
                .all(|w| name_words.iter().any(|n| n.starts_with(w.as_str())))
        })
        .collect();
    found.truncate(20);
    found
}

fn main() {
    support::start();
    let full = full_run();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let (wire, store, list) = delivered(&rt, dir.path(), full);
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("code_lists");
    for (name, query) in QUERIES {
        let found = store.search_codes("regions", query, 20).expect("search");
        assert!(!found.is_empty(), "{query} finds nothing");
        assert!(!scan(&list.codes, query).is_empty());
        g.bench_function(format!("search/{name}"), |b| {
            b.iter(|| store.search_codes("regions", query, 20).expect("search"))
        });
        g.bench_function(format!("scan/{name}"), |b| {
            b.iter(|| scan(&list.codes, query).len())
        });
    }
    g.finish();
    c.final_summary();

    println!(
        "\ncode list `regions` ({} codes): first delivery {} B in {} exchange(s), the list's JSON at zstd -19 {} B ({:.2}x)",
        wire.codes,
        wire.first.0,
        wire.first.1,
        wire.first_floor,
        wire.first.0 as f64 / wire.first_floor as f64
    );
    println!(
        "the phone's store: {} B before the list, {} B after ({:.1} MB for the list, its index and word index)",
        wire.store_bytes.0,
        wire.store_bytes.1,
        (wire.store_bytes.1.saturating_sub(wire.store_bytes.0)) as f64 / 1e6
    );
    println!(
        "yearly update ({} changes): {} B in {} exchange(s); version 2 whole at zstd -19 {} B ({:.3}x of it); the changes alone at zstd -19 {} B ({:.2}x)",
        wire.changes,
        wire.delta.0,
        wire.delta.1,
        wire.v2_floor,
        wire.delta.0 as f64 / wire.v2_floor as f64,
        wire.changes_floor,
        wire.delta.0 as f64 / wire.changes_floor as f64
    );
    for (name, query) in QUERIES {
        let (Some(s), Some(l)) = (
            median_ns("code_lists", &format!("search_{name}")),
            median_ns("code_lists", &format!("scan_{name}")),
        ) else {
            continue;
        };
        println!(
            "search {query:?}: {:.3} ms, a scan in memory {:.3} ms ({:.2}x); ≤ 5 ms: {}",
            s / 1e6,
            l / 1e6,
            s / l,
            verdict(s <= 5e6)
        );
    }
}
