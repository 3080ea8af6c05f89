//! Authentication to Marathon: none, HTTP Basic, or a DC/OS service account (RS256 service
//! login → `Authorization: token=...`, refreshed before it expires and after any 401).
//!
//! Secrets live only in this module: `Debug` impls redact them and no error message quotes
//! them, so they cannot reach a log line, an endpoint or an error.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::Mutex;

/// How Switchyard proves itself to Marathon.
#[derive(Clone, Default)]
pub enum Credentials {
    #[default]
    None,
    /// `--auth-credentials user:pass` or the first line of `--marathon-auth-credential-file`.
    Basic { user: String, password: String },
    /// `--dcos-auth-credentials` / `DCOS_SERVICE_ACCOUNT_CREDENTIAL`.
    ServiceAccount(ServiceAccount),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user}:<redacted>)"),
            Credentials::ServiceAccount(account) => write!(f, "{account:?}"),
        }
    }
}

/// A DC/OS service account: its uid, private key and login endpoint.
#[derive(Clone)]
pub struct ServiceAccount {
    pub uid: String,
    pub login_endpoint: String,
    key: jsonwebtoken::EncodingKey,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServiceAccount(uid {}, login {}, key <redacted>)",
            self.uid, self.login_endpoint
        )
    }
}

/// A credential that cannot be used. Messages name the problem, never the secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the DC/OS service-account credential is not a JSON object with uid, private_key and login_endpoint: {0}")]
    NotJson(String),
    #[error("the DC/OS service-account credential's scheme is {0}; only RS256 is supported")]
    Scheme(String),
    #[error("the DC/OS service-account credential's private_key is not an RSA private key in PEM (PKCS#8 or PKCS#1)")]
    Key,
    #[error("the basic-auth credential must be user:password")]
    Basic,
}

#[derive(Deserialize)]
struct ServiceAccountJson {
    scheme: Option<String>,
    uid: Option<String>,
    private_key: Option<String>,
    login_endpoint: Option<String>,
}

impl ServiceAccount {
    /// Reads the `DCOS_SERVICE_ACCOUNT_CREDENTIAL` JSON (`null` fields count as missing, as in
    /// Marathon-LB).
    pub fn from_json(json: &str) -> Result<ServiceAccount, CredentialError> {
        // serde_json's message can quote the input; say only where it broke.
        let parsed: ServiceAccountJson = serde_json::from_str(json).map_err(|e| {
            CredentialError::NotJson(format!("line {} column {}", e.line(), e.column()))
        })?;
        if let Some(scheme) = parsed.scheme.filter(|s| s != "RS256") {
            return Err(CredentialError::Scheme(scheme));
        }
        let missing = |field: &str| CredentialError::NotJson(format!("`{field}` is missing"));
        let uid = parsed.uid.filter(|s| !s.is_empty()).ok_or(missing("uid"))?;
        let pem = parsed.private_key.ok_or(missing("private_key"))?;
        let login_endpoint = parsed
            .login_endpoint
            .filter(|s| !s.is_empty())
            .ok_or(missing("login_endpoint"))?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|_| CredentialError::Key)?;
        Ok(ServiceAccount {
            uid,
            login_endpoint,
            key,
        })
    }

    /// The short-lived service-login JWT: `{"uid", "exp": now + 60}` signed RS256.
    fn login_token(&self) -> Result<String, AuthError> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            uid: &'a str,
            exp: u64,
        }
        let claims = Claims {
            uid: &self.uid,
            exp: unix_now() + 60,
        };
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|_| AuthError::Sign)
    }
}

impl Credentials {
    /// `user:password` (the password may contain `:`).
    pub fn basic(value: &str) -> Result<Credentials, CredentialError> {
        let line = value.lines().next().unwrap_or("").trim();
        match line.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Credentials::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err(CredentialError::Basic),
        }
    }
}

/// Why no `Authorization` header could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("cannot sign the service login token")]
    Sign,
    #[error("login at {endpoint} failed: {reason}")]
    Login { endpoint: String, reason: String },
}

/// The credentials plus the current DC/OS token; shared by the REST calls and the event stream.
pub struct Auth {
    credentials: Credentials,
    http: reqwest::Client,
    token: Mutex<Option<Token>>,
    logins: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Auth({:?})", self.credentials)
    }
}

struct Token {
    header: HeaderValue,
    refresh_at: Instant,
}

/// Without an `exp` in the token, refresh as often as Marathon-LB does.
const DEFAULT_TOKEN_LIFE: Duration = Duration::from_secs(3600);

impl Auth {
    /// `http` is used for the login endpoint (the same TLS settings as for Marathon).
    pub fn new(credentials: Credentials, http: reqwest::Client) -> Auth {
        Auth {
            credentials,
            http,
            token: Mutex::new(None),
            logins: Default::default(),
        }
    }

