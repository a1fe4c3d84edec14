//! The four SCRAM messages of RFC 5802 §7, parsed and formatted: the
//! client-first (gs2 header and bare part), server-first, client-final and
//! server-final attribute lists, and `saslname` escaping (`,` is written
//! `=2C` and `=` is written `=3D`).
//!
//! Every parser bounds its input before looking at it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::ScramError;

/// Longest message accepted, in bytes. A client-final message with a
/// SHA-512 proof and a 128-character nonce is under 300 bytes.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Longest user name accepted (after unescaping), in bytes.
pub const MAX_USER_LEN: usize = 256;

/// Longest nonce accepted (client part, and whole), in characters.
pub const MAX_NONCE_LEN: usize = 256;

/// The client-first message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    gs2_header: String,
    user: String,
    nonce: String,
    bare: String,
}

impl ClientFirst {
    /// The gs2 header (`"n,,"` or `"y,,"`), which the client-final message
    /// must echo base64-encoded as its channel binding.
    pub fn gs2_header(&self) -> &str {
        &self.gs2_header
    }

    /// The user name, unescaped.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The client's nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The message without its gs2 header (part of the AuthMessage).
    pub fn bare(&self) -> &str {
        &self.bare
    }
}

/// The client-final message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinal {
    channel_binding: Vec<u8>,
    nonce: String,
    without_proof: String,
    proof: Vec<u8>,
}

impl ClientFinal {
    /// The decoded `c=` attribute.
    pub fn channel_binding(&self) -> &[u8] {
        &self.channel_binding
    }

    /// The whole nonce (client and server parts).
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The message up to, not including, `,p=` (part of the AuthMessage).
    pub fn without_proof(&self) -> &str {
        &self.without_proof
    }

    /// The decoded ClientProof.
    pub fn proof(&self) -> &[u8] {
        &self.proof
    }
}

fn text(message: &[u8]) -> Result<&str, ScramError> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(ScramError::TooLong {
            max: MAX_MESSAGE_LEN,
        });
    }
    std::str::from_utf8(message).map_err(|_| ScramError::NotUtf8)
}

/// Whether `s` is a valid nonce: printable ASCII except `,` (RFC 5802 §7
/// `printable`), 1 to [`MAX_NONCE_LEN`] characters.
pub fn is_nonce(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NONCE_LEN
        && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Escapes a user name as a `saslname`: `=` as `=3D`, `,` as `=2C`.
pub fn escape_saslname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '=' => out.push_str("=3D"),
            ',' => out.push_str("=2C"),
            c => out.push(c),
        }
    }
    out
}

