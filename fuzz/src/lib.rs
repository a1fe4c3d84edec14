//! The fuzz targets' bodies, as plain functions over the fuzzer's bytes.
//!
//! Each `fuzz_targets/<name>.rs` is one line that hands libFuzzer's input to
//! the function of the same name here, so the same code runs under
//! `cargo fuzz run`, over a committed corpus in CI, and from a unit test.
//! Every target checks invariants, not only that nothing panics; a broken
//! invariant is an `assert!` with a message saying which.
//!
//! - [`server_connection()`]: one `Connection<Server>` fed a hostile client's
//!   bytes and packets at arbitrary cuts, with arbitrary time steps and
//!   application answers.
//! - [`client_connection()`]: one `Connection<Client>` fed a hostile
//!   broker's bytes, with the application publishing and subscribing.
//! - [`broker()`]: several connections' bytes or decoded packets interleaved
//!   into one `Broker` with small limits, with timeouts, EOFs and closes.
//! - [`config()`]: the broker's TOML configuration.
//! - [`files()`]: the Mosquitto password and ACL file parsers, and the ACL's
//!   decisions for arbitrary client identifiers, user names and topics.
#![forbid(unsafe_code)]

mod broker;
mod client;
mod config;
mod files;
mod gen;
mod server;
mod wire;

pub use broker::broker;
pub use client::client_connection;
pub use config::config;
pub use files::files;
pub use server::server_connection;

/// With `MQTT_FUZZ_DEBUG` set, prints the decoded input (to replay a crash:
/// `MQTT_FUZZ_DEBUG=1 fuzz/target/<triple>/release/<target> <crash file>`).
fn debug(input: &impl core::fmt::Debug) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("MQTT_FUZZ_DEBUG").is_some()) {
        eprintln!("{input:#?}");
    }
}
