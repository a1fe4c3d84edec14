//! The broker's password and ACL files and the ACL's decisions: see `mqtt_fuzz::files`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtt_fuzz::files(data));
