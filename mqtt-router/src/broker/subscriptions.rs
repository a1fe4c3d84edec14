//! SUBSCRIBE and UNSUBSCRIBE: the client's rights checked per filter, the index
//! updated, retained messages sent as Retain Handling says.

use alloc::vec::Vec;

use mqtt_codec::{
    PacketId, QoS, ReasonCode, RetainHandling, Str, SubscriptionId, SubscriptionOptions,
    TopicFilter,
};
use mqtt_session::{DeliverError, DeliveryOptions};

use super::stats::DropReason;
use super::{Broker, ConnId, SessionKey, StoreRecord};
use crate::{Instant, Subscription};

impl Broker {
    // ----- SUBSCRIBE / UNSUBSCRIBE ------------------------------------------------

    pub(super) fn on_subscribe(
        &mut self,
        id: ConnId,
        now: Instant,
        pid: PacketId,
        subscription_identifier: Option<SubscriptionId>,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
    ) {
        let max_qos = self.config.server.maximum_qos;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let Some(key) = c.session else {
            return;
        };
        let v5 = c.conn.version().is_v5();
        let refuse = v5
            && self.store.as_deref().is_some_and(|d| d.is_failing())
            && self
                .sessions
                .get(key as usize)
                .and_then(Option::as_ref)
                .is_some_and(|e| e.durable);
        if refuse {
            // The store cannot write: a persistent session's subscription
            // could not be kept.
            let results = alloc::vec![ReasonCode::QUOTA_EXCEEDED; filters.len()];
            let _ = c.conn.suback(pid, &results);
            return;
        }
        let (rights, try_private) = (c.rights.clone(), c.try_private);
        // Messages routed after this SUBSCRIBE was read (`catch_up.rs`).
        let late = self.catch_up_candidates(key, now, &filters);
        let winners = last_of_each(&filters);
        let mut results = Vec::with_capacity(filters.len());
        let mut retained_for = Vec::new();
        let durable = self.store.is_some();
        let mut subscribed = Vec::new();
        for (i, (filter, mut opts)) in filters.into_iter().enumerate() {
            if winners[i] != i {
                // A later copy of this filter in the same SUBSCRIBE replaces
                // it [MQTT-3.8.4-3]: handled once, as that copy; its result
                // is filled in below.
                results.push(ReasonCode::SUCCESS);
                continue;
            }
            if !rights.may_subscribe(&filter) {
                results.push(ReasonCode::NOT_AUTHORIZED);
                continue;
            }
            if let Some(refused) = self.check_subscription(key, &filter) {
                results.push(refused);
                continue;
            }
            opts.qos = opts.qos.min(max_qos);
            if try_private {
                // What No Local and Retain As Published do for a 5.0 bridge.
                opts.no_local = true;
                opts.retain_as_published = true;
            }
            let sub = Subscription::new(opts, subscription_identifier.filter(|_| v5));
            match self.index.insert(key, &filter, sub) {
                Ok(ins) => {
                    if ins.is_new() {
                        self.interest_added(&filter);
                    }
                    if durable {
                        subscribed.push((filter.clone(), sub));
                    }
                    results.push(ReasonCode(opts.qos as u8));
                    // Retained messages are not sent for shared subscriptions
                    // (section 4.8.2); otherwise per Retain Handling (3.8.3.1).
                    let send = !filter.is_shared()
                        && match opts.retain_handling {
                            RetainHandling::SendAtSubscribe => true,
                            RetainHandling::SendAtSubscribeIfNew => ins.is_new(),
                            RetainHandling::DoNotSend => false,
                        };
                    if send {
                        retained_for.push((filter, opts.qos));
                    }
                }
                Err(e) => results.push(e.reason_code()),
            }
        }
        for (i, &w) in winners.iter().enumerate() {
            results[i] = results[w];
        }
        self.stats.subscribes += 1;
        for (filter, sub) in subscribed {
            self.record_subscribed(key, &filter, sub);
        }
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let _ = c.conn.suback(pid, &results);
        let ids: Vec<SubscriptionId> = subscription_identifier.filter(|_| v5).into_iter().collect();
        let replayed: Vec<TopicFilter> = match late.is_empty() {
            true => Vec::new(),
            false => retained_for.iter().map(|(f, _)| f.clone()).collect(),
        };
        self.send_retained(key, now, retained_for, &ids);
        self.catch_up(key, now, late, &replayed);
    }

