//! One connection's task: reads and decodes, hands packets to the core,
//! encodes and writes what the core sends back.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use mqtt_codec::{DecodeError, Decoder, Packet, ProtocolVersion};
use mqtt_router::broker::ConnId;
use mqtt_session::Frame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tracing::{debug, error};

use super::order::Stamp;
use super::outbox::{Outbox, ToConn};
use super::{ToCore, ToCoreTx, READ_MAX, READ_MIN};
use crate::tls::PeerCertificate;

/// Serves one connection's byte stream: registers with the core, then
/// reads and writes.
///
/// An idle connection spends its life in this future, so its size is what a
/// task costs per idle connection (`size_of_val`, checked by a test below:
/// 912 bytes with the rare steps inline, 472 before this layout, 200 then,
/// 256 with the partial packet report and the write bounds).
/// Hence a plain function returning an `async move` block (an `async fn`
/// keeps a second copy of each argument), the connection's address boxed
/// (only registering needs it), and every step but the wait itself in a
/// boxed future that exists only while it runs.
pub(super) fn serve<S>(
    mut stream: S,
    peer: SocketAddr,
    certificate: PeerCertificate,
    to_core: ToCoreTx,
) -> impl Future<Output = ()> + Send
where
    S: Stream,
{
    let opening = Box::new((peer, certificate));
    let outbox = Arc::new(Outbox::new(to_core.clone()));
    let serving = CatchPanic {
        outbox: outbox.clone(),
        future: async move {
            let (peer, certificate) = *opening;
            let registered = Box::pin(register(&to_core, peer, certificate, &outbox)).await;
            let Some((id, mut decoder)) = registered else {
                return;
            };
            // The socket is read with the outbox as its waker, which stamps
            // the reads (see `order`).
            let read_waker = Waker::from(outbox.clone());
            // One task per connection reads, decodes, encodes and writes: an
            // idle connection costs one small future, not two tasks and a
            // channel.
            let mut rbuf = ReadBuffer::new();
            loop {
                let step = std::future::poll_fn(|cx| {
                    poll_next(cx, &outbox, &read_waker, &mut stream, &mut rbuf)
                })
                .await;
                let ended = match step {
                    Step::Write => {
                        Box::pin(write_all_out(&mut stream, &outbox, &to_core, id)).await
                    }
                    Step::Read { n, free, stamp } => {
                        rbuf.after_read(n, free);
                        let (packets, error) = decode_all(&mut decoder, &mut rbuf.buf);
                        let partial = rbuf.partial();
                        rbuf.release_if_idle();
                        if packets.is_empty() && error.is_none() && partial.is_none() {
                            Ended::No
                        } else {
                            let read = Read {
                                packets,
                                error,
                                partial,
                            };
                            Box::pin(hand_over(&to_core, id, read, stamp)).await
                        }
                    }
                    Step::Eof => {
                        // The core answers with Close; the DISCONNECT or other
                        // last packets it sends first are written before it.
                        let _ = Box::pin(to_core.send(ToCore::Eof(id))).await;
                        Ended::Reading
                    }
                };
                match ended {
                    Ended::No => {}
                    Ended::Reading => {
                        Box::pin(continue_until_closed(&mut stream, &outbox)).await;
                        return;
                    }
                    Ended::Stopping => return,
                }
            }
        },
    };
    serving
}

pin_project_lite::pin_project! {
    /// A connection's future, which catches a panic of the connection's
    /// task: the core is told the connection ended, as for any drop (its
    /// will is published, its session expiry starts), rather than keeping a
    /// client that looks connected and is not.
    struct CatchPanic<F> {
        outbox: Arc<Outbox>,
        #[pin]
        future: F,
    }
}

impl<F: Future<Output = ()>> Future for CatchPanic<F> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let future = this.future;
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.poll(cx)));
        match polled {
            Ok(done) => done,
            Err(panic) => {
                report_panic(this.outbox, panic.as_ref());
                Poll::Ready(())
            }
        }
    }
}

/// A connection's task panicked: logged, and the core told that the
/// connection ended (once registered), from a task of its own since the
/// core's queue may be full.
fn report_panic(outbox: &Outbox, panic: &(dyn std::any::Any + Send)) {
    let message = crate::panic_message(panic);
    let id = outbox.conn_id();
    error!(?id, panic = %message, "a connection task panicked: the connection is dropped");
    if let Some(id) = id {
        let eof = ToCore::Eof(id);
        let to_core = outbox.to_core().clone();
        tokio::spawn(async move {
            let _ = to_core.send(eof).await;
        });
    }
}

