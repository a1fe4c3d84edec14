//! The client crates as `default-features = false` gives them: plain TCP
//! only. `.ci/run` checks with `cargo tree` that no rustls, ring or
//! tungstenite is in their build, and runs these tests alone (`cargo test
//! -p mqtt-minimal -- --ignored`), where nothing turns the features back on.

#[cfg(test)]
mod tests {
    #[test]
    #[ignore = "meaningful only alone: cargo test -p mqtt-minimal -- --ignored"]
    fn tokio_refuses_tls_and_websocket_addresses_naming_the_feature() {
        use mqtt_tokio::{ConnectError, ConnectOptions};
        for (address, scheme, feature) in [
            ("mqtts://broker.example", "mqtts://", "tls"),
            ("ws://broker.example/mqtt", "ws://", "websocket"),
            ("wss://broker.example/mqtt", "wss://", "websocket"),
        ] {
            let err = ConnectOptions::new(address).unwrap_err();
            assert!(
                matches!(err, ConnectError::FeatureDisabled { scheme: s, feature: f }
                    if s == scheme && f == feature),
                "{address}: {err}"
            );
        }
        let err = ConnectOptions::new("mqtts://broker.example").unwrap_err();
        assert_eq!(
            err.to_string(),
            "mqtts:// addresses need the `tls` feature of mqtt-engine-tokio, \
             which this build was compiled without"
        );
        assert!(ConnectOptions::new("mqtt://broker.example").is_ok());
    }

    #[test]
    #[ignore = "meaningful only alone: cargo test -p mqtt-minimal -- --ignored"]
    fn blocking_refuses_a_tls_address_naming_the_feature() {
        use mqtt_blocking::{ConnectError, ConnectOptions};
        let err = ConnectOptions::new("mqtts://broker.example").unwrap_err();
        assert!(
            matches!(
                err,
                ConnectError::FeatureDisabled {
                    scheme: "mqtts://",
                    feature: "tls"
                }
            ),
            "{err}"
        );
        assert!(ConnectOptions::new("mqtt://broker.example").is_ok());
    }

    #[test]
    #[ignore = "meaningful only alone: cargo test -p mqtt-minimal -- --ignored"]
    fn async_std_refuses_tls_and_websocket_addresses_naming_the_feature() {
        use mqtt_async_std::{ConnectError, ConnectOptions};
        for (address, scheme, feature) in [
            ("mqtts://broker.example", "mqtts://", "tls"),
            ("ws://broker.example/mqtt", "ws://", "websocket"),
            ("wss://broker.example/mqtt", "wss://", "websocket"),
        ] {
            let err = ConnectOptions::new(address).unwrap_err();
            assert!(
                matches!(err, ConnectError::FeatureDisabled { scheme: s, feature: f }
                    if s == scheme && f == feature),
                "{address}: {err}"
            );
        }
        let err = ConnectOptions::new("mqtts://broker.example").unwrap_err();
        assert_eq!(
            err.to_string(),
            "mqtts:// addresses need the `tls` feature of mqtt-engine-async-std, \
             which this build was compiled without"
        );
        assert!(ConnectOptions::new("mqtt://broker.example").is_ok());
    }
}
