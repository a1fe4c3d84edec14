// The shrunk scenario of seed 7322254 (see regressions.rs).
Scenario {
    seed: 3378008092747929979,
    broker: BrokerSetup {
        packet_path: false,
        max_queued: 4,
        max_inflight: 2,
        receive_maximum: 4,
        topic_alias_maximum: 0,
        outbound_topic_aliases: false,
        drop_new: false,
        max_session_expiry: 20,
        pause_publishers: false,
    },
    clients: vec![
        ClientSetup {
            v5: true,
            id: 0,
            link: Lan,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 60,
            expiry: 0,
        },
        ClientSetup {
            v5: true,
            id: 1,
            link: Lan,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 60,
            expiry: 10,
        },
    ],
    watcher: true,
    ops: vec![
        CrashBroker {
            downtime_ms: 0,
        },
        Wait {
            ms: 10,
        },
        Connect {
            client: 2,
            clean_start: false,
            expiry: 2,
            will: Some(
                WillSpec {
                    topic: "a/a",
                    qos: 0,
                    retain: true,
                    delay: 1,
                },
            ),
        },
        Disconnect {
            client: 1,
            with_will: false,
        },
        Connect {
            client: 5,
            clean_start: false,
            expiry: 2,
            will: Some(
                WillSpec {
                    topic: "a/a",
                    qos: 0,
                    retain: true,
                    delay: 1,
                },
            ),
        },
        Wait {
            ms: 10,
        },
        Jump {
            secs: 400,
        },
    ],
}
