//! Raw MQTT packets for the noisy-neighbour bench: built byte by byte (the
//! attacks send what no well-behaved client library would), and a blocking
//! connection with bounded reads.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A Variable Byte Integer.
pub(crate) fn vbi(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return out;
        }
    }
}

/// A length-prefixed string.
pub(crate) fn string(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

/// A packet: first byte, remaining length, body.
pub(crate) fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    out.extend(vbi(body.len()));
    out.extend_from_slice(body);
    out
}

/// A CONNECT at protocol `level` (4: 3.1.1, 5: 5.0), clean, with keep
/// alive `keep_alive` and client identifier `id`.
pub(crate) fn connect(level: u8, keep_alive: u16, id: &str) -> Vec<u8> {
    let mut body = string(b"MQTT");
    body.extend_from_slice(&[level, 0x02]);
    body.extend_from_slice(&keep_alive.to_be_bytes());
    if level == 5 {
        body.push(0);
    }
    body.extend(string(id.as_bytes()));
    packet(0x10, &body)
}

/// A CONNECT like [`connect`] without Clean Session: the session outlives
/// the connection.
pub(crate) fn connect_persistent(level: u8, keep_alive: u16, id: &str) -> Vec<u8> {
    let mut c = connect(level, keep_alive, id);
    // The flags byte follows the protocol name (2 + 4 bytes) and level,
    // after the fixed header (1 byte + a one-byte remaining length here).
    c[9] = 0x00;
    c
}

/// A PUBLISH: `first` carries QoS and RETAIN; `id` for QoS 1/2; `props`
/// for 5.0 (`None`: 3.1.1).
pub(crate) fn publish(
    first: u8,
    topic: &str,
    id: Option<u16>,
    props: Option<&[u8]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = string(topic.as_bytes());
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

/// A 3.1.1 SUBSCRIBE (`subscribe = true`, each filter at QoS 0) or
/// UNSUBSCRIBE of `filters`.
pub(crate) fn subscription(subscribe: bool, id: u16, filters: &[String]) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    for f in filters {
        body.extend(string(f.as_bytes()));
        if subscribe {
            body.push(0);
        }
    }
    packet(if subscribe { 0x82 } else { 0xA2 }, &body)
}

/// The length of the whole packet at the front of `buf`, once it is there.
fn whole_packet_len(buf: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for (i, b) in buf.iter().skip(1).take(4).enumerate() {
        len |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            let total = 1 + i + 1 + len;
            return (buf.len() >= total).then_some(total);
        }
    }
    None
}

/// One blocking connection whose reads are bounded in time.
pub(crate) struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    /// Connects and completes `connect` (CONNACK expected within 5 s).
    pub(crate) fn open(addr: SocketAddr, connect: &[u8]) -> std::io::Result<Wire> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        let mut w = Wire {
            stream,
            buf: Vec::new(),
        };
        w.send(connect)?;
        match w.next(Duration::from_secs(5))? {
            Some(p) if p.first() == Some(&0x20) => Ok(w),
            _ => Err(std::io::Error::other("no CONNACK")),
        }
    }

    /// Writes `bytes`.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The next whole packet within `within` (`None`: none came).
    pub(crate) fn next(&mut self, within: Duration) -> std::io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(len) = whole_packet_len(&self.buf) {
                return Ok(Some(self.buf.drain(..len).collect()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for a packet whose first byte is `first` within `within`,
    /// skipping others; `false` when none came.
    pub(crate) fn expect(&mut self, first: u8, within: Duration) -> std::io::Result<bool> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left)? {
                Some(p) if p.first() == Some(&first) => return Ok(true),
                Some(_) => {}
                None => return Ok(false),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_is_whole_once_its_remaining_length_is_there() {
        let p = packet(0x30, &[7u8; 200]);
        assert_eq!(whole_packet_len(&p), Some(p.len()));
        assert_eq!(whole_packet_len(&p[..p.len() - 1]), None);
        assert_eq!(whole_packet_len(&[0xD0, 0x00]), Some(2));
        assert_eq!(vbi(1_000_000), [0xC0, 0x84, 0x3D]);
    }
}
