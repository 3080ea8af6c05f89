//! TLS termination with rustls: TLS 1.2 and 1.3 only (rustls implements only AEAD suites),
//! no 0-RTT, ALPN `h2` and `http/1.1`, certificates chosen per handshake from an index that
//! reloads swap whole.
//!
//! - `certs`: one PEM file → a checked `CertifiedKey` and its names; the self-signed default.
//! - `env_certs`: Marathon-LB's `HAPROXY_SSL_CERT` variables → PEM text to check.
//! - `index`: SNI → certificate (exact, wildcard, default); the resolvers.
//! - `store`: the files and variables, their reloads, the last good version of each.
//!
//! The certificate index lives in its own `ArcSwap` (`SharedCerts`), beside the routing table
//! rather than in it: the design's one-snapshot rule is for what Marathon's apps decide
//! together (routes, backends, selectors, metric handles), which must agree. Certificates come
//! from files, change on their own schedule (file polls, SIGHUP), and are looked up by SNI
//! before any route is: nothing in the table has to agree with them.

pub mod certs;
pub mod env_certs;
pub mod index;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::server::ResolvesServerCert;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

pub use certs::{CertError, LoadedCert};
pub use env_certs::EnvCert;
pub use index::{ByFile, BySni, CertIndex, SharedCerts};
pub use store::{CertStore, Reload};

/// A server configuration around `resolver`.
pub fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12]);
    // aws-lc-rs: RSA signatures cost about two thirds of ring's (docs/benchmarks.md). Its suites
    // are all AEAD (AES-GCM, ChaCha20-Poly1305); versions are valid.
    let mut config = match builder {
        Ok(builder) => builder.with_no_client_auth().with_cert_resolver(resolver),
        Err(_) => ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCert)),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.max_early_data_size = 0;
    // Stateless tickets (keys rotated every 6 hours): a returning browser resumes however many
    // others came since, where the default session cache holds 256 sessions. Without a random
    // source for the keys, sessions resume from that cache alone.
    match rustls::crypto::aws_lc_rs::Ticketer::new() {
        Ok(ticketer) => config.ticketer = ticketer,
        Err(error) => {
            tracing::warn!(%error, "no TLS session tickets; sessions resume from a cache")
        }
    }
    Arc::new(config)
}

/// The HTTPS port's acceptor: certificates by SNI.
pub fn vhost_acceptor(certs: &SharedCerts) -> TlsAcceptor {
    TlsAcceptor::from(server_config(Arc::new(BySni(certs.clone()))))
}

/// A TLS service port's acceptor: the app's certificate file.
pub fn file_acceptor(certs: &SharedCerts, path: PathBuf) -> TlsAcceptor {
    TlsAcceptor::from(server_config(Arc::new(ByFile {
        certs: certs.clone(),
        path,
    })))
}

/// Only if the provider refuses TLS 1.2/1.3 (it does not): no certificate, every handshake fails.
#[derive(Debug)]
struct NoCert;

impl ResolvesServerCert for NoCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }
}
