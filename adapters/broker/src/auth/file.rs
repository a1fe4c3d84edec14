//! The built-in [`Authenticator`]: users from Mosquitto's password file,
//! rights from its ACL file (the `[auth]` section: `password_file`,
//! `acl_file`, `allow_anonymous`), and any registered enhanced methods.

use std::sync::Arc;

use bytes::Bytes;
use mqtt_codec::{ReasonCode, Str};
use mqtt_router::broker::{AuthAnswer, AuthRequest, AuthSuccess, ConnId, Rights};
use tracing::{info, warn};

use super::methods::{AuthMethods, EnhancedMethod, MethodStep};
use super::{AuthFuture, Authenticator};
use crate::acl::{AclError, AclFile, Client};
use crate::config::AuthConfig;
use crate::logging::{RateLimit, Shown};
use crate::passwd::{PasswordFile, PasswordFileError};

/// Refused logins logged per second, all clients together (a client
/// guessing passwords must not flood the log).
static REFUSALS: RateLimit = RateLimit::new(10);

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

/// Authentication from a password file and enhanced methods, rights from
/// an ACL file. Cheap to clone (the files are shared).
///
/// Without either file it lets everyone in and everywhere (unless
/// anonymous clients are turned off), and the core then asks nothing.
#[derive(Debug, Clone)]
pub struct FileAuthenticator {
    allow_anonymous: bool,
    passwords: Option<Arc<PasswordFile>>,
    acl: Option<Arc<AclFile>>,
    methods: AuthMethods,
}

impl FileAuthenticator {
    /// An authenticator from already-read files.
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
    ) -> FileAuthenticator {
        FileAuthenticator {
            allow_anonymous,
            passwords: passwords.map(Arc::new),
            acl: acl.map(Arc::new),
            methods: AuthMethods::default(),
        }
    }

    /// Adds an enhanced authentication method (5.0): clients naming it
    /// authenticate through its steps, and get the ACL's rights of the user
    /// it names.
    pub fn with_method(mut self, method: Arc<dyn EnhancedMethod>) -> FileAuthenticator {
        self.methods.register(method);
        self
    }

    /// Reads the files named in `config` and says at start-up (in the log)
    /// who will be let in.
    pub fn load(config: &AuthConfig) -> Result<FileAuthenticator, AuthError> {
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
        Ok(FileAuthenticator::new(allow_anonymous, passwords, acl))
    }

    /// Answers `request` now: the blocking work (a password hash, a
    /// method's step). [`Authenticator::authenticate`] runs it on the
    /// blocking pool.
    pub fn check(&self, request: &AuthRequest) -> AuthAnswer {
        let client_id = request.client_id().as_str();
        if let Some(step) = self.methods.run(request) {
            return match step {
                MethodStep::Continue(data) => AuthAnswer::Continue(Bytes::from(data)),
                MethodStep::Done { username, data } => {
                    let username = username.and_then(|u| Str::try_from(u).ok());
                    let rights = self.rights(client_id, username.as_ref().map(Str::as_str));
                    let ok = AuthSuccess::new(username, rights);
                    AuthAnswer::Success(match data {
                        Some(d) => ok.with_data(Bytes::from(d)),
                        None => ok,
                    })
                }
                MethodStep::Failed(reason) => {
                    if let Some(suppressed) = REFUSALS.allow() {
                        let client_id = Shown(client_id);
                        info!(%client_id, peer = %request.peer().remote, %reason, suppressed, "enhanced authentication failed");
                    }
                    AuthAnswer::Refuse(reason)
                }
            };
        }
        let password = request.password().map(|p| &p[..]);
        let verdict = self.check_password(request.username().map(Str::as_str), password);
        match verdict {
            Ok(()) => {
                let username = request.username().cloned();
                let rights = self.rights(client_id, username.as_ref().map(Str::as_str));
                AuthAnswer::Success(AuthSuccess::new(username, rights))
            }
            Err(reason) => {
                if let Some(suppressed) = REFUSALS.allow() {
                    let client_id = Shown(client_id);
                    let username = Shown(request.username().map_or("", Str::as_str));
                    info!(%client_id, %username, peer = %request.peer().remote, %reason, suppressed, "client refused");
                }
                AuthAnswer::Refuse(reason)
            }
        }
    }

    /// The password check of a CONNECT without an enhanced method.
    fn check_password(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Result<(), ReasonCode> {
        let Some(username) = username else {
            return if self.allow_anonymous {
                Ok(())
            } else {
                Err(ReasonCode::NOT_AUTHORIZED)
            };
        };
        let Some(passwords) = &self.passwords else {
            return Ok(());
        };
        match password {
            Some(p) if passwords.verify(username, p) => Ok(()),
            _ => Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
        }
    }
}

