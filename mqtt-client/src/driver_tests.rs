//! The driver against a `Connection<Server>` back to back, on a virtual
//! clock: requests answered by packet identifier, commands held across
//! reconnections, QoS 0 completion on write, the ends of a client.

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use mqtt_session::mqtt_codec::{ConnAckProps, ProtocolVersion, QoS, Str, TopicFilter, TopicName};
use mqtt_session::{DeliveryOptions, Initiator, Server, ServerConfig, ServerEvent};

use super::*;

/// ReplySender land in shared slots the test reads.
struct Slots;

type Slot<T> = Rc<RefCell<Option<Result<T, ClientError>>>>;

impl ReplySender for Slots {
    type Reply<T> = Slot<T>;
    type ConnectError = &'static str;

    fn send<T>(reply: Slot<T>, result: Result<T, ClientError>) {
        *reply.borrow_mut() = Some(result);
    }
}

fn slot<T>() -> Slot<T> {
    Rc::new(RefCell::new(None))
}

fn taken<T>(s: &Slot<T>) -> Option<Result<T, ClientError>> {
    s.borrow_mut().take()
}

fn topic(t: &'static str) -> TopicName {
    TopicName::from_static(t)
}

fn filter(f: &'static str) -> TopicFilter {
    TopicFilter::try_from(f).unwrap()
}

fn publish(t: &'static str, qos: QoS) -> (Command<Slots>, Slot<ReasonCode>) {
    let reply = slot();
    let message = Message::new(topic(t), "x", qos, false);
    let command = Command::Publish {
        message,
        reply: reply.clone(),
    };
    (command, reply)
}

fn subscribe(f: &'static str) -> (Command<Slots>, Slot<Vec<SubscribeResult>>) {
    let reply = slot();
    let command = Command::Subscribe {
        filters: vec![(filter(f), SubscriptionOptions::new(QoS::ExactlyOnce))],
        identifier: None,
        reply: reply.clone(),
    };
    (command, reply)
}

fn disconnect() -> (Command<Slots>, Slot<()>) {
    let reply = slot();
    let command = Command::Disconnect {
        reason: ReasonCode::NORMAL_DISCONNECTION,
        props: DisconnectProps::default(),
        reply: reply.clone(),
    };
    (command, reply)
}

/// What the server side does with what it receives.
#[derive(Default)]
struct Policy {
    /// Refuse CONNECT with this reason.
    refuse: Option<ReasonCode>,
    /// Leave QoS 1/2 publishes and SUBSCRIBE unanswered.
    no_acks: bool,
    /// SUBACK with this code (default: the QoS asked for).
    suback: Option<ReasonCode>,
}

/// A driver and a server connection joined by two byte buffers.
struct Net {
    driver: ClientDriver<Slots>,
    server: Connection<Server>,
    policy: Policy,
    /// The server's copy of the session, for a resumption.
    stored: Option<Session>,
    now: Instant,
    /// Whether the last connection's CONNECT asked for a clean start.
    clean_start: bool,
    /// Publishes the server received, in order.
    received: Vec<Message>,
}

impl Net {
    fn new(config: ClientConfig, backoff: Option<Backoff>) -> Net {
        let now = Instant::ZERO;
        let mut driver = ClientDriver::new(config, backoff);
        driver.start(now);
        Net {
            driver,
            server: Connection::<Server>::new(ServerConfig::default(), now),
            policy: Policy::default(),
            stored: None,
            now,
            clean_start: true,
            received: Vec::new(),
        }
    }

    fn v5() -> Net {
        let mut config = ClientConfig::new(ProtocolVersion::V5, Str::from_static("c"));
        config.session_expiry_interval = 600;
        Net::new(config, Some(Backoff::default()))
    }

    /// Moves bytes both ways until nothing moves.
    fn exchange(&mut self) {
        for _ in 0..100 {
            let mut up = BytesMut::new();
            let _ = self.driver.poll_transmit(self.now, &mut up);
            let moved_up = !up.is_empty();
            if moved_up {
                self.server.handle_read(self.now, &mut up);
                self.driver.handle_written();
            }
            self.serve();
            let mut down = BytesMut::new();
            let _ = self.server.poll_transmit(self.now, &mut down);
            let moved_down = !down.is_empty();
            if moved_down {
                self.driver.handle_read(self.now, &mut down);
            }
            if !moved_up && !moved_down {
                return;
            }
        }
        panic!("the pair never went quiet");
    }

