//! Request checks hyper leaves to the proxy. hyper's parser already refuses bad framing (CL/TE
//! conflicts, obfuscated chunking, control bytes in names and values); what remains is the
//! meaning of the head: a `Host` that is not a host, and methods a reverse proxy does not relay.

use http::header;
use http::uri::Authority;
use http::{Method, Request};

use crate::proxy::request::error::ProxyError;

/// Rejects what must not be routed or forwarded; called before routing.
pub fn request<B>(request: &Request<B>) -> Result<(), ProxyError> {
    if request.method() == Method::CONNECT {
        // A reverse proxy is not a forward proxy: a CONNECT tunnel would reach anything.
        return Err(ProxyError::BadRequest("CONNECT is not proxied"));
    }
    if let Some(authority) = request.uri().authority() {
        // HTTP/2 `:authority` or an absolute-form target: routed by, so held to Host's rules.
        if !is_host(authority.as_str().as_bytes()) {
            return Err(ProxyError::BadRequest("authority is not a host[:port]"));
        }
    }
    for host in request.headers().get_all(header::HOST) {
        if !is_host(host.as_bytes()) {
            return Err(ProxyError::BadRequest("Host is not a host[:port]"));
        }
    }
    Ok(())
}

/// `host[:port]` (RFC 9110 §7.2): a non-empty authority without userinfo. Routing and the
/// upstream's `Host` use it verbatim, so anything else (spaces, paths, `user@`) is refused.
pub(in crate::proxy) fn is_host(value: &[u8]) -> bool {
    !value.is_empty() && !value.contains(&b'@') && Authority::try_from(value).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for good in [
            "a.example.com",
            "a.example.com:8080",
            "10.0.0.1",
            "[::1]:80",
            "A-B",
        ] {
            assert!(is_host(good.as_bytes()), "{good}");
        }
        for bad in ["", "a b", "a/b", "u@a", "a\\b", "a:b:c", "a?b", "a#b"] {
            assert!(!is_host(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn connect_is_refused() {
        let request = Request::builder()
            .method(Method::CONNECT)
            .uri("a.example.com:443")
            .body(())
            .unwrap();
        assert!(request_is_bad(&request));
        let request = Request::builder().header("host", "a b").body(()).unwrap();
        assert!(request_is_bad(&request));
        let request = Request::builder()
            .header("host", "a.example.com")
            .body(())
            .unwrap();
        assert!(!request_is_bad(&request));
    }

    fn request_is_bad(r: &Request<()>) -> bool {
        matches!(request(r), Err(ProxyError::BadRequest(_)))
    }
}
