//! The command line: `mqtt pub`, `mqtt sub` and `mqtt rr` with the flags of
//! `mosquitto_pub`, `mosquitto_sub` and `mosquitto_rr` (so `-h` is the
//! host, `-V` the protocol version, and help is `--help` only).

use std::path::PathBuf;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use mqtt_tokio::QoS;

/// MQTT 3.1.1 / 5.0 command-line clients with the flags and output of
/// Mosquitto's `mosquitto_pub`, `mosquitto_sub` and `mosquitto_rr`.
#[derive(Debug, Parser)]
#[command(name = "mqtt", version)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The argument id of `-D`, whose occurrences are read apart.
const PROPERTY: &str = "property";

impl Cli {
    /// Parses a command line; clap's derive cannot keep the words of each
    /// `-D` together, so they are read from the matches here.
    pub(crate) fn from_command_line<I, T>(line: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(line)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        let properties = matches
            .subcommand()
            .and_then(|(_, sub)| sub.get_occurrences::<String>(PROPERTY))
            .map(|occurrences| occurrences.map(|words| words.cloned().collect()).collect())
            .unwrap_or_default();
        let conn = match &mut cli.command {
            Command::Pub(a) => &mut a.conn,
            Command::Sub(a) => &mut a.conn,
            Command::Rr(a) => &mut a.conn,
        };
        conn.properties = properties;
        Ok(cli)
    }
}

/// The tools.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Publish messages, as mosquitto_pub.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Pub(PubArgs),
    /// Subscribe and print what arrives, as mosquitto_sub.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Sub(SubArgs),
    /// Send a request and print its response (MQTT 5.0 request/response),
    /// as mosquitto_rr.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Rr(RrArgs),
}

/// `mqtt pub`.
#[derive(Debug, Args)]
pub(crate) struct PubArgs {
    /// The connection.
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    /// The topic to publish to.
    #[arg(short = 't', long = "topic")]
    pub(crate) topic: Option<String>,
    /// The message payload.
    #[command(flatten)]
    pub(crate) message: MessageArgs,
    /// Send each line read from standard input as a message.
    #[arg(short = 'l', long = "stdin-line")]
    pub(crate) stdin_line: bool,
    /// Quality of service: 0, 1 or 2.
    #[arg(short = 'q', long = "qos", default_value = "0", value_parser = parse_qos)]
    pub(crate) qos: QoS,
    /// Retain the message.
    #[arg(short = 'r', long = "retain")]
    pub(crate) retain: bool,
    /// Publish the message (-m, -f, -n, -s) this many times.
    #[arg(long = "repeat", value_name = "COUNT", default_value_t = 1)]
    pub(crate) repeat: u32,
    /// Seconds to wait between repeated messages (fractions allowed).
    #[arg(long = "repeat-delay", value_name = "SECONDS", default_value_t = 0.0)]
    pub(crate) repeat_delay: f64,
    /// Show help.
    #[arg(long = "help", action = ArgAction::Help, help = "Print help")]
    help: Option<bool>,
}

/// `mqtt sub`.
#[derive(Debug, Args)]
pub(crate) struct SubArgs {
    /// The connection.
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    /// A topic filter to subscribe to (repeatable).
    #[arg(short = 't', long = "topic")]
    pub(crate) topics: Vec<String>,
    /// Do not print messages whose topic matches this filter (repeatable).
    #[arg(short = 'T', long = "filter-out")]
    pub(crate) filter_out: Vec<String>,
    /// Unsubscribe from this filter after subscribing (repeatable).
    #[arg(short = 'U', long = "unsubscribe")]
    pub(crate) unsubscribe: Vec<String>,
    /// Quality of service of the subscriptions: 0, 1 or 2.
    #[arg(short = 'q', long = "qos", default_value = "0", value_parser = parse_qos)]
    pub(crate) qos: QoS,
    /// Exit after this many messages.
    #[arg(short = 'C', value_name = "COUNT")]
    pub(crate) count: Option<u32>,
    /// Exit once every subscription is acknowledged.
    #[arg(short = 'E')]
    pub(crate) exit_after_subscribe: bool,
    /// Print only retained messages; exit on the first fresh one.
    #[arg(long = "retained-only")]
    pub(crate) retained_only: bool,
    /// Clear each retained message received (publish an empty retained one).
    #[arg(long = "remove-retained")]
    pub(crate) remove_retained: bool,
    /// Subscribe with Retain As Published (5.0).
    #[arg(long = "retain-as-published")]
    pub(crate) retain_as_published: bool,
    /// How messages are printed.
    #[command(flatten)]
    pub(crate) output: OutputArgs,
    /// Show help.
    #[arg(long = "help", action = ArgAction::Help, help = "Print help")]
    help: Option<bool>,
}

