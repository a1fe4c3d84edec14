//! The request methods of a client handle, written once for every adapter
//! that sends [`Command`](crate::client_driver::Command)s to a
//! [`ClientDriver`](crate::client_driver::ClientDriver).

/// Writes `publish`, `publish_message`, `subscribe`, `subscribe_with`,
/// `unsubscribe`, `disconnect` and `disconnect_with` into an adapter's
/// `Client`, `async` (`client_request_methods!(async)`) or blocking
/// (`client_request_methods!(blocking)`).
///
/// The adapter provides, on the same type, `fn request<T>(&self, make: impl
/// FnOnce(Reply<T>) -> Command) -> Result<T, ClientError>` (async for the
/// `async` form): it makes the command with a fresh reply handle, hands it
/// to its driver and waits for the answer; and `fn now(&self) -> Instant`.
/// `ClientError` and `Client` must be in scope where the macro is used (the
/// documentation links to them).
#[macro_export]
macro_rules! client_request_methods {
    (async) => {
        $crate::client_request_methods!(@methods [async] [.await]);
    };
    (blocking) => {
        $crate::client_request_methods!(@methods [] []);
    };
    (@methods [$($async:tt)?] [$($await:tt)*]) => {
        /// Publishes `payload` to `topic`. The answer comes when the message
        /// is handed to the network (QoS 0), acknowledged with PUBACK (QoS 1)
        /// or complete with PUBCOMP (QoS 2): the broker's reason code
        /// (success or 0x10 "no matching subscribers" under 5.0; always
        /// success under 3.1.1). A failure reason code is
        /// [`ClientError::Refused`].
        pub $($async)? fn publish(
            &self,
            topic: &str,
            payload: impl Into<$crate::mqtt_codec::bytes::Bytes>,
            qos: $crate::mqtt_codec::QoS,
            retain: bool,
        ) -> Result<$crate::mqtt_codec::ReasonCode, $crate::ClientError> {
            let topic = $crate::mqtt_codec::TopicName::try_from(topic)?;
            self.publish_message($crate::Message::new(topic, payload, qos, retain))
                $($await)*
        }

        /// Publishes a message with 5.0 properties; see [`Client::publish`].
        /// A message expiry (`props.expires_at`) counts from [`Client::now`].
        pub $($async)? fn publish_message(
            &self,
            message: $crate::Message,
        ) -> Result<$crate::mqtt_codec::ReasonCode, $crate::ClientError> {
            self.request(|reply| $crate::client_driver::Command::Publish { message, reply })
                $($await)*
        }

        /// Subscribes to one filter; returns the QoS the broker granted, or
        /// [`ClientError::Refused`] with its failure reason code.
        pub $($async)? fn subscribe(
            &self,
            filter: &str,
            qos: $crate::mqtt_codec::QoS,
        ) -> Result<$crate::mqtt_codec::QoS, $crate::ClientError> {
            let options = $crate::mqtt_codec::SubscriptionOptions::new(qos);
            let results = self.subscribe_with(&[(filter, options)], None) $($await)* ?;
            $crate::client_driver::first_granted(&results).map_err($crate::ClientError::Refused)
        }

        /// Subscribes to several filters with 5.0 subscription options (No
        /// Local, Retain As Published, Retain Handling) and an optional
        /// subscription identifier; one result per filter, in order.
        pub $($async)? fn subscribe_with(
            &self,
            filters: &[(&str, $crate::mqtt_codec::SubscriptionOptions)],
            identifier: Option<$crate::mqtt_codec::SubscriptionId>,
        ) -> Result<Vec<$crate::SubscribeResult>, $crate::ClientError> {
            let filters = $crate::client_driver::subscription_filters(filters)?;
            self.request(|reply| $crate::client_driver::Command::Subscribe {
                filters,
                identifier,
                reply,
            })
            $($await)*
        }

        /// Unsubscribes; one reason code per filter under 5.0 (success or
        /// 0x11 "no subscription existed"), none under 3.1.1.
        pub $($async)? fn unsubscribe(
            &self,
            filters: &[&str],
        ) -> Result<Vec<$crate::mqtt_codec::ReasonCode>, $crate::ClientError> {
            let filters = $crate::client_driver::topic_filters(filters)?;
            self.request(|reply| $crate::client_driver::Command::Unsubscribe { filters, reply })
                $($await)*
        }

        /// Disconnects normally: DISCONNECT, no will. The answer comes once
        /// the connection is closed; requests still waiting fail with
        /// [`ClientError::Disconnected`].
        pub $($async)? fn disconnect(&self) -> Result<(), $crate::ClientError> {
            self.disconnect_with(
                $crate::mqtt_codec::ReasonCode::NORMAL_DISCONNECTION,
                $crate::mqtt_codec::DisconnectProps::default(),
            )
            $($await)*
        }

        /// Disconnects with a 5.0 reason code (0x04 asks the broker to
        /// publish the will anyway) and DISCONNECT properties (a reason
        /// string, a new session expiry interval).
        pub $($async)? fn disconnect_with(
            &self,
            reason: $crate::mqtt_codec::ReasonCode,
            props: $crate::mqtt_codec::DisconnectProps,
        ) -> Result<(), $crate::ClientError> {
            self.request(|reply| $crate::client_driver::Command::Disconnect {
                reason,
                props,
                reply,
            })
            $($await)*
        }
    };
}
