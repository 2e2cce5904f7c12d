//! Load generator: N simulated devices against one real `sambung server`
//! process on loopback. Each device files M requests offline, then all sync
//! at once (bounded by `--concurrency` connections in flight); then R rounds
//! of steady syncing, each device adding a note and syncing. Reports
//! throughput, p50/p99 latency per sync, the server process's peak memory,
//! and checks after every phase that every change arrived exactly once.
//!
//! A fresh pull is measured too: a resident files 20 requests in a region
//! of their own (35.78) and a background resident files N × M / 100 in the
//! burst's region; before the burst — the log 100× smaller — and again
//! after it, fresh officer devices of region 35.78 enroll and pull, one at
//! a time, everything they may see (exactly those 20). Same server, same
//! run: the ratio of the two medians is what the rest of the log costs a
//! pull.
//!
//! The table goes to standard output; with `--json` it goes to standard
//! error and standard output gets one line of JSON instead (per phase:
//! exchanges/s, changes/s, p50, p99, peak server memory, the exactly-once
//! verdict; and the fresh pulls' ratio) — see docs/benchmarks.md, "Load".
//!
//! `scripts/load` builds and runs it on SQLite and on PostgreSQL; by hand:
//! `cargo run --release -p sambung-e2e --example load -- --sambung
//! target/release/sambung [--devices 1000] [--requests 20] [--rounds 3]
//! [--concurrency 64] [--database postgres://…] [--json]`.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::Role;
use sambung_core::model::{Kind, RequestId};
use sambung_core::templates;
use sambung_e2e::Device;
use sambung_server::accounts::Account;
use sambung_server::storage::Storage;
use serde_json::{Value, json};

/// Requests filed in the fresh pull's region (issue 16's "a region with 20
/// requests").
const REGION_REQUESTS: usize = 20;
/// The fresh pull's region (an officer's prefix): no other request of the
/// run is filed there.
const REGION: &str = "35.78";
/// The village of [`REGION`] its requests are filed in.
const REGION_VILLAGE: &str = "35.78.01.1001";
/// Fresh devices that pull, one after another, at each log size.
const FRESH_PULLS: usize = 5;

struct Args {
    sambung: PathBuf,
    devices: usize,
    requests: usize,
    rounds: usize,
    concurrency: usize,
    database: Option<String>,
    json: bool,
}

fn args() -> Args {
    let mut a = Args {
        sambung: PathBuf::from("target/release/sambung"),
        devices: 1000,
        requests: 20,
        rounds: 3,
        concurrency: 64,
        database: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--json" {
            a.json = true;
            continue;
        }
        let value = it
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let number = || {
            value
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or_else(|| usage(&format!("{flag} takes a positive number")))
        };
        match flag.as_str() {
            "--sambung" => a.sambung = PathBuf::from(&value),
            "--devices" => a.devices = number(),
            "--requests" => a.requests = number(),
            "--rounds" => a.rounds = number(),
            "--concurrency" => a.concurrency = number(),
            "--database" => a.database = Some(value),
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    a
}

fn usage(why: &str) -> ! {
    eprintln!(
        "error: {why}\nusage: load --sambung PATH [--devices N] [--requests M] [--rounds R] [--concurrency C] [--database URL] [--json]"
    );
    std::process::exit(2)
}

/// The server process and where it listens.
struct Server {
    child: std::process::Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(a: &Args, data: &std::path::Path) -> Server {
    let mut cmd = std::process::Command::new(&a.sambung);
    cmd.args(["server", "--listen", "127.0.0.1:0"])
        // One client address and devices syncing in tight rounds: the
        // production limits would measure the limiter.
        .args([
            "--limit-per-address",
            "10000000",
            "--limit-per-device",
            "100000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    match &a.database {
        // A server on PostgreSQL keeps its secrets in a file apart from
        // the database, and refuses to start without one.
        Some(url) => cmd.args(["--database", url]).arg("--secrets").arg(
            data.parent()
                .unwrap()
                .join(sambung_server::secrets::DEFAULT_FILE),
        ),
        None => cmd.args(["--data", data.to_str().unwrap()]),
    };
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| usage(&format!("cannot start {}: {e}", a.sambung.display())));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| usage(&format!("the server said: {line}")))
        .to_owned();
    Server { child, url }
}

/// Peak and current resident memory of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("VmHWM:") / 1024.0, kib("VmRSS:") / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `sync` on every device, at most `concurrency` at once; returns each
/// sync's latency, its round trips, and the wall time.
async fn sync_all(devices: &[Arc<Device>], concurrency: usize) -> (Vec<Duration>, u64, Duration) {
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for d in devices {
        let (d, gate) = (d.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let t = Instant::now();
            let summary = d.sync_until_ok(5).await;
            (t.elapsed(), summary.round_trips as u64)
        }));
    }
    let mut latencies = Vec::new();
    let mut trips = 0;
    for t in tasks {
        let (l, r) = t.await.unwrap();
        latencies.push(l);
        trips += r;
    }
    latencies.sort();
    (latencies, trips, started.elapsed())
}

