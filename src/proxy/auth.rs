//! `HAPROXY_{n}_AUTH`: HTTP basic auth against the crypt(3) hash Marathon-LB users have in
//! their labels.
//!
//! crypt is deliberately slow (a SHA-512 hash is thousands of rounds), so it runs on the
//! blocking pool, never on a request worker, and the last `Authorization` value that passed is
//! remembered per backend (lock-free) so that a client's next requests cost one comparison.

use arc_swap::ArcSwapOption;
use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use super::body::ProxyBody;
use super::error::status_response;
use subtle::ConstantTimeEq;

use crate::model::labels::BasicAuth;

/// The last `Authorization` header value that passed, per backend.
pub type VerifiedCache = ArcSwapOption<Box<[u8]>>;

/// Whether the request carries the right user and password.
pub async fn allowed(auth: &BasicAuth, cache: &VerifiedCache, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    if cache
        .load()
        .as_deref()
        .is_some_and(|ok| bool::from(ok.ct_eq(value.as_bytes())))
    {
        return true;
    }
    let Some((user, password)) = decode(value) else {
        return false;
    };
    // Constant time, like the cache check above and crypt's own comparison: how much of a
    // guess matched must not show in how long the answer takes.
    if !bool::from(user.as_bytes().ct_eq(auth.user.as_bytes())) {
        return false;
    }
    let hash = auth.hash.to_string();
    let verified = tokio::task::spawn_blocking(move || pwhash::unix::verify(&password, &hash))
        .await
        .unwrap_or(false);
    if verified {
        cache.store(Some(std::sync::Arc::new(value.as_bytes().into())));
    }
    verified
}

/// `401` with the realm, asking for credentials.
pub fn challenge(auth: &BasicAuth) -> Response<ProxyBody> {
    let mut response = status_response(StatusCode::UNAUTHORIZED);
    let realm = auth.realm.replace('"', "");
    if let Ok(value) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// `Basic base64(user:password)` → (user, password).
fn decode(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
