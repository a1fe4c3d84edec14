//! The broker driven by Eclipse paho-mqtt for Python (Debian package
//! python3-paho-mqtt, 1.6), as a 3.1.1 and a 5.0 client.
//!
//! Each test runs a small Python script (`python3 -c`, the broker's port and
//! the protocol version as arguments). The script bounds every wait itself
//! (and has a watchdog), prints what it saw as lines, and the test asserts on
//! those lines. Without paho the tests are skipped, unless `CI=true`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{paho_python, run, BrokerProcess};

/// Both protocol versions, as the scripts' second argument.
const VERSIONS: [&str; 2] = ["311", "5"];

/// Helpers shared by every script: a `Peer` wraps one paho client on its own
/// network thread and records what it receives in queues; `get` waits on a
/// queue, failing the script (exit status 1) past its timeout.
const PRELUDE: &str = r##"
import os, socket, subprocess, sys, threading, time, queue
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

PORT = int(sys.argv[1])
V5 = sys.argv[2] == "5"
TAG = "v5" if V5 else "v311"
WAIT = 10.0

def fail(what):
    print("FAILED: " + what, file=sys.stderr, flush=True)
    os._exit(1)

watchdog = threading.Timer(25.0, fail, args=("the script's watchdog",))
watchdog.daemon = True
watchdog.start()

def out(*args):
    print(*args, flush=True)

def code(rc):
    return getattr(rc, "value", rc)

def get(q, what, timeout=WAIT):
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        fail("timed out waiting for " + what)

def maybe(q, timeout):
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        return None

class Peer:
    def __init__(self, cid="", clean=True, expiry=None, will=None):
        if V5:
            self.c = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        else:
            self.c = mqtt.Client(client_id=cid, clean_session=clean, protocol=mqtt.MQTTv311,
                                 reconnect_on_failure=False)
        self.clean, self.expiry = clean, expiry
        self.connacks, self.msgs, self.subacks, self.gone = (queue.Queue() for _ in range(4))
        self.c.on_connect = lambda c, u, flags, rc, props=None: self.connacks.put(
            (flags.get("session present", 0), code(rc)))
        self.c.on_message = lambda c, u, m: self.msgs.put(m)
        self.c.on_subscribe = lambda c, u, mid, codes, props=None: self.subacks.put(
            [code(x) for x in codes])
        self.c.on_disconnect = lambda c, u, rc, props=None: self.gone.put(code(rc))
        if will:
            self.c.will_set(*will)

    def connect(self):
        kw = {}
        if V5:
            kw["clean_start"] = self.clean
            if self.expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.expiry
                kw["properties"] = props
        self.c.connect("127.0.0.1", PORT, keepalive=30, **kw)
        self.c.loop_start()
        present, rc = get(self.connacks, "CONNACK")
        if rc != 0:
            fail("CONNACK %s" % rc)
        return present

    def sub(self, topic, qos, props=None, **opts):
        if V5:
            self.c.subscribe(topic, options=SubscribeOptions(qos=qos, **opts), properties=props)
        else:
            self.c.subscribe(topic, qos)
        return get(self.subacks, "SUBACK")

    def pub(self, topic, payload, qos, retain=False, props=None):
        info = self.c.publish(topic, payload, qos, retain, properties=props)
        info.wait_for_publish(WAIT)
        if not info.is_published():
            fail("publish to %s not acknowledged" % topic)

    def disconnect(self):
        self.c.disconnect()
        get(self.gone, "the end of the connection")
        self.c.loop_stop()

    def abort(self):
        # The socket ends without DISCONNECT, as when the client dies.
        self.c.socket().shutdown(socket.SHUT_RDWR)
        get(self.gone, "the end of the connection")
        self.c.loop_stop()

    def until(self, topic, what, limit=100):
        # The messages received before the first one on `topic`.
        before = []
        for _ in range(limit):
            m = get(self.msgs, what)
            if m.topic == topic:
                return before
            before.append(m)
        fail("no message on " + topic)
"##;