/// Where the table goes: standard output, or standard error under
/// `--json` (standard output then holds only the JSON line).
struct Table {
    json: bool,
}

impl Table {
    fn line(&self, line: &str) {
        if self.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

/// One measured phase: a row of the table and an object of the JSON.
struct Phase {
    name: String,
    /// Sorted latencies, one per device sync.
    latencies: Vec<Duration>,
    exchanges: u64,
    /// Changes pushed (or, for a pull, requests received).
    changes: usize,
    wall: Duration,
    /// The server's peak resident memory so far (VmHWM).
    peak_mib: f64,
    /// Whether every change of the run so far is where it should be,
    /// once.
    exactly_once: bool,
    /// The log's newest position when the phase ran (fresh pulls only).
    log_position: Option<i64>,
}

impl Phase {
    fn row(&self) -> String {
        format!(
            "{:<22} {:>8} syncs {:>8} exchanges {:>9.1} exch/s {:>9.1} changes/s   p50 {:>7.1} ms   p99 {:>7.1} ms   wall {:>6.1} s   peak {:>4.0} MiB   exactly once {}{}",
            self.name,
            self.latencies.len(),
            self.exchanges,
            self.exchanges as f64 / self.wall.as_secs_f64(),
            self.changes as f64 / self.wall.as_secs_f64(),
            ms(percentile(&self.latencies, 0.50)),
            ms(percentile(&self.latencies, 0.99)),
            self.wall.as_secs_f64(),
            self.peak_mib,
            if self.exactly_once { "yes" } else { "NO" },
            match self.log_position {
                Some(p) => format!("   log at {p}"),
                None => String::new(),
            },
        )
    }

    fn json(&self) -> Value {
        let secs = self.wall.as_secs_f64();
        json!({
            "phase": self.name,
            "syncs": self.latencies.len(),
            "exchanges": self.exchanges,
            "changes": self.changes,
            "wall_s": secs,
            "exchanges_per_s": self.exchanges as f64 / secs,
            "changes_per_s": self.changes as f64 / secs,
            "p50_ms": ms(percentile(&self.latencies, 0.50)),
            "p99_ms": ms(percentile(&self.latencies, 0.99)),
            "peak_server_memory_mib": self.peak_mib,
            "exactly_once": self.exactly_once,
            "log_position": self.log_position,
        })
    }
}

/// A new account with an enrollment code, and its device enrolled.
async fn enroll(
    storage: &dyn Storage,
    url: &str,
    dir: PathBuf,
    user: String,
    role: Role,
    regions: &[&str],
) -> Device {
    let account = Account {
        id: user.clone(),
        role,
        regions: regions.iter().map(|r| r.to_string()).collect(),
        nik_hash: None,
    };
    let code = sambung_server::enroll::create(storage, &account, sambung_e2e::now(), 3600).unwrap();
    Device::enroll(&dir, url, &code, role, &user).await
}

/// Files `n` complaints on `device`, in `region` when given (else the
/// template's, 32.73.01.1001); their ids.
fn file(device: &Device, n: usize, region: Option<&str>) -> Vec<RequestId> {
    (0..n)
        .map(|_| {
            let mut content = templates::example(Kind::Complaint);
            if let Some(r) = region {
                content.region = RegionCode::from(r);
            }
            let id = device.store.create(content).unwrap();
            device.store.submit(&id).unwrap();
            id
        })
        .collect()
}

/// What the server holds of this run: requests per kind of owner, and the
/// log's newest position.
struct Held {
    residents: usize,
    background: usize,
    region: usize,
    log_position: i64,
}

fn held(storage: &dyn Storage, run: &str) -> Held {
    let mut h = Held {
        residents: 0,
        background: 0,
        region: 0,
        log_position: 0,
    };
    let (residents, background, region) = (
        format!("warga-{run}-"),
        format!("tetangga-{run}"),
        format!("pelapor-{run}"),
    );
    let mut after = None;
    loop {
        let rows = storage
            .list_documents(&Default::default(), after, 5000)
            .unwrap();
        let done = rows.len() < 5000;
        for row in &rows {
            after = Some((row.seq, row.id));
            h.log_position = h.log_position.max(row.seq);
            let owner = &row.scope.owner;
            if owner.starts_with(&residents) {
                h.residents += 1;
            } else if *owner == background {
                h.background += 1;
            } else if *owner == region {
                h.region += 1;
            }
        }
        if done {
            break;
        }
    }
    h
}

/// Whether each of `first` holds exactly `notes` notes on the server.
fn notes_on_server(storage: &dyn Storage, first: &[RequestId], notes: usize) -> bool {
    first.iter().all(|id| {
        let stored = storage.document(id.to_bytes().unwrap()).unwrap().unwrap();
        let doc = automerge::AutoCommit::load(&stored.data).unwrap();
        let r: sambung_core::model::Request = autosurgeon::hydrate(&doc).unwrap();
        r.notes.len() == notes
    })
}

fn pending(devices: &[Arc<Device>]) -> usize {
    devices
        .iter()
        .map(|d| d.store.pending_count().unwrap())
        .sum()
}

/// Fresh officer devices of [`REGION`], enrolled and pulling one after
/// another; the phase, with exactly-once meaning each received exactly the
/// region's requests.
#[allow(clippy::too_many_arguments)]
async fn fresh_pulls(
    name: &str,
    storage: &dyn Storage,
    url: &str,
    dir: &std::path::Path,
    user: &str,
    region_ids: &BTreeSet<RequestId>,
    pid: u32,
    log_position: i64,
) -> Phase {
    let mut latencies = Vec::new();
    let (mut exchanges, mut received, mut exact) = (0, 0, true);
    for n in 0..FRESH_PULLS {
        let officer = enroll(
            storage,
            url,
            dir.join(format!("{user}-{n}")),
            format!("{user}-{n}"),
            Role::Officer,
            &[REGION],
        )
        .await;
        let t = Instant::now();
        let summary = officer.sync_until_ok(5).await;
        latencies.push(t.elapsed());
        exchanges += summary.round_trips as u64;
        let ids = officer.ids();
        received += ids.len();
        exact &= ids == *region_ids;
    }
    let wall = latencies.iter().sum();
    latencies.sort();
    Phase {
        name: name.into(),
        latencies,
        exchanges,
        changes: received,
        wall,
        peak_mib: memory_mib(pid).0,
        exactly_once: exact,
        log_position: Some(log_position),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = args();
    let table = Table { json: a.json };
    sambung_core::sync::install_crypto_provider();
    let tmp = tempfile::tempdir().unwrap();
    let server_dir = tmp.path().join("server");
    let server = start_server(&a, &server_dir);
    let pid = server.child.id();
    // Codes and the checks read the server's database directly.
    let storage = sambung_server::storage::open(&server_dir, a.database.as_deref()).unwrap();
    let storage = storage.as_ref();
    let backend = if a.database.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    table.line(&format!(
        "backend {backend}: {} devices × {} requests, {} rounds, {} in flight",
        a.devices, a.requests, a.rounds, a.concurrency
    ));

    // Enrollment, in parallel.
    let t = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(a.concurrency));
    let mut tasks = Vec::new();
    let run = format!("{:x}", sambung_core::Timestamp::now().as_millis());
    for i in 0..a.devices {
        let user = format!("warga-{run}-{i}");
        let account = Account {
            id: user.clone(),
            role: Role::Resident,
            regions: vec![],
            nik_hash: None,
        };
        let code =
            sambung_server::enroll::create(storage, &account, sambung_e2e::now(), 3600).unwrap();
        let dir = tmp.path().join(format!("d{i}"));
        let (url, gate) = (server.url.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            Arc::new(Device::enroll(&dir, &url, &code, Role::Resident, &user).await)
        }));
    }
    let mut devices = Vec::new();
    for task in tasks {
        devices.push(task.await.unwrap());
    }
    let enrolled = t.elapsed();
    table.line(&format!("enrolled in {:.1} s", enrolled.as_secs_f64()));
    let mut phases = Vec::new();

