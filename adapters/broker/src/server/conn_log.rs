//! A connection's open and close in the log at info level, with the client
//! identifier, the peer's address, the protocol version and the reason:
//! what an operator looks for first. Client input is cut and escaped
//! ([`Shown`]), and each peer address gets at most a few lines a second, so
//! a flood of connections from one source cannot flood the log (what is
//! suppressed is counted in that source's next line).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mqtt_codec::{ProtocolVersion, Str};
use mqtt_router::broker::ConnId;
use mqtt_session::Close;
use tracing::info;

use crate::logging::Shown;

/// Lines a second for one source address.
const PER_SOURCE: u32 = 5;
/// Sources remembered at once; past it, the quiet ones are forgotten.
const MAX_SOURCES: usize = 4096;

/// What the log says of one connection, and the per-source limits.
#[derive(Debug, Default)]
pub(super) struct ConnLog {
    open: HashMap<ConnId, Label>,
    sources: HashMap<IpAddr, Window>,
}

/// A connection as its log lines name it.
#[derive(Debug)]
struct Label {
    peer: SocketAddr,
    client_id: Option<Str>,
    version: Option<ProtocolVersion>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

impl ConnLog {
    /// A socket was admitted as connection `id`.
    pub(super) fn opened(&mut self, id: ConnId, peer: SocketAddr) {
        let label = Label {
            peer,
            client_id: None,
            version: None,
        };
        self.open.insert(id, label);
    }

    /// Its CONNECT was accepted.
    pub(super) fn connected(
        &mut self,
        id: ConnId,
        client_id: Str,
        username: Option<&Str>,
        version: ProtocolVersion,
        session_present: bool,
    ) {
        let Some(label) = self.open.get_mut(&id) else {
            return;
        };
        label.client_id = Some(client_id);
        label.version = Some(version);
        let peer = label.peer;
        if let Some(suppressed) = self.allow(peer.ip(), Instant::now()) {
            let label = &self.open[&id];
            let client_id = Shown(label.client_id.as_ref().map_or("", Str::as_str));
            let username = Shown(username.map_or("", Str::as_str));
            info!(%client_id, %peer, version = %version_name(version), %username, session_present, suppressed, "client connected");
        }
    }

    /// It ended, for `close`'s reason.
    pub(super) fn closed(&mut self, id: ConnId, close: &Close) {
        let Some(label) = self.open.remove(&id) else {
            return;
        };
        let Some(suppressed) = self.allow(label.peer.ip(), Instant::now()) else {
            return;
        };
        let peer = label.peer;
        let reason = close.reason;
        let initiator = close.initiator;
        match (&label.client_id, label.version) {
            (Some(client_id), Some(version)) => {
                let client_id = Shown(client_id.as_str());
                info!(%client_id, %peer, version = %version_name(version), %reason, ?initiator, suppressed, "client disconnected");
            }
            // Never accepted: a refused CONNECT, or no CONNECT at all.
            _ => {
                info!(%peer, %reason, ?initiator, suppressed, "connection refused or ended before CONNECT")
            }
        }
    }

    /// Whether a line about `source` may be logged at `now`: `Some` with
    /// that source's lines suppressed since its last one.
    fn allow(&mut self, source: IpAddr, now: Instant) -> Option<u64> {
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&source) {
            self.sources
                .retain(|_, w| now.saturating_duration_since(w.started) < Duration::from_secs(1));
            if self.sources.len() >= MAX_SOURCES {
                // Thousands of sources in one second: a flood; say nothing
                // more of new ones until it passes.
                return None;
            }
        }
        let w = self.sources.entry(source).or_insert(Window {
            started: now,
            logged: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(w.started) >= Duration::from_secs(1) {
            w.started = now;
            w.logged = 0;
        }
        if w.logged >= PER_SOURCE {
            w.suppressed += 1;
            return None;
        }
        w.logged += 1;
        Some(std::mem::take(&mut w.suppressed))
    }
}

fn version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V31 => "3.1",
        ProtocolVersion::V311 => "3.1.1",
        ProtocolVersion::V5 => "5.0",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_gets_a_few_lines_a_second_and_its_next_line_counts_the_rest() {
        let mut log = ConnLog::default();
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let t0 = Instant::now();
        let logged = (0..20).filter(|_| log.allow(a, t0).is_some()).count();
        assert_eq!(logged, PER_SOURCE as usize);
        // Another source is not held back by the first one's flood.
        assert_eq!(log.allow(b, t0), Some(0));
        assert_eq!(log.allow(a, t0 + Duration::from_secs(1)), Some(15));
    }

    #[test]
    fn the_sources_remembered_are_bounded() {
        let mut log = ConnLog::default();
        let t0 = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 100) {
            let _ = log.allow(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(log.sources.len() <= MAX_SOURCES);
        // Once the flood's second has passed, new sources are logged again.
        let later = t0 + Duration::from_secs(2);
        assert_eq!(log.allow([192, 0, 2, 1].into(), later), Some(0));
        assert!(log.sources.len() <= MAX_SOURCES);
    }
}
