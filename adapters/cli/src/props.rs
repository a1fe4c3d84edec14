//! `-D COMMAND NAME VALUE`: MQTT 5.0 properties for CONNECT, PUBLISH, the
//! will and DISCONNECT, named as in Mosquitto's tools
//! (`payload-format-indicator`, `user-property`, ...).

use mqtt_tokio::mqtt_client::mqtt_session::mqtt_codec::{PayloadFormat, Str, TopicName};
use mqtt_tokio::{DisconnectProps, WillProps};

use crate::failure::Failure;

/// The CONNECT properties given with `-D CONNECT`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ConnectProps {
    /// `session-expiry-interval`.
    pub(crate) session_expiry_interval: Option<u32>,
    /// `receive-maximum`.
    pub(crate) receive_maximum: Option<u16>,
    /// `maximum-packet-size`.
    pub(crate) maximum_packet_size: Option<u32>,
    /// `topic-alias-maximum`.
    pub(crate) topic_alias_maximum: Option<u16>,
    /// `request-problem-information`.
    pub(crate) request_problem_information: Option<bool>,
    /// `user-property`, in order.
    pub(crate) user_properties: Vec<(String, String)>,
}

/// The properties of a published message (`-D PUBLISH`) or of the will
/// (`-D WILL`, which adds `will-delay-interval`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct MessageProperties {
    /// `payload-format-indicator`.
    pub(crate) payload_format: Option<PayloadFormat>,
    /// `message-expiry-interval`, seconds.
    pub(crate) message_expiry_interval: Option<u32>,
    /// `content-type`.
    pub(crate) content_type: Option<Str>,
    /// `response-topic`.
    pub(crate) response_topic: Option<TopicName>,
    /// `correlation-data` (given as text, as in Mosquitto).
    pub(crate) correlation_data: Option<Vec<u8>>,
    /// `user-property`, in order.
    pub(crate) user_properties: Vec<(Str, Str)>,
    /// `will-delay-interval` (WILL only).
    pub(crate) will_delay_interval: Option<u32>,
}

/// Every `-D` of a command line, sorted by packet.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Properties {
    /// `-D CONNECT ...`.
    pub(crate) connect: ConnectProps,
    /// `-D PUBLISH ...`.
    pub(crate) publish: MessageProperties,
    /// `-D WILL ...`.
    pub(crate) will: MessageProperties,
    /// `-D DISCONNECT ...`.
    pub(crate) disconnect: DisconnectProps,
}

impl Properties {
    /// Reads every `-D` (each 3 or 4 words). `allowed` are the commands the
    /// tool sends (`mqtt sub` publishes nothing, so no PUBLISH).
    pub(crate) fn parse(given: &[Vec<String>], allowed: &[&str]) -> Result<Properties, Failure> {
        let mut props = Properties::default();
        for words in given {
            props.add(words, allowed)?;
        }
        Ok(props)
    }

    fn add(&mut self, words: &[String], allowed: &[&str]) -> Result<(), Failure> {
        let (command, name, values) = match words {
            [c, n, rest @ ..] => (c.to_ascii_uppercase(), n.as_str(), rest),
            _ => return Err(Failure::usage(NOT_ENOUGH)),
        };
        if !allowed.contains(&command.as_str()) {
            return Err(Failure::usage(format!(
                "Error: Invalid command {command} given in --property argument."
            )));
        }
        let value = match (name, values) {
            ("user-property", [key, value]) => return self.add_user_property(&command, key, value),
            ("user-property", _) => return Err(Failure::usage(NOT_ENOUGH)),
            (_, [value]) => value.as_str(),
            (_, _) => {
                return Err(Failure::usage(
                    "Error: Too many arguments given in --property argument.",
                ))
            }
        };
        let placed = match command.as_str() {
            "CONNECT" => self.connect.set(name, value)?,
            "PUBLISH" => self.publish.set(name, value, false)?,
            "WILL" => self.will.set(name, value, true)?,
            "DISCONNECT" => set_disconnect(&mut self.disconnect, name, value)?,
            _ => false,
        };
        if placed {
            Ok(())
        } else if unsupported(&command, name) {
            Err(Failure::usage(format!(
                "Error: {name} property for {command} is not supported by this tool."
            )))
        } else if is_known(name) {
            Err(Failure::usage(format!(
                "Error: {name} property not allowed for {command} in --property argument."
            )))
        } else {
            Err(Failure::usage(
                "Error: Invalid property name given in --property argument.",
            ))
        }
    }

    fn add_user_property(&mut self, command: &str, key: &str, value: &str) -> Result<(), Failure> {
        match command {
            "CONNECT" => self
                .connect
                .user_properties
                .push((key.to_owned(), value.to_owned())),
            "PUBLISH" => self.publish.user_properties.push(pair(key, value)?),
            "WILL" => self.will.user_properties.push(pair(key, value)?),
            "DISCONNECT" => self.disconnect.user_properties.push(pair(key, value)?),
            _ => {
                return Err(Failure::usage(format!(
                    "Error: user-property for {command} is not supported by this tool."
                )))
            }
        }
        Ok(())
    }
}

const NOT_ENOUGH: &str = "Error: --property argument given but not enough arguments specified.";