/// What a connection's task does next.
enum Step {
    /// Write what the core queued.
    Write,
    /// Decode and hand over `n` bytes read into `free` room, stamped
    /// `stamp`.
    Read { n: usize, free: usize, stamp: Stamp },
    /// The read side ended (or failed).
    Eof,
}

/// One small wait for both directions: chunks from the core first, then
/// the socket. The read races the outbox as a whole, so a read that waits
/// (TLS or WebSocket, or a readiness that was stale) never holds writes
/// back. A read whose wake took a stamp goes first, so that what it brings
/// is handed over soon after it was seen.
fn poll_next<S: Stream>(
    cx: &mut Context<'_>,
    outbox: &Outbox,
    read_waker: &Waker,
    stream: &mut S,
    rbuf: &mut ReadBuffer,
) -> Poll<Step> {
    let paused = outbox.read_paused();
    if (paused || !outbox.has_stamp()) && outbox.poll_ready(cx).is_ready() {
        return Poll::Ready(Step::Write);
    }
    if paused {
        // Flow control holds this publisher: its socket is left unread, so
        // TCP slows it down; resuming wakes the task (the outbox has its
        // waker). A stamp a wake took stays for the read that follows.
        return Poll::Pending;
    }
    // The stamp the wake that made the socket readable took, if any.
    let woken = outbox.take_stamp();
    let mut rcx = Context::from_waker(read_waker);
    let read = if stream.poll_readable(&mut rcx).is_ready() {
        let free = rbuf.make_room();
        std::pin::pin!(stream.read_buf(&mut rbuf.buf))
            .poll(&mut rcx)
            .map(|r| (r.ok().filter(|n| *n > 0), free))
    } else {
        Poll::Pending
    };
    // Without a wake before it, a read is stamped now: a wake during the
    // read may have taken one, or a new one is taken.
    let stamp = || {
        woken
            .or_else(|| outbox.take_stamp())
            .unwrap_or_else(|| outbox.new_stamp())
    };
    match read {
        Poll::Ready((Some(n), free)) => {
            let stamp = stamp();
            // Registers the socket's waker again at once (plain TCP: a
            // short read cleared the readiness), so that bytes arriving
            // while the task hands these over or writes are stamped when
            // they arrive, not when the task comes back to read them.
            let _ = stream.poll_readable(&mut rcx);
            Poll::Ready(Step::Read { n, free, stamp })
        }
        Poll::Ready((None, _)) => Poll::Ready(Step::Eof),
        // The stamp of a wake that brought nothing readable (a spurious
        // wake, part of a TLS record) is dropped: an old stamp would let a
        // later SUBSCRIBE catch up messages routed before its bytes came.
        // The wake that ends this wait takes one. The outbox was skipped
        // above for the stamped read: it is polled now, so that the task
        // waits for it too (both wakes go through its waker).
        Poll::Pending if woken.is_some() && outbox.poll_ready(cx).is_ready() => {
            Poll::Ready(Step::Write)
        }
        Poll::Pending => Poll::Pending,
    }
}

/// A connection's read buffer. Once a read has needed more than the
/// minimum room, the buffer stays between reads: `BytesMut` remembers the
/// size it was first given and refills at least that much, so a busy
/// connection keeps reading in large steps (giving it back after each quiet
/// read cut unpinned pairs QoS 1 from about 740 k to 490 k msg/s with more,
/// smaller reads). Until then, an emptied buffer is given back: an idle
/// plain-TCP connection holds none (TLS and WebSocket reserve it before a
/// read that waits inside them).
struct ReadBuffer {
    buf: BytesMut,
    /// The room the next read is given.
    room: usize,
    /// Some read needed more than the minimum room.
    grown: bool,
    /// The buffer held part of a packet after the last read.
    partial: bool,
}

impl ReadBuffer {
    fn new() -> ReadBuffer {
        ReadBuffer {
            buf: BytesMut::new(),
            room: READ_MIN,
            grown: false,
            partial: false,
        }
    }

    /// Makes room for the next read; returns the room there is.
    fn make_room(&mut self) -> usize {
        if self.buf.capacity() - self.buf.len() < self.room / 2 {
            self.buf.reserve(self.room);
            self.grown |= self.room > READ_MIN;
        }
        self.buf.capacity() - self.buf.len()
    }

