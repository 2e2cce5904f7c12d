//! `sambung server` and `sambung admin …`: the sync server and its
//! administration on the server's own machine.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;
use sambung_core::lifecycle::Role;
use sambung_server::accounts::Account;
use sambung_server::api::AppState;
use sambung_server::secrets::Secrets;
use sambung_server::storage::Storage;

use crate::output::CliError;

fn server_err(e: sambung_server::ServerError) -> CliError {
    CliError::Failed(e.to_string())
}

/// Where the server's data is: a SQLite file in a folder (the default), or
/// a PostgreSQL database shared by several servers.
#[derive(clap::Args, Debug, Clone)]
pub struct Database {
    /// Folder of the server's data (its SQLite file; created when missing).
    #[arg(long, env = "SAMBUNG_DATA")]
    data: Option<PathBuf>,
    /// PostgreSQL instead: `postgres://user:password@host/db` (libpq URL;
    /// `sslmode=require` for a database on another host).
    #[arg(
        long,
        env = "SAMBUNG_DATABASE",
        conflicts_with = "data",
        hide_env_values = true
    )]
    database: Option<String>,
    /// The server's secrets file (the NIK-hash key and the master key of
    /// webhook secrets), kept apart from the database; created with mode
    /// 0600 when missing. Default: `secrets` in --data; required with
    /// --database.
    #[arg(long, env = "SAMBUNG_SECRETS_FILE")]
    secrets: Option<PathBuf>,
}

impl Database {
    pub(crate) fn open(&self, replicas: &[String]) -> Result<Arc<dyn Storage>, CliError> {
        if self.data.is_none() && self.database.is_none() {
            return Err(CliError::Usage(
                "give --data (a folder for the SQLite file) or --database (a postgres:// URL)"
                    .into(),
            ));
        }
        let dir = self.data.clone().unwrap_or_default();
        sambung_server::storage::open_with_replicas(&dir, self.database.as_deref(), replicas)
            .map_err(|e| match e {
                sambung_server::ServerError::Config(m) => CliError::Usage(m),
                other => server_err(other),
            })
    }

    /// The storage and the server's secrets (the database brought in
    /// line with them: see `Secrets::open`).
    fn open_with_secrets(
        &self,
        replicas: &[String],
    ) -> Result<(Arc<dyn Storage>, Secrets), CliError> {
        let storage = self.open(replicas)?;
        let path = match (&self.secrets, &self.data) {
            (Some(p), _) => p.clone(),
            (None, Some(d)) if self.database.is_none() => {
                d.join(sambung_server::secrets::DEFAULT_FILE)
            }
            _ => {
                return Err(CliError::Usage(
                    "with --database, give --secrets FILE (or SAMBUNG_SECRETS_FILE): the same \
                     file for every server on the database, kept apart from it"
                        .into(),
                ));
            }
        };
        let secrets = Secrets::open(&path, storage.as_ref()).map_err(|e| match e {
            sambung_server::ServerError::Config(m) => CliError::Usage(m),
            other => server_err(other),
        })?;
        Ok((storage, secrets))
    }

    fn describe(&self) -> String {
        match (&self.database, &self.data) {
            // The URL may carry a password: never printed.
            (Some(_), _) => "data in PostgreSQL".to_owned(),
            (None, Some(d)) => format!("data in {}", d.display()),
            (None, None) => String::new(),
        }
    }
}

/// The server's settings, from the command line, the environment and a
/// configuration file, in that order of precedence.
#[derive(Debug)]
pub struct ServerSettings {
    /// Where the data is.
    pub db: Database,
    /// Address to listen on.
    pub listen: String,
    /// Seconds one request may take.
    pub timeout_secs: u64,
    /// Requests a minute per client address.
    pub limit_per_address: u32,
    /// Requests a minute per device.
    pub limit_per_device: u32,
    /// Days an unfinished upload is kept after its last chunk.
    pub upload_max_age_days: u32,
    /// Days unreferenced attachment bytes are kept.
    pub unreferenced_blob_days: u32,
    /// PEM certificate chain.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// A separate address serving `/metrics` (and `/health`).
    pub metrics_listen: Option<String>,
    /// A bearer token that opens `/metrics` on the public listener.
    pub metrics_token: Option<String>,
    /// Internal addresses webhooks may be delivered to (CIDRs).
    pub webhook_allow: Vec<String>,
    /// Balancers whose `X-Forwarded-For` is believed (CIDRs).
    pub trusted_proxies: Vec<String>,
    /// PostgreSQL streaming replicas of the database, for read-only work.
    pub replicas: Vec<String>,
    /// The region's outline for the console's map (GeoJSON).
    pub console_boundaries: Option<PathBuf>,
}

