//! The request methods against a fake handle that answers each command at
//! once: what command each method makes, what answer it returns, and what
//! is refused before any command is made.

extern crate std;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::sync::Mutex;

use mqtt_session::mqtt_codec::PacketId;

use super::*;

/// ReplySender land in shared slots.
enum Slots {}

type Slot<T> = Arc<Mutex<Option<Result<T, ClientError>>>>;

impl ReplySender for Slots {
    type Reply<T> = Slot<T>;
    type ConnectError = ();

    fn send<T>(reply: Slot<T>, result: Result<T, ClientError>) {
        *reply.lock().unwrap() = Some(result);
    }
}

/// A handle whose "driver" answers every command at once, as a broker
/// would: QoS 0 with success, QoS 1/2 with "no matching subscribers",
/// filters under `denied/` refused, everything else granted.
#[derive(Default)]
struct Fake {
    /// The commands made, in order.
    log: Mutex<Vec<String>>,
    /// The request queue is full: `try_submit` refuses.
    full: bool,
}

impl Fake {
    fn answer(&self, command: Command<Slots>) {
        self.log.lock().unwrap().push(alloc::format!("{command:?}"));
        match command {
            Command::Publish { message, reply } => {
                let reason = match message.qos {
                    QoS::AtMostOnce => ReasonCode::SUCCESS,
                    QoS::AtLeastOnce | QoS::ExactlyOnce => ReasonCode::NO_MATCHING_SUBSCRIBERS,
                };
                Slots::send(reply, Ok(reason));
            }
            Command::Subscribe { filters, reply, .. } => {
                let results = filters
                    .iter()
                    .map(|(f, o)| {
                        if f.as_str().starts_with("denied/") {
                            Err(ReasonCode::NOT_AUTHORIZED)
                        } else {
                            Ok(o.qos)
                        }
                    })
                    .collect();
                Slots::send(reply, Ok(results));
            }
            Command::Unsubscribe { filters, reply } => {
                Slots::send(reply, Ok(vec![ReasonCode::SUCCESS; filters.len()]));
            }
            Command::Ack { reply, .. } => Slots::send(reply, Err(ClientError::StaleAck)),
            Command::Disconnect { reply, .. } => Slots::send(reply, Ok(())),
        }
    }

    fn commands(&self) -> Vec<String> {
        core::mem::take(&mut *self.log.lock().unwrap())
    }
}

/// The blocking fake's pending answer: already in its slot.
struct Answered<T>(Slot<T>);

impl<T> Wait<T> for Answered<T> {
    fn wait(self) -> Result<T, ClientError> {
        let answer = self.0.lock().unwrap().take();
        answer.unwrap_or(Err(ClientError::Disconnected))
    }
}

impl BlockingRequests for Fake {
    type ReplySender = Slots;
    type Pending<T> = Answered<T>;

    fn submit<T>(
        &self,
        make: impl FnOnce(Slot<T>) -> Command<Slots>,
    ) -> Result<Answered<T>, ClientError> {
        let slot = Slot::default();
        self.answer(make(slot.clone()));
        Ok(Answered(slot))
    }

    fn try_submit<T>(
        &self,
        make: impl FnOnce(Slot<T>) -> Command<Slots>,
    ) -> Result<Answered<T>, ClientError> {
        if self.full {
            return Err(ClientError::RequestQueueFull);
        }
        self.submit(make)
    }
}

/// The same as an async handle.
#[derive(Default)]
struct AsyncFake(Fake);

impl Requests for AsyncFake {
    type ReplySender = Slots;
    type Pending<T: Send> = core::future::Ready<Result<T, ClientError>>;

    fn submit<T: Send>(
        &self,
        make: impl FnOnce(Slot<T>) -> Command<Slots> + Send,
    ) -> impl Future<Output = Result<Self::Pending<T>, ClientError>> + Send {
        let answer = self.try_submit(make);
        async move { answer }
    }

    fn try_submit<T: Send>(
        &self,
        make: impl FnOnce(Slot<T>) -> Command<Slots>,
    ) -> Result<Self::Pending<T>, ClientError> {
        let answer = self.0.try_submit(make)?.wait();
        Ok(core::future::ready(answer))
    }
}

/// A payload that cannot cross threads: converted before the future.
struct LocalPayload(alloc::rc::Rc<[u8]>);

