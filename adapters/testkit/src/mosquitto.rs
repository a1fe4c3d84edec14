//! A real Mosquitto broker process on a free loopback port.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, in_ci, wait_listening};

/// Where Debian's `mosquitto` package installs the broker.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// Where Debian's `mosquitto` package installs the dynamic security plugin.
const DYNAMIC_SECURITY: &str = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so";

/// A Mosquitto process, killed when dropped; its configuration folder is
/// removed then too.
#[derive(Debug)]
pub struct Mosquitto {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Mosquitto {
    /// Starts Mosquitto with anonymous access on a free loopback port.
    ///
    /// Returns `None` (after printing a note) when Mosquitto is not installed;
    /// under `CI=true` that panics instead, failing the test.
    pub fn start() -> Option<Mosquitto> {
        Mosquitto::start_with("")
    }

    /// Like [`Mosquitto::start`], with `extra_conf` appended to the generated
    /// configuration (lines of `mosquitto.conf`, applying to the listener,
    /// such as `protocol websockets` or `max_qos 1`).
    pub fn start_with(extra_conf: &str) -> Option<Mosquitto> {
        Mosquitto::start_with_files(extra_conf, &[])
    }

    /// Starts Mosquitto letting anonymous clients subscribe to filters
    /// matching `pattern` only; every other subscription is refused (0x87,
    /// 3.1.1: 0x80). An ACL file cannot do this: Mosquitto 2.0 grants every
    /// subscription it denies and filters deliveries instead, so this uses
    /// the dynamic security plugin.
    pub fn start_allowing_subscriptions(pattern: &str) -> Option<Mosquitto> {
        let dynsec = format!(
            r#"{{"defaultACLAccess":{{"publishClientSend":true,"publishClientReceive":true,"subscribe":false,"unsubscribe":true}},
"clients":[],"groups":[{{"groupname":"anon","roles":[{{"rolename":"reader"}}]}}],"anonymousGroup":"anon",
"roles":[{{"rolename":"reader","acls":[{{"acltype":"subscribePattern","topic":{pattern:?},"allow":true}}]}}]}}"#
        );
        Mosquitto::start_with_files(
            &format!("plugin {DYNAMIC_SECURITY}\nplugin_opt_config_file {{dir}}/dynsec.json"),
            &[("dynsec.json", dynsec.as_bytes())],
        )
    }

    /// Like [`Mosquitto::start_with`], with `files` (name, contents) written
    /// to the instance's own temporary folder first; `{dir}` in `extra_conf`
    /// names that folder (for certificates, password or ACL files).
    pub fn start_with_files(extra_conf: &str, files: &[(&str, &[u8])]) -> Option<Mosquitto> {
        if !Path::new(MOSQUITTO).exists() {
            assert!(
                !in_ci(),
                "{MOSQUITTO} is required when CI=true (apt-get install mosquitto)"
            );
            eprintln!("skipping: {MOSQUITTO} is not installed");
            return None;
        }
        // A port picked free may be taken again before Mosquitto binds it:
        // try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            match Mosquitto::try_start(extra_conf, files) {
                Ok(m) => return Some(m),
                Err(e) => last_error = e,
            }
        }
        panic!("mosquitto did not start: {last_error}");
    }

    fn try_start(extra_conf: &str, files: &[(&str, &[u8])]) -> Result<Mosquitto, String> {
        let port = free_port();
        let dir = Mosquitto::prepare_dir_for(port);
        for (name, contents) in files {
            std::fs::write(dir.join(name), contents).map_err(|e| e.to_string())?;
        }
        let conf = format!(
            "per_listener_settings false\n\
             persistence false\n\
             log_dest stderr\n\
             log_type all\n\
             listener {port} 127.0.0.1\n\
             allow_anonymous true\n\
             {}\n",
            extra_conf.replace("{dir}", &dir.display().to_string())
        );
        let conf_path = dir.join("mosquitto.conf");
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let log = File::create(dir.join("mosquitto.log")).map_err(|e| e.to_string())?;
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut m = Mosquitto {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        if wait_listening(m.addr, Duration::from_secs(10)) && m.is_running() {
            Ok(m)
        } else {
            Err(m.log())
        }
    }

    /// The temporary folder an instance on `port` uses; created empty.
    fn prepare_dir_for(port: u16) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mqtt-testkit-mosquitto-{}-{port}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        dir
    }

    /// This instance's temporary folder (configuration and log live there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mqtt://127.0.0.1:<port>`, the address form the client adapters take.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What Mosquitto logged so far (everything, `log_type all`), for a
    /// failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
