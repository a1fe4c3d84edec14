//! Running `mqtt` and Mosquitto's tools as processes against a broker, side
//! by side, bounded in time and killed when dropped.

// Each test file uses part of this module, as its own crate.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mqtt_tokio::{
    Client, ConnectOptions, OptionSetters, ProtocolVersion, QoS, ReasonCode, Requests,
};

/// How long any one process may run.
pub const LIMIT: Duration = Duration::from_secs(15);

/// The `mqtt` binary under test.
pub fn mqtt() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mqtt"))
}

/// Whether Mosquitto's client tools are installed. With `CI=true` a missing
/// tool fails the test instead of skipping it: CI installs them.
pub fn mosquitto_tools() -> bool {
    ["mosquitto_pub", "mosquitto_sub", "mosquitto_rr"]
        .iter()
        .all(|tool| {
            let found = Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {tool}"))
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !found {
                assert!(
                    !mqtt_testkit::in_ci(),
                    "{tool} is required when CI=true (apt-get install mosquitto-clients)"
                );
                eprintln!("skipping: {tool} is not installed");
            }
            found
        })
}

/// A process's exit status and what it printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Finished {
    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Standard output as text, for assertion messages.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A running process, killed when dropped.
pub struct Running {
    child: Child,
    name: String,
}

impl Running {
    /// Starts `cmd` with piped standard output and error, and `stdin` as
    /// its standard input.
    pub fn start(mut cmd: Command, stdin: &[u8]) -> Running {
        let name = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        let mut input = child.stdin.take().expect("a standard input");
        input.write_all(stdin).expect("standard input written");
        drop(input);
        Running { child, name }
    }

