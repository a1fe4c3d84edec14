//! A cluster of `nats-server` processes with JetStream on loopback, for the
//! broker's cluster tests: each server on free ports, routes to the
//! others, its JetStream data in a directory of its own; killed and
//! removed when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// One `nats-server` process.
pub struct NatsServer {
    child: Option<Child>,
    /// Where clients connect.
    pub client_port: u16,
    dir: PathBuf,
}

impl NatsServer {
    /// The client address, as a URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// Kills the server with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `n` servers routed to each other as one cluster with JetStream.
pub struct NatsCluster {
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `n` servers and waits until each accepts connections (their
    /// JetStream meta leader may take a few seconds more: the brokers try
    /// again until their bucket can be made).
    pub fn start(n: usize) -> NatsCluster {
        let client: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let route: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let routes = route
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut servers = Vec::new();
        for i in 0..n {
            let dir = std::env::temp_dir().join(format!(
                "mqtt-broker-nats-{}-{}",
                std::process::id(),
                client[i]
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let log = std::fs::File::create(dir.join("nats.log")).unwrap();
            let mut cmd = Command::new("nats-server");
            cmd.args(["-a", "127.0.0.1", "-p", &client[i].to_string()])
                .args(["-n", &format!("s{i}"), "-js", "-sd"])
                .arg(dir.join("js"));
            if n > 1 {
                cmd.args(["--cluster_name", "mqtt-test"])
                    .args(["--cluster", &format!("nats://127.0.0.1:{}", route[i])])
                    .args(["--routes", &routes]);
            }
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("nats-server starts");
            servers.push(NatsServer {
                child: Some(child),
                client_port: client[i],
                dir,
            });
        }
        for s in &servers {
            let addr = SocketAddr::from(([127, 0, 0, 1], s.client_port));
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(addr).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "nats-server did not start on {addr}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        NatsCluster { servers }
    }

    /// Every server's URL, as a TOML array, the `i`th first.
    pub fn urls_from(&self, i: usize) -> String {
        let n = self.servers.len();
        let urls: Vec<String> = (0..n)
            .map(|k| format!("{:?}", self.servers[(i + k) % n].url()))
            .collect();
        format!("[{}]", urls.join(", "))
    }
}
