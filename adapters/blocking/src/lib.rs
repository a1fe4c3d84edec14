//! A blocking MQTT 3.1.1 / 5.0 client on `std::net`, with no async runtime.
//!
//! The client is `mqtt-client`'s (its driver, requests and options, over
//! `mqtt-session`'s client side); this crate moves its bytes over TCP or TLS
//! (rustls), keeps its timer (keep alive, CONNACK deadline) and hands
//! results to the callers waiting for them. One thread owns the connection
//! and another reads its socket; [`Client`] methods (those of
//! [`BlockingRequests`]) block until the broker has answered, and
//! [`Incoming`] yields received messages and connection events (it is also
//! an iterator). The options' setters are those of [`OptionSetters`].
//!
//! ```no_run
//! use mqtt_blocking::{BlockingRequests, Client, ConnectOptions, Event, OptionSetters, QoS};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = ConnectOptions::new("mqtt://127.0.0.1:1883")?
//!     .client_id("sensor-1")
//!     .keep_alive(30);
//! let (client, incoming) = Client::connect(options)?;
//!
//! client.subscribe("commands/#", QoS::AtLeastOnce)?;
//! client.publish("sensors/1/temp", "21.5", QoS::AtLeastOnce, false)?;
//!
//! for event in incoming {
//!     if let Event::Message { message, .. } = event {
//!         println!("{}: {:?}", message.topic, message.payload);
//!         break;
//!     }
//! }
//! client.disconnect()?;
//! # Ok(())
//! # }
//! ```
//!
//! Addresses: `mqtt://host:port`, or `mqtts://host:port` for TLS (the
//! default roots of the Cargo features below unless
//! [`ConnectOptions::tls_config`] or [`ConnectOptions::ca_file`] say
//! otherwise; a client certificate with
//! [`ConnectOptions::client_certificate_files`]).
//!
//! # Cargo features
//!
//! | Feature | Default | What it brings |
//! | --- | --- | --- |
//! | `tls` | on | `mqtts://`: rustls on ring |
//! | `webpki-roots` | on | Mozilla's root certificates in the default trust store |
//! | `native-roots` | off | the platform's root certificates (rustls-native-certs) in the default trust store, beside Mozilla's if `webpki-roots` is on |
//!
//! With `default-features = false` this is a plain-TCP client, without
//! rustls or ring in the build; an `mqtts://` address is then refused by
//! [`ConnectOptions::new`] with [`ConnectError::FeatureDisabled`], which
//! names the feature. To trust only the platform's roots, turn the default
//! features off and name `native-roots`.
//!
//! With [`ConnectOptions::reconnect`] a lost connection is re-established
//! with exponential backoff; a persistent session (a session expiry under
//! 5.0) is resumed and what was in flight is resent, so a publish made
//! before an outage still completes after it.

mod client;
mod error;
mod incoming;
mod options;
#[cfg(feature = "tls")]
mod tls;
mod transport;

pub use crate::client::{ChannelReplies, Client, Event, Pending};
pub use crate::error::ConnectError;
pub use crate::incoming::Incoming;
pub use crate::options::ConnectOptions;
/// The client this crate runs: its options, errors and driver.
pub use mqtt_client;
pub use mqtt_client::mqtt_session::mqtt_codec::{
    DisconnectProps, ProtocolVersion, QoS, ReasonCode, RetainHandling, SubscriptionId,
    SubscriptionOptions, WillProps,
};
pub use mqtt_client::mqtt_session::{Close, Initiator, Message, MessageProps, ServerCaps};
pub use mqtt_client::{
    AckToken, Address, AddressError, AuthError, Backoff, BlockingRequests, ClientError,
    EnhancedAuth, OptionSetters, Scheme, SubscribeResult, Wait,
};
/// The rustls version this crate uses, for [`ConnectOptions::tls_config`].
#[cfg(feature = "tls")]
pub use rustls;

/// The README's example, compiled (and run where it needs no broker) as a
/// doctest, so that what crates.io shows stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctest;
