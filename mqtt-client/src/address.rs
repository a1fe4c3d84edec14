//! Broker addresses as client adapters take them: `mqtt://`, `mqtts://`,
//! `ws://`, `wss://` or a plain `host:port`.

use alloc::borrow::ToOwned;
use alloc::string::String;

/// How a client reaches the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// MQTT over TCP (`mqtt://`, `tcp://`; port 1883 by default).
    Tcp,
    /// MQTT over TLS (`mqtts://`, `ssl://`, `tls://`; port 8883 by default).
    Tls,
    /// MQTT over WebSocket (`ws://`; port 80 by default, path `/mqtt`).
    WebSocket,
    /// MQTT over WebSocket over TLS (`wss://`; port 443 by default).
    WebSocketTls,
}

impl Scheme {
    /// The same transport with TLS: `Tcp` becomes `Tls`, `WebSocket`
    /// becomes `WebSocketTls`.
    pub fn with_tls(self) -> Scheme {
        match self {
            Scheme::Tcp | Scheme::Tls => Scheme::Tls,
            Scheme::WebSocket | Scheme::WebSocketTls => Scheme::WebSocketTls,
        }
    }

    /// The port used when the address names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Tcp => 1883,
            Scheme::Tls => 8883,
            Scheme::WebSocket => 80,
            Scheme::WebSocketTls => 443,
        }
    }

    /// How an address of this transport begins (`mqtt://`, `mqtts://`,
    /// `ws://`, `wss://`).
    pub fn prefix(self) -> &'static str {
        match self {
            Scheme::Tcp => "mqtt://",
            Scheme::Tls => "mqtts://",
            Scheme::WebSocket => "ws://",
            Scheme::WebSocketTls => "wss://",
        }
    }

    /// The Cargo feature of a client adapter this transport needs that is
    /// off, given whether its `tls` and `websocket` features are on; `None`
    /// when the transport is there. The adapters refuse such an address
    /// with the feature's name rather than fall back to plain TCP.
    pub fn missing_feature(self, tls: bool, websocket: bool) -> Option<&'static str> {
        match self {
            Scheme::Tcp => None,
            Scheme::Tls => (!tls).then_some("tls"),
            Scheme::WebSocket => (!websocket).then_some("websocket"),
            Scheme::WebSocketTls if !websocket => Some("websocket"),
            Scheme::WebSocketTls => (!tls).then_some("tls"),
        }
    }
}

/// A broker address: `mqtt://host:port`, `mqtts://host:port`,
/// `ws://host:port/path`, `wss://host:port/path`, or plain `host:port`
/// (MQTT over TCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The transport.
    pub scheme: Scheme,
    /// Host name or IP address (without the brackets of an IPv6 literal);
    /// also the TLS server name.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The WebSocket path (`/mqtt` unless the address names one); empty for
    /// the other transports.
    pub path: String,
}

