//! The five scenarios of "low bandwidth, measured" over every profile of
//! `shared/network-profiles.md`, beside the two baselines of that file, in
//! one run: `cargo bench -p sambung-e2e --bench link` (or `scripts/bench`).
//!
//! Sambung runs for real: a server on loopback, devices with encrypted
//! stores, the link simulator in between (virtual clock: a week of GPRS
//! runs in seconds). After a failure the device waits as its engine would
//! (until the link is back after an outage, else the engine's backoff).
//! The baselines have no server here: their exchanges — the sizes their
//! protocols produce, computed in this process — run through the same link
//! model with the same seed, retried whole after a failure:
//! - **JSON**: one POST per new request with its whole JSON, one GET per
//!   request to read, a list of ids first for a first sync, photos as one
//!   POST each (no resume);
//! - **Automerge**: Automerge's sync protocol one document at a time (sync
//!   states kept), a list of ids first for a first sync, photos as one
//!   POST each.
//!
//! Both baselines get HTTP `Content-Encoding: gzip` both ways, as a real
//! deployment would give them (photos excepted: JPEG does not compress).
//! Scenarios 2–4 run on two corpora: the 13 templates in turn (as before,
//! near-copies that flatter every compressor) and the realistic corpus of
//! `sambung_e2e::corpus` (distinct names, addresses, text, coordinates;
//! requests submitted as they are filed).
//!
//! Baseline headers are assumed at 200 B up and 100 B down per exchange;
//! Sambung's are measured (four signature headers included). The floor is
//! the new data itself as JSON, zstd -19 (for 5: with the photos as taken).
//! Without `--bench` (as `cargo test` runs it) it runs small sizes over
//! `edge` only, so the code keeps working.

use std::sync::Arc;

use automerge::Automerge;
use automerge::sync::{Message, State, SyncDoc};
use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::Role;
use sambung_core::model::{AttachmentRole, Kind, RequestContent};
use sambung_core::sync::{Client, EngineConfig, backoff};
use sambung_core::templates;
use sambung_e2e::corpus::{Corpus, Data, gzip_len};
use sambung_e2e::{Agency, Device, TestServer, kinds_without_required_attachments};
use sambung_linksim::{Link, Model, Outcome, Profile};

const BASE_HEADERS_UP: u64 = 200;
const BASE_HEADERS_DOWN: u64 = 100;
/// Give up on a run after this much virtual time.
const CAP_S: f64 = 7.0 * 24.0 * 3600.0;
/// The device's chunk of an attachment upload (core::sync).
const CHUNK: u64 = 256 * 1024;
const SEED: u64 = 20261128;

/// What one protocol cost in one scenario on one profile.
#[derive(Debug, Default, Clone)]
struct Cost {
    up: u64,
    down: u64,
    round_trips: u64,
    /// Virtual seconds from the link coming up to convergence.
    time_s: f64,
    /// Bytes sent in exchanges that did not complete.
    wasted: u64,
    /// Whether it converged within the cap.
    done: bool,
    /// Scenario 5: virtual seconds until the text was on the server.
    text_s: Option<f64>,
    /// Cuts and losses met.
    faults: u64,
}

fn region(mut c: RequestContent) -> RequestContent {
    c.region = RegionCode::from("32.73.01.1001");
    c
}

fn floor(json: &[u8]) -> u64 {
    zstd::bulk::compress(json, 19).unwrap().len() as u64
}

fn gzip(bytes: &[u8]) -> u64 {
    gzip_len(bytes) as u64
}

/// The wait after `failures` failures at `now`: until the link is back if
/// it is in an outage (the platform says so), else the engine's backoff.
fn wait(profile: &Profile, now: f64, failures: u32) -> f64 {
    let up = profile.up_again(now);
    if up > now {
        up - now
    } else {
        backoff(&EngineConfig::default(), failures, 0.5).as_secs_f64()
    }
}

