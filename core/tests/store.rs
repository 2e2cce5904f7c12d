//! The encrypted store against real SQLite files.

mod common;

use std::sync::Arc;

use common::*;
use rusqlite::Connection;
use sambung_core::lifecycle::Status;
use sambung_core::model::{AttachmentRole, Details, Kind};
use sambung_core::store::{CHUNK_SIZE, DB_FILE, ListFilter, SCHEMA_VERSION, Secret, Store};
use sambung_core::validation::Code;
use sambung_core::{Error, templates};

fn db(dir: &std::path::Path) -> Connection {
    Connection::open(dir.join(DB_FILE)).unwrap()
}

#[test]
fn open_refuses_wrong_keys_missing_stores_and_double_init() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert!(matches!(
        Store::open(&home, &key(1)),
        Err(Error::NotInitialised(_))
    ));
    assert!(!home.exists(), "open must not create anything");
    drop(store(&home, resident()));
    assert!(Store::open(&home, &key(1)).is_ok());
    assert!(matches!(Store::open(&home, &key(2)), Err(Error::WrongKey)));
    assert!(matches!(
        Store::open(&home, &Secret::passphrase("x")),
        Err(Error::WrongKey)
    ));
    assert!(matches!(
        Store::init(&home, &key(1), resident()),
        Err(Error::AlreadyInitialised(_))
    ));

    let p = dir.path().join("pass");
    Store::init_with_rounds(&p, &Secret::passphrase("geheim"), resident(), rounds()).unwrap();
    assert!(Store::open(&p, &Secret::passphrase("geheim")).is_ok());
    assert!(matches!(
        Store::open(&p, &Secret::passphrase("Geheim")),
        Err(Error::WrongKey)
    ));
    assert!(matches!(Store::open(&p, &key(1)), Err(Error::WrongKey)));
}

#[test]
fn a_damaged_file_is_a_clear_error_and_is_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(DB_FILE),
        b"this is not a database, but it is someone's file",
    )
    .unwrap();
    let before = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    let err = Store::open(dir.path(), &key(1)).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("left untouched"));
    assert_eq!(std::fs::read(dir.path().join(DB_FILE)).unwrap(), before);
    assert!(matches!(
        Store::wipe(dir.path(), false),
        Err(Error::Corrupt(_))
    ));
    assert_eq!(std::fs::read(dir.path().join(DB_FILE)).unwrap(), before);

    // A real store whose key record was damaged.
    let d2 = tempfile::tempdir().unwrap();
    drop(store(d2.path(), resident()));
    db(d2.path())
        .execute("UPDATE meta SET value = x'00' WHERE key = 'kdf'", [])
        .unwrap();
    assert!(matches!(
        Store::open(d2.path(), &key(1)),
        Err(Error::Corrupt(_))
    ));
}

#[test]
fn a_store_of_schema_1_is_migrated_on_open_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let id = s.create(templates::example(Kind::KtpEl)).unwrap();
    s.submit(&id).unwrap();
    let heads = s.pending().unwrap()[0].heads.clone();
    drop(s);
    // Back to what the first release wrote.
    let c = db(dir.path());
    c.execute_batch(
        "DROP TABLE repairs; DROP TABLE originals; DROP TABLE downloads; DROP TABLE catalog;
         DROP TABLE code_parts; DROP TABLE codes_words; DROP TABLE codes; DROP TABLE code_lists;
         ALTER TABLE attachments DROP COLUMN uploaded;
         ALTER TABLE attachments DROP COLUMN local_only;
         ALTER TABLE attachments DROP COLUMN sent;
         ALTER TABLE attachments DROP COLUMN refused;
         ALTER TABLE attachments DROP COLUMN held;
         ALTER TABLE requests DROP COLUMN refused;
         ALTER TABLE requests DROP COLUMN offered;
         DROP INDEX requests_by_update_id;
         CREATE INDEX requests_by_update ON requests (updated_at DESC);",
    )
    .unwrap();
    c.pragma_update(None, "user_version", 1).unwrap();
    drop(c);
    let s = Store::open(dir.path(), &key(1)).unwrap();
    assert_eq!(s.get(&id).unwrap().id, id);
    // A request from before the `offered` column may have been sent (its
    // answer lost): its history is pushed as it is, never rewritten.
    assert_eq!(s.changes_to_push(&id).unwrap().1, heads);
    assert!(s.repairs().unwrap().is_empty());
    s.mark_for_repair(&id, "checking").unwrap();
    assert_eq!(s.repairs().unwrap(), vec![id.clone()]);
    // A repair shows like a refusal but is not one: nothing is discarded.
    assert!(matches!(s.discard_refused(&id), Err(Error::Forbidden(_))));
    assert_eq!(s.get(&id).unwrap().id, id);
    let v: u32 = db(dir.path())
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
}

