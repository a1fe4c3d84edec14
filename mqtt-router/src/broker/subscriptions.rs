//! SUBSCRIBE and UNSUBSCRIBE: the policy asked per filter, the index
//! updated, retained messages sent as Retain Handling says.

use alloc::sync::Arc;
use alloc::vec::Vec;

use mqtt_codec::{
    PacketId, QoS, ReasonCode, RetainHandling, Str, SubscriptionId, SubscriptionOptions,
    TopicFilter,
};
use mqtt_session::DeliveryOptions;

use super::{Broker, ClientInfo, ConnId, Policy, SessionKey};
use crate::{Instant, Subscription};

impl<P: Policy> Broker<P> {
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
        let mut results = Vec::with_capacity(filters.len());
        let mut retained_for = Vec::new();
        for (filter, mut opts) in filters {
            let info = ClientInfo {
                client_id: c.conn.client_id().as_str(),
                username: c.username.as_ref().map(Str::as_str),
                peer: &c.peer,
            };
            if !self.policy.may_subscribe(&info, &filter) {
                results.push(ReasonCode::NOT_AUTHORIZED);
                continue;
            }
            opts.qos = opts.qos.min(max_qos);
            if c.try_private {
                // What No Local and Retain As Published do for a 5.0 bridge.
                opts.no_local = true;
                opts.retain_as_published = true;
            }
            let sub = Subscription::new(opts, subscription_identifier.filter(|_| v5));
            match self.index.insert(key, &filter, sub) {
                Ok(ins) => {
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
        self.stats.subscribes += 1;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let _ = c.conn.suback(pid, &results);
        let ids: Vec<SubscriptionId> = subscription_identifier.filter(|_| v5).into_iter().collect();
        self.send_retained(key, now, retained_for, &ids);
    }

    /// Sends the retained messages matching each newly granted filter
    /// (after the SUBACK, [MQTT-3.8.4-4]) to session or bridge `key`.
    pub(super) fn send_retained(
        &mut self,
        key: SessionKey,
        now: Instant,
        retained_for: Vec<(TopicFilter, QoS)>,
        ids: &[SubscriptionId],
    ) {
        for (filter, qos) in retained_for {
            let mut found = Vec::new();
            self.retained
                .for_each_match(now, &filter, |r| found.push(r.message.clone()));
            for msg in found {
                let opts = DeliveryOptions {
                    qos: msg.qos.min(qos),
                    // Retained messages sent on subscribe keep RETAIN set [MQTT-3.3.1-8].
                    retain: true,
                    subscription_identifiers: ids.to_vec(),
                };
                let _ = self.deliver_to(key, now, Arc::new(msg), opts);
            }
        }
    }

    pub(super) fn on_unsubscribe(&mut self, id: ConnId, pid: PacketId, filters: Vec<TopicFilter>) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let Some(key) = c.session else {
            return;
        };
        let results: Vec<ReasonCode> = filters
            .iter()
            .map(|f| match self.index.remove(key, f) {
                Some(_) => ReasonCode::SUCCESS,
                None => ReasonCode::NO_SUBSCRIPTION_EXISTED,
            })
            .collect();
        if let Some(c) = self.conns.get_mut(id) {
            let _ = c.conn.unsuback(pid, &results);
        }
    }
}
