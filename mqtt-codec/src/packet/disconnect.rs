//! DISCONNECT (section 3.14) and AUTH (section 3.15): a reason code and properties,
//! both of which may be omitted on the wire.

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::properties::{block_len, AuthProps, DisconnectProps};
use crate::reason::ReasonCode;
use crate::string::Storage;
use crate::types::{PacketType, ProtocolVersion};
use crate::wire::Reader;

/// DISCONNECT: the end of a connection, from either side under 5.0 (section 3.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect<B = Bytes> {
    /// Why; always normal disconnection under 3.1 and 3.1.1.
    pub reason: ReasonCode,
    /// 5.0 properties; empty under 3.1 and 3.1.1.
    pub props: DisconnectProps<B>,
}

/// AUTH: one step of enhanced authentication, 5.0 only (section 3.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth<B = Bytes> {
    /// Success (0x00), Continue authentication (0x18) or Re-authenticate (0x19).
    pub reason: ReasonCode,
    /// Authentication method, data and diagnostics.
    pub props: AuthProps<B>,
}

impl<B> Disconnect<B> {
    /// A DISCONNECT with a reason code and no properties.
    pub fn new(reason: ReasonCode) -> Self {
        Disconnect {
            reason,
            props: DisconnectProps::default(),
        }
    }
}

impl<B> Default for Disconnect<B> {
    fn default() -> Self {
        Disconnect::new(ReasonCode::NORMAL_DISCONNECTION)
    }
}

/// Reads the optional reason code that opens DISCONNECT and AUTH.
fn read_reason<B: Storage>(
    r: &mut Reader<'_, B>,
    packet: PacketType,
) -> Result<ReasonCode, DecodeError> {
    if r.is_empty() {
        return Ok(ReasonCode::SUCCESS);
    }
    let code = r.u8()?;
    let reason = ReasonCode(code);
    if !reason.valid_for(packet) {
        return Err(DecodeError::InvalidReasonCode { packet, code });
    }
    Ok(reason)
}

/// Size of a reason code plus a property block, either omitted when it can be.
fn reason_and_props_len(
    reason: ReasonCode,
    packet: PacketType,
    props_len: usize,
) -> Result<usize, EncodeError> {
    if !reason.valid_for(packet) {
        return Err(EncodeError::InvalidReasonCode {
            packet,
            code: reason.0,
        });
    }
    Ok(match (reason, props_len) {
        (ReasonCode::SUCCESS, 0) => 0,
        (_, 0) => 1,
        (_, p) => 1 + block_len(p),
    })
}

impl<B: Storage> Disconnect<B> {
    pub(crate) fn read(r: &mut Reader<'_, B>, v: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut d = Disconnect::default();
        if v.is_v5() {
            d.reason = read_reason(r, PacketType::Disconnect)?;
            if !r.is_empty() {
                d.props = DisconnectProps::read(r)?;
            }
        }
        r.finish()?;
        Ok(d)
    }
}

impl<B: AsRef<[u8]>> Disconnect<B> {
    pub(crate) fn body_len(&self, v: ProtocolVersion) -> Result<(usize, usize), EncodeError> {
        if !v.is_v5() {
            if self.reason != ReasonCode::NORMAL_DISCONNECTION {
                return Err(EncodeError::NotInVersion {
                    what: "a DISCONNECT reason code",
                    version: v,
                });
            }
            return Ok((0, 0));
        }
        let p = self.props.len()?;
        Ok((
            reason_and_props_len(self.reason, PacketType::Disconnect, p)?,
            p,
        ))
    }

    pub(crate) fn write(&self, out: &mut impl BufMut, body_len: usize, props_len: usize) {
        if body_len > 0 {
            out.put_u8(self.reason.0);
        }
        if body_len > 1 {
            self.props.write(out, props_len);
        }
    }
}

impl<B: Storage> Auth<B> {
    pub(crate) fn read(r: &mut Reader<'_, B>) -> Result<Self, DecodeError> {
        // Either nothing (success, no properties) or a reason code followed by
        // a property block: AUTH has no reason-only form (section 3.15.2.1).
        if r.is_empty() {
            return Ok(Auth {
                reason: ReasonCode::SUCCESS,
                props: AuthProps::default(),
            });
        }
        let reason = read_reason(r, PacketType::Auth)?;
        let props = AuthProps::read(r)?;
        r.finish()?;
        Ok(Auth { reason, props })
    }
}

impl<B: AsRef<[u8]>> Auth<B> {
    pub(crate) fn body_len(&self) -> Result<(usize, usize), EncodeError> {
        let p = self.props.len()?;
        let n = reason_and_props_len(self.reason, PacketType::Auth, p)?;
        // No reason-only form: a reason code is always followed by a property block.
        Ok((if n == 1 { 1 + block_len(0) } else { n }, p))
    }

    pub(crate) fn write(&self, out: &mut impl BufMut, body_len: usize, props_len: usize) {
        if body_len > 0 {
            out.put_u8(self.reason.0);
        }
        if body_len > 1 {
            self.props.write(out, props_len);
        }
    }
}
