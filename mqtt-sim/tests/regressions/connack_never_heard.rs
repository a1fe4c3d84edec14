// Seed 100120877, shrunk: a client process that disconnects before its
// CONNACK never hears that the broker started a new session, and resumes
// that new session later with the state of the old one.
Scenario {
    seed: 1119324299903335259,
    broker: BrokerSetup {
        packet_path: false,
        max_queued: 4,
        max_inflight: 2,
        receive_maximum: 4,
        topic_alias_maximum: 4,
        outbound_topic_aliases: false,
        drop_new: false,
        max_session_expiry: 4294967295,
    },
    clients: vec![
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
            id: 1,
            link: Instant,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
        ClientSetup {
            v5: false,
            id: 3,
            link: Wan,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
        ClientSetup {
            v5: false,
            id: 2,
            link: Lan,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 5,
            expiry: 0,
        },
        ClientSetup {
            v5: false,
            id: 0,
            link: Slow,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
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
    ],
    watcher: false,
    ops: vec![
        Disconnect {
            client: 2,
            with_will: false,
        },
        Jump {
            secs: 3,
        },
        Disconnect {
            client: 3,
            with_will: false,
        },
        Publish {
            client: 4,
            topic: "c/c",
            qos: 2,
            retain: true,
            expiry: None,
            empty: false,
        },
        Connect {
            client: 7,
            clean_start: false,
            expiry: 0,
            will: None,
        },
        Connect {
            client: 2,
            clean_start: true,
            expiry: 0,
            will: None,
        },
        Wait {
            ms: 1000,
        },
        Subscribe {
            client: 2,
            filter: "a/#",
            qos: 2,
            no_local: false,
            rap: false,
            rh: 0,
            sub_id: None,
        },
        Wait {
            ms: 100,
        },
        Publish {
            client: 1,
            topic: "a/a",
            qos: 2,
            retain: false,
            expiry: None,
            empty: false,
        },
        Connect {
            client: 0,
            clean_start: false,
            expiry: 0,
            will: None,
        },
        Wait {
            ms: 100,
        },
        Disconnect {
            client: 2,
            with_will: false,
        },
        Connect {
            client: 2,
            clean_start: false,
            expiry: 0,
            will: None,
        },
        Wait {
            ms: 10,
        },
        Disconnect {
            client: 2,
            with_will: false,
        },
        Connect {
            client: 2,
            clean_start: false,
            expiry: 0,
            will: None,
        },
        Wait {
            ms: 1000,
        },
        Subscribe {
            client: 2,
            filter: "+/+",
            qos: 2,
            no_local: false,
            rap: false,
            rh: 0,
            sub_id: None,
        },
    ],
}