    /// Successful DC/OS logins so far.
    pub fn logins(&self) -> u64 {
        self.logins.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The header to send, logging in first when there is no token or it is due for refresh.
    pub async fn header(&self) -> Result<Option<HeaderValue>, AuthError> {
        match &self.credentials {
            Credentials::None => Ok(None),
            Credentials::Basic { user, password } => {
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
                    .map_err(|_| AuthError::Sign)?;
                value.set_sensitive(true);
                Ok(Some(value))
            }
            Credentials::ServiceAccount(account) => {
                let mut token = self.token.lock().await;
                match token.as_ref() {
                    Some(t) if Instant::now() < t.refresh_at => Ok(Some(t.header.clone())),
                    _ => {
                        let fresh = self.login(account).await?;
                        let header = fresh.header.clone();
                        *token = Some(fresh);
                        Ok(Some(header))
                    }
                }
            }
        }
    }

    /// Marathon answered 401 to `used`: forget that token so the next call logs in again. A
    /// token already replaced by another caller is left alone.
    pub async fn rejected(&self, used: Option<&HeaderValue>) {
        let mut token = self.token.lock().await;
        if token.as_ref().map(|t| &t.header) == used {
            *token = None;
        }
    }

    /// Whether a 401 can be cured by logging in again.
    pub fn can_login(&self) -> bool {
        matches!(self.credentials, Credentials::ServiceAccount(_))
    }

    async fn login(&self, account: &ServiceAccount) -> Result<Token, AuthError> {
        let failed = |reason: String| AuthError::Login {
            endpoint: account.login_endpoint.clone(),
            reason,
        };
        let body = serde_json::json!({ "uid": account.uid, "token": account.login_token()? });
        let response = self
            .http
            .post(&account.login_endpoint)
            .json(&body)
            .timeout(Duration::from_secs(46))
            .send()
            .await
            // reqwest's message names the URL, never the body.
            .map_err(|e| failed(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!("answered {status}")));
        }
        let cookie = cookie_token(response.headers());
        #[derive(Deserialize)]
        struct LoginAnswer {
            token: Option<String>,
        }
        let body: Option<LoginAnswer> = response.json().await.ok();
        let token = body
            .and_then(|b| b.token)
            .or(cookie)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| failed("the answer holds no token".to_owned()))?;
        let mut header = HeaderValue::from_str(&format!("token={token}"))
            .map_err(|_| failed("the token is not a valid header value".to_owned()))?;
        header.set_sensitive(true);
        self.logins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Token {
            header,
            refresh_at: Instant::now() + refresh_after(&token, unix_now()),
        })
    }
}

/// `dcos-acs-auth-cookie` from `Set-Cookie` (what Marathon-LB reads; the JSON body wins).
fn cookie_token(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("dcos-acs-auth-cookie="))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
}

/// When to log in again: at 80% of the token's life as its `exp` claim says (read without
/// verifying; only the cluster needs to trust it), never sooner than 10 s.
fn refresh_after(token: &str, now: u64) -> Duration {
    #[derive(Deserialize)]
    struct Claims {
        exp: Option<u64>,
    }
    let exp = token
        .split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload.trim_end_matches('='))
                .ok()
        })
        .and_then(|json| serde_json::from_slice::<Claims>(&json).ok())
        .and_then(|c| c.exp);
    match exp {
        Some(exp) => {
            Duration::from_secs(exp.saturating_sub(now) * 4 / 5).max(Duration::from_secs(10))
        }
        None => DEFAULT_TOKEN_LIFE,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../tests/fixtures/service-account-key.pem");

    fn credential_json(key: &str) -> String {
        serde_json::json!({
            "scheme": "RS256", "uid": "lb", "private_key": key,
            "login_endpoint": "http://127.0.0.1:1/acs/api/v1/auth/login"
        })
        .to_string()
    }

    #[test]
    fn service_account_parses_and_never_shows_its_key() {
        let account = ServiceAccount::from_json(&credential_json(KEY)).unwrap();
        let shown = format!("{:?}", Credentials::ServiceAccount(account.clone()));
        assert!(
            shown.contains("uid lb") && !shown.contains("PRIVATE"),
            "{shown}"
        );
        let token = account.login_token().unwrap();
        assert_eq!(token.split('.').count(), 3);
    }

    #[test]
    fn bad_credentials_are_named_without_quoting_them() {
        let err = ServiceAccount::from_json(&credential_json("not a key")).unwrap_err();
        assert!(matches!(err, CredentialError::Key));
        let err = ServiceAccount::from_json("{\"uid\": \"lb\", \"private_key\": \"secret-ish")
            .unwrap_err();
        assert!(!err.to_string().contains("secret-ish"), "{err}");
        let json = serde_json::json!({"uid": "lb", "private_key": KEY, "login_endpoint": null});
        let err = ServiceAccount::from_json(&json.to_string()).unwrap_err();
        assert!(err.to_string().contains("login_endpoint"), "{err}");
    }

    #[test]
    fn basic_credentials_keep_colons_in_the_password_and_hide_it() {
        let creds = Credentials::basic("user:pa:ss\nignored").unwrap();
        assert!(
            matches!(&creds, Credentials::Basic { user, password } if user == "user" && password == "pa:ss")
        );
        assert!(!format!("{creds:?}").contains("pa:ss"));
        assert!(Credentials::basic("nocolon").is_err());
    }

    #[test]
    fn tokens_are_refreshed_at_four_fifths_of_their_life() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"uid":"lb","exp":1000500}"#);
        let token = format!("e30.{payload}.sig");
        assert_eq!(refresh_after(&token, 1_000_000), Duration::from_secs(400));
        assert_eq!(refresh_after(&token, 1_000_499), Duration::from_secs(10));
        assert_eq!(refresh_after("opaque", 0), DEFAULT_TOKEN_LIFE);
    }
}
