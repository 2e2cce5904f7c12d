//! No personal data in any log line or error message: a whole scenario —
//! filing with distinctive markers in every personal field, invalid input,
//! sync, an officer's changes, refusals and failures on both sides — runs
//! with every `tracing` event of device and server captured at TRACE level,
//! and every error's message (Display and Debug) collected; no marker may
//! appear in any of them. A control proves the scan can fail.

use std::io::Write;
use std::sync::{Arc, Mutex};

use sambung_core::identifiers::{Nik, Phone};
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::{AttachmentRole, Details, Kind};
use sambung_core::sync::Client;
use sambung_core::templates;
use sambung_e2e::TestServer;

const NAME: &str = "Zulkarnaen Penandalog";
// A woman born 26 July 1999: 66 = 26 + 40.
const NIK: &str = "3273016607990042";
const PHONE: &str = "+62 812-7777-4242";
const TEXT: &str = "KELUHAN-RAHASIA-5521 di gang belakang";
const NOTE: &str = "CATATAN-RAHASIA-8812";
const FILE: &str = "LAMPIRAN-RAHASIA-3309.jpg";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn markers() -> Vec<String> {
    vec![
        NAME.into(),
        "Penandalog".into(),
        NIK.into(),
        // The NIK's distinctive middle, in case it is cut or reformatted.
        "16607990".into(),
        "7777-4242".into(),
        "77774242".into(),
        TEXT.into(),
        "RAHASIA-5521".into(),
        NOTE.into(),
        FILE.into(),
    ]
}

fn scan(what: &str, text: &str) {
    for m in markers() {
        assert!(!text.contains(&m), "{what} contains the marker {m:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_or_error_message_carries_personal_data() {
    let logs = Captured::default();
    let sink = logs.clone();
    // Every event of every crate, at every level, for this test binary.
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();
    let mut errors: Vec<String> = Vec::new();
    let mut keep = |e: sambung_core::Error| errors.push(format!("{e} | {e:?}"));

    let server = TestServer::start().await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let resident = server
        .device(d1.path(), Role::Resident, "warga-1", &[], Some(NIK))
        .await;
    let officer = server
        .device(d2.path(), Role::Officer, "petugas-1", &["32.73"], None)
        .await;

    let mut content = templates::example(Kind::Complaint);
    content.region = "32.73.01.1001".into();
    if let Some(a) = &mut content.applicant {
        a.name = NAME.into();
        a.nik = Nik::from(NIK);
        a.birth_date = None;
        a.sex = None;
    }
    content.contact_phone = Some(Phone::from(PHONE));
    if let Details::Complaint(c) = &mut content.details {
        c.text = TEXT.into();
    }
    // Invalid first: a wrong NIK beside the marked fields.
    let mut bad = content.clone();
    if let Some(a) = &mut bad.applicant {
        a.nik = Nik::from("3273016607990");
    }
    keep(resident.store.create(bad).unwrap_err());
    let id = resident.store.create(content).unwrap();
    resident
        .store
        .attach(
            &id,
            AttachmentRole::Photo,
            FILE,
            "image/jpeg",
            &b"jpeg bytes"[..],
        )
        .unwrap();
    resident.store.submit(&id).unwrap();
    resident.store.add_note(&id, NOTE, false).unwrap();
    keep(resident.store.add_note(&id, NOTE, true).unwrap_err()); // not in needs_info
    resident.sync().await.unwrap();

    officer.sync().await.unwrap();
    officer
        .store
        .transition(&id, Status::Received, Some(NOTE.into()))
        .unwrap();
    officer.sync().await.unwrap();
    resident.sync().await.unwrap();
    assert_eq!(resident.store.get(&id).unwrap().status(), Status::Received);

    // Failures: a server that is not there, a refused enrollment, a
    // forbidden transition.
    let nowhere = Client::new("http://127.0.0.1:9", &resident.config).unwrap();
    keep(
        nowhere
            .sync(&resident.store, &resident.config, |_| {})
            .await
            .unwrap_err(),
    );
    let mut fresh = sambung_core::store::Store::init(
        tempfile::tempdir().unwrap().path(),
        &sambung_core::store::Secret::Key(sambung_core::crypto::DataKey::generate().unwrap()),
        sambung_core::store::Identity {
            user: NAME.into(),
            role: Role::Resident,
        },
    )
    .unwrap();
    keep(
        resident
            .client
            .enroll(&mut fresh, "AAAA-BBBB-CCCC")
            .await
            .unwrap_err(),
    );
    keep(
        resident
            .store
            .transition(&id, Status::Approved, Some(NOTE.into()))
            .unwrap_err(),
    );

    // The back office reads, lists, acts and is refused; its answers
    // (bodies aside, which are the request itself) go through the scan.
    let agency = sambung_e2e::Agency::enroll(&server, "dinas", &["32.73"]).await;
    let path = format!("/v1/agency/requests/{id}");
    assert_eq!(agency.call("GET", &path, None, None).await.status, 200);
    assert_eq!(
        agency
            .call("GET", "/v1/agency/requests", None, None)
            .await
            .status,
        200
    );
    let a = agency
        .call(
            "POST",
            &format!("{path}/status"),
            Some(serde_json::json!({"to": "approved", "note": NOTE})),
            None,
        )
        .await;
    assert_eq!(a.status, 409);
    scan("a back-office refusal", &a.json.to_string());
    let a = agency
        .call(
            "POST",
            &format!("{path}/notes"),
            Some(serde_json::json!({"text": NOTE})),
            None,
        )
        .await;
    assert_eq!(a.status, 200);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("request created") && text.contains("exchange"),
        "the capture saw the scenario"
    );
    // Server lines carry the request id, also from the blocking pool.
    assert!(
        text.lines()
            .any(|l| l.contains("request{id=") && l.contains("exchange")),
        "exchange lines carry a request id"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("request{id=") && l.contains("back office added a note")),
        "back-office lines carry a request id"
    );
    scan("the logs", &text);
    assert_eq!(errors.len(), 5);
    for e in &errors {
        scan("an error message", e);
    }
    // The control: the same scan finds a marker where there is one.
    let control = std::panic::catch_unwind(|| scan("control", &format!("x {NIK} y")));
    assert!(control.is_err(), "the scan can fail");
}
