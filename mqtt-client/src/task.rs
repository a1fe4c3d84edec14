//! The connection task behind [`runtime::run`](crate::runtime::run): the
//! loop every async adapter used to write for itself, once, with a
//! hand-written select over poll functions.

use alloc::boxed::Box;
use alloc::vec;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use bytes::{Buf, BytesMut};
use mqtt_session::{Close, Initiator, Instant};

use crate::address::Address;
use crate::auth::MAX_RANDOM_LEN;
use crate::driver::{AfterConnection, ClientDriver, Command, ReplySender};
use crate::error::ConnectError;
use crate::options::ClientParts;
use crate::runtime::{Link, Runtime, Timer, Transport};

/// Bytes read from the transport at a time (the decoder grows the buffer
/// for larger packets, up to the maximum packet size).
const READ_CHUNK: usize = 8 * 1024;

/// How long a closing connection may take to flush its last bytes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

type TransportError<R> = <<R as Runtime>::Transport as Transport>::Error;

/// What the select waits on; taken in turns so none starves the others.
#[derive(Debug, Clone, Copy)]
enum Source {
    Write,
    Read,
    Events,
    Commands,
    Timer,
}

const SOURCES: [Source; 5] = [
    Source::Write,
    Source::Read,
    Source::Events,
    Source::Commands,
    Source::Timer,
];

/// Which sources are armed for one select.
#[derive(Debug, Clone, Copy)]
struct Armed {
    write: bool,
    read: bool,
    events: bool,
    commands: bool,
    timer: bool,
}

/// What woke the task. Short-lived, one at a time, never stored: boxing the
/// command would cost an allocation per command for nothing.
#[allow(clippy::large_enum_variant)]
enum Wake<K: ReplySender, E> {
    Written(Result<usize, E>),
    Flushed(Result<(), E>),
    Read(Result<usize, E>),
    /// Room for an event (false: nobody listens any more).
    EventRoom(bool),
    Command(Option<Command<K>>),
    Timer,
}

/// One connection's transport and buffers.
struct Conn<T> {
    transport: T,
    rbuf: BytesMut,
    chunk: Box<[u8]>,
    wbuf: BytesMut,
    /// Everything was written but the transport may still buffer some.
    unflushed: bool,
    /// The transport ended or failed.
    eof: bool,
}

impl<T: Transport> Conn<T> {
    fn new(transport: T) -> Self {
        Conn {
            transport,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
            wbuf: BytesMut::new(),
            unflushed: false,
            eof: false,
        }
    }

    /// Nothing left to send.
    fn idle(&self) -> bool {
        self.wbuf.is_empty() && !self.unflushed
    }

    fn poll_write<K: ReplySender>(&mut self, cx: &mut Context<'_>) -> Poll<Wake<K, T::Error>> {
        if self.wbuf.is_empty() {
            self.transport.poll_flush(cx).map(Wake::Flushed)
        } else {
            self.transport.poll_write(cx, &self.wbuf).map(Wake::Written)
        }
    }

    fn poll_read<K: ReplySender>(&mut self, cx: &mut Context<'_>) -> Poll<Wake<K, T::Error>> {
        self.transport
            .poll_read(cx, &mut self.chunk)
            .map(Wake::Read)
    }
}

/// The client's connections, one after the other.
pub(crate) struct Task<R: Runtime, L: Link> {
    runtime: R,
    link: L,
    address: Address,
    core: ClientDriver<L::ReplySender>,
    /// False once every handle is dropped.
    commands_open: bool,
    /// Whether the first connection's outcome was reported.
    reported: bool,
    /// The current connection's transport error, if it failed with one.
    transport_error: Option<TransportError<R>>,
    /// Which source the next select polls first.
    turn: usize,
}

