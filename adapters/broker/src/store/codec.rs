//! The disk store's value encoding: messages, wills, subscription options
//! and delivery options as length-prefixed little-endian fields. Decoding
//! checks everything (UTF-8, topic rules, ranges) and fails with
//! [`Corrupt`], never panics: the file may be damaged.

use bytes::Bytes;
use mqtt_codec::{
    PayloadFormat, QoS, RetainHandling, Str, SubscriptionId, SubscriptionOptions, TopicName,
};
use mqtt_router::broker::{StoredWill, WallTime};
use mqtt_session::{DeliveryOptions, Message, MessageProps};

/// A stored value that cannot be decoded: what was being read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed stored {0}")]
pub(crate) struct Corrupt(pub(crate) &'static str);

/// Builds one value.
#[derive(Default)]
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.0
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // A message is at most 256 MiB on the wire, so its length fits.
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
        self
    }

    fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            Some(b) => self.u8(1).bytes(b),
            None => self.u8(0),
        }
    }

    pub(crate) fn wall(&mut self, v: Option<WallTime>) -> &mut Self {
        match v {
            Some(t) => self.u8(1).u64(t.as_millis()),
            None => self.u8(0),
        }
    }

    /// A message without its expiry (stored beside it as wall-clock time).
    pub(crate) fn message(&mut self, m: &Message) -> &mut Self {
        self.bytes(m.topic.as_str().as_bytes())
            .bytes(&m.payload)
            .u8(m.qos as u8)
            .u8(u8::from(m.retain));
        let p = &m.props;
        self.u8(match p.payload_format_indicator {
            None => 0,
            Some(PayloadFormat::Unspecified) => 1,
            Some(PayloadFormat::Utf8) => 2,
        });
        self.opt_bytes(p.content_type.as_ref().map(|s| s.as_str().as_bytes()))
            .opt_bytes(p.response_topic.as_ref().map(|t| t.as_str().as_bytes()))
            .opt_bytes(p.correlation_data.as_deref())
            .u32(p.user_properties.len() as u32);
        for (k, v) in &p.user_properties {
            self.bytes(k.as_str().as_bytes())
                .bytes(v.as_str().as_bytes());
        }
        self
    }

    pub(crate) fn will(&mut self, w: &StoredWill) -> &mut Self {
        self.message(&w.message)
            .wall(w.expires_at)
            .u64(w.due.as_millis())
    }

    pub(crate) fn delivery(&mut self, o: &DeliveryOptions) -> &mut Self {
        self.u8(o.qos as u8)
            .u8(u8::from(o.retain))
            .u32(o.subscription_identifiers.len() as u32);
        for id in &o.subscription_identifiers {
            self.u32(id.get());
        }
        self
    }

    pub(crate) fn subscription(
        &mut self,
        o: &SubscriptionOptions,
        id: Option<SubscriptionId>,
    ) -> &mut Self {
        self.u8(o.qos as u8)
            .u8(u8::from(o.no_local))
            .u8(u8::from(o.retain_as_published))
            .u8(o.retain_handling as u8)
            .u32(id.map_or(0, |i| i.get()))
    }
}

