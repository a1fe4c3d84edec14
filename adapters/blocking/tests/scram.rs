//! The blocking client's `.scram(user, password)`: a SCRAM-SHA-256 login
//! (nonce from the operating system) against the testkit's SCRAM server.

use std::time::Duration;

use mqtt_blocking::{BlockingRequests, Client, ConnectOptions, OptionSetters, ReasonCode};
use mqtt_testkit::scram_broker;

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

fn options(url: &str, password: &str) -> ConnectOptions {
    ConnectOptions::new(url)
        .unwrap()
        .connect_timeout(LIMIT)
        .request_timeout(LIMIT)
        .scram("alice", password)
}

#[test]
fn the_blocking_client_logs_in_with_scram() {
    let (url, server) = scram_broker("alice", "pencil");
    let (client, _incoming) = Client::connect(options(&url, "pencil")).unwrap();
    client.disconnect().unwrap();
    assert_eq!(server.join().unwrap().as_deref(), Some("alice"));
}

#[test]
fn a_wrong_scram_password_is_refused_with_0x86() {
    let (url, server) = scram_broker("alice", "pencil");
    let e = Client::connect(options(&url, "crayon")).unwrap_err();
    assert_eq!(e.reason_code(), Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD));
    assert_eq!(server.join().unwrap(), None);
}
