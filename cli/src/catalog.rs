//! `sambung admin catalog`: the publisher's tools for service definitions
//! (issue 15). `check` runs the same lint the server and the phones run,
//! with every problem named, before anything is published; `publish` and
//! `retire` change the server's catalog (as the back-office API does),
//! recorded in the audit trail; devices learn it at their next sync.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Subcommand;
use sambung_core::catalog::{self, CatalogError, Definition, codes, lint};

use crate::input::read_text;
use crate::output::CliError;

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Check service definitions and code lists (JSON files, `-` for
    /// standard input): the format, every field and rule, the messages in
    /// both languages, the test vectors, each version against the one
    /// before it (among the files given and the built-in catalog); a code
    /// list's codes (duplicates, parents, names). A definition may name
    /// the code lists among the files. Exits 3 naming every problem when
    /// one is refused.
    Check {
        /// The definition files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Publish service definitions and code lists on the server (each
    /// refused with every problem named unless it passes `check` against
    /// what the server holds; a code list before the definitions naming
    /// it). Exits 3 when one is refused; those before it stay published.
    Publish {
        #[command(flatten)]
        db: crate::server::Database,
        /// The definition files (`-`: standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Retire a version: requests created on it after --accept-until are
    /// refused; those created before are still accepted.
    Retire {
        #[command(flatten)]
        db: crate::server::Database,
        /// `ID@VERSION`, e.g. `surat_keterangan_tidak_mampu@1`.
        #[arg(value_parser = parse_key)]
        version: (String, u32),
        /// The last day (`YYYY-MM-DD`, in Indonesia) requests created on it
        /// are accepted.
        #[arg(long, value_parser = parse_date)]
        accept_until: sambung_core::CivilDate,
    },
}

fn parse_key(s: &str) -> Result<(String, u32), String> {
    sambung_server::catalog::parse_key(s)
        .ok_or_else(|| "a version is ID@VERSION, e.g. surat_keterangan_tidak_mampu@1".into())
}

fn parse_date(s: &str) -> Result<sambung_core::CivilDate, String> {
    sambung_core::CivilDate::parse(s.trim()).ok_or_else(|| "a date is YYYY-MM-DD".into())
}

pub fn run(command: CatalogCommand) -> Result<(), CliError> {
    match command {
        CatalogCommand::Check { files } => check(&files),
        CatalogCommand::Publish { db, files } => publish(&db, &files),
        CatalogCommand::Retire {
            db,
            version: (id, version),
            accept_until,
        } => {
            let storage = db.open(&[])?;
            let catalogs = sambung_server::catalog::Catalogs::new().map_err(failed)?;
            sambung_server::catalog::retire(
                storage.as_ref(),
                &catalogs,
                console("sambung admin catalog retire"),
                &id,
                version,
                accept_until,
            )
            .map_err(|e| match e {
                sambung_server::ServerError::NotFound => {
                    CliError::Failed(format!("the server has no {id}@{version}"))
                }
                other => failed(other),
            })?;
            println!(
                "retired  {id}@{version}: requests created on it after {accept_until} are refused (recorded in the audit trail)"
            );
            Ok(())
        }
    }
}

fn failed(e: sambung_server::ServerError) -> CliError {
    CliError::Failed(e.to_string())
}

/// The audit trail's name for the server's console.
pub(crate) fn console(via: &str) -> sambung_server::catalog::Publisher<'_> {
    sambung_server::catalog::Publisher {
        record: sambung_server::storage::AuditRecord {
            at: sambung_core::Timestamp::now().as_millis(),
            account: "console".into(),
            role: "admin".into(),
            device: None,
            action: String::new(),
            request: None,
            endpoint: String::new(),
        },
        via,
    }
}

fn publish(db: &crate::server::Database, files: &[PathBuf]) -> Result<(), CliError> {
    // Read them all first: a missing file publishes nothing.
    let mut texts = Vec::with_capacity(files.len());
    for path in files {
        texts.push((path.display().to_string(), read_text(path)?));
    }
    let storage = db.open(&[])?;
    let catalogs = sambung_server::catalog::Catalogs::new().map_err(failed)?;
    for (name, text) in texts {
        match sambung_server::catalog::publish(
            storage.as_ref(),
            &catalogs,
            console("sambung admin catalog publish"),
            &text,
        ) {
            Ok(p) => println!(
                "published {name}: {}@{} sha256:{} (devices receive it at their next sync)",
                p.service, p.version, p.hash
            ),
            Err(
                e @ (sambung_server::ServerError::BadRequest(_)
                | sambung_server::ServerError::Conflict(_)
                | sambung_server::ServerError::TooLarge),
            ) => {
                println!("refused  {name}: {e}");
                return Err(CliError::Refused(format!("{name} was not published")));
            }
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(())
}

fn check(files: &[PathBuf]) -> Result<(), CliError> {
    let mut refused = 0usize;
    let mut parsed: Vec<(String, Definition)> = Vec::new();
    // Code lists first: the definitions among the files may name them.
    let mut code_lists: BTreeMap<String, u32> = BTreeMap::new();
    let mut texts = Vec::with_capacity(files.len());
    for path in files {
        let name = path.display().to_string();
        let text = read_text(path)?;
        if !codes::is_code_list(&text) {
            texts.push((name, text));
            continue;
        }
        let problems = match codes::parse_code_list(&text) {
            Ok(list) => {
                let problems = codes::check_code_list(&list);
                if problems.is_empty() {
                    println!(
                        "ok       {name}: code list {}@{} ({} code(s))",
                        list.code_list,
                        list.version,
                        list.codes.len()
                    );
                    code_lists.insert(list.code_list, list.version);
                    continue;
                }
                problems
            }
            Err(e) => problems_of(&e),
        };
        refused += 1;
        report(&name, None, &problems);
    }
    for (name, text) in texts {
        match catalog::parse(&text) {
            Ok(d) => parsed.push((name, d)),
            Err(e) => {
                refused += 1;
                report(&name, None, &problems_of(&e));
            }
        }
    }
    // Each version after the one before: the built-in catalog's, then the
    // files' own, in version order.
    parsed.sort_by(|a, b| (&a.1.id, a.1.version).cmp(&(&b.1.id, b.1.version)));
    let builtin = catalog::builtin().map_err(|e| CliError::Failed(e.to_string()))?;
    let mut previous: BTreeMap<String, Definition> = BTreeMap::new();
    for (name, d) in parsed {
        let mut problems = lint::check(&d, &code_lists);
        let prev = previous
            .get(&d.id)
            .or_else(|| builtin.latest(&d.id).map(|f| f.definition()))
            .filter(|p| p.version != d.version || **p != d);
        if let Some(prev) = prev {
            problems.extend(lint::check_publish(prev, &d));
        }
        if problems.is_empty() {
            println!(
                "ok       {name}: {} ({} field(s), {} test vector(s))",
                d.key(),
                d.fields.len(),
                d.tests.len()
            );
        } else {
            refused += 1;
            report(&name, Some(&d.key()), &problems);
        }
        previous.insert(d.id.clone(), d);
    }
    if refused > 0 {
        return Err(CliError::Refused(format!(
            "{refused} of {} definition(s) refused",
            files.len()
        )));
    }
    Ok(())
}

fn problems_of(e: &CatalogError) -> Vec<String> {
    match e {
        CatalogError::Malformed { problems } | CatalogError::Invalid { problems, .. } => {
            problems.clone()
        }
        other => vec![other.to_string()],
    }
}

fn report(name: &str, key: Option<&str>, problems: &[String]) {
    let key = key.map(|k| format!(" {k}")).unwrap_or_default();
    println!("refused  {name}:{key} ({} problem(s))", problems.len());
    for p in problems {
        println!("  - {p}");
    }
}
