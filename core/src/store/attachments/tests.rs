use super::*;
use crate::crypto::DataKey;
use crate::lifecycle::Role;
use crate::model::{AttachmentRole, Kind};
use crate::store::{Identity, Secret};
use crate::time::Timestamp;

fn store(dir: &std::path::Path) -> Store {
    let who = Identity {
        user: "resident-1".into(),
        role: Role::Resident,
    };
    Store::init(dir, &Secret::Key(DataKey::from_bytes([1; 32])), who).unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(feature = "photos")]
#[test]
fn photos_are_prepared_and_their_originals_follow_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let id = s
        .create(crate::templates::example(Kind::Complaint))
        .unwrap();
    let input = crate::photo::fixtures::jpeg_with_gps(2400, 1200, 1, "MARK-GPS-4410");
    let settings = crate::photo::PhotoSettings::default();
    let r = s
        .attach_photo(
            &id,
            AttachmentRole::Photo,
            "IMG_0001.png",
            &input,
            &settings,
        )
        .unwrap();
    assert_eq!(
        (r.name.as_str(), r.mime.as_str()),
        ("IMG_0001.jpg", "image/jpeg")
    );
    let sent = s.attachment_bytes(&r.sha256).unwrap();
    assert!(!contains(&sent, b"MARK-GPS-4410") && !contains(&sent, b"Exif"));
    let img = image::load_from_memory(&sent).unwrap();
    assert_eq!((img.width(), img.height()), (1600, 800));
    // Only the prepared copy is for the server; the original stays.
    let pending = s.pending_uploads().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].sha256, r.sha256);
    let original = s.original_of(&r.sha256).unwrap().expect("original kept");
    assert_eq!(original.size, input.len() as u64);
    assert_eq!(s.attachment_bytes(&original.sha256).unwrap(), input);

    let day = 86_400_000;
    let now = Timestamp::now();
    // Undecided: kept, whatever the time.
    assert_eq!(s.purge_originals(Timestamp(now.0 + 400 * day)).unwrap(), 0);
    s.withdraw(&id, None).unwrap();
    assert_eq!(
        s.original_retention_days().unwrap(),
        DEFAULT_ORIGINAL_RETENTION_DAYS
    );
    assert_eq!(s.purge_originals(Timestamp(now.0 + day)).unwrap(), 0);
    // Decided long ago, but the prepared copy never reached the server.
    assert_eq!(s.purge_originals(Timestamp(now.0 + 31 * day)).unwrap(), 0);
    s.mark_uploaded(&r.sha256).unwrap();
    assert_eq!(s.purge_originals(Timestamp(now.0 + 29 * day)).unwrap(), 0);
    assert_eq!(s.purge_originals(Timestamp(now.0 + 31 * day)).unwrap(), 1);
    assert_eq!(s.original_of(&r.sha256).unwrap(), None);
    assert!(matches!(
        s.attachment_info(&original.sha256),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(s.attachment_bytes(&r.sha256).unwrap(), sent);
}

#[cfg(feature = "photos")]
#[test]
fn retention_zero_purges_at_the_decision_and_bad_photos_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let id = s
        .create(crate::templates::example(Kind::Complaint))
        .unwrap();
    let settings = crate::photo::PhotoSettings::default();
    assert!(matches!(
        s.attach_photo(&id, AttachmentRole::Photo, "x.gif", b"GIF89a", &settings),
        Err(Error::Photo(_))
    ));
    assert!(s.get(&id).unwrap().attachments.is_empty());
    let photo = crate::photo::fixtures::jpeg_with_gps(50, 40, 1, "m");
    let r = s
        .attach_photo(&id, AttachmentRole::Photo, "p", &photo, &settings)
        .unwrap();
    assert_eq!(r.name, "p.jpg");
    s.set_original_retention_days(0).unwrap();
    s.mark_uploaded(&r.sha256).unwrap();
    s.withdraw(&id, None).unwrap();
    assert_eq!(s.purge_originals(Timestamp::now()).unwrap(), 1);
}

