//! The state machine of one MQTT connection, for the client and the server side.
//!
//! Everything between CONNECT and the end of a connection, as a pure state
//! machine: bytes and time go in, bytes to send, events for the application
//! and the next deadline come out. No IO, no clock, no threads, no randomness;
//! `no_std` + `alloc`.
//!
//! # The drive loop
//! An adapter runs this loop once per connection, whatever its runtime:
//! ```text
//! loop {
//!     conn.poll_transmit(now(), &mut wbuf);           // 1. bytes out
//!     while let Some(ev) = conn.poll_event() { .. }   // 2. events out
//!     if conn.is_closed() && wbuf.is_empty() { break }
//!     let deadline = conn.poll_timeout();             // 3. next wake-up
//!     select! {
//!         read  => conn.handle_read(now(), &mut rbuf) (or handle_eof on 0 bytes),
//!         write => send wbuf,
//!         sleep_until(deadline) => conn.handle_timeout(now()),
//!         command => conn.publish(..) / subscribe(..) / ..,
//!     }
//! }
//! ```
//!
//! # For client adapters
//! Everything a client needs across connections (requests answered by
//! packet identifier, reconnection with backoff, options, addresses, the
//! client's errors, one driver loop for async runtimes) is the
//! `mqtt-client` crate's, built on this one. What stays here is what one
//! connection needs: [`ClientConfig`], including
//! [`ClientConfig::for_resumption`], the configuration that resumes a
//! session on the next connection.
//!
//! # Example: a client and a server back to back
//! ```
//! use bytes::BytesMut;
//! use mqtt_codec::{ConnAckProps, ProtocolVersion, QoS, Str, TopicName};
//! use mqtt_session::{Client, ClientConfig, ClientEvent, Connection, Instant, Message, Server, ServerConfig, ServerEvent};
//!
//! let now = Instant::ZERO;
//! let config = ClientConfig::new(ProtocolVersion::V5, Str::from_static("c1"));
//! let mut client = Connection::<Client>::new(config, now, None);
//! let mut server = Connection::<Server>::new(ServerConfig::default(), now);
//! let mut wire = BytesMut::new();
//!
//! // CONNECT -> server -> the application accepts -> CONNACK -> client.
//! let _ = client.poll_transmit(now, &mut wire);
//! server.handle_read(now, &mut wire);
//! assert!(matches!(server.poll_event(), Some(ServerEvent::Connect(_))));
//! server.accept(now, None, ConnAckProps::default())?;
//! let _ = server.poll_transmit(now, &mut wire);
//! client.handle_read(now, &mut wire);
//! assert!(matches!(client.poll_event(), Some(ClientEvent::Connected { .. })));
//!
//! // A QoS 1 publish: the server sees it, acknowledges it, the client hears back.
//! let msg = Message::new(TopicName::from_static("a/b"), "hi", QoS::AtLeastOnce, false);
//! let id = client.publish(now, msg)?.unwrap();
//! let _ = client.poll_transmit(now, &mut wire);
//! server.handle_read(now, &mut wire);
//! let Some(ServerEvent::Publish { msg, id: Some(pid) }) = server.poll_event() else { panic!() };
//! assert_eq!(&msg.payload[..], b"hi");
//! server.ack(pid, mqtt_codec::ReasonCode::SUCCESS)?;
//! let _ = server.poll_transmit(now, &mut wire);
//! client.handle_read(now, &mut wire);
//! assert!(matches!(client.poll_event(), Some(ClientEvent::Published { id: done, .. }) if done == id));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod alias;
mod client;
mod config;
mod connection;
mod error;
mod ids;
mod journal;
mod message;
mod queue;
mod server;
mod session;
mod time;
mod tx;

pub use client::{Client, ClientEvent};
pub use config::{ClientConfig, Limits, ServerCaps, ServerConfig};
pub use connection::{Connection, Role};
pub use error::{Close, DeliverError, Initiator, UsageError, Violation};
pub use journal::SessionChange;
pub use message::{DeliveryOptions, Message, MessageProps};
pub use server::{Server, ServerEvent};
pub use session::Session;
pub use time::Instant;
pub use tx::Frame;

/// Re-export of the codec, whose types appear throughout this crate's API.
pub use mqtt_codec;

/// The README's example, compiled (and run where it needs no broker) as a
/// doctest, so that what crates.io shows stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctest;
