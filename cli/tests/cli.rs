//! The `sambung` binary, run as a user would run it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const PASS: &str = "kata sandi uji";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The `sambung` binary with a clean environment (no passphrase, no home).
fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sambung"));
    cmd.env_remove("SAMBUNG_PASSPHRASE")
        .env_remove("SAMBUNG_HOME")
        .env_remove("SAMBUNG_NEW_PASSPHRASE");
    cmd
}

/// Runs `cmd` with `stdin` written to it.
fn exec(mut cmd: Command, stdin: Option<&str>) -> Run {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut i = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            i.write_all(s.as_bytes()).unwrap();
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn run_with(
    home: Option<&Path>,
    pass: Option<&str>,
    extra_env: &[(&str, &str)],
    args: &[&str],
    stdin: Option<&str>,
) -> Run {
    let mut cmd = command();
    cmd.arg("device");
    if let Some(h) = home {
        cmd.arg("--home").arg(h);
    }
    if let Some(p) = pass {
        cmd.env("SAMBUNG_PASSPHRASE", p);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.args(args);
    exec(cmd, stdin)
}

fn run(home: &Path, args: &[&str]) -> Run {
    run_with(Some(home), Some(PASS), &[], args, None)
}

fn ok(r: Run) -> String {
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    r.stdout
}

fn template(home: &Path, kind: &str) -> String {
    ok(run(home, &["template", "--kind", kind]))
}

fn new_from_stdin(home: &Path, kind: &str, json: &str) -> Run {
    run_with(
        Some(home),
        Some(PASS),
        &[],
        &["new", "--kind", kind, "--json", "-"],
        Some(json),
    )
}

fn count(home: &Path) -> usize {
    let out = ok(run(home, &["list", "--json"]));
    serde_json::from_str::<Vec<serde_json::Value>>(&out)
        .unwrap()
        .len()
}

#[test]
fn a_resident_walks_a_request_through_its_life() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hp");
    let out = ok(run(&home, &["init", "--user", "warga-1"]));
    assert!(out.contains("warga-1 (resident)"));
    let birth = template(&home, "birth");
    let id = ok(new_from_stdin(&home, "birth", &birth)).trim().to_owned();
    assert_eq!(id.len(), 36);
    // Submitting without the birth letter names what is missing.
    let r = run(&home, &["submit", &id]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("attachments.birth_letter") && r.stderr.contains("attachment_missing")
    );
    let letter = dir.path().join("surat lahir.pdf");
    std::fs::write(&letter, b"%PDF-1.4 surat").unwrap();
    let out = ok(run(
        &home,
        &[
            "attach",
            &id,
            letter.to_str().unwrap(),
            "--role",
            "birth_letter",
        ],
    ));
    assert!(out.contains("surat lahir.pdf"));
    assert!(ok(run(&home, &["submit", &id])).contains("submitted"));
    ok(run(&home, &["note", &id, "Mohon dikirim ke rumah"]));
    let shown = ok(run(&home, &["show", &id]));
    assert!(
        shown.contains("Putri Ayu")
            && shown.contains("draft → submitted")
            && shown.contains("Mohon dikirim")
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(run(&home, &["show", &id, "--json"]))).unwrap();
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["attachments"][0]["role"], "birth_letter");
    assert_eq!(json["history"][0]["to"], "submitted");
    let list = ok(run(&home, &["list"]));
    assert!(list.contains(&id) && list.contains("submitted") && list.contains("(not synced)"));
    assert!(ok(run(&home, &["withdraw", &id, "--note", "salah"])).contains("withdrawn"));
    let filtered = ok(run(&home, &["list", "--status", "withdrawn", "--json"]));
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&filtered)
            .unwrap()
            .len(),
        1
    );
    // A draft edited from a file.
    let ktp = template(&home, "ktp_el");
    let id2 = ok(new_from_stdin(&home, "ktp_el", &ktp)).trim().to_owned();
    let f = dir.path().join("ktp.json");
    std::fs::write(&f, ktp.replace("damaged", "lost")).unwrap();
    ok(run(&home, &["edit", &id2, "--json", f.to_str().unwrap()]));
    let r = run(&home, &["submit", &id2]);
    assert!(
        r.stderr.contains("attachments.police_report"),
        "{}",
        r.stderr
    );
}

#[test]
fn every_template_is_accepted_back() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hp");
    ok(run(&home, &["init"]));
    for kind in sambung_core::model::Kind::ALL {
        let t = template(&home, kind.as_str());
        let f = dir.path().join(format!("{kind}.json"));
        std::fs::write(&f, &t).unwrap();
        ok(run(
            &home,
            &[
                "new",
                "--kind",
                kind.as_str(),
                "--json",
                f.to_str().unwrap(),
            ],
        ));
    }
    assert_eq!(count(&home), sambung_core::model::Kind::ALL.len());
}

