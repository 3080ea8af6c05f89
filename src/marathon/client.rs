//! The Marathon client: several URLs tried in order (sticking to the last that answered), auth
//! on every request, TLS with an optional CA bundle, and `/v2/apps?embed=apps.tasks` fetched
//! with gzip.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::StatusCode;

use super::auth::{Auth, AuthError, Credentials};

/// What a Marathon client needs.
#[derive(Debug, Clone, Default)]
pub struct MarathonConfig {
    /// Base URLs (`http://marathon.mesos:8080`, `https://master/service/marathon`).
    pub urls: Vec<String>,
    pub credentials: Credentials,
    /// A PEM bundle to verify Marathon's (and the login endpoint's) certificate with, instead
    /// of the public roots.
    pub ca_cert: Option<PathBuf>,
}

/// A configuration that cannot work, found before anything is fetched.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no Marathon URL given")]
    NoUrl,
    #[error("invalid Marathon URL `{0}`")]
    BadUrl(String),
    #[error("cannot read the CA bundle {path}: {reason}")]
    CaCert { path: String, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

/// Why a fetch failed. Messages never include credentials.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("request to {url} failed: {reason}")]
    Request { url: String, reason: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: StatusCode },
}

impl FetchError {
    /// Whether Marathon refused the credentials (after one fresh login, where possible).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, FetchError::Status { status, .. } if *status == StatusCode::UNAUTHORIZED)
            || matches!(self, FetchError::Auth(_))
    }
}

/// One Marathon URL: what to request and how to name it in messages.
#[derive(Debug, Clone)]
pub struct Base {
    pub(super) url: reqwest::Url,
    /// The URL without any `user:password@`.
    pub shown: String,
}

/// Marathon-LB's read timeout for `/v2/apps`.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(46);
/// Marathon-LB's connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(3050);

/// A client for one Marathon cluster. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct MarathonClient {
    pub(super) bases: Vec<Base>,
    pub(super) http: reqwest::Client,
    pub(super) auth: Arc<Auth>,
    /// The base that answered last: REST calls start there.
    pub(super) preferred: AtomicUsize,
    pub(super) tls: TlsRoots,
}

/// The CA certificates to trust, kept to build the event-stream client with the same TLS.
#[derive(Debug, Clone, Default)]
pub(super) struct TlsRoots(Vec<reqwest::Certificate>);

impl TlsRoots {
    pub(super) fn apply(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        if !self.0.is_empty() {
            builder = builder.tls_built_in_root_certs(false);
            for cert in &self.0 {
                builder = builder.add_root_certificate(cert.clone());
            }
        }
        builder
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            // Redirects are followed by hand where Marathon uses them (the event stream), so
            // that the auth header goes along to the leader.
            .redirect(reqwest::redirect::Policy::none())
    }
}

impl MarathonClient {
    pub fn new(config: MarathonConfig) -> Result<MarathonClient, ConfigError> {
        if config.urls.is_empty() {
            return Err(ConfigError::NoUrl);
        }
        let bases = config
            .urls
            .iter()
            .map(|u| parse_base(u))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match &config.ca_cert {
            Some(path) => TlsRoots(read_ca_bundle(path)?),
            None => TlsRoots::default(),
        };
        let http = tls
            .apply(reqwest::Client::builder())
            .gzip(true)
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        let auth = Arc::new(Auth::new(config.credentials, http.clone()));
        Ok(MarathonClient {
            bases,
            http,
            auth,
            preferred: AtomicUsize::new(0),
            tls,
        })
    }

    /// The URLs, without credentials, in the order given.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.bases.iter().map(|b| b.shown.as_str())
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The raw `/v2/apps?embed=apps.tasks` document.
    pub async fn fetch_apps(&self) -> Result<Bytes, FetchError> {
        self.get_with_failover("/v2/apps", "embed=apps.tasks").await
    }

