//! `sambung demo`: a walk-through of the device core on a temporary store,
//! with the embedded example requests. Everything it shows is real: a real
//! SQLite file, real encryption, real validation.

use std::time::Instant;

use sambung_core::identifiers::Nik;
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::{AttachmentRole, Details, Kind};
use sambung_core::store::{Identity, ListFilter, Secret, Store};
use sambung_core::{Error, templates};

use crate::output::{self, CliError};

fn step(title: &str) {
    println!("\n== {title}");
}

pub fn run() -> Result<(), CliError> {
    println!("Part one: the phone, offline.");
    device_walkthrough()?;
    println!("\nPart two: a resident, a field officer and the back office over an EDGE link.");
    crate::demo_sync::run()
}

fn device_walkthrough() -> Result<(), CliError> {
    let tmp = tempfile::tempdir()
        .map_err(|e| CliError::Failed(format!("cannot create a temporary folder: {e}")))?;
    let home = tmp.path().join("device");
    let pass = Secret::passphrase("correct horse battery staple");

    step("1. A resident's phone: create the encrypted store");
    let t = Instant::now();
    let me = Identity {
        user: "resident-demo".into(),
        role: Role::Resident,
    };
    Store::init(&home, &pass, me)?;
    let store = Store::open(&home, &pass)?;
    println!(
        "store in {} (passphrase stretched with PBKDF2, {} rounds; init + open took {} ms)",
        home.display(),
        sambung_core::crypto::PBKDF2_ROUNDS,
        t.elapsed().as_millis()
    );

    step("2. A request with mistakes is refused, with every problem named");
    let mut bad = templates::example(Kind::Birth);
    if let Details::Birth(b) = &mut bad.details {
        b.mother_nik = Nik::from("9973017208900000");
        b.birth_date = sambung_core::Date("2099-01-01".into());
        b.witnesses.truncate(1);
    }
    match store.create(bad) {
        Err(Error::Validation(report)) => {
            for i in &report.errors {
                println!("  {:<22} {:<16} {}", i.field, i.code.as_str(), i.message_id);
            }
        }
        other => {
            return Err(CliError::Failed(format!(
                "the invalid request was not refused: {other:?}"
            )));
        }
    }

    step("3. File one request of every kind, offline");
    let mut ids = Vec::new();
    for kind in Kind::ALL {
        ids.push((*kind, store.create(templates::example(*kind))?));
    }
    println!("{} drafts created", ids.len());
    let birth = ids
        .iter()
        .find(|(k, _)| *k == Kind::Birth)
        .map(|(_, id)| id.clone())
        .ok_or_else(|| CliError::Failed("no birth draft".into()))?;

    step("4. Submit the birth registration: the birth letter is required first");
    match store.submit(&birth) {
        Err(Error::Validation(r)) => {
            for i in &r.errors {
                println!(
                    "  refused: {} [{}] {}",
                    i.field,
                    i.code.as_str(),
                    i.message_en
                );
            }
        }
        other => {
            return Err(CliError::Failed(format!(
                "submit without attachment was not refused: {other:?}"
            )));
        }
    }
    let letter = b"%PDF-1.4 surat keterangan lahir (demo)".repeat(2000);
    let a = store.attach(
        &birth,
        AttachmentRole::BirthLetter,
        "surat-lahir.pdf",
        "application/pdf",
        letter.as_slice(),
    )?;
    println!(
        "  attached {} ({} bytes, stored encrypted in {} KiB chunks)",
        a.name,
        a.size,
        sambung_core::store::CHUNK_SIZE / 1024
    );
    println!("  submitted: {}", store.submit(&birth)?);
    store.add_note(
        &birth,
        "Akta kelahiran mohon dikirim ke alamat rumah.",
        false,
    )?;

    step("5. What the phone lists (projection columns; only titles decrypted)");
    output::print_list(&store.list(&ListFilter {
        limit: Some(5),
        ..Default::default()
    })?);
    println!(
        "  … {} requests, {} with changes not yet synced",
        store.list(&ListFilter::default())?.len(),
        store.pending_count()?
    );

    step("6. Find requests by NIK through keyed hashes (no NIK is stored in plaintext)");
    let found = store.find_by_nik("3273014108900007")?;
    println!("  {} requests name the applicant's NIK", found.len());

    step("7. Nothing personal is readable in the files");
    drop(store);
    let mut scanned = 0usize;
    let mut leaks = 0usize;
    for entry in std::fs::read_dir(&home).map_err(|e| CliError::Failed(e.to_string()))? {
        let bytes = std::fs::read(entry.map_err(|e| CliError::Failed(e.to_string()))?.path())
            .map_err(|e| CliError::Failed(e.to_string()))?;
        scanned += bytes.len();
        for needle in [
            &b"Siti Aminah"[..],
            b"3273014108900007",
            b"surat keterangan lahir",
            b"Akta kelahiran",
        ] {
            leaks += bytes.windows(needle.len()).filter(|w| *w == needle).count();
        }
    }
    println!(
        "  scanned {scanned} bytes of database, WAL and shared memory: {leaks} occurrence(s) of the applicant's name, NIK, note or attachment text"
    );

    step("8. A wrong passphrase is a clear error, never garbage");
    match Store::open(&home, &Secret::passphrase("wrong")) {
        Err(e @ Error::WrongKey) => println!("  {e}"),
        other => {
            return Err(CliError::Failed(format!(
                "a wrong passphrase was not refused: {other:?}"
            )));
        }
    }

    step("9. Rotate the key: everything re-encrypted in one transaction");
    let mut store = Store::open(&home, &pass)?;
    let new_pass = Secret::passphrase("a new passphrase after the old phone was lost");
    store.rekey(&new_pass)?;
    drop(store);
    let store = Store::open(&home, &new_pass)?;
    let r = store.get(&birth)?;
    println!(
        "  reopened with the new passphrase: {} is {}",
        r.title(),
        r.status()
    );
    let pending = store.pending_count()?;
    drop(store);

    step("10. Wipe: refused while changes have not reached the server");
    match Store::wipe(&home, false) {
        Err(e @ Error::UnsyncedChanges { .. }) => println!("  {e}"),
        other => {
            return Err(CliError::Failed(format!(
                "wipe with unsynced changes was not refused: {other:?}"
            )));
        }
    }
    Store::wipe(&home, true)?;
    println!(
        "  forced: {pending} unsynced request(s) deleted; store gone: {}",
        !Store::exists(&home)
    );

    step("11. Services defined as data, not code: the village letters the app knows offline");
    crate::demo_catalog::run()?;
    assert_status(r.status())?;
    Ok(())
}

fn assert_status(s: Status) -> Result<(), CliError> {
    if s == Status::Submitted {
        Ok(())
    } else {
        Err(CliError::Failed(format!("unexpected status {s}")))
    }
}
