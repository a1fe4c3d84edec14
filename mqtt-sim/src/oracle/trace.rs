//! One-line summaries of packets and events, for tracing a run.

use mqtt_session::mqtt_codec::{Packet, QosPid};
use mqtt_session::ClientEvent;

fn qos(q: QosPid) -> String {
    match q {
        QosPid::AtMostOnce => "q0".to_owned(),
        QosPid::AtLeastOnce(id) => format!("q1 #{id}"),
        QosPid::ExactlyOnce(id) => format!("q2 #{id}"),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A packet in a line.
pub(super) fn packet(p: &Packet) -> String {
    match p {
        Packet::Connect(c) => format!(
            "CONNECT {} clean {} expiry {:?} keep alive {} will {:?}",
            c.client_id.as_str(),
            c.clean_start,
            c.props.session_expiry_interval,
            c.keep_alive,
            c.will.as_ref().map(|w| (
                w.topic.as_str().to_owned(),
                text(&w.payload),
                w.qos,
                w.retain,
                w.props.will_delay_interval
            ))
        ),
        Packet::Publish(x) => format!(
            "PUBLISH {} {:?} alias {:?} {}{} payload {}",
            qos(x.qos),
            x.topic.as_ref().map(|t| t.as_str()),
            x.props.topic_alias,
            if x.retain { "retain " } else { "" },
            if x.dup { "dup" } else { "" },
            text(&x.payload)
        ),
        Packet::Subscribe(s) => format!(
            "SUBSCRIBE #{} {:?} id {:?}",
            s.id,
            s.filters
                .iter()
                .map(|(f, o)| format!(
                    "{} {:?} nl {} rap {} rh {:?}",
                    f.as_str(),
                    o.qos,
                    o.no_local,
                    o.retain_as_published,
                    o.retain_handling
                ))
                .collect::<Vec<_>>(),
            s.props.subscription_identifier
        ),
        Packet::Unsubscribe(u) => format!(
            "UNSUBSCRIBE #{} {:?}",
            u.id,
            u.filters.iter().map(|f| f.as_str()).collect::<Vec<_>>()
        ),
        Packet::Disconnect(d) => format!("DISCONNECT {:?}", d.reason),
        Packet::PubAck(a) => format!("PUBACK #{}", a.id),
        Packet::PubRec(a) => format!("PUBREC #{}", a.id),
        Packet::PubRel(a) => format!("PUBREL #{}", a.id),
        Packet::PubComp(a) => format!("PUBCOMP #{}", a.id),
        Packet::PingReq => "PINGREQ".to_owned(),
        Packet::PingResp => "PINGRESP".to_owned(),
        Packet::ConnAck(_) => "CONNACK".to_owned(),
        Packet::SubAck(_) => "SUBACK".to_owned(),
        Packet::UnsubAck(_) => "UNSUBACK".to_owned(),
        Packet::Auth(_) => "AUTH".to_owned(),
    }
}

/// A client event in a line.
pub(super) fn event(e: &ClientEvent) -> String {
    match e {
        ClientEvent::Connected {
            session_present, ..
        } => {
            format!("connected, session present {session_present}")
        }
        ClientEvent::Message {
            msg,
            subscription_identifiers,
            ..
        } => format!(
            "message {} on {} {:?} retain {} ids {:?}",
            text(&msg.payload),
            msg.topic.as_str(),
            msg.qos,
            msg.retain,
            subscription_identifiers
        ),
        ClientEvent::Published { id, reason, .. } => format!("published #{id} {reason:?}"),
        ClientEvent::Expired { id } => format!("expired #{id}"),
        ClientEvent::Subscribed { id, results, .. } => format!("subscribed #{id} {results:?}"),
        ClientEvent::Unsubscribed { id, results, .. } => {
            format!("unsubscribed #{id} {results:?}")
        }
        ClientEvent::Auth { reason, .. } => format!("auth {reason:?}"),
        ClientEvent::Closed(c) => {
            format!("closed {:?} {:?} {:?}", c.initiator, c.reason, c.violation)
        }
    }
}
