//! JSON Web Tokens in the CONNECT password field (`[auth.jwt]`): which
//! passwords are tokens, the token's user against the CONNECT's, and the
//! rights a topic-restricting token grants. The verification itself is
//! [`crate::jwt::JwtVerifier`]'s; the time comes from the system clock here.

use std::time::{SystemTime, UNIX_EPOCH};

use mqtt_codec::{ReasonCode, TopicFilter};
use mqtt_router::broker::{Access, Rights, Rule};

use crate::jwt::{JwtError, JwtIdentity, JwtVerifier};

/// What a verified token lets in.
#[derive(Debug)]
pub(super) struct TokenUser {
    /// The token's user: it owns the session.
    pub(super) username: String,
    /// The token's own rights, when the configuration has a
    /// `topics_claim`; `None`: the ACL's rights of `username`.
    pub(super) rights: Option<Rights>,
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub(super) enum TokenRefusal {
    /// The verifier refused it.
    #[error(transparent)]
    Invalid(#[from] JwtError),
    /// The CONNECT names another user than the token.
    #[error("the CONNECT user name is not the token's user {token_user:?}")]
    OtherUser {
        /// The token's user.
        token_user: String,
    },
}

impl TokenRefusal {
    /// The CONNACK reason: 0x86 Bad User Name or Password, the token being
    /// the password.
    pub(super) fn reason_code(&self) -> ReasonCode {
        match self {
            TokenRefusal::Invalid(e) => e.reason_code(),
            TokenRefusal::OtherUser { .. } => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        }
    }
}

/// Whether `password` has the form of a JWT in compact serialisation
/// (RFC 7519 §3, RFC 7515 §7.1): three non-empty base64url parts separated
/// by dots. Anything else is checked as an ordinary password.
pub(super) fn looks_like_jwt(password: &[u8]) -> bool {
    let base64url = |p: &[u8]| {
        !p.is_empty()
            && p.iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    };
    let parts: Vec<&[u8]> = password.split(|b| *b == b'.').collect();
    parts.len() == 3 && parts.iter().all(|p| base64url(p))
}

/// Verifies `token` now (the system clock), for a CONNECT naming
/// `username`, if any: it must be the token's user.
pub(super) fn check(
    verifier: &JwtVerifier,
    username: Option<&str>,
    token: &[u8],
) -> Result<TokenUser, TokenRefusal> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let identity = verifier.verify(token, now)?;
    if username.is_some_and(|u| u != identity.username) {
        return Err(TokenRefusal::OtherUser {
            token_user: identity.username,
        });
    }
    let rights = verifier.restricts_topics().then(|| rights(&identity));
    Ok(TokenUser {
        username: identity.username,
        rights,
    })
}

/// Exactly what the token lists: its `pub` filters as write rules, its
/// `sub` filters as read rules (subscribe and receive).
fn rights(identity: &JwtIdentity) -> Rights {
    let rules = |filters: &[String], access: Access| {
        filters
            .iter()
            // The verifier only passes valid filters; one that is not
            // grants nothing.
            .filter_map(|f| TopicFilter::try_from(f.as_str()).ok())
            .map(move |f| Rule::new(f, access))
            .collect::<Vec<_>>()
    };
    let mut all = rules(&identity.publish, Access::Write);
    all.extend(rules(&identity.subscribe, Access::Read));
    Rights::from_rules(all)
}

#[cfg(test)]
mod tests {
    use mqtt_codec::TopicName;

    use super::*;

    #[test]
    fn only_three_base64url_parts_are_tokens() {
        assert!(looks_like_jwt(b"eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt(b"a-_b.c.d_-"));
        assert!(!looks_like_jwt(b"password"));
        assert!(!looks_like_jwt(b"a.b"));
        assert!(!looks_like_jwt(b"a.b.c.d"));
        assert!(!looks_like_jwt(b"a..c"));
        assert!(!looks_like_jwt(b"a.b c.d"));
        assert!(!looks_like_jwt(b"a.b=.c"));
    }

    #[test]
    fn token_lists_become_write_and_read_rules() {
        let identity = JwtIdentity {
            username: "alice".into(),
            publish: vec!["up/alice/#".into()],
            subscribe: vec!["down/alice/+".into()],
            expires_at: None,
        };
        let r = rights(&identity);
        let topic = |t: &'static str| TopicName::from_static(t);
        assert!(r.may_publish(&topic("up/alice/x")));
        assert!(!r.may_read(&topic("up/alice/x")));
        assert!(r.may_read(&topic("down/alice/x")));
        assert!(!r.may_publish(&topic("down/alice/x")));
        assert!(!r.may_publish(&topic("other")));
        assert!(r.may_subscribe(&TopicFilter::from_static("down/alice/+")));
        assert!(!r.may_subscribe(&TopicFilter::from_static("up/#")));
    }
}
