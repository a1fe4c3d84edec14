//! `mqtt rr`: MQTT 5.0 request/response, as `mosquitto_rr`. Subscribes to
//! the response topic (`-e`), publishes the request to `-t` with that
//! Response Topic and Correlation Data (`-D PUBLISH correlation-data`, or
//! a unique one), and prints the first response that carries the same
//! Correlation Data (or none), as `mqtt sub` prints messages.

use mqtt_tokio::{Client, Event, Incoming, Message, ProtocolVersion, ReasonCode, Requests};

use crate::args::RrArgs;
use crate::connect::{Connection, Tool};
use crate::failure::Failure;
use crate::format::{Printer, Received};
use crate::props::Properties;
use crate::publish::{message_props, payload, publish_topic};
use crate::subscribe::{print, time_limit};

/// Runs `mqtt rr`.
pub(crate) async fn run(args: RrArgs) -> Result<(), Failure> {
    let mut props = Properties::parse(
        &args.conn.properties,
        &["CONNECT", "PUBLISH", "WILL", "DISCONNECT"],
    )?;
    let tool = Tool {
        name: "rr",
        default_version: ProtocolVersion::V5,
    };
    let conn = Connection::from_args(&args.conn, &props, tool)?;
    if conn.version != ProtocolVersion::V5 {
        return Err(Failure::usage(
            "Error: mqtt rr needs MQTT v5 (request/response properties).",
        ));
    }
    let topic = args.topic.clone().or_else(|| conn.url_topic.clone());
    let (Some(topic), Some(response)) = (topic, args.response_topic.clone()) else {
        return Err(Failure::usage(
            "Error: All of topic, message, and response topic must be supplied.",
        ));
    };
    let request_topic = publish_topic(&topic)?;
    props.publish.response_topic = Some(publish_topic(&response)?);
    let correlation = props
        .publish
        .correlation_data
        .get_or_insert_with(unique_correlation)
        .clone();
    let body = payload(&args.message).await?;
    let printer = Printer::new(&args.output)?;
    let limit = time_limit(&args.output)?;
    let (client, mut incoming) = conn.open().await?;
    let exchange = async {
        client
            .subscribe(&response, args.qos)
            .await
            .map_err(|e| Failure::runtime(format!("Error: Subscribing failed: {e}")))?;
        let request = Message {
            topic: request_topic,
            payload: body.into(),
            qos: args.qos,
            retain: false,
            props: message_props(&client, &props.publish),
        };
        client
            .publish_message(request)
            .await
            .map_err(|e| Failure::runtime(format!("Error: Publish failed: {e}")))?;
        let wanted = Wanted {
            topic: &response,
            correlation: &correlation,
            skip_retained: args.output.no_retained,
        };
        let reply = wanted.next(&client, &mut incoming, &conn).await?;
        print(&printer.render(&reply, chrono::Local::now()))
    };
    let outcome = match limit {
        Some(limit) => tokio::time::timeout(limit, exchange)
            .await
            .unwrap_or_else(|_| Err(Failure::timed_out())),
        None => exchange.await,
    };
    finish(&client, &conn).await;
    outcome
}

async fn finish(client: &Client, conn: &Connection) {
    let _ = client
        .disconnect_with(ReasonCode::NORMAL_DISCONNECTION, conn.disconnect.clone())
        .await;
}

/// Correlation data no other requester uses: this process and the time.
fn unique_correlation() -> Vec<u8> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("mqtt-rr-{}-{nanos:x}", std::process::id()).into_bytes()
}

/// Which message is the response.
struct Wanted<'a> {
    topic: &'a str,
    correlation: &'a [u8],
    skip_retained: bool,
}

impl Wanted<'_> {
    /// The first message on the response topic with our correlation data
    /// (or none: a responder that does not echo it still answers us).
    async fn next(
        &self,
        client: &Client,
        incoming: &mut Incoming,
        conn: &Connection,
    ) -> Result<Received, Failure> {
        while let Some(event) = incoming.recv().await {
            let reply = match event {
                Event::Message {
                    message,
                    subscription_identifiers,
                    packet_id,
                    ..
                } => Received::new(client, message, subscription_identifiers, packet_id),
                other => {
                    conn.report(&other);
                    continue;
                }
            };
            let message = &reply.message;
            let ours = message
                .props
                .correlation_data
                .as_deref()
                .is_none_or(|c| c == self.correlation);
            let stale = self.skip_retained && message.retain;
            if message.topic.as_str() == self.topic && ours && !stale {
                return Ok(reply);
            }
        }
        Err(Failure::runtime(
            "Error: The connection to the broker was lost.",
        ))
    }
}
