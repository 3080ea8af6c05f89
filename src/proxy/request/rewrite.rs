//! A request and its response as they pass through: the upstream's view of the request
//! (origin-form target, proxypass prefix off, hop-by-hop headers out, `X-Forwarded-*` in), the
//! client's view of the response (revproxy paths, HSTS), and the sticky-session cookie.

use http::header::{self, HeaderValue};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;

use crate::balance::STICKY_COOKIE;
use crate::model::VHost;
use crate::proxy::request::body::{ProxyBody, UpstreamBody};
use crate::proxy::request::error::ProxyError;
use crate::proxy::request::headers::{self, Forwarded};
use crate::proxy::Frontend;
use crate::routing::Backend;
use crate::upstream::body::RequestBody;

/// The request as the upstream sees it: origin-form URI (minus the proxypass prefix),
/// hop-by-hop headers gone, `Host` kept (from `:authority` on HTTP/2), `X-Forwarded-*` added.
pub fn request(
    request: Request<Incoming>,
    backend: &Backend,
    host: Option<HeaderValue>,
    forwarded: &Forwarded,
    upgrade: bool,
    body_timeout: std::time::Duration,
) -> Result<Request<RequestBody>, ProxyError> {
    let (mut parts, body) = request.into_parts();
    let body = RequestBody::new(body, backend.metrics.bytes_in().clone(), body_timeout);
    if let Some(prefix) = &backend.labels().proxypass_path {
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let stripped = match path_and_query.strip_prefix(prefix.as_str()) {
            Some("") => Some("/".to_owned()),
            Some(rest) if rest.starts_with('?') => Some(format!("/{rest}")),
            Some(rest) if rest.starts_with('/') => Some(rest.to_owned()),
            _ => None,
        };
        if let Some(stripped) = stripped {
            parts.uri = stripped
                .parse()
                .map_err(|_| ProxyError::BadRequest("unparsable request target"))?;
        }
    }
    if parts.uri.authority().is_some() || parts.uri.scheme().is_some() {
        // Origin-form upstream; `PathAndQuery` clones by reference count.
        let path_and_query = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        parts.uri = Uri::from(path_and_query);
    }
    parts.version = Version::HTTP_11;
    let http2 = backend.protocol.is_http2() && !upgrade;
    // gRPC needs `TE: trailers` end to end; HTTP/2 allows that one value (RFC 9113 §8.2.2).
    let trailers = http2 && headers::accepts_trailers(&parts.headers);
    headers::strip_hop_by_hop(&mut parts.headers, upgrade);
    // The host we routed by is the host the upstream sees, but for proxypass, which names it.
    let host = backend.proxypass_host.clone().or(host);
    if http2 {
        for_http2(&mut parts, host, backend.protocol.is_tls())?;
        if trailers {
            parts
                .headers
                .insert(header::TE, HeaderValue::from_static("trailers"));
        }
    } else if let Some(host) = host {
        parts.headers.insert(header::HOST, host);
    }
    headers::add_forwarded(&mut parts.headers, forwarded);
    Ok(Request::from_parts(parts, body))
}

