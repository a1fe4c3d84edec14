//! Publishes one message and waits for the broker's acknowledgement, on
//! async-std (the same code runs under `smol::block_on`).
//!
//! ```sh
//! cargo run -p mqtt-engine-async-std --example async-std-publish -- mqtt://127.0.0.1:1883 demo/1 hello
//! ```

use mqtt_async_std::{Client, ConnectOptions, QoS, Requests};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    async_std::task::block_on(async {
        let mut args = std::env::args().skip(1);
        let url = args
            .next()
            .unwrap_or_else(|| "mqtt://127.0.0.1:1883".into());
        let topic = args.next().unwrap_or_else(|| "demo/1".into());
        let payload = args.next().unwrap_or_else(|| "hello".into());

        let (client, _incoming) = Client::connect(ConnectOptions::new(&url)?).await?;
        let reason = client
            .publish(&topic, payload, QoS::AtLeastOnce, false)
            .await?;
        println!("published to {topic}: {reason}");
        client.disconnect().await?;
        Ok(())
    })
}
