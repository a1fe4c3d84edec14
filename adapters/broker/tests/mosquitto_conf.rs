//! The broker binary on Mosquitto configuration files: `-c mosquitto.conf`
//! runs them, `convert` prints them as TOML, `--check` validates them; and
//! Mosquitto's own clients connect as the file says they may.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{broker_command, free_port, require, run, Running, TempDir};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A broker on a Mosquitto file, killed when dropped (passing or not).
fn start(conf: &std::path::Path, port: u16) -> Running {
    let child = broker_command()
        .arg("-c")
        .arg(conf)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the broker starts");
    let mut broker = Running(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + TIMEOUT;
    while TcpStream::connect(addr).is_err() {
        let exited = broker.0.try_wait().ok().flatten();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "the broker did not listen on {addr} ({exited:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    broker
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn convert_prints_toml_and_lists_the_lines_left_out_with_their_numbers() {
    let dir = TempDir::new("convert");
    let conf = dir.0.join("mosquitto.conf");
    std::fs::write(
        &conf,
        "pid_file /run/mosquitto.pid\nlistener 1883\nallow_anonymous true\nmax_keepalive 60\n",
    )
    .unwrap();
    let out = run(broker_command().arg("convert").arg(&conf), TIMEOUT);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("[[listener]]\n"), "{stdout}");
    assert!(stdout.contains("bind = \"0.0.0.0:1883\""), "{stdout}");
    assert!(stdout.contains("max_keep_alive = 60"), "{stdout}");
    assert!(
        stderr.contains("mosquitto.conf:1: pid_file"),
        "the left-out line is named: {stderr}"
    );
    // What convert prints is a configuration the broker takes.
    let toml = dir.0.join("broker.toml");
    std::fs::write(&toml, stdout).unwrap();
    let out = run(
        broker_command().arg("--check").arg("-c").arg(&toml),
        TIMEOUT,
    );
    assert!(out.status.success(), "{:?}", text(&out));
}

#[test]
fn check_accepts_a_good_file_and_names_the_line_or_file_of_a_bad_one() {
    let dir = TempDir::new("check");
    let good = dir.0.join("good.conf");
    std::fs::write(&good, "listener 1883 127.0.0.1\nallow_anonymous true\n").unwrap();
    let out = run(broker_command().args(["--check", "-c"]).arg(&good), TIMEOUT);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("configuration ok"));

    let plugin = dir.0.join("plugin.conf");
    std::fs::write(&plugin, "listener 1883\nauth_plugin /usr/lib/x.so\n").unwrap();
    let out = run(
        broker_command().args(["--check", "-c"]).arg(&plugin),
        TIMEOUT,
    );
    assert!(!out.status.success());
    assert!(
        text(&out).0.contains("plugin.conf:2: auth_plugin"),
        "{:?}",
        text(&out)
    );

    let missing = dir.0.join("missing.conf");
    std::fs::write(
        &missing,
        "listener 1883\npassword_file /nonexistent/passwd\n",
    )
    .unwrap();
    let out = run(
        broker_command().args(["--check", "-c"]).arg(&missing),
        TIMEOUT,
    );
    assert!(!out.status.success());
    assert!(
        text(&out).0.contains("/nonexistent/passwd"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn a_mosquitto_file_with_a_password_file_runs_as_mosquitto_2_would() {
    if !require("mosquitto_pub") {
        return;
    }
    let dir = TempDir::new("mosq-run");
    let passwd = dir.0.join("passwd");
    let out = run(
        broker_command()
            .args(["passwd", "-c", "-b"])
            .arg(&passwd)
            .args(["alice", "wonder"]),
        TIMEOUT,
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let port = free_port();
    let conf = dir.0.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "# as an operator writes it\nlistener {port} 127.0.0.1\npassword_file {}\nlog_type all\n",
            passwd.display()
        ),
    )
    .unwrap();
    let _broker = start(&conf, port);
    let publish = |user: &[&str]| {
        let out = run(
            Command::new("mosquitto_pub")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-t",
                    "t",
                    "-m",
                    "x",
                ])
                .args(user),
            TIMEOUT,
        );
        out.status.success()
    };
    assert!(
        !publish(&[]),
        "Mosquitto 2 refuses anonymous clients once a listener is configured"
    );
    assert!(publish(&["-u", "alice", "-P", "wonder"]));
    assert!(!publish(&["-u", "alice", "-P", "wrong"]));
}
