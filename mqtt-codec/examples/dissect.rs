//! Decodes MQTT packets from hex and prints them, like a small protocol dissector.
//!
//! ```text
//! cargo run -p mqtt-engine-codec --example dissect -- [--v31|--v311|--v5] HEX...
//! ```
//! Without a version flag the stream is read as a server reads it: CONNECT
//! first, whose protocol level fixes the version. Without hex arguments a
//! short built-in capture is dissected.

use bytes::BytesMut;
use mqtt_codec::{Decoder, ProtocolVersion};

/// A client's first three packets: CONNECT (3.1.1, client id "demo"),
/// SUBSCRIBE to "a/#" at QoS 1, and a QoS 0 PUBLISH of "hi" to "a/b".
const DEMO: &str = "101000044d5154540402003c000464656d6f 82080001000361 2f2301 3007000361 2f626869";

fn main() {
    let mut decoder = Decoder::new();
    let mut hex = String::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--v31" => decoder = Decoder::with_version(ProtocolVersion::V31),
            "--v311" => decoder = Decoder::with_version(ProtocolVersion::V311),
            "--v5" => decoder = Decoder::with_version(ProtocolVersion::V5),
            h => hex.push_str(h),
        }
    }
    if hex.is_empty() {
        hex = DEMO.to_string();
    }
    let digits: Vec<u8> = hex.bytes().filter(u8::is_ascii_hexdigit).collect();
    let mut buf = BytesMut::new();
    for pair in digits.chunks(2) {
        let text = std::str::from_utf8(pair).unwrap_or("0");
        buf.extend_from_slice(&[u8::from_str_radix(text, 16).unwrap_or(0)]);
    }
    loop {
        let before = buf.len();
        match decoder.decode(&mut buf) {
            Ok(Some(packet)) => println!("{} bytes: {packet:#?}", before - buf.len()),
            Ok(None) if buf.is_empty() => break,
            Ok(None) => {
                println!("{} bytes left: an incomplete packet", buf.len());
                break;
            }
            Err(e) => {
                println!("error: {e} (reason code {})", e.reason_code());
                std::process::exit(1);
            }
        }
    }
}
