//! Packets out: the outgoing queue written as bytes or handed out as frames,
//! within the peer's maximum packet size.

use bytes::BufMut;
use mqtt_codec::{EncodeError, Packet};

use crate::alias::AliasUse;
use crate::time::Instant;
use crate::tx::{Frame, Tx};

use super::{Connection, Role, State};

impl<R: Role> Connection<R> {
    /// Appends whole packets to `wbuf` while each fits in its remaining
    /// capacity, returning the bytes written. A `BytesMut` or `Vec` takes all;
    /// a fixed `&mut [u8]` or `(&mut buf).limit(n)` gives back-pressure.
    #[must_use = "the written bytes must be sent"]
    pub fn poll_transmit(&mut self, now: Instant, wbuf: &mut impl BufMut) -> usize {
        self.strip_for_peer();
        let mut written = 0;
        while let Some(p) = {
            self.alias_front();
            self.tx.front()
        } {
            let n = match p.encode_limited(self.version, self.peer.max_packet_size, wbuf) {
                Ok(n) => n,
                Err(EncodeError::BufferTooSmall { .. }) => break,
                Err(EncodeError::PacketTooLarge { .. }) => {
                    self.shed_front(now);
                    continue;
                }
                // Checked when queued; dropping is all that is left to do.
                Err(_) => 0,
            };
            self.pop_sent();
            written += n;
        }
        self.after_transmit(now, written);
        written
    }

    /// Like [`Connection::poll_transmit`], but hands over [`Frame`]s, for an
    /// adapter that encodes them in another task (with [`Frame::encode`]
    /// and [`Connection::version`]): packets as the connection queues them,
    /// a PUBLISH as a reference to its (shared) message plus what this
    /// delivery adds, so no packet value is built or copied per delivery.
    /// Whole packets are moved to `out` while their encoded size stays
    /// within `budget` bytes (at least one packet is moved when any is
    /// ready). Returns the bytes they will take on the wire. Every check
    /// `poll_transmit` makes (the peer's maximum packet size, problem
    /// information) is made here too; [`Frame::into_packet`] gives the
    /// packet itself.
    pub fn poll_frames(
        &mut self,
        now: Instant,
        out: &mut alloc::vec::Vec<Frame>,
        budget: usize,
    ) -> usize {
        self.strip_for_peer();
        // Sized once: a growing vector would copy every packet again.
        out.reserve(self.tx.len());
        let mut total = 0usize;
        while let Some(p) = {
            self.alias_front();
            self.tx.front()
        } {
            let n = match p.encoded_len(self.version) {
                Ok(n) if n <= self.peer.max_packet_size as usize => n,
                Ok(_) => {
                    self.shed_front(now);
                    continue;
                }
                Err(_) => {
                    self.pop_sent();
                    continue;
                }
            };
            if total > 0 && total + n > budget {
                break;
            }
            if let Some(p) = self.pop_sent() {
                out.push(Frame(p));
                total += n;
            }
        }
        self.after_transmit(now, total);
        total
    }

    /// Gives the front packet, if a PUBLISH, its topic alias (5.0) when this
    /// side assigns them. Aliases are chosen here, when the packet is next out,
    /// never when it is queued, so the table is what the peer has been sent:
    /// a PUBLISH that is shed forgets the alias it was to set
    /// ([`Connection::shed_front`]), and one that waits for room keeps the
    /// choice made (`alias` is set).
    fn alias_front(&mut self) {
        let maximum = self
            .limits
            .outbound_topic_alias_maximum
            .min(self.peer.topic_alias_maximum);
        if maximum > 0 {
            if let Some(Tx::Publish(p)) = self.tx.front_mut() {
                if p.v5 && p.alias.is_none() {
                    match self.aliases.assign(&p.msg.topic, maximum) {
                        Some(AliasUse::Set(a)) => p.alias = Some(a),
                        Some(AliasUse::Reuse(a)) => (p.alias, p.alias_only) = (Some(a), true),
                        None => {}
                    }
                }
            }
        }
    }

