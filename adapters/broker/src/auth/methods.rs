//! Enhanced authentication methods (5.0, section 4.12): a registry of
//! methods by name, each a sequence of steps over bytes, and the state of
//! each connection's exchange between its steps. SCRAM and JWT plug in here
//! as [`EnhancedMethod`]s; the registry does not know any method itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use mqtt_codec::ReasonCode;
use mqtt_router::broker::{AuthRequest, AuthStep, ConnId};

/// Most exchanges waiting for a client's next step at once; a new one past
/// it is refused with 0x89 Server busy (each is also ended by the core's
/// CONNECT timeout, and dropped when its connection closes).
const MAX_EXCHANGES: usize = 10_000;

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodStep {
    /// Send these bytes as Authentication Data (AUTH 0x18) and wait for
    /// the client's next step.
    Continue(Vec<u8>),
    /// Authenticated as `username` (`None`: anonymous), with optional
    /// Authentication Data for the CONNACK (or the AUTH 0x00 that ends a
    /// re-authentication).
    Done {
        /// The authenticated user: it owns the session and picks the rights.
        username: Option<String>,
        /// Final Authentication Data for the client, if any.
        data: Option<Vec<u8>>,
    },
    /// Refused with this reason (0x86, 0x87, 0x8C, …).
    Failed(ReasonCode),
}

/// One client's exchange under a method, from its first step to its last.
pub trait MethodExchange: Send + 'static {
    /// The client's Authentication Data of this step (the CONNECT's or
    /// re-authentication's first, then each AUTH 0x18's).
    fn step(&mut self, data: Option<&[u8]>) -> MethodStep;
}

/// An enhanced authentication method. Its steps may be slow (hashing):
/// they run on the blocking pool, never on the core task.
pub trait EnhancedMethod: Send + Sync + 'static {
    /// The Authentication Method name clients put in CONNECT
    /// (`SCRAM-SHA-256`, …).
    fn name(&self) -> &str;

    /// A new exchange for client `client_id` (at CONNECT or at a
    /// re-authentication).
    fn begin(&self, client_id: &str) -> Box<dyn MethodExchange>;
}

/// Methods by name, and the exchanges in progress by connection.
#[derive(Clone, Default)]
pub struct AuthMethods {
    methods: HashMap<String, Arc<dyn EnhancedMethod>>,
    exchanges: Arc<Mutex<HashMap<ConnId, Box<dyn MethodExchange>>>>,
}

impl std::fmt::Debug for AuthMethods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthMethods")
            .field("methods", &self.names())
            .finish_non_exhaustive()
    }
}

impl AuthMethods {
    /// Adds (or replaces) a method under its name.
    pub fn register(&mut self, method: Arc<dyn EnhancedMethod>) {
        self.methods.insert(method.name().to_string(), method);
    }

    /// The registered methods' names.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.methods.keys().cloned().collect();
        names.sort();
        names
    }

    /// Runs the step `request` asks for: a new exchange for a CONNECT or a
    /// re-authentication, the next step of the connection's exchange for a
    /// `Continue`. `None` when the request names no method.
    pub fn run(&self, request: &AuthRequest) -> Option<MethodStep> {
        let name = request.method()?;
        let conn = request.ticket().conn();
        let data = request.data().map(|d| &d[..]);
        let mut exchanges = self
            .exchanges
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut exchange = match request.step() {
            AuthStep::Connect | AuthStep::Reauthenticate => {
                let Some(method) = self.methods.get(name.as_str()) else {
                    return Some(MethodStep::Failed(ReasonCode::BAD_AUTHENTICATION_METHOD));
                };
                exchanges.remove(&conn);
                method.begin(request.client_id().as_str())
            }
            AuthStep::Continue => match exchanges.remove(&conn) {
                Some(e) => e,
                // Forgotten (closed and reused): nothing to continue.
                None => return Some(MethodStep::Failed(ReasonCode::NOT_AUTHORIZED)),
            },
        };
        // The step itself runs without the lock: it may be slow.
        drop(exchanges);
        let step = exchange.step(data);
        if matches!(step, MethodStep::Continue(_)) {
            let mut exchanges = self
                .exchanges
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if exchanges.len() >= MAX_EXCHANGES {
                return Some(MethodStep::Failed(ReasonCode::SERVER_BUSY));
            }
            exchanges.insert(conn, exchange);
        }
        Some(step)
    }

    /// Drops connection `conn`'s exchange, if any.
    pub fn forget(&self, conn: ConnId) {
        self.exchanges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&conn);
    }

    /// Exchanges waiting for a client's next step.
    pub fn pending(&self) -> usize {
        self.exchanges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
