//! Closing: by the application, by a protocol violation, or by the peer;
//! the DISCONNECT sent and the [`Close`] reported.

use mqtt_codec::{ConnAck, Disconnect, DisconnectProps, Packet, PacketType, ReasonCode};

use crate::error::{Close, UsageError, Violation};
use crate::time::Instant;

use super::{connack_for_decode_error, Connection, Role, State};

impl<R: Role> Connection<R> {
    /// Closes the connection, telling the peer `reason` where the version
    /// allows (5.0 DISCONNECT from either side; 3.1.1 DISCONNECT from a client
    /// only). `Closed` is emitted; keep draining until [`is_closed`](Connection::is_closed).
    pub fn close(&mut self, now: Instant, reason: ReasonCode) {
        self.close_inner(now, reason, DisconnectProps::default());
    }

    /// Like [`Connection::close`], with 5.0 DISCONNECT properties: a reason
    /// string, user properties, a server reference (server side), a new
    /// session expiry interval (client side). Under 3.1.1 they are not sent.
    ///
    /// A server may not send a session expiry interval [MQTT-3.14.2-2];
    /// a client whose CONNECT had a zero interval may not set a non-zero one
    /// [MQTT-3.14.2-2]; a server reference only comes from a server.
    pub fn close_with(
        &mut self,
        now: Instant,
        reason: ReasonCode,
        props: DisconnectProps,
    ) -> Result<(), UsageError> {
        if R::IS_CLIENT && props.server_reference.is_some()
            || !R::IS_CLIENT && props.session_expiry_interval.is_some()
        {
            return Err(UsageError::PropertyNotAllowed);
        }
        if R::IS_CLIENT
            && props.session_expiry_interval.is_some_and(|i| i != 0)
            && R::session_expiry_is_zero(self)
        {
            return Err(UsageError::PropertyNotAllowed);
        }
        self.close_inner(now, reason, props);
        Ok(())
    }

    pub(super) fn close_inner(&mut self, now: Instant, reason: ReasonCode, props: DisconnectProps) {
        if self.is_ending() {
            return;
        }
        let connected = self.state == State::Connected;
        let props = if self.version.is_v5() {
            props
        } else {
            DisconnectProps::default()
        };
        if connected {
            self.queue_disconnect(reason, props.clone());
        }
        // A client that closes with 0x04 asks for its will; the server's own
        // closes (take-over, shutdown, administrative) leave the will due.
        let will = connected && reason != ReasonCode::NORMAL_DISCONNECTION;
        self.finish(now, Close::local_with(reason, props), will);
    }

    /// Queues the DISCONNECT this role may send in this version.
    pub(crate) fn queue_disconnect(&mut self, reason: ReasonCode, props: DisconnectProps) {
        let client = R::IS_CLIENT;
        if self.version.is_v5() {
            let reason = if reason.valid_for(PacketType::Disconnect) {
                reason
            } else {
                ReasonCode::UNSPECIFIED_ERROR
            };
            let mut d = Disconnect::new(reason);
            d.props = props;
            self.tx.push_back(Packet::Disconnect(d));
        } else if client {
            self.tx.push_back(Packet::Disconnect(Disconnect::default()));
        }
    }

    /// The peer broke the protocol: tell it why where the version allows, and close.
    pub(crate) fn violation(&mut self, now: Instant, v: Violation) {
        let reason = v.reason();
        let connected = self.state == State::Connected;
        if connected && self.version.is_v5() {
            self.tx
                .push_back(Packet::Disconnect(Disconnect::new(reason)));
        } else if R::IS_CLIENT && self.state == State::AwaitingConnAck && self.version.is_v5() {
            // A 5.0 client has sent CONNECT and may send DISCONNECT before
            // CONNACK: it tells the server why it gives up (section 4.13.1,
            // a client SHOULD send DISCONNECT with the reason code).
            self.tx
                .push_back(Packet::Disconnect(Disconnect::new(reason)));
        } else if !R::IS_CLIENT && self.state == State::AwaitingConnect {
            // A refused first packet gets the CONNACK that says why, where the
            // version has a code for it [MQTT-3.1.2-2]; otherwise just the close.
            if let Violation::Decode(e) = &v {
                if let Some(r) = connack_for_decode_error(e) {
                    self.tx
                        .push_back(Packet::ConnAck(alloc::boxed::Box::new(ConnAck::new(
                            false, r,
                        ))));
                }
            }
        }
        self.finish(now, Close::broken_rule(reason, v), connected);
    }

    /// Emits `Closed` and moves to closing; `will_due` tells the server role
    /// whether to attach the will.
    pub(crate) fn finish(&mut self, now: Instant, close: Close, will_due: bool) {
        self.state = State::Closing;
        let ev = R::closed_event(self, now, close, will_due);
        self.events.push_back(ev);
        if self.tx.is_empty() {
            self.state = State::Closed;
        }
    }
}