/// Replays a baseline's exchanges `(up body, down body)` through the link
/// model: each one retried whole until it completes.
fn replay(profile: &Profile, exchanges: &[(u64, u64)]) -> Cost {
    let mut m = Model::new(profile.clone(), SEED);
    let t_up = profile.up_again(0.0);
    m.advance(t_up);
    let mut c = Cost::default();
    for &(up, down) in exchanges {
        let (up, down) = (up + BASE_HEADERS_UP, down + BASE_HEADERS_DOWN);
        let mut failures = 0;
        loop {
            if m.now_s() - t_up > CAP_S {
                c.time_s = m.now_s() - t_up;
                return c;
            }
            c.round_trips += 1;
            c.up += up;
            match m.exchange(up, down) {
                Outcome::Completed => {
                    c.down += down;
                    break;
                }
                _ => {
                    failures += 1;
                    c.faults += 1;
                    c.wasted += up;
                    let w = wait(profile, m.now_s(), failures);
                    m.advance(w);
                }
            }
        }
    }
    c.time_s = m.now_s() - t_up;
    c.done = true;
    c
}

/// Automerge's sync protocol between a device copy and a server copy of
/// one document, states kept: the sizes of each exchange (device message
/// up, server message down).
fn automerge_session(
    device: &mut Automerge,
    server: &mut Automerge,
    ds: &mut State,
    ss: &mut State,
) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    while let Some(up) = device.generate_sync_message(ds) {
        let up = up.encode();
        server
            .receive_sync_message(ss, Message::decode(&up).unwrap())
            .unwrap();
        let down = match server.generate_sync_message(ss) {
            Some(m) => {
                let m = m.encode();
                device
                    .receive_sync_message(ds, Message::decode(&m).unwrap())
                    .unwrap();
                gzip(&m)
            }
            None => 0,
        };
        out.push((gzip(&up), down));
        if out.len() > 20 {
            break;
        }
    }
    out
}

/// A device of `role` enrolled directly, then talking through a fresh link
/// of `profile`.
async fn device_on(
    server: &TestServer,
    dir: &std::path::Path,
    role: Role,
    user: &str,
    profile: &Profile,
) -> (Device, Arc<Link>) {
    let mut d = server.device(dir, role, user, &["32.73"], None).await;
    let (url, link) = sambung_linksim::start(&server.url(), profile.clone(), SEED).await;
    d.client = Client::new(&url, &d.config).unwrap();
    (d, link)
}

/// Syncs until the device converges (a sync with nothing left: no text,
/// no attachment), waiting after failures as the engine would.
async fn converge(d: &Device, link: &Link) -> Cost {
    let profile = link.profile().clone();
    let t_up = profile.up_again(0.0);
    link.advance(t_up);
    let before = link.stats().snapshot();
    let mut failures = 0;
    let mut text_s = None;
    let mut done = false;
    while link.now_s() - t_up < CAP_S {
        let result = d
            .client
            .sync(&d.store, &d.config, |s| {
                if text_s.is_none() && s.pushed > 0 {
                    text_s = Some(link.now_s() - t_up);
                }
            })
            .await;
        match result {
            Ok(s) if s.attachments_waiting == 0 && !s.attachments_interrupted => {
                done = d.store.pending_count().unwrap() == 0;
                if done {
                    break;
                }
            }
            // As the engine does: bytes went through before the cut, so
            // the backoff starts over.
            Ok(s) if s.attachment_bytes_up > 0 || s.pushed > 0 || s.pulled > 0 => failures = 0,
            Ok(_) => {}
            Err(e) => assert!(e.is_retryable(), "{e}"),
        }
        failures += 1;
        link.advance(wait(&profile, link.now_s(), failures));
    }
    let after = link.stats().snapshot();
    let d = |i: usize| after[i] - before[i];
    Cost {
        up: d(0),
        down: d(1),
        round_trips: d(2),
        time_s: link.now_s() - t_up,
        wasted: d(8),
        done,
        text_s,
        faults: d(4) + d(5) + d(7),
    }
}