/// The configuration file: the same settings as the flags.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    data: Option<PathBuf>,
    database: Option<String>,
    listen: Option<String>,
    timeout_secs: Option<u64>,
    limit_per_address: Option<u32>,
    limit_per_device: Option<u32>,
    upload_max_age_days: Option<u32>,
    unreferenced_blob_days: Option<u32>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    secrets: Option<PathBuf>,
    metrics_listen: Option<String>,
    metrics_token: Option<String>,
    webhook_allow: Option<Vec<String>>,
    trusted_proxies: Option<Vec<String>>,
    replicas: Option<Vec<String>>,
    console_boundaries: Option<PathBuf>,
}

fn cidrs(what: &str, list: &[String]) -> Result<Vec<ipnet::IpNet>, CliError> {
    list.iter()
        .map(|c| {
            let c = c.trim();
            // A bare address is the network of that address alone.
            c.parse::<ipnet::IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| CliError::Usage(format!("{what}: {c} is not an address or CIDR")))
        })
        .collect()
}

impl ServerSettings {
    /// Fills what neither the command line nor the environment set from
    /// the file at `path`.
    pub fn with_file(
        mut self,
        path: Option<&std::path::Path>,
        matches: &clap::ArgMatches,
    ) -> Result<Self, CliError> {
        let Some(path) = path else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Usage(format!(
                "cannot read the configuration {}: {e}",
                path.display()
            ))
        })?;
        let file: ServerFile = toml::from_str(&text).map_err(|e| {
            CliError::Usage(format!(
                "the configuration {} is not valid: {}",
                path.display(),
                e.message()
            ))
        })?;
        let unset = |id: &str| {
            !matches!(
                matches.value_source(id),
                Some(clap::parser::ValueSource::CommandLine)
                    | Some(clap::parser::ValueSource::EnvVariable)
            )
        };
        if unset("data") && unset("database") {
            if let Some(d) = file.data {
                self.db.data = Some(d);
            }
            if let Some(d) = file.database {
                self.db.database = Some(d);
            }
        }
        if unset("listen")
            && let Some(l) = file.listen
        {
            self.listen = l;
        }
        if unset("timeout_secs")
            && let Some(t) = file.timeout_secs
        {
            if !(1..=3600).contains(&t) {
                return Err(CliError::Usage(
                    "timeout_secs in the configuration must be 1 to 3600".into(),
                ));
            }
            self.timeout_secs = t;
        }
        for (id, from_file, into) in [
            (
                "limit_per_address",
                file.limit_per_address,
                &mut self.limit_per_address,
            ),
            (
                "limit_per_device",
                file.limit_per_device,
                &mut self.limit_per_device,
            ),
            (
                "upload_max_age_days",
                file.upload_max_age_days,
                &mut self.upload_max_age_days,
            ),
            (
                "unreferenced_blob_days",
                file.unreferenced_blob_days,
                &mut self.unreferenced_blob_days,
            ),
        ] {
            if unset(id)
                && let Some(v) = from_file
            {
                if v == 0 {
                    return Err(CliError::Usage(format!(
                        "{id} in the configuration must be at least 1"
                    )));
                }
                *into = v;
            }
        }
        if unset("secrets")
            && let Some(p) = file.secrets
        {
            self.db.secrets = Some(p);
        }
        if unset("metrics_listen")
            && let Some(m) = file.metrics_listen
        {
            self.metrics_listen = Some(m);
        }
        if unset("metrics_token")
            && let Some(t) = file.metrics_token
        {
            self.metrics_token = Some(t);
        }
        if unset("webhook_allow")
            && let Some(w) = file.webhook_allow
        {
            self.webhook_allow = w;
        }
        if unset("trusted_proxies")
            && let Some(t) = file.trusted_proxies
        {
            self.trusted_proxies = t;
        }
        if unset("replicas")
            && let Some(r) = file.replicas
        {
            self.replicas = r;
        }
        if unset("console_boundaries")
            && let Some(b) = file.console_boundaries
        {
            self.console_boundaries = Some(b);
        }
        if unset("tls_cert") && unset("tls_key") {
            self.tls_cert = file.tls_cert.or(self.tls_cert);
            self.tls_key = file.tls_key.or(self.tls_key);
        }
        if self.db.data.is_some() && self.db.database.is_some() {
            return Err(CliError::Usage("give data or database, not both".into()));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(CliError::Usage("tls_cert and tls_key go together".into()));
        }
        Ok(self)
    }
}

