//! Crashes and full disks, with real processes: a device writing and
//! syncing is killed (SIGKILL) at random points hundreds of times; a server
//! is killed mid-exchange and restarted; device and server run out of file
//! space and get it back. After each: the files pass SQLite's integrity
//! check, every write acknowledged to the caller is there, and the server
//! ends up with each change exactly once.
//!
//! The processes are `tests/src/bin/crash_child.rs`; schedules are seeded
//! (`SAMBUNG_CRASH_RUNS` sets how many device kills, default 200).

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sambung_core::crypto::DataKey;
use sambung_core::lifecycle::Role;
use sambung_core::model::{Request, RequestId};
use sambung_core::store::{Secret, Store};
use sambung_e2e::{Device, TestServer, splitmix};
use sambung_server::storage::{SqliteStorage, Storage};

const CHILD: &str = env!("CARGO_BIN_EXE_crash_child");

/// What a child said it wrote (each line printed after the store
/// acknowledged the write).
#[derive(Default, Debug)]
struct Acked {
    creates: Vec<RequestId>,
    notes: Vec<(RequestId, String)>,
    syncs: usize,
    errors: Vec<String>,
}

impl Acked {
    fn parse(out: &[u8]) -> Acked {
        let mut a = Acked::default();
        for line in String::from_utf8_lossy(out).lines() {
            let words: Vec<&str> = line.splitn(3, ' ').collect();
            match words[..] {
                ["create", id] => a.creates.push(RequestId::parse(id).unwrap()),
                ["note", id, marker] => a
                    .notes
                    .push((RequestId::parse(id).unwrap(), marker.to_owned())),
                ["synced"] => a.syncs += 1,
                ["error", ..] => a.errors.push(line.to_owned()),
                _ => {}
            }
        }
        a
    }

    fn extend(&mut self, other: Acked) {
        self.creates.extend(other.creates);
        self.notes.extend(other.notes);
        self.syncs += other.syncs;
        self.errors.extend(other.errors);
    }
}

fn notes_with(r: &Request, marker: &str) -> usize {
    r.notes.iter().filter(|n| n.text == marker).count()
}

fn open_store(dir: &Path, key: [u8; 32]) -> Store {
    Store::open(dir, &Secret::Key(DataKey::from_bytes(key))).unwrap()
}

/// Every acknowledged write is in `store` once.
fn holds(store: &Store, acked: &Acked) {
    store.integrity_check().unwrap();
    for id in &acked.creates {
        store.get(id).unwrap();
    }
    for (id, marker) in &acked.notes {
        assert_eq!(notes_with(&store.get(id).unwrap(), marker), 1, "{marker}");
    }
}

/// Every acknowledged write is on the server once, and the server holds
/// exactly the requests `dev` holds.
fn on_server_once(storage: &dyn Storage, dev: &Device, acked: &Acked) {
    let request = |id: &RequestId| -> Request {
        let stored = storage
            .document(id.to_bytes().unwrap())
            .unwrap()
            .unwrap_or_else(|| panic!("a request never reached the server"));
        autosurgeon::hydrate(&automerge::AutoCommit::load(&stored.data).unwrap()).unwrap()
    };
    for id in &acked.creates {
        request(id);
    }
    for (id, marker) in &acked.notes {
        assert_eq!(notes_with(&request(id), marker), 1, "{marker}");
    }
    let docs: BTreeSet<[u8; 16]> = storage
        .log_since(0, 1_000_000)
        .unwrap()
        .into_iter()
        .map(|e| e.doc)
        .collect();
    let held: BTreeSet<[u8; 16]> = dev.ids().iter().map(|i| i.to_bytes().unwrap()).collect();
    assert_eq!(docs, held);
}

/// Syncs until nothing is pending (bounded).
async fn drain(dev: &Device) {
    for _ in 0..30 {
        if dev.store.pending_count().unwrap() == 0 {
            return;
        }
        let _ = dev.sync().await;
    }
    assert_eq!(dev.store.pending_count().unwrap(), 0, "still pending");
}

/// The child process, under a file-size limit when given one: the soft
/// limit (the hard one stays unlimited, so it can be raised again) makes
/// writes past it fail as on a full disk. SIGXFSZ is ignored so the write
/// fails instead of the process dying; an ignored signal stays ignored
/// across exec.
fn child_command(limit: Option<u64>) -> Command {
    match limit {
        None => Command::new(CHILD),
        Some(bytes) => {
            let mut c = Command::new("sh");
            c.args([
                "-c",
                r#"trap "" XFSZ; exec prlimit --fsize="$0":unlimited -- "$@""#,
                &bytes.to_string(),
                CHILD,
            ]);
            c
        }
    }
}

