//! Marathon: its wire format and how to fetch it. Knows Marathon, nothing about routing.
//!
//! This is the one-shot fetch `switchyard routes --marathon` uses; the event stream, auth and
//! failover arrive with the Marathon-source work and reuse [`fetch_apps`].

pub mod wire;

use std::time::Duration;

use bytes::Bytes;

pub use wire::{parse_apps, AppsSnapshot};

/// Why a fetch of `/v2/apps` failed. Messages never include credentials.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("invalid Marathon URL `{0}`")]
    BadUrl(String),
    #[error("request to {url} failed: {source}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("{url}: {source}")]
    Document {
        url: String,
        #[source]
        source: wire::DocumentError,
    },
}

/// Marathon-LB's read timeout for `/v2/apps`.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(46);

/// `GET <base>/v2/apps?embed=apps.tasks` (gzip accepted), parsed app by app.
pub async fn fetch_apps(client: &reqwest::Client, base: &str) -> Result<AppsSnapshot, FetchError> {
    let (body, url) = fetch_apps_body(client, base).await?;
    parse_apps(&body).map_err(|source| FetchError::Document { url, source })
}

/// The raw `/v2/apps?embed=apps.tasks` document from the first of `bases` that answers, and
/// the last error when none does. Marathon-LB moves to the next URL the same way.
pub async fn fetch_first(client: &reqwest::Client, bases: &[String]) -> Result<Bytes, FetchError> {
    let mut last_error = FetchError::BadUrl("no Marathon URL given".to_owned());
    for base in bases {
        match fetch_apps_body(client, base).await {
            Ok((body, _)) => return Ok(body),
            Err(err) => last_error = err,
        }
    }
    Err(last_error)
}

/// The response body, and the URL (without credentials) for messages.
async fn fetch_apps_body(
    client: &reqwest::Client,
    base: &str,
) -> Result<(Bytes, String), FetchError> {
    let (request_url, url) = apps_url(base)?;
    let request_error = |source| FetchError::Request {
        url: url.clone(),
        source,
    };
    let response = client
        .get(&request_url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(request_error)?;
    if !response.status().is_success() {
        return Err(FetchError::Status {
            url,
            status: response.status(),
        });
    }
    let body = response.bytes().await.map_err(request_error)?;
    Ok((body, url))
}

/// The URL to request and the same URL with any `user:password@` removed, for messages.
fn apps_url(base: &str) -> Result<(String, String), FetchError> {
    let mut parsed = reqwest::Url::parse(base.trim_end_matches('/'))
        .map_err(|_| FetchError::BadUrl(redact(base)))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
        return Err(FetchError::BadUrl(redact(base)));
    }
    let path = format!("{}/v2/apps", parsed.path().trim_end_matches('/'));
    parsed.set_path(&path);
    parsed.set_query(Some("embed=apps.tasks"));
    let request = parsed.to_string();
    let _ = parsed.set_password(None);
    let _ = parsed.set_username("");
    Ok((request, parsed.to_string()))
}

/// A URL fit for a message: everything before an `@` in the authority is dropped.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}<redacted>@{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// A client with Marathon-LB's connect timeout and gzip on.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(3050))
        .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
        .gzip(true)
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_in_messages() {
        let (request, shown) = apps_url("http://user:secret@marathon.mesos:8080/").unwrap();
        assert_eq!(
            request,
            "http://user:secret@marathon.mesos:8080/v2/apps?embed=apps.tasks"
        );
        assert_eq!(shown, "http://marathon.mesos:8080/v2/apps?embed=apps.tasks");
        let err = apps_url("ftp://user:secret@x").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
        let (request, _) = apps_url("https://master/service/marathon").unwrap();
        assert_eq!(
            request,
            "https://master/service/marathon/v2/apps?embed=apps.tasks"
        );
    }
}