/// Runs `script` (after [`PRELUDE`]) against the broker with protocol
/// `version`, asserts it succeeded, and returns its output lines.
fn paho(python: &Path, b: &BrokerProcess, version: &str, script: &str) -> Vec<String> {
    let out = run(
        Command::new(python)
            .arg("-c")
            .arg(format!("{PRELUDE}\n{script}\nos._exit(0)\n"))
            .arg(b.port())
            .arg(version)
            // For scripts that start a second Python process with the helpers.
            .env("PAHO_PRELUDE", PRELUDE),
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the paho script failed ({version}): {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

#[test]
fn qos_0_1_2_round_trips_in_both_directions() {
    let Some(py) = paho_python() else { return };
    let b = BrokerProcess::start();
    // Every pair of publish QoS and subscription QoS: the message arrives at
    // the lower of the two [MQTT-3.8.4-8], the QoS 1 and 2 flows complete
    // both from paho to the broker and from the broker to paho.
    let script = r##"
sub = Peer(); sub.connect()
pub = Peer(); pub.connect()
for sq in (0, 1, 2):
    topic = "paho/%s/qos/sub%d" % (TAG, sq)
    out("granted", sq, *sub.sub(topic, sq))
    for pq in (0, 1, 2):
        pub.pub(topic, "p%d-s%d" % (pq, sq), pq)
        m = get(sub.msgs, "the message")
        out("got", pq, sq, m.qos, m.payload.decode(), int(m.retain), m.topic == topic)
sub.disconnect(); pub.disconnect()
"##;
    for v in VERSIONS {
        let lines = paho(&py, &b, v, script);
        let mut expected = Vec::new();
        for sq in 0..3 {
            expected.push(format!("granted {sq} {sq}"));
            for pq in 0..3 {
                let q = pq.min(sq);
                expected.push(format!("got {pq} {sq} {q} p{pq}-s{sq} 0 True"));
            }
        }
        assert_eq!(lines, expected, "{v}");
    }
}

#[test]
fn retained_messages_are_set_delivered_on_subscribe_and_cleared() {
    let Some(py) = paho_python() else { return };
    let b = BrokerProcess::start();
    // A fresh subscriber gets every retained message with RETAIN set
    // [MQTT-3.3.1-6], [MQTT-3.3.1-8]; one published while it is subscribed
    // comes with RETAIN clear [MQTT-3.3.1-9]; an empty retained message
    // clears the topic [MQTT-3.3.1-10]. A message the subscriber sends to
    // itself last marks the end of what it was given.
    let script = r##"
base = "paho/%s/retained" % TAG
pub = Peer(); pub.connect()
pub.pub(base + "/a", "kept-a", 1, retain=True)
pub.pub(base + "/b", "kept-b", 0, retain=True)

def snapshot(label, live):
    s = Peer(); s.connect()
    s.sub(base + "/#", 1)
    if live:
        pub.pub(base + "/c", "live-c", 1, retain=True)
    s.pub(base + "/marker", "marker", 1)
    got = s.until(base + "/marker", "the marker")
    for m in sorted(got, key=lambda m: m.topic):
        out(label, m.topic[len(base):], m.payload.decode(), int(m.retain), m.qos)
    s.disconnect()

snapshot("first", True)
pub.pub(base + "/a", "", 1, retain=True)
snapshot("cleared", False)
pub.disconnect()
"##;
    for v in VERSIONS {
        let lines = paho(&py, &b, v, script);
        assert_eq!(
            lines,
            [
                "first /a kept-a 1 1",
                "first /b kept-b 1 0",
                "first /c live-c 0 1",
                "cleared /b kept-b 1 0",
                "cleared /c live-c 1 1",
            ],
            "{v}"
        );
    }
}

#[test]
fn a_will_is_published_when_the_socket_dies_and_not_after_disconnect() {
    let Some(py) = paho_python() else { return };
    let b = BrokerProcess::start();
    // The clean client disconnects before the victim connects: had its will
    // been published [MQTT-3.1.2-10], it would arrive before the victim's.
    let script = r##"
topic = "paho/%s/will" % TAG
w = Peer(); w.connect(); w.sub(topic, 1)
clean = Peer(will=(topic, "clean-will", 1, False)); clean.connect(); clean.disconnect()
victim = Peer(will=(topic, "socket-will", 1, False)); victim.connect(); victim.abort()
m = get(w.msgs, "the will")
out("will", m.payload.decode(), m.qos, int(m.retain))
extra = maybe(w.msgs, 1.0)
out("then", extra.payload.decode() if extra else "nothing")
"##;
    for v in VERSIONS {
        let lines = paho(&py, &b, v, script);
        assert_eq!(lines, ["will socket-will 1 0", "then nothing"], "{v}");
    }
}

#[test]
fn a_killed_python_process_s_will_is_published() {
    let Some(py) = paho_python() else { return };
    let b = BrokerProcess::start();
    // The victim is a second Python process that SIGKILLs itself once
    // connected: the kernel closes its socket, no DISCONNECT is sent.
    let script = r##"
topic = "paho/%s/killed" % TAG
w = Peer(); w.connect(); w.sub(topic, 1)
victim = os.environ["PAHO_PRELUDE"] + '''
import signal
v = Peer(will=(sys.argv[3], "killed-will", 1, False)); v.connect()
print("victim connected", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
'''
r = subprocess.run([sys.executable, "-c", victim, str(PORT), sys.argv[2], topic],
                   capture_output=True, text=True, timeout=15)
out(r.stdout.strip(), "status", r.returncode)
m = get(w.msgs, "the will")
out("will", m.payload.decode(), m.qos)
"##;
    for v in VERSIONS {
        let lines = paho(&py, &b, v, script);
        assert_eq!(
            lines,
            ["victim connected status -9", "will killed-will 1"],
            "{v}"
        );
    }
}

#[test]
fn a_persistent_session_receives_what_was_queued_while_away() {
    let Some(py) = paho_python() else { return };
    let b = BrokerProcess::start();
    // 3.1.1: clean session 0 [MQTT-3.1.2-4]; 5.0: clean start 0 with a
    // session expiry interval [MQTT-3.1.2-23]. The reconnection gets
    // session present 1 [MQTT-3.2.2-2] and the QoS 1 messages published
    // meanwhile, in order [MQTT-4.6.0-6].
    let script = r##"
cid = "paho-persist-" + TAG
topic = "paho/%s/persist" % TAG
first = Peer(cid, clean=False, expiry=60)
out("first present", first.connect())
first.sub(topic, 1)
first.disconnect()
pub = Peer(); pub.connect()
for i in range(3):
    pub.pub(topic, "away-%d" % i, 1)
again = Peer(cid, clean=False, expiry=60)
out("again present", again.connect())
for i in range(3):
    m = get(again.msgs, "a queued message")
    out("queued", m.payload.decode(), m.qos)
pub.pub(topic, "live", 1)
m = get(again.msgs, "a live message")
out("live", m.payload.decode(), m.qos)
again.disconnect()
fresh = Peer(cid, clean=True)
out("clean present", fresh.connect())
fresh.disconnect(); pub.disconnect()
"##;
    for v in VERSIONS {
        let lines = paho(&py, &b, v, script);
        assert_eq!(
            lines,
            [
                "first present 0",
                "again present 1",
                "queued away-0 1",
                "queued away-1 1",
                "queued away-2 1",
                "live live 1",
                "clean present 0",
            ],
            "{v}"
        );
    }
}

#[test]
fn v5_publish_properties_reach_the_subscriber_unchanged() {
    let Some(py) = paho_python() else { return };
    let b = BrokerProcess::start();
    // User properties in order, repeats kept [MQTT-3.3.2-18]; content type
    // [MQTT-3.3.2-20], response topic and correlation data [MQTT-3.3.2-15],
    // [MQTT-3.3.2-16] and the payload format indicator [MQTT-3.3.2-4]
    // forwarded as sent.
    let script = r##"
topic = "paho/v5/props"
s = Peer(); s.connect(); s.sub(topic, 1)
p = Peer(); p.connect()
props = Properties(PacketTypes.PUBLISH)
props.UserProperty = [("a", "1"), ("b", "2"), ("a", "3"), ("ünï", "cödé")]
props.ContentType = "application/json; charset=utf-8"
props.ResponseTopic = "paho/v5/reply/42"
props.CorrelationData = b"\x00\x01corr\xff"
props.PayloadFormatIndicator = 1
p.pub(topic, '{"k": 1}', 1, props=props)
m = get(s.msgs, "the message")
r = m.properties
out("payload", m.payload.decode())
out("user", repr(getattr(r, "UserProperty", None)))
out("content", getattr(r, "ContentType", None))
out("response", getattr(r, "ResponseTopic", None))
out("correlation", getattr(r, "CorrelationData", b"").hex())
out("format", getattr(r, "PayloadFormatIndicator", None))
"##;
    let lines = paho(&py, &b, "5", script);
    assert_eq!(
        lines,
        [
            r#"payload {"k": 1}"#,
            "user [('a', '1'), ('b', '2'), ('a', '3'), ('ünï', 'cödé')]",
            "content application/json; charset=utf-8",
            "response paho/v5/reply/42",
            "correlation 0001636f7272ff",
            "format 1",
        ]
    );
}

#[test]
fn v5_subscription_identifiers_are_reported_to_the_subscriber() {
    let Some(py) = paho_python() else { return };
    let b = BrokerProcess::start();
    // A message matching two subscriptions with identifiers carries both
    // [MQTT-3.3.4-3]; one matching only a subscription without an
    // identifier carries none.
    let script = r##"
s = Peer(); s.connect()
for topic, sid in (("paho/v5/sid/+", 7), ("paho/v5/sid/#", 300000), ("paho/v5/plain", None)):
    props = None
    if sid is not None:
        props = Properties(PacketTypes.SUBSCRIBE)
        props.SubscriptionIdentifier = sid
    out("suback", *s.sub(topic, 1, props))
p = Peer(); p.connect()
for topic in ("paho/v5/sid/x", "paho/v5/sid/x/y", "paho/v5/plain"):
    p.pub(topic, "m", 1)
    m = get(s.msgs, "a message")
    ids = getattr(m.properties, "SubscriptionIdentifier", [])
    out(m.topic, *sorted(ids))
"##;
    let lines = paho(&py, &b, "5", script);
    assert_eq!(
        lines,
        [
            "suback 1",
            "suback 1",
            "suback 1",
            "paho/v5/sid/x 7 300000",
            "paho/v5/sid/x/y 300000",
            "paho/v5/plain",
        ]
    );
}

#[test]
fn v5_no_local_keeps_a_client_s_own_messages_from_it() {
    let Some(py) = paho_python() else { return };
    let b = BrokerProcess::start();
    // No Local: the broker does not send a client its own publications
    // [MQTT-3.8.3-3]; other subscribers, and its messages from others, are
    // unaffected. The PUBACK of its own message comes after the routing, so
    // the next message it gets must be the other client's.
    let script = r##"
topic = "paho/v5/nolocal"
me = Peer(); me.connect(); me.sub(topic, 1, noLocal=True)
other = Peer(); other.connect(); other.sub(topic, 1)
me.pub(topic, "mine", 1)
m = get(other.msgs, "my message at the other client")
out("other got", m.payload.decode())
other.pub(topic, "theirs", 1)
m = get(me.msgs, "their message")
out("me got", m.payload.decode())
m = get(other.msgs, "their own message at the other client")
out("other got", m.payload.decode())
"##;
    let lines = paho(&py, &b, "5", script);
    assert_eq!(
        lines,
        ["other got mine", "me got theirs", "other got theirs"]
    );
}

#[test]
fn a_client_cannot_publish_into_sys_topics() {
    let Some(py) = paho_python() else { return };
    let b = BrokerProcess::start();
    // `$` topics belong to the server (section 4.7.2): the publication is
    // acknowledged (5.0: with 0x87 Not authorized, which paho 1.6 reads but
    // does not report, so the script wraps its PUBACK/PUBREC handlers) and
    // reaches nobody, neither a `$SYS/...` subscriber nor `#`, which never
    // matches `$` topics anyway [MQTT-4.7.2-1]. The marker published last
    // must be the first message the subscriber gets.
    let script = r##"
acks = queue.Queue()
s = Peer(); s.connect(); s.sub("$SYS/paho/#", 1); s.sub("#", 1)
p = Peer()
for name in ("_handle_pubackcomp", "_handle_pubrec"):
    def spy(*args, _orig=getattr(p.c, name), _name=name):
        pkt = p.c._in_packet["packet"]
        kind = args[0] if args else "PUBREC"
        acks.put((kind, pkt[2] if len(pkt) > 2 else 0))
        return _orig(*args)
    setattr(p.c, name, spy)
p.connect()
for qos in (1, 2):
    p.pub("$SYS/paho/%s/q%d" % (TAG, qos), "intruder", qos)
    flow = [get(acks, "an acknowledgement") for _ in range(qos)]
    out("qos", qos, *("%s=0x%02x" % a for a in flow))
p.pub("paho/%s/marker" % TAG, "marker", 1)
out("acks after the marker", *("%s=0x%02x" % a for a in [get(acks, "the marker's PUBACK")]))
m = get(s.msgs, "the marker")
out("first message", m.topic)
"##;
    let lines = paho(&py, &b, "311", script);
    assert_eq!(
        lines,
        [
            "qos 1 PUBACK=0x00",
            "qos 2 PUBREC=0x00 PUBCOMP=0x00",
            "acks after the marker PUBACK=0x00",
            "first message paho/v311/marker",
        ],
        "3.1.1"
    );
    let lines = paho(&py, &b, "5", script);
    // 5.0: PUBACK/PUBREC 0x87 [MQTT-3.4.2-1]; paho 1.6 sends PUBREL even
    // after a failed PUBREC, and the broker, holding no such packet
    // identifier, completes it with 0x92 (section 3.7.2.1).
    assert_eq!(
        lines,
        [
            "qos 1 PUBACK=0x87",
            "qos 2 PUBREC=0x87 PUBCOMP=0x92",
            "acks after the marker PUBACK=0x00",
            "first message paho/v5/marker",
        ],
        "5.0"
    );
}