#[test]
fn bad_input_fails_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hp");
    ok(run(&home, &["init"]));
    let ktp = template(&home, "ktp_el");
    let id = ok(new_from_stdin(&home, "ktp_el", &ktp)).trim().to_owned();
    let db_before = count(&home);

    // Invalid JSON: position given, input value not repeated.
    let r = new_from_stdin(
        &home,
        "ktp_el",
        "{\"region\": \"32.73\", \"lawful_basis\": 3273014108900007",
    );
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("invalid JSON at line 1"), "{}", r.stderr);
    let r = new_from_stdin(
        &home,
        "ktp_el",
        &ktp.replace("\"damaged\"", "\"3273014108900099\""),
    );
    assert_eq!(r.code, 3);
    assert!(!r.stderr.contains("3273014108900099"), "{}", r.stderr);
    // A field that fails validation: every problem, both languages.
    let bad = ktp.replace("3273014108900007", "9999999999999999");
    let r = new_from_stdin(&home, "ktp_el", &bad);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("details.nik") && r.stderr.contains("applicant.nik"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("nik_province") && r.stderr.contains("Kode provinsi")
            || r.stderr.contains("kode provinsi")
    );
    assert!(!r.stderr.contains("9999999999999999"));
    // Kind disagreeing with the JSON; unknown kind.
    let r = new_from_stdin(&home, "birth", &ktp);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("describes a ktp_el request but --kind says birth"),
        "{}",
        r.stderr
    );
    let r = run(&home, &["template", "--kind", "marriage"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown kind"));
    // Unknown and malformed ids.
    let r = run(&home, &["submit", "0b5e6a3c-0000-4000-8000-000000000000"]);
    assert_eq!(r.code, 5);
    assert!(r.stderr.contains("no request with this id"));
    let r = run(&home, &["show", "not-an-id"]);
    assert_eq!(r.code, 2);
    // A file that does not exist.
    let r = run(&home, &["attach", &id, "/nonexistent/foto.jpg"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read"));
    // A "photo" that is not one: refused (a photo is prepared before it is
    // stored), unless kept as it is on purpose.
    let fake = home.join("foto.jpg");
    std::fs::write(&fake, b"not really a jpeg").unwrap();
    let r = run(&home, &["attach", &id, fake.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("the photo cannot be used"),
        "{}",
        r.stderr
    );
    let r = run(
        &home,
        &["new", "--kind", "ktp_el", "--json", "/nonexistent.json"],
    );
    assert_eq!(r.code, 2);
    // Wrong, missing passphrase; missing and uninitialised home.
    let r = run_with(Some(&home), Some("salah"), &[], &["list"], None);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("wrong key or passphrase"));
    let r = run_with(Some(&home), None, &[], &["list"], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("SAMBUNG_PASSPHRASE"));
    let r = run_with(None, Some(PASS), &[], &["list"], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--home"));
    let r = run(&dir.path().join("nowhere"), &["list"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("run `init` first"));
    assert!(!dir.path().join("nowhere").exists());
    // Forbidden transition; a second init.
    let r = run(&home, &["status", &id, "approved"]);
    assert_eq!(r.code, 6);
    assert!(
        r.stderr
            .contains("cannot move a request from draft to approved")
    );
    let r = run(&home, &["init"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("already exists"));
    // Nothing the server did not refuse can be discarded; a bad id is usage.
    let r = run(&home, &["discard-refused", &id]);
    assert_eq!(r.code, 6);
    assert!(
        r.stderr.contains("refused can be discarded"),
        "{}",
        r.stderr
    );
    assert_eq!(run(&home, &["discard-refused", "not-an-id"]).code, 2);

    assert_eq!(count(&home), db_before);
    let shown: serde_json::Value =
        serde_json::from_str(&ok(run(&home, &["show", &id, "--json"]))).unwrap();
    assert_eq!(shown["history"].as_array().unwrap().len(), 0);
    assert_eq!(shown["attachments"].as_array().unwrap().len(), 0);
    // Kept exactly as it is, on purpose.
    let out = ok(run(
        &home,
        &["attach", &id, fake.to_str().unwrap(), "--as-is"],
    ));
    assert!(out.contains("attached foto.jpg (17 bytes"), "{out}");
}

#[test]
fn rekey_and_wipe() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hp");
    ok(run(&home, &["init"]));
    ok(new_from_stdin(
        &home,
        "complaint",
        &template(&home, "complaint"),
    ));
    let r = run(&home, &["rekey"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("SAMBUNG_NEW_PASSPHRASE"));
    ok(run_with(
        Some(&home),
        Some(PASS),
        &[("SAMBUNG_NEW_PASSPHRASE", "sandi baru")],
        &["rekey"],
        None,
    ));
    assert_eq!(run(&home, &["list"]).code, 4);
    assert_eq!(
        run_with(Some(&home), Some("sandi baru"), &[], &["list"], None).code,
        0
    );
    let r = run(&home, &["wipe"]);
    assert_eq!(r.code, 6);
    assert!(r.stderr.contains("have not reached the server"));
    assert!(home.join("sambung.db").exists());
    ok(run(&home, &["wipe", "--force"]));
    assert!(!home.exists());
}

#[test]
fn the_demo_runs() {
    let out = Command::new(env!("CARGO_BIN_EXE_sambung"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("0 occurrence(s)"), "{stdout}");
    assert!(stdout.contains("wrong key or passphrase"));
    assert!(stdout.contains("store gone: true"));
    assert!(stdout.contains("refused: purpose_detail"), "{stdout}");
    assert!(stdout.contains("fixed: accepted"), "{stdout}");
    assert!(stdout.contains("services 1"), "{stdout}");
    assert!(stdout.contains("SKTM request approved"), "{stdout}");
    assert!(
        stdout.contains("passes the lint and is compatible"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "Converged: the resident, the officer and the back office hold the same requests."
        ),
        "{stdout}"
    );
}

#[test]
fn a_rekey_killed_at_any_moment_leaves_one_working_key_and_all_data() {
    use sambung_core::store::{ListFilter, Secret, Store};
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hp");
    ok(run(&home, &["init"]));
    {
        let s = Store::open(&home, &Secret::passphrase(PASS)).unwrap();
        for i in 0..400 {
            let kind = sambung_core::model::Kind::ALL[i % sambung_core::model::Kind::ALL.len()];
            s.create(sambung_core::templates::example(kind)).unwrap();
        }
    }
    let mut current = PASS.to_string();
    let mut outcomes = (0, 0);
    // Each rekey is killed (SIGKILL) a moment after it reports its first
    // re-encrypted request: inside the transaction, before the commit. The
    // last one runs to the end.
    for (round, delay_ms) in [Some(0u64), Some(10), Some(40), Some(100), None]
        .into_iter()
        .enumerate()
    {
        let next = format!("sandi ke-{round}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sambung"))
            .args(["device", "--home"])
            .arg(&home)
            .arg("rekey")
            .env("SAMBUNG_PASSPHRASE", &current)
            .env("SAMBUNG_NEW_PASSPHRASE", &next)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(line.starts_with("re-encrypted 0/400"), "{line}");
        match delay_ms {
            Some(ms) => {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                child.kill().unwrap();
                child.wait().unwrap();
            }
            None => assert!(child.wait().unwrap().success()),
        }
        let store = match Store::open(&home, &Secret::passphrase(next.as_str())) {
            Ok(s) => {
                current = next;
                outcomes.1 += 1;
                s
            }
            Err(sambung_core::Error::WrongKey) => {
                outcomes.0 += 1;
                Store::open(&home, &Secret::passphrase(current.as_str()))
                    .expect("the old key still works")
            }
            Err(e) => panic!("store damaged by a killed rekey: {e}"),
        };
        let rows = store.list(&ListFilter::default()).unwrap();
        assert_eq!(rows.len(), 400);
        for r in rows.iter().step_by(37) {
            assert_eq!(store.get(&r.id).unwrap().id, r.id);
        }
        // Every template names the applicant: the lookups are whole too.
        assert_eq!(store.find_by_nik("3273014108900007").unwrap().len(), 400);
        store.integrity_check().unwrap();
    }
    // Killed right after the first request (and a little later): those
    // transactions were cut and the old key stayed; the unkilled one completed.
    assert!(outcomes.0 >= 2, "{outcomes:?}");
    assert!(outcomes.1 >= 1, "{outcomes:?}");
}

fn sambung(args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = command();
    cmd.args(args);
    exec(cmd, stdin)
}

#[test]
fn admin_openapi_prints_the_served_document() {
    let out = ok(sambung(&["admin", "openapi"], None));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let served: serde_json::Value =
        serde_json::from_str(&sambung_server::api::backoffice::openapi_document().unwrap())
            .unwrap();
    assert_eq!(doc, served);
    assert!(doc["paths"]["/v1/agency/requests"]["get"].is_object());
    // It takes no arguments: a stray one is a usage error.
    assert_eq!(sambung(&["admin", "openapi", "--data", "x"], None).code, 2);
}

#[test]
fn sync_commands_refuse_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hp");
    ok(run(&home, &["init"]));
    // Not enrolled yet.
    let r = run(&home, &["sync"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not enrolled"), "{}", r.stderr);
    // Plain http to a remote host, and a tricked address.
    for url in [
        "http://sambung.example.go.id",
        "http://localhost:80@evil.example",
        "nonsense",
    ] {
        let r = run(
            &home,
            &["enroll", "--server", url, "--code", "AAAA-BBBB-CCCC"],
        );
        assert_eq!(r.code, 2, "{url}");
        assert!(r.stderr.contains("bad server address"), "{}", r.stderr);
    }
    // Trust settings that cannot be used: refused before any connection.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let missing = dir.path().join("missing.pem");
    for (extra, needle) in [
        (vec!["--ca-file", junk.to_str().unwrap()], "server trust"),
        (vec!["--ca-file", missing.to_str().unwrap()], "cannot read"),
        (vec!["--pin", "zz"], "server trust"),
        (vec!["--pin", &"ab".repeat(31)], "server trust"),
    ] {
        let mut args = vec![
            "enroll",
            "--server",
            "https://127.0.0.1:9",
            "--code",
            "AAAA-BBBB-CCCC",
        ];
        args.extend(extra.iter().copied());
        let r = run(&home, &args);
        assert_eq!(r.code, 2, "{extra:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{extra:?}: {}", r.stderr);
    }
    // Nobody listening: a network error, and nothing recorded.
    let r = run(
        &home,
        &[
            "enroll",
            "--server",
            "http://127.0.0.1:9",
            "--code",
            "AAAA-BBBB-CCCC",
        ],
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(run(&home, &["sync"]).code, 1, "still not enrolled");

    // The server's administration.
    let data = dir.path().join("srv");
    let data = data.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["--role", "officer", "--user", "petugas-1"],
            "needs at least one --region",
        ),
        (
            vec![
                "--role",
                "officer",
                "--user",
                "petugas-1",
                "--region",
                "99.01",
            ],
            "not a region code",
        ),
        (
            vec![
                "--role",
                "resident",
                "--user",
                "warga-1",
                "--ttl-hours",
                "0",
            ],
            "--ttl-hours",
        ),
        (vec!["--role", "resident", "--user", " "], "--user"),
    ] {
        let mut all = vec!["admin", "enroll", "--data", data];
        all.extend(args);
        let r = sambung(&all, None);
        assert_eq!(r.code, 2, "{all:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{}", r.stderr);
    }
    let r = sambung(
        &[
            "admin", "enroll", "--data", data, "--role", "mayor", "--user", "x",
        ],
        None,
    );
    assert_eq!(r.code, 2);
    // A resident's NIK comes on standard input, and must be valid (and is
    // never repeated back).
    let r = sambung(
        &[
            "admin",
            "enroll",
            "--data",
            data,
            "--role",
            "resident",
            "--user",
            "warga-1",
            "--nik-from-stdin",
        ],
        Some("9999999999999999\n"),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("NIK") && !r.stderr.contains("9999999999999999"),
        "{}",
        r.stderr
    );
    let r = sambung(
        &[
            "admin",
            "enroll",
            "--data",
            data,
            "--role",
            "resident",
            "--user",
            "warga-1",
            "--nik-from-stdin",
        ],
        Some("3273014108900007\n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim().len(), 14, "one code: {}", r.stdout);
    // A server that cannot listen.
    let r = sambung(
        &["server", "--data", data, "--listen", "not-an-address"],
        None,
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("cannot listen"), "{}", r.stderr);
    // Devices and revocation.
    ok(sambung(&["admin", "devices", "--data", data], None));
    for (args, code, needle) in [
        (vec!["--device", "zz"], 2, "32 hex digits"),
        (
            vec!["--device", "00000000000000000000000000000000"],
            1,
            "no device",
        ),
        (
            vec![
                "--device",
                "00000000000000000000000000000000",
                "--push-first",
            ],
            2,
            "--wipe",
        ),
    ] {
        let mut all = vec!["admin", "revoke", "--data", data];
        all.extend(args.iter().copied());
        let r = sambung(&all, None);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
    }
    // A timeout out of range, or not a number: usage errors.
    for bad in ["0", "99999", "soon"] {
        let r = sambung(&["server", "--data", data, "--timeout-secs", bad], None);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(r.stderr.contains("timeout-secs"), "{}", r.stderr);
    }
    // A region outline for the console's map that is not one: refused
    // before the server starts, saying why.
    let outline = |name: &str, text: &str| {
        let p = Path::new(data).parent().unwrap().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    for (file, needle) in [
        ("/nonexistent/outline.geojson".to_owned(), "cannot read"),
        (outline("a.geojson", "not json"), "not JSON"),
        (
            outline(
                "b.geojson",
                r#"{"type":"Point","coordinates":[107.5,-7.0]}"#,
            ),
            "only Polygons",
        ),
    ] {
        let r = sambung(
            &["server", "--data", data, "--console-boundaries", &file],
            None,
        );
        assert_eq!(r.code, 2, "{file}: {}", r.stderr);
        assert!(
            r.stderr.contains("console_boundaries") && r.stderr.contains(needle),
            "{}",
            r.stderr
        );
    }
}

/// A server certificate for `localhost` from a CA of its own; the PEM
/// files of the CA, the server certificate and its key, in `dir`.
fn write_pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

/// A `sambung server` child process, killed when dropped.
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sambung server --data DATA` on a free loopback port with `extra`
/// flags, running until dropped; its port and the line it printed first.
fn spawn_server(data: &str, extra: &[&str]) -> (ServerProcess, u16, String) {
    use std::io::BufRead;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = command()
        .args(["server", "--data", data, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (ServerProcess(child), port, line)
}

#[test]
fn a_device_syncs_over_https_with_the_agency_ca() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let data = p("srv");
    // TLS flags that cannot work: usage errors, before anything starts.
    let r = sambung(
        &["server", "--data", &data, "--tls-cert", &p("server.pem")],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = sambung(
        &[
            "server",
            "--data",
            &data,
            "--tls-cert",
            &p("ca.pem"),
            "--tls-key",
            &p("ca.pem"),
        ],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("private key"), "{}", r.stderr);

    let (_server, port, line) = spawn_server(
        &data,
        &[
            "--tls-cert",
            &p("server.pem"),
            "--tls-key",
            &p("server.key"),
        ],
    );
    assert!(line.contains("listening on https://"), "{line}");

    let code = ok(sambung(
        &[
            "admin", "enroll", "--data", &data, "--role", "resident", "--user", "warga-1",
        ],
        None,
    ));
    let home = dir.path().join("hp");
    ok(run(&home, &["init"]));
    let url = format!("https://localhost:{port}");
    // Without the agency's CA the device does not trust the server.
    let r = run(&home, &["enroll", "--server", &url, "--code", code.trim()]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    ok(run(
        &home,
        &[
            "enroll",
            "--server",
            &url,
            "--code",
            code.trim(),
            "--ca-file",
            &p("ca.pem"),
        ],
    ));
    let json = template(&home, "complaint");
    ok(new_from_stdin(&home, "complaint", &json));
    // The CA was kept with the enrollment: sync needs no flag.
    let out = ok(run(&home, &["sync", "--json"]));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["pushed"], 1, "{out}");
}

#[test]
fn server_database_settings_are_checked_and_never_echo_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    for (args, code, needle) in [
        // Neither, both, or a database of another kind.
        (vec!["server"], 2, "--data"),
        (
            vec!["server", "--data", data, "--database", "postgres://x/y"],
            2,
            "cannot be used with",
        ),
        (
            vec!["server", "--database", "mysql://u:s3cr3t-pw@h/db"],
            2,
            "postgres:// URL",
        ),
        // Nobody listening (port 9): a clear error, the password not in it.
        (
            vec![
                "server",
                "--database",
                "postgres://u:s3cr3t-pw@127.0.0.1:9/db?connect_timeout=2",
            ],
            2,
            "cannot connect to PostgreSQL",
        ),
        // Replicas need a PostgreSQL primary, and are PostgreSQL URLs;
        // one nobody serves is a clear error, its password not in it.
        (
            vec![
                "server",
                "--data",
                data,
                "--replica",
                "postgres://u:s3cr3t-pw@127.0.0.1:9/db",
            ],
            2,
            "--replica needs --database",
        ),
        (
            vec![
                "server",
                "--database",
                "postgres://u:s3cr3t-pw@127.0.0.1:9/db?connect_timeout=2",
                "--replica",
                "mysql://u:s3cr3t-pw@h/db",
            ],
            2,
            "--replica must be a postgres:// URL",
        ),
        (
            vec!["admin", "devices", "--database", "postgres://u:s3cr3t-pw@/"],
            2,
            "PostgreSQL",
        ),
        (
            vec![
                "admin",
                "enroll",
                "--database",
                "postgres://u:s3cr3t-pw@127.0.0.1:9/db?connect_timeout=2",
                "--secrets",
                data,
                "--role",
                "agency",
                "--user",
                "dinas",
            ],
            2,
            "cannot connect to PostgreSQL",
        ),
    ] {
        let r = sambung(&args, None);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("s3cr3t"), "{args:?}: {}", r.stderr);
        assert!(!r.stdout.contains("s3cr3t"), "{args:?}: {}", r.stdout);
    }
}

#[test]
fn the_server_reads_a_configuration_file_below_flags_and_environment() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    let data = dir.path().join("from-file");
    std::fs::write(
        &file,
        format!(
            "data = {:?}\nlisten = \"127.0.0.1:0\"\ntimeout_secs = 30\n\
             metrics_listen = \"127.0.0.1:0\"\nwebhook_allow = [\"127.0.0.1/32\", \"::1\"]\n\
             trusted_proxies = [\"10.0.0.0/8\"]\nupload_max_age_days = 7\nunreferenced_blob_days = 30\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut child = command()
        .args(["server", "--config", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.contains("listening on http://127.0.0.1:"), "{line}");
    assert!(line.contains("from-file"), "{line}");
    assert!(data.join("server.db").exists());
    // The secrets file was made beside the data, for its owner only.
    let secrets = std::fs::metadata(data.join("secrets")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(secrets.permissions().mode() & 0o777, 0o600);
    }
    assert!(secrets.len() > 100);

    // Bad files: clear, exit 2. A flag wins over the file.
    let bad = dir.path().join("bad.toml");
    for (text, needle) in [
        ("listen = ", "not valid"),
        ("colour = \"red\"", "not valid"),
        ("database = \"mysql://u:s3cr3t@h/db\"", "postgres:// URL"),
        ("data = \"x\"\ndatabase = \"postgres://h/db\"", "not both"),
        ("timeout_secs = 0\ndata = \"x\"", "1 to 3600"),
        ("upload_max_age_days = 0\ndata = \"x\"", "at least 1"),
        ("tls_cert = \"c.pem\"\ndata = \"x\"", "go together"),
        (
            "webhook_allow = [\"10.0.0.0/33\"]\ndata = \"x\"",
            "not an address or CIDR",
        ),
        (
            "trusted_proxies = [\"balancer\"]\ndata = \"x\"",
            "not an address or CIDR",
        ),
        ("metrics_token = \"short\"\ndata = \"x\"", "at least 16"),
    ] {
        std::fs::write(&bad, text).unwrap();
        let r = sambung(&["server", "--config", bad.to_str().unwrap()], None);
        assert_eq!(r.code, 2, "{text}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{text}: {}", r.stderr);
        assert!(!r.stderr.contains("s3cr3t"), "{}", r.stderr);
    }
    let r = sambung(&["server", "--config", "/nonexistent/server.toml"], None);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot read the configuration"),
        "{}",
        r.stderr
    );
    // The flag's timeout wins over the file's bad one: the error left is
    // the file's database.
    std::fs::write(&bad, "timeout_secs = 0\ndatabase = \"mysql://h/db\"").unwrap();
    let r = sambung(
        &[
            "server",
            "--config",
            bad.to_str().unwrap(),
            "--timeout-secs",
            "5",
        ],
        None,
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("postgres:// URL"), "{}", r.stderr);
}

#[test]
fn admin_enroll_never_changes_an_account_and_admin_account_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv");
    let data = data.to_str().unwrap();
    let enroll = |role: &str, regions: &[&str]| {
        let mut args = vec![
            "admin",
            "enroll",
            "--data",
            data,
            "--role",
            role,
            "--user",
            "petugas-1",
        ];
        for r in regions {
            args.extend(["--region", r]);
        }
        sambung(&args, None)
    };
    let r = enroll("officer", &["32.73"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("server audience "), "{}", r.stderr);
    // Another role, other regions: refused, no code, the command named.
    for (role, regions) in [("agency", vec!["32.73"]), ("officer", vec!["32.74"])] {
        let r = enroll(role, &regions);
        assert_eq!(r.code, 1, "{role} {regions:?}: {}", r.stderr);
        assert!(r.stdout.trim().is_empty(), "no code: {}", r.stdout);
        assert!(
            r.stderr
                .contains("run `sambung admin account petugas-1 --role ROLE --regions"),
            "{}",
            r.stderr
        );
    }
    // The same account again: a code for another phone.
    assert_eq!(enroll("officer", &["32.73"]).code, 0);
    // The explicit change.
    let r = sambung(
        &[
            "admin",
            "account",
            "--data",
            data,
            "petugas-1",
            "--role",
            "agency",
            "--regions",
            "32.73,32.74",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("officer -> agency") && r.stdout.contains("[32.73] -> [32.73,32.74]"),
        "{}",
        r.stdout
    );
    assert_eq!(enroll("agency", &["32.74", "32.73"]).code, 0, "now it is");
    assert_eq!(enroll("officer", &["32.73"]).code, 1);
    // Bad input: no such account, not a region, an officer without one.
    for (args, code, needle) in [
        (
            vec!["nobody", "--role", "resident", "--regions"],
            1,
            "no account nobody",
        ),
        (
            vec!["petugas-1", "--role", "agency", "--regions", "99.01"],
            2,
            "not a region code",
        ),
        (
            vec!["petugas-1", "--role", "officer", "--regions"],
            2,
            "at least one --regions",
        ),
        (vec!["petugas-1", "--role", "agency"], 2, "--regions"),
    ] {
        let mut all = vec!["admin", "account", "--data", data];
        all.extend(args.iter().copied());
        let r = sambung(&all, None);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
    }
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_command_quietly_as_cat() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    ok(run(home, &["init", "--role", "resident"]));
    let id = ok(new_from_stdin(
        home,
        "complaint",
        &template(home, "complaint"),
    ));
    // `sambung device show ID | head -c 0`: the reader is gone before the
    // command writes (opening the store takes the passphrase's rounds).
    let mut cmd = command();
    cmd.args(["device", "--home"])
        .arg(home)
        .args(["show", id.trim(), "--json"])
        .env("SAMBUNG_PASSPHRASE", PASS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "quiet: {stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?}",
        out.status
    );
}

#[test]
fn admin_catalog_check_passes_the_shipped_services_and_names_every_problem() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog/services");
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog/examples");
    let mut files: Vec<String> = [root, examples]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    files.sort();
    let mut args = vec!["admin", "catalog", "check"];
    args.extend(files.iter().map(String::as_str));
    let r = sambung(&args, None);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.matches("ok ").count(), files.len(), "{}", r.stdout);
    assert!(
        r.stdout.contains("surat_keterangan_tidak_mampu@1"),
        "{}",
        r.stdout
    );

    let dir = tempfile::tempdir().unwrap();
    let sku = std::fs::read_to_string(format!("{root}/surat_keterangan_usaha.v1.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&sku).unwrap();
    // Version 2 that removes a field, repeats an id, and reads a field that
    // does not exist; a file that is not JSON; an unknown field type.
    v["version"] = 2.into();
    v["fields"].as_array_mut().unwrap().remove(3);
    v["fields"][1]["id"] = "business_name".into();
    v["checks"][0]["check"] = serde_json::json!({"<": [{"var": "staff"}, 20]});
    let v2 = dir.path().join("sku.v2.json");
    std::fs::write(&v2, v.to_string()).unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"format\": 1, \"id\": ").unwrap();
    let mut u: serde_json::Value = serde_json::from_str(&sku).unwrap();
    u["id"] = "izin_lain".into();
    u["fields"][0]["type"] = "signature".into();
    let unknown = dir.path().join("unknown.json");
    std::fs::write(&unknown, u.to_string()).unwrap();
    let r = sambung(
        &[
            "admin",
            "catalog",
            "check",
            v2.to_str().unwrap(),
            broken.to_str().unwrap(),
            unknown.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    for needle in [
        "surat_keterangan_usaha@2",
        "started_on was removed",
        "business_name is used twice",
        "reads staff",
        "not JSON",
        "signature",
    ] {
        assert!(r.stdout.contains(needle), "{needle} not in {}", r.stdout);
    }
    assert!(
        r.stderr.contains("3 of 3 definition(s) refused"),
        "{}",
        r.stderr
    );

    // A version going backwards against the published one, from stdin.
    let mut b: serde_json::Value = serde_json::from_str(&sku).unwrap();
    b["description"]["en"] = "Changed after publishing".into();
    let r = sambung(&["admin", "catalog", "check", "-"], Some(&b.to_string()));
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("does not come after the published 1"),
        "{}",
        r.stdout
    );

    // A definition for a newer app, and a missing file.
    let mut n: serde_json::Value = serde_json::from_str(&sku).unwrap();
    n["format"] = 9.into();
    let r = sambung(&["admin", "catalog", "check", "-"], Some(&n.to_string()));
    assert_eq!(r.code, 3);
    assert!(r.stdout.contains("update the app"), "{}", r.stdout);
    let r = sambung(&["admin", "catalog", "check", "/nonexistent/x.json"], None);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot read /nonexistent/x.json"),
        "{}",
        r.stderr
    );
    let r = sambung(&["admin", "catalog", "check"], None);
    assert_eq!(r.code, 2);
}

#[test]
fn device_services_forms_and_checks_work_offline_and_refuse_bad_input() {
    let r = sambung(&["device", "services"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("surat_keterangan_domisili"),
        "{}",
        r.stdout
    );
    // Not built in: an agency publishes it (see the server's catalog test).
    assert!(
        !r.stdout.contains("surat_keterangan_tidak_mampu"),
        "{}",
        r.stdout
    );
    // By region: every shipped service is offered everywhere.
    let r = sambung(
        &[
            "device",
            "services",
            "--region",
            "61.71.02.1001",
            "--json",
            "--lang",
            "en",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let list: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let sku = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "surat_keterangan_usaha")
        .unwrap();
    assert_eq!(sku["name"], "Certificate of business");
    let r = sambung(&["device", "services", "--region", "Jawa"], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a region code"), "{}", r.stderr);

    let r = sambung(&["device", "form", "izin_reklame"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("Izin Penyelenggaraan Reklame"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("construction_drawing"), "{}", r.stdout);
    let r = sambung(&["device", "form", "family_card_update", "--json"], None);
    let form: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let paths: Vec<&str> = form["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"members[].nik"), "{paths:?}");
    let r = sambung(&["device", "form", "izin_terbang"], None);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("unknown service izin_terbang"),
        "{}",
        r.stderr
    );
    let r = sambung(&["device", "form", "ktp_el", "--lang", "jv"], None);
    assert_eq!(r.code, 2);

    // The example answers pass; break one and the check names it.
    let r = sambung(
        &["device", "template", "--service", "surat_keterangan_usaha"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut answers: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let sku_docs = ["--attached", "ktp_copy", "--attached", "business_photo"];
    let check_sku = [
        "device",
        "check",
        "--service",
        "surat_keterangan_usaha",
        "--json",
        "-",
    ];
    // Without the documents the form asks for, submission is blocked.
    let r = sambung(&check_sku, Some(&answers.to_string()));
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("attachments.business_photo"),
        "{}",
        r.stdout
    );
    let args: Vec<&str> = check_sku.iter().chain(&sku_docs).copied().collect();
    let r = sambung(&args, Some(&answers.to_string()));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("ok: surat_keterangan_usaha@1"),
        "{}",
        r.stdout
    );
    // A document the service does not ask for is a usage error.
    let mut wrong_doc = check_sku.to_vec();
    wrong_doc.extend(["--attached", "ktp_copy", "--attached", "passport"]);
    let r = sambung(&wrong_doc, Some(&answers.to_string()));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no document passport"), "{}", r.stderr);
    answers["workers"] = "tiga".into();
    answers["purpose"] = "gift".into();
    let mut args = args.clone();
    args.extend(["--lang", "en"]);
    let r = sambung(&args, Some(&answers.to_string()));
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("workers") && r.stdout.contains("wrong_type"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("purpose") && r.stdout.contains("not_an_option"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("2 problem(s) block submission"),
        "{}",
        r.stderr
    );
    // Documents: the billboard's construction drawing is asked for above
    // 24 m², and --attached answers it.
    let r = sambung(&["device", "template", "--service", "izin_reklame"], None);
    let mut reklame: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    reklame["width_m"] = 10.into();
    reklame["height_m"] = 5.into();
    let base = [
        "device",
        "check",
        "--service",
        "izin_reklame",
        "--json",
        "-",
        "--state-json",
    ];
    let docs = [
        "--attached",
        "ktp_copy",
        "--attached",
        "design",
        "--attached",
        "site_photo",
    ];
    let args: Vec<&str> = base.iter().chain(&docs).copied().collect();
    let r = sambung(&args, Some(&reklame.to_string()));
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let state: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(state["calculated"]["area_m2"], 50);
    assert_eq!(
        state["errors"][0]["field"],
        "attachments.construction_drawing"
    );
    let mut args = args.clone();
    args.extend(["--attached", "construction_drawing"]);
    let r = sambung(&args, Some(&reklame.to_string()));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Answers that are not JSON, a missing file, neither --kind nor --service.
    let r = sambung(
        &["device", "check", "--service", "ktp_el", "--json", "-"],
        Some("{nik"),
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not JSON"), "{}", r.stderr);
    let r = sambung(
        &[
            "device",
            "check",
            "--service",
            "ktp_el",
            "--json",
            "/nonexistent.json",
        ],
        None,
    );
    assert_eq!(r.code, 2);
    let r = sambung(&["device", "template"], None);
    assert_eq!(r.code, 2);
    let r = sambung(
        &[
            "device",
            "template",
            "--kind",
            "birth",
            "--service",
            "ktp_el",
        ],
        None,
    );
    assert_eq!(r.code, 2);
}

/// A resident's store in `dir/hp`, enrolled at the server of `data`
/// listening on `port`.
fn enrolled_resident(dir: &Path, data: &str, port: u16) -> std::path::PathBuf {
    let code = ok(sambung(
        &[
            "admin", "enroll", "--data", data, "--role", "resident", "--user", "warga-1",
        ],
        None,
    ));
    let home = dir.join("hp");
    ok(run(&home, &["init"]));
    let url = format!("http://127.0.0.1:{port}");
    ok(run(
        &home,
        &["enroll", "--server", &url, "--code", code.trim()],
    ));
    home
}

#[test]
fn a_published_service_reaches_the_device_and_is_filed_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv").to_str().unwrap().to_owned();
    let sktm = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../catalog/examples/surat_keterangan_tidak_mampu.v1.json"
    );
    // Usage errors before anything is touched.
    let r = sambung(&["admin", "catalog", "publish", sktm], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = sambung(
        &[
            "admin",
            "catalog",
            "publish",
            "--data",
            &data,
            "/nonexistent/x.json",
        ],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);

    let (_server, port, _) = spawn_server(&data, &[]);
    let home = enrolled_resident(dir.path(), &data, port);
    ok(run(&home, &["sync"]));
    assert!(!ok(run(&home, &["services"])).contains("surat_keterangan_tidak_mampu"));

    // Published at the server's console while the server runs.
    let out = ok(sambung(
        &["admin", "catalog", "publish", "--data", &data, sktm],
        None,
    ));
    assert!(
        out.contains("published") && out.contains("surat_keterangan_tidak_mampu@1 sha256:"),
        "{out}"
    );
    let r = sambung(
        &["admin", "catalog", "publish", "--data", &data, sktm],
        None,
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("published already"), "{}", r.stdout);

    // The next sync brings it.
    let out = ok(run(&home, &["sync", "--json"]));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["services"], 1, "{out}");
    assert!(ok(run(&home, &["services"])).contains("surat_keterangan_tidak_mampu"));
    ok(run(&home, &["form", "surat_keterangan_tidak_mampu"]));

    // Filed offline: the resident's details from a template, the answers
    // from the service's; one answer refused, then fixed.
    let answers: serde_json::Value = serde_json::from_str(&ok(run(
        &home,
        &["template", "--service", "surat_keterangan_tidak_mampu"],
    )))
    .unwrap();
    let mut content: serde_json::Value =
        serde_json::from_str(&template(&home, "complaint")).unwrap();
    content["region"] = "61.71.03.1004".into();
    content["details"] = answers.clone();
    content["details"]["kk_number"] = "6171".into();
    let new = [
        "new",
        "--service",
        "surat_keterangan_tidak_mampu",
        "--json",
        "-",
    ];
    let r = run_with(
        Some(&home),
        Some(PASS),
        &[],
        &new,
        Some(&content.to_string()),
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("details.answers.kk_number"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("kk_format"), "{}", r.stderr);
    content["details"] = answers;
    let id = ok(run_with(
        Some(&home),
        Some(PASS),
        &[],
        &new,
        Some(&content.to_string()),
    ));
    let id = id.trim();
    // An unknown service, and both --kind and --service.
    let r = run_with(
        Some(&home),
        Some(PASS),
        &[],
        &["new", "--service", "izin_terbang", "--json", "-"],
        Some(&content.to_string()),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = run(
        &home,
        &[
            "new",
            "--kind",
            "complaint",
            "--service",
            "x",
            "--json",
            "-",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);

    // Its documents: two of the app's roles, one of the service's own.
    let scan = dir.path().join("scan.pdf");
    std::fs::write(&scan, b"%PDF-1.4 salinan").unwrap();
    let scan = scan.to_str().unwrap();
    let r = run(&home, &["submit", id]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("attachments.ktp_copy"), "{}", r.stderr);
    let r = run(&home, &["attach", id, scan, "--role", "rt_leter"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("rt_letter"), "{}", r.stderr);
    for (role, text) in [("ktp_copy", "ktp"), ("kk_copy", "kk"), ("rt_letter", "rt")] {
        let f = dir.path().join(format!("{text}.pdf"));
        std::fs::write(&f, format!("%PDF-1.4 {text}")).unwrap();
        ok(run(
            &home,
            &["attach", id, f.to_str().unwrap(), "--role", role],
        ));
    }
    ok(run(&home, &["submit", id]));
    let out = ok(run(&home, &["sync", "--json"]));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["pushed"], 1, "{out}");
    assert_eq!(summary["refused"], serde_json::json!([]), "{out}");

    // Retired: bad keys and dates are usage errors; devices learn it.
    for (key, until, code) in [
        ("surat_keterangan_tidak_mampu", "2027-01-31", 2),
        ("surat_keterangan_tidak_mampu@0", "2027-01-31", 2),
        ("surat_keterangan_tidak_mampu@1", "31/01/2027", 2),
        ("surat_keterangan_tidak_mampu@9", "2027-01-31", 1),
    ] {
        let r = sambung(
            &[
                "admin",
                "catalog",
                "retire",
                "--data",
                &data,
                key,
                "--accept-until",
                until,
            ],
            None,
        );
        assert_eq!(r.code, code, "{key} {until}: {}", r.stderr);
    }
    let out = ok(sambung(
        &[
            "admin",
            "catalog",
            "retire",
            "--data",
            &data,
            "surat_keterangan_tidak_mampu@1",
            "--accept-until",
            "2027-01-31",
        ],
        None,
    ));
    assert!(out.contains("retired"), "{out}");
    let out = ok(run(&home, &["sync", "--json"]));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["services"], 1, "{out}");
}

#[test]
fn a_code_list_is_checked_published_and_searched_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv").to_str().unwrap().to_owned();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog");
    let jobs = format!("{root}/code-lists/pekerjaan.v1.json");
    // A service choosing the occupation from the list.
    let mut service: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{root}/examples/surat_keterangan_tidak_mampu.v1.json"
        ))
        .unwrap(),
    )
    .unwrap();
    service["id"] = "sktm_pekerjaan".into();
    service["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": "pekerjaan_pemohon", "type": "choice", "code_list": "pekerjaan",
            "label": {"id": "Pekerjaan pemohon", "en": "Applicant's occupation"}
        }));
    let service_file = dir.path().join("sktm_pekerjaan.v1.json");
    std::fs::write(&service_file, service.to_string()).unwrap();
    let service_file = service_file.to_str().unwrap();
    // A list with a code twice and a parent that is not in it.
    let mut bad: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jobs).unwrap()).unwrap();
    bad["codes"][3]["code"] = "1".into();
    bad["codes"][4]["parent"] = "99".into();
    let bad_file = dir.path().join("bad.json");
    std::fs::write(&bad_file, bad.to_string()).unwrap();

    let r = sambung(
        &["admin", "catalog", "check", bad_file.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("codes[3]: 1 is listed twice (first at codes[0])"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("codes[4].parent: 99 is not another code"),
        "{}",
        r.stdout
    );
    // The service alone names a list the check does not have; with it, fine.
    let r = sambung(&["admin", "catalog", "check", service_file], None);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("no code list named pekerjaan"),
        "{}",
        r.stdout
    );
    let out = ok(sambung(
        &["admin", "catalog", "check", &jobs, service_file],
        None,
    ));
    assert!(out.contains("code list pekerjaan@1 (89 code(s))"), "{out}");

    let (_server, port, _) = spawn_server(&data, &[]);
    let home = enrolled_resident(dir.path(), &data, port);
    assert!(ok(run(&home, &["codes"])).contains("no code lists yet"));
    assert_eq!(run(&home, &["codes", "pekerjaan", "guru"]).code, 5);

    // The service before its list is refused; the list, then the service.
    let r = sambung(
        &["admin", "catalog", "publish", "--data", &data, service_file],
        None,
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let out = ok(sambung(
        &[
            "admin",
            "catalog",
            "publish",
            "--data",
            &data,
            &jobs,
            service_file,
        ],
        None,
    ));
    assert!(out.contains("pekerjaan@1"), "{out}");
    let out = ok(run(&home, &["sync"]));
    assert!(
        out.contains("1 service change(s), 1 code list part(s)"),
        "{out}"
    );
    assert!(ok(run(&home, &["codes"])).contains("pekerjaan@1  89 code(s)"));
    let found: serde_json::Value = serde_json::from_str(&ok(run(
        &home,
        &["codes", "pekerjaan", "tukang", "--limit", "3", "--json"],
    )))
    .unwrap();
    assert_eq!(found.as_array().unwrap().len(), 3, "{found}");
    assert!(ok(run(&home, &["codes", "pekerjaan", "65"])).contains("65  Guru"));
    // Bad input: a query too long, a limit out of range.
    let long = "x".repeat(101);
    assert_eq!(run(&home, &["codes", "pekerjaan", &long]).code, 3);
    assert_eq!(
        run(&home, &["codes", "pekerjaan", "guru", "--limit", "0"]).code,
        2
    );

    // The device checks a choice against the list it holds.
    let answers = dir.path().join("answers.json");
    let mut a: serde_json::Value = serde_json::from_str(&ok(run(
        &home,
        &["template", "--service", "sktm_pekerjaan"],
    )))
    .unwrap();
    a["pekerjaan_pemohon"] = "999".into();
    std::fs::write(&answers, a.to_string()).unwrap();
    let r = run(
        &home,
        &[
            "check",
            "--service",
            "sktm_pekerjaan",
            "--json",
            answers.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("not_a_code"), "{}", r.stdout);
    a["pekerjaan_pemohon"] = "65".into();
    std::fs::write(&answers, a.to_string()).unwrap();
    let r = run(
        &home,
        &[
            "check",
            "--service",
            "sktm_pekerjaan",
            "--json",
            answers.to_str().unwrap(),
        ],
    );
    assert!(!r.stdout.contains("not_a_code"), "{}", r.stdout);
}
