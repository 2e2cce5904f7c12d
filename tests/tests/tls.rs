//! HTTPS end to end: the server serving TLS itself on loopback, devices
//! trusting it through the app's own CA, a key pin, or neither — and
//! refusing every server they were not told to trust.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sambung_core::Error;
use sambung_core::crypto::DataKey;
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::store::{Identity, Secret, Store};
use sambung_core::sync::{Client, ServerTrust, SyncConfig, spki_sha256};
use sambung_core::templates;
use sambung_server::accounts::Account;
use sambung_server::api::AppState;
use sambung_server::storage::SqliteStorage;

/// A certificate authority of its own, and a server certificate it signed
/// for `localhost` and 127.0.0.1.
struct Pki {
    ca_pem: String,
    server_der: Vec<u8>,
    server_key: Vec<u8>,
}

fn new_pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_der: server.der().to_vec(),
        server_key: key.serialize_der(),
    }
}

struct TlsServer {
    url: String,
    state: Arc<AppState>,
    _dir: tempfile::TempDir,
}

async fn tls_server(pki: &Pki) -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::new(
        Arc::new(SqliteStorage::open(dir.path()).unwrap()),
        sambung_server::secrets::Secrets::generate().unwrap(),
    )
    .unwrap();
    let tls = sambung_server::tls::config_from(
        vec![CertificateDer::from(pki.server_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.clone())),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(sambung_server::api::serve_tls(
        listener,
        tls,
        state.clone(),
        std::future::pending(),
    ));
    TlsServer {
        url: format!("https://localhost:{port}"),
        state,
        _dir: dir,
    }
}

fn code(server: &TlsServer, user: &str) -> String {
    let account = Account {
        id: user.into(),
        role: Role::Resident,
        regions: vec![],
        nik_hash: None,
    };
    sambung_server::enroll::create(server.state.storage(), &account, sambung_e2e::now(), 3600)
        .unwrap()
}

fn store(dir: &std::path::Path) -> Store {
    Store::init(
        dir,
        &Secret::Key(DataKey::generate().unwrap()),
        Identity {
            user: "local".into(),
            role: Role::Resident,
        },
    )
    .unwrap()
}

/// Enrolls a new device with `trust`, then files and syncs one request.
async fn enroll_and_sync(server: &TlsServer, trust: ServerTrust, user: &str) -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path());
    let config = SyncConfig {
        trust,
        ..SyncConfig::default()
    };
    let client = Client::new(&server.url, &config)?;
    client.enroll(&mut store, &code(server, user)).await?;
    store.create(templates::example(Kind::Complaint)).unwrap();
    client.sync(&store, &config, |_| {}).await?;
    assert_eq!(store.pending_count().unwrap(), 0);
    Ok(())
}

fn log_len(server: &TlsServer) -> usize {
    server.state.storage().log_since(0, 1000).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_trust_only_the_servers_they_are_told_to() {
    sambung_core::sync::install_crypto_provider();
    let pki = new_pki();
    let stranger = new_pki(); // another CA, another key
    let server = tls_server(&pki).await;
    let ours = ServerTrust::default()
        .with_roots_pem(pki.ca_pem.as_bytes())
        .unwrap();

    // The app's own CA: enrolls and syncs over HTTPS.
    enroll_and_sync(&server, ours.clone(), "warga-1")
        .await
        .unwrap();
    assert_eq!(log_len(&server), 1);

    // The right key pinned on top of the CA: fine.
    let pin = hex::encode(spki_sha256(&pki.server_der).unwrap());
    let pinned = ours.clone().with_pin_hex(&pin).unwrap();
    enroll_and_sync(&server, pinned, "warga-2").await.unwrap();
    assert_eq!(log_len(&server), 2);

    // Refused: another CA; a wrong pin; the platform's roots (which do not
    // hold this CA). Each is a network error, and nothing reaches the
    // server — not even the enrollment.
    let wrong_pin = ours
        .clone()
        .with_pin_hex(&hex::encode(spki_sha256(&stranger.server_der).unwrap()))
        .unwrap();
    let other_ca = ServerTrust::default()
        .with_roots_pem(stranger.ca_pem.as_bytes())
        .unwrap();
    for (what, trust, says) in [
        (
            "another CA",
            other_ca,
            "server certificate is not issued by a trusted authority",
        ),
        (
            "a wrong pin",
            wrong_pin,
            "server certificate does not match the pinned key",
        ),
        (
            "the platform's roots",
            ServerTrust::default(),
            "server certificate is not issued by a trusted authority",
        ),
    ] {
        match enroll_and_sync(&server, trust, "warga-3").await {
            Err(Error::Network { message, .. }) => {
                assert!(message.starts_with(says), "{what}: {message}");
            }
            other => panic!("{what}: expected a network error, got {other:?}"),
        }
    }
    assert_eq!(log_len(&server), 2);
    // The code warga-3 was given on the first try is still unused: the
    // refused handshakes never reached the enrollment.
    enroll_and_sync(&server, ours, "warga-3").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_tls_server_and_bad_trust_settings_fail_clearly() {
    sambung_core::sync::install_crypto_provider();
    let pki = new_pki();
    let server = tls_server(&pki).await;
    // Plain HTTP to the TLS port: no answer a client could take as valid.
    let plain = server.url.replace("https://", "http://");
    let resp = reqwest::Client::new()
        .get(format!("{plain}/health"))
        .send()
        .await;
    assert!(resp.map(|r| !r.status().is_success()).unwrap_or(true));
    // Bad trust settings are refused before any connection.
    for bad in [
        ServerTrust::default().with_roots_pem(b"not pem"),
        ServerTrust::default()
            .with_roots_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        ServerTrust::default().with_pin_hex("zz"),
        ServerTrust::default().with_pin_hex(&"ab".repeat(31)),
    ] {
        assert!(matches!(bad, Err(Error::ServerTrust(_))), "{bad:?}");
    }
    assert!(matches!(
        spki_sha256(b"not a certificate"),
        Err(Error::ServerTrust(_))
    ));
    // A root that parses as PEM but not as a certificate fails at use.
    let junk_root = ServerTrust {
        roots: vec![vec![0x30, 0x03, 0x02, 0x01, 0x00]],
        pins: vec![],
    };
    assert!(matches!(
        Client::new(
            &server.url,
            &SyncConfig {
                trust: junk_root,
                ..SyncConfig::default()
            }
        ),
        Err(Error::ServerTrust(_))
    ));
}
