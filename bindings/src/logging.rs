//! The core's `tracing` events, handed to the app's logger (logcat, os_log,
//! Python's logging). The events carry counts, codes and reasons, never
//! request content.

use std::fmt::Write;
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Detailed.
    Debug,
    /// Normal events.
    Info,
    /// Something to look at.
    Warn,
    /// A failure.
    Error,
}

impl From<&tracing::Level> for LogLevel {
    fn from(l: &tracing::Level) -> Self {
        match *l {
            tracing::Level::TRACE => LogLevel::Trace,
            tracing::Level::DEBUG => LogLevel::Debug,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::WARN => LogLevel::Warn,
            _ => LogLevel::Error,
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// Where it comes from, e.g. `sambung_core::sync`.
    pub target: String,
    /// The message with its fields (`key=value`).
    pub message: String,
}

/// Receives the library's log events. Implemented by the app; called from
/// the library's threads.
#[uniffi::export(with_foreign)]
pub trait Logger: Send + Sync {
    /// One event.
    fn log(&self, record: LogRecord);
}

struct Sink {
    logger: Arc<dyn Logger>,
    level: LogLevel,
}

fn sink() -> &'static RwLock<Option<Sink>> {
    static SINK: OnceLock<RwLock<Option<Sink>>> = OnceLock::new();
    SINK.get_or_init(|| RwLock::new(None))
}

struct Forward;

#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let guard = sink().read().unwrap_or_else(|e| e.into_inner());
        let Some(sink) = guard.as_ref() else { return };
        let level = LogLevel::from(event.metadata().level());
        if level < sink.level {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        sink.logger.log(LogRecord {
            level,
            target: event.metadata().target().to_owned(),
            message: text.0,
        });
    }
}

/// Sends the library's log events at `level` and above to `logger`
/// (replacing any logger set before).
#[uniffi::export]
pub fn set_logger(logger: Arc<dyn Logger>, level: LogLevel) {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *sink().write().unwrap_or_else(|e| e.into_inner()) = Some(Sink { logger, level });
    INSTALLED.get_or_init(|| {
        // Another global subscriber (the app's own Rust code) wins; ours is
        // then silent rather than a crash.
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Forward))
            .is_ok()
    });
}

/// Stops sending log events (call it before a Python interpreter exits: a
/// log event from a library thread must not call into a finalising
/// interpreter).
#[uniffi::export]
pub fn clear_logger() {
    *sink().write().unwrap_or_else(|e| e.into_inner()) = None;
}