impl Authenticator for FileAuthenticator {
    /// The files read again (with everything `load` reads).
    fn reloaded(
        &self,
        config: &AuthConfig,
    ) -> Result<Option<Arc<dyn Authenticator>>, super::ReloadAuthError> {
        let new = FileAuthenticator::load(config)?;
        Ok(Some(Arc::new(new)))
    }

    fn authenticate(&self, request: AuthRequest) -> AuthFuture {
        let me = self.clone();
        Box::pin(async move {
            // The hash is CPU work: on the blocking pool, never on a task
            // thread, and never on the core task.
            tokio::task::spawn_blocking(move || me.check(&request))
                .await
                .unwrap_or(AuthAnswer::Refuse(ReasonCode::UNSPECIFIED_ERROR))
        })
    }

    fn required(&self) -> bool {
        self.passwords.is_some() || self.acl.is_some() || !self.allow_anonymous
    }

    fn methods(&self) -> Vec<String> {
        self.methods.names()
    }

    fn rights(&self, client_id: &str, username: Option<&str>) -> Rights {
        match &self.acl {
            None => Rights::allow_all(),
            Some(acl) => acl.rights(Client {
                client_id,
                username,
            }),
        }
    }

    fn forget(&self, conn: ConnId) {
        self.methods.forget(conn);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bytes::{Bytes, BytesMut};
    use mqtt_codec::{
        Auth, AuthProps, Connect, Packet, ProtocolVersion, Str, TopicFilter, TopicName,
    };
    use mqtt_router::broker::{AuthStep, Broker, BrokerConfig, PeerInfo};
    use mqtt_router::Instant;

    use super::super::MethodExchange;
    use super::*;

    fn connect(username: Option<&str>, password: Option<&[u8]>) -> Connect {
        let mut c = Connect::new(ProtocolVersion::V5, Str::from_static("c1"));
        c.username = username.map(|u| Str::try_from(u.to_string()).unwrap());
        c.password = password.map(Bytes::copy_from_slice);
        c
    }

    fn send(b: &mut Broker, id: ConnId, p: Packet) {
        let mut buf = BytesMut::new();
        p.encode(ProtocolVersion::V5, &mut buf).unwrap();
        b.handle_read(id, Instant::ZERO, &mut buf);
    }

    /// The request a broker core makes of `connect`, with the core and the
    /// connection (for the next steps).
    fn request(connect: Connect) -> (Broker, ConnId, AuthRequest) {
        let mut config = BrokerConfig::default();
        config.auth.required = true;
        config.auth.methods = vec!["TOY".into()];
        let mut b = Broker::new(config);
        let id = b.open(Instant::ZERO, PeerInfo::default()).unwrap();
        send(&mut b, id, Packet::Connect(Box::new(connect)));
        let r = b.poll_auth().expect("a request");
        (b, id, r)
    }

    fn passwords() -> PasswordFile {
        let mut f = PasswordFile::new();
        f.set_password("alice", b"right").unwrap();
        f
    }

    fn verdict(
        a: &FileAuthenticator,
        u: Option<&str>,
        pw: Option<&[u8]>,
    ) -> Result<Option<String>, ReasonCode> {
        match a.check(&request(connect(u, pw)).2) {
            AuthAnswer::Success(_) => Ok(u.map(str::to_string)),
            AuthAnswer::Refuse(r) => Err(r),
            AuthAnswer::Continue(_) => panic!("no method"),
        }
    }

    #[test]
    fn passwords_are_checked() {
        let a = FileAuthenticator::new(false, Some(passwords()), None);
        assert!(a.required());
        assert_eq!(
            verdict(&a, Some("alice"), Some(b"right")),
            Ok(Some("alice".into()))
        );
        let bad = Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        assert_eq!(verdict(&a, Some("alice"), Some(b"wrong")), bad);
        assert_eq!(verdict(&a, Some("alice"), None), bad);
        assert_eq!(verdict(&a, Some("bob"), Some(b"right")), bad);
        assert_eq!(verdict(&a, None, None), Err(ReasonCode::NOT_AUTHORIZED));
    }

    #[test]
    fn anonymous_clients_when_allowed() {
        let a = FileAuthenticator::new(true, Some(passwords()), None);
        assert_eq!(verdict(&a, None, None), Ok(None));
        // A user name is still checked.
        assert_eq!(
            verdict(&a, Some("alice"), Some(b"x")),
            Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        );
        // Without a password file user names are not checked (as Mosquitto).
        let a = FileAuthenticator::new(false, None, None);
        assert_eq!(verdict(&a, Some("anyone"), None), Ok(Some("anyone".into())));
        assert_eq!(verdict(&a, None, None), Err(ReasonCode::NOT_AUTHORIZED));
        // Without files and with anonymous clients the core asks nothing.
        assert!(!FileAuthenticator::new(true, None, None).required());
    }

    #[test]
    fn the_acl_gives_each_client_its_rights() {
        let acl = AclFile::parse(
            "user alice\ntopic readwrite a/#\ntopic deny a/secret\npattern read c/%c/#\n",
            Path::new("acl"),
        )
        .unwrap();
        let a = FileAuthenticator::new(true, None, Some(acl));
        let AuthAnswer::Success(_) = a.check(&request(connect(Some("alice"), None)).2) else {
            panic!("alice is let in");
        };
        let r = a.rights("c1", Some("alice"));
        let topic = |t: &'static str| TopicName::from_static(t);
        let filter = |f: &'static str| TopicFilter::from_static(f);
        assert!(r.may_publish(&topic("a/1")) && !r.may_publish(&topic("b/1")));
        assert!(r.may_subscribe(&filter("a/#")) && r.may_subscribe(&filter("$share/g/a/+")));
        assert!(!r.may_read(&topic("a/secret")) && r.may_read(&topic("c/c1/x")));
        assert!(!r.may_read(&topic("c/c2/x")));
        // Without an ACL file everything is allowed.
        let open = FileAuthenticator::new(true, None, None);
        assert!(open.rights("c1", Some("alice")).is_allow_all());
    }

    /// A toy challenge-response method: the server's challenge is
    /// `nonce`, the client must answer `nonce:<user>`.
    struct Toy;
    struct ToyExchange {
        challenged: bool,
    }

    impl EnhancedMethod for Toy {
        fn name(&self) -> &str {
            "TOY"
        }
        fn begin(&self, _: &str) -> Box<dyn MethodExchange> {
            Box::new(ToyExchange { challenged: false })
        }
    }

    impl MethodExchange for ToyExchange {
        fn step(&mut self, data: Option<&[u8]>) -> MethodStep {
            if !self.challenged {
                self.challenged = true;
                return MethodStep::Continue(b"nonce".to_vec());
            }
            match data.and_then(|d| d.strip_prefix(b"nonce:")) {
                Some(user) => MethodStep::Done {
                    username: Some(String::from_utf8_lossy(user).into_owned()),
                    data: Some(b"welcome".to_vec()),
                },
                None => MethodStep::Failed(ReasonCode::NOT_AUTHORIZED),
            }
        }
    }

    fn toy_connect() -> Connect {
        let mut c = connect(None, None);
        c.props.authentication_method = Some(Str::from_static("TOY"));
        c
    }

    fn client_step(b: &mut Broker, id: ConnId, data: &'static [u8]) -> AuthRequest {
        let mut props = AuthProps::default();
        props.authentication_method = Some(Str::from_static("TOY"));
        props.authentication_data = Some(Bytes::from_static(data));
        let reason = ReasonCode::CONTINUE_AUTHENTICATION;
        send(b, id, Packet::Auth(Auth { reason, props }));
        b.poll_auth().expect("the next step")
    }

    #[test]
    fn a_registered_method_runs_its_steps_and_names_the_user() {
        let acl = AclFile::parse("user bob\ntopic bob/#\n", Path::new("acl")).unwrap();
        let a = FileAuthenticator::new(false, None, Some(acl)).with_method(Arc::new(Toy));
        assert_eq!(a.methods(), ["TOY"]);
        let (mut b, id, r) = request(toy_connect());
        let answer = a.check(&r);
        let AuthAnswer::Continue(ref challenge) = answer else {
            panic!("{answer:?}");
        };
        assert_eq!(&challenge[..], b"nonce");
        assert_eq!(a.methods.pending(), 1);
        b.answer_auth(r.ticket(), Instant::ZERO, answer).unwrap();
        let r = client_step(&mut b, id, b"nonce:bob");
        assert_eq!(r.step(), AuthStep::Continue);
        let AuthAnswer::Success(_) = a.check(&r) else {
            panic!("bob is let in");
        };
        assert_eq!(a.methods.pending(), 0);
        assert!(a
            .rights("c1", Some("bob"))
            .may_publish(&TopicName::from_static("bob/x")));

        // A wrong answer is refused; a closed connection's exchange goes.
        let (mut b, id, r) = request(toy_connect());
        let answer = a.check(&r);
        b.answer_auth(r.ticket(), Instant::ZERO, answer).unwrap();
        let wrong = client_step(&mut b, id, b"guess");
        assert!(matches!(
            a.check(&wrong),
            AuthAnswer::Refuse(ReasonCode::NOT_AUTHORIZED)
        ));
        let (_, id, r) = request(toy_connect());
        let _ = a.check(&r);
        a.forget(id);
        assert_eq!(a.methods.pending(), 0);
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
        let e = FileAuthenticator::load(&config).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/pw"), "{e}");
        let config = AuthConfig {
            acl_file: Some("/nonexistent/acl".into()),
            ..AuthConfig::default()
        };
        let e = FileAuthenticator::load(&config).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/acl"), "{e}");
    }
}
