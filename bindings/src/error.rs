//! The one public error, and the one place core errors become it. Messages
//! are the core's, which never carry personal data; a panic anywhere below
//! surfaces as `Internal` with a fixed message (its payload could hold a
//! value, so it is not passed on).

use std::panic::{AssertUnwindSafe, catch_unwind};

use sambung_core::Error;
use sambung_core::protocol::ErrorCode;

/// One problem with a request's fields.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FieldError {
    /// Path of the field, e.g. `details.witnesses[1].nik`.
    pub field: String,
    /// Machine-readable code, e.g. `nik_mismatch`.
    pub code: String,
    /// English message.
    pub message_en: String,
    /// Indonesian message.
    pub message_id: String,
}

/// What can go wrong, in variants an app can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum SambungError {
    /// The request is not valid; every problem at once.
    #[error("the request is not valid ({} problem(s))", errors.len())]
    Validation {
        /// The problems.
        errors: Vec<FieldError>,
    },
    /// The key does not open this store.
    #[error("the key does not open this store")]
    WrongKey,
    /// The app's key provider could not give the key (keystore locked,
    /// user not authenticated, key invalidated).
    #[error("the key provider failed: {reason}")]
    KeyUnavailable {
        /// The provider's message.
        reason: String,
    },
    /// The store was written by a newer app (or this app is too old for the
    /// server's protocol: `found` 0).
    #[error("incompatible version {found}; this app supports {supported}")]
    IncompatibleVersion {
        /// The version found.
        found: u32,
        /// The version this app supports.
        supported: u32,
    },
    /// The server speaks a newer protocol: the app must be updated.
    #[error("the server needs a newer version of this app")]
    UpdateRequired,
    /// Nothing with that id.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// Not allowed, with the reason.
    #[error("not allowed: {reason}")]
    Forbidden {
        /// Why.
        reason: String,
    },
    /// The app's configuration is unusable: the server address, its CA
    /// certificates or key pins. A fault of the app's setup, not of the
    /// user's action: nothing to retry until it changes.
    #[error("bad configuration: {reason}")]
    BadConfig {
        /// What is wrong (no secret in it).
        reason: String,
    },
    /// The agency revoked this device; `wiped`: its store was deleted as
    /// the agency asked (the client is unusable afterwards).
    #[error("the agency revoked this device")]
    Revoked {
        /// Whether the store was deleted.
        wiped: bool,
    },
    /// The device is not enrolled with a server yet.
    #[error("this device is not enrolled")]
    NotEnrolled,
    /// The network or the server failed; `retryable` says whether trying
    /// again later may work without anyone acting.
    #[error("network: {reason}")]
    Network {
        /// Whether to retry later.
        retryable: bool,
        /// What failed.
        reason: String,
    },
    /// The local store failed (disk full, damaged file, …).
    #[error("storage: {reason}")]
    Storage {
        /// What failed.
        reason: String,
    },
    /// The call was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A bug: something failed that should not.
    #[error("internal error: {reason}")]
    Internal {
        /// What failed, without personal data.
        reason: String,
    },
}

impl SambungError {
    pub(crate) fn internal() -> Self {
        SambungError::Internal {
            reason: "an unexpected failure in the library".into(),
        }
    }
}

