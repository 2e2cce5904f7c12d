//! Nothing personal reaches the disk in plaintext: requests carrying
//! distinctive markers are written, and every byte of every file in the
//! store's folder (database, WAL, shared memory) is scanned for the markers
//! in every encoding the code could have written them in.

mod common;

use std::path::Path;

use common::*;
use sambung_core::identifiers::Nik;
use sambung_core::model::{AttachmentRole, Details, Kind};
use sambung_core::store::{Secret, Store};
use sambung_core::templates;

const NAME: &str = "Zulkarnaen Penandaunik";
// A woman born 26 July 1999: 66 = 26 + 40.
const NIK: &str = "3273016607990042";
const NOTE: &str = "CATATAN-RAHASIA-7731 rumah di belakang masjid";
const ATTACHMENT: &str = "LAMPIRAN-RAHASIA-4410";
const PASSPHRASE: &str = "frasa-sandi-penanda-9051";

fn encodings(marker: &str) -> Vec<Vec<u8>> {
    let utf16le: Vec<u8> = marker
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let utf16be: Vec<u8> = marker
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    let hex_lower: String = marker.bytes().map(|b| format!("{b:02x}")).collect();
    let mut out = vec![
        marker.as_bytes().to_vec(),
        marker.to_lowercase().into_bytes(),
        marker.to_uppercase().into_bytes(),
        utf16le,
        utf16be,
        hex_lower.clone().into_bytes(),
        hex_lower.to_uppercase().into_bytes(),
        base64(marker.as_bytes()).into_bytes(),
    ];
    // A NIK could also have been written as a number.
    if let Ok(n) = marker.parse::<u64>() {
        out.push(n.to_le_bytes().to_vec());
        out.push(n.to_be_bytes().to_vec());
    }
    // Long markers: also their first 12 characters (a truncated title).
    if marker.len() > 12 {
        out.push(marker.as_bytes()[..12].to_vec());
    }
    out
}

fn base64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    s
}

/// Every (file, marker) pair where a marker appears.
fn scan(dir: &Path) -> Vec<(String, String)> {
    let mut hits = Vec::new();
    let files = all_files(dir);
    assert!(!files.is_empty());
    for (path, bytes) in &files {
        for marker in [NAME, NIK, NOTE, ATTACHMENT, PASSPHRASE] {
            for enc in encodings(marker) {
                if contains(bytes, &enc) {
                    hits.push((path.display().to_string(), marker.to_owned()));
                }
            }
        }
    }
    hits
}

#[test]
fn the_scan_finds_markers_where_they_are_in_plaintext() {
    // Control: the scan is able to fail.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plain.txt"),
        format!("x{}y", NOTE.to_uppercase()),
    )
    .unwrap();
    let utf16: Vec<u8> = NIK.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    std::fs::write(dir.path().join("utf16.bin"), utf16).unwrap();
    let hits = scan(dir.path());
    assert!(hits.iter().any(|(_, m)| m == NOTE));
    assert!(hits.iter().any(|(_, m)| m == NIK));
}

#[test]
fn no_personal_value_reaches_the_disk_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("store");
    let store =
        Store::init_with_rounds(&home, &Secret::passphrase(PASSPHRASE), resident(), rounds())
            .unwrap();
    let mut ids = Vec::new();
    for kind in Kind::ALL {
        let mut c = templates::example(*kind);
        if let Some(a) = &mut c.applicant {
            a.name = NAME.into();
            a.nik = Nik::from(NIK);
            a.birth_date = Some(sambung_core::Date("1999-07-26".into()));
        }
        match &mut c.details {
            Details::Birth(b) => b.child_name = NAME.into(),
            Details::KtpEl(k) => k.nik = Nik::from(NIK),
            Details::Complaint(x) => x.text = format!("{NOTE} {NAME}"),
            _ => {}
        }
        ids.push(store.create(c).unwrap());
    }
    let payload = format!("%PDF-1.4 {ATTACHMENT} {NAME} {NIK}").repeat(1000);
    for id in &ids {
        store.add_note(id, NOTE, false).unwrap();
        store
            .attach(
                id,
                AttachmentRole::SupportingDocument,
                &format!("{NAME}.pdf"),
                "application/pdf",
                payload.as_bytes(),
            )
            .unwrap();
    }
    assert_eq!(store.find_by_nik(NIK).unwrap().len(), Kind::ALL.len());
    // While open: the WAL holds the latest writes.
    let hits = scan(&home);
    assert!(hits.is_empty(), "plaintext found while open: {hits:?}");
    let files: Vec<String> = all_files(&home)
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("-wal")),
        "the WAL was scanned: {files:?}"
    );
    drop(store);
    let hits = scan(&home);
    assert!(hits.is_empty(), "plaintext found after close: {hits:?}");
    // And the data is all there behind the key.
    let store = Store::open(&home, &Secret::passphrase(PASSPHRASE)).unwrap();
    let r = store.get(&ids[0]).unwrap();
    assert_eq!(r.content.applicant.unwrap().name, NAME);
    assert_eq!(r.notes[0].text, NOTE);
}