    // The fresh pull against the small log: the region's 20 requests and
    // a hundredth of the burst's, before the burst (not timed).
    let background = (a.devices * a.requests / 100).max(1);
    let extra = [
        (
            format!("pelapor-{run}"),
            REGION_REQUESTS,
            Some(REGION_VILLAGE),
        ),
        (format!("tetangga-{run}"), background, None),
    ];
    let mut region_ids = BTreeSet::new();
    let mut filers = Vec::new();
    for (user, n, region) in extra {
        let d = enroll(
            storage,
            &server.url,
            tmp.path().join(&user),
            user,
            Role::Resident,
            &[],
        )
        .await;
        let ids = file(&d, n, region);
        if region.is_some() {
            region_ids.extend(ids);
        }
        d.sync_until_ok(5).await;
        filers.push(Arc::new(d));
    }
    let small = held(storage, &run);
    let mut phase = fresh_pulls(
        "fresh pull, small log",
        storage,
        &server.url,
        tmp.path(),
        &format!("petugas-kecil-{run}"),
        &region_ids,
        pid,
        small.log_position,
    )
    .await;
    phase.exactly_once &=
        small.region == REGION_REQUESTS && small.background == background && pending(&filers) == 0;
    table.line(&phase.row());
    phases.push(phase);

    // Phase 1: everyone files M requests offline, then syncs at once.
    let mut first = Vec::new();
    for d in &devices {
        first.push(file(d, a.requests, None).swap_remove(0));
    }
    let (latencies, exchanges, wall) = sync_all(&devices, a.concurrency).await;
    let after_burst = held(storage, &run);
    phases.push(Phase {
        name: "filing burst".into(),
        latencies,
        exchanges,
        changes: a.devices * a.requests,
        wall,
        peak_mib: memory_mib(pid).0,
        exactly_once: after_burst.residents == a.devices * a.requests
            && pending(&devices) == 0
            && notes_on_server(storage, &first, 0),
        log_position: None,
    });
    table.line(&phases.last().unwrap().row());