    /// `/v2/apps/{id}?embed=app.tasks`: the document, or `None` when Marathon says the app does
    /// not exist.
    pub async fn fetch_app(&self, id: &str) -> Result<Option<Bytes>, FetchError> {
        let path = format!("/v2/apps/{}", id.trim_start_matches('/'));
        match self.get_with_failover(&path, "embed=app.tasks").await {
            Ok(body) => Ok(Some(body)),
            Err(FetchError::Status { status, .. }) if status == StatusCode::NOT_FOUND => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The answer of the first URL that gives one, starting with the one that answered last;
    /// the last error when none does. A 404 is an answer. (Marathon-LB moves on only after a
    /// connection error or timeout; Switchyard also moves on after an error status, since a
    /// Marathon that cannot find its leader answers 502 or 503.)
    async fn get_with_failover(&self, path: &str, query: &str) -> Result<Bytes, FetchError> {
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last_error = None;
        for i in 0..self.bases.len() {
            let index = (first + i) % self.bases.len();
            let answer = self.get(index, path, query).await;
            let answered = match &answer {
                Ok(_) => true,
                Err(FetchError::Status { status, .. }) => *status == StatusCode::NOT_FOUND,
                Err(_) => false,
            };
            if answered {
                self.preferred.store(index, Ordering::Relaxed);
                return answer;
            }
            last_error = answer.err();
        }
        Err(last_error.unwrap_or(FetchError::Request {
            url: String::new(),
            reason: "no Marathon URL".to_owned(),
        }))
    }

    /// `GET <base><path>?<query>` with auth, gzip and Marathon-LB's timeouts.
    async fn get(&self, index: usize, path: &str, query: &str) -> Result<Bytes, FetchError> {
        let base = &self.bases[index];
        let mut url = base.url.clone();
        let full_path = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&full_path);
        url.set_query(Some(query));
        let shown = format!("{}{path}", base.shown);
        let response = self
            .send_authorized(|auth| {
                let request = self
                    .http
                    .get(url.clone())
                    .header(ACCEPT, "application/json")
                    .timeout(FETCH_TIMEOUT);
                match auth {
                    Some(value) => request.header(AUTHORIZATION, value),
                    None => request,
                }
            })
            .await
            .map_err(|e| e.named(&shown))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status { url: shown, status });
        }
        response.bytes().await.map_err(|e| FetchError::Request {
            url: shown,
            reason: describe(&e),
        })
    }

    /// Sends a request with the current auth header; after a 401, logs in again (when that can
    /// help) and sends it once more.
    pub(super) async fn send_authorized(
        &self,
        request: impl Fn(Option<HeaderValue>) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Unnamed> {
        let mut retried = false;
        loop {
            let header = self.auth.header().await.map_err(Unnamed::Auth)?;
            let response = request(header.clone())
                .send()
                .await
                .map_err(|e| Unnamed::Request(describe(&e)))?;
            if response.status() == StatusCode::UNAUTHORIZED && self.auth.can_login() && !retried {
                self.auth.rejected(header.as_ref()).await;
                retried = true;
                continue;
            }
            return Ok(response);
        }
    }
}

/// A failure before the URL is attached for the message.
pub(super) enum Unnamed {
    Auth(AuthError),
    Request(String),
}

impl Unnamed {
    pub(super) fn named(self, url: &str) -> FetchError {
        match self {
            Unnamed::Auth(err) => FetchError::Auth(err),
            Unnamed::Request(reason) => FetchError::Request {
                url: url.to_owned(),
                reason,
            },
        }
    }
}

/// reqwest's error with its source chain, without the URL (which may hold credentials).
pub(super) fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else if err.is_decode() || err.is_body() {
        "broken body"
    } else {
        "failed"
    };
    let mut reason = kind.to_owned();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

fn parse_base(url: &str) -> Result<Base, ConfigError> {
    let parsed = reqwest::Url::parse(url.trim_end_matches('/'))
        .map_err(|_| ConfigError::BadUrl(redact(url)))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
        return Err(ConfigError::BadUrl(redact(url)));
    }
    let mut shown = parsed.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    Ok(Base {
        url: parsed,
        shown: shown.as_str().trim_end_matches('/').to_owned(),
    })
}

fn read_ca_bundle(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, ConfigError> {
    let failed = |reason: String| ConfigError::CaCert {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| failed(e.to_string()))?;
    if certs.is_empty() {
        return Err(failed("no certificate in it".to_owned()));
    }
    Ok(certs)
}

/// A URL fit for a message: everything before an `@` in the authority is dropped.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}<redacted>@{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_in_messages() {
        let base = parse_base("http://user:secret@marathon.mesos:8080/").unwrap();
        assert_eq!(base.url.password(), Some("secret"));
        assert_eq!(base.shown, "http://marathon.mesos:8080");
        let err = parse_base("ftp://user:secret@x").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
        let base = parse_base("https://master/service/marathon").unwrap();
        assert_eq!(base.shown, "https://master/service/marathon");
    }

    #[test]
    fn a_missing_ca_bundle_is_named() {
        let config = MarathonConfig {
            urls: vec!["https://marathon.mesos:8443".into()],
            ca_cert: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let err = MarathonClient::new(config).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
