//! Several hostile clients against one `Broker` with small limits: see `mqtt_fuzz::broker`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtt_fuzz::broker(data));
