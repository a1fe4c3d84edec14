//! Password and ACL files, driven by real peers: files made by Mosquitto's
//! `mosquitto_passwd` and by our `passwd` subcommand (the latter also read by
//! Mosquitto itself), refusals as `mosquitto_pub`/`mosquitto_sub` and Python
//! paho-mqtt report them, and ACL denials of subscribe and publish.
//!
//! Without the real peers the tests are skipped, unless `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, paho_python, require, run, BrokerProcess};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A folder for one test's files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "mqtt-broker-auth-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `[auth]` section naming these files (TOML strings).
fn auth_section(password_file: Option<&Path>, acl_file: Option<&Path>, extra: &str) -> String {
    let mut s = String::from("[auth]\n");
    if let Some(p) = password_file {
        s += &format!("password_file = {:?}\n", p.display().to_string());
    }
    if let Some(p) = acl_file {
        s += &format!("acl_file = {:?}\n", p.display().to_string());
    }
    s + extra
}

fn mosquitto_passwd(args: &[&str]) {
    let out = run(Command::new("mosquitto_passwd").args(args), TIMEOUT);
    assert!(out.status.success(), "mosquitto_passwd {args:?}: {out:?}");
}

/// Our `passwd` subcommand, with `stdin` as its standard input.
fn our_passwd(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mqtt-broker"))
        .arg("passwd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the broker binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    // Hashing 101 PBKDF2 rounds takes microseconds; the timeout only bounds a hang.
    let deadline = Instant::now() + TIMEOUT;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

/// `mosquitto_pub` connecting as `user` (or anonymously) and publishing one
/// message; the exit status is the CONNACK code when refused.
fn publish(port: u16, version: &str, user: Option<(&str, &str)>, topic: &str) -> Output {
    let mut c = Command::new("mosquitto_pub");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version]);
    c.args(["-t", topic, "-m", "hello", "-q", "1"]);
    if let Some((u, p)) = user {
        c.args(["-u", u, "-P", p]);
    }
    run(&mut c, TIMEOUT)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What `mosquitto_pub` says for each refusal, per protocol version: exit
/// status (the CONNACK code) and message.
fn assert_refused(out: &Output, version: &str, bad_credentials: bool) {
    let (code, text) = match (version, bad_credentials) {
        ("mqttv5", true) => (134, "Bad User Name or Password"),
        ("mqttv5", false) => (135, "Not authorized"),
        (_, true) => (4, "bad user name or password"),
        (_, false) => (5, "not authorised"),
    };
    assert_eq!(out.status.code(), Some(code), "{version}: {out:?}");
    assert!(stderr(out).contains(text), "{version}: {out:?}");
}

#[test]
fn a_mosquitto_passwd_file_lets_its_users_in_and_no_one_else() {
    if !require("mosquitto_passwd") || !require("mosquitto_pub") {
        return;
    }
    let dir = TempDir::new("mosquitto-file");
    let pw = dir.path("passwd");
    let pw_s = pw.to_str().unwrap();
    mosquitto_passwd(&["-c", "-b", pw_s, "alice", "secret"]);
    // The older $6$ format, as Mosquitto 1.6 wrote it.
    mosquitto_passwd(&["-H", "sha512", "-b", pw_s, "carol", "hunter2"]);
    let b = BrokerProcess::start_with(&auth_section(Some(&pw), None, ""));
    let port = b.addr.port();
    for v in ["mqttv31", "mqttv311", "mqttv5"] {
        for (user, password) in [("alice", "secret"), ("carol", "hunter2")] {
            let out = publish(port, v, Some((user, password)), "t");
            assert!(out.status.success(), "{v} {user}: {out:?}");
        }
        assert_refused(&publish(port, v, Some(("alice", "wrong")), "t"), v, true);
        assert_refused(&publish(port, v, Some(("carol", "secret")), "t"), v, true);
        assert_refused(&publish(port, v, Some(("mallory", "x")), "t"), v, true);
        // A password file makes anonymous clients unwelcome by default.
        assert_refused(&publish(port, v, None, "t"), v, false);
    }
}

#[test]
fn anonymous_clients_may_be_let_in_beside_the_password_file() {
    if !require("mosquitto_passwd") || !require("mosquitto_pub") {
        return;
    }
    let dir = TempDir::new("anonymous");
    let pw = dir.path("passwd");
    mosquitto_passwd(&["-c", "-b", pw.to_str().unwrap(), "alice", "secret"]);
    let b = BrokerProcess::start_with(&auth_section(Some(&pw), None, "allow_anonymous = true\n"));
    let port = b.addr.port();
    for v in ["mqttv311", "mqttv5"] {
        let out = publish(port, v, None, "t");
        assert!(out.status.success(), "{v}: {out:?}");
        assert_refused(&publish(port, v, Some(("alice", "wrong")), "t"), v, true);
    }
    drop(b);
    // And refused without any password file when told so.
    let b = BrokerProcess::start_with("[auth]\nallow_anonymous = false\n");
    for v in ["mqttv311", "mqttv5"] {
        assert_refused(&publish(b.addr.port(), v, None, "t"), v, false);
    }
}

/// Mosquitto on a free port with a password file, killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
}

