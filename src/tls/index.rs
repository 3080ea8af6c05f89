//! Which certificate a handshake gets: exact SNI name, then a wildcard one label up, then the
//! default (the first certificate given). An index is immutable; reloads swap in a new one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::LoadedCert;

#[derive(Debug)]
pub struct CertIndex {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` stored as `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    by_path: HashMap<PathBuf, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl CertIndex {
    /// `certs` in the order given; the first is the default. Among certificates naming the same
    /// host, the first given wins.
    pub fn new(certs: &[LoadedCert], default: Arc<CertifiedKey>) -> CertIndex {
        let mut index = CertIndex {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            by_path: HashMap::new(),
            default,
        };
        for cert in certs {
            index
                .by_path
                .entry(cert.path.clone())
                .or_insert_with(|| cert.key.clone());
            for name in &cert.names {
                let table = match name.strip_prefix("*.") {
                    Some(suffix) => index.wildcard.entry(suffix.to_owned()),
                    None => index.exact.entry(name.clone()),
                };
                table.or_insert_with(|| cert.key.clone());
            }
        }
        index
    }

    pub fn for_name(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni.map(|n| n.trim_end_matches('.').to_ascii_lowercase()) else {
            return self.default.clone();
        };
        if let Some(key) = self.exact.get(&name) {
            return key.clone();
        }
        // A wildcard covers exactly one label.
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(key) = self.wildcard.get(parent) {
                return key.clone();
            }
        }
        self.default.clone()
    }

    /// The certificate loaded from `path` (an app's `HAPROXY_{n}_SSL_CERT`), else the default.
    pub fn for_path(&self, path: &std::path::Path) -> Arc<CertifiedKey> {
        self.by_path
            .get(path)
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }
}

/// The current index, swapped whole on reload; resolvers read it per handshake.
#[derive(Debug, Clone)]
pub struct SharedCerts(Arc<ArcSwap<CertIndex>>);

impl SharedCerts {
    pub fn new(index: CertIndex) -> SharedCerts {
        SharedCerts(Arc::new(ArcSwap::from_pointee(index)))
    }

    pub fn publish(&self, index: CertIndex) {
        self.0.store(Arc::new(index));
    }

    pub fn load(&self) -> Arc<CertIndex> {
        self.0.load_full()
    }
}

/// The HTTPS port's resolver: by SNI.
#[derive(Debug)]
pub struct BySni(pub SharedCerts);

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0 .0.load().for_name(hello.server_name()))
    }
}

/// A TLS service port's resolver: its app's certificate file.
#[derive(Debug)]
pub struct ByFile {
    pub certs: SharedCerts,
    pub path: PathBuf,
}

impl ResolvesServerCert for ByFile {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certs.0.load().for_path(&self.path))
    }
}
