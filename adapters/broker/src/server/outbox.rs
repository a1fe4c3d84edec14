//! A connection's outgoing chunks, from the core task to the connection's
//! task; and the stamp its socket's wake takes ([`super::order`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use mqtt_codec::ProtocolVersion;
use mqtt_router::broker::ConnId;
use mqtt_session::Frame;

use super::order::{Stamp, Stamps};
use super::{ToCoreTx, WRITE_QUEUE};

/// What the core tells a connection's writer.
pub(super) enum ToConn {
    /// Packets to encode in this version and write (their size on the wire).
    Frames(ProtocolVersion, Vec<Frame>, usize),
    Close,
}

/// A connection's outgoing chunks: the core pushes, the connection's task
/// pops. Lighter than a channel (nothing is allocated while it is empty,
/// which is most of an idle connection's life, and the waiting task leaves
/// only its waker here); bounded by [`WRITE_QUEUE`] because the core checks
/// [`Outbox::has_room`] before each push.
///
/// It is also the waker the connection's socket reads with: when the
/// reactor reports the socket readable it takes the read's [`Stamp`] (the
/// earliest the broker knows the bytes were there, see [`super::order`])
/// before it wakes the task, and keeps it until a read takes it.
pub(super) struct Outbox {
    inner: std::sync::Mutex<OutboxInner>,
    /// The way to the core: its stamps, and the way a panic of the
    /// connection's task is reported (kept here, on the heap, rather than
    /// in the connection's future).
    to_core: ToCoreTx,
}

pub(super) struct OutboxInner {
    pub(super) queue: VecDeque<ToConn>,
    /// The connection task, when it waits for chunks or for its socket.
    pub(super) waker: Option<Waker>,
    /// The stamp the socket's wake took, until a read takes it.
    stamp: Option<Stamp>,
    /// The connection, once the core registered it (to report a panic of
    /// its task).
    id: Option<ConnId>,
    /// The core closed the connection ([`ToConn::Close`] is queued).
    closing: bool,
    /// The task, while a write of it waits (see [`Outbox::poll_closing`]).
    close_waker: Option<Waker>,
    /// Flow control holds the connection's input: its socket is not read
    /// ([`mqtt_router::broker::Broker::poll_reading`]).
    read_paused: bool,
}

impl Outbox {
    pub(super) fn new(to_core: ToCoreTx) -> Outbox {
        Outbox {
            inner: std::sync::Mutex::new(OutboxInner {
                queue: VecDeque::new(),
                waker: None,
                stamp: None,
                id: None,
                closing: false,
                close_waker: None,
                read_paused: false,
            }),
            to_core,
        }
    }

    /// Remembers the connection's identifier once registered.
    pub(super) fn set_conn_id(&self, id: ConnId) {
        self.lock().id = Some(id);
    }

    /// The connection's identifier, once registered.
    pub(super) fn conn_id(&self) -> Option<ConnId> {
        self.lock().id
    }

    /// The broker's stamps.
    pub(super) fn stamps(&self) -> &Stamps {
        &self.to_core.stamps
    }

    /// The way to the core.
    pub(super) fn to_core(&self) -> &ToCoreTx {
        &self.to_core
    }

    /// A new stamp, for a read no wake stamped.
    pub(super) fn new_stamp(&self) -> Stamp {
        self.stamps().read()
    }

    /// The stamp a wake took, if any.
    pub(super) fn take_stamp(&self) -> Option<Stamp> {
        self.lock().stamp.take()
    }

    /// Whether a wake took a stamp that no read has taken yet.
    pub(super) fn has_stamp(&self) -> bool {
        self.lock().stamp.is_some()
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, OutboxInner> {
        // A panic while holding the lock leaves a queue that is still valid.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn has_room(&self) -> bool {
        self.lock().queue.len() < WRITE_QUEUE
    }

    pub(super) fn push(&self, msg: ToConn) {
        let (waker, close_waker) = {
            let mut inner = self.lock();
            let close = matches!(msg, ToConn::Close);
            inner.queue.push_back(msg);
            inner.closing |= close;
            let close_waker = if close {
                inner.close_waker.take()
            } else {
                None
            };
            (inner.waker.take(), close_waker)
        };
        for w in [waker, close_waker].into_iter().flatten() {
            w.wake();
        }
    }

    /// Whether flow control holds the connection's input.
    pub(super) fn read_paused(&self) -> bool {
        self.lock().read_paused
    }

    /// Stops (`false`) or resumes (`true`) reading the socket; resuming
    /// wakes the task.
    pub(super) fn set_reading(&self, reading: bool) {
        let waker = {
            let mut inner = self.lock();
            inner.read_paused = !reading;
            if reading {
                inner.waker.take()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether the core closed the connection.
    pub(super) fn closing(&self) -> bool {
        self.lock().closing
    }

    /// Ready once the core has closed the connection; otherwise the task is
    /// woken when it does (a write that waits on a peer that does not read
    /// learns of the close this way).
    pub(super) fn poll_closing(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if inner.closing {
            return Poll::Ready(());
        }
        match &mut inner.close_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    pub(super) fn pop(&self) -> Option<ToConn> {
        let mut inner = self.lock();
        let msg = inner.queue.pop_front();
        if inner.queue.is_empty() && inner.queue.capacity() > 0 {
            inner.queue = VecDeque::new();
        }
        msg
    }

    /// Ready when a chunk is queued; otherwise the task is woken by the
    /// next push.
    pub(super) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if !inner.queue.is_empty() {
            return Poll::Ready(());
        }
        match &mut inner.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Waits for the next chunk.
    pub(super) async fn ready(&self) {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await
    }
}

/// The socket's waker: the reactor calls it when the socket is readable.
impl Wake for Outbox {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waker = {
            let mut inner = self.lock();
            if inner.stamp.is_none() && self.stamps().ordered() {
                inner.stamp = Some(self.stamps().read());
            }
            inner.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}
