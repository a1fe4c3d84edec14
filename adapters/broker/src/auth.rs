//! The broker's [`Policy`]: who may connect, from the password file, and
//! who may publish and subscribe where, from the ACL file (the `[auth]`
//! section of the configuration, Mosquitto's `password_file`, `acl_file` and
//! `allow_anonymous`).
//!
//! Refusals, as the broker core sends them:
//!
//! | case | 5.0 | 3.1.1 |
//! |---|---|---|
//! | unknown user, wrong or missing password | CONNACK 0x86 Bad User Name or Password | return code 4 |
//! | no user name while anonymous clients are not allowed | CONNACK 0x87 Not Authorized | return code 5 |
//! | subscription the ACL does not grant | SUBACK 0x87 | SUBACK 0x80 |
//! | publish the ACL does not grant | PUBACK/PUBREC 0x87, message dropped | acknowledged, message dropped |
//!
//! Mosquitto 2.0 answers a wrong password with 0x87 / return code 5 as well;
//! this broker uses the code the specification names for it (section 3.2.2.2
//! of 5.0, 3.2.2.3 of 3.1.1), which clients report as "bad user name or
//! password". ACL checks happen at publish and at subscribe time only: see
//! [`crate::acl`] for how that differs from Mosquitto's check per delivered
//! message.

use mqtt_codec::{ReasonCode, TopicFilter, TopicName};
use mqtt_router::broker::{ClientInfo, PeerInfo, Policy};
use mqtt_session::mqtt_codec::Connect;
use tracing::{info, warn};

use crate::acl::{AclError, AclFile, Client};
use crate::config::AuthConfig;
use crate::logging::{RateLimit, Shown};
use crate::passwd::{PasswordFile, PasswordFileError};

