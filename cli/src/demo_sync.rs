//! The second part of `sambung demo`: a real server on an ephemeral loopback
//! port with a temporary database, three enrolled devices (a resident, a
//! field officer, the back office), and a scenario played through the link
//! simulator's `edge` profile. Exits with an error unless all converge.

use std::sync::Arc;

use sambung_core::crypto::DataKey;
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::{AttachmentRole, Kind, Request, RequestId};
use sambung_core::store::{Identity, Secret, Store};
use sambung_core::sync::{Client, SyncConfig};
use sambung_core::templates;
use sambung_linksim::{Link, Profile};
use sambung_server::accounts::Account;
use sambung_server::api::AppState;
use sambung_server::storage::SqliteStorage;

use crate::output::CliError;

fn fail(what: impl std::fmt::Display) -> CliError {
    CliError::Failed(format!("demo: {what}"))
}

pub(crate) struct Party {
    pub(crate) name: &'static str,
    pub(crate) store: Store,
    client: Client,
}

/// One sync over the simulated link, retried with backoff on the virtual
/// clock when the link fails; prints what it cost.
pub(crate) async fn sync(p: &Party, link: &Link, config: &SyncConfig) -> Result<(), CliError> {
    let before = link.stats().snapshot();
    let t0 = link.now_s();
    let mut wait = 2.0;
    for attempt in 0..40 {
        match p.client.sync(&p.store, config, |_| {}).await {
            Ok(s) => {
                let after = link.stats().snapshot();
                let services = if s.services > 0 {
                    format!("  services {}", s.services)
                } else {
                    String::new()
                };
                println!(
                    "  {:<10} pushed {:>2}  pulled {:>2}  up {:>6} B  down {:>6} B  exchanges {:>2}  retries {:>2}  {:>6.1} s{services}",
                    p.name,
                    s.pushed,
                    s.pulled,
                    after[0] - before[0],
                    after[1] - before[1],
                    after[2] - before[2],
                    attempt,
                    link.now_s() - t0
                );
                return Ok(());
            }
            Err(_) => {
                // The link failed (loss, outage): wait, then try again.
                link.advance(wait);
                wait = (wait * 2.0).min(60.0);
            }
        }
    }
    Err(fail(format!("{} could not sync in 40 attempts", p.name)))
}

pub fn run() -> Result<(), CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(fail)?;
    rt.block_on(scenario())
}

