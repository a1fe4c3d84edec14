//! The broker tests run on mqtt-sim's simulator: real mqtt-session clients
//! (`Connection<Client>`) and raw peers talk to one `Broker` over instant
//! in-memory links on a virtual clock, everything recorded (see
//! `mqtt_sim::Sim`). This module only picks the adapter path of the test
//! binary (`PACKET_PATH`) and holds the tests' own authentication driver.
#![allow(dead_code, unreachable_pub)]

use mqtt_router::broker::{
    Access, AuthAnswer, AuthRequest, AuthSuccess, BrokerConfig, Rights, Rule,
};
use mqtt_session::mqtt_codec::{ReasonCode, Str, TopicFilter};
pub use mqtt_sim::build::*;
use mqtt_sim::{AdapterPath, Authority};

/// The simulator, with one broker.
pub type Sim = mqtt_sim::Sim;

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

/// A simulator whose broker has a durable store (committing at once, see
/// `Sim::durable`), on this binary's adapter path.
pub fn durable_sim(config: BrokerConfig) -> Sim {
    let mut sim = Sim::durable(config);
    sim.set_path(0, path());
    sim
}

/// A simulator whose broker asks for authentication, answered by
/// `authority`, on this binary's adapter path.
pub fn new_sim_with(mut config: BrokerConfig, authority: Authority) -> Sim {
    config.auth.required = true;
    let mut sim = Sim::with_authority(config, authority);
    sim.set_path(0, path());
    sim
}

/// The tests' driver: refuses user "mallory" at CONNECT (0x86) and gives
/// everyone else every right but those under `secret/`.
pub fn test_authority() -> Authority {
    Box::new(|req: &AuthRequest| {
        Some(match req.username().map(Str::as_str) {
            Some("mallory") => AuthAnswer::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
            _ => AuthAnswer::Success(AuthSuccess::new(
                req.username().cloned(),
                Rights::from_rules([
                    Rule::new(TopicFilter::from_static("#"), Access::ReadWrite),
                    Rule::new(TopicFilter::from_static("secret/#"), Access::Deny),
                ]),
            )),
        })
    })
}