    /// A read of `n` bytes into `free` room: one that fills its room asks
    /// for more next time; one that leaves most of it goes back to the
    /// minimum.
    fn after_read(&mut self, n: usize, free: usize) {
        self.room = if n == free {
            (self.room * 2).min(READ_MAX)
        } else {
            READ_MIN
        };
    }

    /// After decoding: the bytes of a packet not yet whole that the buffer
    /// holds, when the core must hear of them (there are some, or there
    /// were some after the last read), so that a packet left half sent is
    /// bounded in time by the core ([`mqtt_router::broker::Broker::handle_partial`]).
    fn partial(&mut self) -> Option<usize> {
        let buffered = self.buf.len();
        let report = buffered > 0 || self.partial;
        self.partial = buffered > 0;
        report.then_some(buffered)
    }

    /// Gives an emptied buffer back while no read has needed more room.
    fn release_if_idle(&mut self) {
        if self.buf.is_empty() && !self.grown {
            self.buf = BytesMut::new();
        }
    }
}

/// Whether a connection's reading ended.
pub(super) enum Ended {
    No,
    /// The stream ended or could not be decoded: what the core still sends
    /// is written until it closes the connection.
    Reading,
    /// The task ends now: the broker is stopping, or the connection was
    /// closed or its socket failed.
    Stopping,
}

/// What one read brought: whole packets (each with its size on the wire),
/// the decoding error that ends the stream, and the bytes of a packet not
/// yet whole when the core must hear of them.
pub(super) struct Read {
    pub(super) packets: Vec<(Packet, usize)>,
    pub(super) error: Option<DecodeError>,
    pub(super) partial: Option<usize>,
}

/// Hands a read's packets to the core.
pub(super) async fn hand_over(to_core: &ToCoreTx, id: ConnId, read: Read, stamp: Stamp) -> Ended {
    let failed = read.error.is_some();
    let bytes = read.packets.iter().map(|(_, n)| n).sum();
    if to_core.send_packets(id, read, bytes, stamp).await.is_err() {
        return Ended::Stopping;
    }
    // After a decoding error nothing more is read: the core closes the
    // connection, after its last packets.
    if failed {
        Ended::Reading
    } else {
        Ended::No
    }
}

/// Writes what the core queued and tells it when the writer has caught up;
/// a socket that cannot be written (it fails, or makes no progress for the
/// write timeout) ends the connection, and the core hears of it as of any
/// drop (the will is published).
async fn write_all_out<S: Stream>(
    stream: &mut S,
    outbox: &Outbox,
    to_core: &ToCoreTx,
    id: ConnId,
) -> Ended {
    match write_out(stream, outbox, to_core.write_timeout).await {
        Ok(true) => {
            // Never waits: behind a full command queue the core is busy
            // and retries blocked connections on every turn anyway.
            let _ = to_core.tx.try_send(ToCore::Writable(id));
            Ended::No
        }
        Ok(false) => Ended::Stopping,
        Err(()) => {
            // What the peer did not read is not kept for it: the socket is
            // reset when dropped rather than lingering with unsent bytes.
            stream.abort();
            let _ = to_core.send(ToCore::Eof(id)).await;
            Ended::Stopping
        }
    }
}

/// Longest a write may make no progress once the core closed the
/// connection (its last packets, such as a DISCONNECT, are worth that much).
const CLOSING_WRITE: Duration = Duration::from_secs(5);

/// Writes the chunks the core queued for a connection, one socket write per
/// chunk, then flushes: `Ok(true)` when done, `Ok(false)` when the core closed
/// the connection (shut down here), `Err` when the socket failed or a write
/// made no progress for `limit`.
pub(super) async fn write_out<S: Stream>(
    stream: &mut S,
    outbox: &Outbox,
    limit: Duration,
) -> Result<bool, ()> {
    while let Some(msg) = outbox.pop() {
        match msg {
            ToConn::Frames(version, frames, len) => {
                let bytes = encode(version, frames, len);
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let n = progress(outbox, limit, stream.write(rest)).await?;
                    rest = rest.get(n..).filter(|_| n > 0).ok_or(())?;
                }
            }
            ToConn::Close => {
                let _ = progress(outbox, limit, stream.shutdown()).await;
                return Ok(false);
            }
        }
    }
    // TLS and WebSocket buffer inside; TCP has nothing to flush.
    progress(outbox, limit, stream.flush()).await?;
    Ok(true)
}