#[cfg(feature = "photos")]
#[test]
fn a_rekey_keeps_originals_and_downloads_linked() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    let id = s
        .create(crate::templates::example(Kind::Complaint))
        .unwrap();
    let photo = crate::photo::fixtures::jpeg_with_gps(40, 30, 1, "m");
    let r = s
        .attach_photo(
            &id,
            AttachmentRole::Photo,
            "p.jpg",
            &photo,
            &Default::default(),
        )
        .unwrap();
    let data = vec![5u8; CHUNK_SIZE + 10];
    let info = AttachmentInfo {
        sha256: hex::encode(crypto::sha256(&data)),
        size: data.len() as u64,
        mime: "image/jpeg".into(),
    };
    s.receive_download(&info, 0, &data[..CHUNK_SIZE]).unwrap();
    s.rekey(&Secret::Key(DataKey::from_bytes([2; 32]))).unwrap();
    let original = s.original_of(&r.sha256).unwrap().expect("still linked");
    assert_eq!(s.attachment_bytes(&original.sha256).unwrap(), photo);
    assert_eq!(
        s.download_received(&info.sha256).unwrap(),
        CHUNK_SIZE as u64
    );
    s.receive_download(&info, CHUNK_SIZE as u64, &data[CHUNK_SIZE..])
        .unwrap();
    assert_eq!(s.attachment_bytes(&info.sha256).unwrap(), data);
    // Purging after the decision still finds and deletes the original.
    s.set_original_retention_days(0).unwrap();
    s.mark_uploaded(&r.sha256).unwrap();
    s.withdraw(&id, None).unwrap();
    assert_eq!(s.purge_originals(Timestamp::now()).unwrap(), 1);
    assert!(s.attachment_info(&original.sha256).is_err());
}

#[cfg(feature = "photos")]
#[test]
fn an_original_that_is_also_an_attachment_is_never_purged() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let [a, b, c] = [(); 3].map(|_| {
        s.create(crate::templates::example(Kind::Complaint))
            .unwrap()
    });
    let photo = crate::photo::fixtures::jpeg_with_gps(40, 30, 1, "m");
    // The same pixels without metadata: both prepare to the same bytes.
    let plain = crate::metadata::strip(&photo).unwrap();
    let settings = Default::default();
    let pa = s
        .attach_photo(&a, AttachmentRole::Photo, "a.jpg", &plain, &settings)
        .unwrap();
    let pb = s
        .attach_photo(&b, AttachmentRole::Photo, "b.jpg", &photo, &settings)
        .unwrap();
    assert_eq!(pa.sha256, pb.sha256);
    // The plain file is also attached as it is to a third request.
    let as_is = s
        .attach(
            &c,
            AttachmentRole::SupportingDocument,
            "c.jpg",
            "image/jpeg",
            &plain[..],
        )
        .unwrap();
    let exif_original = hex::encode(crypto::sha256(&photo));
    assert!(s.attachment_info(&exif_original).is_ok());
    s.set_original_retention_days(0).unwrap();
    s.mark_uploaded(&pa.sha256).unwrap();
    s.withdraw(&a, None).unwrap();
    s.withdraw(&b, None).unwrap();
    assert_eq!(s.purge_originals(Timestamp::now()).unwrap(), 2);
    // Both originals' links went; the one with EXIF is deleted, the one
    // that is request c's attachment stays.
    assert!(s.attachment_info(&exif_original).is_err());
    assert_eq!(s.attachment_bytes(&as_is.sha256).unwrap(), plain);
    assert_eq!(s.original_of(&pa.sha256).unwrap(), None);
}

