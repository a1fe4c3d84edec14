//! The local ends of the bridges: in-process clients of the broker core,
//! driven by the core task. Each is a `Connection<Client>` whose packets go
//! straight to `Broker::handle_packets` and come straight from
//! `Broker::poll_frames`, with no encoding, so a bridged message passes the
//! broker like any client's: ACLs, retained messages, `$SYS` counters.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqtt_codec::{
    Packet, ProtocolVersion, QoS, RetainHandling, Str, SubscriptionOptions, TopicName,
};
use mqtt_router::broker::{Broker, ConnId, PeerInfo, Policy};
use mqtt_session::{
    Client, ClientConfig, ClientEvent, Connection, Frame, Instant, Limits, Message,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::remote::Remote;
use super::{Counters, Crossing, Prepared, RateLimited, Rules, State};

/// Messages from all remote ends waiting for the core.
const INBOUND_QUEUE: usize = 1024;

/// How long after the broker closed a local end it is opened again.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// How often the same kind of trouble is logged at warn level.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Longest wait for the remote ends to finish when the broker stops.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Messages the local end may have waiting to be published here: the core
/// hands them over at once, so this bound is only reached by a broker that
/// refuses to take them.
const LOCAL_QUEUE: usize = 65_536;

/// Every bridge's local end, owned by the core task.
pub(crate) struct Bridges {
    ends: Vec<LocalEnd>,
    by_conn: HashMap<ConnId, usize>,
    sys_every: Option<Duration>,
    sys_at: Option<Instant>,
    tasks: Vec<JoinHandle<()>>,
    stopping: bool,
    /// Keeps the inbound channel open when there are no bridges, so the core
    /// never sees it end.
    _inbound: mpsc::Sender<(usize, Crossing)>,
}

struct LocalEnd {
    name: String,
    rules: Arc<Rules>,
    config: ClientConfig,
    link: Option<Link>,
    reopen_at: Option<Instant>,
    to_remote: Option<mpsc::Sender<Crossing>>,
    stop: Option<oneshot::Sender<()>>,
    counters: Arc<Counters>,
    queue_limit: usize,
    drops: RateLimited,
    refusals: RateLimited,
}

/// An open local end: its connection in the broker and its client side.
struct Link {
    id: ConnId,
    conn: Connection<Client>,
}

impl Bridges {
    /// Starts every bridge: spawns its remote end and opens its local end.
    /// Returns the channel on which the remote ends hand over messages for
    /// [`Bridges::handle_inbound`]. `sys_every` is the `$SYS` interval.
    pub(crate) fn start<P: Policy>(
        prepared: Vec<Prepared>,
        sys_every: Option<Duration>,
        broker: &mut Broker<P>,
        now: Instant,
    ) -> (Bridges, mpsc::Receiver<(usize, Crossing)>) {
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let mut bridges = Bridges {
            ends: Vec::new(),
            by_conn: HashMap::new(),
            sys_every,
            sys_at: sys_every
                .filter(|_| !prepared.is_empty())
                .map(|e| now.saturating_add(e)),
            tasks: Vec::new(),
            stopping: false,
            _inbound: inbound_tx.clone(),
        };
        for (index, p) in prepared.into_iter().enumerate() {
            let c = &p.config;
            info!(
                bridge = %c.name,
                address = %c.address,
                protocol = ?c.protocol,
                rules = c.topics.len(),
                "starting bridge"
            );
            let (to_remote, outbound) = mpsc::channel(c.queue_limit);
            let (stop, stop_rx) = oneshot::channel();
            let counters = Arc::new(Counters::default());
            let end = LocalEnd {
                name: c.name.clone(),
                rules: p.rules.clone(),
                config: local_config(&p),
                link: None,
                reopen_at: None,
                to_remote: Some(to_remote),
                stop: Some(stop),
                counters: counters.clone(),
                queue_limit: c.queue_limit,
                drops: RateLimited::new(WARN_EVERY),
                refusals: RateLimited::new(WARN_EVERY),
            };
            let remote = Remote {
                index,
                prepared: p,
                counters,
                outbound,
                inbound: inbound_tx.clone(),
                stop: stop_rx,
            };
            bridges.tasks.push(tokio::spawn(remote.run()));
            bridges.ends.push(end);
            bridges.open(broker, index, now);
        }
        (bridges, inbound_rx)
    }

    /// Whether `id` is a bridge's local end rather than a socket.
    pub(crate) fn owns(&self, id: ConnId) -> bool {
        self.by_conn.contains_key(&id)
    }

    /// The next instant [`Bridges::handle_timeout`] is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let ends = self.ends.iter().flat_map(|e| {
            let conn = e.link.as_ref().and_then(|l| l.conn.poll_timeout());
            [conn, e.reopen_at.filter(|_| !self.stopping)]
        });
        ends.chain([self.sys_at]).flatten().min()
    }

    /// Client timers, reopening closed local ends, and `$SYS`.
    pub(crate) fn handle_timeout<P: Policy>(&mut self, broker: &mut Broker<P>, now: Instant) {
        for i in 0..self.ends.len() {
            let end = &mut self.ends[i];
            if let Some(link) = end.link.as_mut() {
                if link.conn.poll_timeout().is_some_and(|t| t <= now) {
                    link.conn.handle_timeout(now);
                    self.pump(broker, i, now);
                }
            } else if end.reopen_at.is_some_and(|t| t <= now) && !self.stopping {
                self.open(broker, i, now);
            }
        }
        if let (Some(at), Some(every)) = (self.sys_at, self.sys_every) {
            if at <= now {
                self.publish_sys(broker, now);
                self.sys_at = Some(now.saturating_add(every));
            }
        }
    }

    /// A message from a remote end: published here by the local end, with
    /// its QoS and retain flag.
    pub(crate) fn handle_inbound<P: Policy>(
        &mut self,
        broker: &mut Broker<P>,
        (index, crossing): (usize, Crossing),
        now: Instant,
    ) {
        let Some(end) = self.ends.get_mut(index) else {
            return;
        };
        let mut msg = crossing.into_message(now);
        let result = match end.link.as_mut() {
            Some(link) if link.conn.is_connected() => {
                if let Some(caps) = link.conn.server_caps() {
                    msg.qos = msg.qos.min(caps.maximum_qos);
                    msg.retain &= caps.retain_available;
                }
                link.conn
                    .publish(now, msg)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            _ => Err("the local end is not connected".to_string()),
        };
        match result {
            Ok(()) => {
                end.counters.received.fetch_add(1, Ordering::Relaxed);
                self.pump(broker, index, now);
            }
            Err(error) => {
                end.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(count) = end.refusals.hit() {
                    warn!(bridge = %end.name, %error, count, "bridged message not published here");
                }
            }
        }
    }

    /// Moves packets between local end `id` and the broker until neither
    /// has more; the core calls it where it would write to a socket.
    pub(crate) fn write<P: Policy>(&mut self, broker: &mut Broker<P>, id: ConnId, now: Instant) {
        if let Some(&i) = self.by_conn.get(&id) {
            self.pump(broker, i, now);
        }
    }

    /// The broker closed local end `id`: it is opened again shortly (unless
    /// the broker is stopping).
    pub(crate) fn closed<P: Policy>(
        &mut self,
        broker: &mut Broker<P>,
        id: ConnId,
        reason: impl std::fmt::Display,
        now: Instant,
    ) {
        let Some(i) = self.by_conn.remove(&id) else {
            return;
        };
        // Its last packets, so the broker frees the connection.
        let mut sink = Vec::new();
        while broker
            .poll_frames(id, now, &mut sink, usize::MAX)
            .is_some_and(|b| b.wire_len > 0)
        {
            sink.clear();
        }
        let end = &mut self.ends[i];
        end.link = None;
        if self.stopping {
            debug!(bridge = %end.name, "bridge local end closed");
        } else {
            warn!(bridge = %end.name, %reason, "the broker closed the bridge's local end; reopening it");
            end.reopen_at = Some(now.saturating_add(REOPEN_AFTER));
        }
    }

    /// The broker is stopping: the remote ends are told to disconnect and
    /// the local ends are not reopened (the core closes them with every
    /// other connection).
    pub(crate) fn stop(&mut self) {
        self.stopping = true;
        for end in &mut self.ends {
            end.to_remote = None;
            if let Some(stop) = end.stop.take() {
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

    fn open<P: Policy>(&mut self, broker: &mut Broker<P>, i: usize, now: Instant) {
        let end = &mut self.ends[i];
        end.reopen_at = None;
        let peer = PeerInfo {
            remote: format!("bridge:{}", end.name),
            certificate_subject: None,
        };
        match broker.open(now, peer) {
            Ok(id) => {
                end.link = Some(Link {
                    id,
                    conn: Connection::<Client>::new(end.config.clone(), now, None),
                });
                self.by_conn.insert(id, i);
                self.pump(broker, i, now);
            }
            Err(error) => {
                warn!(bridge = %end.name, %error, "cannot open the bridge's local end; retrying");
                end.reopen_at = Some(now.saturating_add(REOPEN_AFTER));
            }
        }
    }

    /// Moves packets both ways between a local end and the broker, and acts
    /// on the local end's events, until both are quiet.
    fn pump<P: Policy>(&mut self, broker: &mut Broker<P>, i: usize, now: Instant) {
        let end = &mut self.ends[i];
        // Each round moves what the last one produced; an exchange (CONNECT,
        // SUBSCRIBE, a QoS 2 flow) takes a few rounds.
        loop {
            let Some(link) = end.link.as_mut() else {
                return;
            };
            let mut moved = false;
            let version = link.conn.version();
            let mut out = Vec::new();
            while link.conn.poll_frames(now, &mut out, usize::MAX) > 0 {}
            let out: Vec<Packet> = out.into_iter().map(Frame::into_packet).collect();
            if !out.is_empty() {
                moved = true;
                broker.handle_packets(link.id, now, with_len(out, version), None);
            }
            let mut back = Vec::new();
            while broker
                .poll_frames(link.id, now, &mut back, usize::MAX)
                .is_some_and(|b| b.wire_len > 0)
            {}
            let back: Vec<Packet> = back.into_iter().map(Frame::into_packet).collect();
            for (p, len) in with_len(back, version) {
                moved = true;
                link.conn.handle_packet(now, p, len);
            }
            let mut events = Vec::new();
            while let Some(ev) = link.conn.poll_event() {
                events.push(ev);
            }
            for ev in events {
                moved = true;
                end.on_event(ev, now);
            }
            if !moved {
                return;
            }
        }
    }

    fn publish_sys<P: Policy>(&self, broker: &mut Broker<P>, now: Instant) {
        for end in &self.ends {
            let c = &end.counters;
            let values = [
                ("state", c.state().name().to_string()),
                ("messages/sent", c.sent.load(Ordering::Relaxed).to_string()),
                (
                    "messages/received",
                    c.received.load(Ordering::Relaxed).to_string(),
                ),
                ("queue", c.queued.load(Ordering::Relaxed).to_string()),
                ("dropped", c.dropped.load(Ordering::Relaxed).to_string()),
            ];
            for (what, value) in values {
                let topic = format!("$SYS/broker/bridges/{}/{what}", end.name);
                let Ok(topic) = TopicName::try_from(topic.as_str()) else {
                    continue;
                };
                let msg = Message::new(topic, Bytes::from(value), QoS::AtMostOnce, true);
                broker.publish(now, msg);
            }
        }
    }
}

impl LocalEnd {
    fn on_event(&mut self, ev: ClientEvent, now: Instant) {
        match ev {
            ClientEvent::Connected { .. } => {
                debug!(bridge = %self.name, "bridge local end connected");
                self.subscribe(now);
            }
            ClientEvent::Message { msg, .. } => self.forward(msg, now),
            ClientEvent::Subscribed { results, .. } => {
                let filters = self.rules.local_subscriptions();
                for ((filter, _), reason) in filters.iter().zip(results) {
                    if reason.is_error() {
                        warn!(
                            bridge = %self.name,
                            filter = filter.as_str(),
                            %reason,
                            "this broker refused the bridge's subscription"
                        );
                    }
                }
            }
            ClientEvent::Published { reason, .. } if reason.is_error() => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(count) = self.refusals.hit() {
                    warn!(bridge = %self.name, %reason, count, "this broker refused a bridged message");
                }
            }
            ClientEvent::Closed(close) => {
                debug!(bridge = %self.name, reason = %close.reason, "bridge local end closed");
            }
            _ => {}
        }
    }

    /// Subscribes to the local filters of the `out` rules: No Local, so what
    /// the bridge publishes here never goes back to it, and Retain As
    /// Published, so retained messages cross as retained.
    fn subscribe(&mut self, now: Instant) {
        let filters: Vec<_> = self
            .rules
            .local_subscriptions()
            .into_iter()
            .map(|(f, qos)| {
                let mut o = SubscriptionOptions::new(qos);
                o.no_local = true;
                o.retain_as_published = true;
                o.retain_handling = RetainHandling::SendAtSubscribe;
                (f, o)
            })
            .collect();
        if filters.is_empty() {
            return;
        }
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if let Err(error) = link.conn.subscribe(now, filters, None) {
            warn!(bridge = %self.name, %error, "the bridge's local end cannot subscribe");
        }
    }

    /// A local message for the remote broker: remapped and queued, or
    /// dropped and counted when the queue is full.
    fn forward(&mut self, mut msg: Message, now: Instant) {
        let Some(topic) = self.rules.outgoing(&msg.topic) else {
            debug!(bridge = %self.name, topic = msg.topic.as_str(), "no rule carries this topic out");
            return;
        };
        msg.topic = topic;
        let c = &self.counters;
        let queued = c.queued.load(Ordering::Relaxed);
        let sent = match &self.to_remote {
            Some(tx) if queued < self.queue_limit => {
                // Counted before it is sent: the remote end uncounts it.
                c.queued.fetch_add(1, Ordering::Relaxed);
                let ok = tx.try_send(Crossing::new(msg, now)).is_ok();
                if !ok {
                    c.queued.fetch_sub(1, Ordering::Relaxed);
                }
                ok
            }
            _ => false,
        };
        if !sent {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(count) = self.drops.hit() {
                warn!(
                    bridge = %self.name,
                    count,
                    limit = self.queue_limit,
                    connected = c.state() == State::Connected,
                    "bridge queue full: messages for the remote broker dropped"
                );
            }
        }
    }
}

/// Each packet with its size on the wire, for the broker's byte counters.
fn with_len(packets: Vec<Packet>, version: ProtocolVersion) -> Vec<(Packet, usize)> {
    packets
        .into_iter()
        .map(|p| {
            let n = p.encoded_len(version).unwrap_or(0);
            (p, n)
        })
        .collect()
}

/// The local end's client: 5.0, clean start (nothing is lost in-process),
/// no limits beyond the broker's own but a bounded queue.
fn local_config(p: &Prepared) -> ClientConfig {
    let c = &p.config;
    let id = format!("local.{}", c.client_id());
    let mut config = ClientConfig::new(
        ProtocolVersion::V5,
        Str::try_from(id.as_str()).unwrap_or_else(|_| Str::from_static("local.bridge")),
    );
    config.clean_start = true;
    // The broker's Server Keep Alive, if it sets one, is followed.
    config.keep_alive = 0;
    config.username = c
        .local_username
        .as_deref()
        .and_then(|u| Str::try_from(u).ok());
    config.password = c
        .local_password
        .as_ref()
        .map(|p| Bytes::copy_from_slice(p.as_bytes()));
    let mut limits = Limits::unlimited();
    limits.topic_alias_maximum = 0;
    limits.max_queued = LOCAL_QUEUE;
    config.limits = limits;
    config
}
