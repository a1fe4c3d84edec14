//! The driver's side of MQTT 5.0 enhanced authentication (section 4.12):
//! the server's AUTH steps answered by the mechanism, the CONNACK's data
//! checked by it, and a refusal turned into DISCONNECT.

use core::mem;

use bytes::Bytes;
use mqtt_session::mqtt_codec::{AuthProps, ReasonCode};
use mqtt_session::Instant;

use super::{ClientDriver, ReplySender};
use crate::auth::{AuthError, EnhancedAuth};

impl<K: ReplySender> ClientDriver<K> {
    /// A step of enhanced authentication from the server: AUTH 0x18
    /// during the exchange, answered with the mechanism's next data. Any
    /// other AUTH (0x00 before CONNACK, 0x19, anything after CONNACK: this
    /// client never starts re-authentication) is a protocol error.
    pub(super) fn on_auth(&mut self, now: Instant, reason: ReasonCode, props: AuthProps) {
        let (Some(conn), Some(auth)) = (self.conn.as_mut(), self.auth.as_mut()) else {
            return;
        };
        if !self.authenticating || reason != ReasonCode::CONTINUE_AUTHENTICATION {
            return self.fail_auth(now, AuthError::UnexpectedAuth(reason));
        }
        let sent = auth
            .step(props.authentication_data.as_deref())
            .and_then(|data| {
                let mut answer = AuthProps::default();
                // The same method throughout the exchange [MQTT-4.12.0-5]
                // (the session checked the server's).
                answer.authentication_method = props.authentication_method;
                answer.authentication_data = Some(Bytes::from(data));
                // The client's answer to AUTH is AUTH 0x18 [MQTT-4.12.0-3].
                conn.auth(now, ReasonCode::CONTINUE_AUTHENTICATION, answer)
                    .map_err(AuthError::Unsendable)
            });
        if let Err(e) = sent {
            self.fail_auth(now, e);
        }
    }

    /// At CONNACK: whether the mechanism accepts the server's last word
    /// (SCRAM: its signature proves it knows the credential, RFC 5802 §3);
    /// if not, the connection ends here and is not reported as connected.
    pub(super) fn verify_server(&mut self, now: Instant, data: Option<Bytes>) -> bool {
        if !mem::take(&mut self.authenticating) {
            return true;
        }
        let Some(auth) = self.auth.as_mut() else {
            return true;
        };
        match auth.finish(data.as_deref()) {
            Ok(()) => true,
            Err(e) => {
                self.fail_auth(now, e);
                false
            }
        }
    }

    /// The exchange failed on this side: DISCONNECT with the error's reason
    /// code (the client may end the exchange at any point, MQTT 5.0 section
    /// 4.12), and the error kept for [`connect_error`](Self::connect_error).
    fn fail_auth(&mut self, now: Instant, error: AuthError) {
        self.authenticating = false;
        if let Some(conn) = self.conn.as_mut() {
            conn.disconnect(now, error.disconnect_reason());
        }
        self.auth_failure = Some(error);
    }
}
