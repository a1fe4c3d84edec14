//! An MQTT 3.1.1 / 5.0 client for async-std, smol and any executor: built on
//! the `futures-io` traits and the `async-io` reactor that async-std and smol
//! share, with no runtime of its own.
//!
//! The client is `mqtt-client`'s (its connection task, requests and
//! options, over `mqtt-session`'s client side); this crate gives it
//! `async-io`'s clock, timers and TCP, TLS (futures-rustls) and WebSocket
//! (async-tungstenite) on top, and its channels. One
//! task owns the connection; [`Client`] handles send it commands and await
//! the answers (the methods of [`Requests`]); [`Incoming`] yields received
//! messages and connection events. The API is `mqtt-tokio`'s.
//!
//! ```no_run
//! use mqtt_async_std::{Client, ConnectOptions, Event, OptionSetters, QoS, Requests};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let options = ConnectOptions::new("mqtt://127.0.0.1:1883")?
//!     .client_id("sensor-1")
//!     .keep_alive(30);
//! let (client, mut incoming) = Client::connect(options).await?;
//!
//! client.subscribe("commands/#", QoS::AtLeastOnce).await?;
//! client.publish("sensors/1/temp", "21.5", QoS::AtLeastOnce, false).await?;
//!
//! while let Some(event) = incoming.recv().await {
//!     if let Event::Message { message, .. } = event {
//!         println!("{}: {:?}", message.topic, message.payload);
//!         break;
//!     }
//! }
//! client.disconnect().await?;
//! # Ok(())
//! # }
//! // Under either runtime:
//! // async_std::task::block_on(demo())  or  smol::block_on(demo())
//! ```
//!
//! Addresses: `mqtt://host:port`, `mqtts://host:port` (TLS, the default
//! roots of the Cargo features below unless [`ConnectOptions::tls_config`]
//! or [`ConnectOptions::ca_file`] say otherwise; a client certificate with
//! [`ConnectOptions::client_certificate_files`]), `ws://host:port/mqtt` and
//! `wss://...` (WebSocket with subprotocol `mqtt`).
//!
//! # Cargo features
//!
//! | Feature | Default | What it brings |
//! | --- | --- | --- |
//! | `tls` | on | `mqtts://` (and `wss://` with `websocket`): rustls on ring, through futures-rustls; `ca_file` and `client_certificate` |
//! | `webpki-roots` | on | Mozilla's root certificates in the default trust store |
//! | `native-roots` | off | the platform's root certificates (rustls-native-certs) in the default trust store, beside Mozilla's if `webpki-roots` is on |
//! | `websocket` | on | `ws://` (and `wss://` with `tls`): async-tungstenite |
//!
//! With `default-features = false` this is a plain-TCP client, without
//! rustls, ring or tungstenite in the build; an address that needs a
//! transport left out is refused by [`ConnectOptions::new`] with
//! [`ConnectError::FeatureDisabled`], which names the feature. To trust
//! only the platform's roots, turn the default features off and name
//! `native-roots` (and `websocket` if wanted).
//!
//! The connection task gets a thread of its own by default, so the client
//! works under any executor; [`ConnectOptions::spawner`] runs it on the
//! application's executor instead (`async_std::task::spawn`, `smol::spawn`).
//!
//! With [`ConnectOptions::reconnect`] a lost connection is re-established
//! with exponential backoff; a persistent session (a session expiry under
//! 5.0) is resumed and what was in flight is resent, so a publish made
//! before an outage still completes after it.

mod client;
mod error;
mod options;
mod runtime;
#[cfg(feature = "tls")]
mod tls;
mod transport;
#[cfg(feature = "websocket")]
mod websocket;

pub use crate::client::{Client, Event, Incoming, Pending};
pub use crate::error::ConnectError;
pub use crate::options::{ConnectOptions, Spawner, Task};
pub use crate::runtime::OneshotReplies;
/// The rustls version this crate uses, for [`ConnectOptions::tls_config`].
#[cfg(feature = "tls")]
pub use futures_rustls::rustls;
/// The client this crate runs: its options, errors, driver and connection
/// task.
pub use mqtt_client;
pub use mqtt_client::mqtt_session::mqtt_codec::{
    DisconnectProps, ProtocolVersion, QoS, ReasonCode, RetainHandling, SubscriptionId,
    SubscriptionOptions, WillProps,
};
pub use mqtt_client::mqtt_session::{Close, Initiator, Message, MessageProps, ServerCaps};
pub use mqtt_client::{
    AckToken, Address, AddressError, AuthError, Backoff, ClientError, EnhancedAuth, OptionSetters,
    Requests, Scheme, SubscribeResult,
};

/// The README's example, compiled as a doctest, so that what crates.io
/// shows stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctest;
