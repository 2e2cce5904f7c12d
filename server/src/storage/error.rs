//! The backends' failures, typed, and the one place they become the
//! server's [`ServerError`].

use crate::error::ServerError;

/// A failure of a backend, typed; it becomes a [`ServerError`] in one
/// place (`error.rs`), which keeps the database's own text (it may quote
/// values) out of what callers see.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A stored value does not have the shape the server writes.
    #[error("damaged {0} in the database")]
    Damaged(&'static str),
}

impl From<rusqlite::Error> for ServerError {
    fn from(e: rusqlite::Error) -> Self {
        StorageError::from(e).into()
    }
}

impl From<tokio_postgres::Error> for ServerError {
    fn from(e: tokio_postgres::Error) -> Self {
        StorageError::from(e).into()
    }
}

/// The one place a backend's failure becomes the server's: logged for the
/// operator, and said to callers without the database's own text (a
/// driver's message may quote the values of a row).
impl From<StorageError> for ServerError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Sqlite(e) => {
                tracing::error!(error = %e, "storage error");
                ServerError::Storage(e.to_string())
            }
            StorageError::Postgres(e) => ServerError::Storage(match e.code() {
                Some(code) => format!("database error {}", code.code()),
                None if e.is_closed() => "the database connection closed".to_owned(),
                None => "the database failed".to_owned(),
            }),
            StorageError::Damaged(what) => ServerError::Storage(format!("damaged {what}")),
        }
    }
}