/// Why the `[auth]` files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The password file is missing, unreadable or invalid.
    #[error(transparent)]
    PasswordFile(#[from] PasswordFileError),
    /// The ACL file is missing, unreadable or invalid.
    #[error(transparent)]
    AclFile(#[from] AclError),
}

/// Authentication from a password file and authorisation from an ACL file.
///
/// Without either file it lets everyone in and everywhere (unless
/// anonymous clients are turned off).
#[derive(Debug, Clone)]
pub struct FilePolicy {
    allow_anonymous: bool,
    passwords: Option<PasswordFile>,
    acl: Option<AclFile>,
}

impl FilePolicy {
    /// A policy from already-read files.
    ///
    /// - `allow_anonymous`: whether clients without a user name may connect;
    /// - `passwords`: with a file, a client giving a user name must be in it
    ///   with the right password; without one, user names are not checked
    ///   (they only select the ACL rules, as in Mosquitto);
    /// - `acl`: with a file, only what it grants is allowed.
    pub fn new(
        allow_anonymous: bool,
        passwords: Option<PasswordFile>,
        acl: Option<AclFile>,
    ) -> FilePolicy {
        FilePolicy {
            allow_anonymous,
            passwords,
            acl,
        }
    }

    /// Reads the files named in `config` and says at start-up (in the log)
    /// who will be let in.
    pub fn load(config: &AuthConfig) -> Result<FilePolicy, AuthError> {
        let passwords = match &config.password_file {
            Some(path) => {
                let file = PasswordFile::load(path)?;
                info!(file = %path.display(), users = file.users().count(), "password file loaded");
                Some(file)
            }
            None => None,
        };
        let acl = match &config.acl_file {
            Some(path) => {
                let file = AclFile::load(path)?;
                info!(file = %path.display(), "ACL file loaded: what it does not grant is denied");
                Some(file)
            }
            None => None,
        };
        let allow_anonymous = config.allow_anonymous();
        match (allow_anonymous, passwords.is_some(), config.allow_anonymous) {
            (false, true, None) => info!(
                "anonymous clients refused: a password file is set (auth.allow_anonymous = true lets them in)"
            ),
            (false, true, Some(_)) => info!("anonymous clients refused"),
            (false, false, _) => warn!(
                "anonymous clients refused, but without a password file any user name is let in unchecked"
            ),
            (true, true, _) => info!("anonymous clients allowed, besides the users of the password file"),
            (true, false, _) => info!("anonymous clients allowed"),
        }
        if acl.is_some() && passwords.is_none() {
            warn!("ACL file without a password file: user names are not verified, so any client can claim a user's rules");
        }
        Ok(FilePolicy::new(allow_anonymous, passwords, acl))
    }
}

/// Refused logins logged per second, all clients together (a client
/// guessing passwords must not flood the log).
static REFUSALS: RateLimit = RateLimit::new(10);

impl Policy for FilePolicy {
    fn authenticate(&mut self, connect: &Connect, client_id: &str, peer: &PeerInfo) -> ReasonCode {
        let Some(username) = &connect.username else {
            if self.allow_anonymous {
                return ReasonCode::SUCCESS;
            }
            if let Some(suppressed) = REFUSALS.allow() {
                let client_id = Shown(client_id);
                info!(%client_id, peer = %peer.remote, suppressed, "anonymous client refused: not authorized");
            }
            return ReasonCode::NOT_AUTHORIZED;
        };
        let Some(passwords) = &self.passwords else {
            return ReasonCode::SUCCESS;
        };
        let username = username.as_str();
        let ok = match &connect.password {
            Some(password) => passwords.verify(username, password),
            None => false,
        };
        if ok {
            ReasonCode::SUCCESS
        } else {
            if let Some(suppressed) = REFUSALS.allow() {
                let (client_id, username) = (Shown(client_id), Shown(username));
                info!(%client_id, %username, peer = %peer.remote, suppressed, "bad user name or password");
            }
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        }
    }

    fn may_publish(&self, client: &ClientInfo<'_>, topic: &TopicName) -> bool {
        match &self.acl {
            None => true,
            Some(acl) => acl.may_publish(acl_client(client), topic.as_str()),
        }
    }

    fn may_subscribe(&self, client: &ClientInfo<'_>, filter: &TopicFilter) -> bool {
        match &self.acl {
            None => true,
            Some(acl) => {
                // A shared subscription receives what its filter part matches.
                let f = filter.shared().map_or(filter.as_str(), |s| s.filter);
                acl.may_subscribe(acl_client(client), f)
            }
        }
    }
}

fn acl_client<'a>(client: &ClientInfo<'a>) -> Client<'a> {
    Client {
        client_id: client.client_id,
        username: client.username,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bytes::Bytes;
    use mqtt_codec::{ProtocolVersion, Str};

    use super::*;

    fn connect(username: Option<&str>, password: Option<&[u8]>) -> Connect {
        let mut c = Connect::new(ProtocolVersion::V5, Str::from_static("c1"));
        c.username = username.map(|u| Str::try_from(u.to_string()).unwrap());
        c.password = password.map(Bytes::copy_from_slice);
        c
    }

    fn passwords() -> PasswordFile {
        let mut f = PasswordFile::new();
        f.set_password("alice", b"right").unwrap();
        f
    }

    fn peer() -> PeerInfo {
        PeerInfo {
            remote: "127.0.0.1:1".into(),
            certificate_subject: None,
        }
    }

    #[test]
    fn passwords_are_checked() {
        let mut p = FilePolicy::new(false, Some(passwords()), None);
        let mut check = |u, pw| p.authenticate(&connect(u, pw), "c1", &peer());
        assert_eq!(check(Some("alice"), Some(b"right")), ReasonCode::SUCCESS);
        let bad = ReasonCode::BAD_USER_NAME_OR_PASSWORD;
        assert_eq!(check(Some("alice"), Some(b"wrong")), bad);
        assert_eq!(check(Some("alice"), None), bad);
        assert_eq!(check(Some("bob"), Some(b"right")), bad);
        assert_eq!(check(None, None), ReasonCode::NOT_AUTHORIZED);
        assert_eq!(check(None, Some(b"right")), ReasonCode::NOT_AUTHORIZED);
    }

    #[test]
    fn anonymous_clients_when_allowed() {
        let mut p = FilePolicy::new(true, Some(passwords()), None);
        assert_eq!(
            p.authenticate(&connect(None, None), "c1", &peer()),
            ReasonCode::SUCCESS
        );
        // A user name is still checked.
        assert_eq!(
            p.authenticate(&connect(Some("alice"), Some(b"x")), "c1", &peer()),
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        );
        // Without a password file user names are not checked (as Mosquitto).
        let mut p = FilePolicy::new(false, None, None);
        assert_eq!(
            p.authenticate(&connect(Some("anyone"), None), "c1", &peer()),
            ReasonCode::SUCCESS
        );
        assert_eq!(
            p.authenticate(&connect(None, None), "c1", &peer()),
            ReasonCode::NOT_AUTHORIZED
        );
    }

    #[test]
    fn the_acl_decides_publish_and_subscribe() {
        let acl = AclFile::parse(
            "user alice\ntopic readwrite a/#\npattern read c/%c/#\n",
            Path::new("acl"),
        )
        .unwrap();
        let p = FilePolicy::new(true, None, Some(acl));
        let peer = peer();
        let alice = ClientInfo {
            client_id: "c1",
            username: Some("alice"),
            peer: &peer,
        };
        let topic = |t: &'static str| TopicName::from_static(t);
        let filter = |f: &'static str| TopicFilter::from_static(f);
        assert!(p.may_publish(&alice, &topic("a/1")));
        assert!(!p.may_publish(&alice, &topic("b/1")));
        assert!(p.may_subscribe(&alice, &filter("a/#")));
        assert!(p.may_subscribe(&alice, &filter("$share/g/a/+")));
        assert!(!p.may_subscribe(&alice, &filter("$share/a/b")));
        assert!(p.may_subscribe(&alice, &filter("c/c1/x")));
        assert!(!p.may_subscribe(&alice, &filter("c/c2/x")));
        // Without an ACL file everything is allowed.
        let open = FilePolicy::new(true, None, None);
        assert!(open.may_publish(&alice, &topic("b/1")));
        assert!(open.may_subscribe(&alice, &filter("#")));
    }

    #[test]
    fn the_auth_section_and_its_defaults() {
        let auth = |text: &str| crate::Config::from_toml(text).map(|c| c.auth);
        let open = auth("").unwrap();
        assert!(open.allow_anonymous() && open.password_file.is_none() && open.acl_file.is_none());
        let with_file = auth("[auth]\npassword_file = \"/etc/pw\"\n").unwrap();
        assert!(!with_file.allow_anonymous());
        assert_eq!(
            with_file.password_file.as_deref(),
            Some(Path::new("/etc/pw"))
        );
        let both =
            auth("[auth]\npassword_file = \"pw\"\nallow_anonymous = true\nacl_file = \"acl\"\n")
                .unwrap();
        assert!(both.allow_anonymous());
        assert_eq!(both.acl_file.as_deref(), Some(Path::new("acl")));
        assert!(!auth("[auth]\nallow_anonymous = false\n")
            .unwrap()
            .allow_anonymous());
        assert!(auth("[auth]\npasswd_file = \"pw\"\n").is_err());
    }

    #[test]
    fn load_names_the_bad_file() {
        let config = AuthConfig {
            password_file: Some("/nonexistent/pw".into()),
            ..AuthConfig::default()
        };
        let e = FilePolicy::load(&config).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/pw"), "{e}");
        let config = AuthConfig {
            acl_file: Some("/nonexistent/acl".into()),
            ..AuthConfig::default()
        };
        let e = FilePolicy::load(&config).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/acl"), "{e}");
    }
}
