//! The topic examples of MQTT 3.1.1 and 5.0 (sections 4.7 and 4.8.2), run
//! through the codec's validation, the subscription index and the retained
//! message store.

use mqtt_codec::bytes::Bytes;
use mqtt_codec::{QoS, SubscriptionOptions, TopicError, TopicFilter, TopicName};
use mqtt_router::{Instant, Matches, Retained, Subscription, SubscriptionIndex};

fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn topic(s: &str) -> TopicName {
    TopicName::try_from(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// Does `f` match `t`, according to the index and to the retained store? Both
/// must agree with the codec's reference matcher too.
fn matches(f: &str, t: &str) -> bool {
    let (f, t) = (filter(f), topic(t));
    let mut index = SubscriptionIndex::<u8>::new(1);
    let sub = Subscription::new(SubscriptionOptions::new(QoS::AtLeastOnce), None);
    assert!(index.insert(1, &f, sub).unwrap().is_new());
    let mut m = Matches::new();
    index.match_topic(&t, None, &mut m);
    let by_index = if f.is_shared() {
        m.shared().len() == 1
    } else {
        m.subscribers().len() == 1
    };

    let mut retained = Retained::<Bytes>::new(1);
    retained
        .store(Instant::ZERO, &t, Bytes::from_static(b"x"), None)
        .unwrap();
    let mut by_retained = false;
    retained.for_each_match(Instant::ZERO, &f, |r| {
        assert_eq!(r.topic, t.as_str());
        by_retained = true;
    });

    assert_eq!(by_index, f.matches(&t), "index vs reference: {f} / {t}");
    assert_eq!(by_retained, by_index, "retained vs index: {f} / {t}");
    by_index
}

fn invalid(s: &str) -> TopicError {
    TopicFilter::<Bytes>::try_from(s).expect_err(s)
}

// Section 4.7.1.2, multi-level wildcard (same text in 3.1.1 and 5.0).
#[test]
fn spec_4_7_1_2_multi_level_wildcard() {
    for t in [
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
        "sport/tennis/player1/score/wimbledon",
    ] {
        assert!(matches("sport/tennis/player1/#", t), "{t}");
    }
    // "sport/#" also matches the singular "sport", since '#' includes the parent level.
    assert!(matches("sport/#", "sport"));
    // "#" is valid and receives every (non-'$') message.
    assert!(matches("#", "sport/tennis/player1"));
    assert!(matches("#", "/"));
    assert!(matches("sport/tennis/#", "sport/tennis"));
    assert_eq!(
        invalid("sport/tennis#"),
        TopicError::MisplacedMultiLevelWildcard
    );
    assert_eq!(
        invalid("sport/tennis/#/ranking"),
        TopicError::MisplacedMultiLevelWildcard
    );
}

// Section 4.7.1.3, single-level wildcard.
#[test]
fn spec_4_7_1_3_single_level_wildcard() {
    assert!(matches("sport/tennis/+", "sport/tennis/player1"));
    assert!(matches("sport/tennis/+", "sport/tennis/player2"));
    assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
    // "sport/+" does not match "sport" but does match "sport/".
    assert!(!matches("sport/+", "sport"));
    assert!(matches("sport/+", "sport/"));
    for valid in ["+", "+/tennis/#", "sport/+/player1"] {
        assert!(TopicFilter::<Bytes>::try_from(valid).is_ok(), "{valid}");
    }
    assert!(matches("+/tennis/#", "sport/tennis/player1/ranking"));
    assert!(matches("sport/+/player1", "sport/tennis/player1"));
    assert_eq!(invalid("sport+"), TopicError::MisplacedSingleLevelWildcard);
    // "/finance" matches "+/+" and "/+", but not "+".
    assert!(matches("+/+", "/finance"));
    assert!(matches("/+", "/finance"));
    assert!(!matches("+", "/finance"));
}

// Section 4.7.2, topics beginning with '$' [MQTT-4.7.2-1].
#[test]
fn mqtt_4_7_2_1_wildcards_at_the_root_do_not_match_dollar_topics() {
    assert!(!matches("#", "$SYS/broker/clients/connected"));
    assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
    assert!(matches("$SYS/#", "$SYS/broker/clients/connected"));
    assert!(matches("$SYS/#", "$SYS"));
    assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    assert!(!matches("+", "$SYS"));
    assert!(!matches("+/#", "$SYS/x"));
    // Only the first level counts: '$' further down is an ordinary character.
    assert!(matches("a/+", "a/$b"));
    assert!(matches("a/#", "a/$b/c"));
    // The same wildcard rule holds for the filter of a shared subscription.
    assert!(!matches("$share/g/#", "$SYS/x"));
    assert!(matches("$share/g/$SYS/#", "$SYS/x"));
}

// Section 4.7.3, topic semantics and usage.
#[test]
fn spec_4_7_3_topic_semantics() {
    // Case-sensitive: "ACCOUNTS" and "Accounts" are different topics.
    assert!(!matches("ACCOUNTS", "Accounts"));
    assert!(matches("Accounts", "Accounts"));
    // Spaces are allowed: "Accounts payable" is a valid topic.
    assert!(matches("Accounts payable", "Accounts payable"));
    // A leading '/' makes a distinct topic: "/finance" is not "finance".
    assert!(!matches("finance", "/finance"));
    assert!(!matches("/finance", "finance"));
    // "/" is a valid topic name with two empty levels [MQTT-4.7.3-1] only
    // forbids the empty string.
    assert!(matches("/", "/"));
    assert!(matches("+/+", "/"));
    assert!(!matches("+", "/"));
    assert!(matches("a//b", "a//b"));
    assert!(matches("a/+/b", "a//b"));
    assert_eq!(invalid(""), TopicError::Empty);
    assert_eq!(
        TopicName::<Bytes>::try_from("").unwrap_err(),
        TopicError::Empty
    );
    assert_eq!(
        TopicName::<Bytes>::try_from("a/+").unwrap_err(),
        TopicError::WildcardInName
    );
}

// 5.0 section 4.8.2, shared subscriptions.
#[test]
fn spec_4_8_2_shared_subscriptions() {
    assert!(matches(
        "$share/consumer1/sport/tennis/+",
        "sport/tennis/player1"
    ));
    assert!(!matches("$share/consumer1/sport/tennis/+", "sport/tennis"));
    // "$share/consumer1//finance" is the filter "/finance".
    assert!(matches("$share/consumer1//finance", "/finance"));
    assert!(!matches("$share/consumer1//finance", "finance"));
    assert_eq!(invalid("$share//sport"), TopicError::InvalidShareName);
    assert_eq!(invalid("$share/a#/sport"), TopicError::InvalidShareName);
    assert_eq!(invalid("$share/consumer1"), TopicError::MissingSharedFilter);
    assert_eq!(
        invalid("$share/consumer1/"),
        TopicError::MissingSharedFilter
    );

    // Two groups on the same filter, plus an ordinary subscriber: one message
    // reaches one member of each group and the ordinary subscriber.
    let mut index = SubscriptionIndex::<u8>::new(3);
    let sub = Subscription::new(SubscriptionOptions::new(QoS::AtMostOnce), None);
    for (client, f) in [
        (1, "$share/consumer1/sport/tennis/+"),
        (2, "$share/consumer1/sport/tennis/+"),
        (3, "$share/consumer2/sport/tennis/+"),
        (4, "sport/tennis/+"),
    ] {
        index.insert(client, &filter(f), sub).unwrap();
    }
    let mut m = Matches::new();
    index.match_topic(&topic("sport/tennis/player1"), None, &mut m);
    let mut shared: Vec<u8> = m.shared().map(|d| d.client).collect();
    shared.sort_unstable();
    assert!(shared == [1, 3] || shared == [2, 3], "{shared:?}");
    assert_eq!(m.subscribers().map(|d| d.client).collect::<Vec<_>>(), [4]);
}

/// Topics may have tens of thousands of levels; nothing here recurses, so
/// neither matching nor insertion nor a '#' lookup can exhaust the stack.
#[test]
fn deep_topics_do_not_exhaust_the_stack() {
    let deep = "/".repeat(60_000);
    let t = topic(&deep);
    let mut index = SubscriptionIndex::<u8>::new(1);
    let sub = Subscription::new(SubscriptionOptions::new(QoS::AtMostOnce), None);
    index.insert(1, &filter(&deep), sub).unwrap();
    index
        .insert(2, &filter(&format!("{}#", "/".repeat(30_000))), sub)
        .unwrap();
    let mut m = Matches::new();
    index.match_topic(&t, None, &mut m);
    assert_eq!(m.subscribers().len(), 2);
    assert_eq!(index.remove_client(1) + index.remove_client(2), 2);

    let mut retained = Retained::<Bytes>::new(1);
    retained
        .store(Instant::ZERO, &t, Bytes::from_static(b"x"), None)
        .unwrap();
    let mut n = 0;
    retained.for_each_match(Instant::ZERO, &filter("#"), |r| {
        assert_eq!(r.topic.len(), deep.len());
        n += 1;
    });
    assert_eq!(n, 1);
}