    fn serve(&mut self) {
        while let Some(ev) = self.server.poll_event() {
            match ev {
                ServerEvent::Connect(c) => {
                    self.clean_start = c.clean_start;
                    match self.policy.refuse {
                        Some(reason) => self.server.reject(self.now, reason),
                        None => {
                            let session = self.stored.take();
                            self.server
                                .accept(self.now, session, ConnAckProps::default())
                                .unwrap();
                        }
                    }
                }
                ServerEvent::Publish { msg, id } => {
                    self.received.push(msg);
                    if let Some(id) = id.filter(|_| !self.policy.no_acks) {
                        self.server.ack(id, ReasonCode::SUCCESS).unwrap();
                    }
                }
                ServerEvent::Subscribe { .. } if self.policy.no_acks => {}
                ServerEvent::Subscribe { id, filters, .. } => {
                    let codes: Vec<ReasonCode> = filters
                        .iter()
                        .map(|(_, o)| self.policy.suback.unwrap_or(ReasonCode(o.qos as u8)))
                        .collect();
                    self.server.suback(id, &codes).unwrap();
                }
                ServerEvent::Unsubscribe { id, filters } => {
                    let codes = vec![ReasonCode::SUCCESS; filters.len()];
                    self.server.unsuback(id, &codes).unwrap();
                }
                _ => {}
            }
        }
    }

    /// The network fails under both sides; the server keeps the session.
    fn cut(&mut self) -> AfterConnection {
        self.driver.handle_eof(self.now);
        self.server.handle_eof(self.now);
        while self.server.poll_event().is_some() {}
        let server = core::mem::replace(
            &mut self.server,
            Connection::<Server>::new(ServerConfig::default(), self.now),
        );
        self.stored = server.detach();
        self.driver.connection_ended(self.now)
    }

    fn events(&mut self) -> Vec<Event<&'static str>> {
        core::iter::from_fn(|| self.driver.poll_event()).collect()
    }
}

#[test]
fn commands_before_connack_are_held_then_answered_by_packet_id() {
    let mut net = Net::v5();
    let (p1, r1) = publish("a/1", QoS::AtLeastOnce);
    let (p0, r0) = publish("a/0", QoS::AtMostOnce);
    let (sub, rs) = subscribe("s/#");
    let now = net.now;
    net.driver.command(now, p1);
    net.driver.command(now, p0);
    net.driver.command(now, sub);
    assert!(!net.driver.is_connected());
    assert!(taken(&r1).is_none() && taken(&r0).is_none());
    net.exchange();
    assert!(net.driver.is_connected() && net.driver.has_connected());
    assert_eq!(taken(&r1), Some(Ok(ReasonCode::SUCCESS)));
    assert_eq!(taken(&r0), Some(Ok(ReasonCode::SUCCESS)));
    assert_eq!(taken(&rs), Some(Ok(vec![Ok(QoS::ExactlyOnce)])));
    let topics: Vec<&str> = net.received.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(topics, ["a/1", "a/0"]);
    assert!(matches!(
        net.events().as_slice(),
        [Event::Connected {
            session_present: false,
            ..
        }]
    ));

    // A refused filter comes back as its reason code; UNSUBSCRIBE's codes as they are.
    net.policy.suback = Some(ReasonCode::NOT_AUTHORIZED);
    let (sub, rs) = subscribe("t/#");
    net.driver.command(now, sub);
    let ru = slot();
    net.driver.command(
        now,
        Command::Unsubscribe {
            filters: vec![filter("s/#")],
            reply: ru.clone(),
        },
    );
    net.exchange();
    assert_eq!(taken(&rs), Some(Ok(vec![Err(ReasonCode::NOT_AUTHORIZED)])));
    assert_eq!(taken(&ru), Some(Ok(vec![ReasonCode::SUCCESS])));
}

