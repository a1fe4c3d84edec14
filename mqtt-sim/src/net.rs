//! The simulated network: a link per connection ([`LinkConfig`]), a pipe each way.
//!
//! A pipe keeps the order of what is written into it (TCP does) but decides
//! when each byte arrives and in which pieces: latency and jitter, a
//! bandwidth, chunking at arbitrary byte boundaries, stalls, and the end of
//! the stream, either after the last byte (a close) or at once with the bytes
//! in flight lost (a cut). Every random choice comes from the simulator's
//! seeded [`Rng`].

use std::collections::VecDeque;

use bytes::Bytes;
use mqtt_router::Instant;

use crate::rng::Rng;

/// How one connection's transport behaves. All times in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// One-way delay of every byte.
    pub latency_ms: u64,
    /// Extra delay, drawn per write in `0..=jitter_ms` (order is kept).
    pub jitter_ms: u64,
    /// Largest piece a write is cut into (each piece is one read at the far
    /// end); 0 keeps each write whole.
    pub max_chunk: usize,
    /// Bytes per millisecond the link carries; 0 is unlimited.
    pub bytes_per_ms: u64,
    /// Bytes the broker may have in flight towards the client before it
    /// stops writing to it (a socket's send buffer); 0 is unlimited.
    pub window: usize,
    /// After a cut, each end notices within this many milliseconds (a
    /// half-open connection until then).
    pub eof_delay_ms: u64,
}

impl LinkConfig {
    /// Everything arrives at once, whole: what a unit test wants.
    pub const fn instant() -> Self {
        LinkConfig {
            latency_ms: 0,
            jitter_ms: 0,
            max_chunk: 0,
            bytes_per_ms: 0,
            window: 0,
            eof_delay_ms: 0,
        }
    }

    /// A local network: a millisecond or two, small reads.
    pub const fn lan() -> Self {
        LinkConfig {
            latency_ms: 1,
            jitter_ms: 1,
            max_chunk: 64,
            bytes_per_ms: 0,
            window: 0,
            eof_delay_ms: 5,
        }
    }

    /// A wide-area path: tens of milliseconds, jitter, reads of any size,
    /// slow to notice a cut.
    pub const fn wan() -> Self {
        LinkConfig {
            latency_ms: 40,
            jitter_ms: 30,
            max_chunk: 7,
            bytes_per_ms: 0,
            window: 0,
            eof_delay_ms: 2_000,
        }
    }

    /// A slow consumer: little bandwidth and a small send buffer, so the
    /// broker's queue for it fills.
    pub const fn slow() -> Self {
        LinkConfig {
            latency_ms: 5,
            jitter_ms: 5,
            max_chunk: 16,
            bytes_per_ms: 2,
            window: 256,
            eof_delay_ms: 100,
        }
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig::instant()
    }
}

/// Counts the whole MQTT packets in a byte stream from their fixed headers
/// (type byte, Remaining Length, body skipped), across arbitrary pieces.
#[derive(Debug, Clone, Default)]
pub(crate) struct PacketCounter {
    /// Body bytes still to skip.
    body: u64,
    /// Within a fixed header: Remaining Length bytes seen, and the value so far.
    header: Option<(u32, u64)>,
}

impl PacketCounter {
    /// Feeds `bytes`; returns how many packets ended in them.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut done = 0;
        while !bytes.is_empty() {
            if self.body > 0 {
                let n = self.body.min(bytes.len() as u64);
                self.body -= n;
                bytes = &bytes[n as usize..];
                if self.body == 0 {
                    done += 1;
                }
                continue;
            }
            let b = bytes[0];
            bytes = &bytes[1..];
            match self.header {
                None => self.header = Some((0, 0)),
                Some((n, value)) => {
                    let value = value | (u64::from(b & 0x7F) << (7 * n));
                    if b & 0x80 != 0 && n < 3 {
                        self.header = Some((n + 1, value));
                    } else {
                        self.header = None;
                        self.body = value;
                        if value == 0 {
                            done += 1;
                        }
                    }
                }
            }
        }
        done
    }
}

/// One direction of a link.
#[derive(Debug, Default)]
pub(crate) struct Pipe {
    /// Pieces on their way, each with the instant it can be read.
    segments: VecDeque<(Instant, Bytes)>,
    /// When the last piece arrives (later writes never overtake it).
    last_at: Instant,
    /// Bytes written and not read yet.
    pub(crate) in_flight: usize,
    /// The end of the stream: the reader sees it at this instant, once the
    /// pieces before it are read.
    eof_at: Option<Instant>,
    /// The reader has seen the end of the stream.
    pub(crate) eof_seen: bool,
    /// The writer's side is gone: what it writes is lost.
    pub(crate) broken: bool,
    /// Nothing arrives before this instant.
    stalled_until: Instant,
    counter: PacketCounter,
    /// Whole packets written so far.
    pub(crate) packets: u64,
}

/// What a pipe has for its reader now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// A piece of the stream.
    Bytes,
    /// The end of the stream.
    Eof,
}

