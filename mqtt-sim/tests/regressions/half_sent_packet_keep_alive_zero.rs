// The shrunk scenario of seed 9884 with 120 operations (sim --start 600).
Scenario {
    seed: 7366668197558637893,
    broker: BrokerSetup {
        packet_path: false,
        max_queued: 4,
        max_inflight: 2,
        receive_maximum: 4,
        topic_alias_maximum: 0,
        outbound_topic_aliases: false,
        drop_new: false,
        max_session_expiry: 4294967295,
    },
    clients: vec![
        ClientSetup {
            v5: false,
            id: 3,
            link: Slow,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
        ClientSetup {
            v5: false,
            id: 2,
            link: Slow,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
        ClientSetup {
            v5: false,
            id: 2,
            link: Slow,
            receive_maximum: 2,
            topic_aliases: false,
            keep_alive: 0,
            expiry: 0,
        },
    ],
    watcher: false,
    ops: vec![
        Subscribe {
            client: 2,
            filter: "a",
            qos: 0,
            no_local: false,
            rap: false,
            rh: 0,
            sub_id: None,
        },
        Subscribe {
            client: 2,
            filter: "+/b",
            qos: 0,
            no_local: false,
            rap: false,
            rh: 0,
            sub_id: None,
        },
        Disconnect {
            client: 2,
            with_will: false,
        },
        Wait {
            ms: 10,
        },
        Jump {
            secs: 40,
        },
    ],
}
