//! The binary's logging: text or JSON lines on standard error (standard
//! output is for what subcommands print), a level that SIGHUP can change.
//!
//! `RUST_LOG`, when set, wins over the configuration (and is kept across
//! reloads); `-v` means `debug`; otherwise `[log] level`.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

use crate::config::LogFormat;

/// Why a level could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The level or filter directives do not parse.
    #[error("invalid log level {level:?}: {reason}")]
    Level {
        /// What was given.
        level: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The logger could not be installed or changed.
    #[error("logging: {0}")]
    Logger(String),
}

/// Where the level comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `RUST_LOG`: kept as it is on reload.
    Environment,
    /// `-v`: kept as `debug` on reload.
    Verbose,
    /// `[log] level`: read again on reload.
    Config,
}

/// Changes the level of the installed logger.
#[derive(Debug)]
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
    source: Source,
}

impl LogLevel {
    /// Installs the process's logger: `format`, at `RUST_LOG`'s level if
    /// set, else `debug` if `verbose`, else `level`.
    pub fn init(format: LogFormat, verbose: bool, level: &str) -> Result<LogLevel, LogError> {
        let (filter, source) = match std::env::var("RUST_LOG") {
            Ok(env) if !env.is_empty() => (filter(&env)?, Source::Environment),
            _ if verbose => (filter("debug")?, Source::Verbose),
            _ => (filter(level)?, Source::Config),
        };
        let (filter, handle) = reload::Layer::new(filter);
        let registry = tracing_subscriber::registry().with(filter);
        let installed = match format {
            LogFormat::Text => registry
                .with(fmt::layer().with_writer(std::io::stderr))
                .try_init(),
            LogFormat::Json => registry
                .with(fmt::layer().json().with_writer(std::io::stderr))
                .try_init(),
        };
        installed.map_err(|e| LogError::Logger(e.to_string()))?;
        Ok(LogLevel { handle, source })
    }

    /// Sets the level from the configuration again; `Ok(false)` when
    /// `RUST_LOG` or `-v` decide it instead.
    pub fn reload(&self, level: &str) -> Result<bool, LogError> {
        if self.source != Source::Config {
            return Ok(false);
        }
        let new = filter(level)?;
        self.handle
            .reload(new)
            .map_err(|e| LogError::Logger(e.to_string()))?;
        Ok(true)
    }
}

/// Parses a level or filter directives.
fn filter(level: &str) -> Result<EnvFilter, LogError> {
    EnvFilter::try_new(level).map_err(|e| LogError::Level {
        level: level.to_string(),
        reason: e.to_string(),
    })
}

/// Whether `level` is a level or filter the logger takes (for `--check`).
pub fn check_level(level: &str) -> Result<(), LogError> {
    filter(level).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_parse_and_nonsense_does_not() {
        assert!(check_level("info").is_ok());
        assert!(check_level("warn,mqtt_broker=debug").is_ok());
        assert!(check_level("loud=[").is_err());
    }
}
