//! The scheduler and the adapters' work: what is due at the current instant,
//! one step of it at a time, and everything a step makes the state machines
//! produce taken at once.

use core::time::Duration;

use bytes::BytesMut;
use mqtt_router::broker::{BrokerEvent, ConnId};
use mqtt_router::Instant;
use mqtt_session::mqtt_codec::{DecodeError, Decoder, Packet};

use super::{AdapterPath, PeerId, Scheduling, Sim};
use crate::net::Due;
use crate::observe::Observer;

/// Steps at one instant before the simulation counts as stuck.
const MAX_STEPS_PER_INSTANT: u64 = 10_000_000;

/// The frame budget of one `poll_frames` call on the packet path.
const FRAME_BUDGET: usize = 300;

/// One thing due now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// A crashed broker comes back.
    Restart(usize),
    /// A broker's deadline.
    BrokerTimer(usize),
    /// A broker's store commits its next batch of records.
    StoreCommit(usize),
    /// A hung client wakes up.
    Thaw(PeerId),
    /// A client's deadline.
    ClientTimer(PeerId),
    /// The next piece of a client's stream reaches its broker.
    ToBroker(PeerId),
    /// The end of a client's stream reaches its broker.
    EofToBroker(PeerId),
    /// The next piece of a broker's stream reaches the client.
    ToClient(PeerId),
    /// The end of a broker's stream reaches the client.
    EofToClient(PeerId),
}

impl<O: Observer> Sim<O> {
    /// Everything due at the current instant, in the in-order priority.
    fn ready(&self, out: &mut Vec<Action>) {
        let now = self.now;
        for (b, node) in self.brokers.iter().enumerate() {
            if node.restart_at.is_some_and(|at| at <= now) {
                out.push(Action::Restart(b));
            }
            if node
                .core
                .as_ref()
                .and_then(|c| c.poll_timeout())
                .is_some_and(|at| at <= now)
            {
                out.push(Action::BrokerTimer(b));
            }
            if self.commit_due(b).is_some_and(|at| at <= now) {
                out.push(Action::StoreCommit(b));
            }
        }
        for &i in &self.active {
            let p = &self.peers[i];
            if p.thaw_at.is_some_and(|at| at <= now) {
                out.push(Action::Thaw(i));
            }
            if !p.frozen {
                if let Some(c) = &p.conn {
                    if c.poll_timeout().is_some_and(|at| at <= now) {
                        out.push(Action::ClientTimer(i));
                    }
                }
            }
        }
        for &i in &self.active {
            match self.peers[i].c2s.due(now) {
                Some(Due::Bytes) => out.push(Action::ToBroker(i)),
                Some(Due::Eof) => out.push(Action::EofToBroker(i)),
                None => {}
            }
        }
        for &i in &self.active {
            let p = &self.peers[i];
            if p.frozen {
                continue;
            }
            match p.s2c.due(now) {
                Some(Due::Bytes) => out.push(Action::ToClient(i)),
                Some(Due::Eof) => out.push(Action::EofToClient(i)),
                None => {}
            }
        }
    }

