//! Bridges with real peers: our broker bridged to Eclipse Mosquitto (each
//! direction and both, QoS 0/1/2, prefix remapping, 3.1.1 and 5.0), two of
//! our brokers bridged both ways on `#` (no echo), QoS 1 and QoS 2 streams
//! through a bridge whose connection a relay cuts several times, a local
//! client with the identifier bridges' local end used to have (no
//! takeover), and Mosquitto bridging into our broker with its own
//! `connection` settings.
//!
//! Without Mosquitto the tests that need it are skipped, unless `CI=true`.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use mqtt_broker::{Config, Server};
use mqtt_tokio::{Client, ConnectOptions, Event, Incoming, Message, OptionSetters, QoS, Requests};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use common::{free_port, require};

/// Longest wait for one expected message.
const WAIT: Duration = Duration::from_secs(10);
/// A quiet period after which no more (echoed) messages are expected.
const QUIET: Duration = Duration::from_millis(700);

// ----- peers -----------------------------------------------------------------

/// Our broker in this process, with `extra` TOML after its listener.
async fn our_broker(extra: &str) -> (Server, SocketAddr) {
    let text = format!("[[listener]]\nbind = \"127.0.0.1:0\"\n\n{extra}");
    let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let server = Server::start(config, 7).await.expect("the broker starts");
    let addr = server.local_addrs()[0];
    (server, addr)
}

/// A Mosquitto process on a free port, killed when dropped.
struct Mosquitto {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Mosquitto {
    /// Debian's `/usr/sbin/mosquitto` (off the PATH of non-root users), or
    /// the one on the PATH; `None` skips the test (a failure under CI=true).
    fn program() -> Option<PathBuf> {
        let debian = PathBuf::from("/usr/sbin/mosquitto");
        if debian.exists() {
            Some(debian)
        } else {
            require("mosquitto").then(|| PathBuf::from("mosquitto"))
        }
    }

    /// Starts Mosquitto with `extra` configuration lines (after its
    /// anonymous listener).
    async fn start(program: &Path, extra: &str) -> Mosquitto {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("mqtt-broker-bridge-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}\n"),
        )
        .unwrap();
        // MOSQUITTO_LOG=1 shows Mosquitto's own log when a test fails.
        let log = if std::env::var_os("MOSQUITTO_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let child = Command::new(program)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto starts");
        let m = Mosquitto { child, port, dir };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        m
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP relay to a target broker whose connections can all be cut at
/// once, which can refuse new ones (closing them at once) and be pointed at
/// another broker.
struct Relay {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// The target, or `None` to refuse.
    target: Arc<Mutex<Option<SocketAddr>>>,
    /// Connections relayed so far.
    relayed: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let target = Arc::new(Mutex::new(Some(target)));
        let relayed = Arc::new(AtomicUsize::new(0));
        let (held, to, count) = (conns.clone(), target.clone(), relayed.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inside, _)) = listener.accept().await {
                let Some(target) = *to.lock().unwrap() else {
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                let conn = tokio::spawn(async move {
                    if let Ok(mut outside) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
                    }
                });
                held.lock().unwrap().push(conn);
            }
        });
        Relay {
            addr,
            conns,
            target,
            relayed,
            accept,
        }
    }

    /// Relays new connections to `target`, or refuses them (`None`).
    fn point_at(&self, target: Option<SocketAddr>) {
        *self.target.lock().unwrap() = target;
    }

    /// Closes every relayed connection (both sockets); new ones are accepted.
    fn cut(&self) {
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

// ----- clients ---------------------------------------------------------------

async fn client(addr: SocketAddr, id: &str) -> (Client, Incoming) {
    let options = ConnectOptions::new(&format!("mqtt://{addr}"))
        .unwrap()
        .client_id(id)
        .connect_timeout(WAIT)
        .incoming_capacity(16_384);
    Client::connect(options)
        .await
        .expect("the test client connects")
}

async fn subscriber(addr: SocketAddr, id: &str, filter: &str) -> (Client, Incoming) {
    let (c, incoming) = client(addr, id).await;
    c.subscribe(filter, QoS::ExactlyOnce)
        .await
        .expect("the test subscription is granted");
    (c, incoming)
}

/// Publishes a QoS 0 probe on `topic` every 100 ms until `sub` receives one:
/// the bridge is connected and subscribed then. Other messages `sub` gets
/// meanwhile are skipped, and probes still in transit drained.
async fn until_flowing(publisher: &Client, topic: &str, sub: &mut Incoming) {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "nothing published on {topic} came through the bridge"
        );
        publisher
            .publish(topic, "probe", QoS::AtMostOnce, false)
            .await
            .unwrap();
        match tokio::time::timeout(Duration::from_millis(100), sub.recv_message()).await {
            Ok(Some(m)) if m.payload.as_ref() == b"probe" => break,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the subscriber was disconnected"),
            Err(_) => {}
        }
    }
    drain(sub, QUIET).await;
}

