//! The tokio client's `.scram(user, password)` over a real loopback socket
//! against a server whose application runs `mqtt_broker::scram` on a
//! `mqtt-session` server connection: CONNECT with the client-first message,
//! AUTH 0x18 both ways, CONNACK with the server-final message. Checks the
//! adapter's part (a fresh nonce from the operating system per connection)
//! and the wire format of the whole exchange, ahead of the broker's own
//! wiring of enhanced authentication.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_broker::scram::{Mechanism, ScramCredentials, ScramServer};
use mqtt_codec::{AuthProps, ConnAckProps, ReasonCode, Str};
use mqtt_session::{Connection, Instant, Server, ServerConfig, ServerEvent};
use mqtt_tokio::{
    mqtt_client::{AuthError, ScramClientError},
    Client, ConnectOptions, OptionSetters,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves one connection with SCRAM-SHA-256 for alice/"pencil"; a server
/// that `lies` answers CONNACK with a server signature of its own making.
async fn serve(mut socket: TcpStream, lies: bool) {
    let mut file = ScramCredentials::new();
    file.set_password("alice", Mechanism::Sha256, b"pencil", 4096)
        .unwrap();
    let scram = ScramServer::new(Mechanism::Sha256, file, [9; 32]);
    let now = Instant::ZERO;
    let mut conn = Connection::<Server>::new(ServerConfig::default(), now);
    let mut pending = None;
    let method = || Some(Str::from_static("SCRAM-SHA-256"));
    let mut rbuf = BytesMut::new();
    // Bounded: an exchange is three round trips.
    for _ in 0..20 {
        let mut chunk = [0u8; 4096];
        let n = match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        rbuf.extend_from_slice(&chunk[..n]);
        conn.handle_read(now, &mut rbuf);
        while let Some(ev) = conn.poll_event() {
            match ev {
                ServerEvent::Connect(c) => {
                    let data = c.props.authentication_data.clone().unwrap_or_default();
                    let (first, p) = scram.start(&data, b"server-nonce-part").unwrap();
                    pending = Some(p);
                    let mut props = AuthProps::default();
                    props.authentication_method = method();
                    props.authentication_data = Some(Bytes::from(first));
                    conn.auth(now, ReasonCode::CONTINUE_AUTHENTICATION, props)
                        .unwrap();
                }
                ServerEvent::Auth { props, .. } => {
                    let data = props.authentication_data.unwrap_or_default();
                    match pending.take().unwrap().finish(&data) {
                        Ok((fin, user)) => {
                            assert_eq!(user, "alice");
                            let fin = if lies { b"v=AAAA".to_vec() } else { fin };
                            let mut ack = ConnAckProps::default();
                            ack.authentication_method = method();
                            ack.authentication_data = Some(Bytes::from(fin));
                            conn.accept(now, None, ack).unwrap();
                        }
                        Err(e) => conn.reject(now, e.reason_code()),
                    }
                }
                _ => {}
            }
        }
        let mut out = BytesMut::new();
        let _ = conn.poll_transmit(now, &mut out);
        if socket.write_all(&out).await.is_err() || conn.is_closed() {
            return;
        }
    }
}

/// Connects `password` to a fresh server: the client's outcome.
async fn login(password: &str, lies: bool) -> Result<(), mqtt_tokio::ConnectError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        serve(socket, lies).await;
    });
    let options = ConnectOptions::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .client_id("scram-test")
        .connect_timeout(Duration::from_secs(10))
        .scram("alice", password);
    let result = Client::connect(options).await.map(|_| ());
    server.abort();
    result
}

#[tokio::test]
async fn the_tokio_client_logs_in_with_scram() {
    login("pencil", false).await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_bad_user_name_or_password() {
    let e = login("crayon", false).await.unwrap_err();
    assert_eq!(e.reason_code(), Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD));
}

#[tokio::test]
async fn a_server_that_does_not_know_the_credential_is_not_trusted() {
    let e = login("pencil", true).await.unwrap_err();
    assert!(
        matches!(
            e,
            mqtt_tokio::ConnectError::Protocol(
                mqtt_tokio::mqtt_client::ConnectError::Authentication(AuthError::Scram(
                    ScramClientError::ServerSignature
                ))
            )
        ),
        "{e}"
    );
}
