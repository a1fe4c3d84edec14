//! The matching half of an MQTT broker, as a pure data structure crate: who
//! receives a published message, and which retained messages a new
//! subscription gets.
//!
//! - [`SubscriptionIndex`]: every subscription of every client (options and
//!   5.0 Subscription Identifier included) in a trie keyed by topic level.
//!   [`SubscriptionIndex::match_topic`] reports each matching client once,
//!   with its highest QoS and all its Subscription Identifiers, honouring
//!   No Local, and one member per matching shared subscription group
//!   (`$share/{ShareName}/{filter}`), picked round robin or at (seeded)
//!   random. Matching costs grow with the topic's depth and the number of
//!   matches, not with the number of subscriptions, and do not allocate in
//!   the steady state.
//! - [`Retained`]: one retained message per topic name, with 5.0 message
//!   expiry, looked up by topic filter through only the matching branches.
//!
//! Topic names, filters, QoS and subscription options are the
//! [`mqtt_codec`] types, so validation lives in one place: a
//! [`TopicFilter`](mqtt_codec::TopicFilter) that exists is valid.
//!
//! # Sans-IO
//! No sockets, no clock, no threads, no randomness of its own: time comes in
//! as [`Instant`] arguments, and one `seed: u64` per structure keys the
//! hashers (topic levels are chosen by clients, so tables are keyed to resist
//! collision flooding) and drives [`SharedStrategy::Random`]. `no_std` +
//! `alloc`; the default `std` feature only adds `std::error::Error` impls.
//!
//! # Example
//! ```
//! use mqtt_codec::{QoS, SubscriptionOptions, TopicFilter, TopicName};
//! use mqtt_router::{Matches, Subscription, SubscriptionIndex};
//!
//! let mut index = SubscriptionIndex::<u32>::new(1);
//! let qos1 = Subscription::new(SubscriptionOptions::new(QoS::AtLeastOnce), None);
//! assert!(index.insert(7, &TopicFilter::from_static("site/+/temp"), qos1)?.is_new());
//!
//! let mut matches = Matches::new(); // reuse for every publish
//! index.match_topic(&TopicName::from_static("site/3/temp"), None, &mut matches);
//! assert_eq!(matches.subscribers().map(|d| d.client).collect::<Vec<_>>(), [7]);
//!
//! index.remove_client(7);
//! index.match_topic(&TopicName::from_static("site/3/temp"), None, &mut matches);
//! assert!(matches.is_empty());
//! # Ok::<(), mqtt_router::SubscribeError>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod broker;
mod error;
mod index;
mod level;
mod matches;
mod retained;
mod seed;
mod shared;
mod subscribers;
pub mod topic_sets;

pub use error::{RetainError, SubscribeError};
pub use index::{Insertion, Subscription, SubscriptionIndex};
pub use matches::{Deliveries, Delivery, Matches};
pub use mqtt_session::Instant;
pub use retained::{Retained, RetainedMessage, RetainedRef};
pub use shared::SharedStrategy;

/// The README's example, compiled (and run where it needs no broker) as a
/// doctest, so that what crates.io shows stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctest;
