//! Random scenarios under the oracle: a few hundred seeds on every
//! `cargo test`. A failing seed is printed with the command that replays it
//! (`MQTT_SIM_SEED=<n> cargo test -p mqtt-sim`) and its shrunk scenario.

use mqtt_sim::run::{check_seeds, TEST_OPS};

#[test]
fn random_scenarios_keep_every_guarantee() {
    let outcome = check_seeds(0..300, TEST_OPS);
    assert!(outcome.checks.total() > 0, "the oracle checked something");
}
