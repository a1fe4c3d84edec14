//! A one-connection server speaking MQTT 5.0 enhanced authentication with
//! SCRAM-SHA-256, for the client adapters' tests of `.scram(user,
//! password)`: the reference broker does not run SCRAM on the wire yet, so
//! this drives `mqtt_broker::scram` over a `mqtt-session` server connection
//! on a thread of its own, with std sockets.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_broker::scram::{Mechanism, ScramCredentials, ScramServer};
use mqtt_session::mqtt_codec::{AuthProps, ConnAckProps, ReasonCode, Str};
use mqtt_session::{Connection, Instant, Server, ServerConfig, ServerEvent};

/// How long the server waits for each read before giving up.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts a server for one connection that knows `user` with `password`
/// (SCRAM-SHA-256, 4096 iterations): its `mqtt://` address, and the thread,
/// which ends with the connection and gives the user name it authenticated
/// (`None` if the exchange failed).
pub fn scram_broker(user: &str, password: &str) -> (String, JoinHandle<Option<String>>) {
    let mut file = ScramCredentials::new();
    file.set_password(user, Mechanism::Sha256, password.as_bytes(), 4096)
        .expect("a credential");
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!("mqtt://{}", listener.local_addr().expect("its address"));
    let handle = std::thread::spawn(move || {
        let (socket, _) = listener.accept().ok()?;
        serve(socket, ScramServer::new(Mechanism::Sha256, file, [3; 32]))
    });
    (url, handle)
}

/// Runs the exchange, then keeps the connection until the client leaves.
fn serve(mut socket: TcpStream, scram: ScramServer<ScramCredentials>) -> Option<String> {
    socket.set_read_timeout(Some(READ_TIMEOUT)).ok()?;
    let now = Instant::ZERO;
    let mut conn = Connection::<Server>::new(ServerConfig::default(), now);
    let mut pending = None;
    let mut user = None;
    let mut rbuf = BytesMut::new();
    // Bounded: the exchange is three round trips, then a disconnect.
    for _ in 0..50 {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).ok().filter(|&n| n > 0)?;
        rbuf.extend_from_slice(&chunk[..n]);
        conn.handle_read(now, &mut rbuf);
        while let Some(ev) = conn.poll_event() {
            match ev {
                ServerEvent::Connect(c) => {
                    let data = c.props.authentication_data.clone().unwrap_or_default();
                    match scram.start(&data, b"testkit-server-nonce") {
                        Ok((first, p)) => {
                            pending = Some(p);
                            let props = auth_props(first);
                            conn.auth(now, ReasonCode::CONTINUE_AUTHENTICATION, props)
                                .ok()?;
                        }
                        Err(e) => conn.reject(now, e.reason_code()),
                    }
                }
                ServerEvent::Auth { props, .. } => {
                    let data = props.authentication_data.unwrap_or_default();
                    match pending.take()?.finish(&data) {
                        Ok((fin, name)) => {
                            user = Some(name);
                            let mut ack = ConnAckProps::default();
                            ack.authentication_method = Some(Str::from_static("SCRAM-SHA-256"));
                            ack.authentication_data = Some(Bytes::from(fin));
                            conn.accept(now, None, ack).ok()?;
                        }
                        Err(e) => conn.reject(now, e.reason_code()),
                    }
                }
                ServerEvent::Closed(_) => {
                    let mut out = BytesMut::new();
                    let _ = conn.poll_transmit(now, &mut out);
                    let _ = socket.write_all(&out);
                    return user;
                }
                _ => {}
            }
        }
        let mut out = BytesMut::new();
        let _ = conn.poll_transmit(now, &mut out);
        socket.write_all(&out).ok()?;
        if conn.is_closed() {
            return user;
        }
    }
    None
}

fn auth_props(data: Vec<u8>) -> AuthProps {
    let mut props = AuthProps::default();
    props.authentication_method = Some(Str::from_static("SCRAM-SHA-256"));
    props.authentication_data = Some(Bytes::from(data));
    props
}
