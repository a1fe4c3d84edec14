// Seed 20012878, shrunk: after a clock jump the broker acted on a
// keep alive deadline (a stale timer entry of the connection) before an
// earlier session deadline; the two wills went out in the wrong order.
Scenario {
    seed: 2237745529807490709,
    broker: BrokerSetup {
        packet_path: false,
        max_queued: 4,
        max_inflight: 2,
        receive_maximum: 4,
        topic_alias_maximum: 0,
        outbound_topic_aliases: false,
        drop_new: false,
        max_session_expiry: 4294967295,
        pause_publishers: false,
    },
    clients: vec![
        ClientSetup {
            v5: true,
            id: 0,
            link: Instant,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 5,
            expiry: 0,
        },
        ClientSetup {
            v5: false,
            id: 5,
            link: Lan,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 5,
            expiry: 0,
        },
        ClientSetup {
            v5: false,
            id: 1,
            link: Wan,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
        ClientSetup {
            v5: false,
            id: 5,
            link: Instant,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
        ClientSetup {
            v5: false,
            id: 0,
            link: Lan,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
        ClientSetup {
            v5: true,
            id: 0,
            link: Instant,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
    ],
    watcher: false,
    ops: vec![
        Jump {
            secs: 40,
        },
        Connect {
            client: 6,
            clean_start: false,
            expiry: 2,
            will: Some(
                WillSpec {
                    topic: "b",
                    qos: 0,
                    retain: true,
                    delay: 5,
                },
            ),
        },
        Wait {
            ms: 1,
        },
        Connect {
            client: 7,
            clean_start: false,
            expiry: 0,
            will: Some(
                WillSpec {
                    topic: "b",
                    qos: 0,
                    retain: true,
                    delay: 0,
                },
            ),
        },
        Wait {
            ms: 6000,
        },
        Disconnect {
            client: 6,
            with_will: true,
        },
        Wait {
            ms: 1,
        },
        Jump {
            secs: 40,
        },
    ],
}

