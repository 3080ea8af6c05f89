//! HTTPS end to end: certificates the test makes (a CA, several names, a wildcard), real TLS
//! clients (rustls directly, reqwest, curl), SNI selection, routing by Host, HTTP/2 by ALPN,
//! HSTS and redirects, a TLS service port, rotation under load and broken files, Marathon-LB's
//! `HAPROXY_SSL_CERT` variables.
//!
//! The certificate authority, the proxy set-up and the clients are here; the tests are in
//! `sni_and_routing`, `certificate_files`, `environment` and `handshakes`.

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use support::proxy::{app, client, get, start_with_certs, Backend};
use switchyard::proxy::ProxyConfig;
use switchyard::serve::{Handle, Source};
use switchyard::upstream::tls::AnyCertificate;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod certificate_files;
mod environment;
mod handshakes;
mod native_h1;
mod sni_and_routing;

/// A test CA and the certificates it signs.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate file: its PEM (chain + key) and the leaf's DER, to recognise it.
struct Issued {
    pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "switchyard test CA");
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn issue(&self, names: &[&str]) -> Issued {
        self.issue_with(names, |_| {})
    }

    fn issue_with(&self, names: &[&str], adjust: impl FnOnce(&mut CertificateParams)) -> Issued {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        adjust(&mut params);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            pem: format!("{}{}", cert.pem(), key.serialize_pem()),
            der: cert.der().to_vec(),
        }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// Writes then renames, as a deploy tool would.
fn write(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Tls {
    handle: Handle,
    https: SocketAddr,
    dir: tempfile::TempDir,
}

impl Tls {
    async fn start(apps: Value, certs: &[(&str, &Issued)]) -> Tls {
        // Tests reload explicitly (as SIGHUP does) and wait for it.
        let poll = Duration::from_secs(3600);
        Tls::start_with(apps, certs, ProxyConfig::default(), poll).await
    }

    async fn start_with(
        apps: Value,
        certs: &[(&str, &Issued)],
        proxy: ProxyConfig,
        cert_poll_interval: Duration,
    ) -> Tls {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (file, issued) in certs {
            let path = dir.path().join(file);
            write(&path, &issued.pem);
            paths.push(path);
        }
        let apps_file = dir.path().join("apps.json");
        write(&apps_file, &json!({ "apps": apps }).to_string());
        let handle = start_with_certs(
            Source::File(apps_file),
            Duration::from_secs(3600),
            proxy,
            paths,
            cert_poll_interval,
        )
        .await;
        handle.wait_generation(1).await;
        let https = handle.https_addr.unwrap();
        Tls { handle, https, dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Rewrites a certificate file and waits until the balancer has looked at it.
    async fn replace(&self, file: &str, contents: &str) {
        let seen = self.handle.cert_reloads();
        write(&self.path(file), contents);
        self.handle.reload();
        self.handle.wait_cert_reloads(seen + 1).await;
    }
}

/// A client that accepts any certificate and offers HTTP/1.1, sending SNI when `sni`.
fn client_config(sni: bool) -> rustls::ClientConfig {
    client_config_for(rustls::DEFAULT_VERSIONS, sni)
}

/// [`client_config`] offering only `versions`.
fn client_config_for(
    versions: &[&'static rustls::SupportedProtocolVersion],
    sni: bool,
) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.enable_sni = sni;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// A TLS connection with `sni` (none when `None`); returns the stream and the leaf's DER.
async fn handshake(
    addr: SocketAddr,
    sni: Option<&str>,
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, Vec<u8>), String> {
    handshake_offering(addr, sni, b"http/1.1").await
}

/// [`handshake`] offering the one ALPN protocol `alpn`.
async fn handshake_offering(
    addr: SocketAddr,
    sni: Option<&str>,
    alpn: &[u8],
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, Vec<u8>), String> {
    let mut config = client_config(sni.is_some());
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = ServerName::try_from(sni.unwrap_or("no-sni.invalid").to_owned()).unwrap();
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    Ok((stream, leaf))
}

/// One HTTP/1.x request over an open TLS stream; returns the whole response.
async fn request(mut stream: tokio_rustls::client::TlsStream<TcpStream>, head: &str) -> String {
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// reqwest trusting only the test CA, with `names` resolved to the HTTPS port.
fn https_client(ca: &Ca, addr: SocketAddr, names: &[&str]) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    for name in names {
        builder = builder.resolve(name, addr);
    }
    builder.build().unwrap()
}

fn curl(args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/install-test-deps.sh)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
