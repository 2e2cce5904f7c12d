//! Attachment bytes: uploaded by content address after the text, in
//! resumable chunks checked against their SHA-256, never twice, and
//! downloadable by the agency whole or by range.

use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::Role;
use sambung_core::model::{AttachmentRole, Kind};
use sambung_core::protocol::blobs::{BLOB_PATH, UPLOAD_LENGTH, UPLOAD_OFFSET};
use sambung_core::protocol::{Call, SignedHeader};
use sambung_core::templates;
use sambung_e2e::{Agency, Device, TestServer, noise as bytes, now};
use sambung_e2e::{sha256 as sha_bytes, sha256_hex as sha};

/// A signed PATCH of one chunk, as the device.
async fn patch(
    url: &str,
    d: &Device,
    name: &str,
    offset: u64,
    length: u64,
    chunk: &[u8],
) -> reqwest::Response {
    let path = format!("{BLOB_PATH}{name}");
    let audience = d.store.enrollment().unwrap().unwrap().audience;
    let signed = d
        .store
        .device_key()
        .unwrap()
        .sign(
            d.store.device_id(),
            &Call::new(&audience, "PATCH", &path, chunk)
                .header(SignedHeader::UploadOffset, &offset.to_string())
                .header(SignedHeader::UploadLength, &length.to_string()),
            now(),
        )
        .unwrap();
    let mut req = reqwest::Client::new()
        .patch(format!("{url}{path}"))
        .header(UPLOAD_OFFSET, offset.to_string())
        .header(UPLOAD_LENGTH, length.to_string())
        .body(chunk.to_vec());
    for (k, v) in signed.pairs() {
        req = req.header(k, v);
    }
    req.send().await.unwrap()
}

/// The agency downloads an attachment of a request, whole.
async fn download(
    agency: &Agency,
    id: &sambung_core::model::RequestId,
    sha256: &str,
) -> (u16, Vec<u8>) {
    agency
        .raw_get(
            &format!("/v1/agency/requests/{id}/attachments/{sha256}"),
            None,
        )
        .await
}

