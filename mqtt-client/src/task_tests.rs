//! The connection task on a virtual clock, against a `Connection<Server>`
//! over an in-memory pipe: what `Client::connect` hears, requests answered,
//! events handed over under back-pressure, keep alive, reconnection with
//! backoff, the connect timeout.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::poll_fn;
use core::pin::Pin;

use mqtt_session::mqtt_codec::{ConnAckProps, QoS, ReasonCode, TopicName};
use mqtt_session::{
    ClientConfig, Connection, DeliveryOptions, Message, Server, ServerConfig, ServerEvent, Session,
};

use super::*;
use crate::driver::Event;
use crate::runtime::run;
use crate::{Backoff, ClientError, ClientOptions, OptionSetters};

/// What `Client::connect` or a reconnection attempt hears.
#[derive(Debug, PartialEq)]
enum Failure {
    Protocol(ConnectError),
    Io(&'static str),
}

impl From<ConnectError> for Failure {
    fn from(e: ConnectError) -> Self {
        Failure::Protocol(e)
    }
}

impl From<&'static str> for Failure {
    fn from(e: &'static str) -> Self {
        Failure::Io(e)
    }
}

/// ReplySender land in shared slots.
enum Slots {}

type Slot<T> = Rc<RefCell<Option<Result<T, ClientError>>>>;

impl ReplySender for Slots {
    type Reply<T> = Slot<T>;
    type ConnectError = Failure;

    fn send<T>(reply: Slot<T>, result: Result<T, ClientError>) {
        *reply.borrow_mut() = Some(result);
    }
}

fn taken<T>(slot: &Slot<T>) -> Option<Result<T, ClientError>> {
    slot.borrow_mut().take()
}

/// What an attempt to open a transport does.
#[derive(Debug, Clone, Copy)]
enum Open {
    /// Reaches the broker.
    Accept,
    /// Fails with this error.
    Fail(&'static str),
    /// Never finishes.
    Hang,
}

/// The broker, the pipe to it, the clock and the application, shared by
/// the task's runtime, transport and link.
struct World {
    now: u64,
    /// What the next attempts to open do (then: `Accept`).
    opens: VecDeque<Open>,
    opened: usize,
    server: Option<Connection<Server>>,
    /// The session the broker keeps between connections.
    stored: Option<Session>,
    refuse: Option<ReasonCode>,
    /// The broker never answers CONNECT.
    silent: bool,
    /// QoS 1/2 publishes stay unacknowledged.
    no_acks: bool,
    up: BytesMut,
    down: BytesMut,
    /// The broker's end of the stream is gone: reads end, writes fail.
    hung_up: bool,
    read_error: Option<&'static str>,
    client_closed: bool,
    /// Every byte the client wrote.
    sent: Vec<u8>,
    /// Publishes the broker received.
    received: Vec<Message>,
    /// How the broker saw each connection end.
    server_closes: Vec<Close>,
    // The application's side.
    commands: VecDeque<Command<Slots>>,
    handles_dropped: bool,
    /// How many events may wait for the application.
    room: usize,
    deaf: bool,
    events: Vec<Event<Failure>>,
    outcome: Option<Result<(), Failure>>,
}

impl World {
    fn new() -> Rc<RefCell<World>> {
        Rc::new(RefCell::new(World {
            now: 0,
            opens: VecDeque::new(),
            opened: 0,
            server: None,
            stored: None,
            refuse: None,
            silent: false,
            no_acks: false,
            up: BytesMut::new(),
            down: BytesMut::new(),
            hung_up: false,
            read_error: None,
            client_closed: false,
            sent: Vec::new(),
            received: Vec::new(),
            server_closes: Vec::new(),
            commands: VecDeque::new(),
            handles_dropped: false,
            room: usize::MAX,
            deaf: false,
            events: Vec::new(),
            outcome: None,
        }))
    }

    fn instant(&self) -> Instant {
        Instant::from_millis(self.now)
    }

    fn open(&mut self) -> Open {
        let open = self.opens.pop_front().unwrap_or(Open::Accept);
        if let Open::Accept = open {
            self.opened += 1;
            self.server = Some(Connection::<Server>::new(
                ServerConfig::default(),
                self.instant(),
            ));
            self.up.clear();
            self.down.clear();
            self.hung_up = false;
            self.client_closed = false;
        }
        open
    }

