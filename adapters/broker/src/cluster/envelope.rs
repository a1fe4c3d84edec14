//! A message as it crosses between nodes (a NATS message's payload, a
//! retained message's value in the key-value bucket): a version byte, the
//! node it came from with the node's run and the message's number in that
//! run (which the receiving side drops duplicates by, see `dedupe`), its
//! expiry as wall-clock time (each node has its own
//! monotonic clock; the nodes' wall clocks are assumed to agree within the
//! precision that matters for message expiry), and the message in the disk
//! store's encoding, which decoding checks field by field.

use mqtt_router::broker::WallTime;
use mqtt_session::{Instant, Message};

use crate::store::codec::{Corrupt, Reader, Writer};

/// The format's version: a node refuses what it cannot read.
const VERSION: u8 = 1;

/// The first byte of a batch of envelopes.
const BATCH: u8 = 0xB1;

/// Converts between a node's monotonic clock and wall-clock time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clocks {
    /// The core's clock now.
    pub(crate) now: Instant,
    /// The wall clock now.
    pub(crate) wall: WallTime,
}

impl Clocks {
    fn to_wall(self, at: Instant) -> WallTime {
        let ahead = at.as_millis().saturating_sub(self.now.as_millis());
        WallTime::from_millis(self.wall.as_millis().saturating_add(ahead))
    }

    fn to_instant(self, at: WallTime) -> Instant {
        let ahead = at.as_millis().saturating_sub(self.wall.as_millis());
        Instant::from_millis(self.now.as_millis().saturating_add(ahead))
    }
}

/// Where a message comes from: a node, its run, and the message's number
/// in that run (0 for a retained message's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin<'a> {
    pub(crate) node: &'a str,
    pub(crate) incarnation: u64,
    pub(crate) seq: u64,
}

/// A decoded message and where it came from.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) node: String,
    pub(crate) incarnation: u64,
    pub(crate) seq: u64,
    pub(crate) message: Message,
}

/// `msg` from `origin`, its expiry on `clocks`.
pub(crate) fn encode(origin: Origin<'_>, msg: &Message, clocks: Clocks) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(VERSION)
        .bytes(origin.node.as_bytes())
        .u64(origin.incarnation)
        .u64(origin.seq)
        .wall(msg.props.expires_at.map(|t| clocks.to_wall(t)))
        .message(msg);
    w.into_vec()
}

/// A message and where it came from, its expiry put on `clocks`.
pub(crate) fn decode(bytes: &[u8], clocks: Clocks) -> Result<Decoded, Corrupt> {
    let mut r = Reader::new(bytes);
    if r.u8("cluster message version")? != VERSION {
        return Err(Corrupt("cluster message version"));
    }
    let origin = String::from_utf8(r.bytes("cluster message origin")?.to_vec())
        .map_err(|_| Corrupt("cluster message origin"))?;
    let incarnation = r.u64("cluster message origin")?;
    let seq = r.u64("cluster message number")?;
    let expires = r.wall("cluster message expiry")?;
    let mut msg = r.message()?;
    msg.props.expires_at = expires.map(|t| clocks.to_instant(t));
    Ok(Decoded {
        node: origin,
        incarnation,
        seq,
        message: msg,
    })
}

/// Several envelopes as one stream message: a count, then each with its
/// length.
pub(crate) fn batch(envelopes: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(BATCH).u32(envelopes.len() as u32);
    for e in envelopes {
        w.bytes(e);
    }
    w.into_vec()
}

/// The envelopes of a batch, sharing its bytes.
pub(crate) fn unbatch(bytes: &bytes::Bytes) -> Result<Vec<bytes::Bytes>, Corrupt> {
    const W: &str = "cluster batch";
    let mut r = Reader::new(bytes);
    if r.u8(W)? != BATCH {
        return Err(Corrupt(W));
    }
    let n = r.u32(W)? as usize;
    // Each envelope takes at least its 4-byte length.
    if n > bytes.len() / 4 {
        return Err(Corrupt(W));
    }
    let mut out = Vec::with_capacity(n);
    let mut at = 5;
    for _ in 0..n {
        let e = r.bytes(W)?;
        at += 4;
        out.push(bytes.slice(at..at + e.len()));
        at += e.len();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use mqtt_codec::{QoS, TopicName};

    use super::*;

    fn clocks(now: u64, wall: u64) -> Clocks {
        Clocks {
            now: Instant::from_millis(now),
            wall: WallTime::from_millis(wall),
        }
    }

    #[test]
    fn a_message_crosses_whole_with_its_expiry_on_the_other_clock() {
        let mut m = Message::new(
            TopicName::try_from("a/b").unwrap(),
            "p",
            QoS::ExactlyOnce,
            true,
        );
        m.props.expires_at = Some(Instant::from_millis(1_500));
        m.props
            .user_properties
            .push(("k".try_into().unwrap(), "v".try_into().unwrap()));
        let origin = Origin {
            node: "node-1",
            incarnation: 9,
            seq: 42,
        };
        let bytes = encode(origin, &m, clocks(1_000, 50_000));
        let d = decode(&bytes, clocks(7, 50_100)).unwrap();
        assert_eq!((d.node.as_str(), d.incarnation, d.seq), ("node-1", 9, 42));
        let back = d.message;
        assert_eq!(back.props.expires_at, Some(Instant::from_millis(407)));
        let mut expected = m.clone();
        expected.props.expires_at = back.props.expires_at;
        assert_eq!(back, expected);
    }

    #[test]
    fn a_batch_gives_back_its_envelopes_and_refuses_damage() {
        let envelopes = vec![vec![1, 2, 3], Vec::new(), vec![9; 300]];
        let b = bytes::Bytes::from(batch(&envelopes));
        let back: Vec<Vec<u8>> = unbatch(&b).unwrap().iter().map(|e| e.to_vec()).collect();
        assert_eq!(back, envelopes);
        for cut in 0..b.len() {
            assert!(unbatch(&b.slice(..cut)).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn damaged_or_foreign_bytes_are_refused_not_panicked_on() {
        let m = Message::new(
            TopicName::try_from("t").unwrap(),
            "x",
            QoS::AtMostOnce,
            false,
        );
        let origin = Origin {
            node: "n",
            incarnation: 0,
            seq: 0,
        };
        let bytes = encode(origin, &m, clocks(0, 0));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], clocks(0, 0)).is_err(), "cut at {cut}");
        }
        let mut other = bytes.clone();
        other[0] = 2;
        assert!(decode(&other, clocks(0, 0)).is_err());
    }
}