impl Pipe {
    /// Writes `bytes` at `now`, cut into pieces as `cfg` says, counting the
    /// packets they complete. Lost if the pipe is broken or closed.
    pub(crate) fn write(&mut self, now: Instant, bytes: Bytes, cfg: &LinkConfig, rng: &mut Rng) {
        if bytes.is_empty() || self.broken || self.eof_at.is_some() {
            return;
        }
        self.packets += self.counter.feed(&bytes);
        let delay = cfg.latency_ms + rng.below(cfg.jitter_ms + 1);
        let mut at = now.saturating_add(ms(delay)).max(self.last_at);
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = if cfg.max_chunk == 0 {
                rest.len()
            } else {
                (1 + rng.below(cfg.max_chunk as u64) as usize).min(rest.len())
            };
            let piece = rest.split_to(n);
            if cfg.bytes_per_ms > 0 {
                at = at.saturating_add(ms((n as u64).div_ceil(cfg.bytes_per_ms)));
            }
            self.in_flight += piece.len();
            self.segments.push_back((at, piece));
        }
        self.last_at = at;
    }

    /// What the reader can take at `now`, if anything.
    pub(crate) fn due(&self, now: Instant) -> Option<Due> {
        if self.eof_seen || now < self.stalled_until {
            return None;
        }
        match (self.segments.front(), self.eof_at) {
            (Some((at, _)), _) if *at <= now => Some(Due::Bytes),
            (None, Some(at)) if at <= now => Some(Due::Eof),
            _ => None,
        }
    }

    /// The next instant after `now` at which something becomes due.
    pub(crate) fn next_at(&self) -> Option<Instant> {
        if self.eof_seen {
            return None;
        }
        let at = match (self.segments.front(), self.eof_at) {
            (Some((at, _)), _) => *at,
            (None, Some(at)) => at,
            (None, None) => return None,
        };
        Some(at.max(self.stalled_until))
    }

    /// Takes the next piece (the caller checked [`Pipe::due`]).
    pub(crate) fn take(&mut self) -> Option<Bytes> {
        let (_, bytes) = self.segments.pop_front()?;
        self.in_flight -= bytes.len();
        Some(bytes)
    }

    /// The reader takes the end of the stream.
    pub(crate) fn take_eof(&mut self) {
        self.eof_seen = true;
    }

    /// The writer closes: the reader sees the end after the last byte.
    pub(crate) fn close(&mut self, now: Instant, cfg: &LinkConfig) {
        if self.eof_at.is_none() && !self.broken {
            self.eof_at = Some(now.saturating_add(ms(cfg.latency_ms)).max(self.last_at));
        }
    }

    /// The connection is cut: what is in flight is lost, the writer's
    /// further bytes too, and the reader notices at `eof_at`.
    pub(crate) fn cut(&mut self, eof_at: Instant) {
        self.segments.clear();
        self.in_flight = 0;
        self.broken = true;
        if !self.eof_seen {
            self.eof_at = Some(self.eof_at.map_or(eof_at, |at| at.min(eof_at)));
        }
    }

    /// Nothing arrives before `until`.
    pub(crate) fn stall(&mut self, until: Instant) {
        self.stalled_until = self.stalled_until.max(until);
    }

    /// The reader is gone: nothing more will be read.
    pub(crate) fn is_done(&self) -> bool {
        self.eof_seen
    }
}

/// `n` milliseconds.
pub(crate) const fn ms(n: u64) -> core::time::Duration {
    core::time::Duration::from_millis(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_finds_packets_across_any_cut() {
        // PINGREQ, a PUBLISH with a two-byte Remaining Length, DISCONNECT.
        let mut stream = vec![0xC0, 0x00, 0x30, 0x80, 0x01];
        stream.extend(std::iter::repeat_n(7u8, 128));
        stream.extend([0xE0, 0x00]);
        for cut in 0..stream.len() {
            let mut c = PacketCounter::default();
            let n = c.feed(&stream[..cut]) + c.feed(&stream[cut..]);
            assert_eq!(n, 3, "cut at {cut}");
        }
    }

    #[test]
    fn a_pipe_keeps_order_and_ends_after_its_bytes() {
        let mut rng = Rng::new(1);
        let cfg = LinkConfig::wan();
        let mut p = Pipe::default();
        let now = Instant::ZERO;
        p.write(now, Bytes::from_static(b"abcdefgh"), &cfg, &mut rng);
        p.write(now, Bytes::from_static(b"ijkl"), &cfg, &mut rng);
        p.close(now, &cfg);
        let mut got = Vec::new();
        let mut t = now;
        while !p.is_done() {
            t = p.next_at().unwrap().max(t);
            match p.due(t) {
                Some(Due::Bytes) => got.extend_from_slice(&p.take().unwrap()),
                Some(Due::Eof) => p.take_eof(),
                None => unreachable!("next_at said something is due"),
            }
        }
        assert_eq!(got, b"abcdefghijkl");
        assert!(t.as_millis() >= cfg.latency_ms);
    }
}