/// An address that is not one [`Address::parse`] understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid broker address {address:?}: {why}")]
pub struct AddressError {
    /// The address given.
    pub address: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl Address {
    /// Parses an address; see [`Address`] for the forms accepted.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let bad = |why: &'static str| AddressError {
            address: text.to_owned(),
            why,
        };
        let (scheme, rest) = match text.split_once("://") {
            None => (Scheme::Tcp, text),
            Some(("mqtt" | "tcp", rest)) => (Scheme::Tcp, rest),
            Some(("mqtts" | "ssl" | "tls", rest)) => (Scheme::Tls, rest),
            Some(("ws", rest)) => (Scheme::WebSocket, rest),
            Some(("wss", rest)) => (Scheme::WebSocketTls, rest),
            Some(_) => return Err(bad("the scheme is not mqtt, mqtts, ws or wss")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address lacks its closing ']'"))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        let port = match port {
            None => scheme.default_port(),
            Some(p) => p
                .parse()
                .map_err(|_| bad("the port is not a number from 0 to 65535"))?,
        };
        let path = match (scheme, path) {
            (Scheme::WebSocket | Scheme::WebSocketTls, "") => "/mqtt".to_owned(),
            (Scheme::WebSocket | Scheme::WebSocketTls, p) => p.to_owned(),
            (_, "" | "/") => String::new(),
            _ => return Err(bad("only WebSocket addresses have a path")),
        };
        Ok(Address {
            scheme,
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// Whether the transport is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.scheme, Scheme::Tls | Scheme::WebSocketTls)
    }

    /// Whether the transport is WebSocket (with or without TLS).
    pub fn is_websocket(&self) -> bool {
        matches!(self.scheme, Scheme::WebSocket | Scheme::WebSocketTls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_transport_names_the_feature_it_is_missing() {
        use Scheme::*;
        // (scheme, tls on, websocket on) -> the feature named.
        let cases = [
            (Tcp, false, false, None),
            (Tls, false, false, Some("tls")),
            (Tls, true, false, None),
            (WebSocket, false, false, Some("websocket")),
            (WebSocket, false, true, None),
            (WebSocketTls, false, false, Some("websocket")),
            (WebSocketTls, true, false, Some("websocket")),
            (WebSocketTls, false, true, Some("tls")),
            (WebSocketTls, true, true, None),
        ];
        for (scheme, tls, ws, expected) in cases {
            assert_eq!(
                scheme.missing_feature(tls, ws),
                expected,
                "{scheme:?} tls={tls} ws={ws}"
            );
        }
    }

    #[test]
    fn addresses_parse_with_defaults() {
        let a = Address::parse("mqtt://example.com").unwrap();
        assert_eq!(
            (a.scheme, a.host.as_str(), a.port),
            (Scheme::Tcp, "example.com", 1883)
        );
        let a = Address::parse("127.0.0.1:1999").unwrap();
        assert_eq!((a.scheme, a.port), (Scheme::Tcp, 1999));
        let a = Address::parse("mqtts://h").unwrap();
        assert_eq!((a.scheme, a.port), (Scheme::Tls, 8883));
        assert!(a.is_tls() && !a.is_websocket());
        let a = Address::parse("ws://h:9001").unwrap();
        assert_eq!(
            (a.scheme, a.port, a.path.as_str()),
            (Scheme::WebSocket, 9001, "/mqtt")
        );
        assert!(a.is_websocket() && !a.is_tls());
        let a = Address::parse("wss://h/custom/path").unwrap();
        assert_eq!(
            (a.scheme, a.port, a.path.as_str()),
            (Scheme::WebSocketTls, 443, "/custom/path")
        );
        let a = Address::parse("mqtt://[::1]:1884").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 1884));
        let a = Address::parse("tcp://[::1]").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 1883));
        let a = Address::parse("mqtt://h/").unwrap();
        assert_eq!(a.path, "");
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        for (bad, why) in [
            ("http://h", "the scheme is not mqtt, mqtts, ws or wss"),
            ("mqtt://", "the host is missing"),
            ("mqtt://:1883", "the host is missing"),
            ("mqtt://h:port", "the port is not a number from 0 to 65535"),
            ("mqtt://h:70000", "the port is not a number from 0 to 65535"),
            ("mqtt://[::1", "an IPv6 address lacks its closing ']'"),
            ("mqtt://[::1]x", "junk after ']'"),
            ("mqtt://h/path", "only WebSocket addresses have a path"),
        ] {
            let e = Address::parse(bad).unwrap_err();
            assert_eq!((e.address.as_str(), e.why), (bad, why));
        }
    }

    #[test]
    fn tls_variants_of_each_scheme() {
        assert_eq!(Scheme::Tcp.with_tls(), Scheme::Tls);
        assert_eq!(Scheme::Tls.with_tls(), Scheme::Tls);
        assert_eq!(Scheme::WebSocket.with_tls(), Scheme::WebSocketTls);
        assert_eq!(Scheme::WebSocketTls.with_tls(), Scheme::WebSocketTls);
    }
}
