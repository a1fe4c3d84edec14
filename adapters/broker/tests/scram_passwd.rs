//! `mqtt-broker passwd --scram`: the file it writes is loaded by
//! `ScramCredentials::load` and authenticates mqtt-client's SCRAM client.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mqtt_broker::scram::{Mechanism, ScramCredentials, ScramError, ScramServer};
use mqtt_client::{ScramClient, ScramMechanism};

/// Bounds a hang of the subcommand; 4096 PBKDF2 rounds take milliseconds.
const TIMEOUT: Duration = Duration::from_secs(30);

fn passwd(args: &[&str], stdin: &str) -> Output {
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
    let deadline = Instant::now() + TIMEOUT;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn login(
    file: &Path,
    mechanism: Mechanism,
    user: &str,
    password: &[u8],
) -> Result<String, ScramError> {
    let creds = ScramCredentials::load(file).unwrap();
    let server = ScramServer::new(mechanism, creds, [7; 32]);
    let client_mechanism = match mechanism {
        Mechanism::Sha256 => ScramMechanism::Sha256,
        Mechanism::Sha512 => ScramMechanism::Sha512,
    };
    let mut client = ScramClient::new(client_mechanism, user, password, b"cnonce-abcdef").unwrap();
    let (first, pending) = server.start(&client.first(), b"snonce-uvwxyz")?;
    let (fin, user) = pending.finish(&client.respond(&first).unwrap())?;
    client.verify(&fin).unwrap();
    Ok(user)
}

#[test]
fn passwd_scram_writes_credentials_that_authenticate_and_no_password() {
    let dir = TempDir(std::env::temp_dir().join(format!("mqtt-scram-cli-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("scram");
    let f = file.to_str().unwrap();

    let out = passwd(&["--scram", "sha256", "-c", f, "alice"], "s3cret\ns3cret\n");
    assert!(out.status.success(), "{out:?}");
    let out = passwd(
        &[
            "--scram",
            "sha512",
            "--iterations",
            "5000",
            "-b",
            f,
            "bob",
            "hunter2",
        ],
        "",
    );
    assert!(out.status.success(), "{out:?}");

    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("alice:SCRAM-SHA-256:4096:"), "{text}");
    assert!(text.contains("bob:SCRAM-SHA-512:5000:"), "{text}");
    assert!(!text.contains("s3cret") && !text.contains("hunter2"));

    assert_eq!(
        login(&file, Mechanism::Sha256, "alice", b"s3cret").as_deref(),
        Ok("alice")
    );
    assert_eq!(
        login(&file, Mechanism::Sha512, "bob", b"hunter2").as_deref(),
        Ok("bob")
    );
    assert_eq!(
        login(&file, Mechanism::Sha256, "alice", b"wrong"),
        Err(ScramError::BadCredentials)
    );

    // Too few iterations: refused, file unchanged.
    let out = passwd(
        &[
            "--scram",
            "sha256",
            "--iterations",
            "100",
            "-b",
            f,
            "carol",
            "x",
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("100 iterations"),
        "{out:?}"
    );

    // Deleting bob's SHA-512 line.
    let out = passwd(&["--scram", "sha512", "-D", f, "bob"], "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        login(&file, Mechanism::Sha512, "bob", b"hunter2"),
        Err(ScramError::BadCredentials)
    );
    let out = passwd(&["--scram", "sha512", "-D", f, "bob"], "");
    assert!(!out.status.success());
}
