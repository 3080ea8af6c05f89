//! Marathon's REST API beyond the apps fetch: one call of any method, with auth, failing over
//! to the next URL only when the request was never sent (a write that reached one Marathon
//! must not be repeated on another). Used by `switchyard zdd`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::client::{MarathonClient, Unnamed, FETCH_TIMEOUT};
use super::FetchError;

/// Marathon's answer: its status and body, whatever the status.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    /// Marathon's `{"message": ...}`, or the body's start.
    pub fn message(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(200).collect())
    }
}

impl MarathonClient {
    /// `method <base><path>?<query>` with a JSON `body`, from the URL that answered last.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, FetchError> {
        let body = body.map(|b| b.to_string());
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last_error = None;
        for i in 0..self.bases.len() {
            let index = (first + i) % self.bases.len();
            let base = &self.bases[index];
            let mut url = base.url.clone();
            let full_path = format!("{}{path}", url.path().trim_end_matches('/'));
            url.set_path(&full_path);
            url.set_query((!query.is_empty()).then_some(query));
            let shown = format!("{}{path}", base.shown);
            let sent = self
                .send_authorized(|auth| {
                    let mut request = self
                        .http
                        .request(method.clone(), url.clone())
                        .header(ACCEPT, "application/json")
                        .timeout(FETCH_TIMEOUT);
                    if let Some(body) = &body {
                        request = request
                            .header(CONTENT_TYPE, "application/json")
                            .body(body.clone());
                    }
                    match auth {
                        Some(value) => request.header(AUTHORIZATION, value),
                        None => request,
                    }
                })
                .await;
            match sent {
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    let status = response.status();
                    let body = response.bytes().await.map_err(|e| FetchError::Request {
                        url: shown,
                        reason: super::client::describe(&e),
                    })?;
                    return Ok(Answer { status, body });
                }
                Err(Unnamed::Request(reason)) if reason.starts_with("cannot connect") => {
                    last_error = Some(Unnamed::Request(reason).named(&shown));
                }
                Err(failed) => return Err(failed.named(&shown)),
            }
        }
        Err(last_error.unwrap_or(FetchError::Request {
            url: String::new(),
            reason: "no Marathon URL".to_owned(),
        }))
    }
}
