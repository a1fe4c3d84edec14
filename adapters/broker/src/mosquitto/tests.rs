//! Typical Mosquitto configuration files, converted.

use std::net::SocketAddr;
use std::path::Path;

use super::{is_mosquitto_format, Conversion, MosquittoError};
use crate::config::Protocol;
use crate::Config;

fn convert(text: &str) -> Conversion {
    match Conversion::from_text(text, Path::new("m.conf")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn config(text: &str) -> Config {
    convert(text).config().unwrap()
}

fn refused(text: &str) -> String {
    Conversion::from_text(text, Path::new("m.conf"))
        .unwrap_err()
        .to_string()
}

#[test]
fn the_debian_default_file_persists_in_var_lib_and_lists_what_it_leaves_out() {
    let dir = std::env::temp_dir().join(format!("mosq-debian-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("README"),
        "Any files placed in this directory ...\n",
    )
    .unwrap();
    let text = format!(
        "# Place your local configuration in /etc/mosquitto/conf.d/\n\
         pid_file /run/mosquitto/mosquitto.pid\n\n\
         persistence true\n\
         persistence_location /var/lib/mosquitto/\n\n\
         log_dest file /var/log/mosquitto/mosquitto.log\n\n\
         include_dir {}\n",
        dir.display()
    );
    let c = convert(&text);
    let cfg = c.config().unwrap();
    assert_eq!(
        cfg.persistence.data_dir(),
        Some(Path::new("/var/lib/mosquitto/"))
    );
    // No listener: Mosquitto 2's local-only mode, as the built-in default.
    assert_eq!(
        cfg.listeners()[0].bind,
        SocketAddr::from(([127, 0, 0, 1], 1883))
    );
    assert!(cfg.auth.allow_anonymous());
    let lines: Vec<_> = c.remarks().iter().map(|r| (r.line(), r.key())).collect();
    assert_eq!(lines, [(2, "pid_file"), (7, "log_dest")]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_real_debian_file_converts_where_mosquitto_is_installed() {
    let path = Path::new("/etc/mosquitto/mosquitto.conf");
    if !path.exists() {
        // CI installs the mosquitto package: there the file must be read.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is missing with CI=true (apt-get install mosquitto)",
            path.display()
        );
        return;
    }
    let c = Conversion::from_file(path).unwrap();
    assert!(c.toml().contains("[persistence]"), "{}", c.toml());
}

#[test]
fn listeners_with_tls_and_websockets_and_password_file() {
    let cfg = config(
        "listener 1883 127.0.0.1\n\
         listener 8883\n\
         certfile /etc/mosquitto/certs/server.crt\n\
         keyfile /etc/mosquitto/certs/server.key\n\
         cafile /etc/mosquitto/ca_certificates/ca.crt\n\
         require_certificate true\n\
         use_identity_as_username true\n\
         tls_version tlsv1.3\n\
         crlfile /etc/mosquitto/crl.pem\n\
         listener 9001\n\
         protocol websockets\n\
         password_file /etc/mosquitto/passwd\n\
         acl_file /etc/mosquitto/acl\n",
    );
    let l = cfg.listeners();
    assert_eq!(l.len(), 3);
    assert_eq!(l[0].bind, SocketAddr::from(([127, 0, 0, 1], 1883)));
    assert_eq!(l[1].bind, SocketAddr::from(([0, 0, 0, 0], 8883)));
    assert_eq!(l[1].protocol, Protocol::Mqtts);
    assert!(l[1].require_certificate);
    assert!(l[1].use_identity_as_username && !l[1].use_subject_as_username);
    assert_eq!(l[1].tls_version, crate::config::TlsVersion::Tls13);
    assert_eq!(
        l[1].crlfile.as_deref(),
        Some(Path::new("/etc/mosquitto/crl.pem"))
    );
    assert!(!l[2].use_identity_as_username);
    assert_eq!(l[2].protocol, Protocol::Ws);
    // Mosquitto 2: listeners configured, no allow_anonymous line → refused.
    assert!(!cfg.auth.allow_anonymous());
    assert_eq!(
        cfg.auth.acl_file.as_deref(),
        Some(Path::new("/etc/mosquitto/acl"))
    );
}

#[test]
fn the_deprecated_port_and_bind_address_make_the_default_listener() {
    let cfg = config("port 1884\nbind_address 127.0.0.1\nallow_anonymous true\n");
    assert_eq!(
        cfg.listeners()[0].bind,
        SocketAddr::from(([127, 0, 0, 1], 1884))
    );
    assert!(cfg.auth.allow_anonymous());
}

#[test]
fn limits_are_carried_over_and_the_last_line_wins() {
    let cfg = config(
        "listener 1883\nallow_anonymous true\n\
         max_inflight_messages 20\nmax_queued_messages 200\nmax_queued_messages 300\n\
         max_keepalive 120\nmax_qos 1\nretain_available false\n\
         message_size_limit 1000\npersistent_client_expiration 2d\nsys_interval 0\n\
         max_connections 50\nmax_queued_bytes 1048576\n",
    );
    let b = cfg.broker_config(1);
    assert_eq!(b.server.limits.max_inflight, 20);
    assert_eq!(b.server.limits.receive_maximum, 20);
    assert_eq!(b.server.limits.max_queued, 300);
    assert_eq!(b.server.max_keep_alive, Some(120));
    assert_eq!(cfg.limits.maximum_qos, 1);
    assert!(!cfg.limits.retain_available);
    assert_eq!(cfg.limits.max_packet_size, 1000 + 64 * 1024);
    assert_eq!(cfg.limits.max_session_expiry, 2 * 86_400);
    assert_eq!(cfg.limits.max_connections, 50);
    assert_eq!(cfg.limits.max_queued_bytes, 1_048_576);
    assert!(b.sys_interval.is_none());
}

#[test]
fn a_bridge_with_topics_prefixes_and_tls() {
    let cfg = config(
        "connection central\n\
         address central.example.com:8883 backup.example.com:8883\n\
         bridge_cafile /etc/mosquitto/ca.crt\n\
         remote_username site1\n\
         remote_password s3cret pass\n\
         bridge_protocol_version mqttv50\n\
         cleansession true\n\
         keepalive_interval 30\n\
         restart_timeout 5 60\n\
         topic sensors/# out 1 \"\" site1/\n\
         topic # in 2 commands/ commands/site1/\n\
         topic status both\n",
    );
    let b = &cfg.bridges[0];
    assert_eq!(b.name, "central");
    assert_eq!(b.address, "mqtts://central.example.com:8883");
    assert_eq!(b.password.as_deref(), Some("s3cret pass"));
    assert!(b.clean_start);
    assert_eq!(b.keep_alive, 30);
    assert_eq!((b.reconnect_delay, b.reconnect_delay_max), (5.0, 60.0));
    assert_eq!(b.topics.len(), 3);
    assert_eq!(b.topics[0].remote_prefix, "site1/");
    assert_eq!(b.topics[0].local_prefix, "");
    assert_eq!(b.topics[1].qos, 2);
    assert_eq!(b.topics[1].local_prefix, "commands/");
}

#[test]
fn settings_that_would_open_the_broker_are_refused_with_their_line() {
    let e = refused("listener 1883\nauth_plugin /usr/lib/auth.so\n");
    assert!(e.contains("m.conf:2: auth_plugin"), "{e}");
    assert!(refused("per_listener_settings true\n").contains("per-listener"));
    assert!(refused("listener 1883\nmount_point site/\n").contains("mount"));
    assert!(refused("listener 1883\nclientid_prefixes sensor-\n").contains("prefix"));
    assert!(refused("plugin_opt_host localhost\n").contains("plugins"));
}

#[test]
fn bad_values_are_refused_with_their_line() {
    assert!(refused("listener 1883\nmax_qos 3\n").contains("m.conf:2: max_qos"));
    assert!(refused("listener http\n").contains("port"));
    assert!(refused("listener 1883 broker.example.com\n").contains("IP address"));
    assert!(refused("persistent_client_expiration 5x\n").contains("unit"));
    assert!(refused("topic a/#\n").contains("connection"));
    let e = Conversion::from_text("connection x\ntopic a/# sideways\n", Path::new("m.conf"));
    assert!(matches!(e, Err(MosquittoError::Invalid { line: 2, .. })));
}

#[test]
fn unknown_and_ignored_keys_are_listed_and_the_rest_still_runs() {
    let c = convert("listener 1883\nallow_anonymous true\nfrobnicate 7\nautosave_interval 60\n");
    let keys: Vec<_> = c.remarks().iter().map(|r| r.key().to_string()).collect();
    assert_eq!(keys, ["frobnicate", "autosave_interval"]);
    assert!(c.remarks()[0]
        .to_string()
        .starts_with("m.conf:3: frobnicate"));
}

#[test]
fn the_converted_toml_names_each_source_line() {
    let c = convert("listener 1883\nallow_anonymous true\nmax_keepalive 60\n");
    assert!(
        c.toml()
            .contains("max_keep_alive = 60    # m.conf:3: max_keepalive 60"),
        "{}",
        c.toml()
    );
    // And it is the configuration that runs.
    let again = Config::from_toml(c.toml()).unwrap();
    assert_eq!(again.limits.max_keep_alive, 60);
}

#[test]
fn the_format_is_told_by_extension_then_by_the_first_line() {
    assert!(is_mosquitto_format(Path::new("a.conf"), "x = 1"));
    assert!(!is_mosquitto_format(Path::new("a.toml"), "listener 1883"));
    assert!(is_mosquitto_format(
        Path::new("cfg"),
        "# c\nlistener 1883\n"
    ));
    assert!(!is_mosquitto_format(
        Path::new("cfg"),
        "[limits]\nmax_inflight = 3\n"
    ));
    assert!(!is_mosquitto_format(Path::new("cfg"), "a = 1\n"));
}
