//! Who may talk to the simulated Marathon: Jetty Basic auth, or DC/OS tokens obtained through a
//! service-account login (spec §3). Secrets are compared, never logged.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::h1::Response;
use super::node::lock;
use super::SimAuth;

/// Where clients log in, on the login listener.
pub(super) const LOGIN_PATH: &str = "/acs/api/v1/auth/login";
/// The IAM refuses service-login tokens that live longer than this.
const MAX_LOGIN_TOKEN_LIFETIME: u64 = 600;

pub(super) struct Authority {
    mode: Mode,
}

enum Mode {
    None,
    Basic {
        /// `user:password`, as the decoded header must read.
        expected: Vec<u8>,
    },
    ServiceAccount {
        uid: String,
        public_key: DecodingKey,
        token_lifetime: Duration,
        /// Signs the tokens we issue; random per simulator.
        secret: EncodingKey,
        /// Issued tokens and when each expires. `expire_all` empties it.
        issued: Mutex<HashMap<String, SystemTime>>,
    },
}

#[derive(Deserialize)]
struct LoginBody {
    uid: String,
    token: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    uid: String,
    exp: u64,
}

impl Authority {
    /// Fails when the service account's public key is not a PEM RSA public key.
    pub fn new(auth: &SimAuth) -> io::Result<Authority> {
        let mode = match auth {
            SimAuth::None => Mode::None,
            SimAuth::Basic { user, password } => Mode::Basic {
                expected: format!("{user}:{password}").into_bytes(),
            },
            SimAuth::ServiceAccount {
                uid,
                public_key_pem,
                token_lifetime,
            } => {
                let public_key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
                    .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
                let secret: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..))
                    .take(32)
                    .collect();
                Mode::ServiceAccount {
                    uid: uid.clone(),
                    public_key,
                    token_lifetime: *token_lifetime,
                    secret: EncodingKey::from_secret(&secret),
                    issued: Mutex::new(HashMap::new()),
                }
            }
        };
        Ok(Authority { mode })
    }

    /// `Ok` when the request may proceed, else the 401 to send.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Response> {
        let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        match &self.mode {
            Mode::None => Ok(()),
            Mode::Basic { expected } => {
                let decoded = authorization
                    .and_then(|v| v.split_once(' '))
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
                    .and_then(|(_, encoded)| {
                        base64::engine::general_purpose::STANDARD
                            .decode(encoded.trim())
                            .ok()
                    });
                match decoded {
                    Some(credentials) if credentials == *expected => Ok(()),
                    _ => Err(Response::message(401, "Invalid username or password.")
                        .with_header("WWW-Authenticate", "Basic realm=\"Mesosphere\"")),
                }
            }
            Mode::ServiceAccount { issued, .. } => {
                let token = authorization.and_then(|v| v.strip_prefix("token="));
                let valid = token.is_some_and(|token| {
                    lock(issued)
                        .get(token)
                        .is_some_and(|expires| SystemTime::now() < *expires)
                });
                if valid {
                    Ok(())
                } else {
                    Err(acs_unauthorized())
                }
            }
        }
    }

    /// Answers a login request. `Ok` carries the 200, `Err` the 401 (or 405).
    pub fn login(&self, method: &str, body: &[u8]) -> Result<Response, Response> {
        if method != "POST" {
            return Err(Response::message(405, "use POST"));
        }
        let Mode::ServiceAccount {
            uid,
            public_key,
            token_lifetime,
            secret,
            issued,
        } = &self.mode
        else {
            return Err(login_failed("this cluster has no service accounts"));
        };
        let Ok(login) = serde_json::from_slice::<LoginBody>(body) else {
            return Err(login_failed(
                "the request body must be {\"uid\", \"token\"}",
            ));
        };
        let Some(login_token) = login.token.filter(|_| login.uid == *uid) else {
            return Err(login_failed("unknown uid, or no service login token"));
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        let claims = match jsonwebtoken::decode::<Claims>(&login_token, public_key, &validation) {
            Ok(data) => data.claims,
            Err(_) => return Err(login_failed("invalid service login token")),
        };
        let now = unix_seconds(SystemTime::now());
        if claims.uid != *uid || claims.exp > now + MAX_LOGIN_TOKEN_LIFETIME {
            return Err(login_failed(
                "service login token has the wrong uid or lives too long",
            ));
        }
        let expires = SystemTime::now() + *token_lifetime;
        let claims = Claims {
            uid: uid.clone(),
            exp: unix_seconds(expires),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, secret)
            .map_err(|_| Response::message(500, "could not issue a token"))?;
        lock(issued).insert(token.clone(), expires);
        Ok(Response::json(200, &json!({ "token": token })).with_header(
            "Set-Cookie",
            format!("dcos-acs-auth-cookie={token}; Path=/; HttpOnly"),
        ))
    }

    /// Invalidates every token issued so far.
    pub fn expire_all(&self) {
        if let Mode::ServiceAccount { issued, .. } = &self.mode {
            lock(issued).clear();
        }
    }
}

/// Admin Router's answer to a missing, unknown or expired token.
fn acs_unauthorized() -> Response {
    Response::new(
        401,
        "text/html",
        "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n\
         <center><h1>401 Authorization Required</h1></center>\r\n</body>\r\n</html>\r\n",
    )
    .with_header("WWW-Authenticate", "acsjwt")
}

/// The IAM's error document for a failed login.
fn login_failed(description: &str) -> Response {
    Response::json(
        401,
        &json!({
            "title": "Authentication error",
            "description": description,
            "code": "ERR_INVALID_SERVICE_LOGIN_TOKEN",
        }),
    )
    .with_header("WWW-Authenticate", "acsjwt")
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