impl From<LocalPayload> for Bytes {
    fn from(p: LocalPayload) -> Bytes {
        Bytes::copy_from_slice(&p.0)
    }
}

/// Polls a future that must be ready at once (the fake answers at once).
fn now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the fake answers at once"),
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[test]
fn async_requests_make_their_commands_and_return_the_answers() {
    let fake = AsyncFake::default();
    assert_eq!(
        now(fake.publish("a/b", "x", QoS::AtMostOnce, false)),
        Ok(ReasonCode::SUCCESS)
    );
    let message = Message::new(TopicName::from_static("a/c"), "y", QoS::AtLeastOnce, true);
    assert_eq!(
        now(fake.publish_message(message)),
        Ok(ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
    assert_eq!(
        now(fake.subscribe("s/#", QoS::ExactlyOnce)),
        Ok(QoS::ExactlyOnce)
    );
    let opts = SubscriptionOptions::new(QoS::AtLeastOnce);
    assert_eq!(
        now(fake.subscribe_with(&[("s/1", opts), ("denied/1", opts)], None)),
        Ok(vec![Ok(QoS::AtLeastOnce), Err(ReasonCode::NOT_AUTHORIZED)])
    );
    assert_eq!(
        now(fake.unsubscribe(&["s/#", "s/1"])),
        Ok(vec![ReasonCode::SUCCESS; 2])
    );
    assert_eq!(now(fake.disconnect()), Ok(()));
    let commands = fake.0.commands();
    let kinds: Vec<&str> = commands
        .iter()
        .map(|c| c.split_once(' ').map_or(c.as_str(), |(kind, _)| kind))
        .collect();
    assert_eq!(
        kinds,
        [
            "Publish",
            "Publish",
            "Subscribe",
            "Subscribe",
            "Unsubscribe",
            "Disconnect"
        ]
    );
    assert!(commands[0].contains("a/b"), "{}", commands[0]);
    assert!(commands[5].contains("NORMAL_DISCONNECTION") || commands[5].contains("0x00"));
}

#[test]
fn blocking_requests_make_their_commands_and_return_the_answers() {
    let fake = Fake::default();
    assert_eq!(
        fake.publish("a/b", "x", QoS::ExactlyOnce, false),
        Ok(ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
    assert_eq!(
        fake.subscribe("denied/x", QoS::AtMostOnce),
        Err(ClientError::Refused(ReasonCode::NOT_AUTHORIZED))
    );
    let opts = SubscriptionOptions::new(QoS::AtLeastOnce);
    assert_eq!(
        fake.subscribe_with(&[("s/1", opts)], SubscriptionId::new(7)),
        Ok(vec![Ok(QoS::AtLeastOnce)])
    );
    assert_eq!(fake.unsubscribe(&["s/#"]), Ok(vec![ReasonCode::SUCCESS]));
    assert_eq!(
        fake.disconnect_with(
            ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
            DisconnectProps::default()
        ),
        Ok(())
    );
    let commands = fake.commands();
    assert_eq!(commands.len(), 5);
    assert!(commands[4].starts_with("Disconnect"), "{}", commands[4]);
}

#[test]
fn a_refused_single_subscription_is_a_refused_error() {
    let fake = AsyncFake::default();
    assert_eq!(
        now(fake.subscribe("denied/x", QoS::AtLeastOnce)),
        Err(ClientError::Refused(ReasonCode::NOT_AUTHORIZED))
    );
}

#[test]
fn invalid_topics_fail_before_any_command_is_made() {
    let fake = AsyncFake::default();
    let opts = SubscriptionOptions::new(QoS::AtLeastOnce);
    assert!(matches!(
        now(fake.publish("a/#", "x", QoS::AtMostOnce, false)),
        Err(ClientError::Topic(_))
    ));
    assert!(matches!(
        now(fake.subscribe("a/#/b", QoS::AtMostOnce)),
        Err(ClientError::Topic(_))
    ));
    assert!(matches!(
        now(fake.subscribe_with(&[("ok", opts), ("", opts)], None)),
        Err(ClientError::Topic(_))
    ));
    assert!(matches!(
        now(fake.unsubscribe(&[""])),
        Err(ClientError::Topic(_))
    ));
    assert!(matches!(
        fake.0.publish("a/+", "x", QoS::AtMostOnce, false),
        Err(ClientError::Topic(_))
    ));
    assert!(fake.0.commands().is_empty());
}

#[test]
fn request_futures_are_send_whatever_the_payload() {
    // Generic over the handle, so the trait's own `Send` bound is what
    // proves it, not what the fake's futures happen to be.
    fn publish<R: Requests>(r: &R) -> impl Future<Output = Result<ReasonCode, ClientError>> + '_ {
        let payload = LocalPayload(alloc::rc::Rc::from(&b"x"[..]));
        assert_send(r.publish("a/b", payload, QoS::AtMostOnce, false))
    }
    let fake = AsyncFake::default();
    assert_eq!(now(publish(&fake)), Ok(ReasonCode::SUCCESS));
    assert!(now(assert_send(fake.subscribe("s", QoS::AtMostOnce))).is_ok());
    assert!(now(assert_send(fake.subscribe_with(&[], None))).is_ok());
    assert!(now(assert_send(fake.unsubscribe(&["s"]))).is_ok());
    assert!(now(assert_send(fake.disconnect())).is_ok());
}

#[test]
fn request_helpers_check_what_the_application_wrote() {
    let opts = SubscriptionOptions::new(QoS::AtLeastOnce);
    assert_eq!(subscription_filters(&[("a/+", opts)]).unwrap().len(), 1);
    assert!(subscription_filters(&[("a/#/b", opts)]).is_err());
    assert_eq!(topic_filters(&["a", "b/#"]).unwrap().len(), 2);
    assert!(topic_filters(&[""]).is_err());
    assert_eq!(first_granted(&[Ok(QoS::AtMostOnce)]), Ok(QoS::AtMostOnce));
    assert_eq!(
        first_granted(&[Err(ReasonCode::NOT_AUTHORIZED)]),
        Err(ReasonCode::NOT_AUTHORIZED)
    );
    assert_eq!(first_granted(&[]), Err(ReasonCode::PROTOCOL_ERROR));
}

#[test]
fn queued_publishes_are_made_at_once_and_answered_through_their_handles() {
    let fake = AsyncFake::default();
    let first = now(fake.queue_publish("a/1", "x", QoS::AtLeastOnce, false)).unwrap();
    let second = fake
        .try_publish("a/2", "y", QoS::AtMostOnce, false)
        .unwrap();
    // Both commands are made before either answer is awaited.
    assert_eq!(fake.0.commands().len(), 2);
    assert_eq!(now(first), Ok(ReasonCode::NO_MATCHING_SUBSCRIBERS));
    assert_eq!(now(second), Ok(ReasonCode::SUCCESS));

    let blocking = Fake::default();
    let handle = blocking
        .queue_publish("a/3", "z", QoS::ExactlyOnce, false)
        .unwrap();
    assert_eq!(blocking.commands().len(), 1);
    assert_eq!(handle.wait(), Ok(ReasonCode::NO_MATCHING_SUBSCRIBERS));
}

#[test]
fn try_publish_on_a_full_queue_is_a_typed_error_and_makes_no_command() {
    let fake = AsyncFake(Fake {
        full: true,
        ..Fake::default()
    });
    assert!(matches!(
        fake.try_publish("a/1", "x", QoS::AtLeastOnce, false),
        Err(ClientError::RequestQueueFull)
    ));
    assert!(matches!(
        fake.0.try_publish("a/1", "x", QoS::AtLeastOnce, false),
        Err(ClientError::RequestQueueFull)
    ));
    // A bad topic is refused before the queue is looked at.
    assert!(matches!(
        fake.try_publish("a/#", "x", QoS::AtLeastOnce, false),
        Err(ClientError::Topic(_))
    ));
    assert!(fake.0.commands().is_empty());
}

#[test]
fn ack_makes_an_ack_command_and_returns_its_answer() {
    let fake = AsyncFake::default();
    let token = AckToken::for_tests(PacketId::new(4).unwrap());
    assert_eq!(now(fake.ack(token)), Err(ClientError::StaleAck));
    assert_eq!(fake.0.ack(token), Err(ClientError::StaleAck));
    let commands = fake.0.commands();
    assert_eq!(commands.len(), 2);
    assert!(commands[0].starts_with("Ack"), "{}", commands[0]);
}
