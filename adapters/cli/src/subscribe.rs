//! `mqtt sub`: subscribe and print each message as `mosquitto_sub` does
//! (`-v`, `-F`, `-N`), stopping after `-C` messages, at `-W` seconds, after
//! the SUBACK with `-E`, or on the first fresh message with
//! `--retained-only`.

use std::io::Write;
use std::time::Duration;

use mqtt_tokio::mqtt_client::mqtt_session::mqtt_codec::TopicFilter;
use mqtt_tokio::{
    Backoff, Client, Event, Incoming, OptionSetters, ProtocolVersion, ReasonCode, Requests,
    SubscriptionOptions,
};

use crate::args::{OutputArgs, SubArgs};
use crate::connect::{Connection, Tool};
use crate::failure::Failure;
use crate::format::{Printer, Received};
use crate::props::Properties;

/// Runs `mqtt sub`.
pub(crate) async fn run(args: SubArgs) -> Result<(), Failure> {
    let props = Properties::parse(
        &args.conn.properties,
        &["CONNECT", "SUBSCRIBE", "UNSUBSCRIBE", "WILL", "DISCONNECT"],
    )?;
    let tool = Tool {
        name: "sub",
        default_version: ProtocolVersion::V311,
    };
    let mut conn = Connection::from_args(&args.conn, &props, tool)?;
    // Like mosquitto_sub, keep going across a lost connection.
    conn.options = conn.options.clone().reconnect(Backoff::default());
    let mut topics = args.topics.clone();
    topics.extend(conn.url_topic.clone());
    if topics.is_empty() {
        return Err(Failure::usage(
            "Error: You must specify a topic to subscribe to.",
        ));
    }
    let plan = Plan::new(&args, topics, conn.version)?;
    let limit = time_limit(&args.output)?;
    let (client, mut incoming) = conn.open().await?;
    let run = async {
        plan.subscribe(&client, &conn).await?;
        if args.exit_after_subscribe {
            return Ok(());
        }
        plan.receive(&client, &mut incoming, &conn).await
    };
    let outcome = match limit {
        Some(limit) => tokio::time::timeout(limit, run)
            .await
            .unwrap_or_else(|_| Err(Failure::timed_out())),
        None => run.await,
    };
    let _ = client
        .disconnect_with(ReasonCode::NORMAL_DISCONNECTION, conn.disconnect.clone())
        .await;
    outcome
}

/// What to subscribe to, what to print and when to stop.
struct Plan {
    topics: Vec<String>,
    options: SubscriptionOptions,
    unsubscribe: Vec<String>,
    filter_out: Vec<TopicFilter>,
    printer: Printer,
    count: Option<u32>,
    no_retained: bool,
    retained_only: bool,
    remove_retained: bool,
}

impl Plan {
    fn new(args: &SubArgs, topics: Vec<String>, version: ProtocolVersion) -> Result<Plan, Failure> {
        for topic in &topics {
            check_filter(topic, "subscription")?;
        }
        for topic in &args.unsubscribe {
            check_filter(topic, "unsubscribe")?;
        }
        let filter_out = args
            .filter_out
            .iter()
            .map(|t| check_filter(t, "filter"))
            .collect::<Result<_, _>>()?;
        if args.retain_as_published && version != ProtocolVersion::V5 {
            return Err(Failure::usage(
                "Error: --retain-as-published is only valid for MQTT v5 clients.",
            ));
        }
        let mut options = SubscriptionOptions::new(args.qos);
        options.retain_as_published = args.retain_as_published;
        Ok(Plan {
            topics,
            options,
            unsubscribe: args.unsubscribe.clone(),
            filter_out,
            printer: Printer::new(&args.output)?,
            count: match args.count {
                Some(0) => return Err(Failure::usage("Error: Invalid message count \"0\".")),
                count => count,
            },
            no_retained: args.output.no_retained,
            retained_only: args.retained_only,
            remove_retained: args.remove_retained,
        })
    }

