//! The simulator as the body of a fuzz target: a scenario decoded from
//! arbitrary bytes (structure-aware, with `arbitrary::Unstructured`: every
//! input is a valid scenario, and small changes to the input make small
//! changes to it), run under the oracle.
//!
//! ```ignore
//! fuzz_target!(|data: &[u8]| mqtt_sim::fuzz::run_scenario(data));
//! ```

use arbitrary::{Arbitrary, Result, Unstructured};

use crate::run::run;
use crate::workload::{
    BrokerSetup, ClientSetup, LinkKind, Op, Scenario, WillSpec, FILTERS, TOPICS,
};

/// The most operations a fuzz input makes.
pub const MAX_OPS: usize = 256;

/// Runs the scenario `data` decodes to ([`scenario_from_bytes`]) and panics
/// with the oracle's message, and the scenario as Rust, on a violation or a
/// panic in the engine.
pub fn run_scenario(data: &[u8]) {
    let s = scenario_from_bytes(data);
    if let Err(f) = run(&s) {
        panic!("{f}\nscenario:\n{}", s.to_rust());
    }
}

/// The scenario `data` decodes to; the bytes left over when it runs out
/// read as zeros, so every input gives a scenario.
pub fn scenario_from_bytes(data: &[u8]) -> Scenario {
    let mut u = Unstructured::new(data);
    Scenario::arbitrary(&mut u).unwrap_or_else(|_| {
        // Unstructured reads zeros once it runs out, so nothing above
        // fails; should it, the empty input's scenario stands in.
        Scenario::arbitrary(&mut Unstructured::new(&[])).expect("the empty input decodes")
    })
}

fn pick<T: Copy>(u: &mut Unstructured<'_>, from: &[T]) -> Result<T> {
    u.choose(from).copied()
}

fn qos(u: &mut Unstructured<'_>) -> Result<u8> {
    u.int_in_range(0..=2)
}

fn client(u: &mut Unstructured<'_>) -> Result<u8> {
    u.int_in_range(0..=7)
}

impl<'a> Arbitrary<'a> for BrokerSetup {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(BrokerSetup {
            packet_path: u.arbitrary()?,
            max_queued: pick(u, &[4, 16, 1000])?,
            max_inflight: pick(u, &[2, 8, 100])?,
            receive_maximum: pick(u, &[4, 100])?,
            topic_alias_maximum: pick(u, &[0, 4])?,
            outbound_topic_aliases: u.arbitrary()?,
            drop_new: u.arbitrary()?,
            max_session_expiry: pick(u, &[u32::MAX, 20])?,
            pause_publishers: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for ClientSetup {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(ClientSetup {
            v5: u.arbitrary()?,
            id: u.int_in_range(0..=5)?,
            link: pick(
                u,
                &[
                    LinkKind::Instant,
                    LinkKind::Lan,
                    LinkKind::Wan,
                    LinkKind::Slow,
                ],
            )?,
            receive_maximum: pick(u, &[2, 10, 100])?,
            topic_aliases: u.arbitrary()?,
            keep_alive: pick(u, &[0, 5, 60])?,
            expiry: expiry(u)?,
        })
    }
}

fn expiry(u: &mut Unstructured<'_>) -> Result<u32> {
    pick(u, &[0, 2, 10, 300, u32::MAX])
}

fn will(u: &mut Unstructured<'_>) -> Result<Option<WillSpec>> {
    if !u.arbitrary()? {
        return Ok(None);
    }
    Ok(Some(WillSpec {
        topic: pick(u, &TOPICS)?,
        qos: qos(u)?,
        retain: u.arbitrary()?,
        delay: pick(u, &[0, 1, 5, 30])?,
    }))
}

fn subscribe(u: &mut Unstructured<'_>, client: u8) -> Result<Op> {
    let filter = pick(u, &FILTERS)?;
    let no_local: bool = u.arbitrary()?;
    Ok(Op::Subscribe {
        client,
        filter,
        qos: qos(u)?,
        // [MQTT-3.8.3-4]: never on a shared subscription.
        no_local: no_local && !filter.starts_with("$share/"),
        rap: u.arbitrary()?,
        rh: u.int_in_range(0..=2)?,
        sub_id: if u.arbitrary()? {
            Some(u.int_in_range(1..=3)?)
        } else {
            None
        },
    })
}

fn publish(u: &mut Unstructured<'_>, client: u8) -> Result<Op> {
    Ok(Op::Publish {
        client,
        topic: pick(u, &TOPICS)?,
        qos: qos(u)?,
        retain: u.arbitrary()?,
        expiry: if u.ratio(1, 8)? {
            Some(u.int_in_range(1..=5)?)
        } else {
            None
        },
        empty: u.ratio(1, 20)?,
    })
}

/// A fault or the passing of time.
fn fault(u: &mut Unstructured<'_>, client: u8) -> Result<Op> {
    Ok(match u.int_in_range(0..=6)? {
        0 => Op::Jump {
            secs: pick(u, &[3, 40, 400])?,
        },
        1 => Op::Cut { client },
        2 => Op::Stall {
            client,
            ms: pick(u, &[50, 3_000])?,
        },
        3 => Op::Freeze {
            client,
            ms: pick(u, &[50, 3_000, 20_000])?,
        },
        4 => Op::CrashClient { client },
        5 => Op::CrashBroker {
            downtime_ms: pick(u, &[0, 2_000])?,
        },
        _ => Op::Refuse {
            ms: pick(u, &[100, 3_000])?,
        },
    })
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let c = client(u)?;
        Ok(match u.int_in_range(0..=15)? {
            0 | 1 => Op::Connect {
                client: c,
                clean_start: u.arbitrary()?,
                expiry: expiry(u)?,
                will: will(u)?,
            },
            2 => Op::Disconnect {
                client: c,
                with_will: u.arbitrary()?,
            },
            3 | 4 => subscribe(u, c)?,
            5 => Op::Unsubscribe {
                client: c,
                filter: pick(u, &FILTERS)?,
            },
            6..=10 => publish(u, c)?,
            11 | 12 => Op::Wait {
                ms: pick(u, &[1, 10, 100, 1_000, 6_000])?,
            },
            _ => fault(u, c)?,
        })
    }
}

impl<'a> Arbitrary<'a> for Scenario {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let seed = u.arbitrary()?;
        let broker = u.arbitrary()?;
        let n = u.int_in_range(2..=6)?;
        let clients = (0..n).map(|_| u.arbitrary()).collect::<Result<_>>()?;
        let watcher = u.arbitrary()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            ops.push(u.arbitrary()?);
        }
        Ok(Scenario {
            seed,
            broker,
            clients,
            watcher,
            ops,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_decodes_to_a_scenario_the_oracle_accepts() {
        let mut rng = crate::Rng::new(3);
        for len in [0usize, 1, 7, 64, 300, 2000] {
            let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let s = scenario_from_bytes(&data);
            assert!((2..=6).contains(&s.clients.len()));
            assert!(s.ops.len() <= MAX_OPS);
            run_scenario(&data);
        }
    }

    #[test]
    fn one_input_always_decodes_to_one_scenario() {
        let data: Vec<u8> = (0..=255).collect();
        assert_eq!(scenario_from_bytes(&data), scenario_from_bytes(&data));
    }
}
