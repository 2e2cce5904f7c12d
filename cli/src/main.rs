//! `sambung`: the command-line face of Sambung.
//!
//! - `sambung demo` walks through the device core on a temporary store;
//! - `sambung device --home DIR …` works on a device store, as an app would.
//!
//! The passphrase comes only from `SAMBUNG_PASSPHRASE` (and the new one for
//! `rekey` from `SAMBUNG_NEW_PASSPHRASE`), never from an argument: arguments
//! are visible to every process on the machine and kept in shell history.

mod catalog;
mod demo;
mod demo_catalog;
mod demo_sync;
mod device;
mod input;
mod output;
mod server;
mod services;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sambung",
    version,
    about = "Offline-first core for e-government service requests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk through the device core on a temporary store, then a resident,
    /// an officer and the back office syncing through a server over a
    /// simulated EDGE link. Exits 0 only if everything converged.
    Demo,
    /// Run the sync server.
    Server {
        /// A TOML file with any of the settings below (`data`, `database`,
        /// `secrets`, `listen`, `timeout_secs`, `tls_cert`, `tls_key`,
        /// `limit_per_address`, `limit_per_device`, `metrics_listen`,
        /// `metrics_token`, `webhook_allow`, `trusted_proxies`, `replicas`,
        /// `console_boundaries`,
        /// `upload_max_age_days`, `unreferenced_blob_days`); the command
        /// line and the environment take precedence over it.
        #[arg(long, env = "SAMBUNG_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        db: server::Database,
        /// Address to listen on.
        #[arg(long, env = "SAMBUNG_LISTEN", default_value = "127.0.0.1:8480")]
        listen: String,
        /// Seconds one request may take, body included (408 after).
        #[arg(long, env = "SAMBUNG_TIMEOUT_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout_secs: u64,
        /// Requests a minute from one client address (bursts of a quarter
        /// of it). Many phones share a carrier address behind CGNAT.
        #[arg(long, env = "SAMBUNG_LIMIT_PER_ADDRESS", default_value_t = 1200, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
        limit_per_address: u32,
        /// Requests a minute from one enrolled device (bursts of half of it).
        #[arg(long, env = "SAMBUNG_LIMIT_PER_DEVICE", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
        limit_per_device: u32,
        /// Days an unfinished attachment upload is kept after its last
        /// chunk (its device then starts it again from zero).
        #[arg(long, env = "SAMBUNG_UPLOAD_MAX_AGE_DAYS", default_value_t = sambung_core::attachment_limits::UPLOAD_MAX_AGE_DAYS, value_parser = clap::value_parser!(u32).range(1..=3650))]
        upload_max_age_days: u32,
        /// Days attachment bytes no request references are kept (after
        /// their upload, or after their last reference went away).
        #[arg(long, env = "SAMBUNG_UNREFERENCED_BLOB_DAYS", default_value_t = sambung_core::attachment_limits::UNREFERENCED_BLOB_DAYS, value_parser = clap::value_parser!(u32).range(1..=3650))]
        unreferenced_blob_days: u32,
        /// PEM certificate chain: serve HTTPS (with --tls-key).
        #[arg(long, env = "SAMBUNG_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, env = "SAMBUNG_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve `/metrics` (and `/health`) on this separate address, e.g.
        /// 127.0.0.1:9464; the public listener does not serve `/metrics`
        /// without --metrics-token.
        #[arg(long, env = "SAMBUNG_METRICS_LISTEN")]
        metrics_listen: Option<String>,
        /// A bearer token (16 characters or more) that opens `/metrics` on
        /// the public listener. Prefer the environment or the file: a flag
        /// is visible to other users of the machine.
        #[arg(long, env = "SAMBUNG_METRICS_TOKEN", hide_env_values = true)]
        metrics_token: Option<String>,
        /// An internal address or CIDR webhooks may be delivered to
        /// (repeatable; none by default: loopback, private, link-local and
        /// other internal addresses are refused).
        #[arg(
            long = "webhook-allow",
            env = "SAMBUNG_WEBHOOK_ALLOW",
            value_delimiter = ','
        )]
        webhook_allow: Vec<String>,
        /// A balancer's address or CIDR whose X-Forwarded-For names the
        /// client for the per-address limit (repeatable; none by default:
        /// the header is ignored).
        #[arg(
            long = "trusted-proxy",
            env = "SAMBUNG_TRUSTED_PROXIES",
            value_delimiter = ','
        )]
        trusted_proxies: Vec<String>,
        /// A PostgreSQL streaming replica (standby) of --database that
        /// serves read-only work: pulls, back-office listings, downloads
        /// (repeatable; a URL as --database). Writes, and reads a replica
        /// has not caught up with, go to the primary.
        #[arg(
            long = "replica",
            env = "SAMBUNG_REPLICAS",
            value_delimiter = ',',
            hide_env_values = true
        )]
        replicas: Vec<String>,
        /// A GeoJSON file of the region's outline (Polygons or
        /// MultiPolygons, e.g. from BIG's boundaries) the console's map
        /// draws under the requests; none by default.
        #[arg(long, env = "SAMBUNG_CONSOLE_BOUNDARIES")]
        console_boundaries: Option<PathBuf>,
    },
    /// Administer the server (on its machine).
    Admin {
        #[command(subcommand)]
        command: server::AdminCommand,
    },
    /// Work with a device store.
    Device {
        /// Folder of the store (or SAMBUNG_HOME).
        #[arg(long, env = "SAMBUNG_HOME", global = true)]
        home: Option<PathBuf>,
        #[command(subcommand)]
        command: device::DeviceCommand,
    },
}

fn main() -> ExitCode {
    // A closed pipe ends the command quietly, as it ends `cat`: the Rust
    // runtime ignores SIGPIPE, and every `println!` would panic instead.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default, before any
    // thread starts; no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Demo => demo::run(),
        Command::Device { home, command } => device::run(home, command),
        Command::Server {
            config,
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
        } => server::ServerSettings {
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
        }
        .with_file(
            config.as_deref(),
            matches
                .subcommand_matches("server")
                .expect("the server subcommand matched"),
        )
        .and_then(server::run_server),
        Command::Admin { command } => server::run_admin(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
