//! The core's error type. Messages name what went wrong and never carry
//! personal data: no field values, no SQL with parameters, no document text.

use std::path::PathBuf;

use crate::validation::ValidationReport;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request has invalid fields; the report lists every one.
    #[error("the request is not valid: {0}")]
    Validation(ValidationReport),
    /// A catalog service's request is not valid by its definition, or its
    /// definition is not known here; every problem is named (fields and
    /// codes, never values).
    #[error("the request is not valid: {}", .0.iter().map(|i| format!("{} ({})", i.field, i.code)).collect::<Vec<_>>().join(", "))]
    Form(Vec<crate::catalog::Issue>),
    /// The built-in service catalog cannot be read (a broken build).
    #[error("the service catalog: {0}")]
    Catalog(String),
    /// The key or passphrase does not open this store.
    #[error("wrong key or passphrase for this store")]
    WrongKey,
    /// The store was written by a newer version of Sambung.
    #[error(
        "the store has schema version {found}, newer than this app supports ({supported}); update the app"
    )]
    IncompatibleVersion {
        /// Version in the file.
        found: u32,
        /// Newest version this code knows.
        supported: u32,
    },
    /// Another handle or process changed the store's key after this one
    /// opened it.
    #[error("the store's key was changed since it was opened; open it again")]
    KeyChanged,
    /// The store's files are damaged. They are left in place untouched.
    #[error("the store is damaged ({0}); its files were left untouched")]
    Corrupt(&'static str),
    /// No store at this place.
    #[error("no Sambung store in {0}; run `init` first")]
    NotInitialised(PathBuf),
    /// A store already exists at this place.
    #[error("a Sambung store already exists in {0}")]
    AlreadyInitialised(PathBuf),
    /// No request or attachment with this id.
    #[error("no {what} with this id")]
    NotFound {
        /// What was looked for.
        what: &'static str,
    },
    /// The action is not allowed now, for the given reason.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// Wiping would delete changes that have not reached the server.
    #[error(
        "{pending} request(s) have changes that have not reached the server; wipe refused (force it to delete them anyway)"
    )]
    UnsyncedChanges {
        /// Number of requests with unsynced changes.
        pending: usize,
    },
    /// An attachment is larger than allowed.
    #[error("the attachment is {size} bytes; at most {max} are allowed")]
    AttachmentTooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The key provider failed.
    /// A photo that cannot be prepared for upload (not JPEG/PNG, damaged,
    /// too large to decode); the reason names no content.
    #[error("the photo cannot be used: {0}")]
    Photo(String),

    #[error("the key provider failed: {0}")]
    KeyProvider(String),
    /// A document could not be read or written.
    #[error("document error: {0}")]
    Document(&'static str),
    /// Input JSON could not be parsed (the reason names the place, never the value).
    #[error("invalid JSON at line {line}, column {column}: {reason}")]
    InvalidJson {
        /// Line of the problem.
        line: usize,
        /// Column of the problem.
        column: usize,
        /// What was wrong, with quoted input values removed.
        reason: String,
    },
    /// A search's query is not one this store answers (too long).
    #[error("the search is not valid: {0}")]
    BadQuery(&'static str),
    /// The server refused the exchange.
    #[error("the server refused: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The protocol's error code.
        code: crate::protocol::ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The network failed.
    #[error("network error: {message}")]
    Network {
        /// Whether trying again later may work.
        retryable: bool,
        /// What failed.
        message: String,
    },
    /// The device is not enrolled with a server yet.
    #[error("this device is not enrolled; enroll it with a code from the agency first")]
    NotEnrolled,
    /// The agency revoked this device (a lost or stolen phone); `wiped`:
    /// its store was deleted as the agency asked.
    #[error("the agency revoked this device{}", if *wiped { "; its data on this phone was deleted as the agency asked" } else { "" })]
    Revoked {
        /// Whether the store was deleted.
        wiped: bool,
    },
    /// The server address is not acceptable.
    #[error("bad server address: {0}")]
    BadServerUrl(String),
    /// The server trust settings (CA certificates, key pins) are unusable.
    #[error("server trust: {0}")]
    ServerTrust(String),
    /// SQLite failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// A file could not be read or written.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    /// Cryptography failed unexpectedly (not a wrong key).
    #[error("cryptography error: {0}")]
    Crypto(&'static str),
}

impl Error {
    /// Whether trying the same thing again later may succeed without anyone
    /// acting: network failures, and server answers that say "later"
    /// (timeouts, overload, server faults). An app that must be updated, a
    /// device that must enroll again or a clock that must be set are not.
    ///
    /// ```
    /// use sambung_core::{Error, protocol::ErrorCode};
    /// let busy = Error::Server { status: 503, code: ErrorCode::Internal, message: String::new() };
    /// let old = Error::Server { status: 400, code: ErrorCode::UnsupportedVersion, message: String::new() };
    /// assert!(busy.is_retryable() && !old.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Network { retryable, .. } => *retryable,
            Error::Server { status, .. } => matches!(status, 408 | 429 | 500..=599),
            // Another process holds the write lock for a while.
            Error::Storage(_) => true,
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => Error::Corrupt("not a database file"),
            Some(ErrorCode::DatabaseCorrupt) => Error::Corrupt("the database file is corrupt"),
            // SQLite's own message names the failure (locked, full disk,
            // constraint); parameters are bound, so no values appear in it.
            _ => Error::Storage(e.to_string()),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::InvalidJson {
            line: e.line(),
            column: e.column(),
            reason: strip_quoted(&e.to_string()),
        }
    }
}

/// Removes input values from a serde_json message: double-quoted parts
/// anywhere, and the backquoted value before "expected" (as in ``unknown
/// variant `…` ``), keeping field names, which are schema, not data.
fn strip_quoted(msg: &str) -> String {
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    let keeps_names = msg.starts_with("unknown field")
        || msg.starts_with("missing field")
        || msg.starts_with("duplicate field");
    let (head, tail) = match msg.find(", expected") {
        Some(i) => msg.split_at(i),
        None => (msg, ""),
    };
    let mask = |text: &str, marks: &[char]| {
        let mut out = String::with_capacity(text.len());
        let mut inside: Option<char> = None;
        for c in text.chars() {
            match inside {
                Some(open) if c == open => inside = None,
                Some(_) => {}
                None if marks.contains(&c) => {
                    out.push(c);
                    out.push('…');
                    out.push(c);
                    inside = Some(c);
                }
                None => out.push(c),
            }
        }
        out
    };
    let head_marks: &[char] = if keeps_names { &['"'] } else { &['"', '`'] };
    format!("{}{}", mask(head, head_marks), mask(tail, &['"']))
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_do_not_repeat_input_values() {
        let e: Error = serde_json::from_str::<u64>("\"3273014108900007\"")
            .unwrap_err()
            .into();
        let text = e.to_string();
        assert!(!text.contains("3273014108900007"), "{text}");
        assert!(text.contains("invalid type"), "{text}");
        assert!(matches!(e, Error::InvalidJson { line: 1, .. }));
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        enum E {
            A,
        }
        let e: Error = serde_json::from_str::<E>("\"3273014108900007\"")
            .unwrap_err()
            .into();
        assert!(!e.to_string().contains("3273014108900007"), "{e}");
        assert!(e.to_string().contains("expected `A`"), "{e}");
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            a: u8,
        }
        let e: Error = serde_json::from_str::<S>("{\"mothers_nik\": 1}")
            .unwrap_err()
            .into();
        assert!(e.to_string().contains("unknown field `mothers_nik`"), "{e}");
    }
}
