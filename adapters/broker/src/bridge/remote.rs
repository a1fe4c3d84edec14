//! The remote end of a bridge: an `mqtt-tokio` client of the other broker,
//! in its own task. It reconnects with backoff and keeps a persistent
//! session, so QoS 1/2 messages in flight are resent after a cut; it
//! publishes what the core hands it, reports what became of each, and
//! hands the core what the remote broker sends.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use mqtt_codec::{QoS, ReasonCode};
use mqtt_router::broker::{BridgeOutcome, BridgeState, BridgeToken};
use mqtt_tokio::{
    Backoff, Client, ClientError, ConnectError, ConnectOptions, Event, Incoming, OptionSetters,
    Requests, RetainHandling, SubscribeResult, SubscriptionOptions,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{Crossing, FromRemote, Outgoing, Prepared, RateLimited, Rules};

/// How often the same kind of trouble is logged at warn level.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How long a stopping bridge waits for the remote broker to take its
/// DISCONNECT.
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// The client options of a bridge's remote end.
pub(super) fn options(p: &super::BridgeConfig) -> Result<ConnectOptions, ConnectError> {
    let version = p.protocol.version();
    let mut o = ConnectOptions::new(&p.address)?
        .version(version)
        .client_id(&p.client_id())
        .clean_start(p.clean_start)
        .keep_alive(p.keep_alive)
        .reconnect(Backoff::new(
            Duration::from_secs_f64(p.reconnect_delay),
            Duration::from_secs_f64(p.reconnect_delay_max),
        ));
    if version.is_v5() {
        o = o.session_expiry(p.session_expiry);
    }
    if let Some(user) = &p.username {
        o = o.credentials(user, p.password.as_deref().map(str::as_bytes));
    }
    let c = o.session_config();
    // Mosquitto's try_private: the remote broker sends a 3.1.1 bridge none
    // of its own messages back (5.0 bridges subscribe with No Local).
    c.bridge = !version.is_v5();
    // What the bridge hands the client never exceeds the queue limit, so
    // the client never refuses it for a full queue.
    c.limits.max_queued = p.queue_limit;
    Ok(o)
}

/// How a connection of the remote end ended.
enum Ended {
    /// The bridge is stopping.
    Stopped,
    /// The client gave up; start over with a new one.
    Lost,
}

type Subscribing = Pin<Box<dyn Future<Output = Result<Vec<SubscribeResult>, ClientError>> + Send>>;

/// A publish to the remote broker under way, with its token and QoS.
type Publishing =
    Pin<Box<dyn Future<Output = (BridgeToken, QoS, Result<ReasonCode, ClientError>)> + Send>>;

/// Whether serving a client goes on after a step.
enum Step {
    Go,
    /// The core is gone: the bridge stops.
    Stop,
}

/// What serving one client keeps between its steps.
struct Serving {
    /// Publishes under way (at most the bridge's window).
    publishes: FuturesUnordered<Publishing>,
    subscribing: Option<Subscribing>,
    /// The remote subscriptions are still to be made.
    need_subscribe: bool,
    /// The highest QoS the remote broker takes.
    max_qos: QoS,
    refused: RateLimited,
}

impl Serving {
    fn new() -> Serving {
        Serving {
            publishes: FuturesUnordered::new(),
            subscribing: None,
            need_subscribe: true,
            max_qos: QoS::ExactlyOnce,
            refused: RateLimited::new(WARN_EVERY),
        }
    }
}

/// The remote end's task.
pub(super) struct Remote {
    pub(super) index: usize,
    pub(super) prepared: Prepared,
    /// Messages from the core, remapped.
    pub(super) outbound: mpsc::Receiver<Outgoing>,
    /// Reports for the core (messages remapped), with this bridge's index.
    pub(super) inbound: mpsc::Sender<(usize, FromRemote)>,
    /// Resolves (sent or dropped) when the bridge must stop.
    pub(super) stop: oneshot::Receiver<()>,
}

impl Remote {
    fn name(&self) -> &str {
        &self.prepared.config.name
    }

    fn rules(&self) -> &Rules {
        &self.prepared.rules
    }

    pub(super) async fn run(mut self) {
        let config = &self.prepared.config;
        let mut backoff = Backoff::new(
            Duration::from_secs_f64(config.reconnect_delay),
            Duration::from_secs_f64(config.reconnect_delay_max),
        );
        let mut failures = RateLimited::new(WARN_EVERY);
        loop {
            self.report(FromRemote::State(BridgeState::Reconnecting))
                .await;
            let attempt = tokio::select! {
                r = Client::connect(self.prepared.options.clone()) => r,
                _ = &mut self.stop => break,
            };
            match attempt {
                Ok((client, incoming)) => {
                    backoff.reset();
                    match self.serve(client, incoming).await {
                        Ended::Stopped => break,
                        Ended::Lost => {}
                    }
                }
                Err(error) => {
                    if let Some(attempts) = failures.hit() {
                        warn!(
                            bridge = self.name(),
                            address = %self.prepared.config.address,
                            %error,
                            attempts,
                            "bridge cannot connect to the remote broker; retrying"
                        );
                    }
                    let delay = backoff.next_delay(random());
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        _ = &mut self.stop => break,
                    }
                }
            }
        }
        self.report(FromRemote::State(BridgeState::Stopped)).await;
        info!(bridge = self.name(), "bridge stopped");
    }

    /// Serves one client (which reconnects by itself) until it is done or the
    /// bridge stops.
    async fn serve(&mut self, client: Client, mut incoming: Incoming) -> Ended {
        let limit = super::runtime::remote_window(&self.prepared.config);
        let mut s = Serving::new();
        loop {
            let step = tokio::select! {
                _ = &mut self.stop => {
                    let _ = tokio::time::timeout(DISCONNECT_GRACE, client.disconnect()).await;
                    return Ended::Stopped;
                }
                event = incoming.recv() => match event {
                    Some(event) => self.on_event(event, &client, &mut s).await,
                    None => {
                        info!(bridge = self.name(), "bridge client ended; starting over");
                        // The client is gone, so every publish under way
                        // finishes now: each is settled by what came of it
                        // (taken, or to be sent again), none is guessed.
                        while let Some((token, qos, result)) = s.publishes.next().await {
                            if let Step::Stop = self.on_published(token, qos, result, &mut s).await {
                                return Ended::Stopped;
                            }
                        }
                        return Ended::Lost;
                    }
                },
                Some(Outgoing { token, crossing }) = self.outbound.recv(), if s.publishes.len() < limit => {
                    let mut message = crossing.into_message(client.now());
                    message.qos = message.qos.min(s.max_qos);
                    let c = client.clone();
                    let qos = message.qos;
                    s.publishes.push(Box::pin(async move { (token, qos, c.publish_message(message).await) }));
                    Step::Go
                }
                Some((token, qos, result)) = s.publishes.next(), if !s.publishes.is_empty() => {
                    self.on_published(token, qos, result, &mut s).await
                }
                result = maybe(&mut s.subscribing) => {
                    s.subscribing = None;
                    match result {
                        Ok(results) => {
                            s.need_subscribe = false;
                            self.report_subscriptions(&results);
                        }
                        // Lost with the connection: made again on the next one.
                        Err(error) => debug!(bridge = self.name(), %error, "bridge subscription not answered"),
                    }
                    Step::Go
                }
            };
            if let Step::Stop = step {
                return Ended::Stopped;
            }
        }
    }

    /// One event of the client.
    async fn on_event(&mut self, event: Event, client: &Client, s: &mut Serving) -> Step {
        match event {
            Event::Connected {
                session_present,
                caps,
            } => {
                self.report(FromRemote::State(BridgeState::Connected)).await;
                info!(
                    bridge = self.name(),
                    address = %self.prepared.config.address,
                    session_present,
                    "bridge connected"
                );
                s.max_qos = caps.maximum_qos;
                // Subscriptions live in the session: made again only when
                // the remote broker did not keep it.
                if s.need_subscribe || !session_present {
                    s.subscribing = self.subscribe(client);
                    s.need_subscribe = s.subscribing.is_some();
                }
            }
            Event::Disconnected {
                close,
                reconnecting,
            } => {
                self.report(FromRemote::State(BridgeState::Reconnecting))
                    .await;
                info!(
                    bridge = self.name(),
                    reason = %close.reason,
                    initiator = ?close.initiator,
                    reconnecting,
                    "bridge disconnected"
                );
            }
            Event::ReconnectFailed { error } => {
                debug!(bridge = self.name(), %error, "bridge reconnection failed");
            }
            Event::Message { message, .. } => {
                let Some(topic) = self.rules().incoming(&message.topic) else {
                    debug!(bridge = self.name(), topic = %message.topic.as_str(), "no rule carries this topic in");
                    return Step::Go;
                };
                let mut message = message;
                message.topic = topic;
                // Waiting here holds back the client's reads: the remote
                // broker then keeps what the core has no room for.
                let crossing = Crossing::new(message, client.now());
                if !self.report(FromRemote::Message(crossing)).await {
                    return Step::Stop;
                }
            }
        }
        Step::Go
    }

    /// A publish to the remote broker finished: the core hears what became
    /// of it.
    async fn on_published(
        &mut self,
        token: BridgeToken,
        qos: QoS,
        result: Result<ReasonCode, ClientError>,
        s: &mut Serving,
    ) -> Step {
        let outcome = outcome(qos, &result);
        if let Err(error) = result {
            if let Some(count) = s.refused.hit() {
                warn!(bridge = self.name(), %error, count, ?outcome, "the remote broker did not take a bridged message");
            }
        }
        if self.report(FromRemote::Settled(token, outcome)).await {
            Step::Go
        } else {
            Step::Stop
        }
    }

    /// Starts subscribing to the remote filters of the `in` rules (none:
    /// `None`).
    fn subscribe(&self, client: &Client) -> Option<Subscribing> {
        let v5 = self.prepared.config.protocol.version().is_v5();
        let filters: Vec<(String, SubscriptionOptions)> = self
            .rules()
            .remote_subscriptions()
            .into_iter()
            .map(|(f, qos)| {
                let mut o = SubscriptionOptions::new(qos);
                // What try_private does for a 3.1.1 bridge: nothing the bridge
                // publishes comes back, and retained flags cross as published.
                o.no_local = v5;
                o.retain_as_published = v5;
                o.retain_handling = RetainHandling::SendAtSubscribe;
                (f.as_str().to_owned(), o)
            })
            .collect();
        if filters.is_empty() {
            return None;
        }
        let client = client.clone();
        Some(Box::pin(async move {
            let refs: Vec<(&str, SubscriptionOptions)> =
                filters.iter().map(|(f, o)| (f.as_str(), *o)).collect();
            client.subscribe_with(&refs, None).await
        }))
    }

    fn report_subscriptions(&self, results: &[SubscribeResult]) {
        let filters = self.rules().remote_subscriptions();
        for ((filter, _), result) in filters.iter().zip(results) {
            match result {
                Ok(qos) => debug!(
                    bridge = self.name(),
                    filter = filter.as_str(),
                    ?qos,
                    "bridge subscribed at the remote broker"
                ),
                Err(reason) => warn!(
                    bridge = self.name(),
                    filter = filter.as_str(),
                    reason = %reason,
                    "the remote broker refused the bridge's subscription"
                ),
            }
        }
    }

    /// Hands the core a report; false once the core is gone.
    async fn report(&self, report: FromRemote) -> bool {
        self.inbound.send((self.index, report)).await.is_ok()
    }
}

