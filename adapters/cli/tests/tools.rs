//! `mqtt pub`, `mqtt sub` and `mqtt rr` as processes against our broker and
//! Mosquitto: interoperation with Mosquitto's tools, exit statuses, line
//! and null messages, retained messages, 5.0 properties, request/response.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{
    mosquitto_pub, mosquitto_tools, mqtt_pub, ours, run, runtime, tool, wait_subscribed,
    with_probe, Running,
};
use mqtt_testkit::{brokers, unique, Mosquitto, OurBroker};
use mqtt_tokio::{
    Client, ConnectOptions, Message, MessageProps, OptionSetters, ProtocolVersion, QoS, Requests,
};

/// Starts `mosquitto_sub -v` on `filter` (plus a probe) and waits until it
/// is subscribed.
fn mosquitto_sub(broker: SocketAddr, filter: &str, args: &[&str]) -> Running {
    let probe = unique("probe");
    let all = with_probe(&probe, filter, args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let sub = Running::start(tool("mosquitto_sub", broker, &all), b"");
    wait_subscribed(broker, &[&probe]);
    sub
}

/// Starts `mqtt sub` on `filter` (plus a probe) and waits until it is
/// subscribed.
fn mqtt_sub(broker: SocketAddr, filter: &str, args: &[&str]) -> Running {
    let probe = unique("probe");
    let all = with_probe(&probe, filter, args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let sub = Running::start(ours("sub", broker, &all), b"");
    wait_subscribed(broker, &[&probe]);
    sub
}

#[test]
fn mqtt_pub_messages_reach_mosquitto_sub() {
    if !mosquitto_tools() {
        return;
    }
    let file = std::env::temp_dir().join(unique("mqtt-cli-file"));
    std::fs::write(&file, b"from a file").unwrap();
    for broker in brokers() {
        let addr = broker.addr();
        let base = unique("pub");
        let t = |s: &str| format!("{base}/{s}");
        // QoS 1: mosquitto_sub hands a QoS 2 message over at PUBREL, after
        // a QoS 0 message published later.
        let sub = mosquitto_sub(addr, &format!("{base}/#"), &["-v", "-C", "8", "-q", "1"]);
        mqtt_pub(addr, &["-t", &t("m"), "-m", "hello world"], b"");
        mqtt_pub(addr, &["-t", &t("q1"), "-m", "one", "-q", "1"], b"");
        mqtt_pub(
            addr,
            &["-t", &t("q2"), "-m", "two", "-q", "2", "-V", "5"],
            b"",
        );
        mqtt_pub(addr, &["-t", &t("null"), "-n"], b"");
        mqtt_pub(addr, &["-t", &t("file"), "-f", file.to_str().unwrap()], b"");
        mqtt_pub(addr, &["-t", &t("stdin"), "-s"], b"all of it\n");
        mqtt_pub(
            addr,
            &["-t", &t("lines"), "-l", "-q", "1"],
            b"first\n\nthird",
        );
        let done = sub.finish();
        let expected = [
            "m hello world",
            "q1 one",
            "q2 two",
            "null (null)",
            "file from a file",
            "stdin all of it\n",
            "lines first",
            "lines (null)",
        ]
        .iter()
        .map(|line| format!("{base}/{line}\n"))
        .collect::<String>();
        assert_eq!(done.out(), expected, "{}", broker.name());
        assert_eq!(done.code(), Some(0));
    }
    let _ = std::fs::remove_file(file);
}

#[test]
fn lines_mode_sends_one_message_per_line_of_standard_input() {
    let broker = OurBroker::start();
    let addr = broker.addr();
    let topic = unique("lines");
    let sub = mqtt_sub(addr, &topic, &["-C", "3", "-F", "[%p]"]);
    mqtt_pub(addr, &["-t", &topic, "-l"], b"a b\n\nlast without newline");
    let done = sub.finish();
    assert_eq!(done.out(), "[a b]\n[]\n[last without newline]\n");
}

#[test]
fn count_exits_zero_and_wait_exits_twenty_seven_as_mosquitto_sub_does() {
    for broker in brokers() {
        let addr = broker.addr();
        let topic = unique("count");
        let sub = mqtt_sub(addr, &topic, &["-C", "2", "-W", "10"]);
        for payload in ["1", "2", "3"] {
            mqtt_pub(addr, &["-t", &topic, "-m", payload], b"");
        }
        let done = sub.finish();
        assert_eq!((done.code(), done.out().as_str()), (Some(0), "1\n2\n"));
        let started = std::time::Instant::now();
        let done = run(ours("sub", addr, &["-t", &topic, "-W", "1"]), b"");
        assert_eq!(done.code(), Some(27), "{}", done.stderr);
        assert_eq!(done.stderr, "Timed out\n");
        assert!(started.elapsed() < Duration::from_secs(5));
        if mosquitto_tools() {
            let theirs = run(tool("mosquitto_sub", addr, &["-t", &topic, "-W", "1"]), b"");
            assert_eq!(theirs.code(), done.code());
        }
    }
}

#[test]
fn retained_messages_are_printed_skipped_with_minus_r_and_cleared_with_null() {
    for broker in brokers() {
        let addr = broker.addr();
        let topic = unique("retained");
        mqtt_pub(addr, &["-t", &topic, "-m", "kept", "-r", "-q", "1"], b"");
        let done = run(
            ours("sub", addr, &["-t", &topic, "-C", "1", "-F", "%r %p"]),
            b"",
        );
        assert_eq!(done.out(), "1 kept\n", "{}", broker.name());
        let done = run(ours("sub", addr, &["-t", &topic, "-R", "-W", "1"]), b"");
        assert_eq!((done.code(), done.out().as_str()), (Some(27), ""));
        mqtt_pub(addr, &["-t", &topic, "-n", "-r"], b"");
        let done = run(ours("sub", addr, &["-t", &topic, "-W", "1", "-v"]), b"");
        assert_eq!((done.code(), done.out().as_str()), (Some(27), ""));
    }
}

#[test]
fn user_properties_given_with_minus_d_reach_the_other_tool() {
    if !mosquitto_tools() {
        return;
    }
    for broker in brokers() {
        let addr = broker.addr();
        let topic = unique("props");
        let sub = mosquitto_sub(addr, &topic, &["-V", "5", "-F", "%P|%C|%p", "-C", "1"]);
        let props = [
            "-t",
            &topic,
            "-m",
            "x",
            "-D",
            "PUBLISH",
            "user-property",
            "unit",
            "celsius",
            "-D",
            "PUBLISH",
            "user-property",
            "room",
            "kitchen",
            "-D",
            "PUBLISH",
            "content-type",
            "text/plain",
        ];
        mqtt_pub(addr, &props, b"");
        let done = sub.finish();
        assert_eq!(
            done.out(),
            "unit:celsius room:kitchen|text/plain|x\n",
            "{}",
            broker.name()
        );
        let sub = mqtt_sub(addr, &topic, &["-V", "5", "-F", "%P", "-C", "1"]);
        mosquitto_pub(
            addr,
            &[
                "-V",
                "5",
                "-t",
                &topic,
                "-m",
                "y",
                "-D",
                "PUBLISH",
                "user-property",
                "a",
                "b",
            ],
        );
        assert_eq!(sub.finish().out(), "a:b\n");
    }
}

/// Answers `count` requests on `topic`: the reply goes to the request's
/// response topic with its correlation data and `reply: <payload>`.
fn responder(broker: SocketAddr, topic: String, count: usize) -> std::thread::JoinHandle<()> {
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        runtime().block_on(async move {
            let options = ConnectOptions::new(&format!("mqtt://{broker}"))
                .unwrap()
                .version(ProtocolVersion::V5);
            let (client, mut incoming) = Client::connect(options).await.unwrap();
            client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
            ready_tx.send(()).unwrap();
            for _ in 0..count {
                let received = tokio::time::timeout(common::LIMIT, incoming.recv_message()).await;
                let Ok(Some(message)) = received else {
                    return;
                };
                let Some(response) = message.props.response_topic.clone() else {
                    continue;
                };
                let mut props = MessageProps::default();
                props.correlation_data = message.props.correlation_data.clone();
                let mut payload = b"reply: ".to_vec();
                payload.extend_from_slice(&message.payload);
                let reply = Message {
                    topic: response,
                    payload: payload.into(),
                    qos: QoS::AtLeastOnce,
                    retain: false,
                    props,
                };
                client.publish_message(reply).await.unwrap();
            }
            let _ = client.disconnect().await;
        });
    });
    ready
        .recv_timeout(common::LIMIT)
        .expect("the responder subscribes");
    handle
}

