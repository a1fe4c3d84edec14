//! A hostile client against one `Connection<Server>`: see `mqtt_fuzz::server_connection`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtt_fuzz::server_connection(data));