struct Run {
    scenario: String,
    profile: &'static str,
    floor: u64,
    ours: Cost,
    json: Cost,
    automerge: Cost,
}

/// 1: the agency moves a request on; its resident pulls the change.
async fn status_change(profile: &Profile) -> Run {
    let server = TestServer::start_simulated().await;
    let dir = tempfile::tempdir().unwrap();
    let (d, link) = device_on(&server, dir.path(), Role::Resident, "warga-1", profile).await;
    let agency = Agency::enroll(&server, "dinas", &["32.73"]).await;
    let id = d
        .store
        .create(region(templates::example(Kind::Complaint)))
        .unwrap();
    d.store.submit(&id).unwrap();
    // Filed earlier on a good link (not measured).
    let direct = Client::new(&server.url(), &d.config).unwrap();
    direct.sync(&d.store, &d.config, |_| {}).await.unwrap();
    let before = d.store.document_bytes(&id).unwrap();
    let answer = agency
        .call(
            "POST",
            &format!("/v1/agency/requests/{id}/status"),
            Some(serde_json::json!({ "to": "received" })),
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.json);
    let ours = converge(&d, &link).await;
    let after = d.store.get(&id).unwrap();
    assert_eq!(after.status().as_str(), "received");
    let entry = after.history.last().unwrap();
    let floor = floor(
        serde_json::json!({ "id": id.to_string(), "status": "received", "at": entry.at, "by": entry.by })
            .to_string()
            .as_bytes(),
    );
    // JSON: the app polls its request and gets it whole.
    let whole = serde_json::to_vec(&after).unwrap();
    let json = replay(profile, &[(0, gzip(&whole))]);
    // Automerge: a session for the one document the resident holds, its
    // sync states as an earlier session left them.
    let mut server_doc = Automerge::load(&d.store.document_bytes(&id).unwrap()).unwrap();
    let mut device_doc = Automerge::load(&before).unwrap();
    let (mut ds, mut ss) = (State::new(), State::new());
    let mut earlier = Automerge::load(&before).unwrap();
    automerge_session(&mut device_doc, &mut earlier, &mut ds, &mut ss);
    // Persisted between sessions: what `State::encode` keeps.
    let mut ds = State::decode(&ds.encode()).unwrap();
    let mut ss = State::decode(&ss.encode()).unwrap();
    let exchanges = automerge_session(&mut device_doc, &mut server_doc, &mut ds, &mut ss);
    let automerge = replay(profile, &exchanges);
    Run {
        scenario: "1 status pulled".into(),
        profile: profile.name,
        floor,
        ours,
        json,
        automerge,
    }
}

/// The scenario's name with its corpus.
fn label(label: &str, data: Data) -> String {
    format!("{label} ({})", data.name())
}

/// 2 and 3: `n` new requests filed offline by `role`, then synced: on
/// templates, drafts of every kind in turn (as before); on the realistic
/// corpus, requests of `kinds` in turn, each submitted when its kind needs
/// no attachment first.
async fn new_requests(
    profile: &Profile,
    role: Role,
    n: usize,
    name: &str,
    data: Data,
    kinds: &[Kind],
) -> Run {
    let server = TestServer::start_simulated().await;
    let dir = tempfile::tempdir().unwrap();
    let (d, link) = device_on(&server, dir.path(), role, "pengguna-1", profile).await;
    let mut corpus = Corpus::new(SEED + n as u64);
    let mut bodies = Vec::new();
    let mut am = Vec::new();
    for i in 0..n {
        // Templates: every kind in turn, as the runs before the corpus did.
        let kinds = if data == Data::Templates {
            Kind::ALL
        } else {
            kinds
        };
        let content = data.request(&mut corpus, kinds[i % kinds.len()]);
        let submit = data == Data::Realistic && content.details.required_attachments().is_empty();
        let id = d.store.create(content).unwrap();
        if submit {
            d.store.submit(&id).unwrap();
        }
        bodies.push(serde_json::to_vec(&d.store.get(&id).unwrap()).unwrap());
        let mut device = Automerge::load(&d.store.document_bytes(&id).unwrap()).unwrap();
        am.extend(automerge_session(
            &mut device,
            &mut Automerge::new(),
            &mut State::new(),
            &mut State::new(),
        ));
    }
    let ours = converge(&d, &link).await;
    assert_eq!(server.log_len(), n, "every request on the server");
    let json: Vec<(u64, u64)> = bodies.iter().map(|b| (gzip(b), 0)).collect();
    Run {
        scenario: label(name, data),
        profile: profile.name,
        floor: floor(&bodies.concat()),
        ours,
        json: replay(profile, &json),
        automerge: replay(profile, &am),
    }
}

