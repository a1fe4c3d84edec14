//! Subscribes to a filter and prints what arrives, on smol, reconnecting
//! (and resuming the session) if the connection is lost. The connection task
//! runs on smol's executor.
//!
//! ```sh
//! cargo run -p mqtt-engine-async-std --example async-std-subscribe -- mqtt://127.0.0.1:1883 'demo/#'
//! ```

use std::sync::Arc;
use std::time::Duration;

use mqtt_async_std::{Backoff, Client, ConnectOptions, Event, OptionSetters, QoS, Requests};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(async {
        let mut args = std::env::args().skip(1);
        let url = args
            .next()
            .unwrap_or_else(|| "mqtt://127.0.0.1:1883".into());
        let filter = args.next().unwrap_or_else(|| "demo/#".into());

        let options = ConnectOptions::new(&url)?
            .client_id("mqtt-async-std-subscribe-example")
            .clean_start(false)
            .session_expiry(300)
            .keep_alive(30)
            .reconnect(Backoff::new(
                Duration::from_millis(200),
                Duration::from_secs(10),
            ))
            .spawner(Arc::new(|task| smol::spawn(task).detach()));
        let (client, mut incoming) = Client::connect(options).await?;
        let granted = client.subscribe(&filter, QoS::ExactlyOnce).await?;
        println!("subscribed to {filter} (granted {granted:?}); Ctrl-C to stop");

        while let Some(event) = incoming.recv().await {
            match event {
                Event::Message { message, .. } => println!(
                    "{} {}",
                    message.topic,
                    String::from_utf8_lossy(&message.payload)
                ),
                Event::Disconnected { close, .. } => {
                    eprintln!("connection lost: {}", close.reason)
                }
                Event::Connected {
                    session_present, ..
                } => eprintln!("connected (session present: {session_present})"),
                _ => {}
            }
        }
        Ok(())
    })
}
