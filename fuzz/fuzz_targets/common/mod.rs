//! A real server in-process for the server targets: an SQLite database in a
//! temporary directory, an enrolled resident device whose key signs every
//! fuzzed call (so the input reaches the handler, not just the signature
//! check), no rate limits, and the router called without a socket.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use sambung_core::lifecycle::Role;
use sambung_core::protocol::{Call, DeviceKey, device_id_of};
use sambung_server::accounts::Account;
use sambung_server::api::{AppState, Peer};
use sambung_server::storage::SqliteStorage;
use tower::ServiceExt;

#[allow(dead_code)] // used by the exchange target only
pub mod edits;
mod panics;

pub struct World {
    pub rt: tokio::runtime::Runtime,
    pub router: axum::Router,
    pub key: DeviceKey,
    pub device: [u8; 16],
    pub audience: String,
    /// The server's storage, to read what it holds.
    #[allow(dead_code)] // used by the exchange target only
    pub storage: Arc<SqliteStorage>,
    _dir: tempfile::TempDir,
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        // The server catches a panic inside one document's merge and
        // refuses that document, as in production; libFuzzer's hook would
        // abort on it. Only Automerge's own panics (on hostile bytes) are
        // let through that way: any other panic — in our code — aborts.
        panics::abort_unless_in_automerge();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = Arc::new(SqliteStorage::open(dir.path()).expect("a database"));
        let now = sambung_core::Timestamp::now().as_millis() / 1000;
        let account = Account {
            id: "warga-1".into(),
            role: Role::Resident,
            regions: vec![],
            nik_hash: None,
        };
        let code =
            sambung_server::enroll::create(storage.as_ref(), &account, now, 3600).expect("a code");
        // Fixed (`tests/examples/fuzz_seeds.rs` wrote it), so that a run
        // is reproducible: the exchange target's changes are written by
        // this device's actor.
        let key = DeviceKey::from_pkcs8(include_bytes!("device.pk8")).expect("a key");
        let device = device_id_of(&key.public_key());
        sambung_server::enroll::redeem(
            storage.as_ref(),
            &sambung_server::enroll::code_hash(&code),
            device,
            key.public_key(),
            now,
        )
        .expect("enrolled");
        let unlimited = sambung_server::limits::Rate {
            per_minute: 1_000_000,
            burst: 1_000_000,
        };
        let state = AppState::with_settings(
            storage.clone(),
            sambung_server::secrets::Secrets::generate().expect("secrets"),
            sambung_server::api::Settings {
                limits: sambung_server::limits::Limits {
                    per_address: unlimited,
                    per_device: unlimited,
                },
                ..Default::default()
            },
        )
        .expect("a server");
        let audience = state.audience().to_owned();
        World {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            router: sambung_server::api::router(state),
            key,
            device,
            audience,
            storage,
            _dir: dir,
        }
    })
}

impl World {
    /// Sends `body` to `path`, signed by the enrolled device, with `headers`;
    /// the status. A 5xx is a bug: the server must answer any input with a
    /// typed 4xx (or take it).
    #[allow(dead_code)] // the exchange target reads the answer
    pub fn call(&self, method: &str, path: &str, headers: &[(&str, String)], body: Vec<u8>) -> u16 {
        self.call_for_body(method, path, headers, body).0
    }

    /// As [`World::call`], with the answer's body.
    pub fn call_for_body(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let now = sambung_core::Timestamp::now().as_millis() / 1000;
        // The headers sent (those HTTP takes) are signed with the call, so
        // the input reaches the handler.
        let sent: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(_, v)| axum::http::HeaderValue::from_str(v).is_ok())
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let call = Call::new(&self.audience, method, path, &body).headers_from(|n| {
            sent.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| *v)
        });
        let signed = self.key.sign(self.device, &call, now).expect("signs");
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in signed.pairs().iter() {
            req = req.header(*k, v.as_str());
        }
        for (k, v) in &sent {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::from(body)).expect("a request");
        req.extensions_mut().insert(axum::extract::ConnectInfo(Peer(
            "127.0.0.1:9".parse().expect("an address"),
        )));
        let (status, body) = self.rt.block_on(async {
            let answer = self.router.clone().oneshot(req).await.expect("infallible");
            let status = answer.status().as_u16();
            let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            (status, body)
        });
        assert!(status < 500, "{method} {path} answered {status}");
        (status, body)
    }
}
