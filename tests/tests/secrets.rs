//! The server's secrets are not in the database they protect: a dump of
//! it (SQLite's files byte for byte, every PostgreSQL row as text) holds
//! neither the NIK-hash key nor a webhook secret in clear; a database from
//! before the secrets file has its key moved out of it, and a server given
//! another file than its database's refuses to start.

use base64::Engine;
use sambung_core::lifecycle::Role;
use sambung_e2e::{Agency, TestDb, TestServer};
use sambung_server::ServerError;
use sambung_server::accounts::Account;
use sambung_server::secrets::Secrets;
use sambung_server::webhooks::Subscription;
use serde_json::json;

/// Every form a secret could take in a dump: its bytes, its hex, its
/// base64.
fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    vec![
        secret.to_vec(),
        hex::encode(secret).into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(secret)
            .into_bytes(),
    ]
}

fn holds(dump: &[u8], secret: &[u8]) -> bool {
    forms(secret)
        .iter()
        .any(|f| dump.windows(f.len()).any(|w| w == f.as_slice()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_holds_neither_the_nik_key_nor_a_webhook_secret() {
    let db = TestDb::fresh().await;
    let server = TestServer::start_on(&db).await;
    let home = tempfile::tempdir().unwrap();
    // A NIK hash stored with the key.
    let _resident = server
        .device(
            home.path(),
            Role::Resident,
            "warga-1",
            &[],
            Some("3273010101900001"),
        )
        .await;
    let agency = Agency::enroll(&server, "dinas-kota", &["32.73"]).await;
    let made = agency
        .call(
            "POST",
            "/v1/agency/webhooks",
            Some(json!({"url": "https://agency.example.go.id/hook", "events": ["request.submitted"]})),
            None,
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.json);
    let webhook_secret = base64::engine::general_purpose::STANDARD
        .decode(
            made.json["secret"]
                .as_str()
                .unwrap()
                .strip_prefix("whsec_")
                .unwrap(),
        )
        .unwrap();
    let nik_key = server.state.secrets().nik_key().to_vec();
    server.stop().await;

    let dump = db.dump().await;
    assert!(dump.len() > 1000, "a dump of {} bytes", dump.len());
    // The test can fail: a key that is in the dump is found.
    let accounts = db.query_text("SELECT id FROM accounts").await;
    assert!(holds(&dump, accounts[0].as_bytes()));
    assert!(!holds(&dump, &nik_key), "the NIK-hash key is in the dump");
    assert!(
        !holds(&dump, &webhook_secret),
        "a webhook secret is in the dump in clear"
    );
    // SQLite: the key is in the secrets file beside the data, owner-only.
    if let TestDb::Sqlite(dir) = &db {
        let path = dir.path().join(sambung_server::secrets::DEFAULT_FILE);
        assert_eq!(Secrets::read(&path).unwrap().nik_key().as_slice(), nik_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_database_key_moves_into_the_secrets_file() {
    // A database as servers before the secrets file left it: the NIK key
    // in `meta`, a webhook secret in clear.
    let db = TestDb::fresh().await;
    let storage = db.open();
    let old_key: [u8; 32] = sambung_core::crypto::random_key_bytes().unwrap();
    let insert = match db.backend() {
        "sqlite" => format!(
            "INSERT INTO meta (key, value) VALUES ('secret', X'{}')",
            hex::encode(old_key)
        ),
        _ => format!(
            "INSERT INTO meta (key, value) VALUES ('secret', decode('{}', 'hex'))",
            hex::encode(old_key)
        ),
    };
    db.execute_raw(&insert).await.unwrap();
    let account = Account {
        id: "dinas-kota".into(),
        role: Role::Agency,
        regions: vec!["32.73".into()],
        nik_hash: None,
    };
    sambung_server::enroll::create(storage.as_ref(), &account, sambung_e2e::now(), 3600).unwrap();
    let plain: [u8; 32] = sambung_core::crypto::random_key_bytes().unwrap();
    let sub = Subscription {
        id: "wh_old".into(),
        account,
        url: "https://agency.example.go.id/hook".into(),
        events: vec!["request.submitted".into()],
    };
    storage.add_webhook(&sub, &plain, 1).unwrap();
    assert!(
        holds(&db.dump().await, &old_key),
        "the setup is what it says"
    );

    let files = tempfile::tempdir().unwrap();
    // A file with another key is refused, and the database is untouched.
    let other = files.path().join("other");
    Secrets::generate().unwrap().write_new(&other).unwrap();
    match Secrets::open(&other, storage.as_ref()) {
        Err(ServerError::Config(m)) => assert!(m.contains("another"), "{m}"),
        e => panic!("expected a refusal, got {e:?}"),
    }
    assert_eq!(storage.legacy_secret().unwrap(), Some(old_key.to_vec()));

    // No file yet: the old key moves into a new one.
    let path = files.path().join("secrets");
    let secrets = Secrets::open(&path, storage.as_ref()).unwrap();
    assert_eq!(secrets.nik_key(), &old_key, "old NIK hashes keep working");
    assert_eq!(Secrets::read(&path).unwrap().nik_key(), &old_key);
    assert_eq!(storage.legacy_secret().unwrap(), None);
    let stored = storage.webhook_secrets().unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].1, plain.to_vec(), "sealed");
    assert_eq!(
        secrets.open_webhook_secret("wh_old", &stored[0].1).unwrap(),
        plain.to_vec()
    );
    drop(storage);
    let dump = db.dump().await;
    assert!(
        !holds(&dump, &old_key),
        "the old key stayed in the database"
    );
    assert!(!holds(&dump, &plain), "the webhook secret stayed in clear");

    // Started again with the same file: fine; with another: refused.
    let storage = db.open();
    assert_eq!(
        Secrets::open(&path, storage.as_ref()).unwrap().nik_key(),
        &old_key
    );
    match Secrets::open(&other, storage.as_ref()) {
        Err(ServerError::Config(m)) => assert!(m.contains("does not belong"), "{m}"),
        e => panic!("expected a refusal, got {e:?}"),
    }
}
