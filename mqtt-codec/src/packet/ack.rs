//! PUBACK, PUBREC, PUBREL and PUBCOMP (sections 3.4 to 3.7): one shape, four packets.

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::properties::{block_len, AckProps};
use crate::reason::ReasonCode;
use crate::string::Storage;
use crate::types::{PacketId, PacketType, ProtocolVersion};
use crate::wire::Reader;

/// The body of PUBACK, PUBREC, PUBREL and PUBCOMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack<B = Bytes> {
    /// The packet identifier of the PUBLISH (or PUBREL) being answered.
    pub id: PacketId,
    /// The outcome; always success under 3.1 and 3.1.1.
    pub reason: ReasonCode,
    /// 5.0 properties; empty under 3.1 and 3.1.1.
    pub props: AckProps<B>,
}

impl<B> Ack<B> {
    /// A successful acknowledgement without properties.
    pub fn new(id: PacketId) -> Self {
        Ack {
            id,
            reason: ReasonCode::SUCCESS,
            props: AckProps::default(),
        }
    }

    /// An acknowledgement with a reason code and no properties.
    pub fn with_reason(id: PacketId, reason: ReasonCode) -> Self {
        Ack {
            id,
            reason,
            props: AckProps::default(),
        }
    }
}

impl<B: Storage> Ack<B> {
    pub(crate) fn read(
        r: &mut Reader<'_, B>,
        packet: PacketType,
        v: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let id = r.packet_id()?;
        let mut ack = Ack::new(id);
        // 5.0: the reason code and properties may be omitted (section 3.4.2.1).
        if v.is_v5() && !r.is_empty() {
            let code = r.u8()?;
            ack.reason = ReasonCode(code);
            if !ack.reason.valid_for(packet) {
                return Err(DecodeError::InvalidReasonCode { packet, code });
            }
            if !r.is_empty() {
                ack.props = AckProps::read_for(r, packet)?;
            }
        }
        r.finish()?;
        Ok(ack)
    }
}

impl<B: AsRef<[u8]>> Ack<B> {
    pub(crate) fn body_len(
        &self,
        packet: PacketType,
        v: ProtocolVersion,
    ) -> Result<(usize, usize), EncodeError> {
        if !self.reason.valid_for(packet) {
            return Err(EncodeError::InvalidReasonCode {
                packet,
                code: self.reason.0,
            });
        }
        if !v.is_v5() {
            if self.reason != ReasonCode::SUCCESS {
                return Err(EncodeError::NotInVersion {
                    what: "a reason code other than success in an acknowledgement",
                    version: v,
                });
            }
            return Ok((2, 0));
        }
        let props_len = self.props.len()?;
        Ok(match (self.reason, props_len) {
            (ReasonCode::SUCCESS, 0) => (2, 0),
            (_, 0) => (3, 0),
            (_, p) => (3 + block_len(p), p),
        })
    }

    pub(crate) fn write(&self, out: &mut impl BufMut, body_len: usize, props_len: usize) {
        out.put_u16(self.id.get());
        if body_len > 2 {
            out.put_u8(self.reason.0);
        }
        if body_len > 3 {
            self.props.write(out, props_len);
        }
    }
}
