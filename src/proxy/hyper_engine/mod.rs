//! One HTTP request through the proxy, in a fixed order:
//! route → checks (ACL, redirects) → pick endpoint → rewrite → forward (retry while unsent) →
//! rewrite the response → stream it back (or tunnel after a 101).

mod answer;
pub mod upstream;
mod upstream_h2;
mod upstream_native;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::proxy::conn::limits::{RequestGuard, Tracked};
use crate::proxy::request::access_log::{BytesIn, LoggedBody, RequestLog};
use crate::proxy::request::body::ProxyBody;
use crate::proxy::request::error::{status_response, ProxyError};
use crate::proxy::request::headers::{self, Forwarded};
use crate::proxy::request::rewrite;
use crate::proxy::request::route::{self, RouteKey};
use crate::proxy::Frontend;
use crate::proxy::ProxyContext;
use crate::routing::Backend;
use upstream::Attempt;

/// The endpoint that answered, for the access log.
#[derive(Debug, Clone, Copy)]
struct ServedBy(SocketAddr);

/// What every request on one client connection shares, made once when it connects: one
/// reference count per request instead of one per field.
pub struct Downstream {
    pub ctx: Arc<ProxyContext>,
    pub frontend: Frontend,
    pub client: SocketAddr,
    /// The name the client gave in its TLS handshake, used when the request names no host.
    pub sni: Option<Arc<str>>,
    pub forwarded: Forwarded,
}

/// hyper's service function: never fails; every error is a response. `guard` holds the
/// request's place in its connection's activity until the response body ends.
///
/// The stream's task copies this future whole as it starts and as it ends, so it is kept flat
/// and small: the upstream exchange and rare paths (auth) are boxed, and
/// `tests::a_request_future_stays_small` keeps it so.
pub async fn proxy_request(
    down: Arc<Downstream>,
    guard: RequestGuard,
    request: Request<Incoming>,
) -> Result<Response<Tracked<LoggedBody<ProxyBody>>>, Infallible> {
    let http2 = request.version() == Version::HTTP_2;
    // A gRPC call gets the balancer's own answers as gRPC statuses.
    let grpc = crate::proxy::request::grpc::is_call(request.headers());
    let started = std::time::Instant::now();
    // Only with --access-log: what the line needs from the request before it moves on.
    let logged = (down.ctx.config.access_log)
        .then(|| Box::new(RequestLog::of(&request, down.client, down.frontend)));
    let (response, line) = match route(&down, &request) {
        Ok((backend, host)) => {
            let bytes_in = logged.as_ref().map(|_| Arc::default());
            let answer = forward(&down, &backend, host, request, bytes_in.clone()).await;
            let logged = logged.map(|request| (request, bytes_in.map(BytesIn::Counted)));
            answer::account(&down, backend, started.elapsed(), logged, answer, grpc)
        }
        Err(err) => answer::unrouted(&down, &request, err, logged, grpc),
    };
    let response = response.map(|body| LoggedBody::new(body, line));
    Ok(crate::proxy::conn::limits::finish_response(
        response, guard, http2,
    ))
}

/// Checks the request and finds its backend (and the host it was routed by).
fn route(
    down: &Downstream,
    request: &Request<Incoming>,
) -> Result<(Arc<Backend>, Option<HeaderValue>), ProxyError> {
    crate::proxy::request::validate::request(request)?;
    let host = routing_host(down, request)?;
    let key = RouteKey {
        host: host.as_ref().map_or(&b""[..], HeaderValue::as_bytes),
        path: request.uri().path(),
        app_id: request
            .headers()
            .get("x-marathon-app-id")
            .map(HeaderValue::as_bytes),
    };
    let backend = route::backend(&down.ctx.table, down.frontend, key).ok_or(ProxyError::NoRoute)?;
    Ok((backend, host))
}

/// The host a request is routed by: the one it names, else (HTTP/1.0 and HTTP/2 may name
/// none) on TLS the handshake's name.
fn routing_host(
    down: &Downstream,
    request: &Request<Incoming>,
) -> Result<Option<HeaderValue>, ProxyError> {
    Ok(match request_host(request)? {
        None => down
            .sni
            .as_deref()
            .and_then(|name| HeaderValue::from_str(name).ok()),
        host => host,
    })
}