/// 4: an officer's first sync of `n` requests of the region.
async fn first_sync(profile: &Profile, n: usize, data: Data) -> Run {
    let server = TestServer::start_simulated().await;
    let dir = tempfile::tempdir().unwrap();
    // Filed by a colleague over the months before (not measured).
    let seeder = server
        .device(
            &dir.path().join("s"),
            Role::Officer,
            "petugas-lama",
            &["32.73"],
            None,
        )
        .await;
    // Submitted (another officer's drafts stay with it), of every kind that
    // needs no attachment to be submitted.
    let kinds = kinds_without_required_attachments();
    let mut corpus = Corpus::new(SEED ^ n as u64);
    for i in 0..n {
        let id = seeder
            .store
            .create(data.request(&mut corpus, kinds[i % kinds.len()]))
            .unwrap();
        seeder.store.submit(&id).unwrap();
    }
    seeder.sync_until_ok(3).await;
    let (d, link) = device_on(
        &server,
        &dir.path().join("o"),
        Role::Officer,
        "petugas-baru",
        profile,
    )
    .await;
    let ours = converge(&d, &link).await;
    assert_eq!(d.ids().len(), n, "every request on the new phone");
    let mut all = Vec::new();
    let mut pages = Vec::new();
    let mut am = vec![(0u64, 37 * n as u64)]; // the list of ids
    for id in d.ids() {
        let r = serde_json::to_vec(&d.store.get(&id).unwrap()).unwrap();
        all.extend_from_slice(&r);
        pages.push(r);
        let mut server_doc = Automerge::load(&seeder.store.document_bytes(&id).unwrap()).unwrap();
        am.extend(automerge_session(
            &mut Automerge::new(),
            &mut server_doc,
            &mut State::new(),
            &mut State::new(),
        ));
    }
    // JSON: the list of ids, then each request (compressed answers).
    let mut json = vec![(0u64, 37 * n as u64)];
    json.extend(pages.iter().map(|p| (0, gzip(p))));
    Run {
        scenario: label("4 first sync", data),
        profile: profile.name,
        floor: floor(&all),
        ours,
        json: replay(profile, &json),
        automerge: replay(profile, &am),
    }
}

/// A phone photo of about `target` bytes: a 4:3 picture with grain, JPEG 90.
fn phone_photo(target: usize, seed: u32) -> Vec<u8> {
    let mut w = 4000u32;
    loop {
        let h = w * 3 / 4;
        let mut x = seed | 1;
        let img = image::RgbImage::from_fn(w, h, |i, j| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let grain = (x % 40) as u8;
            image::Rgb([
                ((i * 255 / w) as u8).saturating_add(grain),
                ((j * 255 / h) as u8).saturating_add(grain / 2),
                (((i + j) % 256) as u8 / 2).saturating_add(grain),
            ])
        });
        let mut out = Vec::new();
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, 90,
        ))
        .unwrap();
        if out.len() <= target * 11 / 10 || w < 400 {
            return out;
        }
        w = w * 9 / 10;
    }
}

