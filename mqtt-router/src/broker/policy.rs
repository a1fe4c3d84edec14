//! Authentication and authorisation hooks: the small trait a broker binary
//! (or any custom broker) implements.

use mqtt_codec::{ReasonCode, TopicFilter, TopicName};
use mqtt_session::mqtt_codec::Connect;

use super::PeerInfo;

/// Who a connected client is, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo<'a> {
    /// The client identifier (after assignment, for an empty one).
    pub client_id: &'a str,
    /// The user name it authenticated with, if any.
    pub username: Option<&'a str>,
    /// What the transport knows about the peer.
    pub peer: &'a PeerInfo,
}

/// Decides who may connect, publish and subscribe.
///
/// The broker calls these synchronously while routing, so they should be
/// quick (a password check may be slow by design; cache or precompute where
/// a deployment needs it).
pub trait Policy {
    /// Allows a CONNECT (`ReasonCode::SUCCESS`) or refuses it with a CONNACK
    /// reason: 0x86 bad user name or password, 0x87 not authorized, 0x85
    /// client identifier not valid, … (a 3.1.1 client gets the matching
    /// return code). `client_id` is the identifier after assignment.
    fn authenticate(&mut self, connect: &Connect, client_id: &str, peer: &PeerInfo) -> ReasonCode;

    /// Whether `client` may publish to `topic`. A refused 5.0 publish is
    /// answered with 0x87; a refused 3.1.1 publish is acknowledged and dropped.
    fn may_publish(&self, client: &ClientInfo<'_>, topic: &TopicName) -> bool;

    /// Whether `client` may subscribe to `filter`; a refusal is the SUBACK
    /// failure code (0x87 in 5.0, 0x80 in 3.1.1).
    fn may_subscribe(&self, client: &ClientInfo<'_>, filter: &TopicFilter) -> bool;
}

/// Lets everyone connect, publish and subscribe: the anonymous default.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Policy for AllowAll {
    fn authenticate(&mut self, _: &Connect, _: &str, _: &PeerInfo) -> ReasonCode {
        ReasonCode::SUCCESS
    }

    fn may_publish(&self, _: &ClientInfo<'_>, _: &TopicName) -> bool {
        true
    }

    fn may_subscribe(&self, _: &ClientInfo<'_>, _: &TopicFilter) -> bool {
        true
    }
}
