//! The broker tests run on mqtt-sim's simulator: real mqtt-session clients
//! (`Connection<Client>`) and raw peers talk to one `Broker` over instant
//! in-memory links on a virtual clock, everything recorded (see
//! `mqtt_sim::Sim`). This module only picks the adapter path of the test
//! binary (`PACKET_PATH`) and holds the tests' own policy.
#![allow(dead_code, unreachable_pub)]

use mqtt_router::broker::{AllowAll, BrokerConfig, ClientInfo, PeerInfo, Policy};
use mqtt_session::mqtt_codec::{Connect, ReasonCode, Str, TopicFilter, TopicName};
pub use mqtt_sim::build::*;
use mqtt_sim::AdapterPath;

/// The simulator, with one broker under policy `P`.
pub type Sim<P = AllowAll> = mqtt_sim::Sim<P>;

/// How this test binary's adapter hands bytes to the broker.
fn path() -> AdapterPath {
    if crate::PACKET_PATH {
        AdapterPath::Packets
    } else {
        AdapterPath::Bytes
    }
}

/// A simulator with one broker configured with `config` and the allow-all
/// policy, on this binary's adapter path.
pub fn new_sim(config: BrokerConfig) -> Sim {
    let mut sim = Sim::new(config);
    sim.set_path(0, path());
    sim
}

/// The same with another policy.
pub fn new_sim_with<P: Policy>(config: BrokerConfig, policy: P) -> Sim<P> {
    let mut sim = Sim::with_policy(config, policy);
    sim.set_path(0, path());
    sim
}

/// A policy for tests: refuses user "mallory" at CONNECT (0x86), topics under
/// `secret/` for publish and subscribe, and (if set) one client's publishes.
#[derive(Debug, Default)]
pub struct TestPolicy {
    pub connects_seen: usize,
}

impl Policy for TestPolicy {
    fn authenticate(&mut self, connect: &Connect, _client_id: &str, _: &PeerInfo) -> ReasonCode {
        self.connects_seen += 1;
        match connect.username.as_ref().map(Str::as_str) {
            Some("mallory") => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            _ => ReasonCode::SUCCESS,
        }
    }

    fn may_publish(&self, _: &ClientInfo<'_>, t: &TopicName) -> bool {
        !t.as_str().starts_with("secret/")
    }

    fn may_subscribe(&self, _: &ClientInfo<'_>, f: &TopicFilter) -> bool {
        !f.as_str().starts_with("secret/")
    }
}
