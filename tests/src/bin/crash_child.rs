//! A process for the crash and fault tests (`tests/tests/crash.rs`) to kill:
//!
//! - `crash_child device DIR KEY_HEX URL SEED` opens an enrolled device's
//!   store and writes and syncs until killed, printing each write once the
//!   store has acknowledged it (`create ID`, `note ID MARKER`), each sync
//!   (`synced`, `sync-error`) and each refused write (`error`);
//! - `crash_child server DIR ADDR` serves the SQLite database in DIR on
//!   ADDR, printing `ready` once it listens.
//!
//! The markers are counters, never personal data.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use sambung_core::crypto::DataKey;
use sambung_core::identifiers::RegionCode;
use sambung_core::model::{Kind, RequestId};
use sambung_core::store::{Secret, Store};
use sambung_core::sync::{Client, SyncConfig};
use sambung_core::templates;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["device", dir, key, url, seed] => device(Path::new(dir), key, url, seed),
        ["server", dir, addr] => server(Path::new(dir), addr),
        _ => Err("usage: crash_child device DIR KEY URL SEED | server DIR ADDR".into()),
    };
    if let Err(e) = result {
        eprintln!("crash_child: {e}");
        std::process::exit(2);
    }
}

fn say(line: &str) {
    // One write per line: a kill never leaves half a line behind.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
}

fn device(dir: &Path, key: &str, url: &str, seed: &str) -> Result<(), String> {
    let key: [u8; 32] = hex::decode(key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or("KEY must be 64 hex digits")?;
    let seed: u64 = seed.parse().map_err(|_| "SEED must be a number")?;
    sambung_core::sync::install_crypto_provider();
    let store =
        Store::open(dir, &Secret::Key(DataKey::from_bytes(key))).map_err(|e| e.to_string())?;
    let config = SyncConfig::default();
    let client = Client::new(url, &config).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut ids: Vec<RequestId> = store
        .list(&Default::default())
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|s| s.id)
        .take(16)
        .collect();
    let mut rng = seed;
    for i in 0..100_000u64 {
        let r = sambung_e2e::splitmix(&mut rng);
        let written = match r % 8 {
            0..=2 => {
                let mut content = templates::example(Kind::Complaint);
                content.region = RegionCode::from("32.73.01.1001");
                store.create(content).map(|id| {
                    say(&format!("create {id}"));
                    ids.push(id);
                })
            }
            3..=5 if !ids.is_empty() => {
                let id = ids[(r >> 8) as usize % ids.len()].clone();
                let marker = format!("m{seed}x{i}");
                store
                    .add_note(&id, &marker, false)
                    .map(|_| say(&format!("note {id} {marker}")))
            }
            _ => {
                match rt.block_on(client.sync(&store, &config, |_| {})) {
                    Ok(_) => say("synced"),
                    Err(_) => say("sync-error"),
                }
                Ok(())
            }
        };
        if let Err(e) = written {
            // A full disk: said, and tried again a little later.
            say(&format!("error {e}"));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    Ok(())
}

fn server(dir: &Path, addr: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let storage =
            sambung_server::storage::SqliteStorage::open(dir).map_err(|e| e.to_string())?;
        let secrets = sambung_server::secrets::Secrets::open(
            &dir.join(sambung_server::secrets::DEFAULT_FILE),
            &storage,
        )
        .map_err(|e| e.to_string())?;
        let state = sambung_server::api::AppState::new(Arc::new(storage), secrets)
            .map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| e.to_string())?;
        say("ready");
        sambung_server::api::serve(listener, state, std::future::pending())
            .await
            .map_err(|e| e.to_string())
    })
}