/// 5: a complaint with three phone photos, prepared on the phone
/// (downscaled, no EXIF) or, to show what resumable uploads alone do, sent
/// as taken.
async fn complaint_with_photos(profile: &Profile, photo_bytes: usize, prepare: bool) -> Run {
    let server = TestServer::start_simulated().await;
    let dir = tempfile::tempdir().unwrap();
    let (d, link) = device_on(&server, dir.path(), Role::Resident, "warga-1", profile).await;
    let id = d
        .store
        .create(region(templates::example(Kind::Complaint)))
        .unwrap();
    let photos: Vec<Vec<u8>> = (1..=3).map(|s| phone_photo(photo_bytes, s)).collect();
    let mut prepared = 0;
    for (i, p) in photos.iter().enumerate() {
        let name = format!("IMG_{i}.jpg");
        let r = if prepare {
            d.store
                .attach_photo(&id, AttachmentRole::Photo, &name, p, &Default::default())
                .unwrap()
        } else {
            d.store
                .attach(&id, AttachmentRole::Photo, &name, "image/jpeg", &p[..])
                .unwrap()
        };
        prepared += r.size;
    }
    d.store.submit(&id).unwrap();
    let text = serde_json::to_vec(&d.store.get(&id).unwrap()).unwrap();
    let ours = converge(&d, &link).await;
    let taken: u64 = photos.iter().map(|p| p.len() as u64).sum();
    assert_eq!(prepared < taken, prepare);
    let mut whole = text.clone();
    for p in &photos {
        whole.extend_from_slice(p);
    }
    let mut json = vec![(gzip(&text), 0)];
    json.extend(photos.iter().map(|p| (p.len() as u64, 0)));
    let mut device = Automerge::load(&d.store.document_bytes(&id).unwrap()).unwrap();
    let mut am = automerge_session(
        &mut device,
        &mut Automerge::new(),
        &mut State::new(),
        &mut State::new(),
    );
    am.extend(photos.iter().map(|p| (p.len() as u64, 0)));
    let mut json_cost = replay(profile, &json);
    json_cost.text_s = Some(replay(profile, &json[..1]).time_s);
    let mut am_cost = replay(profile, &am);
    am_cost.text_s = Some(replay(profile, &am[..am.len() - 3]).time_s);
    Run {
        scenario: if prepare {
            "5 photos"
        } else {
            "5 photos as taken"
        }
        .into(),
        profile: profile.name,
        floor: floor(&whole),
        ours,
        json: json_cost,
        automerge: am_cost,
    }
}

fn kb(b: u64) -> String {
    if b >= 10 * 1024 * 1024 {
        format!("{:.1}M", b as f64 / 1048576.0)
    } else {
        format!("{:.1}k", b as f64 / 1024.0)
    }
}

fn time(c: &Cost) -> String {
    if !c.done {
        return "never".into();
    }
    let t = c.time_s;
    if t >= 3600.0 {
        format!("{:.1}h", t / 3600.0)
    } else if t >= 60.0 {
        format!("{:.1}m", t / 60.0)
    } else if t >= 10.0 {
        format!("{t:.1}s")
    } else {
        format!("{t:.2}s")
    }
}

fn cell(c: &Cost) -> String {
    format!(
        "{:>8} {:>7} {:>4} {:>7}",
        kb(c.up),
        kb(c.down),
        c.round_trips,
        time(c)
    )
}

