//! A one-connection server speaking a toy MQTT 5.0 enhanced authentication
//! method, for the client adapters' tests of `.enhanced_auth(...)` (the
//! reference broker offers only SCRAM): `TOY-REVERSE`, whose client answers
//! each challenge (AUTH 0x18) with its bytes reversed and expects the
//! CONNACK's Authentication Data to be `welcome`. A mqtt-session server
//! connection on a thread of its own, with std sockets.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_session::mqtt_codec::{AuthProps, ConnAckProps, ReasonCode, Str};
use mqtt_session::{Connection, Initiator, Instant, Server, ServerConfig, ServerEvent};

/// The Authentication Method of the toy mechanism.
pub const TOY_METHOD: &str = "TOY-REVERSE";

/// The challenges the server sends, one AUTH 0x18 each.
pub const TOY_CHALLENGES: [&[u8]; 2] = [b"abc", b"mqtt-5"];

/// How long the server waits for each read before giving up.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the toy server saw of its one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToyOutcome {
    /// The client answered every challenge right and got CONNACK 0x00.
    pub accepted: bool,
    /// The reason code of the client's DISCONNECT, if it sent one.
    pub client_disconnect: Option<ReasonCode>,
}

/// Starts a server for one connection of the toy method: its `mqtt://`
/// address, and the thread, which ends with the connection. A server that
/// `lies` accepts with `hello` instead of `welcome` in CONNACK.
pub fn toy_auth_broker(lies: bool) -> (String, JoinHandle<ToyOutcome>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!("mqtt://{}", listener.local_addr().expect("its address"));
    let handle = std::thread::spawn(move || {
        let mut outcome = ToyOutcome::default();
        if let Ok((socket, _)) = listener.accept() {
            serve(socket, lies, &mut outcome);
        }
        outcome
    });
    (url, handle)
}

fn props(data: &[u8]) -> AuthProps {
    let mut props = AuthProps::default();
    props.authentication_method = Some(Str::from_static(TOY_METHOD));
    props.authentication_data = Some(Bytes::copy_from_slice(data));
    props
}

/// Runs the exchange, then keeps the connection until the client leaves.
fn serve(mut socket: TcpStream, lies: bool, outcome: &mut ToyOutcome) -> Option<()> {
    socket.set_read_timeout(Some(READ_TIMEOUT)).ok()?;
    let now = Instant::ZERO;
    let mut conn = Connection::<Server>::new(ServerConfig::default(), now);
    let mut round = 0;
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
                    let method = c.props.authentication_method.as_ref().map(|m| m.as_str());
                    if method != Some(TOY_METHOD) {
                        conn.reject(now, ReasonCode::BAD_AUTHENTICATION_METHOD);
                        continue;
                    }
                    let challenge = props(TOY_CHALLENGES[0]);
                    conn.auth(now, ReasonCode::CONTINUE_AUTHENTICATION, challenge)
                        .ok()?;
                }
                ServerEvent::Auth { props: p, .. } => {
                    let answer = p.authentication_data.unwrap_or_default();
                    let expected: Vec<u8> =
                        TOY_CHALLENGES.get(round)?.iter().rev().copied().collect();
                    if answer[..] != expected[..] {
                        conn.reject(now, ReasonCode::NOT_AUTHORIZED);
                        continue;
                    }
                    round += 1;
                    if let Some(next) = TOY_CHALLENGES.get(round) {
                        conn.auth(now, ReasonCode::CONTINUE_AUTHENTICATION, props(next))
                            .ok()?;
                    } else {
                        let mut ack = ConnAckProps::default();
                        ack.authentication_method = Some(Str::from_static(TOY_METHOD));
                        let last: &'static [u8] = if lies { b"hello" } else { b"welcome" };
                        ack.authentication_data = Some(Bytes::from_static(last));
                        conn.accept(now, None, ack).ok()?;
                        outcome.accepted = true;
                    }
                }
                ServerEvent::Closed(close) => {
                    if close.initiator == Initiator::Peer {
                        outcome.client_disconnect = Some(close.reason);
                    }
                    return Some(());
                }
                _ => {}
            }
        }
        let mut out = BytesMut::new();
        let _ = conn.poll_transmit(now, &mut out);
        socket.write_all(&out).ok()?;
        if conn.is_closed() {
            return Some(());
        }
    }
    None
}
