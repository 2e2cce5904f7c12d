//! `sambung device …`: a device store driven from the command line.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::{AttachmentRole, Kind, RequestContent, RequestId};
use sambung_core::store::{Identity, ListFilter, Secret, Store};
use sambung_core::templates;
use zeroize::Zeroizing;

use crate::input::read_text;
use crate::output::{self, CliError};

/// Environment variable holding the store passphrase.
pub const PASSPHRASE_VAR: &str = "SAMBUNG_PASSPHRASE";
/// Environment variable holding the new passphrase for `rekey`.
pub const NEW_PASSPHRASE_VAR: &str = "SAMBUNG_NEW_PASSPHRASE";

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind; one of: {}", all.join(", "))
    })
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "unknown role; one of: resident, officer, agency".into())
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Status::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown status; one of: {}", all.join(", "))
    })
}

fn parse_attachment_role(s: &str) -> Result<AttachmentRole, String> {
    AttachmentRole::parse(s).ok_or_else(|| {
        let all: Vec<&str> = AttachmentRole::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown attachment role; one of: {}", all.join(", "))
    })
}

/// The documents a catalog service's request asks for by the service's own
/// names (empty for the compiled-in kinds).
fn service_documents(store: &Store, id: &RequestId) -> Result<Vec<String>, CliError> {
    let request = store.get(id)?;
    let sambung_core::model::Details::Service(s) = &request.content.details else {
        return Ok(Vec::new());
    };
    let catalog = store.catalog()?;
    Ok(catalog
        .get(&s.service, s.version)
        .map(|f| {
            f.definition()
                .attachments
                .iter()
                .map(|a| a.role.clone())
                .collect()
        })
        .unwrap_or_default())
}

fn parse_id(s: &str) -> Result<RequestId, String> {
    RequestId::parse(s)
        .ok_or_else(|| "not a request id (a UUID as printed by `new` and `list`)".into())
}

