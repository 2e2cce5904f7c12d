//! Load generator: N simulated devices against one real `sambung server`
//! process on loopback. Each device files M requests offline, then all sync
//! at once (bounded by `--concurrency` connections in flight); then R rounds
//! of steady syncing, each device adding a note and syncing. Reports
//! throughput, p50/p99 latency per sync, the server process's peak memory,
//! and checks that every change arrived exactly once.
//!
//! `scripts/load` builds and runs it on SQLite and on PostgreSQL; by hand:
//! `cargo run --release -p sambung-e2e --example load -- --sambung
//! target/release/sambung [--devices 1000] [--requests 20] [--rounds 3]
//! [--concurrency 64] [--database postgres://…]`.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sambung_core::lifecycle::Role;
use sambung_core::model::Kind;
use sambung_core::templates;
use sambung_e2e::Device;
use sambung_server::accounts::Account;

struct Args {
    sambung: PathBuf,
    devices: usize,
    requests: usize,
    rounds: usize,
    concurrency: usize,
    database: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        sambung: PathBuf::from("target/release/sambung"),
        devices: 1000,
        requests: 20,
        rounds: 3,
        concurrency: 64,
        database: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
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
        "error: {why}\nusage: load --sambung PATH [--devices N] [--requests M] [--rounds R] [--concurrency C] [--database URL]"
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

fn report(phase: &str, latencies: &[Duration], trips: u64, wall: Duration, changes: usize) {
    println!(
        "{phase:<22} {:>8} syncs {:>8} exchanges {:>9.1} exch/s {:>9.1} changes/s   p50 {:>7.1} ms   p99 {:>7.1} ms   wall {:>6.1} s",
        latencies.len(),
        trips,
        trips as f64 / wall.as_secs_f64(),
        changes as f64 / wall.as_secs_f64(),
        percentile(latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(latencies, 0.99).as_secs_f64() * 1000.0,
        wall.as_secs_f64(),
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = args();
    sambung_core::sync::install_crypto_provider();
    let tmp = tempfile::tempdir().unwrap();
    let server_dir = tmp.path().join("server");
    let server = start_server(&a, &server_dir);
    let pid = server.child.id();
    // Codes and the final check read the server's database directly.
    let storage = sambung_server::storage::open(&server_dir, a.database.as_deref()).unwrap();
    let backend = if a.database.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "backend {backend}: {} devices × {} requests, {} rounds, {} in flight",
        a.devices, a.requests, a.rounds, a.concurrency
    );

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
            sambung_server::enroll::create(storage.as_ref(), &account, sambung_e2e::now(), 3600)
                .unwrap();
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
    println!("enrolled in {:.1} s", t.elapsed().as_secs_f64());

    // Phase 1: everyone files M requests offline, then syncs at once.
    let mut first = Vec::new();
    for d in &devices {
        for n in 0..a.requests {
            let id = d.store.create(templates::example(Kind::Complaint)).unwrap();
            d.store.submit(&id).unwrap();
            if n == 0 {
                first.push(id);
            }
        }
    }
    let (lat, trips, wall) = sync_all(&devices, a.concurrency).await;
    report("filing burst", &lat, trips, wall, a.devices * a.requests);

    // Phase 2: steady syncing, one note per device per round.
    for round in 0..a.rounds {
        for (d, id) in devices.iter().zip(&first) {
            d.store
                .add_note(id, &format!("catatan putaran {round}"), false)
                .unwrap();
        }
        let (lat, trips, wall) = sync_all(&devices, a.concurrency).await;
        report(
            &format!("steady round {}", round + 1),
            &lat,
            trips,
            wall,
            a.devices,
        );
    }
    let (peak, now) = memory_mib(pid);
    println!("server memory: peak {peak:.0} MiB, now {now:.0} MiB (VmHWM, VmRSS)");

    // Exactly once: every request on the server once, every note once.
    let mut docs = 0usize;
    let mut after = None;
    loop {
        let rows = storage
            .list_documents(&Default::default(), after, 5000)
            .unwrap();
        let done = rows.len() < 5000;
        for row in &rows {
            after = Some((row.seq, row.id));
            if row.scope.owner.starts_with(&format!("warga-{run}-")) {
                docs += 1;
            }
        }
        if done {
            break;
        }
    }
    let mut notes_ok = true;
    for id in &first {
        let stored = storage.document(id.to_bytes().unwrap()).unwrap().unwrap();
        let doc = automerge::AutoCommit::load(&stored.data).unwrap();
        let r: sambung_core::model::Request = autosurgeon::hydrate(&doc).unwrap();
        notes_ok &= r.notes.len() == a.rounds;
    }
    let pending: usize = devices
        .iter()
        .map(|d| d.store.pending_count().unwrap())
        .sum();
    let exact = docs == a.devices * a.requests && notes_ok && pending == 0;
    println!(
        "exactly once: {} ({docs} of {} requests on the server, notes {}, {pending} pending on devices)",
        if exact { "yes" } else { "NO" },
        a.devices * a.requests,
        if notes_ok { "each once" } else { "WRONG" },
    );
    drop(server);
    if !exact {
        std::process::exit(1);
    }
}
