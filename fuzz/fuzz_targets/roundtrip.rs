//! Arbitrary valid packets through encode, then decode: the packet comes back.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt_codec::arbitrary::VersionedPacket;
use mqtt_codec::{Decoder, Packet};

fuzz_target!(|vp: VersionedPacket| {
    let VersionedPacket { version, packet } = vp;
    let mut wire = BytesMut::new();
    let n = packet
        .encode(version, &mut wire)
        .expect("valid packets encode");
    assert_eq!(n, wire.len());
    assert_eq!(packet.encoded_len(version), Ok(n));
    let mut decoder = match packet {
        Packet::Connect(_) => Decoder::new(),
        _ => Decoder::with_version(version),
    };
    let back = decoder.decode(&mut wire).expect("decodes").expect("whole");
    assert!(wire.is_empty());
    assert_eq!(back, packet);
});