#[test]
fn a_store_from_a_newer_app_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let id = s.create(templates::example(Kind::KtpEl)).unwrap();
    drop(s);
    db(dir.path())
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    match Store::open(dir.path(), &key(1)) {
        Err(Error::IncompatibleVersion { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected IncompatibleVersion, got {other:?}"),
    }
    // Back to the known version: the data is still there.
    db(dir.path())
        .pragma_update(None, "user_version", SCHEMA_VERSION)
        .unwrap();
    assert_eq!(
        Store::open(dir.path(), &key(1))
            .unwrap()
            .get(&id)
            .unwrap()
            .id,
        id
    );
}

#[test]
fn invalid_content_stores_nothing_and_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let mut c = templates::example(Kind::Death);
    if let Details::Death(d) = &mut c.details {
        d.deceased_nik.0 = "1".into();
        d.reporter_nik.0 = "2".into();
    }
    match s.create(c) {
        Err(Error::Validation(r)) => {
            assert_eq!(r.codes_at("details.deceased_nik"), vec![Code::NikFormat]);
            assert_eq!(r.codes_at("details.reporter_nik"), vec![Code::NikFormat]);
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert!(s.list(&ListFilter::default()).unwrap().is_empty());
    assert_eq!(s.pending_count().unwrap(), 0);
}

#[test]
fn lifecycle_is_enforced_locally() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let id = s.create(templates::example(Kind::Birth)).unwrap();
    assert_eq!(s.get(&id).unwrap().status(), Status::Draft);
    // The birth letter is required before submission.
    match s.submit(&id) {
        Err(Error::Validation(r)) => {
            assert_eq!(
                r.codes_at("attachments.birth_letter"),
                vec![Code::AttachmentMissing]
            );
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    s.attach(
        &id,
        AttachmentRole::BirthLetter,
        "surat.pdf",
        "application/pdf",
        &b"%PDF"[..],
    )
    .unwrap();
    assert_eq!(s.submit(&id).unwrap(), Status::Submitted);
    // A resident cannot receive, approve, or submit twice.
    for to in [
        Status::Received,
        Status::Approved,
        Status::Submitted,
        Status::Completed,
    ] {
        assert!(
            matches!(s.transition(&id, to, None), Err(Error::Forbidden(_))),
            "{to}"
        );
    }
    // Answering is only for needs_info.
    assert!(matches!(
        s.add_note(&id, "jawaban", true),
        Err(Error::Forbidden(_))
    ));
    // Content is frozen after submission for a resident.
    assert!(matches!(
        s.update_content(&id, templates::example(Kind::Birth)),
        Err(Error::Forbidden(_))
    ));
    assert_eq!(
        s.withdraw(&id, Some("salah isi".into())).unwrap(),
        Status::Withdrawn
    );
    assert!(matches!(
        s.attach(&id, AttachmentRole::Photo, "x.jpg", "image/jpeg", &b"x"[..]),
        Err(Error::Forbidden(_))
    ));
    let r = s.get(&id).unwrap();
    assert_eq!(r.history.len(), 2);
    assert_eq!(r.history[1].note.as_deref(), Some("salah isi"));
    assert_eq!(r.history[1].by, "resident-1");
    // Unknown ids.
    let other = sambung_core::model::RequestId::random();
    assert!(matches!(s.get(&other), Err(Error::NotFound { .. })));
    assert!(matches!(s.submit(&other), Err(Error::NotFound { .. })));
}

#[test]
fn an_officer_files_for_a_resident_and_answers_flow_back_to_review() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), officer());
    let id = s.create(templates::example(Kind::KtpEl)).unwrap();
    assert_eq!(
        s.get(&id).unwrap().created_role,
        sambung_core::lifecycle::Role::Officer
    );
    s.update_content(&id, templates::example(Kind::KtpEl))
        .unwrap();
    for to in [
        Status::Submitted,
        Status::Received,
        Status::InReview,
        Status::NeedsInfo,
    ] {
        assert_eq!(s.transition(&id, to, None).unwrap(), to);
    }
    assert!(matches!(
        s.transition(&id, Status::Approved, None),
        Err(Error::Forbidden(_))
    ));
    assert_eq!(
        s.add_note(&id, "Fotokopi KK sudah diterima.", true)
            .unwrap(),
        Status::InReview
    );
    let r = s.get(&id).unwrap();
    assert_eq!(r.notes.len(), 1);
    assert_eq!(r.status(), Status::InReview);
    // Bad notes are refused.
    assert!(matches!(
        s.add_note(&id, "   ", false),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        s.add_note(&id, &"x".repeat(5001), false),
        Err(Error::Validation(_))
    ));
}

