// Seed 30001553 (800 operations), shrunk: a session resumed with another
// process's state stays mismatched when the same process resumes it again.
Scenario {
    seed: 877619664683315752,
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
            v5: true,
            id: 1,
            link: Instant,
            receive_maximum: 10,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
    ],
    watcher: false,
    ops: vec![
        Disconnect {
            client: 1,
            with_will: false,
        },
        Connect {
            client: 1,
            clean_start: false,
            expiry: 2,
            will: None,
        },
        Wait {
            ms: 1,
        },
        Publish {
            client: 1,
            topic: "a",
            qos: 2,
            retain: false,
            expiry: None,
            empty: false,
        },
        Publish {
            client: 5,
            topic: "a",
            qos: 2,
            retain: false,
            expiry: None,
            empty: false,
        },
        Publish {
            client: 1,
            topic: "a",
            qos: 2,
            retain: false,
            expiry: None,
            empty: false,
        },
        Freeze {
            client: 1,
            ms: 50,
        },
        Wait {
            ms: 1,
        },
        CrashClient {
            client: 5,
        },
        Connect {
            client: 5,
            clean_start: false,
            expiry: 10,
            will: None,
        },
        Wait {
            ms: 1,
        },
        Cut {
            client: 1,
        },
        Subscribe {
            client: 1,
            filter: "a",
            qos: 0,
            no_local: false,
            rap: false,
            rh: 0,
            sub_id: None,
        },
        Wait {
            ms: 1,
        },
        Connect {
            client: 1,
            clean_start: false,
            expiry: 0,
            will: None,
        },
        Wait {
            ms: 1,
        },
        Subscribe {
            client: 1,
            filter: "a",
            qos: 0,
            no_local: false,
            rap: false,
            rh: 0,
            sub_id: None,
        },
        Subscribe {
            client: 1,
            filter: "a",
            qos: 0,
            no_local: false,
            rap: false,
            rh: 0,
            sub_id: None,
        },
        Publish {
            client: 5,
            topic: "a",
            qos: 2,
            retain: false,
            expiry: None,
            empty: false,
        },
        Publish {
            client: 5,
            topic: "a",
            qos: 1,
            retain: false,
            expiry: None,
            empty: false,
        },
    ],
}

