//! Bytes and round trips of a sync, beside the floor and two baselines, in
//! one run: `cargo bench -p sambung-e2e --bench sync`.
//!
//! Scenarios: 1, 20 and 200 new requests pending on one device, and one
//! edited field, on two corpora: `templates` (the 13 examples in turn —
//! near-copies that flatter every compressor) and `realistic` (distinct
//! names, addresses, free text and coordinates from `sambung_e2e::corpus`;
//! each request filed, i.e. created and submitted, as residents do). For
//! each: Sambung's protocol through a real server on loopback (bodies
//! counted by the client, HTTP bytes by the link simulator), Automerge's own
//! sync protocol one document at a time (with sync states kept between
//! sessions), and one JSON POST per request — both baselines also with the
//! compression a real deployment gives them (`Content-Encoding: gzip` both
//! ways). The floor is the new data itself as JSON, zstd level 19.
//!
//! Bytes do not depend on the link, so no latency is simulated here;
//! `sambung demo` shows the same protocol over EDGE.
//!
//! Budgets: one round trip per scenario, and 20 realistic complaints
//! within 1.2× the floor (headers and answer included). The run fails when
//! one breaks — in `scripts/test` too, which runs this bench once.

use automerge::Automerge;
use automerge::sync::{State, SyncDoc};
use sambung_core::identifiers::Phone;
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_e2e::corpus::{Corpus, Data, gzip_len};
use sambung_e2e::{Device, Profile, TestServer};

/// An unsigned HTTP POST's request line and headers, and a response's status
/// line and headers, as assumed for the baselines (Sambung's own are
/// measured, signature headers included).
const BASE_HEADERS_UP: usize = 200;
const BASE_HEADERS_DOWN: usize = 100;

#[derive(Default, Debug)]
struct Cost {
    body_up: usize,
    body_down: usize,
    http_up: usize,
    http_down: usize,
    round_trips: usize,
    /// The baselines' bodies with HTTP gzip (level 6) both ways.
    gzip_up: usize,
    gzip_down: usize,
}

fn floor(json: &str) -> usize {
    zstd::bulk::compress(json.as_bytes(), 19).unwrap().len()
}

/// Automerge's sync protocol for one document between a device copy and a
/// server copy, with persistent states; returns the cost of one session.
fn automerge_session(
    device: &mut Automerge,
    server: &mut Automerge,
    ds: &mut State,
    ss: &mut State,
) -> Cost {
    let mut c = Cost::default();
    loop {
        let up = device.generate_sync_message(ds);
        let Some(up) = up else { break };
        let up = up.encode();
        c.body_up += up.len();
        c.gzip_up += gzip_len(&up) + BASE_HEADERS_UP;
        c.http_up += up.len() + BASE_HEADERS_UP;
        c.round_trips += 1;
        server
            .receive_sync_message(ss, automerge::sync::Message::decode(&up).unwrap())
            .unwrap();
        if let Some(down) = server.generate_sync_message(ss) {
            let down = down.encode();
            c.body_down += down.len();
            c.gzip_down += gzip_len(&down) + BASE_HEADERS_DOWN;
            c.http_down += down.len() + BASE_HEADERS_DOWN;
            device
                .receive_sync_message(ds, automerge::sync::Message::decode(&down).unwrap())
                .unwrap();
        } else {
            c.http_down += BASE_HEADERS_DOWN;
            c.gzip_down += BASE_HEADERS_DOWN;
        }
        if c.round_trips > 20 {
            break;
        }
    }
    c
}

struct Run {
    label: String,
    ours: Cost,
    automerge: Cost,
    json: Cost,
    floor: usize,
}

