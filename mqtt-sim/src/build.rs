//! Small constructors for tests and workloads: valid names, messages,
//! options and configurations in one call each (they panic on invalid
//! input, which only a test's typo gives).

use core::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_router::broker::BrokerConfig;
use mqtt_session::mqtt_codec::{
    Connect, Packet, ProtocolVersion, QoS, RetainHandling, Str, SubscriptionId,
    SubscriptionOptions, TopicFilter, TopicName, Will, WillProps,
};
use mqtt_session::{ClientConfig, Message};

/// MQTT 3.1.1.
pub const V311: ProtocolVersion = ProtocolVersion::V311;
/// MQTT 5.0.
pub const V5: ProtocolVersion = ProtocolVersion::V5;
/// Both versions, for tests that hold under each.
pub const VERSIONS: [ProtocolVersion; 2] = [V311, V5];

/// `n` seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `n` milliseconds.
pub fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A topic name.
pub fn topic(s: &str) -> TopicName {
    TopicName::try_from(s).expect("valid topic name")
}

/// A topic filter.
pub fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).expect("valid topic filter")
}

/// A UTF-8 string.
pub fn s(v: &str) -> Str {
    Str::try_from(v).expect("valid string")
}

/// A subscription identifier (1 to 268,435,455).
pub fn sub_id(n: u32) -> SubscriptionId {
    SubscriptionId::new(n).expect("valid subscription identifier")
}

/// A message without properties.
pub fn msg(t: &str, payload: &str, qos: QoS, retain: bool) -> Message {
    Message::new(
        topic(t),
        Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain,
    )
}

/// Subscription options at `qos` with No Local, Retain As Published and
/// Retain Handling.
pub fn opts(qos: QoS, no_local: bool, rap: bool, rh: RetainHandling) -> SubscriptionOptions {
    let mut o = SubscriptionOptions::new(qos);
    o.no_local = no_local;
    o.retain_as_published = rap;
    o.retain_handling = rh;
    o
}

/// A client configuration: clean start, keep alive 60 s, no session expiry.
pub fn cfg(v: ProtocolVersion, id: &str) -> ClientConfig {
    ClientConfig::new(v, s(id))
}

/// A client configuration that keeps its session: Clean Start 0 and (5.0) a
/// Session Expiry Interval of `expiry` seconds.
pub fn persistent(v: ProtocolVersion, id: &str, expiry: u32) -> ClientConfig {
    let mut c = cfg(v, id);
    c.clean_start = false;
    c.session_expiry_interval = expiry;
    c
}

/// A will on `t` with `payload`, at QoS 1, delayed by `delay` seconds (5.0).
pub fn will(t: &str, payload: &str, delay: Option<u32>) -> Will {
    let mut props = WillProps::default();
    props.will_delay_interval = delay;
    Will {
        topic: topic(t),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos: QoS::AtLeastOnce,
        retain: false,
        props,
    }
}

/// A broker configuration with a fixed seed and no `$SYS` publication.
pub fn broker_config() -> BrokerConfig {
    BrokerConfig {
        seed: 7,
        sys_interval: None,
        ..BrokerConfig::default()
    }
}

/// `packets` encoded for version `v`.
pub fn encode(v: ProtocolVersion, packets: &[Packet]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for p in packets {
        p.encode(v, &mut out).expect("test packets encode");
    }
    out.to_vec()
}

/// A CONNECT packet from `id` with Clean Start `clean`.
pub fn connect_packet(v: ProtocolVersion, id: &str, clean: bool) -> Packet {
    let mut c = Connect::new(v, s(id));
    c.clean_start = clean;
    Packet::Connect(Box::new(c))
}
