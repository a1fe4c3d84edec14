//! The same tests against every store: what is committed reads back as
//! `StoreImage` says; and the disk store's start-up errors.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mqtt_codec::{PacketId, QoS, Str, SubscriptionId, SubscriptionOptions, TopicFilter, TopicName};
use mqtt_router::broker::{
    ConnectedWill, MessageId, StoreImage, StoreRecord, StoredWill, WallTime,
};
use mqtt_session::{DeliveryOptions, Message};

use super::{MemoryStore, RedbStore, Store, StoreError, FORMAT_VERSION, STORE_FILE};

/// A directory of its own for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("mqtt-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = set_readonly(&self.0, false);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_readonly(p: &std::path::Path, ro: bool) -> std::io::Result<()> {
    let mut perm = std::fs::metadata(p)?.permissions();
    perm.set_readonly(ro);
    std::fs::set_permissions(p, perm)
}

fn cid(s: &str) -> Str {
    Str::try_from(s).unwrap()
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn message(topic: &str, payload: &'static str) -> Message {
    let mut m = Message::new(
        TopicName::try_from(topic).unwrap(),
        payload,
        QoS::ExactlyOnce,
        false,
    );
    m.props.user_properties = vec![(cid("k"), cid("v"))];
    m
}

fn queued(client: &str, id: u16, body: u64, order: u64) -> StoreRecord {
    let mut options = DeliveryOptions::new(QoS::AtLeastOnce);
    options.subscription_identifiers = vec![SubscriptionId::new(5).unwrap()];
    StoreRecord::Queued {
        client_id: cid(client),
        packet_id: pid(id),
        message: MessageId(body),
        options,
        order,
    }
}

/// Every kind of record, in an order the core could emit them.
fn history() -> Vec<StoreRecord> {
    let opened = |c: &str| StoreRecord::SessionOpened {
        client_id: cid(c),
        username: Some(cid("alice")),
        expiry: 3600,
        will: (c == "a").then(|| ConnectedWill {
            message: message("will/a", "bye"),
            message_expiry: Some(30),
            delay: 5,
        }),
    };
    vec![
        opened("a"),
        opened("b"),
        opened("gone"),
        StoreRecord::Subscribed {
            client_id: cid("a"),
            filter: TopicFilter::try_from("x/#").unwrap(),
            options: SubscriptionOptions::new(QoS::ExactlyOnce),
            identifier: SubscriptionId::new(5),
        },
        StoreRecord::Subscribed {
            client_id: cid("a"),
            filter: TopicFilter::try_from("y").unwrap(),
            options: SubscriptionOptions::new(QoS::AtMostOnce),
            identifier: None,
        },
        StoreRecord::Unsubscribed {
            client_id: cid("a"),
            filter: TopicFilter::try_from("y").unwrap(),
        },
        StoreRecord::MessageStored {
            id: MessageId(1),
            message: Arc::new(message("x/1", "one")),
            expires_at: Some(WallTime::from_millis(99)),
        },
        queued("a", 1, 1, 10),
        queued("b", 1, 1, 11),
        queued("gone", 1, 1, 12),
        StoreRecord::MessageStored {
            id: MessageId(2),
            message: Arc::new(message("x/2", "two")),
            expires_at: None,
        },
        queued("a", 2, 2, 14),
        StoreRecord::BridgeQueued {
            bridge: cid("br"),
            seq: 1,
            message: MessageId(2),
            qos: QoS::AtLeastOnce,
            retain: false,
        },
        StoreRecord::BridgeQueued {
            bridge: cid("br"),
            seq: 2,
            message: MessageId(1),
            qos: QoS::ExactlyOnce,
            retain: true,
        },
        StoreRecord::BridgeSettled {
            bridge: cid("br"),
            seq: 2,
        },
        StoreRecord::PubRelSent {
            client_id: cid("a"),
            packet_id: pid(1),
        },
        StoreRecord::Completed {
            client_id: cid("b"),
            packet_id: pid(1),
        },
        StoreRecord::IncomingReceived {
            client_id: cid("b"),
            packet_id: pid(9),
        },
        StoreRecord::IncomingReceived {
            client_id: cid("b"),
            packet_id: pid(10),
        },
        StoreRecord::IncomingReleased {
            client_id: cid("b"),
            packet_id: pid(9),
        },
        StoreRecord::SessionEnded {
            client_id: cid("gone"),
        },
        StoreRecord::SessionDetached {
            client_id: cid("b"),
            expires_at: Some(WallTime::from_millis(5000)),
            will: Some(StoredWill {
                message: message("will/b", "bye"),
                expires_at: None,
                due: WallTime::from_millis(4000),
            }),
        },
        StoreRecord::RetainedSet {
            message: message("r/1", "kept"),
            expires_at: Some(WallTime::from_millis(7)),
        },
        StoreRecord::RetainedSet {
            message: message("r/2", "cleared"),
            expires_at: None,
        },
        StoreRecord::RetainedCleared {
            topic: TopicName::try_from("r/2").unwrap(),
        },
    ]
}

fn image_of(records: &[StoreRecord]) -> StoreImage {
    let mut image = StoreImage::new();
    for r in records {
        image.apply(r.clone());
    }
    image
}

/// Commits `history` in two transactions and checks what reads back.
fn reads_back_as_the_image_says(store: &mut dyn Store) {
    let records = history();
    let (first, second) = records.split_at(9);
    store.commit(first).unwrap();
    store.commit(second).unwrap();
    let expected = image_of(&records);
    let state = store.load().unwrap();
    assert_eq!(state, expected.restored());
    // Body 1: held by "a" until PUBREL, by "b" until completed, by "gone"
    // until its end, by the bridge until settled: deleted. Body 2 is still
    // held (by "a" and the bridge).
    assert_eq!(state.messages.len(), 1);
    assert_eq!(state.messages[0].id, MessageId(2));
    assert_eq!(state.sessions.len(), 2);
    assert_eq!(state.retained.len(), 1);
    assert_eq!(state.bridges.len(), 1);
    assert_eq!(state.bridges[0].queue.len(), 1);
}

#[test]
fn the_memory_store_reads_back_as_the_image_says() {
    reads_back_as_the_image_says(&mut MemoryStore::new());
}

#[test]
fn the_redb_store_reads_back_as_the_image_says() {
    let dir = TempDir::new("image");
    reads_back_as_the_image_says(&mut RedbStore::open(&dir.0).unwrap());
}

#[test]
fn a_reopened_redb_store_keeps_what_was_committed() {
    let dir = TempDir::new("reopen");
    let records = history();
    {
        let mut s = RedbStore::open(&dir.0).unwrap();
        s.commit(&records).unwrap();
    }
    let mut s = RedbStore::open(&dir.0).unwrap();
    assert_eq!(s.load().unwrap(), image_of(&records).restored());
}

/// A redb backend in memory whose writes fail while `failing` is set, as a
/// disk that fills up or returns EIO for a while.
#[derive(Debug, Clone)]
struct FlakyDisk {
    inner: Arc<redb::backends::InMemoryBackend>,
    failing: Arc<AtomicBool>,
}

impl FlakyDisk {
    fn check(&self) -> std::io::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected write error"));
        }
        Ok(())
    }
}