    /// Only PUBLISH, CONNACK and DISCONNECT may carry diagnostics to a client
    /// that asked for no problem information [MQTT-3.1.2-29].
    pub(super) fn strip_for_peer(&mut self) {
        if !self.peer.problem_information {
            // Queued publishes and plain acknowledgements carry none.
            for t in self.tx.iter_mut() {
                if let Tx::Packet(p) = t {
                    if !matches!(
                        **p,
                        Packet::Publish(_) | Packet::ConnAck(_) | Packet::Disconnect(_)
                    ) {
                        strip_diagnostics(p);
                    }
                }
            }
        }
    }

    /// The packet at the front exceeds the peer's maximum packet size.
    pub(super) fn shed_front(&mut self, now: Instant) {
        let Some(t) = self.tx.pop_front() else {
            return;
        };
        if let Tx::Publish(o) = &t {
            if let (Some(a), false) = (o.alias, o.alias_only) {
                // The peer never learns this alias.
                self.aliases.forget(a);
            }
            // A message that no longer fits the peer's limit (a smaller
            // one after resumption) is treated as delivered, so its
            // identifier and window slot are freed [MQTT-3.1.2-25].
            return self.drop_unsendable(now, o.qos);
        }
        match t.into_packet() {
            Packet::Publish(pb) => self.drop_unsendable(now, pb.qos),
            mut p => {
                // Diagnostics are the first thing to go when an answer would
                // exceed the peer's maximum packet size [MQTT-3.1.2-25].
                strip_diagnostics(&mut p);
                if p.encoded_len(self.version)
                    .is_ok_and(|n| n <= self.peer.max_packet_size as usize)
                {
                    self.tx.push_front(p);
                } else if matches!(p, Packet::ConnAck(_)) {
                    self.cannot_accept(now);
                }
            }
        }
    }

    /// The CONNACK exceeds the client's Maximum Packet Size even without
    /// diagnostics: the server cannot answer within the client's limit
    /// [MQTT-3.1.2-24] and discards the packet [MQTT-3.1.2-25], and a
    /// connection without CONNACK cannot go on, so it closes without sending
    /// anything (no DISCONNECT before a successful CONNACK [MQTT-3.14.0-1]).
    /// The session stays as any close leaves it.
    pub(crate) fn cannot_accept(&mut self, now: Instant) {
        self.tx.clear();
        self.tx_qos0 = 0;
        if self.is_ending() {
            // A refusal: already closing, and nothing else to send.
            return;
        }
        let close = crate::error::Close::local(mqtt_codec::ReasonCode::PACKET_TOO_LARGE);
        self.finish(now, close, true);
    }

    /// Takes the front packet as sent.
    pub(super) fn pop_sent(&mut self) -> Option<Tx> {
        let t = self.tx.pop_front();
        if t.as_ref().is_some_and(Tx::is_qos0_publish) {
            self.tx_qos0 = self.tx_qos0.saturating_sub(1);
        }
        t
    }

    pub(super) fn after_transmit(&mut self, now: Instant, written: usize) {
        if written > 0 {
            self.last_tx = now;
        }
        // An idle connection holds no packet buffer once it goes quiet.
        self.tx.settle();
        if self.state == State::Closing && self.tx.is_empty() {
            self.state = State::Closed;
        }
    }
}

/// Drops the reason string and user properties of an answer (never of a PUBLISH).
fn strip_diagnostics(p: &mut Packet) {
    match p {
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            a.props = Default::default();
        }
        Packet::SubAck(s) | Packet::UnsubAck(s) => s.props = Default::default(),
        Packet::Disconnect(d) => {
            d.props.reason_string = None;
            d.props.user_properties.clear();
        }
        Packet::ConnAck(c) => {
            c.props.reason_string = None;
            c.props.user_properties.clear();
        }
        Packet::Auth(a) => {
            a.props.reason_string = None;
            a.props.user_properties.clear();
        }
        // A PUBLISH keeps its properties; the others carry no diagnostics.
        Packet::Publish(_)
        | Packet::Connect(_)
        | Packet::Subscribe(_)
        | Packet::Unsubscribe(_)
        | Packet::PingReq
        | Packet::PingResp => {}
    }
}