#[test]
fn qos0_completes_only_once_its_bytes_are_written() {
    let mut net = Net::v5();
    net.exchange();
    let (p0, r0) = publish("a/0", QoS::AtMostOnce);
    net.driver.command(net.now, p0);
    let mut wbuf = BytesMut::new();
    assert!(net.driver.poll_transmit(net.now, &mut wbuf) > 0);
    assert!(taken(&r0).is_none(), "not written yet");
    net.driver.handle_written();
    assert_eq!(taken(&r0), Some(Ok(ReasonCode::SUCCESS)));
}

#[test]
fn messages_reach_the_application_as_events() {
    let mut net = Net::v5();
    net.exchange();
    let _ = net.events();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let msg = Message::new(topic("d/1"), "hi", qos, false);
        net.server
            .deliver(net.now, msg, DeliveryOptions::new(qos))
            .unwrap();
        net.exchange();
        assert!(net.driver.has_events());
        match net.events().as_slice() {
            [Event::Message {
                message, packet_id, ..
            }] => {
                assert_eq!(&message.payload[..], b"hi");
                // QoS 1 and 2 name the packet identifier they came with.
                assert_eq!(packet_id.is_some(), qos != QoS::AtMostOnce);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_lost_connection_resumes_the_session_and_completes_what_was_in_flight() {
    let mut net = Net::v5();
    net.exchange();
    let _ = net.events();
    net.policy.no_acks = true;
    let (p1, r1) = publish("a/1", QoS::AtLeastOnce);
    let (sub, rs) = subscribe("s/#");
    net.driver.command(net.now, p1);
    net.driver.command(net.now, sub);
    net.exchange();
    assert!(taken(&r1).is_none());

    assert!(matches!(net.cut(), AfterConnection::Reconnect));
    // SUBACK cannot survive the connection; the publish can.
    assert_eq!(taken(&rs), Some(Err(ClientError::ConnectionLost)));
    assert!(taken(&r1).is_none());
    assert!(matches!(
        net.events().as_slice(),
        [Event::Disconnected {
            reconnecting: true,
            close: Close {
                initiator: Initiator::Transport,
                ..
            }
        }]
    ));
    assert!(net.driver.next_delay(0) > Duration::ZERO);
    // Meanwhile a command waits for the next connection.
    let (p2, r2) = publish("a/2", QoS::AtLeastOnce);
    net.driver.command(net.now, p2);
    net.driver.reconnect_failed("refused once");
    assert!(matches!(
        net.events().as_slice(),
        [Event::ReconnectFailed {
            error: "refused once"
        }]
    ));

    net.policy.no_acks = false;
    net.driver.start(net.now);
    net.exchange();
    assert!(!net.clean_start, "the session is resumed");
    assert!(matches!(
        net.events().as_slice(),
        [Event::Connected {
            session_present: true,
            ..
        }]
    ));
    assert_eq!(taken(&r1), Some(Ok(ReasonCode::SUCCESS)));
    assert_eq!(taken(&r2), Some(Ok(ReasonCode::SUCCESS)));
    let resent = net.received.iter().filter(|m| m.topic == "a/1").count();
    assert_eq!(resent, 2, "sent, then resent after the reconnection");
}

#[test]
fn without_reconnection_a_lost_connection_ends_the_client() {
    let config = ClientConfig::new(ProtocolVersion::V311, Str::from_static("c"));
    let mut net = Net::new(config, None);
    net.exchange();
    net.policy.no_acks = true;
    let (p1, r1) = publish("a/1", QoS::ExactlyOnce);
    net.driver.command(net.now, p1);
    net.exchange();
    assert!(matches!(net.cut(), AfterConnection::Finished));
    assert_eq!(taken(&r1), Some(Err(ClientError::ConnectionLost)));
    assert!(net.driver.is_finished());
    let events = net.events();
    assert!(matches!(
        events.last(),
        Some(Event::Disconnected {
            reconnecting: false,
            ..
        })
    ));
    let (p2, r2) = publish("a/2", QoS::AtMostOnce);
    net.driver.command(net.now, p2);
    assert_eq!(taken(&r2), Some(Err(ClientError::Disconnected)));
}

#[test]
fn a_refused_first_connection_reports_the_close_and_fails_held_commands() {
    let mut net = Net::v5();
    net.policy.refuse = Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    let (p1, r1) = publish("a/1", QoS::AtLeastOnce);
    net.driver.command(net.now, p1);
    net.exchange();
    assert!(net.driver.is_closed());
    match net.driver.connection_ended(net.now) {
        AfterConnection::Failed(Some(close)) => {
            assert_eq!(close.reason, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
            assert_eq!(close.initiator, Initiator::Peer);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(taken(&r1), Some(Err(ClientError::Disconnected)));
}

#[test]
fn disconnect_completes_when_the_connection_ends() {
    let mut net = Net::v5();
    net.exchange();
    net.policy.no_acks = true;
    let (p1, r1) = publish("a/1", QoS::AtLeastOnce);
    net.driver.command(net.now, p1);
    net.exchange();
    let (d, rd) = disconnect();
    net.driver.command(net.now, d);
    assert!(net.driver.is_disconnecting());
    // Later commands are refused at once.
    let (p2, r2) = publish("a/2", QoS::AtMostOnce);
    net.driver.command(net.now, p2);
    assert_eq!(taken(&r2), Some(Err(ClientError::Disconnected)));
    net.exchange();
    assert!(net.driver.is_closed());
    assert!(taken(&rd).is_none());
    assert!(matches!(
        net.driver.connection_ended(net.now),
        AfterConnection::Finished
    ));
    assert_eq!(taken(&rd), Some(Ok(())));
    assert_eq!(taken(&r1), Some(Err(ClientError::Disconnected)));
    assert!(
        !net.events()
            .iter()
            .any(|e| matches!(e, Event::Disconnected { .. })),
        "an asked-for disconnect is no event"
    );
    // A disconnect once the client is done: it already is.
    let (d, rd) = disconnect();
    net.driver.command(net.now, d);
    assert_eq!(taken(&rd), Some(Err(ClientError::Disconnected)));
}

#[test]
fn dropped_handles_disconnect_normally() {
    let mut net = Net::v5();
    net.exchange();
    net.driver.handles_dropped(net.now);
    net.exchange();
    assert!(net.driver.is_closed());
    assert!(matches!(
        net.driver.connection_ended(net.now),
        AfterConnection::Finished
    ));
}

#[test]
fn held_commands_are_bounded_and_fail_when_the_client_stops() {
    let mut config = ClientConfig::new(ProtocolVersion::V5, Str::from_static("c"));
    config.limits.max_queued = 1;
    let mut net = Net::new(config, Some(Backoff::default()));
    net.exchange();
    assert!(matches!(net.cut(), AfterConnection::Reconnect));
    let (p1, r1) = publish("a/1", QoS::AtLeastOnce);
    let (p2, r2) = publish("a/2", QoS::AtLeastOnce);
    net.driver.command(net.now, p1);
    net.driver.command(net.now, p2);
    assert_eq!(
        taken(&r2),
        Some(Err(ClientError::Usage(UsageError::QueueFull { limit: 1 })))
    );
    // The application disconnects while no connection is up.
    let (d, rd) = disconnect();
    net.driver.command(net.now, d);
    assert!(net.driver.wants_to_stop());
    net.driver.stop();
    assert_eq!(taken(&r1), Some(Err(ClientError::Disconnected)));
    assert_eq!(taken(&rd), Some(Ok(())));
    assert!(net.driver.is_finished());
}

#[test]
fn usage_errors_answer_at_once() {
    let mut net = Net::v5();
    net.exchange();
    let ru = slot();
    net.driver.command(
        net.now,
        Command::Unsubscribe {
            filters: Vec::new(),
            reply: ru.clone(),
        },
    );
    assert!(matches!(taken(&ru), Some(Err(ClientError::Usage(_)))));
    let (sub, _) = subscribe("s/#");
    assert!(alloc::format!("{sub:?}").contains("Subscribe"));
    assert!(alloc::format!("{:?}", net.driver).contains("ClientDriver"));
}

fn ack(token: AckToken) -> (Command<Slots>, Slot<()>) {
    let reply = slot();
    let command = Command::Ack {
        token,
        reply: reply.clone(),
    };
    (command, reply)
}

/// The ack tokens of the messages among `events`.
fn tokens(events: &[Event<&'static str>]) -> Vec<Option<AckToken>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { ack, .. } => Some(*ack),
            _ => None,
        })
        .collect()
}

fn manual_net() -> Net {
    let mut config = ClientConfig::new(ProtocolVersion::V5, Str::from_static("c"));
    config.session_expiry_interval = 600;
    config.manual_acks = true;
    let mut net = Net::new(config, Some(Backoff::default()));
    net.exchange();
    let _ = net.events();
    net
}

fn deliver(net: &mut Net, qos: QoS) {
    let msg = Message::new(topic("d/1"), "hi", qos, false);
    net.server
        .deliver(net.now, msg, DeliveryOptions::new(qos))
        .unwrap();
}

/// The server's messages to the client still waiting for their answer.
fn unanswered(net: &Net) -> usize {
    net.server.session().map_or(0, |s| s.inflight())
}

#[test]
fn manual_acks_answer_the_broker_only_when_the_application_acks_in_order() {
    let mut net = manual_net();
    deliver(&mut net, QoS::AtLeastOnce);
    deliver(&mut net, QoS::ExactlyOnce);
    deliver(&mut net, QoS::AtMostOnce);
    net.exchange();
    let got = tokens(&net.events());
    assert_eq!(got.len(), 3);
    let (first, second) = (got[0].unwrap(), got[1].unwrap());
    assert!(got[2].is_none(), "QoS 0 has nothing to acknowledge");
    assert_eq!(unanswered(&net), 2);

    // The second first: it waits for the first [MQTT-4.6.0-2].
    let (c2, r2) = ack(second);
    net.driver.command(net.now, c2);
    net.exchange();
    assert_eq!(taken(&r2), Some(Ok(())));
    assert_eq!(unanswered(&net), 2);
    let (c1, r1) = ack(first);
    net.driver.command(net.now, c1);
    net.exchange();
    assert_eq!(taken(&r1), Some(Ok(())));
    assert_eq!(unanswered(&net), 0, "PUBACK and the whole QoS 2 flow");

    // Twice: a typed error, nothing sent.
    let (again, r) = ack(first);
    net.driver.command(net.now, again);
    assert_eq!(taken(&r), Some(Err(ClientError::NotAwaitingAck)));
}

#[test]
fn without_manual_acks_messages_carry_no_token() {
    let mut net = Net::v5();
    net.exchange();
    let _ = net.events();
    deliver(&mut net, QoS::AtLeastOnce);
    net.exchange();
    assert_eq!(tokens(&net.events()), [None]);
    assert_eq!(unanswered(&net), 0);
}

#[test]
fn an_unacknowledged_message_comes_again_after_reconnection_and_its_old_token_is_stale() {
    let mut net = manual_net();
    deliver(&mut net, QoS::AtLeastOnce);
    net.exchange();
    let old = tokens(&net.events())[0].unwrap();
    assert!(matches!(net.cut(), AfterConnection::Reconnect));
    let _ = net.events();
    // Between connections an acknowledgement has no connection to go to.
    let (c, r) = ack(old);
    net.driver.command(net.now, c);
    assert_eq!(taken(&r), Some(Err(ClientError::StaleAck)));

    net.driver.start(net.now);
    net.exchange();
    let events = net.events();
    assert!(matches!(
        events.first(),
        Some(Event::Connected {
            session_present: true,
            ..
        })
    ));
    let new = tokens(&events);
    assert_eq!(new.len(), 1, "the broker sent it again: {events:?}");
    let new = new[0].unwrap();
    assert_eq!(new.packet_id(), old.packet_id());
    assert_ne!(new, old);
    let (c, r) = ack(old);
    net.driver.command(net.now, c);
    assert_eq!(taken(&r), Some(Err(ClientError::StaleAck)));
    assert_eq!(unanswered(&net), 1);
    let (c, r) = ack(new);
    net.driver.command(net.now, c);
    net.exchange();
    assert_eq!(taken(&r), Some(Ok(())));
    assert_eq!(unanswered(&net), 0);
}
