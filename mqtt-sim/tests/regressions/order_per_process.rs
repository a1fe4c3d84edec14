// Seed 300002321 (800 operations), shrunk: two processes racing for one
// client identifier each receive a publisher's messages in order, but
// their receipts interleave.
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
            link: Instant,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
        ClientSetup {
            v5: true,
            id: 5,
            link: Instant,
            receive_maximum: 10,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
    ],
    watcher: false,
    ops: vec![
        Connect {
            client: 2,
            clean_start: false,
            expiry: 2,
            will: None,
        },
        Wait {
            ms: 1,
        },
        Subscribe {
            client: 2,
            filter: "a/a/a",
            qos: 1,
            no_local: false,
            rap: false,
            rh: 0,
            sub_id: None,
        },
        Publish {
            client: 2,
            topic: "a/a/a",
            qos: 1,
            retain: false,
            expiry: None,
            empty: true,
        },
        Freeze {
            client: 2,
            ms: 3000,
        },
        Wait {
            ms: 100,
        },
        Connect {
            client: 3,
            clean_start: false,
            expiry: 0,
            will: None,
        },
        Wait {
            ms: 1,
        },
        Publish {
            client: 0,
            topic: "a/a/a",
            qos: 1,
            retain: false,
            expiry: None,
            empty: false,
        },
    ],
}

