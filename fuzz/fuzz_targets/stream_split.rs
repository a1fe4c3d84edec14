//! One byte stream cut at arbitrary points: the packets decoded from the pieces
//! are exactly those decoded from the whole, and so is the error, if any.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt_codec::{Decoder, Packet, ProtocolVersion};

fn decode_all(chunks: &[&[u8]], version: ProtocolVersion) -> (Vec<Packet>, bool) {
    let mut d = Decoder::with_version(version).with_max_packet_size(4096);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match d.decode(&mut buf) {
                Ok(Some(p)) => out.push(p),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|input: (u8, Vec<u16>, &[u8])| {
    let (v, cuts, stream) = input;
    let version = [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ][usize::from(v % 3)];
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut at = 0;
    for c in cuts {
        chunks.push(&stream[at..c]);
        at = c;
    }
    chunks.push(&stream[at..]);
    assert_eq!(decode_all(&chunks, version), decode_all(&[stream], version));
});
