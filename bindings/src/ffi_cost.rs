//! The Rust side of the FFI cost benchmark (`scripts/bench-ffi`): the time of
//! one `get` of a small request, straight on the store and through the
//! bindings' `Client` (its runtime hop included), measured the same way the
//! Kotlin and Python sides measure it — batches of calls after a warm-up,
//! the median batch — so the three figures compare. Writes
//! `rust_store_ns=…` and `rust_client_ns=…` to `rust-cost.txt` in the folder
//! named by `SAMBUNG_FFI_COST_DIR`, and leaves the store there (with
//! `key_hex=…` and `request_id=…`) for the other two.
//!
//! A unit test rather than an example: an example needs the library as an
//! rlib, and a `lib` crate type beside `cdylib` keeps cargo from running
//! link-time optimisation on the phone library (docs/benchmarks.md, "Phone
//! library size"). Without `SAMBUNG_FFI_COST_DIR` (as `cargo test` runs it)
//! it runs a few calls in a temporary folder and checks what they return,
//! as criterion's test mode does for the other benchmarks, so the benchmark
//! keeps working.

use std::sync::Arc;
use std::time::Instant;

use crate::{Client, ClientConfig, KeyProvider, KeyProviderError};
use sambung_core::crypto::DataKey;
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::store::{Identity, Secret, Store};

/// Calls per batch and batches: the benchmark's, or a few in test mode.
fn sizes(measuring: bool) -> (u32, usize) {
    if measuring { (2_000, 7) } else { (10, 3) }
}

struct Fixed([u8; 32]);

impl KeyProvider for Fixed {
    fn data_key(&self) -> Result<Vec<u8>, KeyProviderError> {
        Ok(self.0.to_vec())
    }
}

fn median_ns((batch, batches): (u32, usize), mut run_batch: impl FnMut()) -> f64 {
    run_batch(); // warm-up
    let mut per_call: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            run_batch();
            t.elapsed().as_nanos() as f64 / f64::from(batch)
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[batches / 2]
}

#[test]
fn ffi_cost() {
    let named = std::env::var_os("SAMBUNG_FFI_COST_DIR").map(std::path::PathBuf::from);
    let measuring = named.is_some();
    let temp = tempfile::tempdir().expect("a temporary folder");
    let dir = named.unwrap_or_else(|| temp.path().join("store"));
    let (batch, _) = sizes(measuring);
    let key = *DataKey::generate().expect("randomness").expose();
    let store = Store::init(
        &dir,
        &Secret::Key(DataKey::from_bytes(key)),
        Identity {
            user: "bench".into(),
            role: Role::Resident,
        },
    )
    .expect("a store");
    let id = store
        .create(sambung_core::templates::example(Kind::KtpEl))
        .expect("a request");
    let expected = store.get(&id).expect("get");
    let store_ns = median_ns(sizes(measuring), || {
        for _ in 0..batch {
            assert_eq!(std::hint::black_box(store.get(&id).expect("get")), expected);
        }
    });
    drop(store);

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let config = ClientConfig {
        data_dir: dir.to_string_lossy().into_owned(),
        role: Role::Resident,
        ca_pem: None,
        pins: vec![],
        budget_bytes: None,
        auto_sync: false,
        large_uploads_on_metered: false,
    };
    let client: Arc<Client> = rt
        .block_on(Client::open(config, Arc::new(Fixed(key))))
        .expect("a client");
    let client_ns = median_ns(sizes(measuring), || {
        for _ in 0..batch {
            let got = std::hint::black_box(rt.block_on(client.get(id.clone())).expect("get"));
            assert_eq!(got.id, expected.id);
        }
    });
    assert!(store_ns > 0.0 && client_ns > 0.0);
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let report = format!(
        "key_hex={key_hex}\nrequest_id={id}\nrust_store_ns={store_ns:.0}\nrust_client_ns={client_ns:.0}\n"
    );
    std::fs::write(dir.join("rust-cost.txt"), report).expect("write rust-cost.txt");
}
