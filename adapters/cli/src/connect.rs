//! The connection flags (`-h -p -L -u -P -i -I -k -V -c -x -D CONNECT`,
//! the will, TLS) as `mqtt-tokio` connect options, and connecting with them.

use mqtt_tokio::{
    Client, ConnectOptions, DisconnectProps, Event, Incoming, OptionSetters, ProtocolVersion,
};

use crate::args::ConnArgs;
use crate::failure::Failure;
use crate::props::Properties;
use crate::tls;

/// What connecting needs and what the tool keeps from the flags.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The options `mqtt-tokio` connects with.
    pub(crate) options: ConnectOptions,
    /// The protocol version, for exit codes and 5.0-only features.
    pub(crate) version: ProtocolVersion,
    /// The topic of an `-L mqtt://host/topic` URL, if it names one.
    pub(crate) url_topic: Option<String>,
    /// The DISCONNECT properties of `-D DISCONNECT`.
    pub(crate) disconnect: DisconnectProps,
    /// `-d`: say what happens on standard error.
    pub(crate) debug: bool,
}

/// A tool's defaults: its name (for generated client identifiers) and
/// protocol version (3.1.1 for `pub`/`sub`, 5.0 for `rr`, as Mosquitto's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    /// `pub`, `sub` or `rr`.
    pub(crate) name: &'static str,
    /// The version without `-V`.
    pub(crate) default_version: ProtocolVersion,
}

impl Connection {
    /// The connection the flags describe; `props` are the `-D` properties.
    pub(crate) fn from_args(
        args: &ConnArgs,
        props: &Properties,
        tool: Tool,
    ) -> Result<Connection, Failure> {
        let version = version(args, tool)?;
        let keep_alive = u16::try_from(args.keep_alive)
            .ok()
            .filter(|k| *k >= 5)
            .ok_or_else(|| {
                Failure::usage(
                    "Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.",
                )
            })?;
        let target = Target::from_args(args)?;
        let mut options = ConnectOptions::new(&target.address)
            .map_err(|e| Failure::usage(format!("Error: {e}")))?
            .version(version)
            .keep_alive(keep_alive)
            .client_id(&client_id(args, version, tool)?);
        options = session(options, args, props, version)?;
        options = credentials(options, args, &target, version)?;
        options = with_will(options, args, props);
        if tls::customized(&args.tls) {
            options = options.tls_config(tls::client_config(&args.tls)?);
        }
        Ok(Connection {
            options,
            version,
            url_topic: target.topic,
            disconnect: props.disconnect.clone(),
            debug: args.debug,
        })
    }

    /// Connects, or fails as Mosquitto's tools do (the CONNACK code as the
    /// exit status when the broker refuses).
    pub(crate) async fn open(&self) -> Result<(Client, Incoming), Failure> {
        let address = self.options.address();
        self.say(format_args!(
            "Connecting to {} port {}",
            address.host, address.port
        ));
        match Client::connect(self.options.clone()).await {
            Ok(pair) => {
                self.say(format_args!("Connected"));
                Ok(pair)
            }
            Err(e) => Err(Failure::connect(&e, self.version)),
        }
    }

    /// `-d`: one line on standard error.
    pub(crate) fn say(&self, what: std::fmt::Arguments<'_>) {
        if self.debug {
            eprintln!("mqtt: {what}");
        }
    }

    /// `-d`: an event of the client that is not a message.
    pub(crate) fn report(&self, event: &Event) {
        match event {
            Event::Connected {
                session_present, ..
            } => self.say(format_args!(
                "CONNACK received (session present: {session_present})"
            )),
            Event::Disconnected {
                close,
                reconnecting,
            } => self.say(format_args!(
                "Connection lost ({}); reconnecting: {reconnecting}",
                close.reason
            )),
            Event::ReconnectFailed { error } => {
                self.say(format_args!("Reconnection failed: {error}"))
            }
            Event::Message { .. } => {}
        }
    }
}

/// The broker's address, and what an `-L` URL adds.
struct Target {
    address: String,
    username: Option<String>,
    password: Option<String>,
    topic: Option<String>,
}

impl Target {
    fn from_args(args: &ConnArgs) -> Result<Target, Failure> {
        match &args.url {
            Some(url) => Target::from_url(url),
            None => {
                let tls = tls::requested(&args.tls);
                let scheme = if tls { "mqtts" } else { "mqtt" };
                let port = args.port.unwrap_or(if tls { 8883 } else { 1883 });
                // An IPv6 address goes in brackets.
                let host = if args.host.contains(':') {
                    format!("[{}]", args.host)
                } else {
                    args.host.clone()
                };
                Ok(Target {
                    address: format!("{scheme}://{host}:{port}"),
                    username: None,
                    password: None,
                    topic: None,
                })
            }
        }
    }