impl redb::StorageBackend for FlakyDisk {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.check()?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.check()?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

#[test]
fn the_redb_store_commits_again_after_write_errors_and_keeps_what_it_had() {
    let disk = FlakyDisk {
        inner: Arc::new(redb::backends::InMemoryBackend::new()),
        failing: Arc::new(AtomicBool::new(false)),
    };
    let again = disk.clone();
    let mut s = RedbStore::with(
        PathBuf::from("flaky"),
        redb::Builder::new()
            .create_with_backend(disk.clone())
            .unwrap(),
        Box::new(move || redb::Builder::new().create_with_backend(again.clone())),
    )
    .unwrap();
    let records = history();
    let (first, second) = records.split_at(9);
    s.commit(first).unwrap();
    disk.failing.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let e = s
            .commit(second)
            .expect_err("a write error must fail the commit");
        assert!(e.to_string().contains("flaky"), "{e}");
    }
    disk.failing.store(false, Ordering::SeqCst);
    s.commit(second)
        .expect("the store must accept writes once the disk does");
    assert_eq!(s.load().unwrap(), image_of(&records).restored());
}

fn open_err(dir: &TempDir) -> StoreError {
    RedbStore::open(&dir.0).expect_err("the store must be refused")
}

#[test]
fn a_file_that_is_not_a_store_is_refused_as_corrupt() {
    let dir = TempDir::new("garbage");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join(STORE_FILE), vec![0x5a; 10_000]).unwrap();
    let e = open_err(&dir);
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains(STORE_FILE), "{e}");
}