impl ConnectProps {
    fn set(&mut self, name: &str, value: &str) -> Result<bool, Failure> {
        match name {
            "session-expiry-interval" => self.session_expiry_interval = Some(number(name, value)?),
            "receive-maximum" => self.receive_maximum = Some(number(name, value)?),
            "maximum-packet-size" => self.maximum_packet_size = Some(number(name, value)?),
            "topic-alias-maximum" => self.topic_alias_maximum = Some(number(name, value)?),
            "request-problem-information" => {
                self.request_problem_information = Some(number::<u8>(name, value)? != 0)
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl MessageProperties {
    fn set(&mut self, name: &str, value: &str, will: bool) -> Result<bool, Failure> {
        match name {
            "payload-format-indicator" => {
                self.payload_format = Some(match number::<u8>(name, value)? {
                    0 => PayloadFormat::Unspecified,
                    1 => PayloadFormat::Utf8,
                    _ => return Err(invalid(name, value)),
                })
            }
            "message-expiry-interval" => self.message_expiry_interval = Some(number(name, value)?),
            "content-type" => self.content_type = Some(text(name, value)?),
            "response-topic" => {
                self.response_topic =
                    Some(TopicName::try_from(value).map_err(|_| invalid(name, value))?)
            }
            "correlation-data" => self.correlation_data = Some(value.as_bytes().to_vec()),
            "will-delay-interval" if will => self.will_delay_interval = Some(number(name, value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The will's 5.0 properties.
    pub(crate) fn will_props(&self) -> WillProps {
        let mut props = WillProps::default();
        props.will_delay_interval = self.will_delay_interval;
        props.payload_format_indicator = self.payload_format;
        props.message_expiry_interval = self.message_expiry_interval;
        props.content_type = self.content_type.clone();
        props.response_topic = self.response_topic.clone();
        props.correlation_data = self.correlation_data.clone().map(Into::into);
        props.user_properties = self.user_properties.clone();
        props
    }
}

fn set_disconnect(props: &mut DisconnectProps, name: &str, value: &str) -> Result<bool, Failure> {
    match name {
        "session-expiry-interval" => props.session_expiry_interval = Some(number(name, value)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// Properties Mosquitto's tools send that this one does not: enhanced
/// authentication (the client adapters do not drive it), Request Response
/// Information, and topic aliases (the client picks its own).
fn unsupported(command: &str, name: &str) -> bool {
    matches!(
        (command, name),
        (
            "CONNECT",
            "authentication-method" | "authentication-data" | "request-response-information"
        ) | ("PUBLISH", "topic-alias")
    )
}

/// Every property name Mosquitto's tools know, for the error that says it
/// does not belong to that packet.
fn is_known(name: &str) -> bool {
    const KNOWN: &[&str] = &[
        "payload-format-indicator",
        "message-expiry-interval",
        "content-type",
        "response-topic",
        "correlation-data",
        "subscription-identifier",
        "session-expiry-interval",
        "assigned-client-identifier",
        "server-keep-alive",
        "authentication-method",
        "authentication-data",
        "request-problem-information",
        "will-delay-interval",
        "request-response-information",
        "response-information",
        "server-reference",
        "reason-string",
        "receive-maximum",
        "topic-alias-maximum",
        "topic-alias",
        "maximum-qos",
        "retain-available",
        "user-property",
        "maximum-packet-size",
        "wildcard-subscription-available",
        "subscription-identifier-available",
        "shared-subscription-available",
    ];
    KNOWN.contains(&name)
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, Failure> {
    value.parse().map_err(|_| invalid(name, value))
}

fn text(name: &str, value: &str) -> Result<Str, Failure> {
    Str::try_from(value).map_err(|_| invalid(name, value))
}

fn pair(key: &str, value: &str) -> Result<(Str, Str), Failure> {
    Ok((text("user-property", key)?, text("user-property", value)?))
}

fn invalid(name: &str, value: &str) -> Failure {
    Failure::usage(format!(
        "Error: Invalid value {value:?} for {name} in --property argument."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    const ALL: &[&str] = &["CONNECT", "PUBLISH", "WILL", "DISCONNECT"];

    #[test]
    fn properties_land_in_their_packets() {
        let p = Properties::parse(
            &[
                words("PUBLISH user-property k1 v1"),
                words("publish content-type text/plain"),
                words("PUBLISH message-expiry-interval 100"),
                words("CONNECT receive-maximum 5"),
                words("WILL will-delay-interval 3"),
                words("DISCONNECT session-expiry-interval 9"),
            ],
            ALL,
        )
        .unwrap();
        assert_eq!(p.publish.user_properties.len(), 1);
        assert_eq!(p.publish.content_type.as_ref().unwrap(), "text/plain");
        assert_eq!(p.publish.message_expiry_interval, Some(100));
        assert_eq!(p.connect.receive_maximum, Some(5));
        assert_eq!(p.will.will_props().will_delay_interval, Some(3));
        assert_eq!(p.disconnect.session_expiry_interval, Some(9));
    }

    #[test]
    fn misplaced_unknown_and_incomplete_properties_are_refused() {
        let refusal = |line: &str, allowed: &[&str]| {
            Properties::parse(&[words(line)], allowed)
                .unwrap_err()
                .message
        };
        assert_eq!(
            refusal("CONNECT content-type a", ALL),
            "Error: content-type property not allowed for CONNECT in --property argument."
        );
        assert_eq!(
            refusal("PUBLISH bogus 1", ALL),
            "Error: Invalid property name given in --property argument."
        );
        assert_eq!(refusal("PUBLISH user-property a", ALL), NOT_ENOUGH);
        assert!(refusal("PUBLISH content-type a", &["CONNECT"]).contains("Invalid command"));
        assert!(refusal("PUBLISH message-expiry-interval x", ALL).contains("Invalid value"));
        assert!(refusal("PUBLISH topic-alias 1", ALL).contains("not supported"));
        assert!(refusal("CONNECT authentication-method SCRAM", ALL).contains("not supported"));
    }
}