/// What a publish's result means for the core: taken, to be sent again
/// (the connection went before the remote broker answered), or dropped
/// (refused, expired, or not sendable). A QoS 0 message is never sent
/// again: its bytes may have gone out, and it is at most once.
fn outcome(qos: QoS, result: &Result<ReasonCode, ClientError>) -> BridgeOutcome {
    match result {
        Ok(_) => BridgeOutcome::Delivered,
        Err(ClientError::ConnectionLost | ClientError::Disconnected) if qos == QoS::AtMostOnce => {
            BridgeOutcome::Dropped
        }
        Err(ClientError::ConnectionLost | ClientError::Disconnected) => BridgeOutcome::Retry,
        Err(
            ClientError::Refused(_)
            | ClientError::Expired
            | ClientError::Usage(_)
            | ClientError::Topic(_)
            | ClientError::Timeout,
        ) => BridgeOutcome::Dropped,
        // `ClientError` may grow: what is not known to be lost in transit
        // is not sent twice.
        Err(_) => BridgeOutcome::Dropped,
    }
}

/// Awaits the future in `slot`, or never when there is none.
async fn maybe<F: Future + Unpin>(slot: &mut Option<F>) -> F::Output {
    match slot {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// A random number for the backoff's jitter, from the standard library's
/// randomly keyed hasher.
fn random() -> u32 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}
