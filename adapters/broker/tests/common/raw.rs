//! A raw MQTT peer over a loopback socket: packets built byte by byte and
//! answers read back whole, so a test can assert what goes over the wire
//! byte for byte. Every read is bounded in time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One raw connection to the broker.
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// How a read for the next packet ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A whole packet, fixed header included.
    Packet(Vec<u8>),
    /// The broker closed the connection (end of stream or reset).
    Closed,
    /// Nothing within the time given.
    Silent,
}

impl Raw {
    /// Opens a connection (no Nagle delay: each `send` is one segment).
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("the broker accepts");
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Opens a connection and completes `connect`, checking that the
    /// broker answers with exactly `connack`.
    pub fn connected(addr: SocketAddr, connect: &[u8], connack: &[u8]) -> Raw {
        let mut raw = Raw::connect(addr);
        raw.send(connect);
        raw.expect(connack);
        raw
    }

    /// The socket itself, for tests that read it their own way.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// The socket itself.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Writes `bytes` in one write.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("the write succeeds");
    }

    /// The next packet from the broker, within `within`.
    pub fn next(&mut self, within: Duration) -> Next {
        let deadline = Instant::now() + within;
        loop {
            if let Some(len) = whole_packet_len(&self.buf) {
                return Next::Packet(self.buf.drain(..len).collect());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Next::Silent;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Next::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Next::Silent
                }
                Err(_) => return Next::Closed,
            }
        }
    }

    /// Asserts that the next packet is exactly `bytes` (within 5 s).
    #[track_caller]
    pub fn expect(&mut self, bytes: &[u8]) {
        match self.next(Duration::from_secs(5)) {
            Next::Packet(p) => assert_eq!(hex(&p), hex(bytes), "the packet the broker sent"),
            other => panic!("expected {}, got {other:?}", hex(bytes)),
        }
    }

    /// Asserts that the broker closes the connection within 5 s without
    /// sending anything more.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        match self.next(Duration::from_secs(5)) {
            Next::Closed => {}
            other => panic!("expected the connection closed, got {other:?}"),
        }
    }

    /// Asserts that `bytes` is the last thing the broker sends before it
    /// closes the connection.
    #[track_caller]
    pub fn expect_last(&mut self, bytes: &[u8]) {
        self.expect(bytes);
        self.expect_closed();
    }
}

/// Bytes as spaced hexadecimal, for readable assertion failures.
pub fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The length of the whole packet at the start of `b`, once it is all there.
fn whole_packet_len(b: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for i in 0..4 {
        let byte = *b.get(1 + i)?;
        len |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let total = 2 + i + len;
            return (b.len() >= total).then_some(total);
        }
    }
    None
}

/// A Variable Byte Integer.
pub fn vbi(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut d = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            d |= 0x80;
        }
        out.push(d);
        if n == 0 {
            return out;
        }
    }
}

/// A UTF-8 string or binary field: two-byte length, then the bytes.
pub fn string(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

/// A packet: first byte, remaining length, body.
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    out.extend(vbi(body.len()));
    out.extend_from_slice(body);
    out
}

/// A CONNECT of protocol level `level` (3, 4 or 5) with `flags` (0x02:
/// clean session), keep alive `keep_alive`, the 5.0 `props` (ignored below
/// 5.0) and client identifier `id`.
pub fn connect(level: u8, flags: u8, keep_alive: u16, props: &[u8], id: &[u8]) -> Vec<u8> {
    let name: &[u8] = if level == 3 { b"MQIsdp" } else { b"MQTT" };
    let mut body = string(name);
    body.push(level);
    body.push(flags);
    body.extend_from_slice(&keep_alive.to_be_bytes());
    if level == 5 {
        body.extend(vbi(props.len()));
        body.extend_from_slice(props);
    }
    body.extend(string(id));
    packet(0x10, &body)
}

/// A 3.1.1 CONNECT with clean session and keep alive 60.
pub fn connect_v311(id: &str) -> Vec<u8> {
    connect(4, 0x02, 60, &[], id.as_bytes())
}

/// A 5.0 CONNECT with clean start, keep alive 60 and `props`.
pub fn connect_v5(id: &str, props: &[u8]) -> Vec<u8> {
    connect(5, 0x02, 60, props, id.as_bytes())
}

/// The broker's CONNACK to a 3.1.1 client: accepted, no session.
pub const CONNACK_V311: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// The broker's CONNACK to a 5.0 client with its default limits: Receive
/// Maximum 100, Maximum Packet Size 1 MiB, Topic Alias Maximum 16.
pub const CONNACK_V5: [u8; 16] = [
    0x20, 0x0E, 0x00, 0x00, 0x0B, 0x21, 0x00, 0x64, 0x27, 0x00, 0x10, 0x00, 0x00, 0x22, 0x00, 0x10,
];

/// SUBSCRIBE `id` to `filter` with options byte `options` (3.1.1 form; a
/// 5.0 one needs [`subscribe_v5`]).
pub fn subscribe_v311(id: u16, filter: &str, options: u8) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    body.extend(string(filter.as_bytes()));
    body.push(options);
    packet(0x82, &body)
}

/// A 5.0 SUBSCRIBE `id` to `filter` with options byte `options`, no properties.
pub fn subscribe_v5(id: u16, filter: &str, options: u8) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    body.push(0);
    body.extend(string(filter.as_bytes()));
    body.push(options);
    packet(0x82, &body)
}

/// A PUBLISH with the given first byte (QoS and flags), topic, packet
/// identifier (QoS 1/2), 5.0 properties (`None`: 3.1.1, no property
/// length) and payload.
pub fn publish(
    first: u8,
    topic: &[u8],
    id: Option<u16>,
    props: Option<&[u8]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = string(topic);
    if let Some(id) = id {
        body.extend_from_slice(&id.to_be_bytes());
    }
    if let Some(props) = props {
        body.extend(vbi(props.len()));
        body.extend_from_slice(props);
    }
    body.extend_from_slice(payload);
    packet(first, &body)
}