/// `mqtt rr`.
#[derive(Debug, Args)]
pub(crate) struct RrArgs {
    /// The connection.
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    /// The topic the request is published to.
    #[arg(short = 't', long = "topic")]
    pub(crate) topic: Option<String>,
    /// The response topic: subscribed to, and named in the request.
    #[arg(short = 'e', value_name = "RESPONSE-TOPIC")]
    pub(crate) response_topic: Option<String>,
    /// The request payload.
    #[command(flatten)]
    pub(crate) message: MessageArgs,
    /// Quality of service of the request and the subscription: 0, 1 or 2.
    #[arg(short = 'q', long = "qos", default_value = "0", value_parser = parse_qos)]
    pub(crate) qos: QoS,
    /// How the response is printed.
    #[command(flatten)]
    pub(crate) output: OutputArgs,
    /// Show help.
    #[arg(long = "help", action = ArgAction::Help, help = "Print help")]
    help: Option<bool>,
}

/// Where a published payload comes from (at most one of them).
#[derive(Debug, Args)]
pub(crate) struct MessageArgs {
    /// The payload.
    #[arg(short = 'm', long = "message")]
    pub(crate) message: Option<String>,
    /// Send the contents of this file.
    #[arg(short = 'f', long = "file")]
    pub(crate) file: Option<PathBuf>,
    /// Send an empty (zero-length) payload.
    #[arg(short = 'n', long = "null-message")]
    pub(crate) null: bool,
    /// Send all of standard input as one message.
    #[arg(short = 's', long = "stdin-file")]
    pub(crate) stdin_file: bool,
}

/// How received messages are printed (`mqtt sub`, `mqtt rr`).
#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Print "topic payload".
    #[arg(short = 'v', long = "verbose")]
    pub(crate) verbose: bool,
    /// Print with this format (%t topic, %p payload, ...; see the README).
    #[arg(short = 'F', value_name = "FORMAT")]
    pub(crate) format: Option<String>,
    /// Do not add a newline after each message.
    #[arg(short = 'N')]
    pub(crate) no_newline: bool,
    /// Do not print retained messages.
    #[arg(short = 'R')]
    pub(crate) no_retained: bool,
    /// Exit with status 27 if this many seconds pass (after connecting)
    /// before the tool is done.
    #[arg(short = 'W', value_name = "SECONDS")]
    pub(crate) timeout: Option<u32>,
}

/// The connection: broker, identity, session, will, TLS, 5.0 properties.
#[derive(Debug, Args)]
pub(crate) struct ConnArgs {
    /// The broker's host.
    #[arg(short = 'h', long = "host", default_value = "localhost")]
    pub(crate) host: String,
    /// The broker's port (default 1883, 8883 with TLS).
    #[arg(short = 'p', long = "port")]
    pub(crate) port: Option<u16>,
    /// The broker as a URL (`mqtt://`, `mqtts://`, `ws://`, `wss://`).
    #[arg(
        short = 'L',
        long = "url",
        help = "The broker as a URL: mqtt(s)://[user[:password]@]host[:port]/topic, or ws(s)://[user[:password]@]host[:port][/path]"
    )]
    pub(crate) url: Option<String>,
    /// The user name.
    #[arg(short = 'u', long = "username")]
    pub(crate) username: Option<String>,
    /// The password.
    #[arg(short = 'P', long = "pw")]
    pub(crate) password: Option<String>,
    /// The client identifier.
    #[arg(short = 'i', long = "id", conflicts_with = "id_prefix")]
    pub(crate) id: Option<String>,
    /// A client identifier made of this prefix and the process id.
    #[arg(short = 'I', long = "id-prefix")]
    pub(crate) id_prefix: Option<String>,
    /// Keep alive in seconds.
    #[arg(short = 'k', long = "keepalive", default_value_t = 60)]
    pub(crate) keep_alive: u32,
    /// The protocol version: 5, 311, 31 (or mqttv5, mqttv311, mqttv31).
    #[arg(short = 'V', long = "protocol-version")]
    pub(crate) version: Option<String>,
    /// Keep the session (clean start off); needs -i.
    #[arg(short = 'c', long = "disable-clean-session")]
    pub(crate) persistent: bool,
    /// Session expiry interval in seconds (5.0); -1 or ∞: never.
    #[arg(short = 'x', allow_hyphen_values = true, value_name = "SECONDS")]
    pub(crate) session_expiry: Option<String>,
    /// Print what the client does on standard error.
    #[arg(short = 'd', long = "debug")]
    pub(crate) debug: bool,
    /// Print no errors.
    #[arg(long = "quiet")]
    pub(crate) quiet: bool,
    /// A 5.0 property: -D COMMAND NAME VALUE, or -D COMMAND user-property KEY VALUE.
    #[arg(id = PROPERTY, short = 'D', long = "property", num_args = 3..=4, value_names = ["COMMAND", "NAME", "VALUE"], action = ArgAction::Append)]
    property_words: Vec<String>,
    /// The `-D` properties, each its 3 or 4 words (see [`Cli::from_command_line`]).
    #[arg(skip)]
    pub(crate) properties: Vec<Vec<String>>,
    /// The will.
    #[command(flatten)]
    pub(crate) will: WillArgs,
    /// TLS.
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
}

