//! Publishes one message and waits for the broker's acknowledgement.
//!
//! ```sh
//! cargo run -p mqtt-engine-blocking --example blocking-publish -- mqtt://127.0.0.1:1883 demo/1 hello
//! ```

use mqtt_blocking::{BlockingRequests, Client, ConnectOptions, QoS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "mqtt://127.0.0.1:1883".into());
    let topic = args.next().unwrap_or_else(|| "demo/1".into());
    let payload = args.next().unwrap_or_else(|| "hello".into());

    let (client, _incoming) = Client::connect(ConnectOptions::new(&url)?)?;
    let reason = client.publish(&topic, payload, QoS::AtLeastOnce, false)?;
    println!("published to {topic}: {reason}");
    client.disconnect()?;
    Ok(())
}