impl<R, L> Task<R, L>
where
    R: Runtime,
    L: Link<Error = R::Error>,
    <L::ReplySender as ReplySender>::ConnectError: From<R::Error>,
{
    pub(crate) fn new(runtime: R, link: L, parts: ClientParts) -> Self {
        Task {
            runtime,
            link,
            address: parts.address,
            core: ClientDriver::new(parts.config, parts.reconnect).with_auth(parts.auth),
            commands_open: true,
            reported: false,
            transport_error: None,
            turn: 0,
        }
    }

    pub(crate) async fn run(mut self) {
        let mut transport = match self.open().await {
            Ok(t) => t,
            Err(e) => return self.report(Err(e)),
        };
        loop {
            if self.core.needs_nonce() {
                let mut random = [0u8; MAX_RANDOM_LEN];
                let random = &mut random[..self.core.nonce_len()];
                let got = self.runtime.nonce(random);
                let random = if got { &random[..] } else { &[] };
                self.core.start_with_nonce(self.runtime.now(), random);
            } else {
                self.core.start(self.runtime.now());
            }
            match self.serve(transport).await {
                AfterConnection::Failed(close) => {
                    let error = self.first_failure(close.map(|c| *c));
                    self.report(Err(error));
                    break;
                }
                AfterConnection::Finished => break,
                AfterConnection::Reconnect => match self.reconnect().await {
                    Some(t) => transport = t,
                    None => break,
                },
            }
        }
        // Events not yet taken are handed over where there is room.
        let mut cx = Context::from_waker(Waker::noop());
        while self.core.has_events() {
            match self.link.poll_event_room(&mut cx) {
                Poll::Ready(true) => self.hand_over(true),
                Poll::Ready(false) | Poll::Pending => break,
            }
        }
    }

    /// Tells `Client::connect` how the first connection went, once.
    fn report(&mut self, outcome: Result<(), R::Error>) {
        if !self.reported {
            self.reported = true;
            self.link.connected(outcome);
        }
    }

    /// Why the first connection ended before CONNACK: the transport's own
    /// error where it failed with one, else what the session reported.
    fn first_failure(&mut self, close: Option<Close>) -> R::Error {
        let by_transport = close
            .as_ref()
            .is_none_or(|c| matches!(c.initiator, Initiator::Transport));
        match self.transport_error.take() {
            Some(e) if by_transport => e.into(),
            Some(_) | None => self.core.connect_error(close).into(),
        }
    }

    /// Opens a transport, within the connect timeout.
    async fn open(&self) -> Result<R::Transport, R::Error> {
        let config = self.core.config();
        let timeout = config.connect_timeout;
        let mut expiry = self
            .runtime
            .timer(self.runtime.now().saturating_add(timeout));
        let mut open = pin!(self.runtime.open(&self.address, config));
        poll_fn(|cx| {
            if let Poll::Ready(result) = open.as_mut().poll(cx) {
                return Poll::Ready(result);
            }
            expiry
                .poll_expired(cx)
                .map(|()| Err(ConnectError::Timeout(timeout).into()))
        })
        .await
    }

    /// Runs one connection until it is closed.
    async fn serve(&mut self, transport: R::Transport) -> AfterConnection {
        let mut conn = Conn::new(transport);
        let mut timer: Option<(Instant, R::Timer)> = None;
        self.transport_error = None;
        loop {
            let _ = self.core.poll_transmit(self.runtime.now(), &mut conn.wbuf);
            if self.core.has_connected() {
                self.report(Ok(()));
            }
            if self.core.is_closed() && (conn.idle() || conn.eof) {
                break;
            }
            let deadline = self.core.poll_timeout();
            if let Some(deadline) = deadline {
                self.arm(&mut timer, deadline);
            }
            let armed = Armed {
                write: !conn.idle() && !conn.eof,
                read: !self.core.has_events() && !conn.eof && !self.core.is_closed(),
                events: self.core.has_events(),
                commands: self.commands_open && !self.core.is_disconnecting(),
                timer: deadline.is_some(),
            };
            let armed_timer = timer.as_mut().map(|(_, t)| t);
            let wake = self.select(Some(&mut conn), armed_timer, armed).await;
            self.on_wake(&mut conn, wake);
        }
        if !conn.eof {
            self.close(&mut conn.transport).await;
        }
        self.core.connection_ended(self.runtime.now())
    }

    /// Makes `timer` fire at `deadline`.
    fn arm(&self, timer: &mut Option<(Instant, R::Timer)>, deadline: Instant) {
        match timer {
            Some((at, _)) if *at == deadline => {}
            Some((at, t)) => {
                t.reset(deadline);
                *at = deadline;
            }
            None => *timer = Some((deadline, self.runtime.timer(deadline))),
        }
    }

    /// Waits for the first armed source that is ready, polling them in
    /// turns.
    async fn select(
        &mut self,
        mut conn: Option<&mut Conn<R::Transport>>,
        mut timer: Option<&mut R::Timer>,
        armed: Armed,
    ) -> Wake<L::ReplySender, TransportError<R>> {
        poll_fn(|cx| {
            let start = self.turn;
            for i in 0..SOURCES.len() {
                let polled = match SOURCES[(start + i) % SOURCES.len()] {
                    Source::Write => match conn.as_deref_mut() {
                        Some(conn) if armed.write => conn.poll_write(cx),
                        Some(_) | None => Poll::Pending,
                    },
                    Source::Read => match conn.as_deref_mut() {
                        Some(conn) if armed.read => conn.poll_read(cx),
                        Some(_) | None => Poll::Pending,
                    },
                    Source::Events if armed.events => {
                        self.link.poll_event_room(cx).map(Wake::EventRoom)
                    }
                    Source::Commands if armed.commands => {
                        self.link.poll_command(cx).map(Wake::Command)
                    }
                    Source::Timer => match timer.as_deref_mut() {
                        Some(timer) if armed.timer => timer.poll_expired(cx).map(|()| Wake::Timer),
                        Some(_) | None => Poll::Pending,
                    },
                    Source::Events | Source::Commands => Poll::Pending,
                };
                if polled.is_ready() {
                    self.turn = self.turn.wrapping_add(1);
                    return polled;
                }
            }
            Poll::Pending
        })
        .await
    }

    fn on_wake(
        &mut self,
        conn: &mut Conn<R::Transport>,
        wake: Wake<L::ReplySender, TransportError<R>>,
    ) {
        let now = self.runtime.now();
        match wake {
            Wake::Written(Ok(n)) if n > 0 => {
                conn.wbuf.advance(n);
                if conn.wbuf.is_empty() {
                    conn.unflushed = true;
                    self.core.handle_written();
                }
            }
            Wake::Flushed(Ok(())) => conn.unflushed = false,
            Wake::Read(Ok(n)) if n > 0 => {
                conn.rbuf.extend_from_slice(&conn.chunk[..n]);
                self.core.handle_read(now, &mut conn.rbuf);
            }
            // Nothing more can be written or read: the end of the stream.
            Wake::Written(Ok(_)) | Wake::Read(Ok(_)) => self.lost(conn, None),
            Wake::Written(Err(e)) | Wake::Flushed(Err(e)) | Wake::Read(Err(e)) => {
                self.lost(conn, Some(e))
            }
            Wake::EventRoom(room) => self.hand_over(room),
            Wake::Command(command) => self.on_command(command),
            Wake::Timer => self.core.handle_timeout(now),
        }
    }

    /// The transport ended or failed.
    fn lost(&mut self, conn: &mut Conn<R::Transport>, error: Option<TransportError<R>>) {
        conn.eof = true;
        conn.wbuf.clear();
        conn.unflushed = false;
        if error.is_some() {
            self.transport_error = error;
        }
        self.core.handle_eof(self.runtime.now());
    }

    /// Hands the next event to the application, now that there is room
    /// (`false`: nobody listens any more, the events go).
    fn hand_over(&mut self, room: bool) {
        if room {
            if let Some(event) = self.core.poll_event() {
                self.link.send_event(event);
            }
        } else {
            while self.core.poll_event().is_some() {}
        }
    }

    fn on_command(&mut self, command: Option<Command<L::ReplySender>>) {
        let now = self.runtime.now();
        match command {
            Some(command) => self.core.command(now, command),
            None => {
                // Every handle is gone: disconnect normally.
                self.commands_open = false;
                self.core.handles_dropped(now);
            }
        }
    }

    /// Closes a transport that has not ended, within a grace period.
    async fn close(&self, transport: &mut R::Transport) {
        let mut grace = self
            .runtime
            .timer(self.runtime.now().saturating_add(SHUTDOWN_GRACE));
        poll_fn(|cx| {
            if transport.poll_close(cx).is_ready() {
                return Poll::Ready(());
            }
            grace.poll_expired(cx)
        })
        .await;
    }

    /// Waits out the backoff and opens a new transport, taking commands and
    /// handing events over meanwhile. `None`: the application disconnected
    /// or dropped every handle.
    async fn reconnect(&mut self) -> Option<R::Transport> {
        loop {
            let delay = self.core.next_delay(self.runtime.random());
            let mut wake = self.runtime.timer(self.runtime.now().saturating_add(delay));
            loop {
                let armed = Armed {
                    write: false,
                    read: false,
                    events: self.core.has_events(),
                    commands: self.commands_open,
                    timer: true,
                };
                match self.select(None, Some(&mut wake), armed).await {
                    Wake::Timer => break,
                    Wake::EventRoom(room) => self.hand_over(room),
                    Wake::Command(command) => self.on_command(command),
                    // Not armed without a connection.
                    Wake::Written(_) | Wake::Flushed(_) | Wake::Read(_) => {}
                }
                if self.core.wants_to_stop() {
                    self.core.stop();
                    return None;
                }
            }
            match self.open().await {
                Ok(t) => return Some(t),
                Err(e) => self.core.reconnect_failed(e.into()),
            }
        }
    }
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
