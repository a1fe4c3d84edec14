//! Encoding and decoding of every MQTT 3.1, 3.1.1 and 5.0 control packet.
//!
//! This crate turns bytes into [`Packet`]s and packets into bytes, and nothing
//! else: no sockets, no clock, no threads. It is `no_std` + `alloc` with the
//! default `std` feature turned off.
//!
//! - **One model, three versions.** 3.1 (`MQIsdp`, level 3), 3.1.1 (level 4) and
//!   5.0 (level 5) share every type; 5.0-only fields (properties, reason codes)
//!   are empty under the older versions, whose return codes are mapped onto
//!   [`ReasonCode`].
//! - **Streaming.** [`Decoder::decode`] takes the bytes read so far and returns
//!   a whole packet, or `None` without consuming anything.
//! - **Zero-copy.** Topics, strings and payloads of decoded packets are
//!   [`Bytes`](bytes::Bytes) slices of the read buffer (or `&[u8]` with
//!   [`Decoder::decode_slice`]), so forwarding a PUBLISH copies no payload;
//!   [`Publish::encode_head`] lets a writer send a large payload without copying it.
//! - **Limits before allocation.** The maximum packet size is checked from the
//!   fixed header alone, so an oversized packet is refused after at most five bytes.
//! - **Strict.** Every malformed-packet and protocol-error rule a codec can check
//!   is checked, each as its own [`DecodeError`] variant that knows its reason code.
//!
//! # Example
//! ```
//! use bytes::BytesMut;
//! use mqtt_codec::{Decoder, Packet, ProtocolVersion, Publish, PacketId, QosPid, TopicName};
//!
//! // Encode a QoS 1 PUBLISH for an MQTT 5.0 connection.
//! let mut publish = Publish::new(TopicName::from_static("sensors/1/temp"), "21.5".into());
//! publish.qos = QosPid::AtLeastOnce(PacketId::new(7).unwrap());
//! let mut wire = BytesMut::new();
//! Packet::Publish(publish.clone()).encode(ProtocolVersion::V5, &mut wire)?;
//!
//! // Decode it again; the payload shares `wire`'s memory.
//! let mut decoder = Decoder::with_version(ProtocolVersion::V5);
//! match decoder.decode(&mut wire)? {
//!     Some(Packet::Publish(p)) => {
//!         assert_eq!(p.topic.as_ref().unwrap(), "sensors/1/temp");
//!         assert_eq!(&p.payload[..], b"21.5");
//!         assert_eq!(p, publish);
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! assert!(wire.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "arbitrary")]
pub mod arbitrary;
mod decoder;
mod error;
pub mod packet;
pub mod properties;
mod reason;
mod scan;
mod string;
mod topic;
mod types;
mod wire;

pub use decoder::{Borrowed, Decoder};
pub use error::{DecodeError, EncodeError};
pub use packet::{
    Ack, Auth, ConnAck, Connect, Disconnect, FixedHeader, Packet, Publish, RetainHandling, SubAck,
    Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe, Will, MAX_PACKET_SIZE,
};
pub use properties::{
    AckProps, AuthProps, ConnAckProps, ConnectProps, DisconnectProps, PayloadFormat, PublishProps,
    SubAckProps, SubscribeProps, SubscriptionId, UnsubscribeProps, UserProperties, WillProps,
};
pub use reason::ReasonCode;
pub use string::{has_control_characters, Storage, Str, StrError};
pub use topic::{SharedFilter, TopicError, TopicFilter, TopicName};
pub use types::{PacketId, PacketType, ProtocolVersion, QoS, QosPid};
pub use wire::MAX_VARIABLE_BYTE_INTEGER;

/// Re-export of the `bytes` crate, whose types appear in this crate's API.
pub use bytes;

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The README's example, compiled (and run where it needs no broker) as a
/// doctest, so that what crates.io shows stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctest;