#[test]
fn listing_uses_projections_sorted_by_update_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let mut ids = Vec::new();
    for kind in Kind::ALL {
        ids.push(s.create(templates::example(*kind)).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let all = s.list(&ListFilter::default()).unwrap();
    assert_eq!(all.len(), Kind::ALL.len());
    assert!(all.windows(2).all(|w| w[0].updated_at >= w[1].updated_at));
    assert_eq!(all[0].id, *ids.last().unwrap());
    assert!(all.iter().all(|r| r.status == Status::Draft && r.pending));
    // Touch the oldest: it moves to the top.
    s.add_note(&ids[0], "catatan", false).unwrap();
    let all = s.list(&ListFilter::default()).unwrap();
    assert_eq!(all[0].id, ids[0]);
    let births = s
        .list(&ListFilter {
            kind: Some(Kind::Birth),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(births.len(), 1);
    assert_eq!(births[0].title, "Birth registration: Putri Ayu");
    let ktp = ids[Kind::ALL.iter().position(|k| *k == Kind::KtpEl).unwrap()].clone();
    s.submit(&ktp).unwrap();
    let submitted = s
        .list(&ListFilter {
            status: Some(Status::Submitted),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        submitted.iter().map(|r| &r.id).collect::<Vec<_>>(),
        vec![&ktp]
    );
    assert_eq!(
        s.list(&ListFilter {
            limit: Some(3),
            ..Default::default()
        })
        .unwrap()
        .len(),
        3
    );
}

#[test]
fn find_by_nik_goes_through_keyed_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let birth = s.create(templates::example(Kind::Birth)).unwrap();
    let ktp = s.create(templates::example(Kind::KtpEl)).unwrap();
    let mut found = s.find_by_nik("3273014108900007").unwrap();
    found.sort();
    let mut expected = vec![birth.clone(), ktp];
    expected.sort();
    assert_eq!(found, expected);
    // A witness of the birth only.
    assert_eq!(s.find_by_nik("3273012207800003").unwrap(), vec![birth]);
    assert!(s.find_by_nik("3273010000000000").unwrap().is_empty());
    // The hash column holds no NIK.
    let conn = db(dir.path());
    let hashes: Vec<Vec<u8>> = conn
        .prepare("SELECT hash FROM lookups")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!hashes.is_empty());
    assert!(
        hashes
            .iter()
            .all(|h| h.len() == 16 && !contains(h, b"3273"))
    );
}

#[test]
fn attachments_are_chunked_deduplicated_and_range_readable() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let a = s.create(templates::example(Kind::Complaint)).unwrap();
    let b = s.create(templates::example(Kind::Complaint)).unwrap();
    let photo: Vec<u8> = (0..(CHUNK_SIZE * 2 + 1234))
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let r1 = s
        .attach(
            &a,
            AttachmentRole::Photo,
            "jalan.jpg",
            "image/jpeg",
            photo.as_slice(),
        )
        .unwrap();
    let r2 = s
        .attach(
            &b,
            AttachmentRole::Photo,
            "sama.jpg",
            "image/jpeg",
            photo.as_slice(),
        )
        .unwrap();
    assert_eq!(r1.sha256, r2.sha256);
    assert_eq!(r1.sha256, hex_sha(&photo));
    assert_eq!(r1.size, photo.len() as u64);
    let conn = db(dir.path());
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM attachments"), 1);
    assert_eq!(count("SELECT count(*) FROM attachment_chunks"), 3);
    // Ranges across chunk borders, at the end, and past it.
    for (off, len) in [
        (0, 10),
        (CHUNK_SIZE as u64 - 5, 10),
        (CHUNK_SIZE as u64 * 2, 5000),
        (photo.len() as u64 - 1, 100),
        (photo.len() as u64 + 5, 10),
    ] {
        let got = s.read_attachment(&r1.sha256, off, len).unwrap();
        let start = (off as usize).min(photo.len());
        let end = (off as usize + len).min(photo.len());
        assert_eq!(got, &photo[start..end], "offset {off} len {len}");
    }
    assert_eq!(s.attachment_bytes(&r1.sha256).unwrap(), photo);
    assert_eq!(
        s.attachment_info(&r1.sha256.to_uppercase()).unwrap().size,
        photo.len() as u64
    );
    assert!(matches!(
        s.attachment_bytes(&"0".repeat(64)),
        Err(Error::NotFound { .. })
    ));
    // The same photo twice on one request is referenced once.
    s.attach(
        &a,
        AttachmentRole::Photo,
        "jalan.jpg",
        "image/jpeg",
        photo.as_slice(),
    )
    .unwrap();
    assert_eq!(s.get(&a).unwrap().attachments.len(), 1);
    // Empty files are fine.
    let e = s
        .attach(
            &a,
            AttachmentRole::SupportingDocument,
            "kosong.txt",
            "text/plain",
            &b""[..],
        )
        .unwrap();
    assert_eq!(s.attachment_bytes(&e.sha256).unwrap(), b"");
}

#[test]
fn an_oversized_attachment_is_refused_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let a = s.create(templates::example(Kind::Complaint)).unwrap();
    let big = vec![7u8; CHUNK_SIZE * 3];
    match s.attach_limited(
        &a,
        AttachmentRole::Photo,
        "besar.jpg",
        "image/jpeg",
        big.as_slice(),
        (CHUNK_SIZE * 2) as u64,
    ) {
        Err(Error::AttachmentTooLarge { max, .. }) => assert_eq!(max, (CHUNK_SIZE * 2) as u64),
        other => panic!("expected AttachmentTooLarge, got {other:?}"),
    }
    let conn = db(dir.path());
    let chunks: i64 = conn
        .query_row("SELECT count(*) FROM attachment_chunks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(chunks, 0);
    assert!(s.get(&a).unwrap().attachments.is_empty());
    // Bad names are refused with a validation error.
    assert!(matches!(
        s.attach(&a, AttachmentRole::Photo, "", "image/jpeg", &b"x"[..]),
        Err(Error::Validation(_))
    ));
    // A reader that fails mid-way stores nothing.
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("card removed"));
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            buf[..n].fill(1);
            Ok(n)
        }
    }
    assert!(matches!(
        s.attach(
            &a,
            AttachmentRole::Photo,
            "x.jpg",
            "image/jpeg",
            Failing(CHUNK_SIZE + 10)
        ),
        Err(Error::Io(_))
    ));
    let chunks: i64 = conn
        .query_row("SELECT count(*) FROM attachment_chunks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(chunks, 0);
}

