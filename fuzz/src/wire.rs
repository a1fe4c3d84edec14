//! What a connection writes, checked as its peer would read it.

use bytes::BytesMut;
use mqtt_codec::{Decoder, Packet, PacketType, ProtocolVersion, MAX_PACKET_SIZE};
use mqtt_session::Frame;

/// Which way the bytes go: who reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    /// A client reads what a server (or the broker) writes.
    Client,
    /// A server reads what a client writes.
    Server,
}

/// The peer's view of one connection's output stream: every packet must
/// decode in the connection's version, be one the reader may receive, fit
/// the reader's maximum packet size, open with CONNECT (to a server) or
/// CONNACK (to a client), and nothing may follow a DISCONNECT or a refusing
/// CONNACK.
#[derive(Debug)]
pub(crate) struct Output {
    reader: Reader,
    /// Packets decoded so far.
    pub(crate) packets: usize,
    /// The stream has ended (DISCONNECT or a refusing CONNACK went out).
    ended: bool,
    /// The client side's CONNECT fixes the version; the server side's
    /// version is the connection's at each write.
    client_version: Option<ProtocolVersion>,
    /// Client side: nothing but AUTH has come yet (CONNACK is due).
    before_connack: bool,
}

impl Output {
    pub(crate) fn new(reader: Reader) -> Output {
        Output {
            reader,
            packets: 0,
            ended: false,
            client_version: None,
            before_connack: true,
        }
    }

    /// Checks bytes one `poll_transmit` wrote (whole packets) in `version`,
    /// for a reader accepting packets of up to `max` bytes. Returns how many
    /// packets they hold.
    pub(crate) fn bytes(&mut self, version: ProtocolVersion, max: u32, bytes: &[u8]) -> usize {
        let mut buf = BytesMut::from(bytes);
        let mut n = 0;
        while !buf.is_empty() {
            let mut decoder = match (self.reader, self.client_version) {
                // What a server reads first is CONNECT, in whatever version.
                (Reader::Server, None) => Decoder::new(),
                (Reader::Server, Some(v)) => Decoder::with_version(v),
                (Reader::Client, _) => Decoder::with_version(version),
            }
            .with_max_packet_size(max);
            let before = buf.len();
            let packet = match decoder.decode(&mut buf) {
                Ok(Some(p)) => p,
                Ok(None) => panic!(
                    "{:?}: output ends inside a packet ({} bytes left): {:02x?}",
                    self.reader,
                    buf.len(),
                    &buf[..]
                ),
                Err(e) => panic!(
                    "{:?}: output does not decode as {version:?} within {max} bytes: {e:?}: {:02x?}",
                    self.reader,
                    &bytes[bytes.len() - before..]
                ),
            };
            self.packet(version, &packet);
            n += 1;
        }
        n
    }

    /// Checks frames one `poll_frames` handed out, encoded in `version`, and
    /// that `wire_len` is the bytes they take.
    pub(crate) fn frames(
        &mut self,
        version: ProtocolVersion,
        max: u32,
        frames: &[Frame],
        wire_len: usize,
    ) -> usize {
        let mut wire = Vec::new();
        for f in frames {
            let n = f.encode(version, &mut wire).expect("a frame encodes");
            assert_eq!(f.encoded_len(version), Ok(n), "frame length");
        }
        assert_eq!(wire.len(), wire_len, "poll_frames reports its bytes");
        self.bytes(version, max, &wire)
    }

    fn packet(&mut self, version: ProtocolVersion, p: &Packet) {
        let t = p.packet_type();
        assert!(
            !self.ended,
            "{:?}: {t:?} written after the stream ended",
            self.reader
        );
        let v5 = version.is_v5();
        match self.reader {
            Reader::Client => {
                let allowed = matches!(
                    t,
                    PacketType::ConnAck
                        | PacketType::Publish
                        | PacketType::PubAck
                        | PacketType::PubRec
                        | PacketType::PubRel
                        | PacketType::PubComp
                        | PacketType::SubAck
                        | PacketType::UnsubAck
                        | PacketType::PingResp
                ) || (v5 && matches!(t, PacketType::Disconnect | PacketType::Auth));
                assert!(allowed, "a server sent {t:?} under {version:?}");
                // Only AUTH may come before CONNACK (enhanced
                // authentication), and CONNACK comes once.
                if self.before_connack {
                    assert!(
                        matches!(t, PacketType::ConnAck | PacketType::Auth),
                        "a server sent {t:?} before CONNACK"
                    );
                } else {
                    assert_ne!(t, PacketType::ConnAck, "a second CONNACK");
                }
                if let Packet::ConnAck(ack) = p {
                    self.before_connack = false;
                    self.ended |= ack.reason.is_error();
                }
            }
            Reader::Server => {
                let allowed = matches!(
                    t,
                    PacketType::Connect
                        | PacketType::Publish
                        | PacketType::PubAck
                        | PacketType::PubRec
                        | PacketType::PubRel
                        | PacketType::PubComp
                        | PacketType::Subscribe
                        | PacketType::Unsubscribe
                        | PacketType::PingReq
                        | PacketType::Disconnect
                ) || (v5 && t == PacketType::Auth);
                assert!(allowed, "a client sent {t:?} under {version:?}");
                assert_eq!(
                    self.packets == 0,
                    t == PacketType::Connect,
                    "a client's first packet, and only it, is CONNECT (got {t:?})"
                );
                if let Packet::Connect(c) = p {
                    assert_eq!(c.protocol, version, "CONNECT in the connection's version");
                    self.client_version = Some(c.protocol);
                }
            }
        }
        self.ended |= t == PacketType::Disconnect;
        self.packets += 1;
    }
}

/// The largest packet a peer accepts, from its announced maximum.
pub(crate) fn peer_max(announced: Option<core::num::NonZeroU32>) -> u32 {
    announced.map_or(MAX_PACKET_SIZE, |n| n.get())
}
