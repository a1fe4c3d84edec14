//! Property tests: encoding then decoding any valid packet gives it back, any
//! split of a stream gives the same packets, and no input makes the decoder panic.

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use mqtt_codec::arbitrary::{packet, version, VersionedPacket};
use mqtt_codec::{Decoder, Packet, ProtocolVersion};
use proptest::collection::vec;
use proptest::prelude::*;

/// The decoder a receiver of `p` would have: a server waiting for CONNECT, or a
/// connection whose version is known.
fn decoder_for(p: &Packet, v: ProtocolVersion) -> Decoder {
    match p {
        Packet::Connect(_) => Decoder::new(),
        _ => Decoder::with_version(v),
    }
}

fn encode(p: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut out = BytesMut::new();
    let n = p
        .encode(v, &mut out)
        .expect("generated packets are encodable");
    assert_eq!(n, out.len(), "encode reports what it wrote");
    assert_eq!(p.encoded_len(v), Ok(n), "encoded_len is exact");
    out
}

/// Decodes every whole packet in `buf`, leaving the partial tail.
fn drain(d: &mut Decoder, buf: &mut BytesMut) -> Vec<Packet> {
    let mut got = Vec::new();
    while let Some(p) = d.decode(buf).expect("valid stream") {
        got.push(p);
    }
    got
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn decode_of_encode_is_identity(data in vec(any::<u8>(), 0..768)) {
        let mut u = Unstructured::new(&data);
        let Ok(VersionedPacket { version: v, packet: p }) = VersionedPacket::arbitrary(&mut u) else {
            return Ok(());
        };
        let wire = encode(&p, v);

        // Owned, from a BytesMut: the whole buffer is consumed.
        let mut buf = wire.clone();
        let got = decoder_for(&p, v).decode(&mut buf).unwrap();
        prop_assert_eq!(got.as_ref(), Some(&p));
        prop_assert!(buf.is_empty());

        // Owned, from frozen Bytes.
        let mut frozen: Bytes = wire.clone().freeze();
        let got = decoder_for(&p, v).decode_bytes(&mut frozen).unwrap();
        prop_assert_eq!(got.as_ref(), Some(&p));

        // Borrowed: same packet, same length.
        let (borrowed, used) = decoder_for(&p, v).decode_slice(&wire).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        let mut again = BytesMut::new();
        borrowed.encode(v, &mut again).unwrap();
        prop_assert_eq!(&again[..], &wire[..]);

        // Every strict prefix is "need more bytes", and consumes nothing.
        for cut in 0..wire.len() {
            let mut part = BytesMut::from(&wire[..cut]);
            prop_assert!(decoder_for(&p, v).decode(&mut part).unwrap().is_none());
            prop_assert_eq!(part.len(), cut);
        }
    }

    #[test]
    fn any_split_of_a_stream_gives_the_same_packets(
        data in vec(any::<u8>(), 0..2048),
        cuts in vec(any::<usize>(), 0..24),
    ) {
        let mut u = Unstructured::new(&data);
        let Ok(v) = version(&mut u) else { return Ok(()) };
        let mut packets = Vec::new();
        while packets.len() < 12 {
            match packet(&mut u, v) {
                Ok(p) => packets.push(p),
                Err(_) => break,
            }
        }
        let mut stream = BytesMut::new();
        for p in &packets {
            stream.extend_from_slice(&encode(p, v));
        }
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();

        let mut d = Decoder::with_version(v);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        for cut in cuts {
            buf.extend_from_slice(&stream[at..cut]);
            at = cut;
            got.extend(drain(&mut d, &mut buf));
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, packets);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..512), level in 0u8..4) {
        let mut d = match level {
            0 => Decoder::new(),
            l => Decoder::with_version(ProtocolVersion::from_level(l + 2).unwrap()),
        }
        .with_max_packet_size(256);
        let mut buf = BytesMut::from(&data[..]);
        // Each successful decode consumes at least two bytes, so this ends.
        for _ in 0..=data.len() {
            match d.decode(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let mut slice = &data[..];
        let mut d2 = Decoder::with_version(ProtocolVersion::V5);
        for _ in 0..=data.len() {
            match d2.decode_slice(slice) {
                Ok(Some((_, n))) => slice = &slice[n..],
                Ok(None) | Err(_) => break,
            }
        }
    }
}

#[test]
fn a_server_decoder_adopts_the_version_of_connect() {
    let connect =
        mqtt_codec::Connect::new(ProtocolVersion::V311, mqtt_codec::Str::from_static("c1"));
    let mut wire = encode(&Packet::from(connect), ProtocolVersion::V311);
    Packet::<Bytes>::PingReq
        .encode(ProtocolVersion::V311, &mut wire)
        .unwrap();
    let mut d = Decoder::new();
    assert_eq!(d.version(), None);
    assert!(matches!(d.decode(&mut wire), Ok(Some(Packet::Connect(_)))));
    assert_eq!(d.version(), Some(ProtocolVersion::V311));
    assert_eq!(d.decode(&mut wire), Ok(Some(Packet::PingReq)));
}

/// Room for an incomplete packet grows with the bytes that came, never to
/// the size its header announces (five bytes announcing a large packet
/// must not reserve it), and a packet that arrives in pieces still decodes.
#[test]
fn an_incomplete_packet_reserves_room_in_step_with_the_bytes_received() {
    let mut p = mqtt_codec::Publish::new(
        mqtt_codec::TopicName::from_static("a/b"),
        Bytes::from(vec![7u8; 100_000]),
    );
    p.retain = true;
    let wire = encode(&Packet::Publish(p), ProtocolVersion::V311);
    let mut buf = BytesMut::with_capacity(8);
    buf.extend_from_slice(&wire[..8]);
    let mut d = Decoder::with_version(ProtocolVersion::V311);
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert!(
        buf.capacity() <= 64,
        "reserved {} bytes for 8",
        buf.capacity()
    );
    let mut at = 8;
    while at < wire.len() {
        let end = (at + 4096).min(wire.len());
        buf.extend_from_slice(&wire[at..end]);
        at = end;
        let decoded = d.decode(&mut buf).unwrap();
        assert!(buf.capacity() <= 4 * at, "{} for {at}", buf.capacity());
        assert_eq!(decoded.is_some(), at == wire.len());
    }
}