impl From<Error> for SambungError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::Validation(report) => SambungError::Validation {
                errors: report
                    .errors
                    .iter()
                    .map(|i| FieldError {
                        field: i.field.clone(),
                        code: i.code.as_str().to_owned(),
                        message_en: i.message_en.to_owned(),
                        message_id: i.message_id.to_owned(),
                    })
                    .collect(),
            },
            Error::Form(issues) => SambungError::Validation {
                errors: issues
                    .into_iter()
                    .map(|i| FieldError {
                        field: i.field,
                        code: i.code,
                        message_en: i.message.en,
                        message_id: i.message.id,
                    })
                    .collect(),
            },
            Error::WrongKey | Error::KeyChanged => SambungError::WrongKey,
            Error::IncompatibleVersion { found, supported } => {
                SambungError::IncompatibleVersion { found, supported }
            }
            Error::NotFound { what } => SambungError::NotFound {
                what: what.to_owned(),
            },
            Error::Forbidden(reason) => SambungError::Forbidden { reason },
            Error::UnsyncedChanges { .. } | Error::AttachmentTooLarge { .. } | Error::Photo(_) => {
                SambungError::Forbidden { reason: message }
            }
            Error::NotEnrolled => SambungError::NotEnrolled,
            Error::Revoked { wiped } => SambungError::Revoked { wiped },
            Error::Server {
                code: ErrorCode::UnsupportedVersion,
                ..
            } => SambungError::UpdateRequired,
            Error::Network { .. } | Error::Server { .. } => SambungError::Network {
                retryable: e.is_retryable(),
                reason: message,
            },
            Error::BadServerUrl(_) | Error::ServerTrust(_) => {
                SambungError::BadConfig { reason: message }
            }
            Error::InvalidJson { .. } | Error::BadQuery(_) => {
                SambungError::Forbidden { reason: message }
            }
            Error::Storage(_)
            | Error::Io(_)
            | Error::Corrupt(_)
            | Error::NotInitialised(_)
            | Error::AlreadyInitialised(_) => SambungError::Storage { reason: message },
            // The provider's own message (it must not contain the key).
            Error::KeyProvider(m) => SambungError::KeyUnavailable { reason: m },
            Error::Document(_) | Error::Crypto(_) => SambungError::Internal { reason: message },
            _ => SambungError::Internal { reason: message },
        }
    }
}

/// Runs `f`, turning a panic into `Internal`.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T, SambungError>) -> Result<T, SambungError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(SambungError::internal()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_below_surfaces_as_internal_without_its_payload() {
        let r: Result<(), SambungError> = guard(|| panic!("NIK 3273014108900007"));
        match r {
            Err(SambungError::Internal { reason }) => assert!(!reason.contains("3273")),
            other => panic!("expected Internal, got {other:?}"),
        }
    }

    #[test]
    fn core_errors_map_to_what_an_app_can_act_on() {
        type Expect = fn(&SambungError) -> bool;
        let cases: Vec<(Error, Expect)> = vec![
            (Error::WrongKey, |e| matches!(e, SambungError::WrongKey)),
            (Error::KeyChanged, |e| matches!(e, SambungError::WrongKey)),
            (Error::NotEnrolled, |e| {
                matches!(e, SambungError::NotEnrolled)
            }),
            (
                Error::Forbidden("no".into()),
                |e| matches!(e, SambungError::Forbidden { reason } if reason == "no"),
            ),
            (
                Error::BadServerUrl("not https".into()),
                |e| matches!(e, SambungError::BadConfig { reason } if reason.contains("not https")),
            ),
            (Error::ServerTrust("no certificate".into()), |e| {
                matches!(e, SambungError::BadConfig { .. })
            }),
            (
                Error::Server {
                    status: 503,
                    code: ErrorCode::Internal,
                    message: "busy".into(),
                },
                |e| {
                    matches!(
                        e,
                        SambungError::Network {
                            retryable: true,
                            ..
                        }
                    )
                },
            ),
            (
                Error::Server {
                    status: 401,
                    code: ErrorCode::UnknownDevice,
                    message: "who".into(),
                },
                |e| {
                    matches!(
                        e,
                        SambungError::Network {
                            retryable: false,
                            ..
                        }
                    )
                },
            ),
            (
                Error::Server {
                    status: 400,
                    code: ErrorCode::UnsupportedVersion,
                    message: "old".into(),
                },
                |e| matches!(e, SambungError::UpdateRequired),
            ),
            (Error::Corrupt("x"), |e| {
                matches!(e, SambungError::Storage { .. })
            }),
            (Error::Document("x"), |e| {
                matches!(e, SambungError::Internal { .. })
            }),
            (Error::KeyProvider("locked".into()), |e| {
                matches!(e, SambungError::KeyUnavailable { .. })
            }),
        ];
        for (core, expected) in cases {
            let shown = core.to_string();
            let mapped = SambungError::from(core);
            assert!(expected(&mapped), "{shown} became {mapped:?}");
        }
    }
}
