//! The core task: the sans-IO broker driven by the connections' commands,
//! its timer and the bridges' remote ends; one write per connection per
//! batch, and the messages for each bridge handed to its remote end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mqtt_codec::ReasonCode;
use mqtt_router::broker::{Broker, BrokerEvent, ConnId, PeerInfo};
use tokio::sync::{mpsc, Notify};
use tracing::{error, info, warn};

use super::conn_log::ConnLog;
use super::due::Due;
use super::order::Stamps;
use super::outbox::{Outbox, ToConn};
use super::persist::{StoreLink, Stored};
use super::{Clock, Control, Core, Links, ToCore, BATCH, BATCH_PACKETS, CHUNK_BUDGET};
use crate::bridge::{Bridges, FromRemote};
use crate::cluster::{Clocks, ClusterLink, FromCluster};
use crate::logging::RateLimit;
use crate::store::StoreDied;

pub(super) struct ConnHandle {
    pub(super) writer: Arc<Outbox>,
}

/// What the connections send the core, and the stamps their reads and the
/// core's turns take (see `order`).
pub(super) struct Input {
    pub(super) commands: mpsc::Receiver<ToCore>,
    pub(super) stamps: Arc<Stamps>,
}

/// Refused connections logged per second (a client reconnecting in a loop
/// past the connection limit must not flood the log).
static REFUSED: RateLimit = RateLimit::new(10);
/// Stalled subscribers logged per second.
static STALLS: RateLimit = RateLimit::new(10);

/// The longest shutdown waits for connections whose last packets wait for
/// the store (a failing store would hold them for ever).
const STOP_WAIT: Duration = Duration::from_secs(5);