impl Mosquitto {
    /// The broker program: Debian's `/usr/sbin/mosquitto`, which may be off
    /// the PATH of a non-root user, or the one on the PATH.
    fn program() -> Option<PathBuf> {
        let debian = PathBuf::from("/usr/sbin/mosquitto");
        if debian.exists() {
            Some(debian)
        } else {
            require("mosquitto").then(|| PathBuf::from("mosquitto"))
        }
    }

    fn start(program: &Path, dir: &TempDir, password_file: &Path) -> Mosquitto {
        let port = free_port();
        // `user root`: as root, Mosquitto would switch to its own user, who
        // cannot read a password file made readable by its owner only.
        let conf = dir.file(
            "mosquitto.conf",
            &format!(
                "user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
                password_file.display()
            ),
        );
        let child = Command::new(program)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let mut m = Mosquitto { child, port };
        let deadline = Instant::now() + TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                matches!(m.child.try_wait(), Ok(None)),
                "mosquitto exited: it could not read the password file?"
            );
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_file_made_by_our_passwd_works_here_and_in_mosquitto() {
    if !require("mosquitto_pub") {
        return;
    }
    let Some(mosquitto) = Mosquitto::program() else {
        return;
    };
    let dir = TempDir::new("our-file");
    let pw = dir.path("passwd");
    let pw_s = pw.to_str().unwrap();
    let ok = |out: Output| assert!(out.status.success(), "{out:?}");
    ok(our_passwd(&["-c", "-b", pw_s, "alice", "first"], ""));
    // Asked for twice, read from standard input when it is not a terminal.
    ok(our_passwd(&[pw_s, "bob"], "bobpw\nbobpw\n"));
    ok(our_passwd(&[pw_s, "dave"], "davepw\ndavepw\n"));
    ok(our_passwd(&["-b", pw_s, "alice", "second"], ""));
    ok(our_passwd(&["-D", pw_s, "dave"], ""));
    // Mistakes change nothing.
    let out = our_passwd(&[pw_s, "erin"], "one\ntwo\n");
    assert!(
        !out.status.success() && stderr(&out).contains("do not match"),
        "{out:?}"
    );
    let out = our_passwd(&["-D", pw_s, "nobody"], "");
    assert!(
        !out.status.success() && stderr(&out).contains("nobody"),
        "{out:?}"
    );
    let text = std::fs::read_to_string(&pw).unwrap();
    let users: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(users, ["alice", "bob"]);
    assert!(text.lines().all(|l| l.contains(":$7$101$")), "{text}");

    let b = BrokerProcess::start_with(&auth_section(Some(&pw), None, ""));
    let m = Mosquitto::start(&mosquitto, &dir, &pw);
    for port in [b.addr.port(), m.port] {
        for v in ["mqttv311", "mqttv5"] {
            ok(publish(port, v, Some(("alice", "second")), "t"));
            ok(publish(port, v, Some(("bob", "bobpw")), "t"));
            for (user, password) in [("alice", "first"), ("dave", "davepw"), ("erin", "one")] {
                let out = publish(port, v, Some((user, password)), "t");
                assert!(!out.status.success(), "{port} {v} {user}: {out:?}");
            }
        }
    }
    // Here the refusal is "bad user name or password" (Mosquitto says "not authorised").
    assert_refused(
        &publish(b.addr.port(), "mqttv311", Some(("alice", "first")), "t"),
        "mqttv311",
        true,
    );
}

#[test]
fn bad_files_stop_the_broker_naming_file_and_line() {
    let dir = TempDir::new("bad-files");
    let good_pw = dir.file("passwd", "");
    let cases = [
        (
            auth_section(
                Some(&dir.file("bad-passwd", "# users\nalice:plaintext\n")),
                None,
                "",
            ),
            "bad-passwd, line 2",
        ),
        (
            auth_section(
                Some(&good_pw),
                Some(&dir.file("bad-acl", "user a\ntopic read a/#/b\n")),
                "",
            ),
            "bad-acl, line 2",
        ),
        (
            auth_section(Some(&dir.path("missing-passwd")), None, ""),
            "missing-passwd",
        ),
        (
            auth_section(None, Some(&dir.path("missing-acl")), ""),
            "missing-acl",
        ),
    ];
    for (config, expected) in cases {
        let path = dir.file(
            "broker.toml",
            &format!("[[listener]]\nbind = \"127.0.0.1:0\"\n{config}"),
        );
        let out = run(
            Command::new(env!("CARGO_BIN_EXE_mqtt-broker"))
                .arg("-c")
                .arg(&path),
            TIMEOUT,
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{config}: {text}");
        assert!(text.contains(expected), "{config}: {text}");
    }
}

/// alice may use `alice/#` and her own `clients/<client id>/#`; bob may
/// read everything.
const ACL: &str = "\
# anonymous clients: nothing
user alice
topic readwrite alice/#
user bob
topic read #
pattern readwrite clients/%c/#
";

fn acl_broker(dir: &TempDir) -> BrokerProcess {
    let pw = dir.path("passwd");
    let pw_s = pw.to_str().unwrap();
    for args in [
        ["-c", "-b", pw_s, "alice", "alicepw"].as_slice(),
        ["-b", pw_s, "bob", "bobpw"].as_slice(),
    ] {
        let out = our_passwd(args, "");
        assert!(out.status.success(), "{out:?}");
    }
    let acl = dir.file("acl", ACL);
    BrokerProcess::start_with(&auth_section(Some(&pw), Some(&acl), ""))
}

#[test]
fn mosquitto_clients_see_acl_denials() {
    if !require("mosquitto_pub") || !require("mosquitto_sub") {
        return;
    }
    let dir = TempDir::new("acl-mosquitto");
    let b = acl_broker(&dir);
    let port = b.port();
    for (v, denied) in [("mqttv311", "128"), ("mqttv5", "135")] {
        let out = run(
            Command::new("mosquitto_sub").args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-V",
                v,
                "-u",
                "alice",
                "-P",
                "alicepw",
                "-d",
                "-W",
                "2",
                "-t",
                "alice/x",
                "-t",
                "bob/#",
            ]),
            TIMEOUT,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("Subscribed (mid: 1): 0, {denied}")),
            "{v}: {out:?}"
        );
        let out = run(
            Command::new("mosquitto_sub").args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-V",
                v,
                "-u",
                "alice",
                "-P",
                "alicepw",
                "-W",
                "2",
                "-t",
                "bob/#",
            ]),
            TIMEOUT,
        );
        assert!(
            stderr(&out).contains("All subscription requests were denied"),
            "{v}: {out:?}"
        );
    }
    // A 5.0 publish to a denied topic is answered with 0x87.
    let out = publish(b.addr.port(), "mqttv5", Some(("alice", "alicepw")), "bob/x");
    assert!(
        stderr(&out).contains("Publish 1 failed: Not authorized"),
        "{out:?}"
    );
    let out = publish(
        b.addr.port(),
        "mqttv5",
        Some(("alice", "alicepw")),
        "alice/x",
    );
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
}

