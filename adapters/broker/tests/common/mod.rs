//! Starting the broker binary on a free loopback port, and finding the real
//! peers (Mosquitto's clients, Python paho-mqtt) the tests drive it with.

// Each test file uses part of this module, as its own crate.
#![allow(dead_code, unreachable_pub)]

pub mod pki;
pub mod raw;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A broker process, killed when dropped.
pub struct BrokerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The folder holding its configuration file, removed on drop.
    dir: PathBuf,
}

impl BrokerProcess {
    /// Starts `mqtt-broker` with `config` (TOML text, `{port}` replaced) on a
    /// free port, and waits until it accepts connections.
    pub fn start_with(config: &str) -> BrokerProcess {
        Self::start_on(free_port(), config)
    }

    /// Like [`BrokerProcess::start_with`], on `port` (to start a broker
    /// again where clients expect it).
    pub fn start_on(port: u16, config: &str) -> BrokerProcess {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = std::env::temp_dir().join(format!("mqtt-broker-test-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broker.toml");
        let config = format!(
            "[[listener]]\nbind = \"127.0.0.1:{port}\"\n\n{}",
            config.replace("{port}", &port.to_string())
        );
        std::fs::write(&path, config).unwrap();
        let child = broker_command()
            .arg("-c")
            .arg(&path)
            .arg("--seed")
            .arg("7")
            // `TEST_BROKER_LOG` (filter directives) when a failing test's
            // broker log needs more than warnings.
            .env(
                "RUST_LOG",
                std::env::var("TEST_BROKER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("the broker binary starts");
        let mut broker = BrokerProcess { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            let exited = broker.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                let log =
                    std::fs::read_to_string(broker.dir.join("stderr.log")).unwrap_or_default();
                panic!("the broker did not start listening on {addr} (exit: {exited:?}); its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }

    /// Starts the broker on `port` with its store in `data_dir`.
    pub fn start_durable(port: u16, data_dir: &std::path::Path, config: &str) -> BrokerProcess {
        let config = format!(
            "{config}\n[persistence]\npath = {:?}\n",
            data_dir.display().to_string()
        );
        Self::start_on(port, &config)
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the broker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// Waits (bounded) for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "the broker did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the broker with the default limits and `$SYS` every second.
    pub fn start() -> BrokerProcess {
        Self::start_with("[sys]\ninterval = 1\n")
    }

    /// The port, as text for command lines.
    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the broker did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The broker binary, as a command.
pub fn broker_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mqtt-broker"))
}

/// Runs the broker with `args` expecting it to refuse to start: its exit
/// status (bounded in time) and what it logged.
pub fn start_refused(args: &[&str]) -> (std::process::ExitStatus, String) {
    let out = run(broker_command().args(args), Duration::from_secs(10));
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status, log)
}

/// A directory of its own for one test, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("mqtt-broker-data-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub mod nats;
pub mod raw_client;

#[path = "../../../testkit/src/ports.rs"]
mod ports;
pub use ports::free_port;

/// Whether a program is on the PATH. With `CI=true` a missing real peer fails
/// the test instead of skipping it: CI installs them all.
pub fn require(program: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is required when CI=true (apt-get install mosquitto mosquitto-clients python3-paho-mqtt systemd nats-server)"
        );
        eprintln!("skipping: {program} is not installed");
    }
    found
}

/// Python with paho-mqtt: Debian's python3 (the package python3-paho-mqtt).
pub fn paho_python() -> Option<PathBuf> {
    for python in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(python)
            .arg("-c")
            .arg("import paho.mqtt.client")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(PathBuf::from(python));
        }
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "python3-paho-mqtt is required when CI=true"
    );
    eprintln!("skipping: paho-mqtt is not installed");
    None
}

/// Runs a command to completion within `timeout`, killing it past that.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("the command's output")
}

/// A child process that is killed when dropped (a subscriber left running).
pub struct Running(pub Child);

impl Running {
    /// Starts `cmd` with its output captured.
    pub fn spawn(cmd: &mut Command) -> Running {
        Running(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the command starts"),
        )
    }

    /// Waits (bounded) for the process to end and returns its standard output.
    pub fn output_within(mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        let mut out = String::new();
        if let Some(mut s) = self.0.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        out
    }
}

impl Running {
    /// Like [`Running::output_within`], with the standard error too.
    pub fn output_and_errors_within(mut self, timeout: Duration) -> (String, String) {
        let mut err = String::new();
        let stderr = self.0.stderr.take();
        let out = self.output_within(timeout);
        if let Some(mut s) = stderr {
            let _ = s.read_to_string(&mut err);
        }
        (out, err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
