//! `mqtt pub`: publish one message (`-m`, `-f`, `-n`, `-s`, repeated with
//! `--repeat`) or one per line of standard input (`-l`), as
//! `mosquitto_pub`.

use std::path::Path;
use std::time::Duration;

use mqtt_tokio::mqtt_client::mqtt_session::mqtt_codec::TopicName;
use mqtt_tokio::{Client, Message, MessageProps, ProtocolVersion, QoS, ReasonCode, Requests};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::args::{MessageArgs, PubArgs};
use crate::connect::{Connection, Tool};
use crate::failure::Failure;
use crate::props::{MessageProperties, Properties};

/// Runs `mqtt pub`.
pub(crate) async fn run(args: PubArgs) -> Result<(), Failure> {
    let props = Properties::parse(
        &args.conn.properties,
        &["CONNECT", "PUBLISH", "WILL", "DISCONNECT"],
    )?;
    let tool = Tool {
        name: "pub",
        default_version: ProtocolVersion::V311,
    };
    let conn = Connection::from_args(&args.conn, &props, tool)?;
    let given = [
        args.message.message.is_some(),
        args.message.file.is_some(),
        args.message.null,
        args.message.stdin_file,
        args.stdin_line,
    ];
    let topic = args.topic.clone().or_else(|| conn.url_topic.clone());
    let (Some(topic), true) = (topic, given.contains(&true)) else {
        return Err(Failure::usage(
            "Error: Both topic and message must be supplied.",
        ));
    };
    let topic = publish_topic(&topic)?;
    let delay = Duration::try_from_secs_f64(args.repeat_delay).map_err(|_| {
        Failure::usage(format!(
            "Error: Invalid repeat delay \"{}\".",
            args.repeat_delay
        ))
    })?;
    // -l reads its messages once connected; the others are read first.
    let single = if !args.stdin_line {
        Some(payload(&args.message).await?)
    } else if given.iter().filter(|g| **g).count() > 1 {
        return Err(one_type());
    } else {
        None
    };
    let (client, _incoming) = conn.open().await?;
    let publisher = Publisher {
        client: &client,
        topic,
        qos: args.qos,
        retain: args.retain,
        props: &props.publish,
        conn: &conn,
    };
    let outcome = match single {
        Some(payload) => publisher.repeat(payload, args.repeat.max(1), delay).await,
        None => publisher.lines().await,
    };
    let _ = client
        .disconnect_with(ReasonCode::NORMAL_DISCONNECTION, conn.disconnect.clone())
        .await;
    outcome
}

/// A topic to publish to, refused with Mosquitto's words.
pub(crate) fn publish_topic(topic: &str) -> Result<TopicName, Failure> {
    TopicName::try_from(topic).map_err(|_| {
        Failure::usage(format!(
            "Error: Invalid publish topic '{topic}', does it contain '+' or '#'?"
        ))
    })
}

fn one_type() -> Failure {
    Failure::usage("Error: Only one type of message can be sent at once.")
}

/// The payload of `-m`, `-f`, `-n` or `-s` (exactly one of them).
pub(crate) async fn payload(args: &MessageArgs) -> Result<Vec<u8>, Failure> {
    let given = [
        args.message.is_some(),
        args.file.is_some(),
        args.null,
        args.stdin_file,
    ];
    match given.iter().filter(|g| **g).count() {
        0 => {
            return Err(Failure::usage(
                "Error: No message given (-m, -f, -n or -s).",
            ))
        }
        1 => {}
        _ => return Err(one_type()),
    }
    if let Some(text) = &args.message {
        return Ok(text.clone().into_bytes());
    }
    if let Some(path) = &args.file {
        return read_file(path).await;
    }
    if args.stdin_file {
        let mut all = Vec::new();
        tokio::io::stdin()
            .read_to_end(&mut all)
            .await
            .map_err(|e| Failure::runtime(format!("Error: reading standard input: {e}")))?;
        return Ok(all);
    }
    Ok(Vec::new())
}

async fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    tokio::fs::read(path).await.map_err(|_| {
        let path = path.display();
        Failure::runtime(format!(
            "Error: Unable to open file \"{path}\".\nError loading input file \"{path}\"."
        ))
    })
}

/// What every message of one run shares.
struct Publisher<'a> {
    client: &'a Client,
    topic: TopicName,
    qos: QoS,
    retain: bool,
    props: &'a MessageProperties,
    conn: &'a Connection,
}

impl Publisher<'_> {
    async fn repeat(&self, payload: Vec<u8>, times: u32, delay: Duration) -> Result<(), Failure> {
        for n in 0..times {
            if n > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            self.publish(payload.clone()).await?;
        }
        Ok(())
    }

    /// `-l`: one message per line of standard input, without its newline;
    /// empty lines are empty messages.
    async fn lines(&self) -> Result<(), Failure> {
        let mut stdin = BufReader::new(tokio::io::stdin());
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = stdin
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| Failure::runtime(format!("Error: reading standard input: {e}")))?;
            if n == 0 {
                return Ok(());
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            self.publish(line.clone()).await?;
        }
    }

    async fn publish(&self, payload: Vec<u8>) -> Result<(), Failure> {
        let message = Message {
            topic: self.topic.clone(),
            payload: payload.into(),
            qos: self.qos,
            retain: self.retain,
            props: message_props(self.client, self.props),
        };
        match self.client.publish_message(message).await {
            Ok(reason) => {
                self.conn.say(format_args!(
                    "Published to {} ({reason})",
                    self.topic.as_str()
                ));
                Ok(())
            }
            Err(e) => Err(Failure::runtime(format!("Error: Publish failed: {e}"))),
        }
    }
}

/// A message's 5.0 properties from `-D PUBLISH` (or `-D WILL`-like ones).
pub(crate) fn message_props(client: &Client, given: &MessageProperties) -> MessageProps {
    MessageProps {
        payload_format_indicator: given.payload_format,
        expires_at: given
            .message_expiry_interval
            .map(|s| client.now().plus_secs(u64::from(s))),
        content_type: given.content_type.clone(),
        response_topic: given.response_topic.clone(),
        correlation_data: given.correlation_data.clone().map(Into::into),
        user_properties: given.user_properties.clone(),
    }
}
