//! Random scenarios under the oracle on every `cargo test`: a few hundred
//! seeds. A failing seed is printed with the command that replays it
//! exactly (`MQTT_SIM_SEED=<n> MQTT_SIM_OPS=<ops> cargo test -p mqtt-sim
//! --test random`) and its shrunk scenario, to keep as a regression test.

use mqtt_sim::oracle::Check;
use mqtt_sim::run::{check_seeds, run_seed, TEST_OPS};

#[test]
fn short_random_scenarios_keep_every_guarantee() {
    let outcome = check_seeds(0..600, TEST_OPS);
    for c in [Check::DeliveryDue, Check::AtLeastOnce, Check::Sessions] {
        assert!(outcome.checks.count(c) > 0, "{c} was never checked");
    }
}

#[test]
fn long_random_scenarios_keep_every_guarantee() {
    let outcome = check_seeds(1_000_000..1_000_100, 600);
    assert!(outcome.checks.total() > 0, "the oracle checked something");
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 77, 1905] {
        let a = run_seed(seed, 300).expect("passes");
        let b = run_seed(seed, 300).expect("passes");
        assert_eq!(
            (a.packets, a.steps, a.sim_ms, a.checks.total(), a.tally),
            (b.packets, b.steps, b.sim_ms, b.checks.total(), b.tally),
            "seed {seed}"
        );
    }
}
