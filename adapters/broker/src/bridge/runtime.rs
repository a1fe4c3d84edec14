//! The bridges' driver, on the core task: it opens each bridge in the
//! broker core, spawns its remote end, and moves messages between the two.
//!
//! Towards the remote broker: the core names bridges with messages
//! (`Broker::poll_bridge_ready`), the driver takes them
//! (`Broker::poll_bridge`), renames them by the bridge's rules and hands
//! them to the remote end, which reports back what became of each
//! ([`FromRemote::Settled`], then `Broker::bridge_settled`). From the
//! remote broker: the remote end hands over messages, already renamed
//! ([`FromRemote::Message`]), which enter `Broker::publish_from_bridge`.
//! The remote end also reports its connection state, which the core shows
//! in `$SYS`. Nothing else is kept here: queues, limits, drops, flow
//! control and counters are the core's.

use std::sync::Arc;
use std::time::Duration;

use mqtt_router::broker::{
    BridgeId, BridgeMessage, BridgeOptions, BridgeOutcome, BridgeState, BridgeToken, Broker,
};
use mqtt_session::{Instant, Message};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use super::remote::Remote;
use super::{Prepared, Rules};

/// Messages and reports from all remote ends waiting for the core.
const INBOUND_QUEUE: usize = 1024;

/// How often the same kind of trouble is logged at warn level.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Longest wait for the remote ends to finish when the broker stops.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// What a remote end tells the core, with its bridge's index.
#[derive(Debug)]
// Messages are the common case: boxing them would cost an allocation each,
// to shrink the rare reports.
#[allow(clippy::large_enum_variant)]
pub(crate) enum FromRemote {
    /// A message from the remote broker, its topic already the local one.
    Message(Crossing),
    /// What became of a message the core handed to the remote end.
    Settled(BridgeToken, BridgeOutcome),
    /// The connection to the remote broker changed state.
    State(BridgeState),
}

/// A message for the remote broker, its topic already the remote one, and
/// the token the core settles it by.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) token: BridgeToken,
    pub(crate) crossing: Crossing,
}

/// A message crossing between the two ends, its expiry as a remaining time
/// (each end has its own clock).
#[derive(Debug)]
pub(crate) struct Crossing {
    pub(crate) msg: Message,
    pub(crate) ttl: Option<Duration>,
}

impl Crossing {
    /// `msg`, whose expiry is on the clock reading `now`.
    pub(crate) fn new(mut msg: Message, now: Instant) -> Crossing {
        let ttl = msg
            .props
            .expires_at
            .take()
            .map(|at| at.saturating_duration_since(now));
        Crossing { msg, ttl }
    }

    /// The message, its expiry put on the clock reading `now`.
    pub(crate) fn into_message(self, now: Instant) -> Message {
        let mut msg = self.msg;
        msg.props.expires_at = self.ttl.map(|ttl| now.saturating_add(ttl));
        msg
    }
}

