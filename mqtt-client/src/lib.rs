//! The MQTT client the client adapters share, without IO.
//!
//! `mqtt-session` is the state machine of one connection; a client needs
//! more across connections, and this crate has it, once for every runtime:
//!
//! - [`driver`]: [`ClientDriver`], a sans-IO layer over
//!   `Connection<Client>` that takes commands with the caller's reply
//!   handles and answers them by packet identifier, holds commands while no
//!   connection is up, carries the session across reconnections
//!   ([`Backoff`]) and reports [`Event`]s;
//! - [`runtime`]: the one connection task the async adapters run
//!   ([`runtime::run`]), over small traits for a runtime's clock, timers,
//!   transport and channels;
//! - the client handle's methods ([`Requests`], [`BlockingRequests`]) and
//!   the connect options' setters ([`OptionSetters`] over
//!   [`ClientOptions`]), so every adapter offers the same API;
//! - broker addresses ([`Address`]: `mqtt://`, `mqtts://`, `ws://`,
//!   `wss://`) and the errors of a client ([`ConnectError`], the protocol's
//!   part of a failed connect, and [`ClientError`]);
//! - [`auth`]: MQTT 5.0 enhanced authentication for any mechanism
//!   ([`EnhancedAuth`]), which the driver runs on every connection when the
//!   options ask for it ([`OptionSetters::enhanced_auth`]);
//! - [`scram`]: the client side of SCRAM-SHA-256/512 ([`ScramClient`]), its
//!   nonce passed in, and the mechanism made of it ([`ScramLogin`],
//!   [`OptionSetters::scram`]), with a nonce from the adapter's randomness.
//!
//! Like the other core crates it does no IO (no sockets, clocks, threads or
//! randomness of its own) and is `no_std` + `alloc`; the adapters
//! (`mqtt-tokio`, `mqtt-async-std`, `mqtt-blocking`) move bytes, keep
//! timers, open transports and pass messages. `mqtt-embedded`, whose caller
//! reconnects by hand, uses the results and helpers but not the driver.
//!
//! # Example: the driver against a server, back to back
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//!
//! use bytes::BytesMut;
//! use mqtt_client::driver::{ClientDriver, Command, Event, ReplySender};
//! use mqtt_client::ClientError;
//! use mqtt_session::mqtt_codec::{ConnAckProps, ProtocolVersion, QoS, ReasonCode, Str, TopicName};
//! use mqtt_session::{ClientConfig, Connection, Instant, Message, Server, ServerConfig, ServerEvent};
//!
//! /// Answers land in shared slots.
//! enum Slots {}
//! impl ReplySender for Slots {
//!     type Reply<T> = Rc<RefCell<Option<Result<T, ClientError>>>>;
//!     type ConnectError = ();
//!     fn send<T>(reply: Self::Reply<T>, result: Result<T, ClientError>) {
//!         *reply.borrow_mut() = Some(result);
//!     }
//! }
//!
//! let now = Instant::ZERO;
//! let config = ClientConfig::new(ProtocolVersion::V5, Str::from_static("c1"));
//! let mut driver = ClientDriver::<Slots>::new(config, None);
//! let mut server = Connection::<Server>::new(ServerConfig::default(), now);
//! let mut wire = BytesMut::new();
//!
//! // A publish given before the connection is up waits for its CONNACK.
//! driver.start(now);
//! let reply = Rc::new(RefCell::new(None));
//! let message = Message::new(TopicName::from_static("a/b"), "hi", QoS::AtLeastOnce, false);
//! driver.command(now, Command::Publish { message, reply: reply.clone() });
//!
//! // CONNECT -> server -> CONNACK -> driver, then the publish -> PUBACK.
//! for _ in 0..2 {
//!     let _ = driver.poll_transmit(now, &mut wire);
//!     server.handle_read(now, &mut wire);
//!     while let Some(event) = server.poll_event() {
//!         match event {
//!             ServerEvent::Connect(_) => server.accept(now, None, ConnAckProps::default())?,
//!             ServerEvent::Publish { id: Some(id), .. } => server.ack(id, ReasonCode::SUCCESS)?,
//!             _ => {}
//!         }
//!     }
//!     let _ = server.poll_transmit(now, &mut wire);
//!     driver.handle_read(now, &mut wire);
//! }
//! assert!(matches!(driver.poll_event(), Some(Event::Connected { .. })));
//! assert_eq!(reply.borrow_mut().take(), Some(Ok(ReasonCode::SUCCESS)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod ack;
mod address;
pub mod auth;
mod backoff;
pub mod driver;
mod error;
mod options;
pub mod requests;
pub mod runtime;
pub mod scram;
mod task;

pub use address::{Address, AddressError, Scheme};
pub use auth::{AuthError, AuthMechanism, EnhancedAuth};
pub use backoff::Backoff;
pub use driver::{AckToken, ClientDriver, Event};
pub use error::{granted, publish_outcome, ClientError, ConnectError, SubscribeResult};
pub use options::{ClientOptions, ClientParts, OptionSetters};
pub use requests::{BlockingRequests, Requests, Wait};
pub use scram::{ScramClient, ScramClientError, ScramLogin, ScramMechanism};

/// Re-export of the connection state machine, whose types appear
/// throughout this crate's API (and of the codec, as `mqtt_session::mqtt_codec`).
pub use mqtt_session;

/// The README's example, compiled and run as a doctest, so that what
/// crates.io shows stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctest;