fn main() {
    sambung_core::sync::install_crypto_provider();
    let full = std::env::args().any(|a| a == "--bench");
    let profiles: Vec<Profile> = if full {
        Profile::all()
    } else {
        vec![Profile::named("edge").unwrap()]
    };
    let (n2, n3, n4, photo) = if full {
        (20, 200, 500, 3_000_000)
    } else {
        (5, 20, 30, 300_000)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut runs = Vec::new();
    for p in &profiles {
        runs.push(rt.block_on(status_change(p)));
        for data in [Data::Templates, Data::Realistic] {
            // Residents file complaints most; an officer files every kind.
            let (two, resident_kinds) = match data {
                Data::Templates => ("2 new requests", Kind::ALL),
                Data::Realistic => ("2 complaints", &[Kind::Complaint][..]),
            };
            runs.push(rt.block_on(new_requests(
                p,
                Role::Resident,
                n2,
                two,
                data,
                resident_kinds,
            )));
            runs.push(rt.block_on(new_requests(
                p,
                Role::Officer,
                n3,
                "3 officer's week",
                data,
                Kind::ALL,
            )));
            runs.push(rt.block_on(first_sync(p, n4, data)));
        }
    }
    // Scenario 5 is about EDGE and its outages; the other profiles show
    // the same path on better and worse links.
    for p in &profiles {
        runs.push(rt.block_on(complaint_with_photos(p, photo, true)));
        runs.push(rt.block_on(complaint_with_photos(p, photo, false)));
    }
    runs.sort_by(|a, b| a.scenario.cmp(&b.scenario));
    println!(
        "\n== the five scenarios over every profile: HTTP bytes up / down (bodies and headers), round trips, virtual time to convergence"
    );
    println!(
        "   baselines get HTTP gzip both ways; floor = the new data as JSON, zstd -19; ×floor = Sambung's bytes up and down / floor; wasted = bytes sent in exchanges that did not complete"
    );
    println!(
        "{:<30} {:<17} {:>8} | {:>8} {:>7} {:>4} {:>7} {:>6} {:>7} | {:>29} | {:>29}",
        "scenario",
        "profile",
        "floor",
        "Sambung↑",
        "↓",
        "RT",
        "time",
        "×floor",
        "wasted",
        "JSON ↑ ↓ RT time",
        "Automerge ↑ ↓ RT time"
    );
    for r in &runs {
        println!(
            "{:<30} {:<17} {:>8} | {} {:>6.2} {:>7} | {} | {}",
            r.scenario,
            r.profile,
            kb(r.floor),
            cell(&r.ours),
            (r.ours.up + r.ours.down) as f64 / r.floor as f64,
            kb(r.ours.wasted),
            cell(&r.json),
            cell(&r.automerge),
        );
        if let (Some(t), true) = (r.ours.text_s, r.scenario.starts_with('5')) {
            println!(
                "{:<49}   text on the server after {t:.1}s (JSON {:.1}s, Automerge {:.1}s); {} faults; resent ≤ one chunk per fault: {}",
                "",
                r.json.text_s.unwrap_or(f64::NAN),
                r.automerge.text_s.unwrap_or(f64::NAN),
                r.ours.faults,
                r.ours.wasted <= r.ours.faults * (CHUNK + 4096)
            );
        }
    }
    // The goals, checked on the figures above.
    let mut report = Vec::new();
    for r in &runs {
        let ratio = (r.ours.up + r.ours.down) as f64 / r.floor as f64;
        let fewer = r.ours.up + r.ours.down
            < (r.json.up + r.json.down).min(r.automerge.up + r.automerge.down);
        let faster = r.ours.done
            && (!r.json.done || r.ours.time_s < r.json.time_s)
            && (!r.automerge.done || r.ours.time_s < r.automerge.time_s);
        let mut misses = Vec::new();
        if !fewer {
            misses.push("bytes not below both baselines".to_string());
        }
        if !faster {
            misses.push("time not below both baselines".to_string());
        }
        let scenario_goal = match &r.scenario[..1] {
            "2" | "3" | "4" if ratio > 1.2 => Some(format!("{ratio:.2}× the floor (goal 1.2×)")),
            "1" | "2" if r.ours.round_trips > 1 && r.ours.faults == 0 => {
                Some(format!("{} round trips (goal 1)", r.ours.round_trips))
            }
            _ => None,
        };
        misses.extend(scenario_goal);
        if !misses.is_empty() {
            report.push(format!(
                "{} on {}: {}",
                r.scenario,
                r.profile,
                misses.join("; ")
            ));
        }
    }
    println!("goals not met ({} of {} runs):", report.len(), runs.len());
    for line in report {
        println!("  {line}");
    }
}