#[test]
fn rr_prints_the_response_as_mosquitto_rr_does() {
    for broker in brokers() {
        let addr = broker.addr();
        let requests = unique("requests");
        let tools = mosquitto_tools();
        let answering = responder(addr, requests.clone(), if tools { 2 } else { 1 });
        let response = unique("responses");
        let args = ["-t", &requests, "-e", &response, "-m", "ping", "-W", "10"];
        let done = run(ours("rr", addr, &args), b"");
        assert_eq!(done.code(), Some(0), "{}", done.stderr);
        assert_eq!(done.out(), "reply: ping\n", "{}", broker.name());
        if tools {
            let theirs = run(tool("mosquitto_rr", addr, &args), b"");
            assert_eq!(theirs.stdout, done.stdout, "{}", broker.name());
        }
        answering.join().unwrap();
        // Nobody answers: -W runs out.
        let done = run(
            ours(
                "rr",
                addr,
                &["-t", &requests, "-e", &response, "-n", "-W", "1"],
            ),
            b"",
        );
        assert_eq!(done.code(), Some(27));
    }
}

#[test]
fn a_refused_connection_exits_with_the_connack_code_as_mosquittos_tools_do() {
    if !mosquitto_tools() {
        return;
    }
    let Some(closed) = Mosquitto::start_with("allow_anonymous false") else {
        return;
    };
    let addr = closed.addr();
    for (version, code) in [("311", 5), ("5", 135)] {
        let args = ["-t", "a", "-V", version];
        let ours_done = run(ours("sub", addr, &args), b"");
        let theirs = run(tool("mosquitto_sub", addr, &args), b"");
        assert_eq!(ours_done.code(), Some(code), "{}", ours_done.stderr);
        assert_eq!(ours_done.code(), theirs.code());
        assert_eq!(ours_done.stderr, theirs.stderr, "the same words");
        let ours_pub = run(
            ours("pub", addr, &["-t", "a", "-m", "x", "-V", version]),
            b"",
        );
        assert_eq!(ours_pub.code(), Some(code));
    }
}