/// Runs the server until Ctrl-C / SIGTERM, finishing exchanges in flight.
pub fn run_server(settings: ServerSettings) -> Result<(), CliError> {
    let ServerSettings {
        db,
        listen,
        timeout_secs,
        limit_per_address,
        limit_per_device,
        upload_max_age_days,
        unreferenced_blob_days,
        tls_cert,
        tls_key,
        metrics_listen,
        metrics_token,
        webhook_allow,
        trusted_proxies,
        replicas,
        console_boundaries,
    } = settings;
    if metrics_token
        .as_deref()
        .is_some_and(|t| t.trim().len() < 16)
    {
        return Err(CliError::Usage(
            "metrics_token must be at least 16 characters".into(),
        ));
    }
    let console_boundaries = match console_boundaries {
        Some(path) => {
            let bytes = std::fs::read(&path).map_err(|e| {
                CliError::Usage(format!(
                    "console_boundaries: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            sambung_server::api::console::check_boundaries(&bytes).map_err(|e| {
                CliError::Usage(format!("console_boundaries {}: {e}", path.display()))
            })?;
            Some(std::sync::Arc::new(bytes))
        }
        None => None,
    };
    let webhook_allow = cidrs("webhook_allow", &webhook_allow)?;
    let trusted_proxies = cidrs("trusted_proxies", &trusted_proxies)?;
    const DAY: i64 = 24 * 3600;
    let retention = sambung_server::storage::BlobRetention {
        upload_max_age: i64::from(upload_max_age_days) * DAY,
        unreferenced_grace: i64::from(unreferenced_blob_days) * DAY,
    };
    let rate = |per_minute: u32, burst_share: u32| sambung_server::limits::Rate {
        per_minute,
        burst: (per_minute / burst_share).max(1),
    };
    let limits = sambung_server::limits::Limits {
        per_address: rate(limit_per_address, 4),
        per_device: rate(limit_per_device, 2),
    };
    let timeout = std::time::Duration::from_secs(timeout_secs);
    let tls = tls_cert.zip(tls_key);
    // Structured logs on stderr; the server's events carry counts, codes and
    // roles, never request content.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let tls = match tls {
        Some((cert, key)) => Some(
            sambung_server::tls::server_config(&cert, &key)
                .map_err(|e| CliError::Usage(e.to_string()))?,
        ),
        None => None,
    };
    let (storage, secrets) = db.open_with_secrets(&replicas)?;
    let state = AppState::with_settings(
        storage,
        secrets,
        sambung_server::api::Settings {
            request_timeout: timeout,
            limits,
            webhook_allow,
            trusted_proxies,
            metrics_token,
            console_boundaries,
        },
    )
    .map_err(server_err)?;
    let rt = tokio::runtime::Runtime::new()
        .map_err(|e| CliError::Failed(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| CliError::Failed(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Failed(e.to_string()))?;
        println!(
            "sambung server listening on {}://{addr} ({})",
            if tls.is_some() { "https" } else { "http" },
            db.describe()
        );
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            #[cfg(not(unix))]
            let _ = ctrl_c.await;
        };
        // Metrics on their own listener, stopped with the server.
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics = match metrics_listen {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(&addr)
                    .await
                    .map_err(|e| CliError::Failed(format!("cannot listen on {addr}: {e}")))?;
                let bound = l
                    .local_addr()
                    .map_err(|e| CliError::Failed(e.to_string()))?;
                println!("metrics on http://{bound}/metrics");
                Some(tokio::spawn(sambung_server::api::serve_metrics(
                    l,
                    state.clone(),
                    async {
                        let _ = metrics_stopped.await;
                    },
                )))
            }
            None => None,
        };
        // Webhook deliveries run beside the server and stop with it.
        let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(sambung_server::webhooks::worker::run(
            state.storage_arc(),
            state.secrets_arc(),
            state.webhook_policy().clone(),
            sambung_server::webhooks::worker::Settings::default(),
            async {
                let _ = worker_stopped.await;
            },
        ));
        // Expired uploads and unreferenced attachments are swept hourly
        // (and at start), beside the server.
        let sweeper = tokio::spawn(sambung_server::blobs::sweeper::run(
            state.storage_arc(),
            retention,
            std::time::Duration::from_secs(3600),
        ));
        let served = match tls {
            Some(tls) => sambung_server::api::serve_tls(listener, tls, state, shutdown).await,
            None => sambung_server::api::serve(listener, state, shutdown).await,
        };
        let _ = stop_worker.send(());
        let _ = worker.await;
        let _ = stop_metrics.send(());
        if let Some(m) = metrics {
            let _ = m.await;
        }
        sweeper.abort();
        served.map_err(|e| CliError::Failed(format!("server error: {e}")))
    })
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create an account (or find it, unchanged) and print a one-time
    /// enrollment code. Never changes an existing account's role or
    /// regions: that is `admin account`'s.
    Enroll {
        #[command(flatten)]
        db: Database,
        /// resident, officer or agency.
        #[arg(long, value_parser = |s: &str| Role::parse(s).ok_or("one of: resident, officer, agency"))]
        role: Role,
        /// Account id (pseudonymous; chosen by the agency).
        #[arg(long)]
        user: String,
        /// Region codes of an officer or agency (repeatable; prefix match).
        #[arg(long = "region")]
        regions: Vec<String>,
        /// Hours the code stays valid.
        #[arg(long, default_value_t = 72)]
        ttl_hours: i64,
        /// A resident's NIK, read from standard input (never an argument), to
        /// link requests officers file on the resident's behalf.
        #[arg(long)]
        nik_from_stdin: bool,
    },
    /// Change an existing account's role and regions; the change is
    /// written to the audit trail.
    Account {
        #[command(flatten)]
        db: Database,
        /// The account id.
        id: String,
        /// resident, officer or agency.
        #[arg(long, value_parser = |s: &str| Role::parse(s).ok_or("one of: resident, officer, agency"))]
        role: Role,
        /// Region codes, comma-separated (`--regions` alone: none, which
        /// for an agency means all).
        #[arg(long, value_delimiter = ',', num_args = 0.., required = true)]
        regions: Vec<String>,
    },
    /// List enrolled devices (of one account, or all).
    Devices {
        #[command(flatten)]
        db: Database,
        /// Only this account's devices.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a device (a lost or stolen phone): the server refuses it from
    /// now on.
    Revoke {
        #[command(flatten)]
        db: Database,
        /// The device id, 32 hex digits (see `admin devices`).
        #[arg(long, value_parser = parse_device)]
        device: [u8; 16],
        /// Tell the device to delete its store at its next contact.
        #[arg(long)]
        wipe: bool,
        /// With --wipe: let it push what it holds first.
        #[arg(long, requires = "wipe")]
        push_first: bool,
    },
    /// Print the back-office API's OpenAPI document (what
    /// `GET /v1/openapi.json` serves), to generate a client offline.
    Openapi,
    /// The service catalog: check definitions before publishing them.
    Catalog {
        #[command(subcommand)]
        command: crate::catalog::CatalogCommand,
    },
}

