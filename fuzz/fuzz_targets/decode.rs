//! Raw bytes into the decoder, for each protocol version.
//!
//! The first byte picks the decoder: a server waiting for CONNECT, or a
//! connection already on 3.1, 3.1.1 or 5.0. Whatever decodes must re-encode, and
//! decoding that again must give the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_codec::{Decoder, ProtocolVersion};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let mut decoder = match pick % 4 {
        0 => Decoder::new(),
        1 => Decoder::with_version(ProtocolVersion::V31),
        2 => Decoder::with_version(ProtocolVersion::V311),
        _ => Decoder::with_version(ProtocolVersion::V5),
    }
    .with_max_packet_size(u32::from(pick) * 64 + 2);
    // Each decoded packet consumes at least two bytes, so this loop ends.
    while let Ok(Some((packet, used))) = decoder.decode_slice(rest) {
        let version = decoder
            .version()
            .expect("a decoded packet fixes the version");
        let mut wire = Vec::new();
        packet
            .encode(version, &mut wire)
            .expect("a decoded packet re-encodes");
        let mut again = Decoder::with_version(version);
        let (back, n) = again
            .decode_slice(&wire)
            .expect("re-encoded packet decodes")
            .expect("re-encoded packet is whole");
        assert_eq!(n, wire.len());
        assert_eq!(back, packet);
        rest = &rest[used..];
    }
});
