//! Subscribes to a filter and prints what arrives, reconnecting (and
//! resuming the session) if the connection is lost.
//!
//! ```sh
//! cargo run -p mqtt-engine-tokio --example tokio-subscribe -- mqtt://127.0.0.1:1883 'demo/#'
//! ```

use std::time::Duration;

use mqtt_tokio::{Backoff, Client, ConnectOptions, Event, OptionSetters, QoS, Requests};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "mqtt://127.0.0.1:1883".into());
    let filter = args.next().unwrap_or_else(|| "demo/#".into());

    let options = ConnectOptions::new(&url)?
        .client_id("mqtt-tokio-subscribe-example")
        .clean_start(false)
        .session_expiry(300)
        .keep_alive(30)
        .reconnect(Backoff::new(
            Duration::from_millis(200),
            Duration::from_secs(10),
        ));
    let (client, mut incoming) = Client::connect(options).await?;
    let granted = client.subscribe(&filter, QoS::ExactlyOnce).await?;
    println!("subscribed to {filter} (granted {granted:?}); Ctrl-C to stop");

    loop {
        tokio::select! {
            event = incoming.recv() => match event {
                Some(Event::Message { message, .. }) => println!(
                    "{} {}",
                    message.topic,
                    String::from_utf8_lossy(&message.payload)
                ),
                Some(Event::Disconnected { close, .. }) => eprintln!("connection lost: {}", close.reason),
                Some(Event::Connected { session_present, .. }) => {
                    eprintln!("connected (session present: {session_present})");
                }
                Some(_) => {}
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                client.disconnect().await?;
                break;
            }
        }
    }
    Ok(())
}
