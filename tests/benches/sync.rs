//! Bytes and round trips of a sync, beside the floor and two baselines, in
//! one run: `cargo bench -p sambung-e2e --bench sync`.
//!
//! Scenarios: 1, 20 and 200 new requests pending on one device, and one
//! edited field. For each: Sambung's protocol through a real server on
//! loopback (bodies counted by the client, HTTP bytes by the link
//! simulator), Automerge's own sync protocol one document at a time (with
//! sync states kept between sessions), and one JSON POST per request. The
//! floor is the new data itself as JSON, zstd level 19.
//!
//! Bytes do not depend on the link, so no latency is simulated here;
//! `sambung demo` shows the same protocol over EDGE.

use automerge::Automerge;
use automerge::sync::{State, SyncDoc};
use sambung_core::identifiers::Phone;
use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::templates;
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
        c.http_up += up.len() + BASE_HEADERS_UP;
        c.round_trips += 1;
        server
            .receive_sync_message(ss, automerge::sync::Message::decode(&up).unwrap())
            .unwrap();
        if let Some(down) = server.generate_sync_message(ss) {
            let down = down.encode();
            c.body_down += down.len();
            c.http_down += down.len() + BASE_HEADERS_DOWN;
            device
                .receive_sync_message(ds, automerge::sync::Message::decode(&down).unwrap())
                .unwrap();
        } else {
            c.http_down += BASE_HEADERS_DOWN;
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
    }
}

fn json_posts(bodies: &[String]) -> Cost {
    let mut c = Cost::default();
    for b in bodies {
        c.body_up += b.len();
        c.http_up += b.len() + BASE_HEADERS_UP;
        c.http_down += BASE_HEADERS_DOWN;
        c.round_trips += 1;
    }
    c
}

/// `n` requests filed offline, then one sync.
async fn new_requests(n: usize) -> Run {
    let s = setup().await;
    let mut bodies = Vec::new();
    let mut automerge = Cost::default();
    for i in 0..n {
        let id = s
            .dev
            .store
            .create(templates::example(Kind::ALL[i % Kind::ALL.len()]))
            .unwrap();
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
        label: format!("{n} new request{}", if n == 1 { "" } else { "s" }),
        ours,
        automerge,
        json: json_posts(&bodies),
        floor: floor(&bodies.concat()),
    }
}

/// A request already on the server gets one field changed.
async fn edited_field() -> Run {
    let s = setup().await;
    let id = s.dev.store.create(templates::example(Kind::KtpEl)).unwrap();
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
        label: "1 edited field".into(),
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
}

fn main() {
    sambung_core::sync::install_crypto_provider();
    let full = std::env::args().any(|a| a == "--bench");
    let counts: &[usize] = if full { &[1, 20, 200] } else { &[1, 20] };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runs: Vec<Run> = counts
        .iter()
        .map(|&n| rt.block_on(new_requests(n)))
        .collect();
    runs.push(rt.block_on(edited_field()));
    println!(
        "\n== sync of one device: request bodies up/down in bytes, HTTP bytes with headers, round trips (RT)"
    );
    println!("   floor = the new data itself as JSON, zstd -19; ×floor = bytes up / floor");
    println!(
        "{:<15} {:>6} | {:>24} {:>3} {:>6} | {:>17} {:>3} {:>6} | {:>13} {:>3}",
        "scenario",
        "floor",
        "Sambung body (HTTP)",
        "RT",
        "×floor",
        "Automerge sync",
        "RT",
        "×floor",
        "JSON POSTs",
        "RT"
    );
    for r in &runs {
        println!(
            "{:<15} {:>6} | {:>7}/{:<5} ({:>8}) {:>3} {:>6.2} | {:>8}/{:<8} {:>3} {:>6.2} | {:>13} {:>3}",
            r.label,
            r.floor,
            r.ours.body_up,
            r.ours.body_down,
            r.ours.http_up + r.ours.http_down,
            r.ours.round_trips,
            r.ours.body_up as f64 / r.floor as f64,
            r.automerge.body_up,
            r.automerge.body_down,
            r.automerge.round_trips,
            r.automerge.body_up as f64 / r.floor as f64,
            r.json.body_up,
            r.json.round_trips,
        );
    }
    println!("goals: 1 round trip; bytes ≤ 1.5× the floor");
}