/// Every message `sub` receives until it has been quiet for `quiet`
/// (bounded by a minute).
async fn drain(sub: &mut Incoming, quiet: Duration) -> Vec<Message> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match tokio::time::timeout(quiet, sub.recv_message()).await {
            Ok(Some(m)) => got.push(m),
            _ => break,
        }
    }
    got
}

/// The next message on `sub`, within [`WAIT`].
async fn next(sub: &mut Incoming, what: &str) -> Message {
    tokio::time::timeout(WAIT, sub.recv_message())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing arrived"))
        .unwrap_or_else(|| panic!("{what}: the subscriber was disconnected"))
}

fn topics(msgs: &[Message]) -> Vec<String> {
    msgs.iter().map(|m| m.topic.as_str().to_owned()).collect()
}

fn qos(n: u8) -> QoS {
    QoS::from_u8(n).unwrap()
}

// ----- our broker bridged to Mosquitto -------------------------------------------

/// Rules exercising each direction with prefix remapping:
/// local `out/#` → remote `site1/out/#`, remote `site1/in/#` → local
/// `from-remote/in/#`, and `both/#` ↔ `site1/both/#`.
fn remapping_rules() -> &'static str {
    r#"
[[bridge.topic]]
topic = "out/#"
direction = "out"
qos = 2
remote_prefix = "site1/"

[[bridge.topic]]
topic = "in/#"
direction = "in"
qos = 2
local_prefix = "from-remote/"
remote_prefix = "site1/"

[[bridge.topic]]
topic = "both/#"
direction = "both"
qos = 2
remote_prefix = "site1/"
"#
}

