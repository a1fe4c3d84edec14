//! The packaging files: the systemd unit passes `systemd-analyze verify`
//! with no complaint, and the configuration files shipped beside it are
//! ones the broker takes (`--check`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{broker_command, require, run, TempDir};

const TIMEOUT: Duration = Duration::from_secs(30);

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging")
        .join(file)
}

#[test]
fn the_systemd_unit_verifies_without_a_warning() {
    if !require("systemd-analyze") {
        return;
    }
    let dir = TempDir::new("unit");
    // verify wants the programs it starts to exist: the unit as shipped,
    // with the binary under test where /usr/bin/mqtt-broker stands.
    let unit = std::fs::read_to_string(packaging("mqtt-broker.service")).unwrap();
    let unit = unit.replace("/usr/bin/mqtt-broker", env!("CARGO_BIN_EXE_mqtt-broker"));
    let path = dir.0.join("mqtt-broker.service");
    std::fs::write(&path, unit).unwrap();
    let out = run(
        std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path),
        TIMEOUT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze complains:\n{stderr}"
    );
}

#[test]
fn the_shipped_configuration_files_are_ones_the_broker_takes() {
    let dir = TempDir::new("shipped");
    // broker.toml names a password file: made here, pointed at.
    let passwd = dir.0.join("passwd");
    let out = run(
        broker_command()
            .args(["passwd", "-c", "-b"])
            .arg(&passwd)
            .args(["alice", "x"]),
        TIMEOUT,
    );
    assert!(out.status.success());
    let text = std::fs::read_to_string(packaging("broker.toml"))
        .unwrap()
        .replace("/etc/mqtt-broker/passwd", &passwd.display().to_string());
    let broker = dir.0.join("broker.toml");
    std::fs::write(&broker, text).unwrap();
    for file in [broker, packaging("docker.toml")] {
        let out = run(
            broker_command().arg("--check").arg("-c").arg(&file),
            TIMEOUT,
        );
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
