//! Store benchmarks, each beside its baseline in the same run: a plain,
//! unencrypted rusqlite table holding the same request JSON, with the same
//! pragmas (WAL, synchronous = NORMAL).
//!
//! `cargo bench -p sambung-core --bench store` measures and prints the
//! ratios and goals; `cargo test --benches` runs every benchmark once on a
//! small store to keep them working.

mod support;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use rusqlite::{Connection, params};
use sambung_core::crypto::DataKey;
use sambung_core::document::RequestDoc;
use sambung_core::lifecycle::Role;
use sambung_core::model::{Kind, RequestId};
use sambung_core::store::{DB_FILE, Identity, ListFilter, Secret, Store};
use sambung_core::templates;
use support::{full_run, median_ns, output_dir, verdict};

/// Requests in the "many requests" store: 10,000 when measuring.
fn population() -> usize {
    if full_run() { 10_000 } else { 200 }
}

fn key() -> Secret {
    Secret::Key(DataKey::from_bytes([7; 32]))
}

fn me() -> Identity {
    Identity {
        user: "resident-bench".into(),
        role: Role::Resident,
    }
}

fn plain_db(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    let _: String = c
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    c.pragma_update(None, "synchronous", "NORMAL").unwrap();
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS requests (id BLOB PRIMARY KEY, kind TEXT, status TEXT, updated_at INTEGER, json TEXT);
         CREATE INDEX IF NOT EXISTS by_update ON requests (updated_at DESC);",
    )
    .unwrap();
    c
}

fn plain_insert(c: &Connection, json: &str, n: i64) {
    c.execute(
        "INSERT INTO requests (id, kind, status, updated_at, json) VALUES (?1, 'ktp_el', 'submitted', ?2, ?3)",
        params![RequestId::random().to_bytes().unwrap().as_slice(), n, json],
    )
    .unwrap();
}

/// The mix of kinds a store holds: every kind in turn.
fn content(i: usize) -> sambung_core::model::RequestContent {
    templates::example(Kind::ALL[i % Kind::ALL.len()])
}

struct Populated {
    _dir: tempfile::TempDir,
    store_dir: PathBuf,
    plain_path: PathBuf,
    json_bytes: usize,
}

fn populate() -> Populated {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let plain_path = dir.path().join("plain.db");
    let store = Store::init(&store_dir, &key(), me()).unwrap();
    let plain = plain_db(&plain_path);
    let mut json_bytes = 0;
    for i in 0..population() {
        let id = store.create(content(i)).unwrap();
        let request = store.get(&id).unwrap();
        let json = serde_json::to_string(&request).unwrap();
        json_bytes += json.len();
        plain_insert(&plain, &json, i as i64);
    }
    drop(store);
    drop(plain);
    Populated {
        _dir: dir,
        store_dir,
        plain_path,
        json_bytes,
    }
}