#[test]
fn a_truncated_store_is_refused_with_its_name() {
    let dir = TempDir::new("truncated");
    {
        let mut s = RedbStore::open(&dir.0).unwrap();
        s.commit(&history()).unwrap();
    }
    let path = dir.0.join(STORE_FILE);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 3).unwrap();
    drop(f);
    let e = match RedbStore::open(&dir.0) {
        Err(e) => e,
        // Opened: then reading must say what is wrong.
        Ok(mut s) => s.load().expect_err("a truncated store must not load"),
    };
    assert!(e.to_string().contains(STORE_FILE), "{e}");
}

#[test]
fn an_unknown_format_version_is_refused() {
    let dir = TempDir::new("version");
    {
        let s = RedbStore::open(&dir.0).unwrap();
        let tx = s.db.as_ref().unwrap().begin_write().unwrap();
        tx.open_table(super::redb::META_FOR_TESTS)
            .unwrap()
            .insert("format", FORMAT_VERSION + 1)
            .unwrap();
        tx.commit().unwrap();
    }
    let e = open_err(&dir);
    assert!(
        matches!(e, StoreError::UnknownVersion { found, .. } if found == FORMAT_VERSION + 1),
        "{e:?}"
    );
    assert!(e.to_string().contains(STORE_FILE), "{e}");
}

#[test]
fn a_read_only_directory_is_refused() {
    let dir = TempDir::new("readonly");
    std::fs::create_dir_all(&dir.0).unwrap();
    set_readonly(&dir.0, true).unwrap();
    let e = open_err(&dir);
    assert!(matches!(e, StoreError::ReadOnly { .. }), "{e:?}");
}

/// Any sequence of records, as the core could emit them in any order of
/// events: the disk store reads back what `StoreImage` says.
mod agreement {
    use super::*;
    use proptest::prelude::*;

    const CLIENTS: [&str; 3] = ["a", "b", "c"];