    /// The broker takes what arrived, answers, and sends; true if any
    /// bytes moved.
    fn step(&mut self) -> bool {
        let now = self.instant();
        let Some(mut server) = self.server.take() else {
            return false;
        };
        let (up, down) = (self.up.len(), self.down.len());
        server.handle_read(now, &mut self.up);
        while let Some(event) = server.poll_event() {
            self.serve(&mut server, event);
        }
        let _ = server.poll_transmit(now, &mut self.down);
        let moved = self.up.len() != up || self.down.len() != down;
        self.server = Some(server);
        moved
    }

    fn serve(&mut self, server: &mut Connection<Server>, event: ServerEvent) {
        let now = self.instant();
        match event {
            ServerEvent::Connect(_) if self.silent => {}
            ServerEvent::Connect(_) => match self.refuse {
                Some(reason) => server.reject(now, reason),
                None => {
                    let session = self.stored.take();
                    server
                        .accept(now, session, ConnAckProps::default())
                        .unwrap();
                }
            },
            ServerEvent::Publish { msg, id } => {
                self.received.push(msg);
                if let Some(id) = id.filter(|_| !self.no_acks) {
                    server.ack(id, ReasonCode::SUCCESS).unwrap();
                }
            }
            ServerEvent::Subscribe { id, filters, .. } => {
                let codes: Vec<ReasonCode> = filters
                    .iter()
                    .map(|(_, o)| ReasonCode(o.qos as u8))
                    .collect();
                server.suback(id, &codes).unwrap();
            }
            ServerEvent::Closed(close) => self.server_closes.push(close),
            _ => {}
        }
    }

    /// The network fails under both ends; the broker keeps the session.
    fn cut(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.handle_eof(self.instant());
            while let Some(event) = server.poll_event() {
                if let ServerEvent::Closed(close) = event {
                    self.server_closes.push(close);
                }
            }
            self.stored = server.detach();
        }
        self.hung_up = true;
    }

    fn deliver(&mut self, topic: &'static str) {
        let now = self.instant();
        let message = Message::new(TopicName::from_static(topic), "m", QoS::AtLeastOnce, false);
        let server = self.server.as_mut().unwrap();
        server
            .deliver(now, message, DeliveryOptions::default())
            .unwrap();
    }

    fn publish(&mut self, topic: &'static str, qos: QoS) -> Slot<ReasonCode> {
        let reply = Slot::default();
        let message = Message::new(TopicName::from_static(topic), "x", qos, false);
        self.commands.push_back(Command::Publish {
            message,
            reply: reply.clone(),
        });
        reply
    }

    fn disconnect(&mut self) -> Slot<()> {
        let reply = Slot::default();
        self.commands.push_back(Command::Disconnect {
            reason: ReasonCode::NORMAL_DISCONNECTION,
            props: Default::default(),
            reply: reply.clone(),
        });
        reply
    }

    fn connected_events(&self) -> Vec<bool> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Connected {
                    session_present, ..
                } => Some(*session_present),
                _ => None,
            })
            .collect()
    }
}

struct Sim(Rc<RefCell<World>>);

struct Pipe(Rc<RefCell<World>>);

struct VirtualTimer {
    world: Rc<RefCell<World>>,
    deadline: Instant,
}

struct App(Rc<RefCell<World>>);

impl Runtime for Sim {
    type Transport = Pipe;
    type Timer = VirtualTimer;
    type Error = Failure;

    fn now(&self) -> Instant {
        self.0.borrow().instant()
    }

    fn timer(&self, deadline: Instant) -> VirtualTimer {
        VirtualTimer {
            world: self.0.clone(),
            deadline,
        }
    }

    fn open(
        &self,
        _address: &Address,
        _config: &ClientConfig,
    ) -> impl Future<Output = Result<Pipe, Failure>> {
        let open = self.0.borrow_mut().open();
        let world = self.0.clone();
        poll_fn(move |_| match open {
            Open::Accept => Poll::Ready(Ok(Pipe(world.clone()))),
            Open::Fail(e) => Poll::Ready(Err(Failure::Io(e))),
            Open::Hang => Poll::Pending,
        })
    }

    fn random(&self) -> u32 {
        0
    }