#[test]
fn command_line_mistakes_exit_with_one_as_mosquittos_tools_do() {
    let tools = mosquitto_tools();
    let addr = SocketAddr::from(([127, 0, 0, 1], 9));
    for (sub, args) in [
        ("sub", &[][..]),
        ("sub", &["-t", "a", "-q", "3"]),
        ("sub", &["-t", "a/#/b"]),
        ("sub", &["-t", "a", "-F", "%i"]),
        ("sub", &["-t", "a", "-c"]),
        ("sub", &["-t", "a", "-k", "3"]),
        ("sub", &["-t", "a", "-C", "0"]),
        ("sub", &["-t", "a", "-W", "0"]),
        ("pub", &["-t", "a"]),
        ("pub", &["-t", "a/#", "-m", "x"]),
        ("pub", &["-t", "a", "-m", "x", "-n"]),
        (
            "pub",
            &[
                "-t",
                "a",
                "-m",
                "x",
                "--repeat",
                "2",
                "--repeat-delay",
                "-1",
            ],
        ),
        (
            "pub",
            &["-t", "a", "-m", "x", "-D", "PUBLISH", "bogus", "1"],
        ),
    ] {
        let done = run(ours(sub, addr, args), b"");
        assert_eq!(done.code(), Some(1), "mqtt {sub} {args:?}: {}", done.stderr);
        assert!(done.stderr.contains("rror"), "{}", done.stderr);
        if tools {
            let theirs = run(tool(&format!("mosquitto_{sub}"), addr, args), b"");
            assert_eq!(theirs.code(), Some(1), "mosquitto_{sub} {args:?}");
        }
    }
}

#[test]
fn the_will_is_published_when_the_subscriber_dies() {
    for broker in brokers() {
        let addr = broker.addr();
        let will = unique("will");
        let watcher = mqtt_sub(addr, &will, &["-C", "1", "-F", "%t %p %r"]);
        let dying = mqtt_sub(
            addr,
            &unique("anything"),
            &[
                "--will-topic",
                &will,
                "--will-payload",
                "gone",
                "--will-qos",
                "1",
            ],
        );
        // Killed: the connection ends without DISCONNECT.
        drop(dying);
        assert_eq!(
            watcher.finish().out(),
            format!("{will} gone 0\n"),
            "{}",
            broker.name()
        );
    }
}

