//! How a run ends badly: the message on standard error and the exit status,
//! as the Mosquitto tools choose them.

use std::fmt;

use mqtt_tokio::mqtt_client::ConnectError as ProtocolConnectError;
use mqtt_tokio::{ConnectError, ProtocolVersion, ReasonCode};

/// The exit status of `-W` running out, as in `mosquitto_sub` and
/// `mosquitto_rr` (libmosquitto's `MOSQ_ERR_TIMEOUT`).
pub(crate) const TIMED_OUT: u8 = 27;

/// Why the tool stops with a non-zero status: what it prints on standard
/// error, and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The message, without its final newline.
    pub(crate) message: String,
    /// The exit status.
    pub(crate) status: u8,
    /// Whether the message is about the command line, so the hint to
    /// `--help` follows it (as in Mosquitto's tools).
    pub(crate) usage: bool,
}

impl Failure {
    /// A failure at run time (network, broker, files): status 1.
    pub(crate) fn runtime(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: 1,
            usage: false,
        }
    }

    /// A command line that cannot be run: status 1, with the `--help` hint.
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: 1,
            usage: true,
        }
    }

    /// A failure that has nothing to say (standard output closed under
    /// us, as by `| head -1`): status 1, no message.
    pub(crate) fn silent() -> Failure {
        Failure::runtime("")
    }

    /// `-W` ran out: "Timed out", status 27.
    pub(crate) fn timed_out() -> Failure {
        Failure {
            message: "Timed out".to_owned(),
            status: TIMED_OUT,
            usage: false,
        }
    }

    /// A failed connection. A broker's refusal exits with the CONNACK code
    /// (the 3.1.1 return code, or the 5.0 reason code) and Mosquitto's
    /// "Connection error: ..." wording; other failures exit with 1.
    pub(crate) fn connect(error: &ConnectError, version: ProtocolVersion) -> Failure {
        match error {
            ConnectError::Protocol(ProtocolConnectError::Refused { reason, .. }) => {
                refused(*reason, version)
            }
            ConnectError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Failure::runtime("Error: Connection refused")
            }
            ConnectError::Io(e) => Failure::runtime(format!("Error: {e}")),
            other => Failure::runtime(format!("Error: {other}")),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A CONNACK refusal, worded and numbered as Mosquitto's tools do.
fn refused(reason: ReasonCode, version: ProtocolVersion) -> Failure {
    let v311 = version != ProtocolVersion::V5;
    let (status, text) = match reason.to_v311_connack() {
        Some(code) if v311 => (code, v311_connack_text(code).to_owned()),
        _ => (
            reason.0,
            capitalized(reason.description().unwrap_or("unknown reason")),
        ),
    };
    Failure {
        message: format!("Connection error: {text}"),
        status,
        usage: false,
    }
}

/// libmosquitto's `mosquitto_connack_string` for 3.1.1 return codes.
fn v311_connack_text(code: u8) -> &'static str {
    match code {
        1 => "Connection Refused: unacceptable protocol version.",
        2 => "Connection Refused: identifier rejected.",
        3 => "Connection Refused: broker unavailable.",
        4 => "Connection Refused: bad user name or password.",
        5 => "Connection Refused: not authorised.",
        _ => "Connection Refused: unknown reason.",
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(reason: ReasonCode) -> ConnectError {
        ConnectError::Protocol(ProtocolConnectError::Refused {
            reason,
            reason_string: None,
        })
    }

    #[test]
    fn a_refusal_exits_with_the_connack_code_of_the_version_used() {
        let f = Failure::connect(&refusal(ReasonCode::NOT_AUTHORIZED), ProtocolVersion::V311);
        assert_eq!(f.status, 5);
        assert_eq!(
            f.message,
            "Connection error: Connection Refused: not authorised."
        );
        let f = Failure::connect(&refusal(ReasonCode::NOT_AUTHORIZED), ProtocolVersion::V5);
        assert_eq!(f.status, 135);
        assert_eq!(f.message, "Connection error: Not authorized");
    }

    #[test]
    fn other_connect_failures_exit_with_one() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let f = Failure::connect(&ConnectError::Io(io), ProtocolVersion::V311);
        assert_eq!(
            (f.status, f.message.as_str()),
            (1, "Error: Connection refused")
        );
        assert_eq!(Failure::timed_out().status, TIMED_OUT);
    }
}