fn complaint() -> sambung_core::model::RequestContent {
    let mut c = templates::example(Kind::Complaint);
    c.region = RegionCode::from("32.73.01.1001");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_upload_once_resume_and_download_by_range() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let officer = server
        .device(
            &home.path().join("o"),
            Role::Officer,
            "petugas-1",
            &["32.73"],
            None,
        )
        .await;
    let agency = Agency::enroll(&server, "dinas", &["32.73"]).await;

    // A photo of 600 KB (three chunks) and a small document.
    let photo = bytes(600 * 1024, 7);
    let letter = bytes(3000, 9);
    let id = resident.store.create(complaint()).unwrap();
    let p = resident
        .store
        .attach(
            &id,
            AttachmentRole::Photo,
            "foto.jpg",
            "image/jpeg",
            &photo[..],
        )
        .unwrap();
    let l = resident
        .store
        .attach(
            &id,
            AttachmentRole::SupportingDocument,
            "surat.pdf",
            "application/pdf",
            &letter[..],
        )
        .unwrap();
    let empty = resident
        .store
        .attach(
            &id,
            AttachmentRole::SupportingDocument,
            "kosong.txt",
            "text/plain",
            &b""[..],
        )
        .unwrap();
    resident.store.submit(&id).unwrap();
    let mut seen = 0u32;
    let s = resident
        .client
        .sync(&resident.store, &resident.config, |_| seen += 1)
        .await
        .unwrap();
    assert_eq!(s.attachments_uploaded, 3);
    assert_eq!(
        seen, s.round_trips,
        "progress after every exchange, uploads too"
    );
    assert_eq!(s.attachment_bytes_up, (photo.len() + letter.len()) as u64);
    assert_eq!(s.attachments_waiting, 0);
    // Nothing is sent again.
    let again = resident.sync().await.unwrap();
    assert_eq!(
        (again.attachments_uploaded, again.attachment_bytes_up),
        (0, 0)
    );

    // The agency downloads them, whole and by range.
    let path = format!("/v1/agency/requests/{id}/attachments");
    let whole = agency.raw_get(&format!("{path}/{}", p.sha256), None).await;
    assert_eq!(whole.0, 200);
    assert_eq!(whole.1, photo);
    let part = agency
        .raw_get(&format!("{path}/{}", p.sha256), Some("bytes=1000-1999"))
        .await;
    assert_eq!(part.0, 206);
    assert_eq!(part.1, &photo[1000..2000]);
    let tail = agency
        .raw_get(&format!("{path}/{}", l.sha256), Some("bytes=-100"))
        .await;
    assert_eq!(
        (tail.0, tail.1.as_slice()),
        (206, &letter[letter.len() - 100..])
    );
    let bad = agency
        .raw_get(&format!("{path}/{}", l.sha256), Some("bytes=5000-6000"))
        .await;
    assert_eq!(bad.0, 416);
    let nothing = agency
        .raw_get(&format!("{path}/{}", empty.sha256), None)
        .await;
    assert_eq!((nothing.0, nothing.1.len()), (200, 0));
    // Not an attachment of this request, not a hash, not a request.
    let other = sha(b"something else");
    assert_eq!(
        agency
            .call("GET", &format!("{path}/{other}"), None, None)
            .await
            .status,
        404
    );
    assert_eq!(
        agency
            .call("GET", &format!("{path}/XYZ"), None, None)
            .await
            .status,
        400
    );

    // The officer attaches the same photo to another request: not sent.
    let id2 = officer.store.create(complaint()).unwrap();
    officer
        .store
        .attach(
            &id2,
            AttachmentRole::Photo,
            "foto-lagi.jpg",
            "image/jpeg",
            &photo[..],
        )
        .unwrap();
    let s = officer.sync().await.unwrap();
    assert_eq!(
        (s.attachments_uploaded, s.attachment_bytes_up),
        (1, 0),
        "deduplicated"
    );

    // A cut upload resumes from the server's offset, never from zero.
    let big = bytes(500 * 1024, 11);
    let id3 = resident.store.create(complaint()).unwrap();
    let b = resident
        .store
        .attach(
            &id3,
            AttachmentRole::Photo,
            "besar.jpg",
            "image/jpeg",
            &big[..],
        )
        .unwrap();
    resident.store.submit(&id3).unwrap();
    let first = patch(
        &server.url(),
        &resident,
        &b.sha256,
        0,
        big.len() as u64,
        &big[..100_000],
    )
    .await;
    assert_eq!(first.status(), 204);
    assert_eq!(first.headers()[UPLOAD_OFFSET], "100000");
    let s = resident.sync().await.unwrap();
    assert_eq!(s.attachments_uploaded, 1);
    assert_eq!(
        s.attachment_bytes_up,
        (big.len() - 100_000) as u64,
        "only the rest"
    );
    let got = download(&agency, &id3, &b.sha256).await;
    assert_eq!(got.1, big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_clearly_and_keep_nothing_wrong() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let d = server
        .device(home.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let url = server.url();
    let data = bytes(4096, 3);
    let name = sha(&data);
    let code = |r: &serde_json::Value| r["code"].as_str().unwrap_or("").to_owned();

    // A chunk that does not start where the server is: 409 and where.
    let r = patch(&url, &d, &name, 100, 4096, &data[100..200]).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()[UPLOAD_OFFSET], "0");
    // Bytes that do not hash to the name: 422, and the blob is gone.
    let mut corrupt = data.clone();
    corrupt[2000] ^= 0xff;
    assert_eq!(
        patch(&url, &d, &name, 0, 4096, &corrupt[..2048])
            .await
            .status(),
        204
    );
    let r = patch(&url, &d, &name, 2048, 4096, &corrupt[2048..]).await;
    assert_eq!(r.status(), 422);
    assert_eq!(code(&r.json().await.unwrap()), "hash_mismatch");
    let digest: [u8; 32] = hex::decode(&name).unwrap().try_into().unwrap();
    assert!(
        server
            .state
            .storage()
            .blob_state(&digest)
            .unwrap()
            .is_none()
    );
    // The right bytes then go in from zero.
    assert_eq!(patch(&url, &d, &name, 0, 4096, &data).await.status(), 204);
    assert!(
        server
            .state
            .storage()
            .blob_state(&digest)
            .unwrap()
            .unwrap()
            .complete
    );
    // Whole: nothing more is taken.
    assert_eq!(patch(&url, &d, &name, 4096, 4096, b"x").await.status(), 409);

    // Bad names, lengths and sizes.
    for (n, off, len, body, status) in [
        ("NOT-A-HASH".to_owned(), 0u64, 10u64, vec![0u8; 10], 400u16),
        (name.to_uppercase(), 0, 10, vec![0; 10], 400),
        (sha(b"a"), 0, 5, vec![0; 10], 400), // past upload-length
        (sha(b"b"), 0, 30 * 1024 * 1024, vec![0; 10], 413), // over 25 MiB
        (sha(b"c"), 0, 2 * 1024 * 1024, vec![0; 1024 * 1024 + 1], 413), // chunk over 1 MiB
    ] {
        let r = patch(&url, &d, &n, off, len, &body).await;
        assert_eq!(r.status().as_u16(), status, "{n} {len}");
    }
    // An empty chunk of a blob that is not empty, twice (found by the
    // `upload` fuzz target: the second was a 500).
    for _ in 0..2 {
        let r = patch(&url, &d, &sha(b""), 0, 16_776_501, b"").await;
        assert_eq!(r.status().as_u16(), 400);
    }
    assert!(
        server
            .state
            .storage()
            .blob_state(&sha_bytes(b""))
            .unwrap()
            .is_none(),
        "nothing kept"
    );
    // Unsigned: 401.
    let r = reqwest::Client::new()
        .patch(format!("{url}{BLOB_PATH}{name}"))
        .header(UPLOAD_OFFSET, "0")
        .header(UPLOAD_LENGTH, "1")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_reach_the_agency_upright_small_and_without_exif() {
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(home.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let agency = Agency::enroll(&server, "dinas", &["32.73"]).await;
    // A 3000×2000 phone photo, stored sideways, with the home's position.
    let photo = sambung_core::photo::fixtures::jpeg_with_gps(3000, 2000, 6, "GPS-HOME-5521");
    assert!(contains(&photo, b"GPS-HOME-5521"), "control");
    let id = resident.store.create(complaint()).unwrap();
    let r = resident
        .store
        .attach_photo(
            &id,
            AttachmentRole::Photo,
            "IMG_2231.JPG",
            &photo,
            &Default::default(),
        )
        .unwrap();
    resident.store.submit(&id).unwrap();
    let s = resident.sync().await.unwrap();
    assert_eq!((s.attachments_uploaded, s.attachments_waiting), (1, 0));
    let (status, got) = download(&agency, &id, &r.sha256).await;
    assert_eq!(status, 200);
    assert_eq!(sha(&got), r.sha256);
    assert!(!contains(&got, b"GPS-HOME-5521"));
    assert!(!contains(&got, b"Exif"));
    let img = image::load_from_memory(&got).unwrap();
    assert_eq!((img.width(), img.height()), (1067, 1600), "turned upright");
    // Only the prepared copy left the phone; the original is still here.
    assert_eq!(s.attachment_bytes_up, r.size);
    let original = resident.store.original_of(&r.sha256).unwrap().unwrap();
    assert_eq!(original.size, photo.len() as u64);
    // Attached as a plain file, it keeps its pixels and loses its metadata
    // all the same.
    let plain = sambung_core::photo::fixtures::jpeg_with_gps(300, 200, 1, "GPS-PLAIN-7710");
    let id2 = resident.store.create(complaint()).unwrap();
    let p = resident
        .store
        .attach(
            &id2,
            AttachmentRole::Photo,
            "scan.jpg",
            "image/jpeg",
            &plain[..],
        )
        .unwrap();
    resident.store.submit(&id2).unwrap();
    resident.sync().await.unwrap();
    let (status, got) = download(&agency, &id2, &p.sha256).await;
    assert_eq!(status, 200);
    assert!(!contains(&got, b"GPS-PLAIN-7710") && !contains(&got, b"Exif"));
    assert_eq!(
        image::load_from_memory(&got).unwrap().to_rgb8(),
        image::load_from_memory(&plain).unwrap().to_rgb8()
    );
    // HEIC, whose metadata cannot be removed here: refused, nothing stored.
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    let draft = resident.store.create(complaint()).unwrap();
    assert!(matches!(
        resident.store.attach(
            &draft,
            AttachmentRole::Photo,
            "x.heic",
            "image/heic",
            &heic[..]
        ),
        Err(sambung_core::Error::Photo(_))
    ));
    assert!(resident.store.get(&draft).unwrap().attachments.is_empty());
    // And nothing is added once a request is submitted (the rules table).
    assert!(matches!(
        resident.store.attach(
            &id2,
            AttachmentRole::Photo,
            "late.jpg",
            "image/jpeg",
            &plain[..]
        ),
        Err(sambung_core::Error::Forbidden(_))
    ));
}

/// Syncs `d` until nothing is waiting, letting virtual time pass after a
/// failure as the engine's backoff would; returns (syncs, attachment bytes
/// sent in all).
async fn sync_until_uploaded(d: &Device, link: &sambung_linksim::Link) -> (u32, u64) {
    let mut sent = 0;
    for n in 1..=400 {
        match d.sync().await {
            Ok(s) => {
                sent += s.attachment_bytes_up;
                if s.attachments_waiting == 0 {
                    return (n, sent);
                }
            }
            Err(e) => assert!(e.is_retryable(), "{e}"),
        }
        link.advance(5.0);
    }
    panic!("the upload never finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_cut_at_random_points_resume_and_finish_whole() {
    use sambung_core::sync::Client;
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let agency = Agency::enroll(&server, "dinas", &["32.73"]).await;
    let home = tempfile::tempdir().unwrap();
    // EDGE's bandwidth and loss, with a 6 s cut every 40 s: a 1.5 MB photo
    // (two minutes of uplink) is cut several times wherever a seed puts it.
    let profile = sambung_linksim::Profile {
        outage: Some((6.0, 40.0)),
        ..sambung_linksim::Profile::named("edge").unwrap()
    };
    let mut cuts_seen = 0;
    for seed in 1..=6u64 {
        let mut d = server
            .device(
                &home.path().join(seed.to_string()),
                Role::Resident,
                &format!("warga-{seed}"),
                &[],
                None,
            )
            .await;
        let (url, link) = sambung_linksim::start(&server.url(), profile.clone(), seed).await;
        d.client = Client::new(&url, &d.config).unwrap();
        link.advance(seed as f64 * 6.7);
        let data = bytes(1_500_000, u32::from(seed as u8));
        let id = d.store.create(complaint()).unwrap();
        let a = d
            .store
            .attach(
                &id,
                AttachmentRole::Photo,
                "foto.jpg",
                "image/jpeg",
                &data[..],
            )
            .unwrap();
        d.store.submit(&id).unwrap();
        let (_, sent) = sync_until_uploaded(&d, &link).await;
        // Seeds 2 and 3 make the same bytes: the second account's request
        // was refused until its own upload of them made it an owner, and
        // its next sync delivers it.
        let held = |server: &TestServer| {
            let doc = server.state.storage().document(id.to_bytes().unwrap());
            doc.unwrap().is_some()
        };
        for _ in 0..50 {
            if held(&server) {
                break;
            }
            let _ = d.sync().await;
            link.advance(5.0);
        }
        assert!(held(&server), "seed {seed}: the request reached the server");
        let st = link.stats().snapshot();
        // Cuts before the server (outage or lost request) re-send a chunk;
        // a lost answer re-sends nothing: the device asks where to go on.
        let cuts = st[4] + st[5] + st[7];
        cuts_seen += cuts;
        assert!(
            sent <= data.len() as u64 + cuts * 256 * 1024,
            "seed {seed}: {sent} bytes sent for {} with {cuts} cuts",
            data.len()
        );
        let (status, got) = download(&agency, &id, &a.sha256).await;
        assert_eq!(status, 200);
        assert_eq!(sha(&got), a.sha256, "seed {seed}: the right bytes");
        assert_eq!(
            d.store.uploads(&id).unwrap()[0].state,
            sambung_core::store::UploadState::Done
        );
    }
    assert!(cuts_seen >= 6, "the link really cut ({cuts_seen})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_attachment_does_not_delay_text_queued_after_it() {
    use sambung_core::sync::Client;
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let agency = Agency::enroll(&server, "dinas", &["32.73"]).await;
    let home = tempfile::tempdir().unwrap();
    let mut d = server
        .device(home.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let (url, link) = sambung_linksim::start(
        &server.url(),
        sambung_linksim::Profile::named("edge").unwrap(),
        3,
    )
    .await;
    d.client = Client::new(&url, &d.config).unwrap();
    // 20 MB (27 minutes of EDGE uplink, with a cut every 5 minutes) first…
    let huge = bytes(20 * 1024 * 1024, 5);
    let first = d.store.create(complaint()).unwrap();
    let h = d
        .store
        .attach(
            &first,
            AttachmentRole::SupportingDocument,
            "video.mp4",
            "video/mp4",
            &huge[..],
        )
        .unwrap();
    d.store.submit(&first).unwrap();
    // …then a text-only complaint.
    let second = d.store.create(complaint()).unwrap();
    d.store.submit(&second).unwrap();
    let s = d.sync_until_ok(10).await;
    assert_eq!(s.pushed, 2, "both requests' text in the first sync");
    assert!(
        s.attachments_waiting > 0,
        "the huge one is still on its way"
    );
    let got = agency
        .call("GET", &format!("/v1/agency/requests/{second}"), None, None)
        .await;
    assert_eq!(got.status, 200);
    let states = d.store.uploads(&first).unwrap();
    assert!(
        matches!(states[0].state, sambung_core::store::UploadState::Uploading { sent, size } if sent > 0 && sent < size),
        "{states:?}"
    );
    // It finishes later, whole.
    sync_until_uploaded(&d, &link).await;
    let (status, bytes) = download(&agency, &first, &h.sha256).await;
    assert_eq!((status, sha(&bytes)), (200, h.sha256.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_attachments_wait_for_an_unmetered_link_unless_allowed() {
    use sambung_core::store::UploadState;
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let mut d = server
        .device(home.path(), Role::Resident, "warga-1", &[], None)
        .await;
    let id = d.store.create(complaint()).unwrap();
    let small = bytes(300 * 1024, 1);
    let large = bytes(2 * 1024 * 1024, 2);
    d.store
        .attach(
            &id,
            AttachmentRole::Photo,
            "kecil.jpg",
            "image/jpeg",
            &small[..],
        )
        .unwrap();
    d.store
        .attach(
            &id,
            AttachmentRole::Photo,
            "besar.jpg",
            "image/jpeg",
            &large[..],
        )
        .unwrap();
    d.store.submit(&id).unwrap();
    let state_of = |d: &Device, name: &str| {
        d.store
            .uploads(&id)
            .unwrap()
            .into_iter()
            .find(|u| u.name == name)
            .unwrap()
            .state
    };
    d.config.metered = true;
    let s = d.sync().await.unwrap();
    assert_eq!(
        (s.pushed, s.attachments_uploaded, s.attachments_waiting),
        (1, 1, 1)
    );
    assert_eq!(s.attachment_bytes_up, small.len() as u64);
    assert_eq!(state_of(&d, "kecil.jpg"), UploadState::Done);
    assert_eq!(state_of(&d, "besar.jpg"), UploadState::WaitingForUnmetered);
    // Still metered: still waiting, nothing sent.
    let s = d.sync().await.unwrap();
    assert_eq!((s.attachment_bytes_up, s.attachments_waiting), (0, 1));
    // The user allows it.
    d.config.large_on_metered = true;
    let s = d.sync().await.unwrap();
    assert_eq!(s.attachment_bytes_up, large.len() as u64);
    assert_eq!(state_of(&d, "besar.jpg"), UploadState::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_download_attachments_on_demand_resuming_after_cuts() {
    use sambung_core::sync::Client;
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start_simulated().await;
    let home = tempfile::tempdir().unwrap();
    let resident = server
        .device(&home.path().join("r"), Role::Resident, "warga-1", &[], None)
        .await;
    let mut officer = server
        .device(
            &home.path().join("o"),
            Role::Officer,
            "petugas-1",
            &["32.73"],
            None,
        )
        .await;
    let elsewhere = server
        .device(
            &home.path().join("x"),
            Role::Officer,
            "petugas-2",
            &["51.71"],
            None,
        )
        .await;
    let photo = bytes(900 * 1024, 21);
    let id = resident.store.create(complaint()).unwrap();
    let a = resident
        .store
        .attach(
            &id,
            AttachmentRole::Photo,
            "jalan.jpg",
            "image/jpeg",
            &photo[..],
        )
        .unwrap();
    resident.store.submit(&id).unwrap();
    resident.sync().await.unwrap();
    // The officer's sync brings the request, never the photo's bytes.
    let s = officer.sync().await.unwrap();
    assert!(s.bytes_down < 10_000, "{} bytes down", s.bytes_down);
    assert!(officer.store.attachment_bytes(&a.sha256).is_err());
    // Opened over a link that cuts: each range is kept, the next call
    // goes on from there.
    let (url, link) = sambung_linksim::start(
        &server.url(),
        sambung_linksim::Profile {
            outage: Some((10.0, 60.0)),
            ..sambung_linksim::Profile::named("edge").unwrap()
        },
        9,
    )
    .await;
    officer.client = Client::new(&url, &officer.config).unwrap();
    // Opened just before a cut.
    link.advance(45.0);
    let mut got = None;
    let mut heard = Vec::new();
    for _ in 0..50 {
        match officer
            .client
            .fetch_attachment(&officer.store, &id, &a.sha256, |n, of| heard.push((n, of)))
            .await
        {
            Ok(b) => {
                got = Some(b);
                break;
            }
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                link.advance(10.0);
            }
        }
    }
    assert_eq!(got.as_deref(), Some(&photo[..]));
    assert!(link.stats().snapshot()[7] > 0, "the link really cut");
    // Every byte came down once, bar the ranges the cuts lost.
    let down = link.stats().snapshot()[1];
    assert!(down < photo.len() as u64 + 8 * 1024, "{down}");
    assert_eq!(
        heard.last(),
        Some(&(photo.len() as u64, photo.len() as u64))
    );
    // Held now: no network needed.
    let before = link.stats().snapshot()[2];
    officer
        .client
        .fetch_attachment(&officer.store, &id, &a.sha256, |_, _| {})
        .await
        .unwrap();
    assert_eq!(link.stats().snapshot()[2], before);

    // Refusals: another region, an attachment the request does not have,
    // names that are not names.
    let get = |d: &Device, path: String| {
        let signed = d
            .store
            .device_key()
            .unwrap()
            .sign(
                d.store.device_id(),
                &Call::new(
                    &d.store.enrollment().unwrap().unwrap().audience,
                    "GET",
                    &path,
                    b"",
                ),
                now(),
            )
            .unwrap();
        let mut req = reqwest::Client::new().get(format!("{}{path}", server.url()));
        for (k, v) in signed.pairs() {
            req = req.header(k, v);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let path = |sha: &str| format!("/v1/requests/{id}/attachments/{sha}");
    assert_eq!(get(&elsewhere, path(&a.sha256)).await, 404);
    assert_eq!(get(&resident, path(&sha(b"other"))).await, 404);
    assert_eq!(get(&resident, path("XYZ")).await, 400);
    assert_eq!(
        get(
            &resident,
            format!("/v1/requests/not-a-uuid/attachments/{}", a.sha256)
        )
        .await,
        400
    );
    let unsigned = reqwest::Client::new()
        .get(format!("{}{}", server.url(), path(&a.sha256)))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(get(&resident, path(&a.sha256)).await, 200);
}

#[test]
fn a_download_goes_on_only_from_where_it_stands() {
    use sambung_core::store::AttachmentInfo;
    let dir = tempfile::tempdir().unwrap();
    let store = sambung_core::store::Store::init(
        dir.path(),
        &sambung_core::store::Secret::Key(sambung_core::crypto::DataKey::from_bytes([3; 32])),
        sambung_core::store::Identity {
            user: "petugas".into(),
            role: Role::Officer,
        },
    )
    .unwrap();
    let data = bytes(200_000, 4);
    let info = AttachmentInfo {
        sha256: sha(&data),
        size: data.len() as u64,
        mime: "image/jpeg".into(),
    };
    let chunk = sambung_core::store::CHUNK_SIZE;
    // Not where it stands, not whole chunks, past the end: refused, nothing kept.
    assert!(
        store
            .receive_download(&info, chunk as u64, &data[chunk..2 * chunk])
            .is_err()
    );
    assert!(store.receive_download(&info, 0, &data[..1000]).is_err());
    assert_eq!(store.download_received(&info.sha256).unwrap(), 0);
    assert_eq!(
        store.receive_download(&info, 0, &data[..chunk]).unwrap(),
        chunk as u64
    );
    assert_eq!(store.download_received(&info.sha256).unwrap(), chunk as u64);
    // A wrong byte in the rest: the whole is discarded.
    let mut bad = data[chunk..].to_vec();
    bad[10] ^= 1;
    match store.receive_download(&info, chunk as u64, &bad) {
        Err(e) => assert!(e.is_retryable(), "{e}"),
        Ok(n) => panic!("a corrupt download was kept ({n})"),
    }
    assert!(store.attachment_bytes(&info.sha256).is_err());
    assert_eq!(store.download_received(&info.sha256).unwrap(), 0);
    // Right, from the start.
    store.receive_download(&info, 0, &data[..chunk]).unwrap();
    store
        .receive_download(&info, chunk as u64, &data[chunk..])
        .unwrap();
    assert_eq!(store.attachment_bytes(&info.sha256).unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_shrink_their_chunks_to_fit_between_outages() {
    use sambung_core::sync::Client;
    sambung_core::sync::install_crypto_provider();
    let server = TestServer::start_simulated().await;
    let agency = Agency::enroll(&server, "dinas", &["32.73"]).await;
    let home = tempfile::tempdir().unwrap();
    let mut d = server
        .device(home.path(), Role::Resident, "warga-1", &[], None)
        .await;
    // GPRS: 20 kbit/s up, a 30 s cut every 2 minutes. A 256 KiB chunk
    // takes 105 s and never fits in the 90 s between cuts.
    let gprs = sambung_linksim::Profile {
        loss_percent: 0.0,
        ..sambung_linksim::Profile::named("gprs").unwrap()
    };
    let (url, link) = sambung_linksim::start(&server.url(), gprs, 4).await;
    d.client = Client::new(&url, &d.config).unwrap();
    let data = bytes(600 * 1024, 8);
    let id = d.store.create(complaint()).unwrap();
    let a = d
        .store
        .attach(
            &id,
            AttachmentRole::Photo,
            "foto.jpg",
            "image/jpeg",
            &data[..],
        )
        .unwrap();
    d.store.submit(&id).unwrap();
    let (_, sent) = sync_until_uploaded(&d, &link).await;
    let cuts = link.stats().snapshot()[7];
    assert!(cuts > 0, "the link cut");
    assert!(
        sent <= data.len() as u64 + cuts * 256 * 1024,
        "{sent} sent with {cuts} cuts"
    );
    let (status, got) = download(&agency, &id, &a.sha256).await;
    assert_eq!((status, sha(&got)), (200, a.sha256.clone()));
}
