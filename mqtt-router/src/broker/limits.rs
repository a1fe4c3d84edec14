//! The limits that keep one client from hurting the others (DESIGN.md,
//! "Isolation"): what a client's subscriptions, publishes, wills and
//! sessions may make the broker hold, checked before anything changes, each
//! refusal counted in [`Stats`](super::Stats).

use mqtt_codec::{ReasonCode, TopicFilter};
use mqtt_session::{Message, Session};

use super::{Broker, SessionKey};

/// Levels of a topic name or filter: one more than its separators.
pub(super) fn topic_levels(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'/').count() + 1
}

/// Bytes of a message's properties that its sender chose.
fn property_bytes(msg: &Message) -> usize {
    msg.held_bytes() - msg.topic.len() - msg.payload.len()
}

/// Why a PUBLISH or a will is refused by the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MessageRefusal {
    /// Its topic has more than `max_topic_levels` levels.
    TopicLevels,
    /// It carries more user properties or property bytes than allowed.
    Properties,
}

impl MessageRefusal {
    /// The PUBACK/PUBREC reason: 0x90 Topic Name invalid for the depth,
    /// 0x97 Quota exceeded (an administrative limit, section 3.4.2.1) for
    /// the properties.
    pub(super) fn publish_reason(self) -> ReasonCode {
        match self {
            MessageRefusal::TopicLevels => ReasonCode::TOPIC_NAME_INVALID,
            MessageRefusal::Properties => ReasonCode::QUOTA_EXCEEDED,
        }
    }

    /// How a publish refused for this is counted.
    pub(super) fn counted_as(self) -> super::stats::PublishRefusal {
        match self {
            MessageRefusal::TopicLevels => super::stats::PublishRefusal::TopicLevels,
            MessageRefusal::Properties => super::stats::PublishRefusal::Properties,
        }
    }
}

impl Broker {
    /// Whether `msg` (a client's PUBLISH or will) passes the limits on topic
    /// depth and properties; a refusal is counted.
    pub(super) fn check_message(&mut self, msg: &Message) -> Result<(), MessageRefusal> {
        let l = &self.config.limits;
        if topic_levels(msg.topic.as_str()) > l.max_topic_levels {
            self.stats.topic_levels_over_limit += 1;
            return Err(MessageRefusal::TopicLevels);
        }
        if msg.props.user_properties.len() > l.max_user_properties
            || property_bytes(msg) > l.max_property_bytes
        {
            self.stats.properties_over_limit += 1;
            return Err(MessageRefusal::Properties);
        }
        Ok(())
    }

    /// The SUBACK refusal for a new `filter` of session `key`, if a limit
    /// forbids it (counted): 0x8F Topic Filter invalid past the depth,
    /// 0x97 Quota exceeded past the client's subscriptions or shared groups.
    /// A filter the client already holds replaces its subscription and is
    /// never refused for the counts [MQTT-3.8.4-3].
    pub(super) fn check_subscription(
        &mut self,
        key: SessionKey,
        filter: &TopicFilter,
    ) -> Option<ReasonCode> {
        let l = &self.config.limits;
        let path = filter.shared().map_or(filter.as_str(), |s| s.filter);
        if topic_levels(path) > l.max_topic_levels {
            self.stats.topic_levels_over_limit += 1;
            return Some(ReasonCode::TOPIC_FILTER_INVALID);
        }
        if self.index.get(key, filter).is_some() {
            return None;
        }
        if self.index.subscriptions_of(key) >= l.max_subscriptions {
            self.stats.subscriptions_over_limit += 1;
            return Some(ReasonCode::QUOTA_EXCEEDED);
        }
        if filter.is_shared() && self.index.shared_groups_of(key) >= l.max_shared_groups {
            self.stats.shared_groups_over_limit += 1;
            return Some(ReasonCode::QUOTA_EXCEEDED);
        }
        None
    }

    /// Whether a retained message of `bytes` set by `owner` on a topic whose
    /// current one is `replaced` (its bytes, and whether `owner` set it)
    /// fits the retained byte limits.
    pub(super) fn retained_bytes_fit(
        &self,
        bytes: usize,
        owner: Option<&mqtt_codec::Str>,
        replaced: Option<(usize, bool)>,
    ) -> bool {
        let l = &self.config.limits;
        let total = self.retained_bytes.total() - replaced.map_or(0, |r| r.0);
        let own = owner.map_or(0, |o| {
            let credit = replaced.filter(|r| r.1).map_or(0, |r| r.0);
            self.retained_bytes.of(o) - credit
        });
        total.saturating_add(bytes) <= l.max_retained_bytes
            && (owner.is_none() || own.saturating_add(bytes) <= l.max_retained_bytes_per_client)
    }

    // ----- sessions of absent clients --------------------------------------------

    /// Session `key`'s client went away leaving `session`: its queue counts
    /// towards `max_offline_bytes` from now on.
    pub(super) fn offline_add(&mut self, session: &Session) {
        self.offline_bytes += session.queued_bytes();
    }

    /// A detached session left (resumed, ended).
    pub(super) fn offline_sub(&mut self, session: &Session) {
        self.offline_bytes = self.offline_bytes.saturating_sub(session.queued_bytes());
    }

    /// Whether `msg` fits within `max_offline_bytes`; counted when not.
    pub(super) fn offline_room_for(&mut self, msg: &Message) -> bool {
        let fits = self.offline_bytes.saturating_add(msg.held_bytes())
            <= self.config.limits.max_offline_bytes;
        if !fits {
            self.stats.offline_bytes_over_limit += 1;
        }
        fits
    }

    /// Marks session `key` persistent or not, keeping the count that
    /// `max_persistent_sessions` bounds.
    pub(super) fn set_persistent(&mut self, key: SessionKey, persistent: bool) {
        let Some(entry) = self.sessions.get_mut(key as usize).and_then(Option::as_mut) else {
            return;
        };
        if entry.persistent != persistent {
            entry.persistent = persistent;
            if persistent {
                self.persistent_sessions += 1;
            } else {
                self.persistent_sessions -= 1;
            }
        }
    }

    /// Whether a CONNECT of `client_id` asking for a persistent session may
    /// have one: it already has one, or there is room for one more.
    pub(super) fn persistent_room(&mut self, client_id: &mqtt_codec::Str) -> bool {
        let has = self
            .client_ids
            .get(client_id)
            .and_then(|&k| self.sessions.get(k as usize)?.as_ref())
            .is_some_and(|e| e.persistent);
        let room = has || self.persistent_sessions < self.config.limits.max_persistent_sessions;
        if !room {
            self.stats.persistent_sessions_refused += 1;
        }
        room
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_separators_plus_one() {
        assert_eq!(topic_levels("a"), 1);
        assert_eq!(topic_levels("/"), 2);
        assert_eq!(topic_levels("a/b/+/#"), 4);
        assert_eq!(topic_levels(&"a/".repeat(200)), 201);
    }
}