    /// The earliest instant anything is due, if anything ever is.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let brokers = self.brokers.iter().enumerate().flat_map(|(b, n)| {
            let timer = n.core.as_ref().and_then(|c| c.poll_timeout());
            [timer, n.restart_at, self.commit_due(b)]
        });
        let peers = self.active.iter().flat_map(|&i| {
            let p = &self.peers[i];
            let (timer, s2c) = if p.frozen {
                (None, None)
            } else {
                (
                    p.conn.as_ref().and_then(|c| c.poll_timeout()),
                    p.s2c.next_at(),
                )
            };
            [timer, p.c2s.next_at(), s2c, p.thaw_at]
        });
        brokers.chain(peers).flatten().min()
    }

    /// Takes one step due at the current instant; false if nothing is due.
    pub fn step(&mut self) -> bool {
        // One buffer for every step: the scheduler runs millions of them.
        let mut ready = core::mem::take(&mut self.ready_buf);
        ready.clear();
        self.ready(&mut ready);
        let action = match (ready.len(), self.scheduling) {
            (0, _) => None,
            (_, Scheduling::InOrder) => Some(ready[0]),
            (n, Scheduling::Random) => Some(ready[self.rng.below(n as u64) as usize]),
        };
        self.ready_buf = ready;
        let Some(action) = action else {
            return false;
        };
        self.stats.steps += 1;
        self.perform(action);
        true
    }

    /// Does everything due at the current instant, including what that
    /// makes due, until nothing is left; the clock does not move. Output a
    /// test produced by calling a client or a broker directly is taken first.
    pub fn run_until_idle(&mut self) {
        for k in 0..self.active.len() {
            self.flush_client(self.active[k]);
        }
        for b in 0..self.brokers.len() {
            self.drain_broker(b);
        }
        let mut steps = 0;
        while self.step() {
            steps += 1;
            assert!(
                steps < MAX_STEPS_PER_INSTANT,
                "the simulation does not settle at {:?}",
                self.now
            );
        }
        self.active.retain(|&i| !self.peers[i].finished());
        let now = self.now;
        for (b, node) in self.brokers.iter().enumerate() {
            if let Some(core) = &node.core {
                self.observer.at_rest(now, b, core);
            }
        }
    }

    /// Lets `d` pass: everything due on the way happens at its instant.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now.saturating_add(d);
        self.run_until(target);
    }

    /// Runs until the clock reads `target`, acting on everything due on the
    /// way at its instant, and then on what is due at `target`.
    pub fn run_until(&mut self, target: Instant) {
        loop {
            self.run_until_idle();
            match self.next_due() {
                Some(at) if at <= target => self.now = self.now.max(at),
                _ => break,
            }
        }
        self.now = self.now.max(target);
        self.run_until_idle();
    }

    /// The clock jumps forward by `d` (a suspended machine, a stepped
    /// clock): nothing happens on the way; everything that fell due in
    /// between is acted on late, at the new instant.
    pub fn jump(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
        self.run_until_idle();
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Restart(b) => self.restart_broker(b),
            Action::BrokerTimer(b) => self.broker_timer(b),
            Action::StoreCommit(b) => self.commit(b),
            Action::Thaw(i) => {
                let p = &mut self.peers[i];
                p.frozen = false;
                p.thaw_at = None;
                self.flush_client(i);
            }
            Action::ClientTimer(i) => self.client_timer(i),
            Action::ToBroker(i) => self.deliver_to_broker(i),
            Action::EofToBroker(i) => self.eof_to_broker(i),
            Action::ToClient(i) => self.deliver_to_client(i),
            Action::EofToClient(i) => self.eof_to_client(i),
        }
    }

    fn broker_timer(&mut self, b: usize) {
        let now = self.now;
        let core = self.brokers[b].core.as_ref();
        self.observer.broker_timeout(now, b, core);
        let Some(core) = self.brokers[b].core.as_mut() else {
            return;
        };
        core.handle_timeout(now);
        // A repeated call is harmless, and afterwards the next deadline lies
        // in the future (DESIGN.md, the deadline contract).
        let next = core.poll_timeout();
        assert!(
            next.is_none_or(|t| t > now),
            "broker deadline {next:?} not after now {now:?} after handle_timeout"
        );
        self.drain_broker(b);
    }

    fn client_timer(&mut self, i: PeerId) {
        let now = self.now;
        let Some(c) = self.peers[i].conn.as_mut() else {
            return;
        };
        c.handle_timeout(now);
        let next = c.poll_timeout();
        assert!(
            next.is_none_or(|t| t > now),
            "client deadline {next:?} not after now {now:?} after handle_timeout"
        );
        self.flush_client(i);
    }

    /// The next piece of peer `i`'s stream reaches its broker.
    ///
    /// An observer that wants packets sees each one the broker accepted,
    /// right after the broker handled it and before anything the broker did
    /// is taken, so the piece is handed over one packet at a time (a read
    /// that ends where a packet ends, a batch of one packet): a packet on
    /// which the broker closes the connection for a broken rule, and the
    /// ones after it, were never acted on, and the observer does not see
    /// them.
    fn deliver_to_broker(&mut self, i: PeerId) {
        let Some(bytes) = self.peers[i].c2s.take() else {
            return;
        };
        let b = self.peers[i].broker;
        if !self.reads(i) {
            // The broker closed this socket or crashed: the bytes are lost.
            return;
        }
        let watch = self.observer.wants_packets();
        match (self.brokers[b].path, watch) {
            (AdapterPath::Bytes, false) => {
                self.handle_read(i, &bytes);
                self.drain_broker(b);
            }
            (AdapterPath::Bytes, true) => self.read_packetwise(i, &bytes),
            (AdapterPath::Packets, _) => self.read_packets(i, &bytes, watch),
        }
    }

    /// Whether peer `i`'s broker still reads its connection.
    fn reads(&self, i: PeerId) -> bool {
        let p = &self.peers[i];
        p.id.is_some() && !p.broker_gone && self.brokers[p.broker].core.is_some()
    }

    /// Whether peer `i`'s broker just closed its connection for a broken
    /// rule (the events it produced are kept for [`Sim::drain_broker`]).
    fn refused(&mut self, i: PeerId) -> bool {
        let Some(id) = self.peers[i].id else {
            return true;
        };
        let node = &mut self.brokers[self.peers[i].broker];
        let Some(core) = node.core.as_mut() else {
            return true;
        };
        while let Some(ev) = core.poll_event() {
            node.events.push_back(ev);
        }
        node.events.iter().any(|ev| match ev {
            BrokerEvent::Closed { id: x, close } => *x == id && close.violation.is_some(),
            BrokerEvent::Connected { .. } => false,
        })
    }

    /// `Broker::handle_read` of `bytes` on peer `i`'s connection.
    fn handle_read(&mut self, i: PeerId, bytes: &[u8]) {
        let now = self.now;
        let peer = &mut self.peers[i];
        let (Some(core), Some(id)) = (self.brokers[peer.broker].core.as_mut(), peer.id) else {
            return;
        };
        peer.broker_rbuf.extend_from_slice(bytes);
        core.handle_read(id, now, &mut peer.broker_rbuf);
    }

    /// The bytes path under an observer: `bytes` handed over in reads that
    /// end where packets end, each packet shown to the observer first.
    fn read_packetwise(&mut self, i: PeerId, bytes: &[u8]) {
        let now = self.now;
        let b = self.peers[i].broker;
        let mut ends = Vec::new();
        if let Some(core) = self.brokers[b].core.as_ref() {
            let (decoder, buf) = self.peers[i]
                .shadow
                .get_or_insert_with(|| (core.decoder(), BytesMut::new()));
            buf.extend_from_slice(bytes);
            // What is left after a packet is always a tail of `bytes`.
            while let Ok(Some(packet)) = decoder.decode(buf) {
                ends.push((bytes.len() - buf.len(), packet));
            }
        }
        let mut fed = 0;
        for (end, packet) in ends {
            self.handle_read(i, &bytes[fed..end]);
            fed = end;
            if let (false, Some(core)) = (self.refused(i), self.brokers[b].core.as_ref()) {
                self.observer.to_broker(now, b, i, &packet, core);
            }
            self.drain_broker(b);
            if !self.reads(i) {
                return;
            }
        }
        if fed < bytes.len() {
            self.handle_read(i, &bytes[fed..]);
            self.drain_broker(b);
        }
    }

    /// The packet path: the adapter decodes and hands the broker its
    /// packets, all at once, or one at a time under an observer (`watch`).
    fn read_packets(&mut self, i: PeerId, bytes: &[u8], watch: bool) {
        let now = self.now;
        let b = self.peers[i].broker;
        let peer = &mut self.peers[i];
        let (Some(core), Some(id)) = (self.brokers[b].core.as_mut(), peer.id) else {
            return;
        };
        peer.broker_rbuf.extend_from_slice(bytes);
        let decoder = peer.adapter_decoder.get_or_insert_with(|| core.decoder());
        let (packets, error) = decode_all(decoder, &mut peer.broker_rbuf);
        if !watch {
            if !packets.is_empty() || error.is_some() {
                core.handle_packets(id, now, packets, error);
            }
            return self.drain_broker(b);
        }
        for (packet, n) in packets {
            let Some(core) = self.brokers[b].core.as_mut() else {
                return;
            };
            core.handle_packets(id, now, vec![(packet.clone(), n)], None);
            if let (false, Some(core)) = (self.refused(i), self.brokers[b].core.as_ref()) {
                self.observer.to_broker(now, b, i, &packet, core);
            }
            self.drain_broker(b);
            if !self.reads(i) {
                return;
            }
        }
        if let (Some(e), Some(core)) = (error, self.brokers[b].core.as_mut()) {
            core.handle_packets(id, now, Vec::new(), Some(e));
            self.drain_broker(b);
        }
    }

    fn eof_to_broker(&mut self, i: PeerId) {
        let now = self.now;
        let peer = &mut self.peers[i];
        peer.c2s.take_eof();
        let b = peer.broker;
        if peer.broker_gone {
            return;
        }
        let (Some(core), Some(id)) = (self.brokers[b].core.as_mut(), peer.id) else {
            return;
        };
        core.handle_eof(id, now);
        self.drain_broker(b);
    }

    /// The next piece of the broker's stream reaches peer `i`'s client; a
    /// broker write that waited for room in the link goes out.
    fn deliver_to_client(&mut self, i: PeerId) {
        let now = self.now;
        let peer = &mut self.peers[i];
        let Some(bytes) = peer.s2c.take() else {
            return;
        };
        if let (Some(c), false) = (peer.conn.as_mut(), peer.client_done) {
            peer.rbuf.extend_from_slice(&bytes);
            c.handle_read(now, &mut peer.rbuf);
            self.flush_client(i);
        }
        let peer = &self.peers[i];
        let (b, window, in_flight) = (peer.broker, peer.link.window, peer.s2c.in_flight);
        if let Some(id) = peer.id {
            let node = &mut self.brokers[b];
            if in_flight < window || window == 0 {
                if let Some(k) = node.blocked.iter().position(|x| *x == id) {
                    node.blocked.swap_remove(k);
                    self.write_conn(b, id, false);
                    self.drain_broker(b);
                }
            }
        }
    }

    fn eof_to_client(&mut self, i: PeerId) {
        let now = self.now;
        let peer = &mut self.peers[i];
        peer.s2c.take_eof();
        peer.open = false;
        if let Some(c) = peer.conn.as_mut() {
            c.handle_eof(now);
            self.flush_client(i);
        }
    }

    /// Takes everything broker `b` produced: writes, closes; then lets the
    /// observer look.
    pub(crate) fn drain_broker(&mut self, b: usize) {
        let now = self.now;
        loop {
            let mut moved = false;
            while let Some(id) = self.brokers[b]
                .core
                .as_mut()
                .and_then(|c| c.poll_writable())
            {
                moved = true;
                self.write_conn(b, id, false);
            }
            while let Some(req) = self.brokers[b].core.as_mut().and_then(|c| c.poll_auth()) {
                moved = true;
                self.answer_auth(b, req);
            }
            while let Some(ev) = self.next_event(b) {
                moved = true;
                match ev {
                    BrokerEvent::Closed { id, close } => self.on_broker_closed(b, id, close),
                    // The oracle judges CONNACKs from the clients' side.
                    BrokerEvent::Connected { .. } => {}
                }
            }
            if !moved {
                break;
            }
        }
        self.take_records(b);
        if self.cluster.is_some() {
            self.cluster_exchange(b);
        }
        if let Some(core) = self.brokers[b].core.as_ref() {
            self.observer.after_broker(now, b, core);
        }
    }

    /// The simulated driver answers an authentication request at once, or
    /// holds it for the test.
    fn answer_auth(&mut self, b: usize, req: mqtt_router::broker::AuthRequest) {
        let now = self.now;
        let answer = self.authority.as_mut().and_then(|a| a(&req));
        match (answer, self.brokers[b].core.as_mut()) {
            (Some(answer), Some(core)) => {
                // A stale ticket is the driver's normal case: nothing to do.
                let _ = core.answer_auth(req.ticket(), now, answer);
            }
            _ => self.held_auth.push((b, req)),
        }
    }

    /// Broker `b`'s next event: one kept by [`Sim::refused`] first.
    fn next_event(&mut self, b: usize) -> Option<BrokerEvent> {
        let node = &mut self.brokers[b];
        node.events
            .pop_front()
            .or_else(|| node.core.as_mut()?.poll_event())
    }

    /// The broker ended connection `id`: its last bytes go out, then its
    /// side of the transport closes.
    fn on_broker_closed(&mut self, b: usize, id: ConnId, close: mqtt_session::Close) {
        let now = self.now;
        let Some(&i) = self.brokers[b].peers.get(&id) else {
            return;
        };
        self.observer.broker_closed(now, b, i, &close);
        if self.record {
            self.closed.push((id, close.clone()));
        }
        self.write_conn(b, id, true);
        let node = &mut self.brokers[b];
        node.peers.remove(&id);
        node.blocked.retain(|x| *x != id);
        let peer = &mut self.peers[i];
        peer.broker_close = Some(close);
        peer.broker_gone = true;
        peer.s2c.close(now, &peer.link);
        // The socket is closed: what the client still sends is lost.
        peer.c2s.cut(now);
        peer.c2s.take_eof();
    }

    /// Writes what broker `b` has for connection `id` into its link, unless
    /// the link is full (then it waits; `last` writes anyway).
    pub(crate) fn write_conn(&mut self, b: usize, id: ConnId, last: bool) {
        let now = self.now;
        let node = &mut self.brokers[b];
        let Some(core) = node.core.as_mut() else {
            return;
        };
        let peer = node.peers.get(&id).map(|&i| &mut self.peers[i]);
        if let Some(p) = &peer {
            if !last && p.link.window > 0 && p.s2c.in_flight >= p.link.window {
                if !node.blocked.contains(&id) {
                    node.blocked.push(id);
                }
                return;
            }
        }
        let mut buf = BytesMut::new();
        match node.path {
            AdapterPath::Bytes => {
                let n = core.poll_transmit(id, now, &mut buf);
                assert_eq!(n, buf.len(), "poll_transmit reports what it wrote");
            }
            AdapterPath::Packets => loop {
                let before = buf.len();
                node.frames.clear();
                let Some(batch) = core.poll_frames(id, now, &mut node.frames, FRAME_BUDGET) else {
                    break;
                };
                for frame in &node.frames {
                    frame
                        .encode(batch.version, &mut buf)
                        .expect("the broker hands out encodable frames");
                }
                assert_eq!(
                    batch.wire_len,
                    buf.len() - before,
                    "the size reported is the size encoded"
                );
                if batch.wire_len == 0 {
                    break;
                }
            },
        }
        let Some(p) = peer else {
            return;
        };
        if buf.is_empty() {
            return;
        }
        if self.record {
            p.record(&buf);
        }
        p.s2c.write(now, buf.freeze(), &p.link, &mut self.rng);
    }

    /// Takes everything peer `i`'s client produced: bytes into its link,
    /// events to the observer (and the peer, when recording), and its side of
    /// the transport closed once it has closed. Call it after calling the
    /// client directly to put what it sends on the wire at once (without
    /// settling: [`Sim::run_until_idle`] takes it too).
    pub fn flush_client(&mut self, i: PeerId) {
        let now = self.now;
        let peer = &mut self.peers[i];
        let Some(c) = peer.conn.as_mut() else {
            return;
        };
        if peer.frozen {
            return;
        }
        let mut buf = BytesMut::new();
        let n = c.poll_transmit(now, &mut buf);
        assert_eq!(n, buf.len(), "poll_transmit reports what it wrote");
        if n > 0 {
            peer.c2s.write(now, buf.freeze(), &peer.link, &mut self.rng);
        }
        while let Some(ev) = c.poll_event() {
            self.observer.client_event(now, i, &ev);
            if self.record {
                peer.events.push(ev);
            }
        }
        if c.is_closed() && !peer.client_done {
            // The adapter closes the socket once the last bytes are written.
            peer.client_done = true;
            peer.open = false;
            peer.c2s.close(now, &peer.link);
        }
        self.observer.after_client(now, i, c);
    }
}

/// Every whole packet in `buf`, with its size, and the error that ended the
/// stream, if one did.
fn decode_all(
    decoder: &mut Decoder,
    buf: &mut BytesMut,
) -> (Vec<(Packet, usize)>, Option<DecodeError>) {
    let mut packets = Vec::new();
    loop {
        let len = buf.len();
        match decoder.decode(buf) {
            Ok(Some(p)) => packets.push((p, len - buf.len())),
            Ok(None) => return (packets, None),
            Err(e) => {
                buf.clear();
                return (packets, Some(e));
            }
        }
    }
}