/// One step of a write, bounded: `Err` when it fails, or makes no progress
/// for `limit` ([`CLOSING_WRITE`] at most once the core has closed the
/// connection, even while the step waits: a peer whose receive window stays
/// at zero cannot keep a closed connection's task for ever).
async fn progress<T>(
    outbox: &Outbox,
    limit: Duration,
    step: impl Future<Output = std::io::Result<T>>,
) -> Result<T, ()> {
    let mut step = std::pin::pin!(step);
    let mut closing = outbox.closing();
    let start = tokio::time::Instant::now();
    let first = if closing {
        limit.min(CLOSING_WRITE)
    } else {
        limit
    };
    let mut timer = std::pin::pin!(tokio::time::sleep_until(start + first));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = step.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(|_| ()));
        }
        if !closing && outbox.poll_closing(cx).is_ready() {
            closing = true;
            let sooner = tokio::time::Instant::now() + CLOSING_WRITE;
            if sooner < timer.deadline() {
                timer.as_mut().reset(sooner);
            }
        }
        timer.as_mut().poll(cx).map(|()| Err(()))
    })
    .await
}

/// A connection's byte stream once its handshake is done.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The connection is given up: unsent bytes are discarded when the
    /// stream is dropped (TCP resets the connection), so a peer that stopped
    /// reading does not keep them in the kernel after its task is gone.
    fn abort(&mut self) {}

    /// Ready when a read would make progress, so that the read buffer is
    /// only reserved (or grown) once bytes are there. Plain TCP can tell;
    /// TLS and WebSocket may hold data inside, so they are always ready and
    /// wait in the read itself.
    fn poll_readable(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let _ = cx;
        std::task::Poll::Ready(())
    }
}

impl Stream for TcpStream {
    fn abort(&mut self) {
        let _ = self.set_zero_linger();
    }

    fn poll_readable(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        // An error shows up again in the read that follows.
        self.poll_read_ready(cx).map(|_| ())
    }
}

impl Stream for Box<tokio_rustls::server::TlsStream<TcpStream>> {
    fn abort(&mut self) {
        let _ = self.get_ref().0.set_zero_linger();
    }
}
impl Stream for Box<crate::ws::WsIo<TcpStream>> {}
impl Stream for Box<crate::ws::WsIo<tokio_rustls::server::TlsStream<TcpStream>>> {}

/// Registers a connection with the core: its identifier and decoder, or
/// `None` when refused or stopping.
pub(super) async fn register(
    to_core: &ToCoreTx,
    peer: SocketAddr,
    certificate: PeerCertificate,
    outbox: &Arc<Outbox>,
) -> Option<(ConnId, Decoder)> {
    let (reply_tx, reply_rx) = oneshot::channel();
    let open = ToCore::Open {
        peer,
        certificate,
        writer: outbox.clone(),
        reply: reply_tx,
    };
    to_core.send(open).await.ok()?;
    let registered = reply_rx.await.ok().flatten();
    match &registered {
        Some((id, _)) => outbox.set_conn_id(*id),
        None => debug!(%peer, "connection refused: limit reached"),
    }
    registered
}

/// After the read side ended: writes what the core still sends (a
/// DISCONNECT with a reason code, a refusing CONNACK) until it closes the
/// connection, bounded in time.
pub(super) async fn continue_until_closed<S>(stream: &mut S, outbox: &Outbox)
where
    S: AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            while let Some(msg) = outbox.pop() {
                match msg {
                    ToConn::Frames(version, frames, len) => {
                        if stream
                            .write_all(&encode(version, frames, len))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    ToConn::Close => {
                        let _ = stream.flush().await;
                        let _ = stream.shutdown().await;
                        return;
                    }
                }
            }
            outbox.ready().await;
        }
    })
    .await;
}

/// Encodes a chunk of packets for one write, in a buffer of its exact size
/// (allocated here, in the connection's task, and freed after the write).
pub(super) fn encode(version: ProtocolVersion, frames: Vec<Frame>, len: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(len);
    for f in &frames {
        // The core measured each packet against the peer's limits;
        // encoding cannot fail here.
        if f.encode(version, &mut out).is_err() {
            debug!("a packet could not be encoded");
        }
    }
    out
}