    /// One step, made into records with the body counter `next`.
    fn records(step: (u8, u8, u8, u8), next: &mut u64) -> Vec<StoreRecord> {
        let (kind, c, n, m) = step;
        let client = cid(CLIENTS[usize::from(c) % 3]);
        let packet_id = pid(u16::from(n % 4) + 1);
        match kind % 12 {
            0 => vec![StoreRecord::SessionOpened {
                client_id: client,
                username: None,
                expiry: 60,
                will: (m % 2 == 0).then(|| ConnectedWill {
                    message: message("w", "will"),
                    message_expiry: None,
                    delay: u32::from(n),
                }),
            }],
            1 => vec![StoreRecord::SessionEnded { client_id: client }],
            2 | 3 => {
                *next += 1;
                let id = MessageId(*next);
                let mut records = vec![StoreRecord::MessageStored {
                    id,
                    message: Arc::new(message("t", "body")),
                    expires_at: None,
                }];
                for target in 0..=(m % 3) {
                    records.push(StoreRecord::Queued {
                        client_id: cid(CLIENTS[(usize::from(c) + usize::from(target)) % 3]),
                        packet_id,
                        message: id,
                        options: DeliveryOptions::new(QoS::AtLeastOnce),
                        order: *next * 10 + u64::from(target),
                    });
                }
                if m % 2 == 0 {
                    records.push(StoreRecord::BridgeQueued {
                        bridge: cid("br"),
                        seq: u64::from(n % 4),
                        message: id,
                        qos: QoS::AtLeastOnce,
                        retain: false,
                    });
                }
                records
            }
            4 => vec![StoreRecord::PubRelSent {
                client_id: client,
                packet_id,
            }],
            5 => vec![StoreRecord::Completed {
                client_id: client,
                packet_id,
            }],
            6 => vec![StoreRecord::IncomingReceived {
                client_id: client,
                packet_id,
            }],
            7 => vec![StoreRecord::IncomingReleased {
                client_id: client,
                packet_id,
            }],
            8 => vec![StoreRecord::Subscribed {
                client_id: client,
                filter: TopicFilter::try_from(["x", "y/+", "#"][usize::from(m) % 3]).unwrap(),
                options: SubscriptionOptions::new(QoS::AtLeastOnce),
                identifier: None,
            }],
            9 => vec![StoreRecord::BridgeSettled {
                bridge: cid("br"),
                seq: u64::from(n % 4),
            }],
            10 => vec![StoreRecord::SessionDetached {
                client_id: client,
                expires_at: Some(WallTime::from_millis(u64::from(m))),
                will: None,
            }],
            _ => vec![StoreRecord::RetainedSet {
                message: message(["r/1", "r/2"][usize::from(m) % 2], "kept"),
                expires_at: None,
            }],
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn the_redb_store_agrees_with_the_image(
            steps in proptest::collection::vec(any::<(u8, u8, u8, u8)>(), 1..40),
            chunk in 1usize..8,
        ) {
            let dir = TempDir::new("agreement");
            let mut redb = RedbStore::open(&dir.0).unwrap();
            let mut image = StoreImage::new();
            let mut next = 0;
            let all: Vec<StoreRecord> = steps.into_iter().flat_map(|s| records(s, &mut next)).collect();
            for batch in all.chunks(chunk) {
                redb.commit(batch).unwrap();
                for r in batch {
                    image.apply(r.clone());
                }
            }
            prop_assert_eq!(redb.load().unwrap(), image.restored());
        }
    }
}

#[test]
fn a_file_in_an_unknown_redb_format_is_named_as_redbs_format_not_ours() {
    let path = PathBuf::from("/data").join(STORE_FILE);
    let e = super::redb::db_error(&path, redb::DatabaseError::UpgradeRequired(2));
    assert!(
        matches!(e, StoreError::UnknownRedbFormat { found: 2, .. }),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("redb file format 2"), "{text}");
    assert!(text.contains(STORE_FILE), "{text}");
}

#[test]
fn compaction_gives_the_space_of_delivered_messages_back_and_keeps_the_rest() {
    let dir = TempDir::new("compact");
    let file = dir.0.join(STORE_FILE);
    let mut store = RedbStore::open(&dir.0).unwrap();
    let opened = StoreRecord::SessionOpened {
        client_id: cid("a"),
        username: None,
        expiry: 3600,
        will: None,
    };
    store.commit(&[opened]).unwrap();
    // 200 messages of 32 KiB queued at once, then every one delivered.
    let body = bytes::Bytes::from(vec![7u8; 32 * 1024]);
    let mut records = Vec::new();
    for i in 1..=200u16 {
        let m = Message::new(
            TopicName::try_from("big").unwrap(),
            body.clone(),
            QoS::AtLeastOnce,
            false,
        );
        records.push(StoreRecord::MessageStored {
            id: MessageId(u64::from(i)),
            message: Arc::new(m),
            expires_at: None,
        });
        records.push(queued("a", i, u64::from(i), u64::from(i)));
    }
    store.commit(&records).unwrap();
    let completed: Vec<_> = (1..=200u16)
        .map(|i| StoreRecord::Completed {
            client_id: cid("a"),
            packet_id: pid(i),
        })
        .collect();
    store.commit(&completed).unwrap();
    let before = std::fs::metadata(&file).unwrap().len();
    assert!(before > 6 * 1024 * 1024, "{before} bytes");
    assert!(store.compact().unwrap());
    let after = std::fs::metadata(&file).unwrap().len();
    assert!(after * 4 < before, "{before} -> {after} bytes");
    let state = store.load().unwrap();
    assert_eq!(state.sessions.len(), 1);
    assert!(state.sessions[0].outgoing.is_empty());
    assert!(!store.compact().unwrap(), "nothing left to give back");
}

#[test]
fn the_memory_store_has_nothing_to_compact() {
    assert!(!MemoryStore::new().compact().unwrap());
}
