//! The expected bytes are what `mosquitto_sub` 2.0.11 printed for the same
//! messages and formats.

use chrono::TimeZone;
use mqtt_tokio::mqtt_client::mqtt_session::mqtt_codec::{Str, TopicName};
use mqtt_tokio::QoS;

use super::*;

fn message(topic: &str, payload: &str) -> Message {
    Message::new(
        TopicName::try_from(topic).unwrap(),
        payload.as_bytes().to_vec(),
        QoS::AtMostOnce,
        false,
    )
}

fn printer(verbose: bool, format: Option<&str>, no_newline: bool) -> Result<Printer, Failure> {
    Printer::new(&OutputArgs {
        verbose,
        format: format.map(str::to_owned),
        no_newline,
        no_retained: false,
        timeout: None,
    })
}

fn render(p: &Printer, m: &Message) -> String {
    let now = Local.timestamp_opt(1_796_640_615, 854_621_447).unwrap();
    let r = Received {
        message: m.clone(),
        subscription_identifiers: Vec::new(),
        expiry_interval: None,
        packet_id: None,
    };
    String::from_utf8(p.render(&r, now)).unwrap()
}

#[test]
fn verbose_prints_topic_and_payload_and_null_for_an_empty_one() {
    let p = printer(true, None, false).unwrap();
    assert_eq!(
        render(&p, &message("a/b", "hello world")),
        "a/b hello world\n"
    );
    assert_eq!(render(&p, &message("a/c", "")), "a/c (null)\n");
    let p = printer(true, None, true).unwrap();
    assert_eq!(render(&p, &message("a/c", "")), "");
    assert_eq!(render(&p, &message("a/b", "x")), "a/b x");
}

#[test]
fn payload_only_prints_nothing_for_an_empty_payload() {
    let p = printer(false, None, false).unwrap();
    assert_eq!(render(&p, &message("a", "")), "");
    assert_eq!(render(&p, &message("a", "x")), "x\n");
}

#[test]
fn widths_pad_and_cut_as_mosquitto_does() {
    let f = "[%10t][%-10t][%3.3t][%5l][%05l][%-5l][%8p][%-8p][%2p][%8x][%08x][%2x][%3.1t][%5q][%5r][%.2t]";
    let p = printer(false, Some(f), false).unwrap();
    assert_eq!(
        render(&p, &message("g/a", "hey")),
        "[       g/a][g/a       ][g/a][    3][00003][3    ][     hey][hey     ][he][      68][00000068][68][  g][0][0][g/]\n"
    );
    assert_eq!(
        render(&p, &message("g/abcdefghijkl", "longer payload")),
        "[g/abcdefghijkl][g/abcdefghijkl][g/a][   14][00014][14   ][longer p][longer p][lo][6c6f6e67][6c6f6e67][6c][  g][0][0][g/]\n"
    );
}

#[test]
fn properties_times_and_json_print_as_mosquitto_does() {
    let mut m = message("f/a", "héllo \"w\"");
    m.qos = QoS::AtLeastOnce;
    m.props.content_type = Some(Str::from_static("text/plain"));
    m.props.response_topic = Some(TopicName::from_static("resp/x"));
    m.props.correlation_data = Some("abc".into());
    m.props.payload_format_indicator = Some(PayloadFormat::Utf8);
    m.props.user_properties = vec![
        (Str::from_static("k1"), Str::from_static("v1")),
        (Str::from_static("k2"), Str::from_static("v2")),
    ];
    let p = printer(false, Some("C=%C D=%D E=%E F=%F R=%R P=%P U=%U %j"), false).unwrap();
    let now = Local.timestamp_opt(1_796_640_615, 854_621_447).unwrap();
    let r = Received {
        message: m,
        subscription_identifiers: Vec::new(),
        expiry_interval: Some(100),
        packet_id: Some(1),
    };
    let tst = now.format("%Y-%m-%dT%H:%M:%S.854621Z%z");
    assert_eq!(
        String::from_utf8(p.render(&r, now)).unwrap(),
        format!(
            "C=text/plain D=abc E=100 F=1 R=resp/x P=k1:v1 k2:v2 U=1796640615.854621447 \
             {{\"tst\":\"{tst}\",\"topic\":\"f/a\",\"qos\":1,\"retain\":0,\"payloadlen\":10,\"mid\":1,\
             \"properties\":{{\"payload-format-indicator\":1,\"message-expiry-interval\":100,\
             \"response-topic\":\"resp/x\",\"correlation-data\":\"abc\",\"content-type\":\"text/plain\",\
             \"user-properties\":{{\"k1\":\"v1\",\"k2\":\"v2\"}}}},\"payload\":\"héllo \\\"w\\\"\"}}\n"
        )
    );
}

#[test]
fn escapes_and_time_sequences() {
    let p = printer(false, Some("%t\\t%p\\\\\\0@@@Y @N"), true).unwrap();
    let now = Local.timestamp_opt(1_796_640_615, 854_621_447).unwrap();
    let year = now.format("%Y").to_string();
    assert_eq!(
        render(&p, &message("a", "b")),
        format!("a\tb\\\0@{year} 854621447")
    );
}

#[test]
fn bad_formats_are_refused_with_mosquittos_words() {
    let refusal = |f: &str| printer(false, Some(f), false).unwrap_err().message;
    assert_eq!(refusal("%i"), "Error: Invalid format specifier 'i'.");
    for incomplete in ["%", "a%", "%5", "@", "x@", "%-", "%."] {
        assert_eq!(refusal(incomplete), "Error: Incomplete format specifier.");
    }
    assert_eq!(refusal("x\\"), "Error: Incomplete escape specifier.");
    assert_eq!(refusal("\\q"), "Error: Invalid escape specifier 'q'.");
    assert!(refusal("%A").contains("not supported"));
}
