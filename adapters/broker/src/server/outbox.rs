//! A connection's outgoing chunks, from the core task to the connection's task.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use mqtt_codec::ProtocolVersion;
use mqtt_session::Frame;

use super::WRITE_QUEUE;

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
pub(super) struct Outbox {
    inner: std::sync::Mutex<OutboxInner>,
}

pub(super) struct OutboxInner {
    pub(super) queue: VecDeque<ToConn>,
    /// The connection task, when it waits for chunks.
    pub(super) waker: Option<Waker>,
}

impl Outbox {
    pub(super) fn new() -> Outbox {
        Outbox {
            inner: std::sync::Mutex::new(OutboxInner {
                queue: VecDeque::new(),
                waker: None,
            }),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, OutboxInner> {
        // A panic while holding the lock leaves a queue that is still valid.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn has_room(&self) -> bool {
        self.lock().queue.len() < WRITE_QUEUE
    }

    pub(super) fn push(&self, msg: ToConn) {
        let waker = {
            let mut inner = self.lock();
            inner.queue.push_back(msg);
            inner.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(super) fn has_chunks(&self) -> bool {
        !self.lock().queue.is_empty()
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
