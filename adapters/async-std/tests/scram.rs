//! The async-std client's `.scram(user, password)`: a SCRAM-SHA-256 login
//! (nonce from the operating system) against the testkit's SCRAM server,
//! on async-std's executor.

use std::time::Duration;

use mqtt_async_std::{Client, ConnectOptions, OptionSetters, ReasonCode, Requests};
use mqtt_testkit::scram_broker;

/// Bound on the connect.
const WAIT: Duration = Duration::from_secs(10);

fn options(url: &str, password: &str) -> ConnectOptions {
    ConnectOptions::new(url)
        .unwrap()
        .connect_timeout(WAIT)
        .scram("alice", password)
}

#[test]
fn the_async_std_client_logs_in_with_scram_and_a_wrong_password_is_refused() {
    async_std::task::block_on(async {
        let (url, server) = scram_broker("alice", "pencil");
        let (client, _incoming) = Client::connect(options(&url, "pencil")).await.unwrap();
        client.disconnect().await.unwrap();
        assert_eq!(server.join().unwrap().as_deref(), Some("alice"));

        let (url, server) = scram_broker("alice", "pencil");
        let e = Client::connect(options(&url, "crayon")).await.unwrap_err();
        assert_eq!(e.reason_code(), Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD));
        assert_eq!(server.join().unwrap(), None);
    });
}