#[test]
fn each_attachment_shows_where_its_upload_stands() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let id = s
        .create(crate::templates::example(Kind::Complaint))
        .unwrap();
    let r = s
        .attach(
            &id,
            AttachmentRole::Photo,
            "a.jpg",
            "image/jpeg",
            &[7u8; 5000][..],
        )
        .unwrap();
    let state = |s: &Store| s.uploads(&id).unwrap()[0].state.clone();
    assert_eq!(state(&s), UploadState::Queued);
    s.mark_held(&r.sha256, true).unwrap();
    assert_eq!(state(&s), UploadState::WaitingForUnmetered);
    s.mark_sent(&r.sha256, 1000).unwrap();
    assert_eq!(
        state(&s),
        UploadState::Uploading {
            sent: 1000,
            size: 5000
        }
    );
    s.mark_refused(&r.sha256, "larger than the server accepts")
        .unwrap();
    assert_eq!(
        state(&s),
        UploadState::Refused {
            reason: "larger than the server accepts".into()
        }
    );
    // Still asked about at the next sync (the server's limits may change).
    assert_eq!(s.pending_uploads().unwrap().len(), 1);
    s.mark_uploaded(&r.sha256).unwrap();
    assert_eq!(state(&s), UploadState::Done);
    assert!(s.pending_uploads().unwrap().is_empty());
    let u = &s.uploads(&id).unwrap()[0];
    assert_eq!((u.name.as_str(), u.size), ("a.jpg", 5000));
}

#[test]
fn a_request_over_its_attachment_limits_is_refused_before_storing() {
    use crate::attachment_limits::{MAX_REQUEST_ATTACHMENTS, REQUEST_LIMITS};
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let id = s
        .create(crate::templates::example(Kind::Complaint))
        .unwrap();
    for i in 0..MAX_REQUEST_ATTACHMENTS {
        s.attach(
            &id,
            AttachmentRole::Photo,
            "p.jpg",
            "image/jpeg",
            &[i as u8; 10][..],
        )
        .unwrap();
    }
    match s.attach(
        &id,
        AttachmentRole::Photo,
        "p.jpg",
        "image/jpeg",
        &[255u8; 10][..],
    ) {
        Err(Error::Forbidden(reason)) => assert_eq!(reason, REQUEST_LIMITS),
        other => panic!("expected the limit, got {other:?}"),
    }
    assert_eq!(
        s.get(&id).unwrap().attachments.len(),
        MAX_REQUEST_ATTACHMENTS
    );
    assert_eq!(s.pending_uploads().unwrap().len(), MAX_REQUEST_ATTACHMENTS);
}

/// A request this device may no longer see is dropped only once nothing
/// in it is the phone's alone: a photo's original, never uploaded, keeps
/// it until the original is purged.
#[cfg(feature = "photos")]
#[test]
fn a_request_gone_from_sight_keeps_its_photos_originals() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let id = s
        .create(crate::templates::example(Kind::Complaint))
        .unwrap();
    let input = crate::photo::fixtures::jpeg_with_gps(800, 600, 1, "MARK-GPS-7");
    let r = s
        .attach_photo(
            &id,
            AttachmentRole::Photo,
            "foto.jpg",
            &input,
            &crate::photo::PhotoSettings::default(),
        )
        .unwrap();
    // Everything the server takes has reached it.
    s.mark_uploaded(&r.sha256).unwrap();
    let synced = |s: &Store| {
        let heads = automerge::AutoCommit::load(&s.document_bytes(&id).unwrap())
            .unwrap()
            .get_heads();
        s.mark_acked(&id, &heads).unwrap();
    };
    synced(&s);
    let idb = id.to_bytes().unwrap();
    assert!(
        !s.forget_unseen(&idb).unwrap(),
        "the original is the phone's alone"
    );
    let original = s.original_of(&r.sha256).unwrap().expect("kept");
    assert_eq!(s.attachment_bytes(&original.sha256).unwrap(), input);
    // Decided, synced, the original purged after its retention: the copy
    // may go.
    s.withdraw(&id, None).unwrap();
    synced(&s);
    let later = Timestamp(Timestamp::now().0 + 31 * 86_400_000);
    assert_eq!(s.purge_originals(later).unwrap(), 1);
    assert!(s.forget_unseen(&idb).unwrap());
    assert!(s.get(&id).is_err());
}