#[test]
fn a_persistent_session_keeps_messages_for_an_absent_subscriber() {
    for broker in brokers() {
        let addr = broker.addr();
        for version in ["311", "5"] {
            let topic = unique("session");
            let id = unique("persistent");
            let session = ["-c", "-i", &id, "-q", "1", "-t", &topic, "-V", version];
            // -E: subscribe, then leave; the session stays.
            let made = run(ours("sub", addr, &[&session[..], &["-E"]].concat()), b"");
            assert_eq!(made.code(), Some(0), "{}", made.stderr);
            mqtt_pub(addr, &["-t", &topic, "-m", "while away", "-q", "1"], b"");
            let back = run(
                ours(
                    "sub",
                    addr,
                    &[&session[..], &["-C", "1", "-W", "10"]].concat(),
                ),
                b"",
            );
            assert_eq!(
                back.out(),
                "while away\n",
                "{} {version}: {}",
                broker.name(),
                back.stderr
            );
            // -x 0 under 5.0 ends the session with the connection.
            if version == "5" {
                let ended = ["-i", &id, "-t", &topic, "-V", "5", "-x", "0", "-E"];
                assert_eq!(run(ours("sub", addr, &ended), b"").code(), Some(0));
            }
        }
    }
}

#[test]
fn called_by_a_mosquitto_tools_name_it_is_that_tool() {
    let broker = OurBroker::start();
    let addr = broker.addr();
    let dir = std::env::temp_dir().join(unique("mqtt-cli-links"));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["mosquitto_pub", "mosquitto_sub"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mqtt"), dir.join(name)).unwrap();
    }
    let topic = unique("linked");
    let port = addr.port().to_string();
    let mut sub = std::process::Command::new(dir.join("mosquitto_sub"));
    let probe = unique("probe");
    sub.args([
        "-p",
        &port,
        "-h",
        "127.0.0.1",
        "-t",
        &topic,
        "-t",
        &probe,
        "-T",
        &probe,
    ])
    .args(["-C", "1", "-v"]);
    let sub = Running::start(sub, b"");
    wait_subscribed(addr, &[&probe]);
    let mut publish = std::process::Command::new(dir.join("mosquitto_pub"));
    publish.args(["-p", &port, "-h", "127.0.0.1", "-t", &topic, "-m", "linked"]);
    assert_eq!(run(publish, b"").code(), Some(0));
    assert_eq!(sub.finish().out(), format!("{topic} linked\n"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sub_reconnects_and_subscribes_again_after_a_lost_connection() {
    let broker = OurBroker::start();
    let relay = mqtt_testkit::Relay::start(broker.addr());
    let topic = unique("reconnect");
    let probe = unique("probe");
    let args = with_probe(&probe, &topic, &["-C", "2", "-v"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut sub = Running::start(ours("sub", relay.addr(), &args), b"");
    wait_subscribed(broker.addr(), &[&probe]);
    mqtt_pub(broker.addr(), &["-t", &topic, "-m", "before"], b"");
    // Cut, and publish until the subscriber, connected and subscribed
    // again (a clean session: the broker forgot its subscription), prints.
    assert!(relay.cut() >= 1);
    let mut exited = false;
    for _ in 0..100 {
        if relay.accepted() >= 2 {
            mqtt_pub(broker.addr(), &["-t", &topic, "-m", "after"], b"");
        }
        if sub.has_exited() {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(exited, "the subscriber did not print after reconnecting");
    let done = sub.finish();
    assert_eq!(
        done.out(),
        format!("{topic} before\n{topic} after\n"),
        "{}",
        done.stderr
    );
    assert_eq!(done.code(), Some(0));
}

#[test]
fn repeat_publishes_the_message_that_many_times() {
    let broker = OurBroker::start();
    let addr = broker.addr();
    let topic = unique("repeat");
    let sub = mqtt_sub(addr, &topic, &["-C", "3", "-F", "%p"]);
    let started = std::time::Instant::now();
    let args = [
        "-t",
        &topic,
        "-m",
        "again",
        "--repeat",
        "3",
        "--repeat-delay",
        "0.2",
    ];
    mqtt_pub(addr, &args, b"");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "two delays"
    );
    assert_eq!(sub.finish().out(), "again\nagain\nagain\n");
}
