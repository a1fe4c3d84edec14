//! Subscribes to a filter and prints what arrives with the `no_std` client,
//! on the host, reconnecting by hand with a new TCP stream and the old
//! session when the connection is lost (the embedded way: the caller owns
//! the transport).
//!
//! ```sh
//! cargo run -p mqtt-engine-embedded --example embedded-subscribe -- 127.0.0.1:1883 'demo/#'
//! ```

use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use mqtt_embedded::{Backoff, Client, ClientConfig, Clock, Instant, ProtocolVersion, QoS, Str};
use tokio::net::TcpStream;

/// Milliseconds since the clock was made, on tokio's timer.
#[derive(Clone, Copy)]
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
    let filter = args.next().unwrap_or_else(|| "demo/#".into());

    let mut config = ClientConfig::new(
        ProtocolVersion::V5,
        Str::from_static("mqtt-embedded-subscribe"),
    );
    config.session_expiry_interval = 300;
    config.keep_alive = 30;
    let clock = TokioClock(tokio::time::Instant::now());
    let mut client = Client::new(
        FromTokio::new(TcpStream::connect(&addr).await?),
        clock,
        config,
    );
    client.connect().await?;
    let granted = client.subscribe(&filter, QoS::ExactlyOnce).await?;
    println!("subscribed to {filter} (granted {granted:?}); Ctrl-C to stop");

    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        match client.next_message().await {
            Ok(message) => println!(
                "{} {}",
                message.topic,
                String::from_utf8_lossy(&message.payload)
            ),
            Err(e) => {
                eprintln!("connection lost: {e}");
                // Reconnect with a new transport and the old session; the
                // server resumes it, so the subscription stays.
                let parts = client.into_parts();
                let (clock, mut session, config) = (parts.clock, parts.session, parts.config);
                client = loop {
                    let delay = backoff.next_delay(std::process::id());
                    tokio::time::sleep(delay).await;
                    let Ok(stream) = TcpStream::connect(&addr).await else {
                        continue;
                    };
                    let mut next =
                        Client::resume(FromTokio::new(stream), clock, config.clone(), session);
                    match next.connect().await {
                        Ok(c) => {
                            eprintln!("reconnected (session present: {})", c.session_present);
                            break next;
                        }
                        Err(e) => {
                            eprintln!("reconnection failed: {e}");
                            session = next.into_parts().session;
                        }
                    }
                };
                backoff.reset();
            }
        }
    }
}
