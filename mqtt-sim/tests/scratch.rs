#![allow(missing_docs)]
use mqtt_sim::workload::{LinkKind::*, Op::*, *};
#[test]
fn scratch() {
    let s: Scenario = include!("/tmp/scr/s.rs");
    std::env::set_var("MQTT_SIM_TRACE", "1");
    println!("{:?}", mqtt_sim::run::run(&s).err().map(|f| f.message));
}
