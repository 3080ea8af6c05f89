//! The load benchmark's Pingora peer: a minimal load balancer on Cloudflare's `pingora-proxy`,
//! shaped like its own `load_balancer` example (a `LoadBalancer<RoundRobin>` per upstream, a
//! `ProxyHttp` that picks a peer), routing by Host to the bench's nginx backends. Built and run
//! by scripts/loadbench.py only, which writes its Cargo.toml; not part of Switchyard.
//!
//! pingora-peer ROUTES THREADS HTTP_ADDR [TLS_ADDR CERT KEY]
//!
//! ROUTES has one line a vhost: `NAME ADDR ADDR ...`. HTTP_ADDR serves HTTP/1.1 and h2c (prior
//! knowledge, sniffed from the preface); TLS_ADDR serves TLS with ALPN h2 and http/1.1.
//! Upstream connections are kept alive in Pingora's pool (its default).

use async_trait::async_trait;
use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_load_balancing::{selection::RoundRobin, LoadBalancer};
use pingora_proxy::{ProxyHttp, Session};
use std::collections::HashMap;
use std::sync::Arc;

struct Router(HashMap<String, Arc<LoadBalancer<RoundRobin>>>);

impl Router {
    fn host<'a>(&self, session: &'a Session) -> Option<&'a str> {
        let req = session.req_header();
        let host = match req.headers.get("host") {
            Some(value) => value.to_str().ok()?,
            None => req.uri.authority()?.as_str(), // HTTP/2's :authority
        };
        Some(host.split(':').next().unwrap_or(host))
    }
}

#[async_trait]
impl ProxyHttp for Router {
    type CTX = ();
    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let lb = self
            .host(session)
            .and_then(|host| self.0.get(&host.to_ascii_lowercase()))
            .ok_or_else(|| Error::new(ErrorType::HTTPStatus(503)))?;
        let upstream = lb
            .select(b"", 256)
            .ok_or_else(|| Error::new(ErrorType::HTTPStatus(503)))?;
        Ok(Box::new(HttpPeer::new(upstream, false, String::new())))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        _ctx: &mut Self::CTX,
    ) -> Result<()> {
        // As the other peers do: the client's address in X-Forwarded-For.
        if let Some(addr) = session.client_addr().and_then(|a| a.as_inet()) {
            upstream_request.insert_header("X-Forwarded-For", addr.ip().to_string())?;
        }
        Ok(())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 && args.len() != 7 {
        eprintln!("usage: pingora-peer ROUTES THREADS HTTP_ADDR [TLS_ADDR CERT KEY]");
        std::process::exit(2);
    }
    let mut routes = HashMap::new();
    let text = std::fs::read_to_string(&args[1]).expect("read the routes file");
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let Some(name) = words.next() {
            let lb = LoadBalancer::try_from_iter(words).expect("backend addresses");
            routes.insert(name.to_ascii_lowercase(), Arc::new(lb));
        }
    }
    let conf = ServerConf {
        threads: args[2].parse().expect("THREADS"),
        pid_file: format!("{}.pid", args[1]),
        upgrade_sock: format!("{}.sock", args[1]),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut lb = pingora_proxy::http_proxy_service(&server.configuration, Router(routes));
    let mut options = HttpServerOptions::default();
    options.h2c = true;
    lb.app_logic_mut().expect("the proxy").server_options = Some(options);
    lb.add_tcp(&args[3]);
    if args.len() == 7 {
        let mut tls = TlsSettings::intermediate(&args[5], &args[6]).expect("certificate and key");
        tls.enable_h2();
        lb.add_tls_with_settings(&args[4], None, tls);
    }
    server.add_service(lb);
    server.run_forever();
}