    fn nonce(&self, buf: &mut [u8]) -> bool {
        buf.fill(7);
        true
    }
}

impl Transport for Pipe {
    type Error = &'static str;

    fn poll_read(
        &mut self,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<usize, Self::Error>> {
        let mut w = self.0.borrow_mut();
        if let Some(e) = w.read_error.take() {
            return Poll::Ready(Err(e));
        }
        if !w.down.is_empty() {
            let n = buf.len().min(w.down.len());
            buf[..n].copy_from_slice(&w.down[..n]);
            w.down.advance(n);
            return Poll::Ready(Ok(n));
        }
        if w.hung_up {
            Poll::Ready(Ok(0))
        } else {
            Poll::Pending
        }
    }

    fn poll_write(&mut self, _: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, Self::Error>> {
        let mut w = self.0.borrow_mut();
        if w.hung_up {
            return Poll::Ready(Err("broken pipe"));
        }
        w.up.extend_from_slice(buf);
        w.sent.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.borrow_mut().client_closed = true;
        Poll::Ready(Ok(()))
    }
}

impl Timer for VirtualTimer {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    fn poll_expired(&mut self, _: &mut Context<'_>) -> Poll<()> {
        if self.world.borrow().instant() >= self.deadline {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Link for App {
    type ReplySender = Slots;
    type Error = Failure;

    fn poll_command(&mut self, _: &mut Context<'_>) -> Poll<Option<Command<Slots>>> {
        let mut w = self.0.borrow_mut();
        match w.commands.pop_front() {
            Some(command) => Poll::Ready(Some(command)),
            None if w.handles_dropped => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    fn poll_event_room(&mut self, _: &mut Context<'_>) -> Poll<bool> {
        let w = self.0.borrow();
        if w.deaf {
            Poll::Ready(false)
        } else if w.events.len() < w.room {
            Poll::Ready(true)
        } else {
            Poll::Pending
        }
    }

    fn send_event(&mut self, event: Event<Failure>) {
        self.0.borrow_mut().events.push(event);
    }

    fn connected(&mut self, outcome: Result<(), Failure>) {
        self.0.borrow_mut().outcome = Some(outcome);
    }
}

/// Polls the task until `done` holds (false) or the task ends (true),
/// letting the broker answer between polls and moving the clock 10 ms
/// whenever nothing moves.
fn drive<F: Future<Output = ()>>(
    world: &Rc<RefCell<World>>,
    task: &mut Pin<&mut F>,
    done: impl Fn(&World) -> bool,
) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..200_000 {
        if task.as_mut().poll(&mut cx).is_ready() {
            // The broker takes the last bytes.
            world.borrow_mut().step();
            return true;
        }
        let mut w = world.borrow_mut();
        if done(&w) {
            return false;
        }
        if !w.step() {
            w.now += 10;
        }
    }
    panic!("the task never got there");
}

fn options() -> ClientOptions {
    ClientOptions::new("mqtt://broker")
        .unwrap()
        .client_id("c")
        .session_expiry(600)
}

fn client_task(world: &Rc<RefCell<World>>, options: ClientOptions) -> impl Future<Output = ()> {
    let parts = options.into_parts().unwrap();
    run(Sim(world.clone()), App(world.clone()), parts)
}

#[test]
fn the_first_connack_is_reported_then_requests_are_answered_until_the_handles_go() {
    let world = World::new();
    let mut task = pin!(client_task(&world, options()));
    // Given before CONNACK: held for it.
    let r1 = world.borrow_mut().publish("a/1", QoS::AtLeastOnce);
    assert!(!drive(&world, &mut task, |_| r1.borrow().is_some()));
    assert_eq!(world.borrow().outcome, Some(Ok(())));
    assert_eq!(taken(&r1), Some(Ok(ReasonCode::SUCCESS)));
    let r0 = world.borrow_mut().publish("a/0", QoS::AtMostOnce);
    assert!(!drive(&world, &mut task, |_| r0.borrow().is_some()));
    assert_eq!(taken(&r0), Some(Ok(ReasonCode::SUCCESS)));
    assert_eq!(world.borrow().connected_events(), [false]);

    // Every handle dropped: DISCONNECT, the transport closed, the task done.
    world.borrow_mut().handles_dropped = true;
    assert!(drive(&world, &mut task, |_| false));
    let w = world.borrow();
    assert!(w.client_closed);
    let topics: Vec<&str> = w.received.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(topics, ["a/1", "a/0"]);
    assert!(
        matches!(w.server_closes.as_slice(), [close] if close.initiator == Initiator::Peer
            && close.reason == ReasonCode::NORMAL_DISCONNECTION),
        "{:?}",
        w.server_closes
    );
}

#[test]
fn a_refused_first_connection_reports_the_brokers_reason() {
    let world = World::new();
    world.borrow_mut().refuse = Some(ReasonCode::NOT_AUTHORIZED);
    let mut task = pin!(client_task(&world, options()));
    assert!(drive(&world, &mut task, |_| false));
    assert!(matches!(
        world.borrow().outcome,
        Some(Err(Failure::Protocol(ConnectError::Refused { reason, .. })))
            if reason == ReasonCode::NOT_AUTHORIZED
    ));
}

#[test]
fn an_open_that_never_finishes_fails_at_the_connect_timeout() {
    let world = World::new();
    world.borrow_mut().opens.push_back(Open::Hang);
    let timeout = Duration::from_secs(2);
    let mut task = pin!(client_task(&world, options().connect_timeout(timeout)));
    assert!(drive(&world, &mut task, |_| false));
    let w = world.borrow();
    assert_eq!(
        w.outcome,
        Some(Err(Failure::Protocol(ConnectError::Timeout(timeout))))
    );
    assert!(w.now >= 2000 && w.now < 2100, "{}", w.now);
}

#[test]
fn a_broker_that_never_sends_connack_fails_at_the_connect_timeout() {
    let world = World::new();
    world.borrow_mut().silent = true;
    let timeout = Duration::from_secs(3);
    let mut task = pin!(client_task(&world, options().connect_timeout(timeout)));
    assert!(drive(&world, &mut task, |_| false));
    assert_eq!(
        world.borrow().outcome,
        Some(Err(Failure::Protocol(ConnectError::Timeout(timeout))))
    );
}

#[test]
fn the_transport_error_that_ended_the_first_connection_is_reported_as_it_is() {
    let world = World::new();
    world.borrow_mut().silent = true;
    let mut task = pin!(client_task(&world, options()));
    assert!(!drive(&world, &mut task, |w| w.now >= 500));
    world.borrow_mut().read_error = Some("connection reset");
    assert!(drive(&world, &mut task, |_| false));
    assert_eq!(
        world.borrow().outcome,
        Some(Err(Failure::Io("connection reset")))
    );

    // Without an error, the end of the stream says the broker closed it.
    let world = World::new();
    world.borrow_mut().silent = true;
    let mut task = pin!(client_task(&world, options()));
    assert!(!drive(&world, &mut task, |w| w.now >= 500));
    world.borrow_mut().hung_up = true;
    assert!(drive(&world, &mut task, |_| false));
    assert_eq!(
        world.borrow().outcome,
        Some(Err(Failure::Protocol(ConnectError::ClosedByBroker)))
    );
}

#[test]
fn a_lost_connection_reconnects_after_the_backoff_and_completes_what_was_in_flight() {
    let world = World::new();
    let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
    let mut task = pin!(client_task(&world, options().reconnect(backoff)));
    assert!(!drive(&world, &mut task, |w| w.outcome.is_some()));
    world.borrow_mut().no_acks = true;
    let r1 = world.borrow_mut().publish("a/1", QoS::AtLeastOnce);
    assert!(!drive(&world, &mut task, |w| !w.received.is_empty()));

    // The network goes; the first attempt to reopen fails.
    let cut_at = {
        let mut w = world.borrow_mut();
        w.cut();
        w.no_acks = false;
        w.opens.push_back(Open::Fail("connection refused"));
        w.now
    };
    // Meanwhile a command waits for the next connection.
    let r2 = world.borrow_mut().publish("a/2", QoS::AtLeastOnce);
    assert!(!drive(&world, &mut task, |w| w.connected_events().len()
        == 2
        && r1.borrow().is_some()
        && r2.borrow().is_some()));
    assert_eq!(taken(&r1), Some(Ok(ReasonCode::SUCCESS)));
    assert_eq!(taken(&r2), Some(Ok(ReasonCode::SUCCESS)));
    let w = world.borrow();
    // Two waits: 200 ms before the failed attempt, 400 ms before the next.
    assert!(
        w.now - cut_at >= 600,
        "reconnected after {} ms",
        w.now - cut_at
    );
    assert_eq!(w.opened, 2);
    assert_eq!(w.connected_events(), [false, true]);
    assert!(w.events.iter().any(|e| matches!(
        e,
        Event::Disconnected {
            reconnecting: true,
            ..
        }
    )));
    assert!(w.events.iter().any(|e| matches!(
        e,
        Event::ReconnectFailed {
            error: Failure::Io("connection refused")
        }
    )));
    let resent = w.received.iter().filter(|m| m.topic == "a/1").count();
    assert_eq!(resent, 2, "sent, then resent on the resumed session");
}

#[test]
fn a_disconnect_during_the_backoff_ends_the_client_without_reopening() {
    let world = World::new();
    let backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
    let mut task = pin!(client_task(&world, options().reconnect(backoff)));
    assert!(!drive(&world, &mut task, |w| w.outcome.is_some()));
    world.borrow_mut().cut();
    assert!(!drive(&world, &mut task, |w| w.now >= 1000));
    let rd = world.borrow_mut().disconnect();
    assert!(drive(&world, &mut task, |_| false));
    assert_eq!(taken(&rd), Some(Ok(())));
    let w = world.borrow();
    assert_eq!(w.opened, 1);
    assert!(w.now < 10_000, "did not wait out the backoff");
}

#[test]
fn events_wait_for_room_and_reading_pauses_meanwhile() {
    let world = World::new();
    world.borrow_mut().room = 1;
    let mut task = pin!(client_task(&world, options()));
    assert!(!drive(&world, &mut task, |w| w.events.len() == 1));
    {
        let mut w = world.borrow_mut();
        w.events.clear();
        w.room = 0;
        for topic in ["d/1", "d/2", "d/3"] {
            w.deliver(topic);
        }
        w.step();
    }
    assert!(!drive(&world, &mut task, |w| w.down.is_empty()));
    // The first three are read and wait; the next two are not read.
    {
        let mut w = world.borrow_mut();
        w.deliver("d/4");
        w.deliver("d/5");
        w.step();
    }
    let until = world.borrow().now + 1000;
    assert!(!drive(&world, &mut task, |w| w.now >= until));
    {
        let w = world.borrow();
        assert!(w.events.is_empty());
        assert!(!w.down.is_empty(), "reading paused while events wait");
    }
    world.borrow_mut().room = 100;
    assert!(!drive(&world, &mut task, |w| w.events.len() == 5));
    let w = world.borrow();
    let topics: Vec<&str> = w
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message { message, .. } => Some(message.topic.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(topics, ["d/1", "d/2", "d/3", "d/4", "d/5"]);
}

#[test]
fn events_nobody_listens_to_are_dropped_and_the_client_goes_on() {
    let world = World::new();
    world.borrow_mut().deaf = true;
    let mut task = pin!(client_task(&world, options()));
    assert!(!drive(&world, &mut task, |w| w.outcome.is_some()));
    world.borrow_mut().deliver("d/1");
    let r = world.borrow_mut().publish("a/1", QoS::AtLeastOnce);
    assert!(!drive(&world, &mut task, |_| r.borrow().is_some()));
    assert_eq!(taken(&r), Some(Ok(ReasonCode::SUCCESS)));
    assert!(world.borrow().events.is_empty());
}

#[test]
fn an_idle_connection_sends_pingreq_at_the_keep_alive() {
    let world = World::new();
    let mut task = pin!(client_task(&world, options().keep_alive(1)));
    assert!(!drive(&world, &mut task, |w| w.outcome.is_some()));
    let sent_before = world.borrow().sent.len();
    assert!(!drive(&world, &mut task, |w| w.now >= 5_500));
    let w = world.borrow();
    let pings = w.sent[sent_before..]
        .windows(2)
        .filter(|b| *b == [0xC0, 0x00])
        .count();
    assert!((4..=6).contains(&pings), "{pings} PINGREQs in 5 s");
    assert_eq!(w.connected_events(), [false]);
    assert!(w.server_closes.is_empty(), "still connected");
}