    // The same fresh pull, now that the log holds the burst too.
    let phase = fresh_pulls(
        "fresh pull, full log",
        storage,
        &server.url,
        tmp.path(),
        &format!("petugas-besar-{run}"),
        &region_ids,
        pid,
        after_burst.log_position,
    )
    .await;
    table.line(&phase.row());
    let ratio = ms(percentile(&phase.latencies, 0.5))
        / ms(percentile(&phases[0].latencies, 0.5)).max(f64::MIN_POSITIVE);
    let log_ratio = after_burst.log_position as f64 / small.log_position.max(1) as f64;
    table.line(&format!(
        "fresh pull of {REGION_REQUESTS} requests: p50 {ratio:.1}× with the full log (at {}) against the small one (at {}, {log_ratio:.0}× shorter)",
        after_burst.log_position, small.log_position,
    ));
    phases.push(phase);

    // Phase 2: steady syncing, one note per device per round.
    for round in 0..a.rounds {
        for (d, id) in devices.iter().zip(&first) {
            d.store
                .add_note(id, &format!("catatan putaran {round}"), false)
                .unwrap();
        }
        let (latencies, exchanges, wall) = sync_all(&devices, a.concurrency).await;
        phases.push(Phase {
            name: format!("steady round {}", round + 1),
            latencies,
            exchanges,
            changes: a.devices,
            wall,
            peak_mib: memory_mib(pid).0,
            exactly_once: pending(&devices) == 0 && notes_on_server(storage, &first, round + 1),
            log_position: None,
        });
        table.line(&phases.last().unwrap().row());
    }
    let (peak, now) = memory_mib(pid);
    table.line(&format!(
        "server memory: peak {peak:.0} MiB, now {now:.0} MiB (VmHWM, VmRSS)"
    ));

    // Exactly once: every request on the server once, every note once.
    let end = held(storage, &run);
    let notes_ok = notes_on_server(storage, &first, a.rounds);
    let pending_now = pending(&devices) + pending(&filers);
    let exact = end.residents == a.devices * a.requests
        && end.background == background
        && end.region == REGION_REQUESTS
        && notes_ok
        && pending_now == 0
        && phases.iter().all(|p| p.exactly_once);
    table.line(&format!(
        "exactly once: {} ({} of {} requests on the server, notes {}, {pending_now} pending on devices, every phase {})",
        if exact { "yes" } else { "NO" },
        end.residents,
        a.devices * a.requests,
        if notes_ok { "each once" } else { "WRONG" },
        if phases.iter().all(|p| p.exactly_once) {
            "yes"
        } else {
            "NO"
        },
    ));
    if a.json {
        let summary = json!({
            "backend": backend,
            "devices": a.devices,
            "requests": a.requests,
            "rounds": a.rounds,
            "concurrency": a.concurrency,
            "enroll_s": enrolled.as_secs_f64(),
            "phases": phases.iter().map(Phase::json).collect::<Vec<_>>(),
            "fresh_pull": {
                "region_requests": REGION_REQUESTS,
                "pulls": FRESH_PULLS,
                "small_log_position": small.log_position,
                "full_log_position": after_burst.log_position,
                "p50_ratio": ratio,
            },
            "server_memory_mib": { "peak": peak, "now": now },
            "exactly_once": exact,
        });
        println!("{summary}");
    }
    drop(server);
    if !exact {
        std::process::exit(1);
    }
}
