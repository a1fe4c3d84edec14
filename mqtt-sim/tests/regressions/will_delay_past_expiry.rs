// Seed 10, shrunk: a will delay longer than its session's expiry; the
// broker schedules the will for the session's end [MQTT-3.1.3-9], which
// the model's view of the session now says too (the oracle's bug).
Scenario {
    seed: 0,
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
            v5: false,
            id: 0,
            link: Instant,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
        ClientSetup {
            v5: false,
            id: 0,
            link: Instant,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
        ClientSetup {
            v5: true,
            id: 1,
            link: Instant,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
    ],
    watcher: false,
    ops: vec![
        Cut {
            client: 2,
        },
        Wait {
            ms: 1,
        },
        Connect {
            client: 2,
            clean_start: false,
            expiry: 2,
            will: Some(
                WillSpec {
                    topic: "a",
                    qos: 0,
                    retain: false,
                    delay: 5,
                },
            ),
        },
        Wait {
            ms: 1,
        },
        CrashClient {
            client: 2,
        },
    ],
}