#[derive(Subcommand)]
pub enum DeviceCommand {
    /// Create a store in --home (passphrase from SAMBUNG_PASSPHRASE).
    Init {
        /// Role of this device's user.
        #[arg(long, default_value = "resident", value_parser = parse_role)]
        role: Role,
        /// Account id of the user (assigned at enrollment; local until then).
        #[arg(long)]
        user: Option<String>,
    },
    /// Print a valid example request of a kind (or the answers of a
    /// service), as JSON.
    Template {
        #[arg(long, value_parser = parse_kind, required_unless_present = "service", conflicts_with = "service")]
        kind: Option<Kind>,
        /// A service of the catalog (`device services`).
        #[arg(long)]
        service: Option<String>,
    },
    /// The services this device knows (offline), for its region or all.
    Services {
        /// Only those offered in this region (a Kemendagri code).
        #[arg(long)]
        region: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        lang: crate::services::Lang,
    },
    /// The code lists this device holds (none given), or the codes of LIST
    /// matching QUERY, offline: digits find the codes starting with them
    /// (`32.01`), words the names holding words that start with each
    /// (`keude bak`). Exits 5 for a list this device does not hold.
    Codes {
        /// The list (a choice field's `code_list`).
        list: Option<String>,
        /// What to look for (empty: the first codes).
        #[arg(default_value = "")]
        query: String,
        /// Most codes shown (1 to 200).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=200))]
        limit: u32,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// A service's form as the app renders it: fields in order, labels,
    /// hints, choices, what is required, the documents asked for.
    Form {
        /// The service id.
        service: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        lang: crate::services::Lang,
    },
    /// Check answers against a service's form, as the app does live: every
    /// problem, the calculated values; exit 3 when something blocks.
    Check {
        /// The service id.
        #[arg(long)]
        service: String,
        /// The answers (a file, or - for standard input).
        #[arg(long = "json")]
        answers: PathBuf,
        /// Roles of the documents attached (repeatable).
        #[arg(long = "attached")]
        attached: Vec<String>,
        /// Print the whole form state as JSON.
        #[arg(long = "state-json")]
        state_json: bool,
        #[command(flatten)]
        lang: crate::services::Lang,
    },
    /// Create a draft from JSON (a file, or - for standard input); prints its id.
    New {
        #[arg(long, value_parser = parse_kind, required_unless_present = "service", conflicts_with = "service")]
        kind: Option<Kind>,
        /// A service of the catalog (`device services`): the JSON is then a
        /// request's content whose `details` holds the answers by field id;
        /// the request records the service's newest version and its hash.
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        json: PathBuf,
    },
    /// Replace the content of a draft (or of a request that needs information).
    Edit {
        #[arg(value_parser = parse_id)]
        id: RequestId,
        #[arg(long)]
        json: PathBuf,
    },
    /// Submit a draft (checks every field and the required attachments).
    Submit {
        #[arg(value_parser = parse_id)]
        id: RequestId,
    },
    /// List requests, newest change first.
    List {
        #[arg(long)]
        json: bool,
        #[arg(long, value_parser = parse_kind)]
        kind: Option<Kind>,
        #[arg(long, value_parser = parse_status)]
        status: Option<Status>,
    },
    /// Show one request.
    Show {
        #[arg(value_parser = parse_id)]
        id: RequestId,
        #[arg(long)]
        json: bool,
    },
    /// Add a note; with --answer it answers a needs_info request. TEXT `-`
    /// reads it from standard input (keeps it out of the process list and
    /// the shell history).
    Note {
        #[arg(value_parser = parse_id)]
        id: RequestId,
        text: String,
        #[arg(long)]
        answer: bool,
    },
    /// Attach a file.
    Attach {
        #[arg(value_parser = parse_id)]
        id: RequestId,
        file: PathBuf,
        /// What the document is (default: photo for images, else
        /// supporting_document); for a catalog service, also a document its
        /// form names (`device form SERVICE`), e.g. `rt_letter`.
        #[arg(long)]
        role: Option<String>,
        /// MIME type (default: from the file extension).
        #[arg(long)]
        mime: Option<String>,
        /// Keep a JPEG or PNG photo's pixels and size as they are (its
        /// metadata still goes). By default it is prepared for the link:
        /// turned upright, downscaled to 1600 px, re-encoded without EXIF
        /// (no GPS position leaves the phone).
        #[arg(long)]
        as_is: bool,
    },
    /// The way out for a request the server refused: discard this device's
    /// changes to it that the server has not taken (everything the server
    /// holds stays) and print, as JSON, the request as it was with them.
    DiscardRefused {
        #[arg(value_parser = parse_id)]
        id: RequestId,
    },
    /// Withdraw a request before a decision.
    Withdraw {
        #[arg(value_parser = parse_id)]
        id: RequestId,
        #[arg(long)]
        note: Option<String>,
    },
    /// Move a request to another status (officers).
    Status {
        #[arg(value_parser = parse_id)]
        id: RequestId,
        #[arg(value_parser = parse_status)]
        to: Status,
        #[arg(long)]
        note: Option<String>,
    },
    /// Enroll this device with a server, with a one-time code from the agency.
    Enroll {
        /// The server, https://host[:port] (http only to this machine).
        #[arg(long)]
        server: String,
        /// The one-time code.
        #[arg(long)]
        code: String,
        /// PEM file of the CA certificate(s) to trust for this server
        /// instead of the system's (kept with the enrollment).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// SHA-256 of the server's public key (SubjectPublicKeyInfo), 64
        /// hex digits, to pin on top of the certificate check; repeatable.
        #[arg(long)]
        pin: Vec<String>,
    },
    /// Exchange changes with the server until nothing is pending.
    Sync {
        #[arg(long)]
        json: bool,
    },
    /// Re-encrypt the store under SAMBUNG_NEW_PASSPHRASE.
    Rekey,
    /// Delete the store (refused while changes are not synced, unless --force).
    Wipe {
        #[arg(long)]
        force: bool,
    },
}

fn env_secret(var: &str) -> Result<Secret, CliError> {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => Ok(Secret::Passphrase(Zeroizing::new(v.into_encoded_bytes()))),
        _ => Err(CliError::Usage(format!(
            "set the passphrase in the environment variable {var}"
        ))),
    }
}

