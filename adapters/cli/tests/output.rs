//! `mqtt sub` prints byte for byte what `mosquitto_sub` prints on the same
//! messages, against our broker and against Mosquitto: both subscribe side
//! by side, `mosquitto_pub` publishes, the outputs are compared.

mod common;

use common::{assert_same, mosquitto_pub, mosquitto_tools, side_by_side, BrokerBinary};
use mqtt_testkit::{brokers, unique};

#[test]
fn verbose_output_is_mosquitto_subs_byte_for_byte() {
    if !mosquitto_tools() {
        return;
    }
    let file = std::env::temp_dir().join(unique("mqtt-cli-binary"));
    std::fs::write(&file, b"bytes \x00\x01\xff and\nlines\n").unwrap();
    for broker in brokers() {
        let base = unique("verbose");
        let addr = broker.addr();
        let filter = format!("{base}/#");
        // Subscribed at QoS 1: mosquitto_sub hands a QoS 2 message over at
        // PUBREL, so a later QoS 0 message could overtake it there only.
        let (ours, theirs) = side_by_side(addr, &filter, &["-v", "-C", "5", "-q", "1"], || {
            let t = |s: &str| format!("{base}/{s}");
            mosquitto_pub(addr, &["-t", &t("a"), "-m", "hello world"]);
            mosquitto_pub(addr, &["-t", &t("empty"), "-n"]);
            mosquitto_pub(addr, &["-t", &t("q1"), "-m", "at least once", "-q", "1"]);
            mosquitto_pub(
                addr,
                &["-t", &t("q2/deep"), "-m", "exactly once", "-q", "2"],
            );
            mosquitto_pub(addr, &["-t", &t("file"), "-f", file.to_str().unwrap()]);
        });
        assert!(ours.out().contains("hello world"), "{}", ours.out());
        assert_same(&ours, &theirs, broker.name());
    }
    let _ = std::fs::remove_file(file);
}

#[test]
fn payload_only_and_no_newline_output_is_mosquitto_subs() {
    if !mosquitto_tools() {
        return;
    }
    for broker in brokers() {
        let addr = broker.addr();
        for args in [
            &["-C", "3"][..],
            &["-C", "3", "-N"],
            &["-C", "3", "-v", "-N"],
        ] {
            let base = unique("plain");
            let (ours, theirs) = side_by_side(addr, &format!("{base}/#"), args, || {
                mosquitto_pub(addr, &["-t", &format!("{base}/a"), "-m", "one"]);
                mosquitto_pub(addr, &["-t", &format!("{base}/b"), "-n"]);
                mosquitto_pub(addr, &["-t", &format!("{base}/c"), "-m", "three"]);
            });
            assert_same(&ours, &theirs, &format!("{} {args:?}", broker.name()));
        }
    }
}

#[test]
fn format_output_is_mosquitto_subs_byte_for_byte() {
    if !mosquitto_tools() {
        return;
    }
    let format = "%t|%p|%q|%r|%l|%m|%x|%X|[%10t][%-6l][%05l][%.3t][%8p][%6x][%3m][%-3m]\\t\\\\@@%%";
    for broker in brokers() {
        let base = unique("format");
        let addr = broker.addr();
        let filter = format!("{base}/#");
        let (ours, theirs) =
            side_by_side(addr, &filter, &["-F", format, "-C", "3", "-q", "1"], || {
                mosquitto_pub(addr, &["-t", &format!("{base}/a"), "-m", "hello"]);
                mosquitto_pub(addr, &["-t", &format!("{base}/b"), "-n", "-q", "1"]);
                mosquitto_pub(
                    addr,
                    &[
                        "-t",
                        &format!("{base}/c"),
                        "-m",
                        "a longer payload",
                        "-q",
                        "1",
                    ],
                );
            });
        assert!(ours.out().contains("|hello|"), "{}", ours.out());
        assert_same(&ours, &theirs, broker.name());
    }
}

#[test]
fn five_point_zero_properties_print_as_mosquitto_sub_prints_them() {
    if !mosquitto_tools() {
        return;
    }
    let format = "%t C=%C D=%D E=%E F=%F R=%R P=%P p=%p";
    for broker in brokers() {
        let base = unique("props");
        let addr = broker.addr();
        let filter = format!("{base}/#");
        let args = ["-V", "5", "-F", format, "-C", "2"];
        let (ours, theirs) = side_by_side(addr, &filter, &args, || {
            mosquitto_pub(
                addr,
                &[
                    "-V",
                    "5",
                    "-t",
                    &format!("{base}/a"),
                    "-m",
                    "with properties",
                    "-D",
                    "PUBLISH",
                    "user-property",
                    "k1",
                    "v1",
                    "-D",
                    "PUBLISH",
                    "user-property",
                    "k2",
                    "v2",
                    "-D",
                    "PUBLISH",
                    "content-type",
                    "text/plain",
                    "-D",
                    "PUBLISH",
                    "response-topic",
                    "reply/here",
                    "-D",
                    "PUBLISH",
                    "correlation-data",
                    "c0rr",
                    "-D",
                    "PUBLISH",
                    "payload-format-indicator",
                    "1",
                    "-D",
                    "PUBLISH",
                    "message-expiry-interval",
                    "3600",
                ],
            );
            mosquitto_pub(
                addr,
                &["-V", "5", "-t", &format!("{base}/b"), "-m", "without"],
            );
        });
        assert!(ours.out().contains("P=k1:v1 k2:v2"), "{}", ours.out());
        assert_same(&ours, &theirs, broker.name());
    }
}