#[test]
fn changes_are_appended_then_compacted_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let id = s.create(templates::example(Kind::Complaint)).unwrap();
    let conn = db(dir.path());
    let row = |conn: &Connection| -> (i64, i64, i64) {
        conn.query_row(
            "SELECT snapshot_len, chunks_len, (SELECT count(*) FROM request_chunks) FROM requests",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    s.add_note(&id, "pertama", false).unwrap();
    let (snap, chunks_len, chunks) = row(&conn);
    assert_eq!(chunks, 1);
    assert!(chunks_len > 0 && chunks_len < snap);
    let mut compacted = false;
    for i in 0..60 {
        s.add_note(&id, &format!("catatan nomor {i}"), false)
            .unwrap();
        let (snap, len, n) = row(&conn);
        assert!(len <= snap, "chunks never outgrow the snapshot");
        compacted |= n == 0;
    }
    assert!(compacted, "60 notes must trigger a compaction");
    drop(s);
    let s = Store::open(dir.path(), &key(1)).unwrap();
    let r = s.get(&id).unwrap();
    assert_eq!(r.notes.len(), 61);
    assert_eq!(r.notes[60].text, "catatan nomor 59");
}

/// A request that never left the phone is pushed as one change: its
/// create, submit and notes squashed, stored so, and never squashed again
/// once offered (a retry sends the same change; later edits build on it).
#[test]
fn a_request_never_offered_is_pushed_as_one_change() {
    use automerge::AutoCommit;
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let id = s.create(templates::example(Kind::Complaint)).unwrap();
    s.submit(&id).unwrap();
    s.add_note(&id, "Lubangnya makin besar", false).unwrap();
    let before = s.get(&id).unwrap();
    let history = |bytes: &[u8]| AutoCommit::load(bytes).unwrap().get_changes(&[]).len();
    assert_eq!(history(&s.document_bytes(&id).unwrap()), 3);

    let (changes, heads) = s.changes_to_push(&id).unwrap();
    assert_eq!(history(&changes), 1, "one change");
    assert_eq!(heads.len(), 1);
    // The same request, stored with that history, its new heads pending.
    assert_eq!(s.get(&id).unwrap(), before);
    assert_eq!(history(&s.document_bytes(&id).unwrap()), 1);
    assert_eq!(s.pending().unwrap()[0].heads, heads);
    let loaded =
        sambung_core::document::RequestDoc::load(&changes, [], automerge::ActorId::random())
            .unwrap();
    assert_eq!(loaded.hydrate().unwrap(), before);

    // Offered now: a retry sends the very same change.
    assert_eq!(
        s.changes_to_push(&id).unwrap(),
        (changes.clone(), heads.clone())
    );
    // A later edit is one more change on top, not a new history.
    s.add_note(&id, "Sudah ada korban", false).unwrap();
    let (again, later) = s.changes_to_push(&id).unwrap();
    assert_eq!(history(&again), 2);
    assert_ne!(later, heads);
    let both = automerge::Automerge::load(&again).unwrap();
    assert!(
        both.get_changes(&[]).iter().any(|c| c.hash() == heads[0]),
        "built on the pushed change"
    );
    // A request the store does not hold is a clear error, and changes nothing.
    let unknown = sambung_core::model::RequestId::random();
    assert!(matches!(
        s.changes_to_push(&unknown),
        Err(Error::NotFound { .. })
    ));
    // Reopened, the store still knows it was offered.
    drop(s);
    let s = Store::open(dir.path(), &key(1)).unwrap();
    assert_eq!(history(&s.changes_to_push(&id).unwrap().0), 2);
}

#[test]
fn the_outbox_tracks_unacknowledged_changes() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let a = s.create(templates::example(Kind::KtpEl)).unwrap();
    let b = s.create(templates::example(Kind::VehicleTax)).unwrap();
    let pending = s.pending().unwrap();
    assert_eq!(pending.len(), 2);
    assert!(
        pending
            .iter()
            .all(|p| p.acked_heads.is_empty() && p.heads.len() == 1)
    );
    // Everything not acknowledged is in the changes to send: a fresh
    // document loaded from them is the whole request.
    let all = s.unacked_changes(&a).unwrap();
    let doc =
        sambung_core::document::RequestDoc::load(&all, [], automerge::ActorId::random()).unwrap();
    assert_eq!(doc.hydrate().unwrap(), s.get(&a).unwrap());
    let heads = pending.iter().find(|p| p.id == a).unwrap().heads.clone();
    s.mark_acked(&a, &heads).unwrap();
    assert_eq!(s.pending_count().unwrap(), 1);
    assert!(
        !s.list(&ListFilter::default())
            .unwrap()
            .iter()
            .find(|r| r.id == a)
            .unwrap()
            .pending
    );
    assert!(s.unacked_changes(&a).unwrap().len() < all.len());
    s.submit(&a).unwrap();
    assert_eq!(s.pending_count().unwrap(), 2);
    let p = s
        .pending()
        .unwrap()
        .into_iter()
        .find(|p| p.id == a)
        .unwrap();
    assert_eq!(p.acked_heads, heads);
    assert_eq!(
        s.list(&ListFilter {
            pending_only: true,
            ..Default::default()
        })
        .unwrap()
        .len(),
        2
    );
    assert!(matches!(
        s.mark_acked(&sambung_core::model::RequestId::random(), &heads),
        Err(Error::NotFound { .. })
    ));
    let _ = b;
}