    /// Sends the retained messages matching each newly granted filter
    /// (after the SUBACK, [MQTT-3.8.4-4]) to session or bridge `key`: a
    /// session's in slices (see `replay`), a bridge's at once. Once the
    /// queue is full the rest are counted as dropped without being copied
    /// or offered one by one.
    pub(super) fn send_retained(
        &mut self,
        key: SessionKey,
        now: Instant,
        retained_for: Vec<(TopicFilter, QoS)>,
        ids: &[SubscriptionId],
    ) {
        if super::bridges::bridge_index(key).is_none() {
            self.start_replay(key, now, retained_for, ids.first().copied());
            return;
        }
        let mut full = false;
        for (filter, qos) in retained_for {
            if full {
                // Counted, not copied nor offered: each would be refused.
                let mut n = 0;
                self.retained.for_each_match(now, &filter, |_| n += 1);
                self.stats.count_dropped(DropReason::QueueFull, n);
                continue;
            }
            let mut found = Vec::new();
            self.retained
                .for_each_match(now, &filter, |r| found.push(r.message.message.clone()));
            let mut found = found.into_iter();
            for msg in found.by_ref() {
                if !self.may_read(key, &msg.topic) {
                    continue;
                }
                let opts = DeliveryOptions {
                    qos: msg.qos.min(qos),
                    // Retained messages sent on subscribe keep RETAIN set [MQTT-3.3.1-8].
                    retain: true,
                    subscription_identifiers: ids.to_vec(),
                };
                if let Err(DeliverError::QueueFull { .. }) = self.deliver_to(key, now, msg, opts) {
                    full = true;
                    break;
                }
            }
            self.stats
                .count_dropped(DropReason::QueueFull, found.len() as u64);
        }
    }

    /// The client identifier of `key` when the store holds that session.
    fn durable_client_id(&self, key: SessionKey) -> Option<Str> {
        self.store.as_ref()?;
        let e = self.sessions.get(key as usize)?.as_ref()?;
        e.durable.then(|| e.client_id.clone())
    }

    fn record_subscribed(&mut self, key: SessionKey, filter: &TopicFilter, sub: Subscription) {
        if let Some(client_id) = self.durable_client_id(key) {
            self.emit(|| StoreRecord::Subscribed {
                client_id,
                filter: filter.clone(),
                options: sub.options,
                identifier: sub.id,
            });
        }
    }

    fn record_unsubscribed(&mut self, key: SessionKey, filter: TopicFilter) {
        if let Some(client_id) = self.durable_client_id(key) {
            self.emit(|| StoreRecord::Unsubscribed { client_id, filter });
        }
    }

    pub(super) fn on_unsubscribe(&mut self, id: ConnId, pid: PacketId, filters: Vec<TopicFilter>) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let Some(key) = c.session else {
            return;
        };
        self.unsubscribe_replay(key, &filters);
        let mut results = Vec::with_capacity(filters.len());
        for f in filters {
            results.push(match self.index.remove(key, &f) {
                Some(_) => {
                    self.interest_removed(&f);
                    self.unsubscribed_for_catch_up(key);
                    self.record_unsubscribed(key, f);
                    ReasonCode::SUCCESS
                }
                None => ReasonCode::NO_SUBSCRIPTION_EXISTED,
            });
        }
        if let Some(c) = self.conns.get_mut(id) {
            let _ = c.conn.unsuback(pid, &results);
        }
    }
}

/// For each filter of a SUBSCRIBE, the index of the last copy of it in the
/// packet: the one that takes effect.
fn last_of_each(filters: &[(TopicFilter, SubscriptionOptions)]) -> Vec<usize> {
    let mut last = alloc::collections::BTreeMap::new();
    for (i, (f, _)) in filters.iter().enumerate() {
        last.insert(f.as_str(), i);
    }
    filters.iter().map(|(f, _)| last[f.as_str()]).collect()
}
