//! The driver's side of authentication: the core's requests handed to the
//! [`Authenticator`], at most a few at once, each answered off the core
//! task; the answers come back to the core loop over a channel.

use std::collections::VecDeque;
use std::sync::Arc;

use mqtt_codec::ReasonCode;
use mqtt_router::broker::{AuthAnswer, AuthRequest, AuthTicket, Broker, ConnId};
use mqtt_session::Instant;
use tokio::sync::mpsc;
use tracing::debug;

use crate::auth::Authenticator;

/// An answer on its way back to the core.
pub(super) type Answered = (AuthTicket, AuthAnswer);

pub(super) struct AuthDriver {
    authenticator: Arc<dyn Authenticator>,
    /// Most checks running at once.
    max: usize,
    running: usize,
    /// Requests waiting for a free slot, oldest first (at most one per
    /// connection: the core asks one thing of a connection at a time).
    waiting: VecDeque<AuthRequest>,
    tx: mpsc::Sender<Answered>,
    /// The answers, for the core loop's `select!`.
    pub(super) answers: mpsc::Receiver<Answered>,
}

impl AuthDriver {
    pub(super) fn new(authenticator: Arc<dyn Authenticator>, max: usize) -> AuthDriver {
        let max = max.max(1);
        // One answer per running check: a send never waits.
        let (tx, answers) = mpsc::channel(max);
        AuthDriver {
            authenticator,
            max,
            running: 0,
            waiting: VecDeque::new(),
            tx,
            answers,
        }
    }

    /// Answers requests from now on with `authenticator` (a reload), and
    /// gives every session the rights it gives the session's owner: a
    /// connected client keeps its connection and its subscriptions, and
    /// what it may publish, subscribe to and receive follows the new rules
    /// from its next packet on. Checks already running finish with the old
    /// one. Returns how many sessions got new rights.
    pub(super) fn replace(
        &mut self,
        broker: &mut Broker,
        authenticator: Arc<dyn Authenticator>,
    ) -> usize {
        self.authenticator = authenticator;
        let owners: Vec<(mqtt_codec::Str, Option<String>)> = broker
            .sessions()
            .filter_map(|s| {
                let id = mqtt_codec::Str::try_from(s.client_id).ok()?;
                Some((id, s.username.map(str::to_string)))
            })
            .collect();
        let mut changed = 0;
        for (client_id, username) in owners {
            let rights = self
                .authenticator
                .rights(client_id.as_str(), username.as_deref());
            changed += usize::from(broker.set_session_rights(&client_id, rights));
        }
        changed
    }

    /// Takes the core's new requests and starts what the bound allows.
    pub(super) fn take(&mut self, broker: &mut Broker) {
        while let Some(r) = broker.poll_auth() {
            self.waiting.push_back(r);
        }
        self.start_more();
    }

    /// An answer came back: it goes to the core (a stale one, for a
    /// connection gone meanwhile, changes nothing), and the next waiting
    /// request starts.
    pub(super) fn answered(
        &mut self,
        broker: &mut Broker,
        (ticket, answer): Answered,
        now: Instant,
    ) {
        self.running = self.running.saturating_sub(1);
        if let Err(e) = broker.answer_auth(ticket, now, answer) {
            debug!(conn = ?ticket.conn(), error = %e, "authentication answer not applied");
        }
        self.start_more();
    }

    /// Connection `id` closed: a request of it still waiting is dropped,
    /// and the authenticator forgets it.
    pub(super) fn forget(&mut self, id: ConnId) {
        self.waiting.retain(|r| r.ticket().conn() != id);
        self.authenticator.forget(id);
    }

    fn start_more(&mut self) {
        while self.running < self.max {
            let Some(request) = self.waiting.pop_front() else {
                return;
            };
            self.running += 1;
            let ticket = request.ticket();
            let check = self.authenticator.authenticate(request);
            let tx = self.tx.clone();
            tokio::spawn(async move {
                // Its own task: a panicking check is an error answer, and
                // its slot is given back all the same.
                let answer = tokio::spawn(check)
                    .await
                    .unwrap_or(AuthAnswer::Refuse(ReasonCode::UNSPECIFIED_ERROR));
                let _ = tx.send((ticket, answer)).await;
            });
        }
    }
}