/// Everything after the backend is known: ACL, redirects, auth, then the endpoints in turn.
async fn forward(
    down: &Downstream,
    backend: &Arc<Backend>,
    host: Option<HeaderValue>,
    mut request: Request<Incoming>,
    bytes_in: Option<Arc<std::sync::atomic::AtomicU64>>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let Downstream {
        ctx,
        frontend,
        client,
        forwarded,
        ..
    } = down;
    let (frontend, client) = (*frontend, *client);
    let host_bytes = host.as_ref().map_or(&b""[..], HeaderValue::as_bytes);

    if let Some(allowed) = &backend.labels().allowed_networks {
        let ip = client.ip().to_canonical();
        if !allowed.iter().any(|net| net.contains(&ip)) {
            return Err(ProxyError::Forbidden);
        }
    }
    if let Some(redirect) = redirect(backend, frontend, host_bytes, request.uri()) {
        return Ok(redirect);
    }
    if let Some(auth) = &backend.labels().auth {
        // Boxed: checking a password waits on a blocking thread, state every request would
        // carry if it were inline.
        let verified = &backend.verified_authorization;
        let headers = request.headers();
        let check = crate::proxy::request::auth::check(
            auth,
            verified,
            headers,
            client.ip(),
            &ctx.auth_failures,
        );
        match Box::pin(check).await {
            crate::proxy::request::auth::Verdict::Allowed => {}
            crate::proxy::request::auth::Verdict::Denied => {
                return Ok(crate::proxy::request::auth::challenge(auth))
            }
            crate::proxy::request::auth::Verdict::TooManyFailures => {
                return Ok(crate::proxy::request::auth::too_many_failures())
            }
        }
    }

    let upgrade =
        headers::wants_upgrade(request.headers()) && request.version() == Version::HTTP_11;
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let sticky = backend.labels().sticky;
    let cookie = if sticky {
        rewrite::sticky_cookie(request.headers())
    } else {
        None
    };
    let body_timeout = ctx.config.client_body_timeout;
    let mut upstream_request =
        rewrite::request(request, backend, host, forwarded, upgrade, body_timeout)?;
    if let Some(bytes_in) = bytes_in {
        upstream_request = upstream_request.map(|body| body.logged_into(bytes_in));
    }

    let protocol = backend.protocol;
    let dial = upstream::Dial {
        // A WebSocket upgrade goes over HTTP/1.1 whatever the backend's protocol.
        http2: protocol.is_http2() && !upgrade,
        native_h1: ctx.config.native_http1
            && protocol == crate::model::BackendProtocol::H1
            && !upgrade,
        tls: protocol
            .is_tls()
            .then_some((&ctx.backend_tls, backend.verify_tls)),
        connect_timeout: ctx.config.connect_timeout,
        response_timeout: ctx.config.server_timeout,
        h2_keep_alive: ctx.config.backend_h2_keep_alive,
    };
    let mut attempts = crate::proxy::Attempts::new();
    let mut last_error = ProxyError::NoEndpoint;
    while let Some(target) = attempts.next(backend, client.ip(), cookie) {
        let in_flight = target.state.begin();
        match upstream::send(&target.state, upstream_request, &dial).await {
            Attempt::Response(response, exchanged) => {
                if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                    return Ok(tunnel(ctx, response, client_upgrade));
                }
                let stream = upstream::release(&target.state, exchanged);
                let idle = ctx.config.server_timeout;
                let held = (in_flight, stream);
                let mut response = rewrite::response(response, backend, frontend, idle, held);
                if ctx.config.access_log {
                    response.extensions_mut().insert(ServedBy(target.addr()));
                }
                if sticky && cookie != Some(target.sticky_id) {
                    rewrite::set_sticky_cookie(&mut response, target.sticky_id);
                }
                return Ok(response);
            }
            Attempt::NotSent(request, err) => {
                tracing::debug!(endpoint = %target.addr(), error = %err, "retrying on another endpoint");
                backend.metrics.connect_errors().inc();
                upstream_request = request;
                last_error = err;
            }
            Attempt::Failed(err) => return Err(err),
        }
    }
    Err(last_error)
}