fn home(home: Option<PathBuf>) -> Result<PathBuf, CliError> {
    home.ok_or_else(|| {
        CliError::Usage("no store folder: pass --home DIR or set SAMBUNG_HOME".into())
    })
}

pub(crate) fn open(home: &Path) -> Result<Store, CliError> {
    let secret = env_secret(PASSPHRASE_VAR)?;
    Ok(Store::open(home, &secret)?)
}

fn read_json(path: &Path) -> Result<RequestContent, CliError> {
    let text = read_text(path)?;
    Ok(serde_json::from_str(&text).map_err(sambung_core::Error::from)?)
}

fn content_of_kind(path: &Path, kind: Kind) -> Result<RequestContent, CliError> {
    let content = read_json(path)?;
    if content.kind() != kind {
        return Err(CliError::Usage(format!(
            "the JSON describes a {} request but --kind says {}",
            content.kind(),
            kind
        )));
    }
    Ok(content)
}

fn guess_mime(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "heic" | "heif" => "image/heic",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

pub(crate) fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(sambung_core::Error::from)?;
    println!("{s}");
    Ok(())
}

pub fn run(home_arg: Option<PathBuf>, command: DeviceCommand) -> Result<(), CliError> {
    match command {
        DeviceCommand::Template {
            kind: Some(kind), ..
        } => print_json(&templates::example(kind)),
        DeviceCommand::Template { service, .. } => crate::services::template(
            &*crate::services::known(home_arg.as_deref())?,
            service.as_deref().unwrap_or_default(),
        ),
        DeviceCommand::Codes {
            list,
            query,
            limit,
            json,
        } => {
            let store = open(&home(home_arg)?)?;
            match list {
                None => {
                    let lists = store.code_lists()?;
                    if json {
                        return print_json(&lists);
                    }
                    if lists.is_empty() {
                        println!("no code lists yet (the server delivers them at a sync)");
                    }
                    for l in lists {
                        println!(
                            "{}@{}  {} code(s)  {}",
                            l.list, l.version, l.codes, l.names.id
                        );
                    }
                    Ok(())
                }
                Some(list) => {
                    let found = store.search_codes(&list, &query, limit)?;
                    if json {
                        return print_json(&found);
                    }
                    for c in found {
                        let parent = c.parent.map(|p| format!("  (in {p})")).unwrap_or_default();
                        println!("{}  {}{parent}", c.code, c.name);
                    }
                    Ok(())
                }
            }
        }
        DeviceCommand::Services { region, json, lang } => crate::services::services(
            &*crate::services::known(home_arg.as_deref())?,
            region.as_deref(),
            json,
            &lang.lang,
        ),
        DeviceCommand::Form {
            service,
            json,
            lang,
        } => crate::services::form(
            &*crate::services::known(home_arg.as_deref())?,
            &service,
            json,
            &lang.lang,
        ),
        DeviceCommand::Check {
            service,
            answers,
            attached,
            state_json,
            lang,
        } => {
            let (catalog, store) = crate::services::known_with_store(home_arg.as_deref())?;
            let codes: &dyn sambung_core::catalog::codes::CodeLookup = match &store {
                Some(s) => s,
                None => &sambung_core::catalog::codes::NoCodes,
            };
            crate::services::check(
                &catalog, codes, &service, &answers, &attached, state_json, &lang.lang,
            )
        }
        DeviceCommand::Init { role, user } => {
            let home = home(home_arg)?;
            let secret = env_secret(PASSPHRASE_VAR)?;
            let user = user.unwrap_or_else(|| format!("local-{}", &uuid_hex()[..12]));
            Store::init(
                &home,
                &secret,
                Identity {
                    user: user.clone(),
                    role,
                },
            )?;
            println!(
                "store created in {} for {} ({})",
                home.display(),
                user,
                role.as_str()
            );
            Ok(())
        }
        DeviceCommand::New {
            kind,
            service,
            json,
        } => {
            let home = home(home_arg)?;
            let store = open(&home)?;
            let content = match (kind, service) {
                (Some(kind), _) => content_of_kind(&json, kind)?,
                (None, service) => crate::services::content_for(
                    &*store.catalog()?,
                    service.as_deref().unwrap_or_default(),
                    &json,
                )?,
            };
            let id = store.create(content)?;
            println!("{id}");
            Ok(())
        }
        DeviceCommand::Edit { id, json } => {
            let home = home(home_arg)?;
            let content = read_json(&json)?;
            open(&home)?.update_content(&id, content)?;
            println!("updated {id}");
            Ok(())
        }
        DeviceCommand::Submit { id } => {
            let status = open(&home(home_arg)?)?.submit(&id)?;
            println!("{id} is now {status}");
            Ok(())
        }
        DeviceCommand::List { json, kind, status } => {
            let store = open(&home(home_arg)?)?;
            let rows = store.list(&ListFilter {
                kind,
                status,
                ..Default::default()
            })?;
            if json {
                print_json(&rows)
            } else {
                output::print_list(&rows);
                Ok(())
            }
        }
        DeviceCommand::Show { id, json } => {
            let r = open(&home(home_arg)?)?.get(&id)?;
            if json {
                print_json(&r)
            } else {
                output::print_request(&r);
                Ok(())
            }
        }
        DeviceCommand::DiscardRefused { id } => {
            let discarded = open(&home(home_arg)?)?.discard_refused(&id)?;
            eprintln!("the refused changes to {id} were discarded; as it was with them:");
            print_json(&discarded)
        }
        DeviceCommand::Note { id, text, answer } => {
            let text = if text == "-" {
                let mut t = String::new();
                std::io::stdin()
                    .read_to_string(&mut t)
                    .map_err(|e| CliError::Usage(format!("cannot read standard input: {e}")))?;
                t.trim_end_matches('\n').to_owned()
            } else {
                text
            };
            let status = open(&home(home_arg)?)?.add_note(&id, &text, answer)?;
            println!("note added to {id} ({status})");
            Ok(())
        }
        DeviceCommand::Attach {
            id,
            file,
            role,
            mime,
            as_is,
        } => {
            let home = home(home_arg)?;
            let f = std::fs::File::open(&file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let mime = mime.unwrap_or_else(|| guess_mime(&file).to_owned());
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let store = open(&home)?;
            let role = match role.as_deref().map(parse_attachment_role) {
                None => {
                    if mime.starts_with("image/") {
                        AttachmentRole::Photo
                    } else {
                        AttachmentRole::SupportingDocument
                    }
                }
                Some(Ok(role)) => role,
                Some(Err(unknown)) => {
                    let purpose = role.unwrap_or_default();
                    let asked = service_documents(&store, &id)?;
                    if !asked.contains(&purpose) {
                        return Err(CliError::Usage(if asked.is_empty() {
                            unknown
                        } else {
                            format!("{unknown}; or one of this service's: {}", asked.join(", "))
                        }));
                    }
                    let r = store.attach_for_service(
                        &id,
                        &purpose,
                        &name,
                        &mime,
                        std::io::BufReader::new(f),
                    )?;
                    println!(
                        "attached {} as {purpose} ({} bytes, sha256 {})",
                        r.name, r.size, r.sha256
                    );
                    return Ok(());
                }
            };
            let photo = sambung_core::photo::PHOTO_MIMES.contains(&mime.as_str()) && !as_is;
            let r = if photo {
                let mut bytes = Vec::new();
                std::io::Read::by_ref(&mut std::io::BufReader::new(f))
                    .take(sambung_core::store::MAX_ATTACHMENT_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
                store.attach_photo(&id, role, &name, &bytes, &Default::default())?
            } else {
                store.attach(&id, role, &name, &mime, std::io::BufReader::new(f))?
            };
            println!(
                "attached {} ({} bytes, sha256 {})",
                r.name, r.size, r.sha256
            );
            Ok(())
        }
        DeviceCommand::Withdraw { id, note } => {
            let status = open(&home(home_arg)?)?.withdraw(&id, note)?;
            println!("{id} is now {status}");
            Ok(())
        }
        DeviceCommand::Status { id, to, note } => {
            let status = open(&home(home_arg)?)?.transition(&id, to, note)?;
            println!("{id} is now {status}");
            Ok(())
        }
        DeviceCommand::Enroll {
            server,
            code,
            ca_file,
            pin,
        } => {
            let mut store = open(&home(home_arg)?)?;
            let mut trust = sambung_core::sync::ServerTrust::default();
            if let Some(path) = ca_file {
                let pem = std::fs::read(&path)
                    .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
                trust = trust.with_roots_pem(&pem)?;
            }
            for p in &pin {
                trust = trust.clone().with_pin_hex(p)?;
            }
            let config = sambung_core::sync::SyncConfig {
                trust,
                ..Default::default()
            };
            let client = sambung_core::sync::Client::new(&server, &config)?;
            let e = runtime()?.block_on(client.enroll(&mut store, &code))?;
            println!(
                "enrolled as {} ({}) with {}",
                e.account,
                e.role.as_str(),
                e.server
            );
            Ok(())
        }
        DeviceCommand::Sync { json } => {
            let store = open(&home(home_arg)?)?;
            let enrollment = store
                .enrollment()?
                .ok_or(sambung_core::Error::NotEnrolled)?;
            let config = sambung_core::sync::SyncConfig {
                trust: (&enrollment).into(),
                ..Default::default()
            };
            let client = sambung_core::sync::Client::new(&enrollment.server, &config)?;
            let summary = runtime()?.block_on(client.sync(&store, &config, |_| {}))?;
            if json {
                print_json(&summary)
            } else {
                println!(
                    "synced: {} pushed, {} pulled, {} refused, {} service change(s), {} code list part(s); {} B up, {} B down, {} round trip(s)",
                    summary.pushed,
                    summary.pulled,
                    summary.refused.len(),
                    summary.services,
                    summary.code_parts,
                    summary.bytes_up,
                    summary.bytes_down,
                    summary.round_trips
                );
                for (id, reason) in &summary.refused {
                    println!("  refused {id}: {reason}");
                }
                Ok(())
            }
        }
        DeviceCommand::Rekey => {
            let home = home(home_arg)?;
            let new = env_secret(NEW_PASSPHRASE_VAR)?;
            let mut store = open(&home)?;
            // Progress on stderr: a large store takes a while on a phone-class CPU.
            let rounds =
                std::num::NonZeroU32::new(sambung_core::crypto::PBKDF2_ROUNDS).expect("non-zero");
            store.rekey_with_rounds(&new, rounds, |done, total| {
                if done % 100 == 0 || done == total {
                    eprintln!("re-encrypted {done}/{total} requests");
                }
            })?;
            println!("store re-encrypted; use the new passphrase from now on");
            Ok(())
        }
        DeviceCommand::Wipe { force } => {
            let home = home(home_arg)?;
            Store::wipe(&home, force)?;
            println!("store in {} deleted", home.display());
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the runtime: {e}")))
}

fn uuid_hex() -> String {
    RequestId::random().0.replace('-', "")
}