/// The will message.
#[derive(Debug, Args)]
pub(crate) struct WillArgs {
    /// The will's topic.
    #[arg(long = "will-topic")]
    pub(crate) will_topic: Option<String>,
    /// The will's payload.
    #[arg(long = "will-payload", requires = "will_topic")]
    pub(crate) will_payload: Option<String>,
    /// The will's QoS.
    #[arg(long = "will-qos", default_value = "0", value_parser = parse_qos)]
    pub(crate) will_qos: QoS,
    /// Retain the will.
    #[arg(long = "will-retain", requires = "will_topic")]
    pub(crate) will_retain: bool,
}

/// TLS: what to trust and who the client is.
#[derive(Debug, Args)]
pub(crate) struct TlsArgs {
    /// Trust the CA certificates in this PEM file (turns TLS on).
    #[arg(long = "cafile")]
    pub(crate) cafile: Option<PathBuf>,
    /// Trust the CA certificates (*.crt, *.pem) in this folder (turns TLS on).
    #[arg(long = "capath")]
    pub(crate) capath: Option<PathBuf>,
    /// The client certificate, PEM.
    #[arg(long = "cert", requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// The client certificate's private key, PEM.
    #[arg(long = "key", requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// Do not check that the server certificate names the host.
    #[arg(long = "insecure")]
    pub(crate) insecure: bool,
}

/// A QoS as Mosquitto's tools take it.
fn parse_qos(text: &str) -> Result<QoS, String> {
    text.parse::<u8>()
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("Invalid QoS given: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[&str]) -> Result<Cli, clap::Error> {
        Cli::from_command_line(std::iter::once("mqtt").chain(line.iter().copied()))
    }

    #[test]
    fn mosquitto_flags_parse_including_minus_h_and_minus_v() {
        let Ok(Cli {
            command: Command::Sub(sub),
        }) = parse(&[
            "sub",
            "-h",
            "broker",
            "-p",
            "1884",
            "-t",
            "a/#",
            "-t",
            "b",
            "-v",
            "-V",
            "5",
            "-C",
            "3",
            "-x",
            "-1",
            "-D",
            "CONNECT",
            "user-property",
            "k",
            "v",
            "-q",
            "2",
        ])
        else {
            panic!("sub parses");
        };
        assert_eq!(sub.conn.host, "broker");
        assert_eq!(sub.conn.port, Some(1884));
        assert_eq!(sub.topics, ["a/#", "b"]);
        assert!(sub.output.verbose);
        assert_eq!(sub.conn.version.as_deref(), Some("5"));
        assert_eq!(sub.count, Some(3));
        assert_eq!(sub.conn.session_expiry.as_deref(), Some("-1"));
        assert_eq!(
            sub.conn.properties,
            [["CONNECT", "user-property", "k", "v"]]
        );
        assert_eq!(sub.qos, QoS::ExactlyOnce);
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_bad_qos_is_refused_with_mosquittos_words() {
        let e = parse(&["pub", "-t", "a", "-m", "x", "-q", "3"]).unwrap_err();
        assert!(e.to_string().contains("Invalid QoS given: 3"), "{e}");
    }

    #[test]
    fn a_property_needs_at_least_three_values() {
        assert!(parse(&["pub", "-t", "a", "-D", "PUBLISH", "content-type"]).is_err());
    }
}