/// Space returns: the file-size limit of a running process is lifted.
fn lift_limit(pid: u32) {
    let status = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--fsize=unlimited:unlimited"])
        .status()
        .unwrap();
    assert!(status.success());
}

fn device_child(dir: &Path, key: [u8; 32], url: &str, seed: u64, limit: Option<u64>) -> Child {
    child_command(limit)
        .args([
            "device",
            dir.to_str().unwrap(),
            &hex::encode(key),
            url,
            &seed.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Kills `child` (SIGKILL) and returns what it printed that was not taken
/// already; it must not have panicked.
fn kill(mut child: Child) -> Vec<String> {
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn runs() -> u64 {
    std::env::var("SAMBUNG_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_killed_at_random_points_keeps_every_acknowledged_write_and_syncs_it_once() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await
        .key;
    let mut acked = Acked::default();
    let mut rng = 0x5EED;
    let runs = runs();
    for run in 0..runs {
        let mut child = device_child(dir.path(), key, &server.url(), run, None);
        let lines = lines_of(&mut child);
        let mut said = Vec::new();
        let r = splitmix(&mut rng);
        if r.is_multiple_of(2) {
            // At any time: while the process starts, opens the store,
            // writes or syncs.
            std::thread::sleep(Duration::from_millis(r % 160));
        } else {
            // After some writes whatever the machine's speed, then a moment.
            let writes = 1 + (r >> 8) % 40;
            while (said.len() as u64) < writes {
                match lines.recv_timeout(Duration::from_secs(30)) {
                    Ok(l) => said.push(l),
                    Err(_) => break,
                }
            }
            std::thread::sleep(Duration::from_micros((r >> 16) % 5000));
        }
        said.extend(kill(child));
        said.extend(lines.iter());
        let this = Acked::parse(said.join("\n").as_bytes());
        // After each kill the store opens, is intact and holds what was
        // acknowledged.
        holds(&open_store(dir.path(), key), &this);
        acked.extend(this);
    }
    println!(
        "{runs} kills: {} creates, {} notes, {} syncs acknowledged",
        acked.creates.len(),
        acked.notes.len(),
        acked.syncs
    );
    // The kills landed everywhere: many writes and syncs got through.
    assert!(acked.creates.len() as u64 > runs, "{}", acked.creates.len());
    assert!(acked.notes.len() as u64 > runs / 2, "{}", acked.notes.len());
    assert!(acked.syncs as u64 > runs / 8, "{}", acked.syncs);
    assert!(acked.errors.is_empty(), "{:?}", acked.errors);
    let dev = Device::open(dir.path(), &server.url(), key, "warga-1");
    holds(&dev.store, &acked);
    drain(&dev).await;
    on_server_once(server.state.storage(), &dev, &acked);
}

/// A server process on `dir`'s SQLite database, listening on `addr`.
struct ServerChild(Child);

impl ServerChild {
    fn start(dir: &Path, addr: &str, limit: Option<u64>) -> ServerChild {
        let mut child = child_command(limit)
            .args(["server", dir.to_str().unwrap(), addr])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert_eq!(first.trim(), "ready", "the server child did not start");
        ServerChild(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL (again, if it was already killed) and reaps it.
    fn kill(mut self) {
        let _ = self.0.kill();
        self.0.wait().unwrap();
    }
}

/// A server database in a new directory with an enrollment code for a
/// resident, and a free loopback address for it.
fn server_data(dir: &Path) -> (String, String) {
    let storage = SqliteStorage::open(dir).unwrap();
    let account = sambung_server::accounts::Account {
        id: "warga-1".into(),
        role: Role::Resident,
        regions: vec![],
        nik_hash: None,
    };
    let code =
        sambung_server::enroll::create(&storage, &account, sambung_e2e::now(), 3600).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (code, format!("127.0.0.1:{port}"))
}

fn server_intact(dir: &Path) {
    let conn = rusqlite::Connection::open(dir.join("server.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// Writes a few requests and notes on `dev`; returns them as acknowledged.
fn write_some(dev: &Device, rng: &mut u64, round: usize) -> Acked {
    let mut acked = Acked::default();
    for i in 0..4 {
        let mut content = sambung_core::templates::example(sambung_core::model::Kind::Complaint);
        content.region = "32.73.01.1001".into();
        acked.creates.push(dev.store.create(content).unwrap());
        let ids: Vec<RequestId> = dev.ids().into_iter().collect();
        let id = ids[splitmix(rng) as usize % ids.len()].clone();
        let marker = format!("r{round}n{i}");
        dev.store.add_note(&id, &marker, false).unwrap();
        acked.notes.push((id, marker));
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_exchange_loses_nothing_and_doubles_nothing() {
    sambung_core::sync::install_crypto_provider();
    let data = tempfile::tempdir().unwrap();
    let (code, addr) = server_data(data.path());
    let url = format!("http://{addr}");
    let mut server = ServerChild::start(data.path(), &addr, None);
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::enroll(dir.path(), &url, &code, Role::Resident, "warga-1").await;
    let mut rng = 0xC0FFEE;
    let mut acked = Acked::default();
    let mut cut = 0;
    for round in 0..30 {
        acked.extend(write_some(&dev, &mut rng, round));
        let delay = Duration::from_micros(splitmix(&mut rng) % 20_000);
        let (synced, ()) = tokio::join!(dev.sync(), async {
            tokio::time::sleep(delay).await;
            let _ = server.0.kill(); // SIGKILL
        });
        if synced.is_err() {
            cut += 1;
        }
        server.kill();
        server_intact(data.path());
        server = ServerChild::start(data.path(), &addr, None);
        drain(&dev).await;
    }
    println!("30 server kills, {cut} of them cut a sync");
    assert!(cut >= 3, "only {cut} kills landed during an exchange");
    server.kill();
    server_intact(data.path());
    let storage = SqliteStorage::open(data.path()).unwrap();
    on_server_once(&storage, &dev, &acked);
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

/// Reads a child's stdout lines as they come, on a thread.
fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_out_of_space_refuses_writes_clearly_and_recovers_when_space_returns() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = server
        .device(dir.path(), Role::Resident, "warga-1", &[], None)
        .await
        .key;
    // Room for a little more than the files hold now.
    let limit = dir_bytes(dir.path()) + 256 * 1024;
    let mut child = device_child(dir.path(), key, &server.url(), 1, Some(limit));
    let lines = lines_of(&mut child);
    let mut said = Vec::new();
    let wait = |said: &mut Vec<String>, until: &dyn Fn(&[String]) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !until(said) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(l) => said.push(l),
                Err(_) => panic!("waited in vain; the child said {said:?}"),
            }
        }
    };
    // Full: writes are refused with an error, over and over, and the
    // process goes on.
    wait(&mut said, &|s| {
        s.iter().filter(|l| l.starts_with("error")).count() >= 5
    });
    let first_error = said.iter().position(|l| l.starts_with("error")).unwrap();
    assert!(
        first_error > 0,
        "some writes went in before the disk filled"
    );
    let error = &said[first_error];
    assert!(error.contains("disk") || error.contains("full"), "{error}");
    // Space returns: the same process writes again.
    lift_limit(child.id());
    let errors_then = said.len();
    wait(&mut said, &|s| {
        s[errors_then..]
            .iter()
            .filter(|l| l.starts_with("create"))
            .count()
            >= 3
    });
    let _ = child.kill();
    let _ = child.wait();
    let acked = Acked::parse(said.join("\n").as_bytes());
    let dev = Device::open(dir.path(), &server.url(), key, "warga-1");
    holds(&dev.store, &acked);
    drain(&dev).await;
    on_server_once(server.state.storage(), &dev, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_out_of_space_answers_clearly_and_recovers_when_space_returns() {
    sambung_core::sync::install_crypto_provider();
    let data = tempfile::tempdir().unwrap();
    let (code, addr) = server_data(data.path());
    let url = format!("http://{addr}");
    let limit = dir_bytes(data.path()) + 128 * 1024;
    let server = ServerChild::start(data.path(), &addr, Some(limit));
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::enroll(dir.path(), &url, &code, Role::Resident, "warga-1").await;
    let mut rng = 3;
    let mut acked = Acked::default();
    let mut refused = None;
    for round in 0..200 {
        acked.extend(write_some(&dev, &mut rng, round));
        if let Err(e) = dev.sync().await {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("the server's disk never filled");
    // A server error the device retries later, not a refusal of its data.
    assert!(refused.is_retryable(), "{refused:?}");
    assert!(
        dev.store.pending_count().unwrap() > 0,
        "nothing was dropped"
    );
    server_intact(data.path());
    lift_limit(server.pid());
    drain(&dev).await;
    server.kill();
    server_intact(data.path());
    let storage = SqliteStorage::open(data.path()).unwrap();
    on_server_once(&storage, &dev, &acked);
}