struct Setup {
    _server: TestServer,
    link: std::sync::Arc<sambung_linksim::Link>,
    dev: Device,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let server = TestServer::start().await;
    let profile = Profile::lossless();
    let (link_url, link) = sambung_linksim::start(&server.url(), profile, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let code = server.code(Role::Resident, "warga-1", &[], None);
    let mut dev = Device::enroll(dir.path(), &server.url(), &code, Role::Resident, "warga-1").await;
    dev.client = sambung_core::sync::Client::new(&link_url, &dev.config).unwrap();
    Setup {
        _server: server,
        link,
        dev,
        _dir: dir,
    }
}

/// One sync of the device, measured.
async fn measure(s: &Setup) -> Cost {
    let before = s.link.stats().snapshot();
    let summary = s.dev.sync().await.unwrap();
    let after = s.link.stats().snapshot();
    Cost {
        body_up: summary.bytes_up as usize,
        body_down: summary.bytes_down as usize,
        http_up: (after[0] - before[0]) as usize,
        http_down: (after[1] - before[1]) as usize,
        round_trips: summary.round_trips as usize,
        ..Cost::default()
    }
}

fn json_posts(bodies: &[String]) -> Cost {
    let mut c = Cost::default();
    for b in bodies {
        c.body_up += b.len();
        c.http_up += b.len() + BASE_HEADERS_UP;
        c.http_down += BASE_HEADERS_DOWN;
        c.gzip_up += gzip_len(b.as_bytes()) + BASE_HEADERS_UP;
        c.gzip_down += BASE_HEADERS_DOWN;
        c.round_trips += 1;
    }
    c
}

/// `n` requests of `kinds` filed offline, then one sync.
async fn new_requests(n: usize, data: Data, kinds: &[Kind], what: &str) -> Run {
    let s = setup().await;
    let mut corpus = Corpus::new(0x5a3b_0000 + n as u64);
    let mut bodies = Vec::new();
    let mut automerge = Cost::default();
    for i in 0..n {
        let c = data.request(&mut corpus, kinds[i % kinds.len()]);
        let submit = data == Data::Realistic && c.details.required_attachments().is_empty();
        let id = s.dev.store.create(c).unwrap();
        if submit {
            s.dev.store.submit(&id).unwrap();
        }
        bodies.push(serde_json::to_string(&s.dev.store.get(&id).unwrap()).unwrap());
        // Automerge's protocol for the same document, against an empty server copy.
        let mut device = Automerge::load(&s.dev.store.unacked_changes(&id).unwrap()).unwrap();
        let c = automerge_session(
            &mut device,
            &mut Automerge::new(),
            &mut State::new(),
            &mut State::new(),
        );
        add(&mut automerge, &c);
    }
    let ours = measure(&s).await;
    Run {
        label: format!("{n} {what}, {}", data.name()),
        ours,
        automerge,
        json: json_posts(&bodies),
        floor: floor(&bodies.concat()),
    }
}

/// A request already on the server gets one field changed.
async fn edited_field(data: Data) -> Run {
    let s = setup().await;
    let mut corpus = Corpus::new(0x5a3b_ed17);
    let id = s
        .dev
        .store
        .create(data.request(&mut corpus, Kind::KtpEl))
        .unwrap();
    let mut device = Automerge::load(&s.dev.store.unacked_changes(&id).unwrap()).unwrap();
    let mut server = Automerge::new();
    let (mut ds, mut ss) = (State::new(), State::new());
    automerge_session(&mut device, &mut server, &mut ds, &mut ss);
    s.dev.sync().await.unwrap();
    let mut content = s.dev.store.get(&id).unwrap().content;
    content.contact_phone = Some(Phone::from("+62 813-0000-1111"));
    s.dev.store.update_content(&id, content).unwrap();
    device
        .load_incremental(&s.dev.store.unacked_changes(&id).unwrap())
        .unwrap();
    let automerge = automerge_session(&mut device, &mut server, &mut ds, &mut ss);
    let ours = measure(&s).await;
    let changed = serde_json::json!({ "id": id.to_string(), "contact_phone": "+62 813-0000-1111" })
        .to_string();
    let whole = serde_json::to_string(&s.dev.store.get(&id).unwrap()).unwrap();
    Run {
        label: format!("1 edited field, {}", data.name()),
        ours,
        automerge,
        json: json_posts(&[whole]),
        floor: floor(&changed),
    }
}

fn add(total: &mut Cost, c: &Cost) {
    total.body_up += c.body_up;
    total.body_down += c.body_down;
    total.http_up += c.http_up;
    total.http_down += c.http_down;
    total.round_trips += c.round_trips;
    total.gzip_up += c.gzip_up;
    total.gzip_down += c.gzip_down;
}

fn main() {
    sambung_core::sync::install_crypto_provider();
    let full = std::env::args().any(|a| a == "--bench");
    let counts: &[usize] = if full { &[1, 20, 200] } else { &[1, 20] };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runs = Vec::new();
    for data in [Data::Templates, Data::Realistic] {
        for &n in counts {
            runs.push(rt.block_on(new_requests(n, data, Kind::ALL, "new requests")));
        }
        runs.push(rt.block_on(edited_field(data)));
    }
    // The scenario residents make most: complaints in their own words.
    runs.push(rt.block_on(new_requests(
        20,
        Data::Realistic,
        &[Kind::Complaint],
        "complaints",
    )));
    println!(
        "\n== sync of one device: request bodies up/down in bytes, HTTP bytes with headers, round trips (RT)"
    );
    println!(
        "   floor = the new data itself as JSON, zstd -19; ×floor = HTTP bytes up and down (headers and answer included) / floor"
    );
    println!(
        "   baselines: raw bodies, and HTTP with gzip both ways (assumed headers {BASE_HEADERS_UP} B up, {BASE_HEADERS_DOWN} B down)"
    );
    println!(
        "{:<32} {:>6} | {:>24} {:>3} {:>6} | {:>17} {:>9} {:>3} {:>6} | {:>7} {:>9} {:>3} {:>6}",
        "scenario",
        "floor",
        "Sambung body (HTTP)",
        "RT",
        "×floor",
        "Automerge sync",
        "gzip HTTP",
        "RT",
        "×floor",
        "JSON up",
        "gzip HTTP",
        "RT",
        "×floor",
    );
    let mut misses = Vec::new();
    for r in &runs {
        let ratio = (r.ours.http_up + r.ours.http_down) as f64 / r.floor as f64;
        println!(
            "{:<32} {:>6} | {:>7}/{:<5} ({:>8}) {:>3} {:>6.2} | {:>8}/{:<8} {:>9} {:>3} {:>6.2} | {:>7} {:>9} {:>3} {:>6.2}",
            r.label,
            r.floor,
            r.ours.body_up,
            r.ours.body_down,
            r.ours.http_up + r.ours.http_down,
            r.ours.round_trips,
            ratio,
            r.automerge.body_up,
            r.automerge.body_down,
            r.automerge.gzip_up + r.automerge.gzip_down,
            r.automerge.round_trips,
            (r.automerge.gzip_up + r.automerge.gzip_down) as f64 / r.floor as f64,
            r.json.body_up,
            r.json.gzip_up + r.json.gzip_down,
            r.json.round_trips,
            (r.json.gzip_up + r.json.gzip_down) as f64 / r.floor as f64,
        );
        if r.ours.round_trips != 1 {
            misses.push(format!("{}: {} round trips", r.label, r.ours.round_trips));
        }
        if r.label.starts_with("20 complaints") && ratio > 1.2 {
            misses.push(format!("{}: {ratio:.2}× the floor (goal 1.2×)", r.label));
        }
    }
    println!(
        "goals: 1 round trip; 20 realistic complaints within 1.2× the floor, headers and answer included"
    );
    println!(
        "goals not met: {}",
        if misses.is_empty() {
            "none".to_string()
        } else {
            misses.join("; ")
        }
    );
    // These goals were met once (issue 18): a budget, so `scripts/test`
    // (which runs this bench once) fails when a change undoes them.
    assert!(
        misses.is_empty(),
        "a byte budget that held is broken: {}",
        misses.join("; ")
    );
}
