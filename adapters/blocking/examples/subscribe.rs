//! Subscribes to a filter and prints what arrives, reconnecting (and
//! resuming the session) if the connection is lost. Stops after `count`
//! messages when a count is given.
//!
//! ```sh
//! cargo run -p mqtt-engine-blocking --example blocking-subscribe -- mqtt://127.0.0.1:1883 'demo/#' 10
//! ```

use std::time::Duration;

use mqtt_blocking::{Backoff, BlockingRequests, Client, ConnectOptions, Event, OptionSetters, QoS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "mqtt://127.0.0.1:1883".into());
    let filter = args.next().unwrap_or_else(|| "demo/#".into());
    let count: Option<usize> = args.next().map(|c| c.parse()).transpose()?;

    let options = ConnectOptions::new(&url)?
        .client_id("mqtt-blocking-subscribe-example")
        .clean_start(false)
        .session_expiry(300)
        .keep_alive(30)
        .reconnect(Backoff::new(
            Duration::from_millis(200),
            Duration::from_secs(10),
        ));
    let (client, incoming) = Client::connect(options)?;
    let granted = client.subscribe(&filter, QoS::ExactlyOnce)?;
    println!("subscribed to {filter} (granted {granted:?})");

    let mut received = 0;
    for event in incoming {
        match event {
            Event::Message { message, .. } => {
                println!(
                    "{} {}",
                    message.topic,
                    String::from_utf8_lossy(&message.payload)
                );
                received += 1;
                if count.is_some_and(|c| received >= c) {
                    break;
                }
            }
            Event::Disconnected { close, .. } => eprintln!("connection lost: {}", close.reason),
            Event::Connected {
                session_present, ..
            } => eprintln!("connected (session present: {session_present})"),
            _ => {}
        }
    }
    client.disconnect()?;
    Ok(())
}