#[test]
fn rekey_re_encrypts_everything_and_old_keys_stop_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path(), resident());
    let id = s.create(templates::example(Kind::Birth)).unwrap();
    let photo = vec![9u8; CHUNK_SIZE + 17];
    let att = s
        .attach(
            &id,
            AttachmentRole::BirthLetter,
            "surat.pdf",
            "application/pdf",
            photo.as_slice(),
        )
        .unwrap();
    s.add_note(&id, "catatan", false).unwrap();
    let before = s.get(&id).unwrap();
    s.rekey_with_rounds(&Secret::passphrase("baru"), rounds(), |_, _| {})
        .unwrap();
    // The open handle goes on working with the new keys.
    assert_eq!(s.get(&id).unwrap(), before);
    drop(s);
    assert!(matches!(
        Store::open(dir.path(), &key(1)),
        Err(Error::WrongKey)
    ));
    let mut s = Store::open(dir.path(), &Secret::passphrase("baru")).unwrap();
    assert_eq!(s.get(&id).unwrap(), before);
    assert_eq!(s.attachment_bytes(&att.sha256).unwrap(), photo);
    assert_eq!(s.find_by_nik("3273014108900007").unwrap(), vec![id.clone()]);
    assert_eq!(
        s.list(&ListFilter::default()).unwrap()[0].title,
        "Birth registration: Putri Ayu"
    );
    assert_eq!(s.identity().user, "resident-1");
    // And back to a raw key.
    s.rekey(&key(3)).unwrap();
    drop(s);
    assert!(matches!(
        Store::open(dir.path(), &Secret::passphrase("baru")),
        Err(Error::WrongKey)
    ));
    assert_eq!(
        Store::open(dir.path(), &key(3)).unwrap().get(&id).unwrap(),
        before
    );
}

