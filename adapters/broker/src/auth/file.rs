//! The built-in [`Authenticator`]: users from Mosquitto's password file,
//! rights from its ACL file (the `[auth]` section: `password_file`,
//! `acl_file`, `allow_anonymous`), TLS certificate identities, JSON Web
//! Tokens in the password field (`[auth.jwt]`), SCRAM (`scram_file`) and
//! any other registered enhanced methods.
//!
//! A CONNECT is decided by the first of these that applies:
//!
//! 1. it names an Authentication Method: that method's exchange (SCRAM or
//!    a registered one) names the user;
//! 2. the listener took a user name from the client's certificate
//!    (`use_identity_as_username`, `use_subject_as_username`): that is the
//!    user, and the CONNECT's user name and password are ignored, as in
//!    Mosquitto;
//! 3. `[auth.jwt]` is set and the password has the form of a JWT: the
//!    token's user, who must be the CONNECT's user name if it gives one;
//! 4. otherwise the password file (or no check without one).

use std::sync::Arc;

use bytes::Bytes;
use mqtt_codec::{ReasonCode, Str};
use mqtt_router::broker::{AuthAnswer, AuthRequest, AuthSuccess, ConnId, Rights};
use tracing::{info, warn};

use super::methods::{AuthMethods, EnhancedMethod, MethodStep};
use super::scram::ScramMethod;
use super::token;
use super::{AuthFuture, Authenticator};
use crate::acl::{AclError, AclFile, Client};
use crate::config::AuthConfig;
use crate::jwt::{JwtConfigError, JwtVerifier};
use crate::logging::{RateLimit, Shown};
use crate::passwd::{PasswordFile, PasswordFileError};
use crate::scram::{Mechanism, ScramCredentials, ScramFileError};

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
    /// The SCRAM credentials file (`scram_file`) is missing, unreadable or
    /// invalid (the error names the file and line).
    #[error(transparent)]
    ScramFile(#[from] ScramFileError),
    /// The `[auth.jwt]` key cannot be used.
    #[error("auth.jwt: {0}")]
    Jwt(#[from] JwtConfigError),
    /// The operating system gave no randomness for the SCRAM secret.
    #[error("cannot make the random SCRAM secret: {0}")]
    Random(getrandom::Error),
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
    jwt: Option<Arc<JwtVerifier>>,
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
            jwt: None,
            methods: AuthMethods::default(),
        }
    }

    /// Accepts JSON Web Tokens verified by `verifier` in the password
    /// field (see the module documentation for when a password is a token).
    pub fn with_jwt(mut self, verifier: JwtVerifier) -> FileAuthenticator {
        self.jwt = Some(Arc::new(verifier));
        self
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
        FileAuthenticator::new(allow_anonymous, passwords, acl).load_tokens(config)
    }

    /// Adds what `scram_file` and `[auth.jwt]` configure.
    fn load_tokens(mut self, config: &AuthConfig) -> Result<FileAuthenticator, AuthError> {
        if let Some(path) = &config.scram_file {
            let credentials = Arc::new(ScramCredentials::load(path)?);
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(AuthError::Random)?;
            for mechanism in [Mechanism::Sha256, Mechanism::Sha512] {
                let method = ScramMethod::new(mechanism, credentials.clone(), secret);
                self = self.with_method(Arc::new(method));
            }
            info!(file = %path.display(), "SCRAM credentials loaded: SCRAM-SHA-256 and SCRAM-SHA-512 offered");
        }
        if let Some(jwt) = &config.jwt {
            self = self.with_jwt(JwtVerifier::new(jwt)?);
            info!("JSON Web Tokens accepted in the password field");
        }
        Ok(self)
    }

    /// Answers `request` now: the blocking work (a password hash, a
    /// method's step, a token's signature). [`Authenticator::authenticate`]
    /// runs it on the blocking pool.
    pub fn check(&self, request: &AuthRequest) -> AuthAnswer {
        if let Some(step) = self.methods.run(request) {
            return self.method_answer(request, step);
        }
        if let Some(name) = &request.peer().certificate_username {
            // Mosquitto's use_identity_as_username: the certificate, which
            // the TLS handshake verified, is the credential.
            return self.success(request, Some(name.clone()), None);
        }
        if let (Some(verifier), Some(password)) = (&self.jwt, request.password()) {
            if token::looks_like_jwt(password) {
                let username = request.username().map(Str::as_str);
                return match token::check(verifier, username, password) {
                    Ok(user) => self.success(request, Some(user.username), user.rights),
                    Err(e) => self.refuse(request, e.reason_code(), &e),
                };
            }
        }
        let password = request.password().map(|p| &p[..]);
        match self.check_password(request.username().map(Str::as_str), password) {
            Ok(()) => {
                let username = request.username().map(|u| u.as_str().to_string());
                self.success(request, username, None)
            }
            Err(reason) => self.refuse(request, reason, &"bad user name or password"),
        }
    }

    /// The answer to an enhanced method's step.
    fn method_answer(&self, request: &AuthRequest, step: MethodStep) -> AuthAnswer {
        match step {
            MethodStep::Continue(data) => AuthAnswer::Continue(Bytes::from(data)),
            MethodStep::Done { username, data } => match self.success(request, username, None) {
                AuthAnswer::Success(ok) => AuthAnswer::Success(match data {
                    Some(d) => ok.with_data(Bytes::from(d)),
                    None => ok,
                }),
                other => other,
            },
            MethodStep::Failed(reason) => {
                self.refuse(request, reason, &"enhanced authentication failed")
            }
        }
    }

    /// Lets `username` in with `rights`, or the ACL's rights for them. A
    /// name that is not an MQTT string cannot own a session: refused 0x86.
    fn success(
        &self,
        request: &AuthRequest,
        username: Option<String>,
        rights: Option<Rights>,
    ) -> AuthAnswer {
        let username = match username.map(Str::try_from).transpose() {
            Ok(u) => u,
            Err(_) => {
                let reason = ReasonCode::BAD_USER_NAME_OR_PASSWORD;
                return self.refuse(request, reason, &"the user name is not an MQTT string");
            }
        };
        let client_id = request.client_id().as_str();
        let rights =
            rights.unwrap_or_else(|| self.rights(client_id, username.as_ref().map(Str::as_str)));
        AuthAnswer::Success(AuthSuccess::new(username, rights))
    }

    /// Refuses with `reason`, saying why in the log.
    fn refuse(
        &self,
        request: &AuthRequest,
        reason: ReasonCode,
        why: &dyn std::fmt::Display,
    ) -> AuthAnswer {
        if let Some(suppressed) = REFUSALS.allow() {
            let client_id = Shown(request.client_id().as_str());
            let username = Shown(request.username().map_or("", Str::as_str));
            info!(%client_id, %username, peer = %request.peer().remote, %reason, %why, suppressed, "client refused");
        }
        AuthAnswer::Refuse(reason)
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
        self.passwords.is_some()
            || self.acl.is_some()
            || self.jwt.is_some()
            || !self.allow_anonymous
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
        request_from(connect, PeerInfo::default())
    }

    fn request_from(connect: Connect, peer: PeerInfo) -> (Broker, ConnId, AuthRequest) {
        let mut config = BrokerConfig::default();
        config.auth.required = true;
        config.auth.methods = vec!["TOY".into()];
        let mut b = Broker::new(config);
        let id = b.open(Instant::ZERO, peer).unwrap();
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
    fn a_certificate_user_needs_no_password_and_gets_its_acl_rights() {
        let acl = AclFile::parse("user alice\ntopic alice/#\n", Path::new("acl")).unwrap();
        let a = FileAuthenticator::new(false, Some(passwords()), Some(acl));
        let peer = PeerInfo {
            certificate_username: Some("alice".into()),
            ..PeerInfo::default()
        };
        // The CONNECT's user name and (wrong) password are ignored.
        let r = request_from(connect(Some("mallory"), Some(b"x")), peer.clone()).2;
        let answer = a.check(&r);
        let AuthAnswer::Success(ok) = &answer else {
            panic!("the certificate lets alice in: {answer:?}");
        };
        // AuthSuccess keeps its fields private: its Debug shows the owner
        // and the ACL rules it carries.
        let shown = format!("{ok:?}");
        assert!(
            shown.contains("alice/#") && !shown.contains("mallory"),
            "{shown}"
        );
        let r = request_from(connect(None, None), peer).2;
        assert!(matches!(a.check(&r), AuthAnswer::Success(_)));
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
    fn scram_file_and_jwt_are_loaded_and_bad_ones_named() {
        let dir = std::env::temp_dir().join(format!("auth-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("scram");
        let mut creds = ScramCredentials::new();
        creds
            .set_password("alice", Mechanism::Sha256, b"pw", 4096)
            .unwrap();
        creds.save(&good).unwrap();
        let bad = dir.join("scram-bad");
        std::fs::write(&bad, "# users\nalice:SCRAM-SHA-1:4096:x:y:z\n").unwrap();
        let config = |scram: &Path| AuthConfig {
            scram_file: Some(scram.to_path_buf()),
            ..AuthConfig::default()
        };
        let a = FileAuthenticator::load(&config(&good)).unwrap();
        assert_eq!(a.methods(), ["SCRAM-SHA-256", "SCRAM-SHA-512"]);
        assert!(
            !a.required(),
            "SCRAM alone asks only about CONNECTs naming it"
        );
        let e = FileAuthenticator::load(&config(&bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("scram-bad") && e.contains("line 2"), "{e}");
        let jwt =
            crate::Config::from_toml("[auth.jwt]\nsecret = \"0123456789abcdef0123456789abcdef\"\n")
                .unwrap()
                .auth;
        assert!(FileAuthenticator::load(&jwt).unwrap().required());
        let _ = std::fs::remove_dir_all(&dir);
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
