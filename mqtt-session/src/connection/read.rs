//! Bytes and packets in: the decode loop, and what a server holds between
//! a CONNECT and the application's answer to it.

use alloc::boxed::Box;
use alloc::collections::VecDeque;

use bytes::BytesMut;
use mqtt_codec::{DecodeError, Decoder, DisconnectProps, Packet, PacketType, ReasonCode};

use crate::error::{Close, Initiator, Violation};
use crate::time::Instant;

use super::{Connection, Role, State};

/// Server: bytes that arrived after CONNECT, held until it is accepted.
/// Boxed, and only while there are some: a connection pays one pointer.
#[derive(Debug, Default)]
pub(crate) struct Stash(Option<Box<BytesMut>>);

impl Stash {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|b| b.is_empty())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.len())
    }

    /// Takes the held bytes out.
    pub(crate) fn take(&mut self) -> BytesMut {
        self.0.take().map(|b| *b).unwrap_or_default()
    }

    /// Holds `bytes` (all that is held; nothing is kept when it is empty).
    pub(crate) fn put(&mut self, bytes: BytesMut) {
        self.0 = (!bytes.is_empty()).then(|| Box::new(bytes));
    }

    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.0
            .get_or_insert_with(Box::default)
            .extend_from_slice(bytes);
    }

    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
}

/// Packets held before the CONNECT is accepted, and their size on the wire.
#[derive(Debug, Default)]
pub(crate) struct HeldPackets {
    packets: VecDeque<Result<Packet, DecodeError>>,
    bytes: usize,
}

impl<R: Role> Connection<R> {
    /// Consumes every whole packet in `rbuf`, leaving a partial one in place.
    ///
    /// Afterwards drain [`poll_transmit`](Connection::poll_transmit),
    /// [`poll_event`](Connection::poll_event) and [`poll_timeout`](Connection::poll_timeout).
    pub fn handle_read(&mut self, now: Instant, rbuf: &mut BytesMut) {
        if self.is_ending() {
            rbuf.clear();
            return;
        }
        if !rbuf.is_empty() {
            self.last_rx = now;
        }
        if self.stash.is_empty() {
            return self.process(now, rbuf);
        }
        if self.state != State::AwaitingAccept {
            // What is left of the bytes held before the CONNECT was accepted
            // is the start of a packet: it goes back in front of the new bytes,
            // into the caller's buffer, which from now on holds the partial
            // tail as usual. (Holding it here instead would put every later
            // read through the bound meant for the time before the accept.)
            let mut held = self.stash.take();
            held.extend_from_slice(rbuf);
            *rbuf = held;
            return self.process(now, rbuf);
        }
        // Bytes are held from before the CONNECT was accepted: new ones go behind them.
        if !self.stash_more(now, rbuf) {
            return;
        }
        let mut buf = self.stash.take();
        self.process(now, &mut buf);
        if !self.is_ending() && self.stash.is_empty() {
            self.stash.put(buf);
        }
    }