/// Region codes must be codes; an officer needs one.
fn check_regions(role: Role, regions: &[String], flag: &str) -> Result<(), CliError> {
    for r in regions {
        if !sambung_core::identifiers::RegionCode::from(r.as_str())
            .check()
            .is_empty()
        {
            return Err(CliError::Usage(format!("not a region code: {r}")));
        }
    }
    if role == Role::Officer && regions.is_empty() {
        return Err(CliError::Usage(format!(
            "an officer needs at least one {flag}"
        )));
    }
    Ok(())
}

fn parse_device(s: &str) -> Result<[u8; 16], String> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .ok_or_else(|| "a device id is 32 hex digits".to_owned())
}

pub fn run_admin(command: AdminCommand) -> Result<(), CliError> {
    match command {
        AdminCommand::Catalog { command } => crate::catalog::run(command),
        AdminCommand::Enroll {
            db,
            role,
            user,
            regions,
            ttl_hours,
            nik_from_stdin,
        } => {
            if user.trim().is_empty() || user.len() > 100 {
                return Err(CliError::Usage("--user must be 1–100 characters".into()));
            }
            if !(1..=24 * 30).contains(&ttl_hours) {
                return Err(CliError::Usage(
                    "--ttl-hours must be between 1 and 720".into(),
                ));
            }
            check_regions(role, &regions, "--region")?;
            let (storage, secrets) = db.open_with_secrets(&[])?;
            let state = AppState::new(storage, secrets).map_err(server_err)?;
            let nik_hash = if nik_from_stdin {
                let mut nik = String::new();
                std::io::stdin()
                    .read_line(&mut nik)
                    .map_err(|e| CliError::Usage(format!("cannot read standard input: {e}")))?;
                let n = sambung_core::identifiers::Nik::from(nik.trim());
                if !n.check().is_empty() {
                    return Err(CliError::Usage(
                        "the NIK on standard input is not valid".into(),
                    ));
                }
                Some(sambung_server::exchange::nik_hash(
                    state.nik_key(),
                    n.as_str(),
                ))
            } else {
                None
            };
            let account = Account {
                id: user.clone(),
                role,
                regions,
                nik_hash,
            };
            let now = sambung_core::Timestamp::now().as_millis() / 1000;
            let code =
                sambung_server::enroll::create(state.storage(), &account, now, ttl_hours * 3600)
                    .map_err(server_err)?;
            println!("{code}");
            eprintln!(
                "one-time code for {user} ({}), valid {ttl_hours} h; server audience {}",
                role.as_str(),
                state.audience()
            );
            Ok(())
        }
        AdminCommand::Account {
            db,
            id,
            role,
            regions,
        } => {
            let regions: Vec<String> = regions
                .into_iter()
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty())
                .collect();
            check_regions(role, &regions, "--regions")?;
            let storage = db.open(&[])?;
            let now_ms = sambung_core::Timestamp::now().as_millis();
            let before = sambung_server::enroll::change_account(
                storage.as_ref(),
                &id,
                role,
                &regions,
                now_ms,
            )
            .map_err(server_err)?
            .ok_or_else(|| CliError::Failed(format!("no account {id} on this server")))?;
            println!(
                "account {id}: role {} -> {}; regions [{}] -> [{}] (recorded in the audit trail)",
                before.role.as_str(),
                role.as_str(),
                before.regions.join(","),
                regions.join(",")
            );
            Ok(())
        }
        AdminCommand::Openapi => {
            println!(
                "{}",
                sambung_server::api::backoffice::openapi_document().map_err(server_err)?
            );
            Ok(())
        }
        AdminCommand::Devices { db, user } => {
            let storage = db.open(&[])?;
            for d in storage.devices(user.as_deref(), None).map_err(server_err)? {
                let state = match d.revoked_at {
                    Some(t) => format!("revoked at {t}"),
                    None => "active".into(),
                };
                println!(
                    "{}  {} ({})  enrolled at {}  {state}",
                    d.id,
                    d.account,
                    d.role.as_str(),
                    d.enrolled_at
                );
            }
            Ok(())
        }
        AdminCommand::Revoke {
            db,
            device,
            wipe,
            push_first,
        } => {
            let storage = db.open(&[])?;
            let now = sambung_core::Timestamp::now().as_millis() / 1000;
            let decision = sambung_server::storage::Revocation { wipe, push_first };
            if !storage
                .revoke_device(device, decision, now)
                .map_err(server_err)?
            {
                return Err(CliError::Failed(format!(
                    "no device {} on this server",
                    hex::encode(device)
                )));
            }
            println!(
                "revoked {}{}",
                hex::encode(device),
                match (wipe, push_first) {
                    (true, true) => "; it pushes what it holds, then deletes its store",
                    (true, false) => "; it deletes its store at its next contact",
                    _ => "",
                }
            );
            Ok(())
        }
    }
}