#[test]
fn a_failed_rekey_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path(), resident());
    let a = s.create(templates::example(Kind::KtpEl)).unwrap();
    let b = s.create(templates::example(Kind::Complaint)).unwrap();
    // Damage one value so that the rekey fails half-way through.
    db(dir.path())
        .execute(
            "UPDATE requests SET title = x'0100' WHERE id = (SELECT max(id) FROM requests)",
            [],
        )
        .unwrap();
    assert!(matches!(s.rekey(&key(5)), Err(Error::Corrupt(_))));
    drop(s);
    assert!(matches!(
        Store::open(dir.path(), &key(5)),
        Err(Error::WrongKey)
    ));
    let s = Store::open(dir.path(), &key(1)).unwrap();
    // Both documents still open with the old key.
    assert_eq!(s.get(&a).unwrap().id, a);
    assert_eq!(s.get(&b).unwrap().id, b);
}

#[test]
fn values_moved_between_rows_fail_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let a = s.create(templates::example(Kind::KtpEl)).unwrap();
    let b = s.create(templates::example(Kind::Birth)).unwrap();
    let conn = db(dir.path());
    let snap_of = |id: &sambung_core::model::RequestId| -> (i64, Vec<u8>) {
        conn.query_row(
            "SELECT s.request, s.data FROM snapshots s JOIN requests r ON r.rid = s.request WHERE r.id = ?1",
            [id.to_bytes().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let (rid_a, _) = snap_of(&a);
    let (_, data_b) = snap_of(&b);
    conn.execute(
        "UPDATE snapshots SET data = ?2 WHERE request = ?1",
        rusqlite::params![rid_a, data_b],
    )
    .unwrap();
    assert!(matches!(s.get(&a), Err(Error::Corrupt(_))));
    assert_eq!(s.get(&b).unwrap().kind(), Kind::Birth);
}

#[test]
fn wipe_refuses_unsynced_changes_unless_forced_and_spares_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let id = s.create(templates::example(Kind::KtpEl)).unwrap();
    std::fs::write(dir.path().join("notes-of-the-user.txt"), b"mine").unwrap();
    assert!(matches!(
        Store::wipe(dir.path(), false),
        Err(Error::UnsyncedChanges { pending: 1 })
    ));
    assert_eq!(s.get(&id).unwrap().id, id, "a refused wipe deletes nothing");
    let heads = s.pending().unwrap()[0].heads.clone();
    s.mark_acked(&id, &heads).unwrap();
    drop(s);
    Store::wipe(dir.path(), false).unwrap();
    assert!(!Store::exists(dir.path()));
    assert_eq!(
        std::fs::read(dir.path().join("notes-of-the-user.txt")).unwrap(),
        b"mine"
    );
    assert!(matches!(
        Store::wipe(dir.path(), true),
        Err(Error::NotInitialised(_))
    ));

    let d2 = tempfile::tempdir().unwrap();
    let home = d2.path().join("h");
    let s = store(&home, resident());
    s.create(templates::example(Kind::KtpEl)).unwrap();
    drop(s);
    Store::wipe(&home, true).unwrap();
    assert!(!home.exists(), "an empty store folder is removed too");
}

#[test]
fn reads_run_while_another_writer_holds_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let id = s.create(templates::example(Kind::KtpEl)).unwrap();
    // Another process takes the write lock and keeps it.
    let mut other = db(dir.path());
    let tx = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    tx.execute("UPDATE meta SET value = value WHERE key = 'kdf'", [])
        .unwrap();
    // Reads go on meanwhile, without waiting.
    let t = std::time::Instant::now();
    assert_eq!(s.list(&ListFilter::default()).unwrap().len(), 1);
    assert_eq!(s.get(&id).unwrap().id, id);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "reads waited for the writer"
    );
    tx.commit().unwrap();
    // And writes resume once it is done.
    s.add_note(&id, "setelah", false).unwrap();
}

