//! Test helpers: a clock on tokio's timer, an in-memory pipe implementing the
//! `embedded-io-async` traits, and a scripted MQTT server on its far end.

// Each test file uses part of this module, as its own crate.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use mqtt_embedded::mqtt_session::mqtt_codec::{Decoder, Packet, ProtocolVersion};
use mqtt_embedded::{Clock, Instant};

/// A clock on tokio's timer (so `start_paused` tests run in virtual time).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock(tokio::time::Instant);

impl TokioClock {
    pub fn new() -> Self {
        TokioClock(tokio::time::Instant::now())
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }

    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(self.0 + Duration::from_millis(deadline.as_millis())).await
    }
}

#[derive(Debug, Default)]
struct Direction {
    bytes: VecDeque<u8>,
    closed: bool,
    reader: Option<Waker>,
}

/// One end of an in-memory byte pipe; dropping an end closes both directions
/// for the other (it reads end of stream, its writes fail).
#[derive(Debug)]
pub struct PipeEnd {
    rx: Arc<Mutex<Direction>>,
    tx: Arc<Mutex<Direction>>,
}

/// A connected pair of pipe ends.
pub fn pipe() -> (PipeEnd, PipeEnd) {
    let a = Arc::new(Mutex::new(Direction::default()));
    let b = Arc::new(Mutex::new(Direction::default()));
    (
        PipeEnd {
            rx: a.clone(),
            tx: b.clone(),
        },
        PipeEnd { rx: b, tx: a },
    )
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        for d in [&self.rx, &self.tx] {
            let mut d = d.lock().unwrap();
            d.closed = true;
            if let Some(w) = d.reader.take() {
                w.wake();
            }
        }
    }
}

impl ErrorType for PipeEnd {
    type Error = ErrorKind;
}

impl Read for PipeEnd {
    // Cancel-safe: bytes leave the pipe only in the poll that returns them.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        std::future::poll_fn(|cx| {
            let mut d = self.rx.lock().unwrap();
            if d.bytes.is_empty() {
                if d.closed {
                    return Poll::Ready(Ok(0));
                }
                d.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = buf.len().min(d.bytes.len());
            for (slot, b) in buf.iter_mut().zip(d.bytes.drain(..n)) {
                *slot = b;
            }
            Poll::Ready(Ok(n))
        })
        .await
    }
}

impl Write for PipeEnd {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        let mut d = self.tx.lock().unwrap();
        if d.closed {
            return Err(ErrorKind::BrokenPipe);
        }
        d.bytes.extend(buf);
        if let Some(w) = d.reader.take() {
            w.wake();
        }
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// The server side of a pipe, speaking raw packets so a test decides every
/// answer (or its absence).
pub struct Peer {
    end: PipeEnd,
    rbuf: BytesMut,
    decoder: Decoder,
    pub version: ProtocolVersion,
}

impl Peer {
    pub fn new(end: PipeEnd) -> Self {
        Peer {
            end,
            rbuf: BytesMut::new(),
            decoder: Decoder::new(),
            version: ProtocolVersion::V311,
        }
    }

    /// The next packet from the client; `None` at end of stream. Bounded by
    /// a (virtual) 300 s, so a test that waits for nothing fails.
    pub async fn recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(Duration::from_secs(300), self.recv_inner())
            .await
            .expect("the client sent a packet in time")
    }

    async fn recv_inner(&mut self) -> Option<Packet> {
        loop {
            if let Some(p) = self.decoder.decode(&mut self.rbuf).expect("valid packets") {
                if let Packet::Connect(c) = &p {
                    self.version = c.protocol;
                }
                return Some(p);
            }
            let mut chunk = [0u8; 512];
            let n = self.end.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn send(&mut self, p: Packet) {
        let mut buf = BytesMut::new();
        p.encode(self.version, &mut buf).expect("encodable");
        self.send_raw(&buf).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.end.write(bytes).await;
    }
}