/// Unescapes a `saslname`; `None` for a `=` not followed by `2C` or `3D`,
/// or a raw `,` (RFC 5802 §5.1 says the server must then fail).
pub fn unescape_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find(['=', ',']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("=2C") {
            out.push(',');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("=3D") {
            out.push('=');
            rest = t;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// Parses the client-first message: `gs2-header client-first-message-bare`
/// where the gs2 header is `n,,` or `y,,` (optionally with `a=authzid`),
/// and the bare part `n=user,r=nonce[,extensions]`.
pub fn parse_client_first(message: &[u8]) -> Result<ClientFirst, ScramError> {
    let s = text(message)?;
    let (flag, rest) = s
        .split_once(',')
        .ok_or(ScramError::Malformed("no gs2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramError::ChannelBindingNotSupported),
        _ => return Err(ScramError::Malformed("the gs2 flag is not n, y or p")),
    }
    let (authzid, bare) = rest.split_once(',').ok_or(ScramError::Malformed(
        "the gs2 header does not end with ','",
    ))?;
    let authzid = match authzid {
        "" => None,
        a => Some(
            a.strip_prefix("a=")
                .and_then(unescape_saslname)
                .ok_or(ScramError::Malformed("invalid authorization identity"))?,
        ),
    };
    let mut attrs = bare.split(',');
    let first = attrs.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(ScramError::ExtensionNotSupported);
    }
    let user = first
        .strip_prefix("n=")
        .ok_or(ScramError::Malformed("the user name (n=) is missing"))?;
    let user = unescape_saslname(user).ok_or(ScramError::Malformed("invalid saslname escape"))?;
    if user.is_empty() || user.len() > MAX_USER_LEN {
        return Err(ScramError::Malformed("the user name is empty or too long"));
    }
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(ScramError::Malformed("the nonce (r=) is missing"))?;
    if !is_nonce(nonce) {
        return Err(ScramError::Malformed("the nonce is not printable ASCII"));
    }
    // Further attributes are optional extensions, ignored (RFC 5802 §5.1).
    if authzid.is_some_and(|a| a != user) {
        return Err(ScramError::AuthorizationIdentity);
    }
    Ok(ClientFirst {
        gs2_header: s[..s.len() - bare.len()].to_string(),
        user,
        nonce: nonce.to_string(),
        bare: bare.to_string(),
    })
}

/// Formats the server-first message `r=nonce,s=salt,i=iterations`.
pub fn server_first(nonce: &str, salt: &[u8], iterations: u32) -> String {
    format!("r={nonce},s={},i={iterations}", STANDARD.encode(salt))
}

/// Parses the client-final message `c=binding,r=nonce[,extensions],p=proof`
/// for a mechanism whose proofs are `proof_len` bytes.
pub fn parse_client_final(message: &[u8], proof_len: usize) -> Result<ClientFinal, ScramError> {
    let s = text(message)?;
    let (without_proof, proof) = s
        .rsplit_once(",p=")
        .ok_or(ScramError::Malformed("the proof (p=) is missing"))?;
    let mut attrs = without_proof.split(',');
    let binding = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .ok_or(ScramError::Malformed("the channel binding (c=) is missing"))?;
    let channel_binding = STANDARD
        .decode(binding)
        .map_err(|_| ScramError::Malformed("the channel binding is not base64"))?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(ScramError::Malformed("the nonce (r=) is missing"))?;
    if !is_nonce(nonce) {
        return Err(ScramError::Malformed("the nonce is not printable ASCII"));
    }
    let mut decoded = [0u8; 64];
    let proof = match STANDARD.decode_slice(proof, &mut decoded) {
        Ok(n) if n == proof_len => decoded[..n].to_vec(),
        _ => {
            return Err(ScramError::Malformed(
                "the proof is not base64 of the mechanism's length",
            ))
        }
    };
    Ok(ClientFinal {
        channel_binding,
        nonce: nonce.to_string(),
        without_proof: without_proof.to_string(),
        proof,
    })
}

/// Formats the server-final message `v=signature`.
pub fn server_final(signature: &[u8]) -> String {
    format!("v={}", STANDARD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_escapes_comma_and_equals_both_ways() {
        assert_eq!(escape_saslname("a=b,c"), "a=3Db=2Cc");
        assert_eq!(unescape_saslname("a=3Db=2Cc").as_deref(), Some("a=b,c"));
        assert_eq!(unescape_saslname("=3D=2C").as_deref(), Some("=,"));
        assert_eq!(unescape_saslname("a=2"), None);
        assert_eq!(unescape_saslname("a=41"), None);
        assert_eq!(unescape_saslname("a,b"), None);
    }

    #[test]
    fn client_first_parts_are_read() {
        let m = parse_client_first(b"n,,n=us=2Cer,r=abc,x=ext").unwrap();
        assert_eq!(m.gs2_header(), "n,,");
        assert_eq!(m.user(), "us,er");
        assert_eq!(m.nonce(), "abc");
        assert_eq!(m.bare(), "n=us=2Cer,r=abc,x=ext");
        let m = parse_client_first(b"y,a=user,n=user,r=abc").unwrap();
        assert_eq!(m.gs2_header(), "y,a=user,");
    }

    #[test]
    fn client_first_refusals_name_the_problem() {
        let e = |m: &[u8]| parse_client_first(m).unwrap_err();
        assert_eq!(
            e(b"p=tls-unique,,n=u,r=a"),
            ScramError::ChannelBindingNotSupported
        );
        assert_eq!(e(b"n,,m=x,n=u,r=a"), ScramError::ExtensionNotSupported);
        assert_eq!(e(b"n,a=other,n=u,r=a"), ScramError::AuthorizationIdentity);
        assert!(matches!(e(b"x,,n=u,r=a"), ScramError::Malformed(_)));
        assert!(matches!(e(b"n,,n=,r=a"), ScramError::Malformed(_)));
        assert!(matches!(e(b"n,,n=u"), ScramError::Malformed(_)));
        assert!(matches!(e(b"n,,n=u,r="), ScramError::Malformed(_)));
        assert!(matches!(e(b"n,,n=u=,r=a"), ScramError::Malformed(_)));
        assert_eq!(e(b"n,,n=\xff,r=a"), ScramError::NotUtf8);
        assert_eq!(
            e(&[b'a'; MAX_MESSAGE_LEN + 1]),
            ScramError::TooLong {
                max: MAX_MESSAGE_LEN
            }
        );
    }

    #[test]
    fn client_final_proof_length_is_the_mechanism_s() {
        let proof = STANDARD.encode([7u8; 32]);
        let m = format!("c=biws,r=abc,p={proof}");
        let f = parse_client_final(m.as_bytes(), 32).unwrap();
        assert_eq!(f.channel_binding(), b"n,,");
        assert_eq!(f.nonce(), "abc");
        assert_eq!(f.without_proof(), "c=biws,r=abc");
        assert_eq!(f.proof(), &[7u8; 32]);
        assert!(matches!(
            parse_client_final(m.as_bytes(), 64),
            Err(ScramError::Malformed(_))
        ));
        assert!(matches!(
            parse_client_final(b"c=biws,r=abc", 32),
            Err(ScramError::Malformed(_))
        ));
    }
}