    /// `mqtt(s)://[user[:password]@]host[:port][/topic]` or
    /// `ws(s)://[user[:password]@]host[:port][/path]`.
    fn from_url(url: &str) -> Result<Target, Failure> {
        let bad = || Failure::usage(format!("Error: Unable to parse URL {url:?}."));
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let websocket = match scheme {
            "mqtt" | "mqtts" => false,
            "ws" | "wss" => true,
            _ => {
                return Err(Failure::usage(format!(
                "Error: Unsupported URL scheme {scheme:?}: use mqtt://, mqtts://, ws:// or wss://."
            )))
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        if host_port.is_empty() {
            return Err(bad());
        }
        let (username, password) = match userinfo.map(|u| u.split_once(':')) {
            Some(Some((u, p))) => (Some(u.to_owned()), Some(p.to_owned())),
            Some(None) => (userinfo.map(str::to_owned), None),
            None => (None, None),
        };
        let (address, topic) = if websocket {
            (format!("{scheme}://{host_port}{path}"), None)
        } else {
            let topic = path.strip_prefix('/').filter(|t| !t.is_empty());
            (format!("{scheme}://{host_port}"), topic.map(str::to_owned))
        };
        Ok(Target {
            address,
            username,
            password,
            topic,
        })
    }
}

fn version(args: &ConnArgs, tool: Tool) -> Result<ProtocolVersion, Failure> {
    let version = match args.version.as_deref() {
        None if !args.properties.is_empty() => ProtocolVersion::V5,
        None => tool.default_version,
        Some("5" | "mqttv5") => ProtocolVersion::V5,
        Some("311" | "mqttv311") => ProtocolVersion::V311,
        Some("31" | "mqttv31") => ProtocolVersion::V31,
        Some(_) => {
            return Err(Failure::usage(
                "Error: Invalid protocol version argument given.",
            ))
        }
    };
    if version != ProtocolVersion::V5 && !args.properties.is_empty() {
        return Err(Failure::usage(
            "Error: --property (-D) needs MQTT v5 (-V 5).",
        ));
    }
    Ok(version)
}

/// `-i`, `-I` plus the process id, or (none given) empty under 5.0 (the
/// broker assigns one) and a generated one under 3.1.1, as Mosquitto does.
fn client_id(args: &ConnArgs, version: ProtocolVersion, tool: Tool) -> Result<String, Failure> {
    if let Some(id) = &args.id {
        return Ok(id.clone());
    }
    if let Some(prefix) = &args.id_prefix {
        return Ok(format!("{prefix}{}", std::process::id()));
    }
    if args.persistent {
        return Err(Failure::usage(
            "Error: You must provide a client id if you are using the -c option.",
        ));
    }
    if version == ProtocolVersion::V5 {
        return Ok(String::new());
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Ok(format!(
        "mqtt-{}-{}-{nanos:08x}",
        tool.name,
        std::process::id()
    ))
}

/// `-c`, `-x` and the CONNECT properties of `-D`.
fn session(
    mut options: ConnectOptions,
    args: &ConnArgs,
    props: &Properties,
    version: ProtocolVersion,
) -> Result<ConnectOptions, Failure> {
    let connect = &props.connect;
    let expiry = match (&args.session_expiry, connect.session_expiry_interval) {
        (Some(text), _) => Some(session_expiry(text)?),
        (None, Some(seconds)) => Some(seconds),
        (None, None) if args.persistent => Some(u32::MAX),
        (None, None) => None,
    };
    if expiry == Some(u32::MAX) && args.id.is_none() && args.id_prefix.is_none() {
        return Err(Failure::usage(
            "Error: You must provide a client id if you are using an infinite session expiry interval.",
        ));
    }
    options = options.clean_start(!args.persistent);
    if let (Some(seconds), ProtocolVersion::V5) = (expiry, version) {
        options = options.session_expiry(seconds);
    }
    if let Some(n) = connect.receive_maximum {
        options = options.receive_maximum(n);
    }
    if let Some(n) = connect.maximum_packet_size {
        options = options.maximum_packet_size(n);
    }
    if let Some(n) = connect.topic_alias_maximum {
        options = options.topic_alias_maximum(n);
    }
    if let Some(b) = connect.request_problem_information {
        options.session_config().request_problem_information = b;
    }
    for (key, value) in &connect.user_properties {
        options = options.user_property(key, value);
    }
    Ok(options)
}

/// `-x`: seconds, or `-1`/`∞` for never.
fn session_expiry(text: &str) -> Result<u32, Failure> {
    match text {
        "-1" | "∞" => Ok(u32::MAX),
        _ => text.parse().map_err(|_| {
            Failure::usage(format!("Error: Invalid session-expiry-interval '{text}'."))
        }),
    }
}

fn credentials(
    options: ConnectOptions,
    args: &ConnArgs,
    target: &Target,
    version: ProtocolVersion,
) -> Result<ConnectOptions, Failure> {
    let username = args.username.as_ref().or(target.username.as_ref());
    let password = args.password.as_ref().or(target.password.as_ref());
    match (username, password) {
        (Some(u), p) => Ok(options.credentials(u, p.map(String::as_bytes))),
        (None, Some(_)) if version != ProtocolVersion::V5 => Err(Failure::usage(
            "Error: A password (-P) needs a username (-u) with MQTT v3.1.1.",
        )),
        (None, Some(_)) => Err(Failure::usage(
            "Error: A password (-P) without a username (-u) is not supported.",
        )),
        (None, None) => Ok(options),
    }
}

fn with_will(options: ConnectOptions, args: &ConnArgs, props: &Properties) -> ConnectOptions {
    let will = &args.will;
    match &will.will_topic {
        Some(topic) => {
            let payload = will.will_payload.clone().unwrap_or_default().into_bytes();
            options
                .will(topic, payload, will.will_qos, will.will_retain)
                .will_properties(props.will.will_props())
        }
        None => options,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_credentials_host_port_and_topic() {
        let t = Target::from_url("mqtts://alice:s3cret@example.com:8884/a/b").unwrap();
        assert_eq!(t.address, "mqtts://example.com:8884");
        assert_eq!(t.username.as_deref(), Some("alice"));
        assert_eq!(t.password.as_deref(), Some("s3cret"));
        assert_eq!(t.topic.as_deref(), Some("a/b"));
        let t = Target::from_url("ws://h:9001/mqtt").unwrap();
        assert_eq!((t.address.as_str(), t.topic), ("ws://h:9001/mqtt", None));
        let t = Target::from_url("mqtt://bob@h").unwrap();
        assert_eq!((t.username.as_deref(), t.password), (Some("bob"), None));
        assert!(Target::from_url("http://h/x").is_err());
        assert!(Target::from_url("mqtt:///x").is_err());
    }

    fn connection(line: &[&str]) -> Result<Connection, Failure> {
        let cli =
            crate::args::Cli::from_command_line(["mqtt", "sub", "-t", "a"].iter().chain(line))
                .expect("the line parses");
        let crate::args::Command::Sub(sub) = cli.command else {
            panic!("a sub command");
        };
        let props = Properties::parse(&sub.conn.properties, &["CONNECT"])?;
        let tool = Tool {
            name: "sub",
            default_version: ProtocolVersion::V311,
        };
        Connection::from_args(&sub.conn, &props, tool)
    }

    #[test]
    fn the_version_is_mosquittos_default_unless_a_property_asks_for_five() {
        assert_eq!(connection(&[]).unwrap().version, ProtocolVersion::V311);
        let with_property = connection(&["-D", "CONNECT", "receive-maximum", "5"]).unwrap();
        assert_eq!(with_property.version, ProtocolVersion::V5);
        let refused = connection(&["-V", "311", "-D", "CONNECT", "receive-maximum", "5"]);
        assert!(refused.unwrap_err().message.contains("needs MQTT v5"));
        assert!(connection(&["-V", "4"]).is_err());
    }

    #[test]
    fn a_kept_session_needs_a_client_identifier() {
        let refused = connection(&["-c"]).unwrap_err();
        assert_eq!(
            refused.message,
            "Error: You must provide a client id if you are using the -c option."
        );
        assert!(connection(&["-c", "-i", "me"]).is_ok());
        assert!(connection(&["-V", "5", "-x", "-1"]).is_err());
        assert!(connection(&["-P", "secret"]).is_err());
    }

    #[test]
    fn tls_flags_turn_tls_on_and_pick_its_port() {
        let plain = connection(&["-h", "::1"]).unwrap();
        assert_eq!(plain.options.address().host, "::1");
        assert_eq!(plain.options.address().port, 1883);
        let dir = std::env::temp_dir().join(format!("mqtt-cli-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let refused = connection(&["--cafile", missing.to_str().unwrap()]).unwrap_err();
        assert!(
            refused.message.contains("missing.pem"),
            "{}",
            refused.message
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn session_expiry_takes_minus_one_and_infinity_for_never() {
        assert_eq!(session_expiry("-1"), Ok(u32::MAX));
        assert_eq!(session_expiry("∞"), Ok(u32::MAX));
        assert_eq!(session_expiry("60"), Ok(60));
        assert!(session_expiry("soon").is_err());
    }
}
