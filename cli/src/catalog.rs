//! `sambung admin catalog`: the publisher's tools for service definitions
//! (issue 15). `check` runs the same lint the server and the phones run,
//! with every problem named, before anything is published.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Subcommand;
use sambung_core::catalog::{self, CatalogError, Definition, lint};

use crate::input::read_text;
use crate::output::CliError;

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Check service definitions (JSON files, `-` for standard input): the
    /// format, every field and rule, the messages in both languages, the
    /// test vectors, and each version against the one before it (among the
    /// files given and the built-in catalog). Exits 3 naming every problem
    /// when one is refused.
    Check {
        /// The definition files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(command: CatalogCommand) -> Result<(), CliError> {
    match command {
        CatalogCommand::Check { files } => check(&files),
    }
}

fn check(files: &[PathBuf]) -> Result<(), CliError> {
    let mut refused = 0usize;
    let mut parsed: Vec<(String, Definition)> = Vec::new();
    for path in files {
        let name = path.display().to_string();
        match catalog::parse(&read_text(path)?) {
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
        let mut problems = lint::check(&d);
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