#[test]
fn a_deleted_change_is_detected_not_silently_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let id = s.create(templates::example(Kind::KtpEl)).unwrap();
    s.add_note(&id, "satu", false).unwrap();
    s.add_note(&id, "dua", false).unwrap();
    db(dir.path())
        .execute("DELETE FROM request_chunks WHERE seq = 1", [])
        .unwrap();
    assert!(matches!(s.get(&id), Err(Error::Corrupt(_))));
    db(dir.path())
        .execute("DELETE FROM request_chunks", [])
        .unwrap();
    assert!(matches!(s.get(&id), Err(Error::Corrupt(_))));
}

#[test]
fn a_handle_opened_before_a_rekey_elsewhere_cannot_write_under_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = store(dir.path(), resident());
    let b = Store::open(dir.path(), &key(1)).unwrap();
    let id = a.create(templates::example(Kind::KtpEl)).unwrap();
    a.rekey(&key(2)).unwrap();
    assert!(matches!(
        b.create(templates::example(Kind::KtpEl)),
        Err(Error::KeyChanged)
    ));
    assert!(matches!(
        b.add_note(&id, "x", false),
        Err(Error::KeyChanged)
    ));
    assert!(matches!(
        b.list(&ListFilter::default()),
        Err(Error::KeyChanged)
    ));
    assert!(matches!(b.get(&id), Err(Error::KeyChanged)));
    // The rekeyed handle goes on.
    a.add_note(&id, "lanjut", false).unwrap();
    assert_eq!(a.list(&ListFilter::default()).unwrap().len(), 1);
}

#[test]
fn no_old_key_ciphertext_survives_a_rekey() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path(), resident());
    let mut ids = Vec::new();
    for kind in Kind::ALL {
        ids.push(s.create(templates::example(*kind)).unwrap());
    }
    for id in &ids {
        s.add_note(id, "catatan yang panjang untuk mengisi halaman", false)
            .unwrap();
    }
    let photo = vec![3u8; CHUNK_SIZE * 2];
    s.attach(
        &ids[0],
        AttachmentRole::Photo,
        "a.jpg",
        "image/jpeg",
        photo.as_slice(),
    )
    .unwrap();
    // Every sealed value as it is under the old key.
    let conn = db(dir.path());
    let mut old: Vec<Vec<u8>> = Vec::new();
    for sql in [
        "SELECT title FROM requests",
        "SELECT data FROM snapshots",
        "SELECT data FROM request_chunks",
        "SELECT meta FROM attachments",
        "SELECT data FROM attachment_chunks",
        "SELECT value FROM meta WHERE key IN ('canary', 'device')",
    ] {
        let mut st = conn.prepare(sql).unwrap();
        old.extend(
            st.query_map([], |r| r.get::<_, Vec<u8>>(0))
                .unwrap()
                .map(|r| r.unwrap()),
        );
    }
    drop(conn);
    assert!(old.len() > 30);
    s.rekey(&key(9)).unwrap();
    let files = all_files(dir.path());
    for value in &old {
        // The nonce and first ciphertext bytes identify a value.
        let probe = &value[1..29.min(value.len())];
        for (path, bytes) in &files {
            assert!(
                !contains(bytes, probe),
                "old ciphertext left in {}",
                path.display()
            );
        }
    }
}

#[test]
fn an_interrupted_init_leaves_nothing_half_made() {
    let dir = tempfile::tempdir().unwrap();
    // What a crash during init leaves behind: the temporary file only.
    std::fs::write(dir.path().join("sambung.db.init"), b"half").unwrap();
    assert!(!Store::exists(dir.path()));
    assert!(matches!(
        Store::open(dir.path(), &key(1)),
        Err(Error::NotInitialised(_))
    ));
    let s = store(dir.path(), resident());
    assert!(!dir.path().join("sambung.db.init").exists());
    drop(s);
    // An empty database file under the real name is not a store.
    let d2 = tempfile::tempdir().unwrap();
    drop(Connection::open(d2.path().join(DB_FILE)).unwrap());
    assert!(matches!(
        Store::open(d2.path(), &key(1)),
        Err(Error::Corrupt(_))
    ));
}