/// Every whole packet in `buf`, with its size on the wire, and the decoding
/// error that stops the stream, if any.
pub(super) fn decode_all(
    decoder: &mut Decoder,
    buf: &mut BytesMut,
) -> (Vec<(Packet, usize)>, Option<DecodeError>) {
    let mut packets = Vec::new();
    loop {
        let before = buf.len();
        match decoder.decode(buf) {
            Ok(Some(p)) => packets.push((p, before - buf.len())),
            Ok(None) => return (packets, None),
            Err(e) => {
                buf.clear();
                return (packets, Some(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;
    use tokio::sync::{mpsc, Semaphore};

    use super::*;

    /// What an idle connection's task holds is the connection future: keep
    /// it small (256 bytes when this test was last changed; see [`serve`]).
    #[tokio::test]
    pub(super) async fn the_connection_future_is_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (tx, _rx) = mpsc::channel(1);
        let to_core = ToCoreTx(Arc::new(super::super::ToCoreShared {
            tx,
            budget: Arc::new(Semaphore::new(1)),
            ack_budget: Arc::new(Semaphore::new(1)),
            stamps: Arc::default(),
            write_timeout: Duration::from_secs(30),
        }));
        let serving = serve(client, addr, PeerCertificate::default(), to_core);
        let size = std::mem::size_of_val(&serving);
        eprintln!("connection future: {size} bytes");
        assert!(size <= 256, "the connection future grew to {size} bytes");
    }

    /// A stream whose read panics once bytes are asked for: a bug in a
    /// transport.
    struct PanickingStream;

    impl AsyncRead for PanickingStream {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            panic!("a transport bug");
        }
    }

    impl AsyncWrite for PanickingStream {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl Stream for PanickingStream {}

    /// A connection task that panics is reported to the core as a
    /// connection whose stream ended (so its will goes out and its session
    /// expiry starts), and the panic stays in its task.
    #[tokio::test]
    async fn a_panicking_connection_task_is_reported_to_the_core_as_ended() {
        use mqtt_router::broker::{Broker, BrokerConfig, PeerInfo};
        let mut broker = Broker::new(BrokerConfig::default());
        let id = broker
            .open(mqtt_session::Instant::from_millis(0), PeerInfo::default())
            .unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let to_core = ToCoreTx(Arc::new(super::super::ToCoreShared {
            tx,
            budget: Arc::new(Semaphore::new(1024)),
            ack_budget: Arc::new(Semaphore::new(1024)),
            stamps: Arc::default(),
            write_timeout: Duration::from_secs(30),
        }));
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let task = tokio::spawn(serve(
            PanickingStream,
            addr,
            PeerCertificate::default(),
            to_core,
        ));
        let Some(ToCore::Open { reply, .. }) = rx.recv().await else {
            panic!("the connection did not register");
        };
        reply.send(Some((id, broker.decoder()))).ok().unwrap();
        let reported = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("the core was not told");
        assert!(
            matches!(reported, Some(ToCore::Eof(ended)) if ended == id),
            "the core must be told the connection ended"
        );
        assert!(task.await.is_ok(), "the panic is caught in the task");
    }

    /// A peer whose receive window stays at zero: no write ever progresses.
    struct ZeroWindow;

    impl AsyncWrite for ZeroWindow {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
    }

    fn outbox() -> Arc<Outbox> {
        let (tx, _rx) = mpsc::channel(1);
        Arc::new(Outbox::new(ToCoreTx(Arc::new(
            super::super::ToCoreShared {
                tx,
                budget: Arc::new(Semaphore::new(1)),
                ack_budget: Arc::new(Semaphore::new(1)),
                stamps: Arc::default(),
                write_timeout: Duration::from_secs(30),
            },
        ))))
    }

    /// A write that makes no progress fails after the write timeout.
    #[tokio::test(start_paused = true)]
    async fn a_write_without_progress_fails_after_the_write_timeout() {
        let outbox = outbox();
        let started = tokio::time::Instant::now();
        let r = progress(&outbox, Duration::from_secs(30), ZeroWindow.write(b"x")).await;
        assert!(r.is_err());
        assert_eq!(started.elapsed().as_secs(), 30);
    }

    /// Once the core has closed the connection, a write stuck on a zero
    /// window gets at most `CLOSING_WRITE` more, however long the write
    /// timeout: the close is not stuck behind the write.
    #[tokio::test(start_paused = true)]
    async fn a_closed_connection_is_torn_down_while_its_write_is_stuck() {
        let outbox = outbox();
        let closer = outbox.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            closer.push(ToConn::Close);
        });
        let started = tokio::time::Instant::now();
        let r = progress(&outbox, Duration::from_secs(600), ZeroWindow.write(b"x")).await;
        assert!(r.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(1) + CLOSING_WRITE);
    }
}

#[cfg(test)]
mod wake_tests;