async fn scenario() -> Result<(), CliError> {
    let tmp = tempfile::tempdir().map_err(fail)?;
    // The server, on an ephemeral loopback port.
    let server_dir = tmp.path().join("server");
    let storage = Arc::new(SqliteStorage::open(&server_dir).map_err(fail)?);
    let secrets = sambung_server::secrets::Secrets::open(
        &server_dir.join(sambung_server::secrets::DEFAULT_FILE),
        storage.as_ref(),
    )
    .map_err(fail)?;
    let state = AppState::new(storage, secrets).map_err(fail)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(fail)?;
    let server_url = format!("http://{}", listener.local_addr().map_err(fail)?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let st = state.clone();
    let server = tokio::spawn(async move {
        sambung_server::api::serve(listener, st, async {
            let _ = stopped.await;
        })
        .await
    });
    let edge = Profile::named("edge").ok_or_else(|| fail("no edge profile"))?;
    let (link_url, link) = sambung_linksim::start(&server_url, edge, 2026).await;
    println!(
        "server on {server_url}; devices reach it through a simulated EDGE link (200/100 kbit/s, 600 ms, 2 % loss, 20 s cut every 5 min)"
    );

    // Enrollment: the agency hands out one-time codes.
    let now = sambung_core::Timestamp::now().as_millis() / 1000;
    let resident_nik = templates::applicant().nik;
    let accounts = [
        (
            "resident",
            Account {
                id: "warga-demo".into(),
                role: Role::Resident,
                regions: vec![],
                nik_hash: Some(sambung_server::exchange::nik_hash(
                    state.nik_key(),
                    resident_nik.as_str(),
                )),
            },
        ),
        (
            "officer",
            Account {
                id: "petugas-demo".into(),
                role: Role::Officer,
                regions: vec!["32.73".into()],
                nik_hash: None,
            },
        ),
        (
            "back office",
            Account {
                id: "dinas-demo".into(),
                role: Role::Agency,
                regions: vec![],
                nik_hash: None,
            },
        ),
    ];
    let config = SyncConfig::default();
    let mut parties = Vec::new();
    for (name, account) in accounts {
        let code =
            sambung_server::enroll::create(state.storage(), &account, now, 3600).map_err(fail)?;
        let mut store = Store::init(
            &tmp.path().join(account.id.as_str()),
            &Secret::Key(DataKey::generate()?),
            Identity {
                user: format!("local-{}", account.id),
                role: account.role,
            },
        )?;
        Client::new(&server_url, &config)?
            .enroll(&mut store, &code)
            .await?;
        println!(
            "  enrolled {name:<11} as {} ({}) with code {code}",
            account.id,
            account.role.as_str()
        );
        parties.push(Party {
            name,
            store,
            client: Client::new(&link_url, &config)?,
        });
    }
    let [resident, officer, office] = [&parties[0], &parties[1], &parties[2]];

    println!("\nOffline, the resident files a complaint with a photo and a tax objection:");
    let complaint = resident.store.create(templates::example(Kind::Complaint))?;
    let photo: Vec<u8> = (0..180_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    resident.store.attach(
        &complaint,
        AttachmentRole::Photo,
        "jalan-berlubang.jpg",
        "image/jpeg",
        photo.as_slice(),
    )?;
    resident.store.submit(&complaint)?;
    let objection = resident
        .store
        .create(templates::example(Kind::PbbObjection))?;
    for (role, name) in [
        (AttachmentRole::Sppt, "sppt-2026.pdf"),
        (AttachmentRole::Spop, "spop.pdf"),
    ] {
        resident.store.attach(
            &objection,
            role,
            name,
            "application/pdf",
            &b"%PDF-1.4 salinan"[..],
        )?;
    }
    resident.store.submit(&objection)?;
    println!(
        "  2 requests submitted; {} pending sync (the text goes first; the photo and the scans follow in resumable chunks, never ahead of it)",
        resident.store.pending_count()?
    );

    println!("\nA signal: everyone syncs.");
    for p in [resident, officer, office] {
        sync(p, &link, &config).await?;
    }

    println!("\nOffline again: the officer visits the site while the back office reviews.");
    officer.store.add_note(
        &complaint,
        "Kunjungan lapangan: lubang ±1 m, sudah diberi tanda.",
        false,
    )?;
    office
        .store
        .transition(&complaint, Status::Received, None)?;
    office.store.transition(
        &complaint,
        Status::InReview,
        Some("Diteruskan ke Dinas PU".into()),
    )?;
    // Two hours pass; the signal comes back just as the cell drops out for
    // one of EDGE's 20-second outages.
    let t = link.now_s() + 2.0 * 3600.0;
    link.advance(t - t % 300.0 + 285.0 - link.now_s());

    println!("\nThe signal returns: everyone syncs, twice round.");
    for _ in 0..2 {
        for p in [officer, office, resident] {
            sync(p, &link, &config).await?;
        }
    }

    // Convergence: every device holds the same requests, and the server agrees.
    println!("\nWhere everyone stands:");
    let copies: Vec<(&str, Request)> = parties
        .iter()
        .map(|p| p.store.get(&complaint).map(|r| (p.name, r)))
        .collect::<Result<_, _>>()?;
    for (name, r) in &copies {
        println!(
            "  {name:<11} complaint is {:<9} with {} note(s), {} history entries",
            r.status(),
            r.notes.len(),
            r.history.len()
        );
    }
    let converged = copies.windows(2).all(|w| w[0].1 == w[1].1)
        && copies[0].1.status() == Status::InReview
        && copies[0].1.notes.len() == 1
        && same_everywhere(&parties, &objection)?
        && parties
            .iter()
            .all(|p| p.store.pending_count().ok() == Some(0));
    let s = link.stats().snapshot();
    println!(
        "\nOver the link: {} B up, {} B down, {} exchanges ({} lost requests, {} lost responses, {} cut), {:.0} s of simulated time",
        s[0],
        s[1],
        s[2],
        s[4],
        s[5],
        s[7],
        link.now_s()
    );
    if !converged {
        let _ = stop.send(());
        let _ = server.await;
        return Err(fail("the devices did not converge"));
    }
    println!("Converged: the resident, the officer and the back office hold the same requests.");
    let published =
        crate::demo_catalog::publish_and_file(&state, resident, office, &link, &config).await;
    let _ = stop.send(());
    let _ = server.await;
    published
}

fn same_everywhere(parties: &[Party], id: &RequestId) -> Result<bool, CliError> {
    let copies: Vec<Request> = parties
        .iter()
        .map(|p| p.store.get(id))
        .collect::<Result<_, _>>()?;
    Ok(copies.windows(2).all(|w| w[0] == w[1]))
}