    /// A packet the adapter decoded itself arrived; `wire_len` is its size on
    /// the wire. The alternative to [`Connection::handle_read`] for adapters
    /// that decode in the connection's own task, in parallel with others:
    /// decode with [`Connection::decoder`]'s configuration, hand over each
    /// packet in order, and report a decoding failure with
    /// [`Connection::handle_decode_error`]. Do not mix the two on one
    /// connection.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet, wire_len: usize) {
        if self.is_ending() {
            return;
        }
        self.last_rx = now;
        // Acknowledgements, most of a busy connection's traffic, go straight
        // to their handler (as `dispatch` would send them while connected),
        // without moving the packet through the general path.
        let ack = matches!(
            packet,
            Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_)
        );
        if ack && self.state == State::Connected && self.held.is_none() {
            return self.handle_common(now, packet);
        }
        self.dispatch(now, Ok(packet), wire_len);
    }

    /// The adapter's decoder refused the peer's bytes: the connection ends
    /// as [`Connection::handle_read`] would end it (with a DISCONNECT or
    /// CONNACK carrying the error's reason code where the version allows).
    pub fn handle_decode_error(&mut self, now: Instant, error: DecodeError) {
        if self.is_ending() {
            return;
        }
        self.dispatch(now, Err(error), 0);
    }

    /// A decoder configured the way this connection decodes (version and
    /// maximum packet size), for adapters that decode in their own task.
    pub fn decoder(&self) -> Decoder {
        let d = if R::IS_CLIENT || self.state != State::AwaitingConnect {
            Decoder::with_version(self.version)
        } else {
            // The server's decoder adopts the version of the CONNECT.
            Decoder::new()
        };
        d.with_max_packet_size(self.limits.max_packet_size)
    }

    pub(super) fn dispatch(
        &mut self,
        now: Instant,
        packet: Result<Packet, DecodeError>,
        wire_len: usize,
    ) {
        let holding = self.state == State::AwaitingAccept || self.held.is_some();
        if holding && !matches!(packet, Ok(Packet::Auth(_))) {
            // As for bytes: nothing after CONNECT is processed before the
            // application accepts it, except AUTH [MQTT-3.1.4-5].
            let limit = (self.limits.max_packet_size as usize).saturating_mul(2);
            let held = self.held.get_or_insert_with(Default::default);
            held.bytes = held.bytes.saturating_add(wire_len);
            if held.bytes > limit {
                self.held = None;
                return self.finish(
                    now,
                    Close {
                        initiator: Initiator::Local,
                        reason: ReasonCode::SERVER_BUSY,
                        violation: None,
                        will: None,
                        props: DisconnectProps::default(),
                    },
                    false,
                );
            }
            held.packets.push_back(packet);
            if self.state != State::AwaitingAccept {
                self.release_held(now);
            }
            return;
        }
        match packet {
            Ok(p) => R::handle_packet(self, now, p),
            Err(e) => self.violation(now, Violation::Decode(e)),
        }
    }

    /// Handles the packets held while the CONNECT waited for its answer.
    pub(crate) fn release_held(&mut self, now: Instant) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        while let Some(p) = held.packets.pop_front() {
            if self.is_ending() {
                return;
            }
            match p {
                Ok(p) => R::handle_packet(self, now, p),
                Err(e) => return self.violation(now, Violation::Decode(e)),
            }
        }
    }

    /// Decodes and handles packets until `buf` holds no whole one.
    pub(crate) fn process(&mut self, now: Instant, buf: &mut BytesMut) {
        loop {
            if self.is_ending() {
                buf.clear();
                return;
            }
            let awaiting_accept = self.state == State::AwaitingAccept;
            if awaiting_accept && !starts_with_auth(buf) {
                // [MQTT-3.1.4-5]: nothing after CONNECT is processed before the
                // application accepts it; it waits, bounded. AUTH is the
                // exception: enhanced authentication happens before CONNACK
                // (section 4.12, [MQTT-3.1.4-6] of 5.0), and a client that
                // named a method sends nothing else until then [MQTT-3.1.2-30].
                self.stash_more(now, buf);
                return;
            }
            match self.decoder.decode(buf) {
                Ok(Some(p)) => R::handle_packet(self, now, p),
                Ok(None) => {
                    if awaiting_accept {
                        // The start of an AUTH: held with the rest.
                        self.stash_more(now, buf);
                    }
                    return;
                }
                Err(e) => {
                    self.violation(now, Violation::Decode(e));
                    buf.clear();
                    return;
                }
            }
        }
    }

    /// Holds bytes that arrived before the CONNECT was answered, up to two
    /// maximum-size packets; a client that sends more is dropped (0x89).
    /// Returns whether the connection is still open.
    pub(super) fn stash_more(&mut self, now: Instant, buf: &mut BytesMut) -> bool {
        let limit = (self.limits.max_packet_size as usize).saturating_mul(2);
        if self.stash.len() + buf.len() > limit {
            buf.clear();
            self.stash.clear();
            self.finish(
                now,
                Close {
                    initiator: Initiator::Local,
                    reason: ReasonCode::SERVER_BUSY,
                    violation: None,
                    will: None,
                    props: DisconnectProps::default(),
                },
                false,
            );
            return false;
        }
        self.stash.extend_from_slice(buf);
        buf.clear();
        true
    }

    /// The transport ended (end of stream or an IO error).
    pub fn handle_eof(&mut self, now: Instant) {
        if self.is_ending() {
            self.state = State::Closed;
            return;
        }
        let will = self.state == State::Connected;
        self.tx.clear();
        self.finish(
            now,
            Close {
                initiator: Initiator::Transport,
                reason: ReasonCode::UNSPECIFIED_ERROR,
                violation: None,
                will: None,
                props: DisconnectProps::default(),
            },
            will,
        );
        self.state = State::Closed;
    }
}

/// Whether `buf` starts with an AUTH packet (type 15), judged from its first byte.
fn starts_with_auth(buf: &[u8]) -> bool {
    buf.first()
        .is_some_and(|b| b >> 4 == PacketType::Auth as u8)
}

/// Maps a decode error of the very first packet to the CONNACK a server owes,
/// if any: 3.1.1 only has codes for a few refusals [MQTT-3.2.2-6].
pub(crate) fn connack_for_decode_error(e: &DecodeError) -> Option<ReasonCode> {
    match e {
        DecodeError::UnsupportedProtocolVersion(_) => {
            Some(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION)
        }
        DecodeError::InvalidClientIdV31 => Some(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
        _ => None,
    }
}