    /// SUBSCRIBE (every filter in one packet), then `-U`'s UNSUBSCRIBE.
    async fn subscribe(&self, client: &Client, conn: &Connection) -> Result<(), Failure> {
        let filters: Vec<(&str, SubscriptionOptions)> = self
            .topics
            .iter()
            .map(|t| (t.as_str(), self.options))
            .collect();
        let results = client
            .subscribe_with(&filters, None)
            .await
            .map_err(|e| Failure::runtime(format!("Error: Subscribing failed: {e}")))?;
        for (topic, result) in self.topics.iter().zip(&results) {
            match result {
                Ok(qos) => conn.say(format_args!("Subscribed to {topic} (QoS {})", *qos as u8)),
                Err(reason) => conn.say(format_args!("Subscription to {topic} refused: {reason}")),
            }
        }
        if results.iter().all(Result::is_err) {
            return Err(Failure::runtime("All subscription requests were denied."));
        }
        if !self.unsubscribe.is_empty() {
            let filters: Vec<&str> = self.unsubscribe.iter().map(String::as_str).collect();
            client
                .unsubscribe(&filters)
                .await
                .map_err(|e| Failure::runtime(format!("Error: Unsubscribing failed: {e}")))?;
        }
        Ok(())
    }

    /// Prints messages until the plan says stop or the client ends.
    async fn receive(
        &self,
        client: &Client,
        incoming: &mut Incoming,
        conn: &Connection,
    ) -> Result<(), Failure> {
        let mut printed = 0u32;
        let mut cleared = Vec::new();
        // The first connection is reported too; only later ones may need
        // the subscriptions made again.
        let mut connections = 0u32;
        while let Some(event) = incoming.recv().await {
            let received = match event {
                Event::Message {
                    message,
                    subscription_identifiers,
                    packet_id,
                    ..
                } => Received::new(client, message, subscription_identifiers, packet_id),
                Event::Connected {
                    session_present, ..
                } => {
                    conn.report(&event);
                    connections += 1;
                    if connections > 1 && !session_present {
                        self.subscribe(client, conn).await?;
                    }
                    continue;
                }
                other => {
                    conn.report(&other);
                    continue;
                }
            };
            match self.handle(client, &received, &mut cleared).await? {
                Handled::Skipped => {}
                Handled::Printed => {
                    printed += 1;
                    if self.count.is_some_and(|c| printed >= c) {
                        return Ok(());
                    }
                }
                Handled::Done => return Ok(()),
            }
        }
        Err(Failure::runtime(
            "Error: The connection to the broker was lost.",
        ))
    }

    /// Prints one message, or says why not; `cleared` are the topics whose
    /// retained message `--remove-retained` cleared and whose clearing has
    /// not come back yet.
    async fn handle(
        &self,
        client: &Client,
        received: &Received,
        cleared: &mut Vec<String>,
    ) -> Result<Handled, Failure> {
        let message = &received.message;
        if self.filter_out.iter().any(|f| f.matches(&message.topic)) {
            return Ok(Handled::Skipped);
        }
        let topic = message.topic.as_str();
        if message.payload.is_empty() && !message.retain {
            if let Some(at) = cleared.iter().position(|t| t == topic) {
                // Our own clearing, back through the subscription.
                cleared.swap_remove(at);
                return Ok(Handled::Skipped);
            }
        }
        if self.remove_retained && message.retain && !message.payload.is_empty() {
            let _ = client
                .publish(topic, Vec::new(), self.options.qos, true)
                .await;
            cleared.push(topic.to_owned());
        }
        if self.retained_only && !message.retain {
            return Ok(Handled::Done);
        }
        if self.no_retained && message.retain {
            return Ok(Handled::Skipped);
        }
        print(&self.printer.render(received, chrono::Local::now()))?;
        Ok(Handled::Printed)
    }
}

/// What became of one message.
enum Handled {
    Skipped,
    Printed,
    Done,
}

/// A topic filter given on the command line, refused with Mosquitto's words.
fn check_filter(topic: &str, what: &str) -> Result<TopicFilter, Failure> {
    TopicFilter::try_from(topic).map_err(|_| {
        Failure::usage(format!(
            "Error: Invalid {what} topic '{topic}', are all '+' and '#' wildcards correct?"
        ))
    })
}

/// Writes and flushes, as Mosquitto does after each message. A closed
/// standard output (`| head -1`) ends the run quietly.
pub(crate) fn print(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|_| Failure::silent())
}

/// `-W`: how long the tool may run once connected; 0 is refused, as in
/// Mosquitto.
pub(crate) fn time_limit(args: &OutputArgs) -> Result<Option<Duration>, Failure> {
    match args.timeout {
        Some(0) => Err(Failure::usage("Error: Invalid timeout \"0\".")),
        seconds => Ok(seconds.map(|s| Duration::from_secs(s.into()))),
    }
}
