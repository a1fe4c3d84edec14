//! What the application receives: the events of a [`Client`](crate::Client),
//! and the gate that holds back the reader thread while they wait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use mqtt_client::mqtt_session::Message;

use crate::Event;

/// Back-pressure between the events handed to the application and the
/// reader thread: it stops reading while `capacity` events wait.
#[derive(Debug)]
pub(crate) struct Gate {
    waiting: Mutex<usize>,
    room: Condvar,
    capacity: usize,
}

impl Gate {
    pub(crate) fn new(capacity: usize) -> Gate {
        Gate {
            waiting: Mutex::new(0),
            room: Condvar::new(),
            capacity,
        }
    }

    pub(crate) fn added(&self) {
        if let Ok(mut n) = self.waiting.lock() {
            *n += 1;
        }
    }

    fn taken(&self) {
        if let Ok(mut n) = self.waiting.lock() {
            *n = n.saturating_sub(1);
            self.room.notify_all();
        }
    }

    /// Waits until there is room or `stop` is set.
    pub(crate) fn wait_for_room(&self, stop: &AtomicBool) {
        let Ok(mut n) = self.waiting.lock() else {
            return;
        };
        while *n >= self.capacity && !stop.load(Ordering::SeqCst) {
            match self.room.wait_timeout(n, Duration::from_millis(100)) {
                Ok((guard, _)) => n = guard,
                Err(_) => return,
            }
        }
    }
}

/// The received messages and connection events of a [`Client`](crate::Client); also an
/// iterator that blocks for the next event and ends when the client is done.
#[derive(Debug)]
pub struct Incoming {
    events: Receiver<Event>,
    gate: Arc<Gate>,
}

impl Incoming {
    pub(crate) fn new(events: Receiver<Event>, gate: Arc<Gate>) -> Incoming {
        Incoming { events, gate }
    }

    /// Waits for the next event; `None` once the client is done
    /// (disconnected, or the connection lost without reconnection) and every
    /// event was taken.
    pub fn recv(&self) -> Option<Event> {
        let ev = self.events.recv().ok()?;
        self.gate.taken();
        Some(ev)
    }

    /// Waits at most `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        let ev = self.events.recv_timeout(timeout)?;
        self.gate.taken();
        Ok(ev)
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        let ev = self.events.try_recv().ok()?;
        self.gate.taken();
        Some(ev)
    }

    /// Waits at most `timeout` for the next received message, skipping other
    /// events; `None` on timeout or once the client is done. Under manual
    /// acknowledgement use [`recv`](Self::recv) instead: its
    /// `Event::Message` carries the token to acknowledge the message with.
    pub fn recv_message_timeout(&self, timeout: Duration) -> Option<Message> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.recv_timeout(left) {
                Ok(Event::Message { message, .. }) => return Some(message),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}

impl Iterator for Incoming {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.recv()
    }
}