#[test]
fn reads_run_beside_writes_and_two_handles_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(store(dir.path(), resident()));
    let second = Arc::new(Store::open(dir.path(), &key(1)).unwrap());
    let writers: Vec<_> = [s.clone(), second.clone()]
        .into_iter()
        .map(|st| {
            std::thread::spawn(move || {
                for _ in 0..25 {
                    st.create(templates::example(Kind::Complaint)).unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let s = s.clone();
        std::thread::spawn(move || {
            let mut seen = 0;
            for _ in 0..50 {
                seen = s.list(&ListFilter::default()).unwrap().len();
            }
            seen
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    assert_eq!(s.list(&ListFilter::default()).unwrap().len(), 50);
    assert_eq!(second.pending_count().unwrap(), 50);
}

fn hex_sha(b: &[u8]) -> String {
    sambung_core::crypto::sha256(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn keys_come_from_a_key_provider_and_its_failures_are_typed() {
    use sambung_core::crypto::{DataKey, KeyProvider, StaticKeyProvider};
    struct Locked;
    impl KeyProvider for Locked {
        fn data_key(&self) -> Result<DataKey, String> {
            Err("the keystore is locked until the first unlock".into())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let provider = StaticKeyProvider(DataKey::generate().unwrap());
    let secret = Secret::from_provider(&provider).unwrap();
    drop(Store::init(dir.path(), &secret, resident()).unwrap());
    assert!(Store::open(dir.path(), &Secret::from_provider(&provider).unwrap()).is_ok());
    match Secret::from_provider(&Locked) {
        Err(Error::KeyProvider(m)) => assert!(m.contains("locked")),
        other => panic!("expected a KeyProvider error, got {:?}", other.map(|_| ())),
    }
    // The device id is bound to the device's signing key.
    let s = Store::open(dir.path(), &Secret::from_provider(&provider).unwrap()).unwrap();
    assert_eq!(
        s.device_id(),
        sambung_core::protocol::device_id_of(&s.device_key().unwrap().public_key())
    );
    // The store is shared across threads by the apps.
    fn shareable<T: Send + Sync>() {}
    shareable::<Store>();
}

#[test]
fn an_older_acknowledgement_never_moves_the_frontier_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), resident());
    let id = s.create(templates::example(Kind::KtpEl)).unwrap();
    let first = s.pending().unwrap()[0].heads.clone();
    s.add_note(&id, "kedua", false).unwrap();
    let second = s.pending().unwrap()[0].heads.clone();
    s.mark_acked(&id, &second).unwrap();
    assert_eq!(s.pending_count().unwrap(), 0);
    // A late, older acknowledgement (a reordered response).
    s.mark_acked(&id, &first).unwrap();
    assert_eq!(
        s.pending_count().unwrap(),
        0,
        "the frontier stayed at the newer heads"
    );
    // Pulled changes arrive as garbage: a typed error, nothing changed.
    let garbage = sambung_core::protocol::DocPull {
        id: id.to_bytes().unwrap(),
        changes: b"\x85\x6f\x4a\x83junk".to_vec(),
        heads: vec![],
        replace: false,
    };
    assert!(s.apply_pull(&garbage).is_err());
    assert_eq!(s.get(&id).unwrap().notes.len(), 1);
}

/// The threat model's list of plaintext columns (docs/architecture.md,
/// "What is in plaintext") names every column of the store that is not
/// sealed: a column added without a decision fails here.
#[test]
fn the_threat_model_names_every_plaintext_column() {
    let dir = tempfile::tempdir().unwrap();
    drop(store(dir.path(), resident()));
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut columns = Vec::new();
    for t in &tables {
        let names: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        columns.extend(names.into_iter().map(|c| format!("{t}.{c}")));
    }
    assert!(columns.len() > 30, "{columns:?}");
    // Sealed (AEAD envelopes): the rest of the threat model.
    let sealed = [
        "requests.title",
        "snapshots.data",
        "request_chunks.data",
        "attachments.meta",
        "attachment_chunks.data",
        "downloads.meta",
        "meta.value",
    ];
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/architecture.md"),
    )
    .unwrap();
    let start = doc.find("**What is in plaintext, and why.**").unwrap();
    let end = start + doc[start..].find("Everything else").unwrap();
    // First cells of the table: `table.column`, then `column`s of the same
    // table.
    let mut listed = std::collections::BTreeSet::new();
    for row in doc[start..end].lines().filter(|l| l.starts_with("| `")) {
        let cell = row[1..].split('|').next().unwrap();
        let mut table = String::new();
        for name in cell.split('`').skip(1).step_by(2) {
            match name.split_once('.') {
                Some((t, c)) => {
                    table = t.to_owned();
                    listed.insert(format!("{t}.{c}"));
                }
                None => {
                    listed.insert(format!("{table}.{name}"));
                }
            }
        }
    }
    let unlisted: Vec<&String> = columns
        .iter()
        .filter(|c| !listed.contains(*c) && !sealed.contains(&c.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "plaintext columns missing from docs/architecture.md: {unlisted:?}"
    );
}