fn file_size(p: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|s| {
            std::fs::metadata(format!("{}{s}", p.display()))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

fn benches(c: &mut Criterion) {
    // create + submit one request vs one plain insert of its JSON.
    {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(&dir.path().join("s"), &key(), me()).unwrap();
        let plain = plain_db(&dir.path().join("plain.db"));
        let json = serde_json::to_string(&templates::example(Kind::KtpEl)).unwrap();
        let mut g = c.benchmark_group("write");
        g.bench_function("create_submit", |b| {
            b.iter(|| {
                let id = store.create(templates::example(Kind::KtpEl)).unwrap();
                black_box(store.submit(&id).unwrap());
            })
        });
        // Where create + submit goes: its pieces, measured alone.
        let content = templates::example(Kind::KtpEl);
        let today = sambung_core::Timestamp::now().today_in_indonesia();
        g.bench_function("piece_validate", |b| {
            b.iter(|| black_box(content.validate(today).is_ok()))
        });
        let request = store.get(&store.create(content.clone()).unwrap()).unwrap();
        let actor = automerge::ActorId::from([9u8; 16].as_slice());
        g.bench_function("piece_document_build_save", |b| {
            b.iter(|| {
                black_box(
                    RequestDoc::new(&request, actor.clone())
                        .unwrap()
                        .save()
                        .len(),
                )
            })
        });
        let saved = RequestDoc::new(&request, actor.clone()).unwrap().save();
        g.bench_function("piece_document_load_hydrate", |b| {
            b.iter(|| {
                let doc = RequestDoc::load(&saved, [], actor.clone()).unwrap();
                black_box(doc.hydrate().unwrap())
            })
        });
        let submit = || {
            let mut doc = RequestDoc::load(&saved, [], actor.clone()).unwrap();
            let heads = doc.heads();
            let out = doc.update(|r| {
                let by = r.created_by.clone();
                let author = sambung_core::edits::Author {
                    user: &by,
                    role: r.created_role,
                };
                sambung_core::edits::transition(
                    r,
                    author,
                    sambung_core::lifecycle::Status::Submitted,
                    None,
                )
            });
            (out.is_ok(), doc.save_after(&heads).len())
        };
        assert!(submit().0, "the piece measures a submit that succeeds");
        g.bench_function("piece_submit_edit", |b| b.iter(|| black_box(submit())));
        let mut n = 0i64;
        g.bench_function("plain_insert", |b| {
            b.iter(|| {
                n += 1;
                plain_insert(&plain, &json, n);
            })
        });
        g.finish();
    }

    let p = populate();
    let mut g = c.benchmark_group("many");
    g.bench_function("open_raw_key", |b| {
        b.iter(|| black_box(Store::open(&p.store_dir, &key()).unwrap()))
    });
    g.bench_function("plain_open", |b| {
        b.iter(|| {
            let c = Connection::open(&p.plain_path).unwrap();
            let n: i64 = c
                .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
                .unwrap();
            black_box(n)
        })
    });
    let store = Store::open(&p.store_dir, &key()).unwrap();
    g.bench_function("list_by_update", |b| {
        b.iter(|| black_box(store.list(&ListFilter::default()).unwrap().len()))
    });
    let plain = Connection::open(&p.plain_path).unwrap();
    g.bench_function("plain_list_by_update", |b| {
        b.iter(|| {
            let mut s = plain
                .prepare_cached(
                    "SELECT id, kind, status, updated_at FROM requests ORDER BY updated_at DESC",
                )
                .unwrap();
            let rows: Vec<(Vec<u8>, String, String, i64)> = s
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            black_box(rows.len())
        })
    });
    g.finish();
    drop(store);
    drop(plain);

    let store_size = file_size(&p.store_dir.join(DB_FILE));
    let plain_size = file_size(&p.plain_path);
    SIZES.with(|s| *s.borrow_mut() = Some((population(), store_size, plain_size, p.json_bytes)));
}

thread_local! {
    static SIZES: std::cell::RefCell<Option<(usize, u64, u64, usize)>> = const { std::cell::RefCell::new(None) };
}

fn report() {
    if !full_run() {
        return;
    }
    let ms = |ns: f64| ns / 1e6;
    println!("\n== sambung-core store benchmarks (medians; baselines measured in this run)");
    if let (Some(cs), Some(pi)) = (
        median_ns("write", "create_submit"),
        median_ns("write", "plain_insert"),
    ) {
        let ratio = cs / pi;
        println!(
            "create + submit:     {:>9.3} ms  vs plain insert {:>7.3} ms  ratio {:>6.1}×  goals ≤ 3× ({}), ≤ 2 ms ({})",
            ms(cs),
            ms(pi),
            ratio,
            verdict(ratio <= 3.0),
            verdict(ms(cs) <= 2.0)
        );
    }
    let pieces: Vec<(&str, Option<f64>)> = [
        ("validate the content", "piece_validate"),
        ("build + save the document", "piece_document_build_save"),
        ("load + hydrate it", "piece_document_load_hydrate"),
        ("load, submit, save the change", "piece_submit_edit"),
    ]
    .into_iter()
    .map(|(what, id)| (what, median_ns("write", id)))
    .collect();
    if pieces.iter().all(|(_, v)| v.is_some()) {
        println!("  where it goes (each piece alone, in memory):");
        for (what, v) in pieces {
            println!("    {what:<32} {:>7.1} µs", v.unwrap_or_default() / 1e3);
        }
    }
    if let (Some(o), Some(po)) = (
        median_ns("many", "open_raw_key"),
        median_ns("many", "plain_open"),
    ) {
        println!(
            "open 10k, raw key:   {:>9.3} ms  vs plain open   {:>7.3} ms  ratio {:>6.1}×  goal ≤ 20 ms ({})",
            ms(o),
            ms(po),
            o / po,
            verdict(ms(o) <= 20.0)
        );
    }
    if let (Some(l), Some(pl)) = (
        median_ns("many", "list_by_update"),
        median_ns("many", "plain_list_by_update"),
    ) {
        println!(
            "list 10k by update:  {:>9.3} ms  vs plain select {:>7.3} ms  ratio {:>6.1}×  goal ≤ 20 ms ({})",
            ms(l),
            ms(pl),
            l / pl,
            verdict(ms(l) <= 20.0)
        );
    }
    SIZES.with(|s| {
        if let Some((n, store, plain, json)) = *s.borrow() {
            let ratio = store as f64 / json as f64;
            println!(
                "size of {n} requests: store {:.1} MiB, plain JSON table {:.1} MiB, JSON itself {:.1} MiB: store/JSON {:.2}×  goal ≤ 2× ({})",
                store as f64 / 1048576.0, plain as f64 / 1048576.0, json as f64 / 1048576.0, ratio, verdict(ratio <= 2.0)
            );
        }
    });
}

fn config() -> Criterion {
    Criterion::default()
        .output_directory(&output_dir())
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = group; config = config(); targets = benches }

fn main() {
    support::start();
    group();
    Criterion::default().configure_from_args().final_summary();
    report();
}
