//! A hostile broker against one `Connection<Client>`: see `mqtt_fuzz::client_connection`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtt_fuzz::client_connection(data));
