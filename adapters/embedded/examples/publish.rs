//! Publishes one message with the `no_std` client, on the host: a tokio TCP
//! stream is the `embedded-io-async` transport (through
//! `embedded-io-adapters`), tokio's timer the clock. On a device the same
//! calls take an embassy-net `TcpSocket` and an `embassy-time` clock.
//!
//! ```sh
//! cargo run -p mqtt-engine-embedded --example embedded-publish -- 127.0.0.1:1883 demo/1 hello
//! ```

use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use mqtt_embedded::{Client, ClientConfig, Clock, Instant, ProtocolVersion, QoS, Str};

/// Milliseconds since the clock was made, on tokio's timer.
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }

    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(self.0 + Duration::from_millis(deadline.as_millis())).await
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:1883".into());
    let topic = args.next().unwrap_or_else(|| "demo/1".into());
    let payload = args.next().unwrap_or_else(|| "hello".into());

    let stream = tokio::net::TcpStream::connect(&addr).await?;
    let config = ClientConfig::new(
        ProtocolVersion::V5,
        Str::from_static("mqtt-embedded-publish"),
    );
    let mut client = Client::new(
        FromTokio::new(stream),
        TokioClock(tokio::time::Instant::now()),
        config,
    );
    client.connect().await?;
    let reason = client
        .publish(&topic, payload, QoS::AtLeastOnce, false)
        .await?;
    println!("published to {topic}: {reason}");
    client.disconnect().await?;
    Ok(())
}