    /// Whether the process has ended.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits (at most [`LIMIT`]) for the process to end; panics past that.
    pub fn finish(mut self) -> Finished {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self
                .child
                .try_wait()
                .expect("the process can be waited for")
            {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not end in time",
                self.name
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stdout = Vec::new();
        let mut stderr = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_end(&mut stdout).expect("standard output read");
        }
        if let Some(mut err) = self.child.stderr.take() {
            err.read_to_string(&mut stderr)
                .expect("standard error read");
        }
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end with `stdin`, bounded by [`LIMIT`].
pub fn run(cmd: Command, stdin: &[u8]) -> Finished {
    Running::start(cmd, stdin).finish()
}

/// One of Mosquitto's tools with `-h 127.0.0.1 -p PORT` and `args`.
pub fn tool(program: &str, broker: SocketAddr, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(["-h", "127.0.0.1", "-p", &broker.port().to_string()]);
    cmd.args(args);
    cmd
}

/// `mqtt <sub> -h 127.0.0.1 -p PORT args` (`sub` is `pub`, `sub` or `rr`).
pub fn ours(sub: &str, broker: SocketAddr, args: &[&str]) -> Command {
    let mut cmd = mqtt();
    cmd.arg(sub);
    cmd.args(["-h", "127.0.0.1", "-p", &broker.port().to_string()]);
    cmd.args(args);
    cmd
}

/// A 5.0 client in this process, for waiting on subscribers and answering
/// requests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Waits until every topic of `probes` has a subscriber: a 5.0 QoS 1
/// publish to it is acknowledged with success rather than 0x10 "no
/// matching subscribers". Subscribers filter the probe out with `-T`.
pub fn wait_subscribed(broker: SocketAddr, probes: &[&str]) {
    runtime().block_on(async {
        let options = ConnectOptions::new(&format!("mqtt://{broker}"))
            .unwrap()
            .version(ProtocolVersion::V5);
        let (client, _incoming) = Client::connect(options).await.expect("the probe connects");
        for probe in probes {
            let mut ready = false;
            for _ in 0..300 {
                let reason = client.publish(probe, "", QoS::AtLeastOnce, false).await;
                if reason == Ok(ReasonCode::SUCCESS) {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(ready, "nobody subscribed to {probe} in time");
        }
        let _ = client.disconnect().await;
    });
}

/// A subscriber's arguments: `filter`, and a probe topic it subscribes to
/// but does not print, for [`wait_subscribed`].
pub fn with_probe(probe: &str, filter: &str, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = ["-t", filter, "-t", probe, "-T", probe]
        .iter()
        .map(|s| s.to_string())
        .collect();
    all.extend(args.iter().map(|s| s.to_string()));
    all
}

/// Starts `mqtt sub` and `mosquitto_sub` with the same arguments on
/// `filter`, waits until both are subscribed, runs `publish`, and returns
/// what each printed.
pub fn side_by_side(
    broker: SocketAddr,
    filter: &str,
    args: &[&str],
    publish: impl FnOnce(),
) -> (Finished, Finished) {
    let probe = mqtt_testkit::unique("probe");
    let (probe_ours, probe_theirs) = (format!("{probe}/ours"), format!("{probe}/theirs"));
    let ours_args = with_probe(&probe_ours, filter, args);
    let theirs_args = with_probe(&probe_theirs, filter, args);
    let mut cmd = mqtt();
    cmd.arg("sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args(&ours_args);
    let ours = Running::start(cmd, b"");
    let mut cmd = Command::new("mosquitto_sub");
    cmd.args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args(&theirs_args);
    let theirs = Running::start(cmd, b"");
    wait_subscribed(broker, &[&probe_ours, &probe_theirs]);
    publish();
    (ours.finish(), theirs.finish())
}

/// Asserts that both printed the same bytes and exited alike.
pub fn assert_same(ours: &Finished, theirs: &Finished, what: &str) {
    assert_eq!(
        ours.out(),
        theirs.out(),
        "{what}: mqtt sub (stderr {:?}) and mosquitto_sub (stderr {:?}) differ",
        ours.stderr,
        theirs.stderr
    );
    assert_eq!(ours.stdout, theirs.stdout, "{what}: the bytes differ");
    assert_eq!(ours.code(), theirs.code(), "{what}: the exit codes differ");
}

/// `mosquitto_pub -h 127.0.0.1 -p PORT args`, which must succeed.
pub fn mosquitto_pub(broker: SocketAddr, args: &[&str]) {
    let done = run(tool("mosquitto_pub", broker, args), b"");
    assert_eq!(
        done.code(),
        Some(0),
        "mosquitto_pub {args:?}: {}",
        done.stderr
    );
}

/// `mqtt pub -h 127.0.0.1 -p PORT args` with `stdin`, which must succeed.
pub fn mqtt_pub(broker: SocketAddr, args: &[&str], stdin: &[u8]) {
    let done = run(ours("pub", broker, args), stdin);
    assert_eq!(done.code(), Some(0), "mqtt pub {args:?}: {}", done.stderr);
}

/// The `mqtt-broker` binary of this build, as a process on a free port,
/// killed when dropped. `cargo test --workspace` builds it beside `mqtt`;
/// `cargo test -p mqtt-engine-cli` alone may not (`cargo build -p mqtt-engine-broker`
/// first), so without it a test skips, except under `CI=true`.
pub struct BrokerBinary {
    child: Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl BrokerBinary {
    /// Starts it with its default configuration on a free loopback port.
    pub fn start() -> Option<BrokerBinary> {
        let exe = std::path::Path::new(env!("CARGO_BIN_EXE_mqtt")).with_file_name("mqtt-broker");
        if !exe.exists() {
            assert!(
                !mqtt_testkit::in_ci(),
                "{} is required when CI=true (cargo build -p mqtt-engine-broker)",
                exe.display()
            );
            eprintln!("skipping: {} is not built", exe.display());
            return None;
        }
        let port = mqtt_testkit::free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = std::env::temp_dir().join(mqtt_testkit::unique("mqtt-cli-broker"));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let config = dir.join("broker.toml");
        std::fs::write(&config, format!("[[listener]]\nbind = \"{addr}\"\n")).unwrap();
        let child = Command::new(&exe)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the broker binary starts");
        let broker = BrokerBinary { child, addr, dir };
        assert!(
            mqtt_testkit::wait_listening(addr, Duration::from_secs(10)),
            "the broker binary listens on {addr}"
        );
        Some(broker)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for BrokerBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
