//! The Rust side of the FFI cost benchmark (`scripts/bench-ffi`): the time of
//! one `get` of a small request, straight on the store and through the
//! bindings' `Client` (its runtime hop included), measured the same way the
//! Kotlin and Python sides measure it — batches of calls after a warm-up,
//! the median batch — so the three figures compare. Writes
//! `rust_store_ns=…` and `rust_client_ns=…` to `rust-cost.txt` in the folder
//! named by `SAMBUNG_FFI_COST_DIR`, and leaves the store there (with
//! `key_hex=…` and `request_id=…`) for the other two.
//!
//! An ignored unit test rather than an example: an example needs the
//! library as an rlib, and a `lib` crate type beside `cdylib` keeps cargo
//! from running link-time optimisation on the phone library
//! (docs/benchmarks.md, "Phone library size").

use std::sync::Arc;
use std::time::Instant;

use crate::{Client, ClientConfig, KeyProvider, KeyProviderError};
use sambung_core::crypto::DataKey;
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::store::{Identity, Secret, Store};

const BATCH: u32 = 2_000;
const BATCHES: usize = 7;

struct Fixed([u8; 32]);

impl KeyProvider for Fixed {
    fn data_key(&self) -> Result<Vec<u8>, KeyProviderError> {
        Ok(self.0.to_vec())
    }
}

fn median_ns(mut run_batch: impl FnMut()) -> f64 {
    run_batch(); // warm-up
    let mut per_call: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let t = Instant::now();
            run_batch();
            t.elapsed().as_nanos() as f64 / f64::from(BATCH)
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[BATCHES / 2]
}

#[test]
#[ignore = "a benchmark: scripts/bench-ffi runs it"]
fn ffi_cost() {
    let dir = std::path::PathBuf::from(
        std::env::var_os("SAMBUNG_FFI_COST_DIR")
            .expect("SAMBUNG_FFI_COST_DIR: an empty folder for the store"),
    );
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
    let store_ns = median_ns(|| {
        for _ in 0..BATCH {
            std::hint::black_box(store.get(&id).expect("get"));
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
    let client_ns = median_ns(|| {
        for _ in 0..BATCH {
            std::hint::black_box(rt.block_on(client.get(id.clone())).expect("get"));
        }
    });
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let report = format!(
        "key_hex={key_hex}\nrequest_id={id}\nrust_store_ns={store_ns:.0}\nrust_client_ns={client_ns:.0}\n"
    );
    std::fs::write(dir.join("rust-cost.txt"), report).expect("write rust-cost.txt");
}
