//! The simulator's workload as the input and its oracle as the check: a
//! scenario of brokers, clients and faults decoded from the bytes, run on a
//! virtual clock, every guarantee checked (see `mqtt_sim::fuzz`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtt_sim::fuzz::run_scenario(data));
