//! Bytes and packets in: bytes decoded into packets, packets dispatched,
//! and what a server holds between a CONNECT and the application's answer
//! to it.

use alloc::collections::VecDeque;

use bytes::BytesMut;
use mqtt_codec::{DecodeError, Decoder, Packet, ReasonCode};

use crate::error::{Close, Violation};
use crate::time::Instant;

use super::{Connection, Role, State};

/// However small the maximum packet size, this many packets may be held
/// before the CONNECT is accepted.
const HELD_PACKETS_FLOOR: usize = 16;

/// Packets held before the CONNECT is accepted, and what they cost.
#[derive(Debug, Default)]
pub(crate) struct BeforeConnack {
    packets: VecDeque<Result<Packet, DecodeError>>,
    /// What the held packets cost: each its size on the wire, but at least
    /// the size of a decoded packet, so that many small packets (or decode
    /// errors, which have no size on the wire) count as what they hold.
    cost: usize,
    /// A decode error is held: the stream ends there, and nothing after it
    /// is read.
    ended: bool,
}

impl<R: Role> Connection<R> {
    /// Consumes every whole packet in `rbuf`, leaving a partial one in place.
    ///
    /// The connection's own decoder cuts the bytes into packets, and each
    /// takes the same way in as one an adapter decoded itself
    /// ([`Connection::handle_packet`]): there is one path for packets, and
    /// this is a thin layer over it.
    ///
    /// Afterwards drain [`poll_transmit`](Connection::poll_transmit),
    /// [`poll_event`](Connection::poll_event) and [`poll_timeout`](Connection::poll_timeout).
    pub fn handle_read(&mut self, now: Instant, rbuf: &mut BytesMut) {
        if self.before_connack.as_ref().is_some_and(|q| q.ended) {
            // The bytes after a broken packet mean nothing.
            rbuf.clear();
            return;
        }
        while !self.is_ending() {
            let before = rbuf.len();
            match self.decoder.decode(rbuf) {
                Ok(Some(p)) => self.handle_packet(now, p, before - rbuf.len()),
                Ok(None) => return R::on_partial(self, now, rbuf.len()),
                Err(e) => {
                    rbuf.clear();
                    return self.handle_decode_error(now, e);
                }
            }
        }
        rbuf.clear();
    }

    /// A packet arrived; `wire_len` is its size on the wire. The way in for
    /// adapters that decode in the connection's own task, in parallel with
    /// others: decode with [`Connection::decoder`]'s configuration, hand
    /// over each packet in order, and report a decoding failure with
    /// [`Connection::handle_decode_error`]. [`Connection::handle_read`] does
    /// exactly this with the connection's own decoder, so an adapter uses
    /// one or the other on a connection, never both (two decoders would
    /// each hold part of the stream).
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
        if ack && self.state == State::Connected && self.before_connack.is_none() {
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
        let d = if R::IS_CLIENT {
            Decoder::with_version(self.version)
        } else {
            // The server's decoder adopts the version of the CONNECT, and
            // refuses the packets only a server sends.
            let mut d = Decoder::new();
            if self.state != State::AwaitingConnect {
                d.set_version(self.version);
            }
            d
        };
        d.with_max_packet_size(self.limits.max_packet_size)
    }

    pub(super) fn dispatch(
        &mut self,
        now: Instant,
        packet: Result<Packet, DecodeError>,
        wire_len: usize,
    ) {
        let holding = self.state == State::AwaitingAccept || self.before_connack.is_some();
        if holding && !matches!(packet, Ok(Packet::Auth(_))) {
            // [MQTT-3.1.4-5]: nothing after CONNECT is processed before
            // the application accepts it; it waits, bounded to two
            // maximum-size packets' worth (a client that sends more is
            // dropped, 0x89). AUTH is the exception: enhanced authentication happens
            // before CONNACK (section 4.12, [MQTT-3.1.4-6] of 5.0), and a
            // client that named a method sends nothing else until then
            // [MQTT-3.1.2-30].
            let limit = (self.limits.max_packet_size as usize)
                .saturating_mul(2)
                .max(HELD_PACKETS_FLOOR * core::mem::size_of::<Packet>());
            let queue = self.before_connack.get_or_insert_with(Default::default);
            if queue.ended {
                return;
            }
            queue.cost = queue
                .cost
                .saturating_add(wire_len.max(core::mem::size_of::<Packet>()));
            if queue.cost > limit {
                self.before_connack = None;
                return self.finish(now, Close::local(ReasonCode::SERVER_BUSY), false);
            }
            queue.ended = packet.is_err();
            queue.packets.push_back(packet);
            if self.state != State::AwaitingAccept {
                self.release_before_connack(now);
            }
            return;
        }
        match packet {
            Ok(p) => R::handle_packet(self, now, p),
            Err(e) => self.violation(now, Violation::Decode(e)),
        }
    }

    /// Handles the packets held while the CONNECT waited for its answer.
    pub(crate) fn release_before_connack(&mut self, now: Instant) {
        let Some(mut queue) = self.before_connack.take() else {
            return;
        };
        while let Some(p) = queue.packets.pop_front() {
            if self.is_ending() {
                return;
            }
            match p {
                Ok(p) => R::handle_packet(self, now, p),
                Err(e) => return self.violation(now, Violation::Decode(e)),
            }
        }
    }

    /// The transport ended (end of stream or an IO error).
    pub fn handle_eof(&mut self, now: Instant) {
        // Nothing can be written to a transport that has ended: what is
        // still queued goes, so a closed connection hands out no bytes.
        self.tx.clear();
        self.tx_qos0 = 0;
        if self.is_ending() {
            self.state = State::Closed;
            return;
        }
        let will = self.state == State::Connected;
        self.finish(now, Close::transport_ended(), will);
        self.state = State::Closed;
    }
}

/// Maps a decode error of the very first packet to the CONNACK a server owes,
/// if any: 3.1.1 only has codes for a few refusals [MQTT-3.2.2-6].
pub(crate) fn connack_for_decode_error(e: &DecodeError) -> Option<ReasonCode> {
    match e {
        DecodeError::UnsupportedProtocolVersion(_) => {
            Some(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION)
        }
        _ => None,
    }
}