#[test]
fn json_output_is_mosquitto_subs_apart_from_the_time() {
    if !mosquitto_tools() {
        return;
    }
    // The time stamp differs by when each tool printed; everything after it
    // must be the same ("mid" included). One property kind per message:
    // Mosquitto lists them in the order they came on the wire, this tool
    // in a fixed order.
    let without_time = |out: &[u8]| {
        String::from_utf8_lossy(out)
            .lines()
            .map(|l| {
                l.split_once("\",\"topic\"")
                    .map_or(l, |(_, rest)| rest)
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    for broker in brokers() {
        let base = unique("json");
        let addr = broker.addr();
        let args = ["-V", "5", "-F", "%j", "-C", "3", "-q", "1"];
        let (ours, theirs) = side_by_side(addr, &format!("{base}/#"), &args, || {
            mosquitto_pub(
                addr,
                &[
                    "-V",
                    "5",
                    "-t",
                    &format!("{base}/a"),
                    "-m",
                    "say \"hi\"\\\t",
                    "-D",
                    "PUBLISH",
                    "user-property",
                    "k",
                    "v",
                    "-D",
                    "PUBLISH",
                    "user-property",
                    "k2",
                    "v2",
                ],
            );
            mosquitto_pub(
                addr,
                &[
                    "-V",
                    "5",
                    "-t",
                    &format!("{base}/b"),
                    "-m",
                    "{}",
                    "-q",
                    "1",
                    "-D",
                    "PUBLISH",
                    "content-type",
                    "application/json",
                ],
            );
            mosquitto_pub(addr, &["-t", &format!("{base}/c"), "-n"]);
        });
        assert_eq!(ours.code(), Some(0), "{}", ours.stderr);
        assert_eq!(
            without_time(&ours.stdout),
            without_time(&theirs.stdout),
            "{}",
            broker.name()
        );
        assert!(ours.out().starts_with("{\"tst\":\""), "{}", ours.out());
        assert!(ours.out().contains(",\"mid\":"), "{}", ours.out());
    }
}

#[test]
fn the_broker_binary_delivers_what_mosquitto_sub_and_mqtt_sub_print_alike() {
    if !mosquitto_tools() {
        return;
    }
    let Some(broker) = BrokerBinary::start() else {
        return;
    };
    let addr = broker.addr();
    let base = unique("binary");
    let args = ["-F", "%t %q %r %l %p", "-C", "3", "-q", "1"];
    let (ours, theirs) = side_by_side(addr, &format!("{base}/#"), &args, || {
        mosquitto_pub(addr, &["-t", &format!("{base}/a"), "-m", "zero"]);
        mosquitto_pub(addr, &["-t", &format!("{base}/b"), "-m", "one", "-q", "1"]);
        mosquitto_pub(addr, &["-t", &format!("{base}/c"), "-n", "-q", "2"]);
    });
    assert!(ours.out().ends_with(" 1 0 0 \n"), "{}", ours.out());
    assert_same(&ours, &theirs, "mqtt-broker binary");
}

#[test]
fn retained_only_and_remove_retained_behave_as_in_mosquitto_sub() {
    if !mosquitto_tools() {
        return;
    }
    for broker in brokers() {
        let addr = broker.addr();
        let base = unique("stale");
        for (topic, payload) in [("a", "A"), ("b", "B")] {
            mosquitto_pub(
                addr,
                &["-t", &format!("{base}/{topic}"), "-m", payload, "-r"],
            );
        }
        // The first fresh message ends both, having printed the retained ones.
        let filter = format!("{base}/#");
        let (ours, theirs) = side_by_side(addr, &filter, &["--retained-only", "-v"], || {
            mosquitto_pub(addr, &["-t", &format!("{base}/c"), "-m", "fresh"]);
        });
        assert_eq!(
            ours.out(),
            format!("{base}/a A\n{base}/b B\n"),
            "{}",
            broker.name()
        );
        assert_same(&ours, &theirs, broker.name());
        // --remove-retained clears what it sees; afterwards nothing is left.
        let args = [
            "-t",
            &filter,
            "--retained-only",
            "--remove-retained",
            "-W",
            "2",
            "-v",
        ];
        let cleared = common::run(common::ours("sub", addr, &args), b"");
        assert_eq!(cleared.code(), Some(27));
        assert_eq!(cleared.out(), format!("{base}/a A\n{base}/b B\n"));
        let left = common::run(
            common::tool("mosquitto_sub", addr, &["-t", &filter, "-W", "1", "-v"]),
            b"",
        );
        assert_eq!(
            (left.code(), left.out().as_str()),
            (Some(27), ""),
            "{}",
            broker.name()
        );
    }
}