/// Reads one value.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Reader(b)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Corrupt> {
        if self.0.len() < n {
            return Err(Corrupt(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Corrupt> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Corrupt> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, Corrupt> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn flag(&mut self, what: &'static str) -> Result<bool, Corrupt> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Corrupt(what)),
        }
    }

    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], Corrupt> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }

    fn string(&mut self, what: &'static str) -> Result<Str, Corrupt> {
        let b = self.bytes(what)?;
        let s = std::str::from_utf8(b).map_err(|_| Corrupt(what))?;
        Str::try_from(s).map_err(|_| Corrupt(what))
    }

    fn opt<T>(
        &mut self,
        what: &'static str,
        f: impl FnOnce(&mut Self) -> Result<T, Corrupt>,
    ) -> Result<Option<T>, Corrupt> {
        if self.flag(what)? {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn wall(&mut self, what: &'static str) -> Result<Option<WallTime>, Corrupt> {
        self.opt(what, |r| r.u64(what).map(WallTime::from_millis))
    }

    fn qos(&mut self, what: &'static str) -> Result<QoS, Corrupt> {
        match self.u8(what)? {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            _ => Err(Corrupt(what)),
        }
    }

    pub(crate) fn message(&mut self) -> Result<Message, Corrupt> {
        const W: &str = "message";
        let topic = TopicName::from_mqtt_str(self.string(W)?).map_err(|_| Corrupt(W))?;
        let payload = Bytes::copy_from_slice(self.bytes(W)?);
        let qos = self.qos(W)?;
        let retain = self.flag(W)?;
        let payload_format_indicator = match self.u8(W)? {
            0 => None,
            1 => Some(PayloadFormat::Unspecified),
            2 => Some(PayloadFormat::Utf8),
            _ => return Err(Corrupt(W)),
        };
        let content_type = self.opt(W, |r| r.string(W))?;
        let response_topic = self.opt(W, |r| {
            TopicName::from_mqtt_str(r.string(W)?).map_err(|_| Corrupt(W))
        })?;
        let correlation_data = self.opt(W, |r| Ok(Bytes::copy_from_slice(r.bytes(W)?)))?;
        let n = self.u32(W)? as usize;
        // Each pair takes at least 8 bytes: a count beyond that is damage.
        if n > self.0.len() / 8 {
            return Err(Corrupt(W));
        }
        let mut user_properties = Vec::with_capacity(n);
        for _ in 0..n {
            user_properties.push((self.string(W)?, self.string(W)?));
        }
        Ok(Message {
            topic,
            payload,
            qos,
            retain,
            props: MessageProps {
                payload_format_indicator,
                expires_at: None,
                content_type,
                response_topic,
                correlation_data,
                user_properties,
            },
        })
    }

    pub(crate) fn will(&mut self) -> Result<StoredWill, Corrupt> {
        Ok(StoredWill {
            message: self.message()?,
            expires_at: self.wall("will")?,
            due: WallTime::from_millis(self.u64("will")?),
        })
    }

    pub(crate) fn delivery(&mut self) -> Result<DeliveryOptions, Corrupt> {
        const W: &str = "delivery options";
        let qos = self.qos(W)?;
        let retain = self.flag(W)?;
        let n = self.u32(W)? as usize;
        if n > self.0.len() / 4 {
            return Err(Corrupt(W));
        }
        let mut subscription_identifiers = Vec::with_capacity(n);
        for _ in 0..n {
            subscription_identifiers.push(SubscriptionId::new(self.u32(W)?).ok_or(Corrupt(W))?);
        }
        Ok(DeliveryOptions {
            qos,
            retain,
            subscription_identifiers,
        })
    }

    pub(crate) fn subscription(
        &mut self,
    ) -> Result<(SubscriptionOptions, Option<SubscriptionId>), Corrupt> {
        const W: &str = "subscription";
        let mut o = SubscriptionOptions::new(self.qos(W)?);
        o.no_local = self.flag(W)?;
        o.retain_as_published = self.flag(W)?;
        o.retain_handling = match self.u8(W)? {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtSubscribeIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(Corrupt(W)),
        };
        let id = match self.u32(W)? {
            0 => None,
            n => Some(SubscriptionId::new(n).ok_or(Corrupt(W))?),
        };
        Ok((o, id))
    }

    /// Nothing may follow a value.
    pub(crate) fn end(&self, what: &'static str) -> Result<(), Corrupt> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Corrupt(what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_message() -> Message {
        let mut m = Message::new(
            TopicName::from_static("a/b"),
            "payload",
            QoS::ExactlyOnce,
            true,
        );
        m.props.payload_format_indicator = Some(PayloadFormat::Utf8);
        m.props.content_type = Some(Str::from_static("text/plain"));
        m.props.response_topic = Some(TopicName::from_static("reply/here"));
        m.props.correlation_data = Some(Bytes::from_static(b"\x00\x01"));
        m.props.user_properties = vec![(Str::from_static("k"), Str::from_static("v"))];
        m
    }

    #[test]
    fn a_message_reads_back_as_written() {
        let m = full_message();
        let mut w = Writer::default();
        w.message(&m);
        let v = w.into_vec();
        let mut r = Reader::new(&v);
        assert_eq!(r.message().unwrap(), m);
        r.end("message").unwrap();
    }

    #[test]
    fn every_truncation_of_a_value_is_corrupt_not_a_panic() {
        let mut w = Writer::default();
        w.message(&full_message());
        w.delivery(&DeliveryOptions::new(QoS::AtLeastOnce));
        let v = w.into_vec();
        for n in 0..v.len() {
            let mut r = Reader::new(&v[..n]);
            let ok = r.message().and_then(|_| r.delivery()).is_ok();
            assert!(!ok, "a value cut at {n} bytes decoded");
        }
    }

    #[test]
    fn damaged_fields_are_refused() {
        let mut w = Writer::default();
        w.bytes(b"a/+").bytes(b"").u8(0).u8(0);
        let v = w.into_vec();
        assert_eq!(Reader::new(&v).message(), Err(Corrupt("message")));
        let v = [7u8, 0, 0, 0, 0, 0];
        assert!(Reader::new(&v).delivery().is_err());
    }
}
