//! The cluster's retained set, followed in its own task: every change of
//! the key-value bucket, from any node, handed to the core side in the
//! bucket's order.
//!
//! A watch opened on what is new, then the bucket's current values read
//! once: the revision kept per key drops what the watch brings that the
//! reading already had (or something newer), so nothing changed between
//! opening the watch and reading is lost or applied out of order. A watch
//! that ends (NATS was away longer than its consumer lives) is opened
//! again, with the reading again.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::kv::{Entry, Operation, Store};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::warn;

use super::FromCluster;

/// The wait before the watch is opened again.
const REOPEN: Duration = Duration::from_secs(1);

/// Follows `store` until the core side is gone.
pub(crate) async fn follow(store: Store, inbound: mpsc::Sender<FromCluster>) {
    // The newest revision handed over, per key: at most one entry per
    // retained topic of the cluster.
    let mut revisions: HashMap<String, u64> = HashMap::new();
    loop {
        match follow_once(&store, &inbound, &mut revisions).await {
            Ok(()) => return,
            Err(e) => {
                warn!(error = %e, "cluster: following the retained messages failed; starting again")
            }
        }
        tokio::time::sleep(REOPEN).await;
    }
}

/// One watch: `Ok` when the core side is gone, `Err` when the watch fails
/// or ends.
async fn follow_once(
    store: &Store,
    inbound: &mpsc::Sender<FromCluster>,
    revisions: &mut HashMap<String, u64>,
) -> Result<(), String> {
    let mut watch = store.watch_all().await.map_err(|e| e.to_string())?;
    let mut keys = store.keys().await.map_err(|e| e.to_string())?;
    let mut current = Vec::new();
    while let Some(key) = keys.next().await {
        current.push(key.map_err(|e| e.to_string())?);
    }
    for key in current {
        if let Some(entry) = store.entry(key).await.map_err(|e| e.to_string())? {
            if !hand_over(entry, inbound, revisions).await {
                return Ok(());
            }
        }
    }
    while let Some(entry) = watch.next().await {
        let entry = entry.map_err(|e| e.to_string())?;
        if !hand_over(entry, inbound, revisions).await {
            return Ok(());
        }
    }
    Err("the watch ended".into())
}

/// Hands one change to the core side unless a newer one of its key was
/// handed over already; false when the core side is gone.
async fn hand_over(
    entry: Entry,
    inbound: &mpsc::Sender<FromCluster>,
    revisions: &mut HashMap<String, u64>,
) -> bool {
    let newest = revisions.entry(entry.key.clone()).or_insert(0);
    if entry.revision <= *newest {
        return true;
    }
    *newest = entry.revision;
    let value = match entry.operation {
        Operation::Put => Some(entry.value),
        Operation::Delete | Operation::Purge => None,
    };
    let change = FromCluster::Retained {
        key: entry.key,
        value,
    };
    inbound.send(change).await.is_ok()
}
