//! How results and errors are printed.

use sambung_core::lifecycle;
use sambung_core::model::Request;
use sambung_core::store::Summary;
use sambung_core::{Error, Timestamp};

/// An error of the CLI: the core's, or one about the command line itself.
#[derive(Debug)]
pub enum CliError {
    /// From the core.
    Core(Error),
    /// Something about the invocation (missing home, passphrase, file, bad id).
    Usage(String),
    /// Something that failed while running (the server's storage, a port).
    Failed(String),
    /// Input that was read and refused, its problems already printed (a
    /// service definition).
    Refused(String),
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::Core(e)
    }
}

impl CliError {
    /// Exit codes: 2 usage, 3 invalid request, attachment or definition, 4 wrong key, 5 not found,
    /// 6 not allowed, 7 network or server refusal, 1 anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Core(Error::BadServerUrl(_) | Error::ServerTrust(_)) => {
                2
            }
            CliError::Failed(_) => 1,
            CliError::Refused(_) => 3,
            CliError::Core(
                Error::Validation(_)
                | Error::Form(_)
                | Error::InvalidJson { .. }
                | Error::BadQuery(_)
                | Error::Photo(_)
                | Error::AttachmentTooLarge { .. },
            ) => 3,
            CliError::Core(Error::WrongKey) => 4,
            CliError::Core(Error::NotFound { .. }) => 5,
            CliError::Core(
                Error::Forbidden(_) | Error::UnsyncedChanges { .. } | Error::Revoked { .. },
            ) => 6,
            CliError::Core(Error::Network { .. } | Error::Server { .. }) => 7,
            CliError::Core(_) => 1,
        }
    }
}

pub fn print_error(e: &CliError) {
    match e {
        CliError::Usage(m) | CliError::Failed(m) | CliError::Refused(m) => {
            eprintln!("error: {m}")
        }
        CliError::Core(Error::Validation(report)) => {
            eprintln!(
                "error: the request is not valid ({} problem(s)):",
                report.errors.len()
            );
            for i in &report.errors {
                eprintln!(
                    "  {}  [{}]\n      {}\n      {}",
                    i.field, i.code, i.message_en, i.message_id
                );
            }
        }
        CliError::Core(Error::Form(issues)) => {
            eprintln!(
                "error: the request is not valid ({} problem(s)):",
                issues.len()
            );
            for i in issues {
                eprintln!(
                    "  {}  [{}]\n      {}\n      {}",
                    i.field, i.code, i.message.en, i.message.id
                );
            }
        }
        CliError::Core(e) => eprintln!("error: {e}"),
    }
}

/// `YYYY-MM-DD HH:MM` in UTC.
pub fn time(t: Timestamp) -> String {
    let d = t.date_at_offset(0);
    let mins = t.0.rem_euclid(86_400_000) / 60_000;
    format!("{d} {:02}:{:02}", mins / 60, mins % 60)
}

pub fn print_list(rows: &[Summary]) {
    if rows.is_empty() {
        println!("no requests");
        return;
    }
    println!(
        "{:<36}  {:<20}  {:<10}  {:<16}  title",
        "id", "kind", "status", "updated (UTC)"
    );
    for r in rows {
        println!(
            "{:<36}  {:<20}  {:<10}  {:<16}  {}{}",
            r.id,
            r.kind.as_str(),
            r.status.as_str(),
            time(r.updated_at),
            r.title,
            if r.pending { "  (not synced)" } else { "" }
        );
        if let Some(reason) = &r.refusal {
            println!(
                "{:<36}  {reason} (if the server refused it, `sambung device discard-refused {}` drops the refused changes)",
                "", r.id
            );
        }
    }
}

pub fn print_request(r: &Request) {
    println!("{}", r.title());
    println!("  id:       {}", r.id);
    println!("  kind:     {}", r.kind());
    println!("  status:   {}", r.status());
    println!(
        "  created:  {} by {} ({})",
        time(r.created_at),
        r.created_by,
        r.created_role.as_str()
    );
    println!("  region:   {}", r.content.region.as_str());
    let derived = lifecycle::derive(&r.history);
    if !derived.entries.is_empty() {
        println!("  history:");
        for (e, effective) in &derived.entries {
            println!(
                "    {}  {} → {}  by {} ({}){}{}",
                time(e.at),
                e.from,
                e.to,
                e.by,
                e.role.as_str(),
                e.note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default(),
                if *effective {
                    ""
                } else {
                    "  [overtaken by a concurrent change]"
                }
            );
        }
    }
    if !r.attachments.is_empty() {
        println!("  attachments:");
        for a in &r.attachments {
            println!(
                "    {}  {}  {} bytes  {}  sha256 {}",
                a.role.as_str(),
                a.name,
                a.size,
                a.mime,
                a.sha256.get(..16).unwrap_or(&a.sha256)
            );
        }
    }
    if !r.notes.is_empty() {
        println!("  notes:");
        for n in &r.notes {
            println!(
                "    {}  {} ({}): {}",
                time(n.at),
                n.by,
                n.role.as_str(),
                n.text
            );
        }
    }
}