/// A warning that is logged at most once per interval, with the number of
/// occurrences since the last one.
#[derive(Debug)]
pub(crate) struct RateLimited {
    every: Duration,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl RateLimited {
    pub(crate) fn new(every: Duration) -> RateLimited {
        RateLimited {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Counts one occurrence; `Some(n)` when it should be logged now, `n`
    /// being the occurrences this log line covers.
    pub(crate) fn hit(&mut self) -> Option<u64> {
        self.hits(1)
    }

    /// Counts `n` occurrences at once, as [`RateLimited::hit`].
    pub(crate) fn hits(&mut self, n: u64) -> Option<u64> {
        self.suppressed += n;
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Every bridge, as the core task drives it.
pub(crate) struct Bridges {
    links: Vec<Link>,
    tasks: Vec<JoinHandle<()>>,
    /// Keeps the inbound channel open when there are no bridges, so the core
    /// never sees it end.
    _inbound: mpsc::Sender<(usize, FromRemote)>,
}

/// One bridge: its id in the core and the way to its remote end.
struct Link {
    id: BridgeId,
    name: String,
    rules: Arc<Rules>,
    queue_limit: usize,
    /// Holds at most [`remote_window`] messages: the core never has more in
    /// flight for the bridge, so sending never finds it full.
    to_remote: Option<mpsc::Sender<Outgoing>>,
    stop: Option<oneshot::Sender<()>>,
    /// Drops the core counted for the bridge when last looked at.
    dropped: u64,
    drops: RateLimited,
    refusals: RateLimited,
}

/// Messages a bridge's remote end may have on their way to the remote
/// broker at once (the core's window for it): the rest wait in the core,
/// where the queue-full policy applies while the remote broker is slow or
/// away.
pub(super) fn remote_window(c: &super::BridgeConfig) -> usize {
    REMOTE_WINDOW.min(c.queue_limit)
}

/// The largest [`remote_window`]: as a Receive Maximum of 100.
const REMOTE_WINDOW: usize = 100;

impl Bridges {
    /// Opens every bridge in the core and spawns its remote end. Returns
    /// the channel on which the remote ends report, for
    /// [`Bridges::handle_inbound`].
    pub(crate) fn start(
        prepared: Vec<Prepared>,
        broker: &mut Broker,
        now: Instant,
    ) -> (Bridges, mpsc::Receiver<(usize, FromRemote)>) {
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let mut bridges = Bridges {
            links: Vec::new(),
            tasks: Vec::new(),
            _inbound: inbound_tx.clone(),
        };
        for p in prepared {
            let Some(id) = open(broker, &p, now) else {
                continue;
            };
            let c = &p.config;
            let (to_remote, outbound) = mpsc::channel(remote_window(c));
            let (stop, stop_rx) = oneshot::channel();
            bridges.links.push(Link {
                id,
                name: c.name.clone(),
                rules: p.rules.clone(),
                queue_limit: c.queue_limit,
                to_remote: Some(to_remote),
                stop: Some(stop),
                dropped: 0,
                drops: RateLimited::new(WARN_EVERY),
                refusals: RateLimited::new(WARN_EVERY),
            });
            let remote = Remote {
                index: bridges.links.len() - 1,
                prepared: p,
                outbound,
                inbound: inbound_tx.clone(),
                stop: stop_rx,
            };
            bridges.tasks.push(tokio::spawn(remote.run()));
        }
        (bridges, inbound_rx)
    }

    /// A report from remote end `index`: a message published here, a
    /// message settled, or a state change.
    pub(crate) fn handle_inbound(
        &mut self,
        broker: &mut Broker,
        (index, report): (usize, FromRemote),
        now: Instant,
    ) {
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        match report {
            FromRemote::Message(crossing) => link.publish(broker, crossing, now),
            FromRemote::Settled(token, outcome) => {
                broker.bridge_settled(link.id, now, token, outcome)
            }
            FromRemote::State(state) => broker.set_bridge_state(link.id, state),
        }
    }

    /// Hands every message the core has for a bridge to its remote end; the
    /// core task calls it after each batch, where it writes to sockets.
    pub(crate) fn flush(&mut self, broker: &mut Broker, now: Instant) {
        while let Some(id) = broker.poll_bridge_ready() {
            let Some(link) = self.links.iter_mut().find(|l| l.id == id) else {
                continue;
            };
            while let Some(m) = broker.poll_bridge(id, now) {
                link.forward(broker, m, now);
            }
        }
        for link in &mut self.links {
            link.log_drops(broker);
        }
    }

    /// The broker is stopping: the remote ends are told to disconnect.
    pub(crate) fn stop(&mut self) {
        for link in &mut self.links {
            link.to_remote = None;
            if let Some(stop) = link.stop.take() {
                let _ = stop.send(());
            }
        }
    }

    /// Waits, bounded, for the remote ends to disconnect.
    pub(crate) async fn join(mut self) {
        self.stop();
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        for task in self.tasks.drain(..) {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                break;
            }
        }
    }
}

/// Opens bridge `p` in the core: its subscriptions are the local filters of
/// its `out` rules, judged by its rights (those of its `local_username`).
fn open(broker: &mut Broker, p: &Prepared, now: Instant) -> Option<BridgeId> {
    let c = &p.config;
    info!(
        bridge = %c.name,
        address = %c.address,
        protocol = ?c.protocol,
        rules = c.topics.len(),
        "starting bridge"
    );
    if c.local_password.is_some() {
        warn!(bridge = %c.name, "local_password is no longer used: a bridge is part of this broker, not a client of it");
    }
    let mut options = BridgeOptions::new(c.queue_limit);
    options.rights = p.rights.clone();
    options.max_in_flight = remote_window(c);
    let filters = p.rules.local_subscriptions();
    let opened = match broker.open_bridge(now, &c.name, filters.clone(), options) {
        Ok(opened) => opened,
        Err(e) => {
            error!(bridge = %c.name, error = %e, "the bridge cannot be opened; it does not run");
            return None;
        }
    };
    for ((filter, _), reason) in filters.iter().zip(&opened.results) {
        if reason.is_error() {
            warn!(
                bridge = %c.name,
                filter = filter.as_str(),
                %reason,
                "this broker refused the bridge's subscription"
            );
        }
    }
    Some(opened.id)
}

impl Link {
    /// A message from the remote broker, published here.
    fn publish(&mut self, broker: &mut Broker, crossing: Crossing, now: Instant) {
        let msg = crossing.into_message(now);
        let reason = match broker.publish_from_bridge(self.id, now, msg) {
            Ok(outcome) if outcome.reason.is_error() => outcome.reason,
            Ok(_) => return,
            Err(e) => {
                debug!(bridge = %self.name, error = %e, "bridged message for a closed bridge");
                return;
            }
        };
        if let Some(count) = self.refusals.hit() {
            warn!(bridge = %self.name, %reason, count, "bridged message not published here");
        }
    }

    /// A message for the remote broker: renamed by the `out` rules and
    /// handed to the remote end, or settled as dropped when no rule carries
    /// its topic out (a local filter such as `a/#` also matches `a`, which
    /// has no `a/` prefix to swap) or the remote end is gone.
    fn forward(&mut self, broker: &mut Broker, m: BridgeMessage, now: Instant) {
        let Some(topic) = self.rules.outgoing(&m.message.topic) else {
            debug!(bridge = %self.name, topic = m.message.topic.as_str(), "no rule carries this topic out");
            broker.bridge_settled(self.id, now, m.token, BridgeOutcome::Dropped);
            return;
        };
        let mut msg = Message::clone(&m.message);
        msg.topic = topic;
        msg.qos = m.qos;
        msg.retain = m.retain;
        let out = Outgoing {
            token: m.token,
            crossing: Crossing::new(msg, now),
        };
        let sent = self
            .to_remote
            .as_ref()
            .is_some_and(|tx| tx.try_send(out).is_ok());
        if !sent {
            // Only when the broker is stopping: the channel has room for
            // every message the core lets be in flight.
            broker.bridge_settled(self.id, now, m.token, BridgeOutcome::Dropped);
        }
    }

    /// Logs, at most every [`WARN_EVERY`], that the core dropped messages of
    /// this bridge since last time.
    fn log_drops(&mut self, broker: &Broker) {
        let Some(stats) = broker.bridge_stats(self.id) else {
            return;
        };
        let new = stats.messages_dropped.saturating_sub(self.dropped);
        self.dropped = stats.messages_dropped;
        if new > 0 {
            if let Some(count) = self.drops.hits(new) {
                warn!(
                    bridge = %self.name,
                    count,
                    limit = self.queue_limit,
                    state = stats.state.as_str(),
                    "bridge messages dropped (queue limit, expiry or refusal)"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use mqtt_codec::{QoS, TopicName};

    use super::*;

    fn t(s: &str) -> TopicName {
        TopicName::try_from(s).unwrap()
    }

    #[test]
    fn expiry_crosses_as_remaining_time() {
        let mut msg = Message::new(t("a"), "x", QoS::AtMostOnce, false);
        msg.props.expires_at = Some(Instant::from_millis(15_000));
        let c = Crossing::new(msg, Instant::from_millis(5_000));
        assert_eq!(c.ttl, Some(Duration::from_secs(10)));
        let msg = c.into_message(Instant::from_millis(100));
        assert_eq!(msg.props.expires_at, Some(Instant::from_millis(10_100)));
        let c = Crossing::new(
            Message::new(t("a"), "x", QoS::AtMostOnce, false),
            Instant::ZERO,
        );
        assert_eq!(
            c.into_message(Instant::from_millis(7)).props.expires_at,
            None
        );
    }

    #[test]
    fn warnings_are_rate_limited_and_counted() {
        let mut r = RateLimited::new(Duration::from_secs(3600));
        assert_eq!(r.hit(), Some(1));
        assert_eq!(r.hit(), None);
        assert_eq!(r.hit(), None);
        let mut r2 = RateLimited::new(Duration::ZERO);
        assert_eq!(r2.hit(), Some(1));
        assert_eq!(r2.hit(), Some(1));
    }
}