/// One paho client per role; prints what it saw as `key value` lines.
const PAHO_SCRIPT: &str = r##"
import os, sys, threading, queue
import paho.mqtt.client as mqtt

PORT = int(sys.argv[1])
V5 = sys.argv[2] == "5"
WAIT = 10.0

def fail(what):
    print("FAILED: " + what, file=sys.stderr, flush=True)
    os._exit(1)

watchdog = threading.Timer(25.0, fail, args=("the script's watchdog",))
watchdog.daemon = True
watchdog.start()

def code(rc):
    return getattr(rc, "value", rc)

def get(q, what, timeout=WAIT):
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        fail("timed out waiting for " + what)

class Peer(mqtt.Client):
    """paho's client; also records each PUBACK's reason code, which paho
    1.6 reads but does not pass to on_publish."""
    def __init__(self, cid):
        if V5:
            super().__init__(client_id=cid, protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        else:
            super().__init__(client_id=cid, clean_session=True, protocol=mqtt.MQTTv311,
                             reconnect_on_failure=False)
        self.connacks, self.subacks, self.msgs, self.pubacks = (queue.Queue() for _ in range(4))
        self.on_connect = lambda c, u, f, rc, p=None: self.connacks.put(code(rc))
        self.on_subscribe = lambda c, u, mid, codes, p=None: self.subacks.put(
            [code(x) for x in codes])
        self.on_message = lambda c, u, m: self.msgs.put((m.topic, m.payload.decode()))

    def _handle_pubackcomp(self, cmd):
        if cmd == "PUBACK":
            packet = self._in_packet["packet"]
            self.pubacks.put(packet[2] if len(packet) > 2 else 0)
        return super()._handle_pubackcomp(cmd)

    def start(self, user=None, password=None):
        if user is not None:
            self.username_pw_set(user, password)
        self.connect("127.0.0.1", PORT, keepalive=30)
        self.loop_start()
        return get(self.connacks, "CONNACK")

def connect_only(user, password):
    p = Peer("")
    rc = p.start(user, password)
    p.loop_stop()
    p.disconnect()
    return rc

if sys.argv[3] == "connect":
    print("right", connect_only("alice", "alicepw"), flush=True)
    print("wrong", connect_only("alice", "bobpw"), flush=True)
    print("unknown", connect_only("mallory", "x"), flush=True)
    print("anonymous", connect_only(None, None), flush=True)
else:
    bob = Peer("reader")
    assert bob.start("bob", "bobpw") == 0
    bob.subscribe("#", qos=1)
    print("bob_suback", get(bob.subacks, "bob's SUBACK"), flush=True)
    alice = Peer("dev1")
    assert alice.start("alice", "alicepw") == 0
    alice.subscribe([("alice/x", 1), ("bob/#", 1)])
    print("alice_suback", get(alice.subacks, "alice's SUBACK"), flush=True)
    for topic in ["bob/x", "clients/dev2/x", "clients/dev1/x", "alice/y"]:
        alice.publish(topic, "from alice", qos=1).wait_for_publish(WAIT)
    print("pubacks", [get(alice.pubacks, "PUBACK") for _ in range(4)], flush=True)
    got = [get(bob.msgs, "a message for bob")[0] for _ in range(2)]
    try:
        got.append(bob.msgs.get(timeout=0.5)[0])
    except queue.Empty:
        pass
    print("bob_got", got, flush=True)
    alice.disconnect()
    bob.disconnect()
"##;

fn paho(python: &Path, port: u16, version: &str, scenario: &str) -> Vec<String> {
    let out = run(
        Command::new(python).args(["-c", PAHO_SCRIPT, &port.to_string(), version, scenario]),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "paho {version} {scenario}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn paho_sees_the_connack_codes() {
    let Some(python) = paho_python() else { return };
    let dir = TempDir::new("paho-connect");
    let b = acl_broker(&dir);
    assert_eq!(
        paho(&python, b.addr.port(), "311", "connect"),
        ["right 0", "wrong 4", "unknown 4", "anonymous 5"]
    );
    assert_eq!(
        paho(&python, b.addr.port(), "5", "connect"),
        ["right 0", "wrong 134", "unknown 134", "anonymous 135"]
    );
}

#[test]
fn paho_sees_acl_denials_and_denied_messages_are_not_delivered() {
    let Some(python) = paho_python() else { return };
    let dir = TempDir::new("paho-acl");
    let b = acl_broker(&dir);
    // 3.1.1 has no negative PUBACK: the denied message is acknowledged and dropped.
    assert_eq!(
        paho(&python, b.addr.port(), "311", "acl"),
        [
            "bob_suback [1]",
            "alice_suback [1, 128]",
            "pubacks [0, 0, 0, 0]",
            "bob_got ['clients/dev1/x', 'alice/y']",
        ]
    );
    assert_eq!(
        paho(&python, b.addr.port(), "5", "acl"),
        [
            "bob_suback [1]",
            "alice_suback [1, 135]",
            "pubacks [135, 135, 0, 0]",
            "bob_got ['clients/dev1/x', 'alice/y']",
        ]
    );
}