pub(super) async fn core(
    core: Core,
    from_conns: &mut Input,
    shutdown: Arc<Notify>,
    links: Links,
) -> Result<(), StoreDied> {
    let Core {
        mut broker,
        clock,
        mut store,
        mut auth,
        monitor,
        mut control,
    } = core;
    let rx = &mut from_conns.commands;
    let stamps = from_conns.stamps.clone();
    let (mut bridges, mut from_bridges) = Bridges::start(links.bridges, &mut broker, clock.now());
    let (mut cluster, mut from_cluster) =
        ClusterLink::start(links.cluster, &mut broker, clock.now());
    let mut w = Writers::new();
    // The connections' commands received and not handled yet (a turn
    // handles at most a batch).
    let mut input = Due::default();
    // When shutdown began.
    let mut stopping: Option<tokio::time::Instant> = None;
    let mut records = Vec::new();
    // Subscribers taken for stalled so far (see `log_stalls`).
    let mut stalled = 0;
    // What restoring changed (expired sessions, wills that came due) is
    // stored before anything else happens.
    send_records(&mut broker, &mut store, &mut records);
    // When the metrics' snapshot is refreshed next: after a turn, or by
    // itself when the core is idle (the heartbeat `/healthz` reads).
    let mut next_refresh = tokio::time::Instant::now();
    loop {
        let room = store.as_ref().is_none_or(StoreLink::has_room);
        let deadline = broker
            .poll_timeout()
            .map(|t| clock.to_tokio(t))
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let cluster_hold = cluster.as_mut().and_then(ClusterLink::held);
        tokio::select! {
            stored = recv_stored(&mut store) => {
                // Nothing held for the store is sent after this: the
                // broker stops with the acknowledgements still held.
                on_stored(&mut broker, &mut store, stored).inspect_err(|e| error!("{e}"))?;
            }
            // Commands left due by the last turn are handled first.
            () = std::future::ready(()), if !input.is_empty() => {}
            cmd = rx.recv(), if room => {
                let Some(cmd) = cmd else { break };
                input.push(cmd);
                // Take what is already queued before writing, so one write
                // carries all the packets this batch made for a connection.
                for _ in 0..BATCH {
                    match rx.try_recv() {
                        Ok(cmd) => input.push(cmd),
                        Err(_) => break,
                    }
                }
            }
            Some(answered) = auth.answers.recv() => {
                auth.answered(&mut broker, answered, clock.now());
            }
            Some(msg) = from_bridges.recv() => {
                bridges.handle_inbound(&mut broker, msg, clock.now());
                bridge_batch(&mut broker, &mut bridges, &mut from_bridges, clock);
            }
            () = tokio::time::sleep_until(cluster_hold.unwrap_or(deadline)), if cluster_hold.is_some() => {}
            Some(report) = from_cluster.recv(), if cluster.is_some() && cluster_hold.is_none() => {
                if let Some(link) = cluster.as_mut() {
                    cluster_batch(&mut broker, link, report, &mut from_cluster, clock);
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                broker.handle_timeout(clock.now());
                log_stalls(&broker, &mut stalled);
            }
            () = tokio::time::sleep_until(stopping.map_or(deadline, |t| t + STOP_WAIT)),
                if stopping.is_some() => {}
            _ = shutdown.notified(), if stopping.is_none() => {
                stopping = Some(tokio::time::Instant::now());
                monitor.set_ready(false);
                begin_stop(&mut broker, &mut bridges, clock);
            }
            () = tokio::time::sleep_until(next_refresh), if monitor.is_watched() => {}
            Some(ctl) = control.recv() => match ctl {
                Control::Authenticator(a) => {
                    let sessions = auth.replace(&mut broker, a);
                    info!(sessions, "authentication reloaded: every session's rights re-evaluated");
                }
            },
        }
        let turn = std::time::Instant::now();
        if stamps.ordered() {
            // After this turn's commands were received, before they take
            // effect: every read they carry was stamped before this (see
            // `order`).
            broker.set_order(stamps.turn().0);
        }
        handle_due(&mut broker, &mut w, clock, &mut input);
        bridges.flush(&mut broker, clock.now());
        if let Some(link) = cluster.as_mut() {
            link.flush(&mut broker, clocks(clock));
        }
        send_records(&mut broker, &mut store, &mut records);
        flush(&mut broker, &mut w, clock);
        for id in w.closed.drain(..) {
            auth.forget(id);
        }
        // After the closes: a request of a connection that just closed is
        // not started.
        auth.take(&mut broker);
        monitor.observe_turn(turn.elapsed());
        if monitor.is_watched() && tokio::time::Instant::now() >= next_refresh {
            monitor.refresh(&broker);
            next_refresh = tokio::time::Instant::now() + crate::metrics::REFRESH;
        }
        // A connection whose last packets wait for a store that fails
        // would keep shutdown waiting for ever: it is given up on after
        // STOP_WAIT (what it waited for was never acknowledged).
        if stopping.is_some_and(|t| w.conns.is_empty() || t.elapsed() > STOP_WAIT) {
            break;
        }
        // The connection tasks this turn woke wait in this worker's LIFO
        // slot, which other workers cannot steal. With input left due the
        // next turn starts at once (the `ready` branch above never waits),
        // so without yielding a subscriber could not write what this turn
        // queued for it, nor read its acknowledgements, for as long as the
        // input lasted (measured on a debug build under load: 5 s, after
        // which flow control took it for stalled). Otherwise the receive
        // above yields when the channel is empty or tokio's budget is spent.
        if !input.is_empty() {
            tokio::task::yield_now().await;
        }
    }
    drop(from_cluster);
    if let Some(link) = cluster {
        link.join().await;
    }
    finish(store, bridges, from_bridges).await
}

/// The core's clock and the wall clock, read now (for messages that cross
/// to other nodes).
fn clocks(clock: Clock) -> Clocks {
    Clocks {
        now: clock.now(),
        wall: super::persist::wall_now(),
    }
}

/// Takes `first` and what the cluster's NATS end has already sent, at
/// most [`BATCH`] reports.
fn cluster_batch(
    broker: &mut Broker,
    link: &mut ClusterLink,
    first: FromCluster,
    rx: &mut mpsc::Receiver<FromCluster>,
    clock: Clock,
) {
    let c = clocks(clock);
    link.handle(broker, first, c);
    for _ in 0..BATCH {
        if link.held().is_some() {
            break;
        }
        match rx.try_recv() {
            Ok(report) => link.handle(broker, report, c),
            Err(_) => break,
        }
    }
}

/// Logs the subscribers that flow control took for stalled since last time:
/// from then on their queues shed what their publishers send.
fn log_stalls(broker: &Broker, seen: &mut u64) {
    let now = broker.stats().subscribers_stalled;
    if now > *seen {
        if let Some(suppressed) = STALLS.allow() {
            warn!(
                subscribers = now - *seen,
                suppressed,
                "a subscriber made no progress for 5 s: its publishers are no longer held back for it, its queue sheds load"
            );
        }
        *seen = now;
    }
}

/// Flushes the store and ends the bridges; an error if the store could not
/// take its last records.
async fn finish(
    store: Option<StoreLink>,
    bridges: Bridges,
    from_bridges: mpsc::Receiver<(usize, FromRemote)>,
) -> Result<(), StoreDied> {
    let closed = match store {
        Some(link) => link.close().await.inspect_err(|e| error!("{e}")),
        None => Ok(()),
    };
    // The remote ends' last reports find the channel closed instead of
    // waiting for room in it.
    drop(from_bridges);
    bridges.join().await;
    closed
}

/// Takes what the bridges have already sent, at most [`BATCH`] messages.
fn bridge_batch(
    broker: &mut Broker,
    bridges: &mut Bridges,
    rx: &mut mpsc::Receiver<(usize, FromRemote)>,
    clock: Clock,
) {
    for _ in 0..BATCH {
        match rx.try_recv() {
            Ok(msg) => bridges.handle_inbound(broker, msg, clock.now()),
            Err(_) => break,
        }
    }
}

/// Shutdown begins: bridges stop, every connection is closed with 0x8B
/// (Server shutting down).
fn begin_stop(broker: &mut Broker, bridges: &mut Bridges, clock: Clock) {
    bridges.stop();
    info!(connections = broker.connection_count(), "shutting down");
    for id in broker.connections() {
        broker.close(id, clock.now(), ReasonCode::SERVER_SHUTTING_DOWN);
    }
}

/// Hands this turn's records to the store's thread; what they hold is
/// written once it reports them stored.
fn send_records(
    broker: &mut Broker,
    store: &mut Option<StoreLink>,
    records: &mut Vec<mqtt_router::broker::StoreRecord>,
) {
    if let Some(link) = store.as_mut() {
        if let Some(up_to) = broker.poll_store(records) {
            link.send(std::mem::take(records), up_to);
        }
    }
}

/// The next report of the store's thread (never, without a store).
async fn recv_stored(store: &mut Option<StoreLink>) -> Option<Stored> {
    match store {
        Some(link) => link.done.recv().await,
        None => std::future::pending().await,
    }
}

/// Takes the store thread's report; an error when the store is gone (it
/// panicked, or its thread ended), which stops the broker.
fn on_stored(
    broker: &mut Broker,
    store: &mut Option<StoreLink>,
    stored: Option<Stored>,
) -> Result<(), StoreDied> {
    let Some(link) = store.as_mut() else {
        return Ok(());
    };
    let died = |reason: String| StoreDied {
        store: link.describe.clone(),
        reason,
    };
    match stored {
        Some(Stored::Up(up_to, turns)) => {
            link.in_flight = link.in_flight.saturating_sub(turns);
            link.failing = false;
            broker.set_store_failing(false);
            broker.handle_stored(up_to);
        }
        Some(Stored::Failed) => {
            link.failing = true;
            broker.set_store_failing(true);
        }
        Some(Stored::Fatal(reason)) => return Err(died(reason)),
        None => return Err(died("the store's thread ended".into())),
    }
    Ok(())
}

/// Handles the commands due, at most [`BATCH`] commands or
/// [`BATCH_PACKETS`] packets before the core writes; the rest wait for the
/// next turn.
fn handle_due(broker: &mut Broker, w: &mut Writers, clock: Clock, input: &mut Due) {
    let mut packets = 0;
    for _ in 0..BATCH {
        if packets >= BATCH_PACKETS {
            break;
        }
        let Some(cmd) = input.pop() else {
            break;
        };
        packets += weight(&cmd);
        handle(broker, w, clock, cmd);
    }
}

/// The core's side of the connections' writers.
pub(super) struct Writers {
    pub(super) conns: HashMap<ConnId, ConnHandle>,
    /// Connections whose outbox was full when the core last wrote for them.
    pub(super) blocked: Vec<ConnId>,
    /// Connections the core closed whose last packets wait for the store:
    /// their sockets close once those are written.
    pub(super) closing: Vec<ConnId>,
    /// Connections closed since the core loop last looked (for the
    /// authentication driver).
    pub(super) closed: Vec<ConnId>,
    /// Opens and closes for the log.
    log: ConnLog,
}

impl Writers {
    pub(super) fn new() -> Writers {
        Writers {
            conns: HashMap::new(),
            blocked: Vec::new(),
            closing: Vec::new(),
            closed: Vec::new(),
            log: ConnLog::default(),
        }
    }
}

/// How many packets a command brings to the core.
pub(super) fn weight(cmd: &ToCore) -> usize {
    match cmd {
        ToCore::Packets { packets, .. } => packets.len().max(1),
        ToCore::Open { .. } | ToCore::Eof(_) | ToCore::Writable(_) => 1,
    }
}

pub(super) fn handle(broker: &mut Broker, w: &mut Writers, clock: Clock, cmd: ToCore) {
    let now = clock.now();
    match cmd {
        ToCore::Open {
            peer,
            certificate,
            writer,
            reply,
        } => {
            let info = PeerInfo {
                remote: peer.to_string(),
                certificate_subject: certificate.subject,
                certificate_username: certificate.username,
            };
            match broker.open(now, info) {
                Ok(id) => {
                    w.log.opened(id, peer);
                    w.conns.insert(id, ConnHandle { writer });
                    let _ = reply.send(Some((id, broker.decoder())));
                }
                Err(e) => {
                    if let Some(suppressed) = REFUSED.allow() {
                        warn!(%peer, error = %e, suppressed, "connection refused");
                    }
                    let _ = reply.send(None);
                }
            }
        }
        ToCore::Packets {
            id,
            packets,
            error,
            partial,
            stamp,
            ..
        } => {
            if !packets.is_empty() || error.is_some() {
                // The stamp counts only once the core's turns are stamped
                // (`limits.order_across_connections`).
                broker.handle_packets_read_at(id, now, packets, error, stamp.0);
            }
            if let Some(buffered) = partial {
                broker.handle_partial(id, now, buffered);
            }
        }
        ToCore::Eof(id) => broker.handle_eof(id, now),
        ToCore::Writable(id) => {
            if let Some(i) = w.blocked.iter().position(|b| *b == id) {
                w.blocked.swap_remove(i);
                write_one(broker, w, clock, id);
            }
        }
    }
}

/// Writes every connection that has bytes, then acts on closes.
pub(super) fn flush(broker: &mut Broker, w: &mut Writers, clock: Clock) {
    // Connections whose outbox was full: those that have caught up since
    // get their waiting packets now (their own Writable may still be queued
    // behind other commands, or was not sent because the queue was full).
    if !w.blocked.is_empty() {
        let waiting = std::mem::take(&mut w.blocked);
        for id in waiting {
            match w.conns.get(&id) {
                Some(h) if h.writer.has_room() => write_one(broker, w, clock, id),
                Some(_) => w.blocked.push(id),
                None => {}
            }
        }
    }
    while let Some(id) = broker.poll_writable() {
        if !w.blocked.contains(&id) {
            write_one(broker, w, clock, id);
        }
    }
    // Flow control: publishers whose socket is not read while one of
    // their acknowledgements is held, and those read again.
    while let Some((id, reading)) = broker.poll_reading() {
        if let Some(h) = w.conns.get(&id) {
            h.writer.set_reading(reading);
        }
    }
    while let Some(ev) = broker.poll_event() {
        match ev {
            BrokerEvent::Connected {
                id,
                client_id,
                username,
                version,
                session_present,
            } => w
                .log
                .connected(id, client_id, username.as_ref(), version, session_present),
            BrokerEvent::Closed { id, close } => {
                w.log.closed(id, &close);
                w.closed.push(id);
                // The last bytes (a DISCONNECT, a refusing CONNACK) go out first.
                write_one(broker, w, clock, id);
                if broker.output_held(id) {
                    w.closing.push(id);
                } else {
                    close_socket(w, id);
                }
            }
        }
    }
    if !w.closing.is_empty() {
        let closing = std::mem::take(&mut w.closing);
        for id in closing {
            if broker.output_held(id) {
                w.closing.push(id);
            } else {
                write_one(broker, w, clock, id);
                close_socket(w, id);
            }
        }
    }
}

fn close_socket(w: &mut Writers, id: ConnId) {
    if let Some(h) = w.conns.remove(&id) {
        h.writer.push(ToConn::Close);
    }
    w.blocked.retain(|b| *b != id);
}

pub(super) fn write_one(broker: &mut Broker, w: &mut Writers, clock: Clock, id: ConnId) {
    let now = clock.now();
    let Some(h) = w.conns.get_mut(&id) else {
        // Gone from our side: still let the core free it.
        let mut sink = Vec::new();
        while broker
            .poll_frames(id, now, &mut sink, usize::MAX)
            .is_some_and(|b| b.wire_len > 0)
        {
            sink.clear();
        }
        return;
    };
    loop {
        if !h.writer.has_room() {
            // A slow reader: its packets wait in its session, whose bounded
            // queue sheds load, until the writer catches up.
            if !w.blocked.contains(&id) {
                w.blocked.push(id);
            }
            return;
        }
        let mut frames = Vec::new();
        let Some(batch) = broker.poll_frames(id, now, &mut frames, CHUNK_BUDGET) else {
            return;
        };
        if frames.is_empty() {
            return;
        }
        h.writer
            .push(ToConn::Frames(batch.version, frames, batch.wire_len));
    }
}
