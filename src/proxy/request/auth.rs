//! `HAPROXY_{n}_AUTH`: HTTP basic auth against the crypt(3) hash Marathon-LB users have in
//! their labels.
//!
//! crypt is deliberately slow (a SHA-512 hash is thousands of rounds), so it runs on the
//! blocking pool, never on a request worker, and the last `Authorization` value that passed is
//! remembered per backend (lock-free) so that a client's next requests cost one comparison.
//! An unknown user costs the same crypt as a wrong password (the answer's time tells nothing
//! about which names exist), and a client address that keeps failing is refused (429) before
//! any crypt runs, so that failed logins cannot occupy the blocking pool.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use crate::proxy::request::body::ProxyBody;
use crate::proxy::request::error::status_response;
use subtle::ConstantTimeEq;

use crate::model::labels::BasicAuth;

/// The last `Authorization` header value that passed, per backend.
pub type VerifiedCache = ArcSwapOption<Box<[u8]>>;

/// What a request's credentials earn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// 401, with the realm.
    Denied,
    /// 429: this client address failed too often just now (or has that many checks running);
    /// no crypt was run.
    TooManyFailures,
}

/// Whether the request carries the right user and password.
pub async fn check(
    auth: &BasicAuth,
    cache: &VerifiedCache,
    headers: &HeaderMap,
    client: IpAddr,
    failures: &FailureLimiter,
) -> Verdict {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Verdict::Denied;
    };
    if cache
        .load()
        .as_deref()
        .is_some_and(|ok| bool::from(ok.ct_eq(value.as_bytes())))
    {
        return Verdict::Allowed;
    }
    let Some((user, password)) = decode(value) else {
        return Verdict::Denied;
    };
    if !failures.take(client) {
        return Verdict::TooManyFailures;
    }
    // Constant time, like the cache check above and crypt's own comparison; and the crypt
    // runs whether the user is right or not: how much of a guess matched, and whether a user
    // name exists, must not show in how long the answer takes.
    let user_matches = bool::from(user.as_bytes().ct_eq(auth.user.as_bytes()));
    let hash = auth.hash.to_string();
    let password_matches =
        tokio::task::spawn_blocking(move || pwhash::unix::verify(&password, &hash))
            .await
            .unwrap_or(false);
    if user_matches && password_matches {
        failures.refund(client);
        cache.store(Some(std::sync::Arc::new(value.as_bytes().into())));
        Verdict::Allowed
    } else {
        Verdict::Denied
    }
}

/// Failed `_AUTH` checks per client address (a check's token is taken when it starts and given
/// back if it passes): a token bucket each of [`FAILURE_BURST`],
/// refilled at [`FAILURES_PER_SECOND`], in a fixed table of atomics indexed by a hash of the
/// address (bounded memory, no lock; two addresses that share a slot share a budget).
#[derive(Debug)]
pub struct FailureLimiter {
    /// Per slot: the millisecond of the last refill (high 44 bits) and the tokens left, in
    /// thousandths (low 20 bits).
    slots: Box<[AtomicU64]>,
    hasher: ahash::RandomState,
}

/// Failed checks an address may make at once, then [`FAILURES_PER_SECOND`].
pub const FAILURE_BURST: u64 = 10;
pub const FAILURES_PER_SECOND: u64 = 5;
const SLOTS: usize = 4096;
const MILLI: u64 = 1000;
const TOKEN_BITS: u32 = 20;

impl Default for FailureLimiter {
    fn default() -> Self {
        FailureLimiter {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: ahash::RandomState::new(),
        }
    }
}

impl FailureLimiter {
    /// Takes one of `client`'s failures ahead of a check, so that checks running at once
    /// cannot overspend the budget; false when none is left.
    fn take(&self, client: IpAddr) -> bool {
        let slot = self.slot(client);
        slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
            let (now, tokens) = self.refilled(word);
            (tokens >= MILLI).then(|| now << TOKEN_BITS | (tokens - MILLI))
        })
        .is_ok()
    }

    /// Gives back what [`FailureLimiter::take`] took, for a check that passed.
    fn refund(&self, client: IpAddr) {
        let slot = self.slot(client);
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
            let (now, tokens) = self.refilled(word);
            Some(now << TOKEN_BITS | (tokens + MILLI).min(FAILURE_BURST * MILLI))
        });
    }

    fn slot(&self, client: IpAddr) -> &AtomicU64 {
        let i = self.hasher.hash_one(client.to_canonical()) as usize % SLOTS;
        &self.slots[i]
    }

    /// A slot's word brought up to now: (now in ms, tokens in thousandths). A slot never used
    /// (0) is full.
    fn refilled(&self, word: u64) -> (u64, u64) {
        let now = crate::balance::state::now_ms();
        let (last, tokens) = (word >> TOKEN_BITS, word & ((1 << TOKEN_BITS) - 1));
        if last == 0 {
            return (now, FAILURE_BURST * MILLI);
        }
        let earned = now.saturating_sub(last) * FAILURES_PER_SECOND;
        (now, (tokens + earned).min(FAILURE_BURST * MILLI))
    }
}

/// `429`: come back in a second.
pub fn too_many_failures() -> Response<ProxyBody> {
    let mut response = status_response(StatusCode::TOO_MANY_REQUESTS);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_has_a_burst_of_failures_and_passing_checks_cost_nothing() {
        let limiter = FailureLimiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(limiter.take(a));
        limiter.refund(a);
        for i in 0..FAILURE_BURST {
            assert!(limiter.take(a), "failure {i}");
        }
        assert!(!limiter.take(a), "the burst is spent");
    }
}
