use super::*;

fn args(extra: &[&str]) -> Args {
    let mut v = vec!["loadgen"];
    v.extend_from_slice(extra);
    Args::try_parse_from(v).unwrap()
}

#[test]
fn fan_in_is_many_topics_into_one_wildcard() {
    let a = args(&["--scenario", "fan-in", "--publishers", "3"]);
    let t = topology(&a);
    assert_eq!(
        t.publish_topics,
        ["loadgen/fan-in/0", "loadgen/fan-in/1", "loadgen/fan-in/2"]
    );
    assert_eq!(t.subscriptions, [("loadgen/fan-in/+".to_string(), 0..3)]);
    for topic in &t.publish_topics {
        let f = mqtt_codec::TopicFilter::from_static("loadgen/fan-in/+");
        assert!(f.matches(&mqtt_codec::TopicName::new(topic.as_bytes()).unwrap()));
    }
    assert_eq!(qos_of(&a), QoS::AtLeastOnce);
}

#[test]
fn fan_out_pairs_latency_and_qos2_shapes() {
    let t = topology(&args(&["--scenario", "fan-out", "--subscribers", "4"]));
    assert_eq!(t.publish_topics.len(), 1);
    assert_eq!(t.subscriptions.len(), 4);
    assert!(t
        .subscriptions
        .iter()
        .all(|(f, r)| f == "loadgen/fan-out" && *r == (0..1)));

    let t = topology(&args(&[
        "--scenario",
        "pairs",
        "--pairs",
        "3",
        "--topic-prefix",
        "x",
    ]));
    assert_eq!(t.publish_topics[2], "x/pair/2");
    assert_eq!(t.subscriptions[2], ("x/pair/2".to_string(), 2..3));

    let t = topology(&args(&["--scenario", "latency", "--rate", "1000"]));
    assert_eq!(t.period, Some(Duration::from_millis(1)));
    assert_eq!(t.subscriptions.len(), 1);
    let t = topology(&args(&["--scenario", "latency", "--pub-rate", "10"]));
    assert_eq!(
        t.period,
        Some(Duration::from_millis(1)),
        "--rate wins for latency"
    );
    let t = topology(&args(&["--scenario", "pairs", "--pub-rate", "200"]));
    assert_eq!(t.period, Some(Duration::from_millis(5)));
    assert_eq!(topology(&args(&["--scenario", "pairs"])).period, None);

    let a = args(&["--scenario", "qos2", "--qos", "0"]);
    assert_eq!(qos_of(&a), QoS::ExactlyOnce, "qos2 is always QoS 2");
    assert_eq!(topology(&a).subscriptions.len(), 1);
    assert_eq!(
        qos_of(&args(&["--scenario", "pairs", "--qos", "0"])),
        QoS::AtMostOnce
    );
}

#[test]
fn arguments_are_checked() {
    let bad = |v: &[&str]| {
        let mut all = vec!["loadgen"];
        all.extend_from_slice(v);
        Args::try_parse_from(all).is_err()
    };
    assert!(bad(&["--scenario", "fan-in", "--qos", "3"]));
    assert!(bad(&["--scenario", "nope"]));
    assert!(bad(&["--scenario", "fan-in", "--tag", "novalue"]));
    let a = args(&[
        "--scenario",
        "fan-in",
        "--tag",
        "broker=ours",
        "--tag",
        "mode=pinned",
    ]);
    assert_eq!(a.tags[1], ("mode".to_string(), "pinned".to_string()));
}

#[test]
fn source_addresses_cover_the_port_range() {
    assert_eq!(sources_needed(15_000, 28_232), 1);
    assert_eq!(sources_needed(25_000, 28_232), 2);
    assert_eq!(sources_needed(15_000, 10_000), 2);
    assert_eq!(sources_needed(100_000, 1), 250, "at most 250 addresses");
    assert!(ephemeral_ports() > 0);
}

#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let now = raise_nofile_limit().unwrap();
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    assert_eq!(soft, now);
    assert_eq!(soft, hard);
}