/// An HTTP/2 request names its host in `:authority` (from an absolute URI), not in `Host`
/// (RFC 9113 §8.3.1), and its scheme is the upstream connection's. Without a host it stays in
/// origin form (`:scheme http`, no `:authority`).
fn for_http2(
    parts: &mut http::request::Parts,
    host: Option<HeaderValue>,
    tls: bool,
) -> Result<(), ProxyError> {
    parts.headers.remove(header::HOST);
    let Some(host) = host else {
        return Ok(());
    };
    let authority = http::uri::Authority::try_from(host.as_bytes())
        .map_err(|_| ProxyError::BadRequest("unusable host"))?;
    let mut uri = http::uri::Parts::from(std::mem::take(&mut parts.uri));
    uri.scheme = Some(if tls {
        http::uri::Scheme::HTTPS
    } else {
        http::uri::Scheme::HTTP
    });
    uri.authority = Some(authority);
    if uri.path_and_query.is_none() {
        uri.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    parts.uri = Uri::from_parts(uri).map_err(|_| ProxyError::BadRequest("unusable host"))?;
    parts.version = Version::HTTP_2;
    Ok(())
}

pub fn response(
    response: Response<crate::proxy::request::body::Upstream>,
    backend: &Backend,
    frontend: Frontend,
    idle: std::time::Duration,
    held: crate::proxy::request::body::Held,
) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    // We speak HTTP/1.1 (or 2) to the client whatever the upstream spoke.
    parts.version = Version::HTTP_11;
    headers::strip_hop_by_hop(&mut parts.headers, false);
    let labels = backend.labels();
    if let Some(prefix) = &labels.revproxy_path {
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let rewritten = parts
                .headers
                .get(&name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| own_path(v, &labels.vhosts))
                .map(|path| format!("{}{path}", prefix.as_str().trim_end_matches('/')));
            if let Some(value) = rewritten.and_then(|v| HeaderValue::from_str(&v).ok()) {
                parts.headers.insert(name, value);
            }
        }
    }
    if labels.use_hsts && frontend.is_tls() {
        parts.headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=15768000"),
        );
    }
    let mut body = UpstreamBody::new(body, idle, held, backend.metrics.bytes_out().clone());
    // A gRPC response's status: in its head (Trailers-Only), counted now; else in its trailers.
    if super::grpc::is_call(&parts.headers) {
        match super::grpc::status(&parts.headers) {
            Some(code) => backend.metrics.grpc_status(code),
            None => body.count_grpc_status(backend.metrics.clone()),
        }
    }
    Response::from_parts(parts, ProxyBody::Upstream(body))
}

/// The path of a `Location` that points into the app itself: a path (`/landed`), or an absolute
/// `http://` or `https://` URL naming one of the app's vhosts, with or without a port, as
/// Marathon-LB's revproxy glue matches it (`^(https?://{hostname}(:[0-9]+)?)?(/.*)`). A URL
/// without a path points at `/`. Anything else (another host, another scheme) is not the app's.
fn own_path<'v>(location: &'v str, vhosts: &[VHost]) -> Option<&'v str> {
    if location.starts_with('/') {
        return Some(location);
    }
    let scheme_len = ["http://", "https://"]
        .iter()
        .find(|s| location.len() >= s.len() && location[..s.len()].eq_ignore_ascii_case(s))?
        .len();
    let rest = &location[scheme_len..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let mut buf = [0; crate::model::vhost::MAX_HOST_LEN];
    let host = crate::model::vhost::normalize_host(host.as_bytes(), &mut buf)?;
    if !vhosts.iter().any(|v| v.matches(host)) {
        return None;
    }
    match path {
        "" => Some("/"),
        path if path.starts_with('/') => Some(path),
        _ => None,
    }
}

/// The endpoint a `mesosphere_server_id` cookie names (16 hex digits), if any.
pub fn sticky_cookie(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == STICKY_COOKIE).then(|| u64::from_str_radix(value, 16).ok())?
        })
}

pub fn set_sticky_cookie(response: &mut Response<ProxyBody>, id: u64) {
    if let Ok(value) = HeaderValue::from_str(&format!("{STICKY_COOKIE}={id:016x}; Path=/")) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::own_path;
    use crate::model::VHost;

    #[test]
    fn own_locations_are_paths_and_urls_naming_the_app_s_vhosts() {
        let vhosts: Vec<VHost> = ["app.example.com", "*.apps.example.com"]
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        let own = |l| own_path(l, &vhosts);
        assert_eq!(own("/landed?x=1"), Some("/landed?x=1"));
        assert_eq!(own("http://app.example.com/landed"), Some("/landed"));
        assert_eq!(own("https://APP.example.com:8443/a/b?c"), Some("/a/b?c"));
        assert_eq!(own("http://x.apps.example.com/"), Some("/"));
        assert_eq!(own("https://app.example.com"), Some("/"));
        assert_eq!(own("https://app.example.com?next=1"), None);
        assert_eq!(own("http://elsewhere.example.com/landed"), None);
        assert_eq!(own("http://app.example.com.evil.org/x"), None);
        assert_eq!(own("http://user@app.example.com/x"), None);
        assert_eq!(own("http://app.example.com:x/"), None);
        assert_eq!(own("ftp://app.example.com/x"), None);
        assert_eq!(own("landed"), None);
    }
}