async fn bridged_to_mosquitto(protocol: &str) {
    let Some(program) = Mosquitto::program() else {
        return;
    };
    let m = Mosquitto::start(&program, "").await;
    let (ours, addr) = our_broker(&format!(
        "[[bridge]]\nname = \"m\"\naddress = \"mqtt://{}\"\nprotocol = \"{protocol}\"\n\
         reconnect_delay = 0.1\n{}",
        m.addr(),
        remapping_rules()
    ))
    .await;
    let (local_pub, _lp) = client(addr, "local-pub").await;
    let (remote_pub, _rp) = client(m.addr(), "remote-pub").await;
    let (_ls, mut local_sub) = subscriber(addr, "local-sub", "#").await;
    let (_rs, mut remote_sub) = subscriber(m.addr(), "remote-sub", "site1/#").await;

    // out: local out/... arrives at Mosquitto as site1/out/..., at its QoS.
    until_flowing(&local_pub, "out/probe", &mut remote_sub).await;
    drain(&mut local_sub, Duration::ZERO).await;
    for q in 0..=2u8 {
        local_pub
            .publish(&format!("out/q{q}"), format!("o{q}"), qos(q), false)
            .await
            .unwrap();
        let got = next(&mut remote_sub, "out").await;
        assert_eq!(got.topic.as_str(), format!("site1/out/q{q}"));
        assert_eq!(got.payload.as_ref(), format!("o{q}").as_bytes());
        assert_eq!(got.qos, qos(q), "out at QoS {q}");
    }
    // in: Mosquitto's site1/in/... arrives here as from-remote/in/...
    until_flowing(&remote_pub, "site1/in/probe", &mut local_sub).await;
    for q in 0..=2u8 {
        remote_pub
            .publish(&format!("site1/in/q{q}"), format!("i{q}"), qos(q), false)
            .await
            .unwrap();
        let got = next(&mut local_sub, "in").await;
        assert_eq!(got.topic.as_str(), format!("from-remote/in/q{q}"));
        assert_eq!(got.payload.as_ref(), format!("i{q}").as_bytes());
        assert_eq!(got.qos, qos(q), "in at QoS {q}");
    }
    // both: each way, each message once on each side, none echoed.
    drain(&mut remote_sub, Duration::ZERO).await;
    until_flowing(&local_pub, "both/probe", &mut remote_sub).await;
    until_flowing(&remote_pub, "site1/both/probe", &mut local_sub).await;
    drain(&mut remote_sub, QUIET).await;
    for q in 0..=2u8 {
        local_pub
            .publish(&format!("both/l{q}"), "l", qos(q), false)
            .await
            .unwrap();
        remote_pub
            .publish(&format!("site1/both/r{q}"), "r", qos(q), false)
            .await
            .unwrap();
    }
    let mut here = topics(&drain(&mut local_sub, QUIET).await);
    let mut there = topics(&drain(&mut remote_sub, QUIET).await);
    here.sort();
    there.sort();
    assert_eq!(
        here,
        ["both/l0", "both/l1", "both/l2", "both/r0", "both/r1", "both/r2"],
        "local side"
    );
    assert_eq!(
        there,
        [
            "site1/both/l0",
            "site1/both/l1",
            "site1/both/l2",
            "site1/both/r0",
            "site1/both/r1",
            "site1/both/r2"
        ],
        "remote side"
    );
    // Outside every rule nothing crosses.
    local_pub
        .publish("elsewhere/1", "x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    remote_pub
        .publish("site1/elsewhere/1", "x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(topics(&drain(&mut local_sub, QUIET).await), ["elsewhere/1"]);
    assert_eq!(
        topics(&drain(&mut remote_sub, QUIET).await),
        ["site1/elsewhere/1"]
    );
    ours.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_to_mosquitto_over_3_1_1() {
    bridged_to_mosquitto("3.1.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_to_mosquitto_over_5_0() {
    bridged_to_mosquitto("5.0").await;
}

// ----- two of our brokers ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_brokers_bridged_both_ways_deliver_each_message_once() {
    for protocol in ["3.1.1", "5.0"] {
        let (b, b_addr) = our_broker("").await;
        let (a, a_addr) = our_broker(&format!(
            "[sys]\ninterval = 1\n\n[[bridge]]\nname = \"ab\"\naddress = \"mqtt://{b_addr}\"\n\
             protocol = \"{protocol}\"\nreconnect_delay = 0.1\n\n\
             [[bridge.topic]]\ntopic = \"#\"\ndirection = \"both\"\nqos = 1\n"
        ))
        .await;
        let (a_pub, _ap) = client(a_addr, "a-pub").await;
        let (b_pub, _bp) = client(b_addr, "b-pub").await;
        let (_as, mut a_sub) = subscriber(a_addr, "a-sub", "t/#").await;
        let (_bs, mut b_sub) = subscriber(b_addr, "b-sub", "t/#").await;
        until_flowing(&a_pub, "t/probe/a", &mut b_sub).await;
        until_flowing(&b_pub, "t/probe/b", &mut a_sub).await;
        drain(&mut a_sub, QUIET).await;
        drain(&mut b_sub, QUIET).await;

        const N: usize = 50;
        for i in 0..N {
            let q = qos((i % 3) as u8);
            a_pub
                .publish(&format!("t/a/{i}"), "a", q, false)
                .await
                .unwrap();
            b_pub
                .publish(&format!("t/b/{i}"), "b", q, false)
                .await
                .unwrap();
        }
        // Each side: its own N and the other's N, each exactly once, and
        // nothing more over a quiet period (an echo would come back).
        for (side, sub) in [("a", &mut a_sub), ("b", &mut b_sub)] {
            let got = drain(sub, Duration::from_secs(1)).await;
            let mut counts: HashMap<String, usize> = HashMap::new();
            for m in &got {
                *counts.entry(m.topic.as_str().to_owned()).or_default() += 1;
            }
            for from in ["a", "b"] {
                for i in 0..N {
                    let t = format!("t/{from}/{i}");
                    assert_eq!(counts.get(&t), Some(&1), "{protocol}: {t} on broker {side}");
                }
            }
            assert_eq!(
                got.len(),
                2 * N,
                "{protocol}: broker {side} got extra messages"
            );
        }
        // The bridge shows in $SYS.
        let (_s, mut sys) = subscriber(a_addr, "sys", "$SYS/broker/bridges/ab/#").await;
        let mut seen: HashMap<String, String> = HashMap::new();
        let deadline = Instant::now() + WAIT;
        while seen.len() < 5 && Instant::now() < deadline {
            let m = next(&mut sys, "$SYS").await;
            seen.insert(
                m.topic.as_str().to_owned(),
                String::from_utf8_lossy(&m.payload).into_owned(),
            );
        }
        let value = |k: &str| seen.get(&format!("$SYS/broker/bridges/ab/{k}")).cloned();
        assert_eq!(value("state").as_deref(), Some("connected"), "{seen:?}");
        let sent: u64 = value("messages/sent").unwrap().parse().unwrap();
        let received: u64 = value("messages/received").unwrap().parse().unwrap();
        assert!(sent >= N as u64 && received >= N as u64, "{seen:?}");
        assert_eq!(value("dropped").as_deref(), Some("0"), "{seen:?}");
        assert_eq!(value("queue").as_deref(), Some("0"), "{seen:?}");
        a.stop().await;
        b.stop().await;
    }
}

// ----- no client can take a bridge over ---------------------------------------------

/// A bridge is not a client of its own broker: a local client connecting
/// with the client identifier the bridge's in-process local end used to
/// have (`local.<client_id>`), or with the bridge's name, takes nothing
/// over. Messages cross both ways while it is connected and after it has
/// gone, nothing is dropped, and the client itself is not disconnected
/// (the old local end, reopened, took its identifier back with 0x8E).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_the_bridges_old_local_client_id_does_not_disturb_it() {
    let (b, b_addr) = our_broker("").await;
    let (a, a_addr) = our_broker(&format!(
        "[sys]\ninterval = 1\n\n[[bridge]]\nname = \"ab\"\naddress = \"mqtt://{b_addr}\"\n\
         client_id = \"site-a\"\nprotocol = \"5.0\"\nreconnect_delay = 0.1\n\n\
         [[bridge.topic]]\ntopic = \"t/#\"\ndirection = \"both\"\nqos = 1\n"
    ))
    .await;
    let (a_pub, _ap) = client(a_addr, "a-pub").await;
    let (b_pub, _bp) = client(b_addr, "b-pub").await;
    let (_as, mut a_sub) = subscriber(a_addr, "a-sub", "t/#").await;
    let (_bs, mut b_sub) = subscriber(b_addr, "b-sub", "t/#").await;
    until_flowing(&a_pub, "t/probe/a", &mut b_sub).await;
    until_flowing(&b_pub, "t/probe/b", &mut a_sub).await;
    drain(&mut a_sub, QUIET).await;
    drain(&mut b_sub, QUIET).await;

    for id in ["local.site-a", "ab"] {
        let (intruder, mut intruder_in) = subscriber(a_addr, id, "t/#").await;
        intruder
            .publish("t/intruder", id, QoS::AtLeastOnce, false)
            .await
            .unwrap();
        a_pub
            .publish("t/out", id, QoS::AtLeastOnce, false)
            .await
            .unwrap();
        b_pub
            .publish("t/in", id, QoS::AtLeastOnce, false)
            .await
            .unwrap();
        let mut there = topics(&drain(&mut b_sub, QUIET).await);
        there.sort();
        assert_eq!(
            there,
            ["t/in", "t/intruder", "t/out"],
            "{id}: out over the bridge (t/in is B's own)"
        );
        let here = topics(&drain(&mut a_sub, QUIET).await);
        assert_eq!(
            here.iter().filter(|t| *t == "t/in").count(),
            1,
            "{id}: in over the bridge: {here:?}"
        );
        // Longer than the old local end took to come back and take over.
        let deadline = Instant::now() + Duration::from_millis(1_500);
        let mut got_in = false;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, intruder_in.recv()).await {
            match event {
                Event::Disconnected { close, .. } => {
                    panic!("{id}: the client was disconnected: {:?}", close.reason)
                }
                Event::Message { message, .. } => got_in |= message.topic.as_str() == "t/in",
                _ => {}
            }
        }
        assert!(got_in, "{id}: the client gets what comes over the bridge");
        intruder.disconnect().await.unwrap();
    }
    // And after it has gone.
    a_pub
        .publish("t/after", "x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(next(&mut b_sub, "after").await.topic.as_str(), "t/after");
    let sys = bridge_sys(a_addr, "ab").await;
    assert_eq!(
        sys.get("state").map(String::as_str),
        Some("connected"),
        "{sys:?}"
    );
    assert_eq!(sys.get("dropped").map(String::as_str), Some("0"), "{sys:?}");
    a.stop().await;
    b.stop().await;
}

// ----- streams through a connection that is cut ----------------------------------------

/// Publishes `n` messages on `topic` (payload: the index) at `qos`, up to 100
/// unacknowledged at once, pausing now and then so the stream spans the
/// relay's cuts.
async fn stream(publisher: Client, topic: &'static str, n: u32, qos: QoS) {
    let mut pending = FuturesUnordered::new();
    for i in 0..n {
        if pending.len() >= 100 {
            pending.next().await.unwrap();
        }
        let c = publisher.clone();
        pending.push(async move {
            c.publish(topic, i.to_string(), qos, false)
                .await
                .expect("the publish completes")
        });
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }
    while pending.next().await.is_some() {}
}

/// Counts how often each index of a stream arrives, until all `n` did or
/// `deadline`.
async fn count(sub: &mut Incoming, n: u32, deadline: Instant) -> Vec<u32> {
    let mut seen = vec![0u32; n as usize];
    let mut distinct = 0;
    while distinct < n {
        let Ok(Some(m)) = tokio::time::timeout_at(deadline, sub.recv_message()).await else {
            break;
        };
        let Some(i) = std::str::from_utf8(&m.payload)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&i| i < n as usize)
        else {
            continue;
        };
        if seen[i] == 0 {
            distinct += 1;
        }
        seen[i] += 1;
    }
    // Late duplicates, if any, within a short quiet period.
    for m in drain(sub, Duration::from_millis(300)).await {
        if let Some(i) = std::str::from_utf8(&m.payload)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&i| i < n as usize)
        {
            seen[i] += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_1_and_2_streams_survive_cut_connections_over_5_0() {
    streams_through_cuts("5.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_1_and_2_streams_survive_cut_connections_over_3_1_1() {
    streams_through_cuts("3.1.1").await;
}

/// A QoS 1 and a QoS 2 stream out, and a QoS 2 stream in, of 10,000
/// messages each, while a relay cuts the bridge's connection every 300 ms.
async fn streams_through_cuts(protocol: &str) {
    const N: u32 = 10_000;
    let roomy = "[limits]\nmax_queued_messages = 100000\nmax_inflight = 1000\n";
    let (b, b_addr) = our_broker(roomy).await;
    let relay = Relay::start(b_addr).await;
    let (a, a_addr) = our_broker(&format!(
        "{roomy}\n[[bridge]]\nname = \"cut\"\naddress = \"mqtt://{}\"\nprotocol = \"{protocol}\"\n\
         reconnect_delay = 0.05\nreconnect_delay_max = 0.2\nqueue_limit = 100000\n\n\
         [[bridge.topic]]\ntopic = \"s1/#\"\ndirection = \"out\"\nqos = 1\n\n\
         [[bridge.topic]]\ntopic = \"s2/#\"\ndirection = \"out\"\nqos = 2\n\n\
         [[bridge.topic]]\ntopic = \"r2/#\"\ndirection = \"in\"\nqos = 2\n",
        relay.addr
    ))
    .await;
    let (a_pub, _ap) = client(a_addr, "a-pub").await;
    let (b_pub, _bp) = client(b_addr, "b-pub").await;
    let (_s1, mut sub1) = subscriber(b_addr, "far-1", "s1/#").await;
    let (_s2, mut sub2) = subscriber(b_addr, "far-2", "s2/#").await;
    let (_r2, mut rsub2) = subscriber(a_addr, "far-r2", "r2/#").await;
    until_flowing(&a_pub, "s1/probe", &mut sub1).await;
    until_flowing(&a_pub, "s2/probe", &mut sub2).await;
    until_flowing(&b_pub, "r2/probe", &mut rsub2).await;

    let started = Instant::now();
    let streams = [
        tokio::spawn(stream(a_pub.clone(), "s1/stream", N, QoS::AtLeastOnce)),
        tokio::spawn(stream(a_pub.clone(), "s2/stream", N, QoS::ExactlyOnce)),
        tokio::spawn(stream(b_pub.clone(), "r2/stream", N, QoS::ExactlyOnce)),
    ];
    // Cut the bridge's connection every 300 ms while the streams run.
    let cutter = {
        let relay = Arc::new(relay);
        let r = relay.clone();
        let task = tokio::spawn(async move {
            let mut cuts = 0;
            while cuts < 8 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                r.cut();
                cuts += 1;
            }
            cuts
        });
        (relay, task)
    };
    let deadline = started + Duration::from_secs(25);
    let (s1, s2, r2) = tokio::join!(
        count(&mut sub1, N, deadline),
        count(&mut sub2, N, deadline),
        count(&mut rsub2, N, deadline),
    );
    let cuts = cutter.1.await.unwrap();
    let connections = cutter.0.relayed.load(Ordering::Relaxed);
    for s in streams {
        s.await.unwrap();
    }
    let missing = |seen: &[u32]| seen.iter().filter(|&&c| c == 0).count();
    let doubled = |seen: &[u32]| seen.iter().filter(|&&c| c > 1).count();
    assert!(cuts >= 5, "the connection was cut {cuts} times");
    assert!(
        connections > cuts / 2,
        "the bridge reconnected only {connections} times"
    );
    assert_eq!(missing(&s1), 0, "QoS 1 out: messages lost");
    assert_eq!(missing(&s2), 0, "QoS 2 out: messages lost");
    assert_eq!(doubled(&s2), 0, "QoS 2 out: messages duplicated");
    assert_eq!(missing(&r2), 0, "QoS 2 in: messages lost");
    assert_eq!(doubled(&r2), 0, "QoS 2 in: messages duplicated");
    eprintln!(
        "{protocol}: 3 x {N} messages, {cuts} cuts, {connections} connections, {:?}; QoS 1 duplicates: {}",
        started.elapsed(),
        doubled(&s1)
    );
    a.stop().await;
    b.stop().await;
}

// ----- Mosquitto bridging into our broker ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_bridges_into_our_broker() {
    let Some(program) = Mosquitto::program() else {
        return;
    };
    let (ours, addr) = our_broker("").await;
    let m = Mosquitto::start(
        &program,
        &format!(
            "connection ours\naddress 127.0.0.1:{}\ntry_private true\n\
             bridge_protocol_version mqttv311\nrestart_timeout 1\n\
             topic m2o/# out 1\ntopic o2m/# in 1\ntopic both/# both 2\n\
             topic # out 1 mq/ site/mq/\n",
            addr.port()
        ),
    )
    .await;
    let (m_pub, _mp) = client(m.addr(), "m-pub").await;
    let (o_pub, _op) = client(addr, "o-pub").await;
    let (_ms, mut m_sub) = subscriber(m.addr(), "m-sub", "#").await;
    let (_os, mut o_sub) = subscriber(addr, "o-sub", "#").await;

    until_flowing(&m_pub, "m2o/probe", &mut o_sub).await;
    drain(&mut m_sub, Duration::ZERO).await;
    until_flowing(&o_pub, "o2m/probe", &mut m_sub).await;
    drain(&mut o_sub, QUIET).await;

    m_pub
        .publish("m2o/x", "from mosquitto", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let got = next(&mut o_sub, "Mosquitto → ours").await;
    assert_eq!(
        (got.topic.as_str(), got.payload.as_ref()),
        ("m2o/x", &b"from mosquitto"[..])
    );
    o_pub
        .publish("o2m/y", "from ours", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    // Mosquitto's own subscriber sees its m2o/x too; find o2m/y.
    let mut found = false;
    for m in drain(&mut m_sub, QUIET).await {
        if m.topic.as_str() == "o2m/y" {
            assert_eq!(m.payload.as_ref(), b"from ours");
            found = true;
        }
    }
    assert!(found, "ours → Mosquitto: o2m/y did not arrive");
    drain(&mut o_sub, Duration::ZERO).await;
    // Mosquitto's prefixes: its mq/... is site/mq/... here.
    m_pub
        .publish("mq/1", "p", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let got = next(&mut o_sub, "Mosquitto prefix").await;
    assert_eq!(got.topic.as_str(), "site/mq/1");
    drain(&mut m_sub, QUIET).await;

    // both: once on each side, none echoed (try_private on our side).
    m_pub
        .publish("both/m", "m", QoS::ExactlyOnce, false)
        .await
        .unwrap();
    o_pub
        .publish("both/o", "o", QoS::ExactlyOnce, false)
        .await
        .unwrap();
    let mut here = topics(&drain(&mut o_sub, QUIET).await);
    let mut there = topics(&drain(&mut m_sub, QUIET).await);
    here.sort();
    there.sort();
    assert_eq!(here, ["both/m", "both/o"], "our side");
    assert_eq!(there, ["both/m", "both/o"], "Mosquitto's side");
    drop(m);
    ours.stop().await;
}

// ----- configuration ---------------------------------------------------------

#[tokio::test]
async fn bad_bridge_settings_stop_the_start() {
    let bad = |extra: &str| {
        let text = format!("[[bridge]]\nname = \"x\"\naddress = \"mqtt://127.0.0.1:1\"\n{extra}");
        Config::from_toml(&text)
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"))
            .to_string()
    };
    let rule = "[[bridge.topic]]\ntopic = \"a/#\"\n";
    assert!(bad("").contains("no [[bridge.topic]]"));
    assert!(bad("[[bridge.topic]]\ntopic = \"a/#/b\"\n").contains("topic rule 1"));
    assert!(
        bad("[[bridge.topic]]\ntopic = \"a\"\nlocal_prefix = \"x/+/\"\n").contains("wildcards")
    );
    assert!(bad(&format!("protocol = \"4\"\n{rule}")).contains("protocol"));
    assert!(bad(&format!("cafile = \"ca.crt\"\n{rule}")).contains("TLS address"));
    assert!(bad(&format!("password = \"p\"\n{rule}")).contains("username"));
    // A CA file that cannot be read stops the start, naming the file.
    let text = format!(
        "[[listener]]\nbind = \"127.0.0.1:0\"\n[[bridge]]\nname = \"x\"\n\
         address = \"mqtts://127.0.0.1:1\"\ncafile = \"/nonexistent/ca.crt\"\n{rule}"
    );
    let e = Server::start(Config::from_toml(&text).unwrap(), 1)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("/nonexistent/ca.crt"), "{e}");
}

// ----- the queue while the remote broker is away ---------------------------------

/// The bridge's `$SYS` values, once each has been published (the topic's
/// last part, e.g. `dropped`, → value).
async fn bridge_sys(addr: SocketAddr, bridge: &str) -> HashMap<String, String> {
    let prefix = format!("$SYS/broker/bridges/{bridge}/");
    let (_c, mut sys) = subscriber(addr, "sys-reader", &format!("{prefix}#")).await;
    let mut seen = HashMap::new();
    let deadline = Instant::now() + WAIT;
    while seen.len() < 5 && Instant::now() < deadline {
        let m = next(&mut sys, "$SYS").await;
        let key = m.topic.as_str().trim_start_matches(&prefix).to_owned();
        seen.insert(key, String::from_utf8_lossy(&m.payload).into_owned());
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_wait_for_the_remote_up_to_the_queue_limit() {
    let (b, b_addr) = our_broker("").await;
    let relay = Relay::start(b_addr).await;
    relay.point_at(None);
    let (a, a_addr) = our_broker(&format!(
        "[sys]\ninterval = 1\n\n[[bridge]]\nname = \"q\"\naddress = \"mqtt://{}\"\n\
         reconnect_delay = 0.05\nreconnect_delay_max = 0.1\nqueue_limit = 5\n\n\
         [[bridge.topic]]\ntopic = \"q/#\"\nqos = 1\n",
        relay.addr
    ))
    .await;
    let (_bs, mut b_sub) = subscriber(b_addr, "far", "q/#").await;
    let (a_pub, _ap) = client(a_addr, "a-pub").await;
    // The remote broker is unreachable: nothing leaves the core, where the
    // queue-full policy (drop the oldest) keeps the newest 5 and counts the
    // 15 it drops; every publish was accepted.
    for i in 0..20 {
        a_pub
            .publish(&format!("q/{i}"), "x", QoS::AtLeastOnce, false)
            .await
            .unwrap_or_else(|e| panic!("q/{i}: {e}"));
    }
    let mut sys = bridge_sys(a_addr, "q").await;
    // $SYS values are published each second: wait for one taken after the burst.
    let deadline = Instant::now() + WAIT;
    while sys.get("dropped").map(String::as_str) != Some("15") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sys = bridge_sys(a_addr, "q").await;
    }
    assert_eq!(
        sys.get("state").map(String::as_str),
        Some("reconnecting"),
        "{sys:?}"
    );
    assert_eq!(
        sys.get("dropped").map(String::as_str),
        Some("15"),
        "{sys:?}"
    );
    assert_eq!(sys.get("queue").map(String::as_str), Some("5"), "{sys:?}");
    assert_eq!(
        sys.get("messages/sent").map(String::as_str),
        Some("0"),
        "{sys:?}"
    );
    // The remote broker comes back: the five queued messages cross, in order.
    relay.point_at(Some(b_addr));
    for i in 15..20 {
        let m = next(&mut b_sub, "a queued message").await;
        assert_eq!(m.topic.as_str(), format!("q/{i}"));
        assert_eq!(m.qos, QoS::AtLeastOnce);
    }
    assert!(drain(&mut b_sub, QUIET).await.is_empty());
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_messages_survive_a_restart_of_the_remote_broker() {
    const N: u32 = 2_000;
    let roomy = "[limits]\nmax_queued_messages = 100000\n";
    let (b1, b1_addr) = our_broker(roomy).await;
    let relay = Relay::start(b1_addr).await;
    let (a, a_addr) = our_broker(&format!(
        "{roomy}\n[[bridge]]\nname = \"r\"\naddress = \"mqtt://{}\"\nprotocol = \"5.0\"\n\
         reconnect_delay = 0.05\nreconnect_delay_max = 0.1\n\n\
         [[bridge.topic]]\ntopic = \"s/#\"\nqos = 1\n",
        relay.addr
    ))
    .await;
    let (a_pub, _ap) = client(a_addr, "a-pub").await;
    let (_s1, mut sub1) = subscriber(b1_addr, "far", "s/#").await;
    until_flowing(&a_pub, "s/probe", &mut sub1).await;
    let publisher = tokio::spawn(stream(a_pub.clone(), "s/stream", N, QoS::AtLeastOnce));
    // Part of the stream reaches the first instance...
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = vec![0u32; N as usize];
    fn record(seen: &mut [u32], m: Message) {
        if let Some(i) = std::str::from_utf8(&m.payload)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&i| i < seen.len())
        {
            seen[i] += 1;
        }
    }
    for _ in 0..300 {
        record(&mut seen, next(&mut sub1, "before the restart").await);
    }
    // ...then it goes away mid-stream, with messages in flight to it. What
    // it acknowledged it delivers before it stops (it keeps nothing on
    // disk: what it acknowledged and had not delivered would be its loss,
    // not the bridge's).
    relay.point_at(None);
    relay.cut();
    for m in drain(&mut sub1, QUIET).await {
        record(&mut seen, m);
    }
    b1.stop().await;
    // A new instance, without the bridge's session, takes over: what was in
    // flight is sent again, then what waited.
    let (b2, b2_addr) = our_broker(roomy).await;
    let (_s2, mut sub2) = subscriber(b2_addr, "far", "s/#").await;
    relay.point_at(Some(b2_addr));
    while seen.contains(&0) && Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, sub2.recv_message()).await {
            Ok(Some(m)) => record(&mut seen, m),
            _ => break,
        }
    }
    publisher.await.unwrap();
    let missing: Vec<usize> = (0..N as usize).filter(|&i| seen[i] == 0).collect();
    assert!(missing.is_empty(), "lost across the restart: {missing:?}");
    a.stop().await;
    b2.stop().await;
}

// ----- TLS to the remote broker -------------------------------------------------

/// A throw-away CA, a server certificate for 127.0.0.1 and a client
/// certificate, as PEM files in a folder removed on drop.
struct Pki(PathBuf);

impl Pki {
    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let dir = std::env::temp_dir().join(format!(
            "mqtt-broker-bridge-pki-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |file: &str, text: String| std::fs::write(dir.join(file), text).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "bridge test CA");
        write("ca.pem", ca.self_signed(&ca_key).unwrap().pem());
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        write("server.pem", server.signed_by(&key, &issuer).unwrap().pem());
        write("server.key", key.serialize_pem());
        let key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client.distinguished_name.push(DnType::CommonName, "bridge");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        write("client.pem", client.signed_by(&key, &issuer).unwrap().pem());
        write("client.key", key.serialize_pem());
        Pki(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_reaches_a_tls_broker_with_a_client_certificate() {
    let pki = Pki::new();
    let (b, b_addr) = our_broker(&format!(
        "[[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"mqtts\"\ncertfile = {:?}\n\
         keyfile = {:?}\ncafile = {:?}\nrequire_certificate = true\n",
        pki.file("server.pem"),
        pki.file("server.key"),
        pki.file("ca.pem")
    ))
    .await;
    let tls_port = b.local_addrs()[1].port();
    let bridge = |name: &str, cert: bool| {
        let cert = if cert {
            format!(
                "certfile = {:?}\nkeyfile = {:?}\n",
                pki.file("client.pem"),
                pki.file("client.key")
            )
        } else {
            String::new()
        };
        format!(
            "[[bridge]]\nname = \"{name}\"\naddress = \"mqtts://127.0.0.1:{tls_port}\"\n\
             cafile = {:?}\n{cert}reconnect_delay = 0.1\n\n\
             [[bridge.topic]]\ntopic = \"{name}/#\"\ndirection = \"both\"\nqos = 1\n",
            pki.file("ca.pem")
        )
    };
    let (a, a_addr) = our_broker(&format!(
        "[sys]\ninterval = 1\n\n{}\n{}",
        bridge("tls", true),
        bridge("nocert", false)
    ))
    .await;
    let (a_pub, _ap) = client(a_addr, "a-pub").await;
    let (b_pub, _bp) = client(b_addr, "b-pub").await;
    let (_as, mut a_sub) = subscriber(a_addr, "a-sub", "tls/#").await;
    let (_bs, mut b_sub) = subscriber(b_addr, "b-sub", "tls/#").await;
    until_flowing(&a_pub, "tls/probe/a", &mut b_sub).await;
    until_flowing(&b_pub, "tls/probe/b", &mut a_sub).await;
    drain(&mut b_sub, QUIET).await;
    a_pub
        .publish("tls/out", "secret", QoS::ExactlyOnce, false)
        .await
        .unwrap();
    let got = next(&mut b_sub, "over TLS").await;
    assert_eq!(
        (got.topic.as_str(), got.payload.as_ref()),
        ("tls/out", &b"secret"[..])
    );
    // Without a client certificate the remote broker refuses the bridge.
    let sys = bridge_sys(a_addr, "nocert").await;
    assert_eq!(
        sys.get("state").map(String::as_str),
        Some("reconnecting"),
        "{sys:?}"
    );
    let sys = bridge_sys(a_addr, "tls").await;
    assert_eq!(
        sys.get("state").map(String::as_str),
        Some("connected"),
        "{sys:?}"
    );
    a.stop().await;
    b.stop().await;
}
