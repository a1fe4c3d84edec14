//! The disk store's writing half: one transaction applies a turn's records
//! (as `StoreImage` says they mean), every table opened once for it.

use mqtt_codec::Str;
use mqtt_router::broker::{ConnectedWill, StoreRecord};
use redb::{ReadableTable, Table, WriteTransaction};

use super::codec::{Reader, Writer};
use super::redb::{
    Fail, SessionRow, BODIES, BRIDGE_QUEUE, HOLDERS, INCOMING, OUTGOING, RETAINED, SESSIONS,
    SUBSCRIPTIONS,
};

/// Every table a commit writes, open for one transaction.
pub(super) struct Tables<'txn> {
    sessions: Table<'txn, &'static str, &'static [u8]>,
    subscriptions: Table<'txn, (&'static str, &'static str), &'static [u8]>,
    outgoing: Table<'txn, (&'static str, u16), &'static [u8]>,
    incoming: Table<'txn, (&'static str, u16), u8>,
    bodies: Table<'txn, u64, &'static [u8]>,
    holders: Table<'txn, u64, u32>,
    retained: Table<'txn, &'static str, &'static [u8]>,
    bridges: Table<'txn, (&'static str, u64), &'static [u8]>,
}

impl<'txn> Tables<'txn> {
    pub(super) fn open(tx: &'txn WriteTransaction) -> Result<Tables<'txn>, Fail> {
        Ok(Tables {
            sessions: tx.open_table(SESSIONS)?,
            subscriptions: tx.open_table(SUBSCRIPTIONS)?,
            outgoing: tx.open_table(OUTGOING)?,
            incoming: tx.open_table(INCOMING)?,
            bodies: tx.open_table(BODIES)?,
            holders: tx.open_table(HOLDERS)?,
            retained: tx.open_table(RETAINED)?,
            bridges: tx.open_table(BRIDGE_QUEUE)?,
        })
    }

    fn has_session(&self, client_id: &str) -> Result<bool, Fail> {
        Ok(self.sessions.get(client_id)?.is_some())
    }

    /// Applies one record.
    pub(super) fn apply(&mut self, r: &StoreRecord) -> Result<(), Fail> {
        match r {
            StoreRecord::SessionOpened {
                client_id,
                username,
                expiry,
                will,
            } => {
                self.end_session(client_id.as_str())?;
                let v = connected_row(username, *expiry, will).encode();
                self.sessions.insert(client_id.as_str(), &v[..])?;
            }
            StoreRecord::SessionResumed {
                client_id,
                username,
                expiry,
                will,
            } => {
                if self.has_session(client_id.as_str())? {
                    let v = connected_row(username, *expiry, will).encode();
                    self.sessions.insert(client_id.as_str(), &v[..])?;
                }
            }
            StoreRecord::SessionDetached {
                client_id,
                expires_at,
                will,
            } => {
                let old = self
                    .sessions
                    .get(client_id.as_str())?
                    .map(|v| v.value().to_vec());
                if let Some(old) = old {
                    let row = SessionRow::decode(&old)?;
                    let v = SessionRow {
                        detached: Some(*expires_at),
                        will: will.clone(),
                        connected_will: None,
                        ..row
                    }
                    .encode();
                    self.sessions.insert(client_id.as_str(), &v[..])?;
                }
            }
            StoreRecord::SessionEnded { client_id } => self.end_session(client_id.as_str())?,
            StoreRecord::Subscribed {
                client_id,
                filter,
                options,
                identifier,
            } => {
                if self.has_session(client_id.as_str())? {
                    let mut w = Writer::default();
                    w.subscription(options, *identifier);
                    self.subscriptions
                        .insert((client_id.as_str(), filter.as_str()), &w.into_vec()[..])?;
                }
            }
            StoreRecord::Unsubscribed { client_id, filter } => {
                self.subscriptions
                    .remove((client_id.as_str(), filter.as_str()))?;
            }
            r => self.apply_message(r)?,
        }
        Ok(())
    }

    /// The records about messages: bodies, exchanges, retained.
    fn apply_message(&mut self, r: &StoreRecord) -> Result<(), Fail> {
        match r {
            StoreRecord::MessageStored {
                id,
                message,
                expires_at,
            } => {
                let mut w = Writer::default();
                w.wall(*expires_at).message(message);
                self.bodies.insert(id.0, &w.into_vec()[..])?;
                self.holders.insert(id.0, 0)?;
            }
            StoreRecord::Queued {
                client_id,
                packet_id,
                message,
                options,
                order,
            } => {
                if !self.has_session(client_id.as_str())? {
                    return Ok(());
                }
                let mut w = Writer::default();
                w.u64(*order).u8(0).u64(message.0).delivery(options);
                let key = (client_id.as_str(), packet_id.get());
                let old = self
                    .outgoing
                    .insert(key, &w.into_vec()[..])?
                    .map(|v| v.value().to_vec());
                let count = self.holders.get(message.0)?.map_or(0, |v| v.value());
                self.holders.insert(message.0, count.saturating_add(1))?;
                if let Some(old) = old {
                    self.release(&old)?;
                }
            }
            StoreRecord::PubRelSent {
                client_id,
                packet_id,
            } => {
                let key = (client_id.as_str(), packet_id.get());
                let old = self.outgoing.get(key)?.map(|v| v.value().to_vec());
                if let Some(old) = old {
                    let order = Reader::new(&old).u64("outgoing")?;
                    let mut w = Writer::default();
                    w.u64(order).u8(1);
                    self.outgoing.insert(key, &w.into_vec()[..])?;
                    self.release(&old)?;
                }
            }
            StoreRecord::Completed {
                client_id,
                packet_id,
            } => {
                let old = self
                    .outgoing
                    .remove((client_id.as_str(), packet_id.get()))?
                    .map(|v| v.value().to_vec());
                if let Some(old) = old {
                    self.release(&old)?;
                }
            }
            r => self.apply_other(r)?,
        }
        Ok(())
    }

    fn apply_other(&mut self, r: &StoreRecord) -> Result<(), Fail> {
        match r {
            StoreRecord::IncomingReceived {
                client_id,
                packet_id,
            } => {
                self.incoming
                    .insert((client_id.as_str(), packet_id.get()), 0)?;
            }
            StoreRecord::IncomingReleased {
                client_id,
                packet_id,
            } => {
                self.incoming
                    .remove((client_id.as_str(), packet_id.get()))?;
            }
            StoreRecord::RetainedSet {
                message,
                expires_at,
            } => {
                let mut w = Writer::default();
                w.wall(*expires_at).message(message);
                self.retained
                    .insert(message.topic.as_str(), &w.into_vec()[..])?;
            }
            StoreRecord::RetainedCleared { topic } => {
                self.retained.remove(topic.as_str())?;
            }
            StoreRecord::BridgeQueued {
                bridge,
                seq,
                message,
                qos,
                retain,
            } => {
                let mut w = Writer::default();
                w.u64(message.0).u8(*qos as u8).u8(u8::from(*retain));
                let old = self
                    .bridges
                    .insert((bridge.as_str(), *seq), &w.into_vec()[..])?
                    .map(|v| v.value().to_vec());
                let count = self.holders.get(message.0)?.map_or(0, |v| v.value());
                self.holders.insert(message.0, count.saturating_add(1))?;
                if let Some(old) = old {
                    self.release_body(Reader::new(&old).u64("bridge message")?)?;
                }
            }
            StoreRecord::BridgeSettled { bridge, seq } => {
                let old = self
                    .bridges
                    .remove((bridge.as_str(), *seq))?
                    .map(|v| v.value().to_vec());
                if let Some(old) = old {
                    self.release_body(Reader::new(&old).u64("bridge message")?)?;
                }
            }
            // Handled by `apply` and `apply_message`.
            StoreRecord::SessionOpened { .. }
            | StoreRecord::SessionResumed { .. }
            | StoreRecord::SessionDetached { .. }
            | StoreRecord::SessionEnded { .. }
            | StoreRecord::Subscribed { .. }
            | StoreRecord::Unsubscribed { .. }
            | StoreRecord::MessageStored { .. }
            | StoreRecord::Queued { .. }
            | StoreRecord::PubRelSent { .. }
            | StoreRecord::Completed { .. } => {}
        }
        Ok(())
    }

    /// The outgoing entry `value` no longer holds its body: the last holder
    /// deletes it.
    fn release(&mut self, value: &[u8]) -> Result<(), Fail> {
        let mut r = Reader::new(value);
        r.u64("outgoing")?;
        if r.u8("outgoing")? != 0 {
            return Ok(());
        }
        self.release_body(r.u64("outgoing")?)
    }

    /// One holder of body `id` is done with it; the last deletes it.
    fn release_body(&mut self, id: u64) -> Result<(), Fail> {
        let count = self.holders.get(id)?.map_or(0, |v| v.value());
        if count <= 1 {
            self.holders.remove(id)?;
            self.bodies.remove(id)?;
        } else {
            self.holders.insert(id, count - 1)?;
        }
        Ok(())
    }

    /// A session and everything it holds go.
    fn end_session(&mut self, client_id: &str) -> Result<(), Fail> {
        self.sessions.remove(client_id)?;
        let mut held = Vec::new();
        for e in self
            .outgoing
            .extract_from_if((client_id, 0u16)..=(client_id, u16::MAX), |_, _| true)?
        {
            held.push(e?.1.value().to_vec());
        }
        for v in held {
            self.release(&v)?;
        }
        self.incoming
            .retain_in((client_id, 0u16)..=(client_id, u16::MAX), |_, _| false)?;
        let mut filters = Vec::new();
        for e in self.subscriptions.range((client_id, "")..)? {
            let (k, _) = e?;
            let (c, f) = k.value();
            if c != client_id {
                break;
            }
            filters.push(f.to_string());
        }
        for f in filters {
            self.subscriptions.remove((client_id, f.as_str()))?;
        }
        Ok(())
    }
}

/// The row of a session whose client is connected.
fn connected_row(username: &Option<Str>, expiry: u32, will: &Option<ConnectedWill>) -> SessionRow {
    SessionRow {
        username: username.clone(),
        expiry,
        connected_will: will.clone(),
        ..SessionRow::default()
    }
}