/// The host a request names: the URI's authority when it has one (HTTP/2 `:authority`, or an
/// HTTP/1 absolute-form target, which RFC 9112 §3.2.2 puts before `Host`), else `Host`
/// (required on HTTP/1.1, exactly once). Cloning a parsed header value is a reference count.
fn request_host(request: &Request<Incoming>) -> Result<Option<HeaderValue>, ProxyError> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let header_host = hosts.next();
    if hosts.next().is_some() {
        return Err(ProxyError::BadRequest("more than one Host header"));
    }
    if let Some(authority) = request.uri().authority() {
        return HeaderValue::from_str(authority.as_str())
            .map(Some)
            .map_err(|_| ProxyError::BadRequest("bad authority"));
    }
    match header_host {
        Some(host) => Ok(Some(host.clone())),
        None if request.version() == Version::HTTP_11 => {
            Err(ProxyError::BadRequest("HTTP/1.1 request without Host"))
        }
        None => Ok(None),
    }
}

/// Marathon-LB's two redirects. `HAPROXY_{n}_REDIRECT_TO_HTTPS`: plain HTTP on the vhost
/// listener only (its frontend rule); service ports and 9091 keep proxying, for in-cluster
/// callers. `HAPROXY_{n}_HTTP_BACKEND_REDIR`: `/` on one of the app's vhosts, on any listener
/// (its backend rule, which checks `Host`).
fn redirect(
    backend: &Backend,
    frontend: Frontend,
    host: &[u8],
    uri: &Uri,
) -> Option<Response<ProxyBody>> {
    let labels = backend.labels();
    if labels.redirect_to_https && matches!(frontend, Frontend::Vhost { tls: false, .. }) {
        let host = crate::model::vhost::host_part(host)?;
        let host = std::str::from_utf8(host).ok()?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        return Some(moved(&format!("https://{host}{path}")));
    }
    if let Some(to) = &labels.redirect_root_to {
        if uri.path() == "/" && to.as_str() != "/" && is_own_host(backend, host) {
            return Some(moved(to.as_str()));
        }
    }
    None
}

/// Whether a request's host is one of the backend's vhosts.
fn is_own_host(backend: &Backend, host: &[u8]) -> bool {
    let mut buf = [0; crate::model::vhost::MAX_HOST_LEN];
    crate::model::vhost::normalize_host(host, &mut buf)
        .is_some_and(|host| backend.labels().vhosts.iter().any(|v| v.matches(host)))
}

fn moved(location: &str) -> Response<ProxyBody> {
    let mut response: Response<ProxyBody> = status_response(StatusCode::MOVED_PERMANENTLY);
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The 101 goes back to the client; once both sides have upgraded, bytes flow both ways until
/// either closes or the tunnel idles out.
fn tunnel(
    ctx: &ProxyContext,
    mut response: Response<crate::proxy::request::body::Upstream>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<ProxyBody> {
    let Some(client_upgrade) = client_upgrade else {
        // A 101 we did not ask for cannot be honoured.
        return status_response(StatusCode::BAD_GATEWAY);
    };
    let upstream_upgrade = hyper::upgrade::on(&mut response);
    let idle = ctx.config.tunnel_timeout;
    ctx.tunnels.spawn(async move {
        let (Ok(client), Ok(upstream)) = tokio::join!(client_upgrade, upstream_upgrade) else {
            return;
        };
        let _ = crate::proxy::tcp::copy_with_idle_timeout(
            TokioIo::new(client),
            TokioIo::new(upstream),
            idle,
        )
        .await;
    });
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, ProxyBody::Local(Default::default()))
}

#[cfg(test)]
mod tests {
    /// The size of the future an async fn of three arguments returns, from its type alone.
    fn future_size<A, B, C, F: std::future::Future>(_: impl FnOnce(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The bound keeps the upstream exchange and the rare paths (auth) boxed, and the layers
    /// flat.
    #[test]
    fn a_request_future_stays_small() {
        let size = future_size(super::proxy_request);
        assert!(size <= 2048, "proxy_request's future is {size} bytes");
    }
}
