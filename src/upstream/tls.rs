//! TLS to endpoints (`h1-ssl`, `h2-ssl`): the client configurations, made once at start.
//!
//! With `--backend-ca`, an endpoint's chain must lead to one of its certificates; the name in
//! the certificate is not checked, as HAProxy's `ssl verify required` without `verifyhost` or
//! `sni` does not (endpoints are dialled by address, and a task's certificate names the service,
//! not the agent it landed on). Without it, or with the server line's `verify none`, any
//! certificate is accepted: what Marathon-LB's users wrote `verify none` for.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Why `--backend-ca` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BackendCaError {
    #[error("--backend-ca {path}: {reason}")]
    Unusable { path: String, reason: String },
}

/// The client configurations for TLS to endpoints: by ALPN (`h2` or `http/1.1`) and by whether
/// the certificate is checked.
#[derive(Debug, Clone)]
pub struct BackendTls {
    /// `[http2][checked]`; without a CA the checked ones accept any certificate too.
    configs: [[Arc<ClientConfig>; 2]; 2],
    /// Whether certificates are checked at all (`--backend-ca` given).
    pub verifies: bool,
}

impl BackendTls {
    /// From `--backend-ca` (PEM, one or more certificates), or none.
    pub fn new(ca: Option<&Path>) -> Result<BackendTls, BackendCaError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let any: Arc<dyn ServerCertVerifier> = Arc::new(AnyCertificate(provider.clone()));
        let checked: Arc<dyn ServerCertVerifier> = match ca {
            Some(path) => Arc::new(ChainOnly(chain_verifier(path, &provider)?)),
            None => any.clone(),
        };
        let config = |verifier: &Arc<dyn ServerCertVerifier>, alpn: &[u8]| {
            let mut config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default versions")
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_no_client_auth();
            config.alpn_protocols = vec![alpn.to_vec()];
            Arc::new(config)
        };
        Ok(BackendTls {
            configs: [
                [config(&any, b"http/1.1"), config(&checked, b"http/1.1")],
                [config(&any, b"h2"), config(&checked, b"h2")],
            ],
            verifies: ca.is_some(),
        })
    }

    /// Says once, at start, how endpoints' certificates are treated.
    pub fn report(&self, ca: Option<&Path>) {
        match ca {
            Some(path) => tracing::info!(ca = %path.display(), "TLS to backends: certificates are checked against --backend-ca (not with the server line's `verify none`)"),
            None => tracing::info!("TLS to backends (h1-ssl, h2-ssl): endpoints' certificates are not checked; give --backend-ca FILE to check them"),
        }
    }

    /// The TLS handshake on a connection to `addr`.
    pub async fn connect(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
        http2: bool,
        check: bool,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let config = self.configs[usize::from(http2)][usize::from(check)].clone();
        // An address: rustls sends no SNI for it, as HAProxy's `ssl` without `sni` sends none.
        let name = ServerName::IpAddress(addr.ip().into());
        TlsConnector::from(config).connect(name, stream).await
    }
}

fn chain_verifier(
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, BackendCaError> {
    let unusable = |reason: String| BackendCaError::Unusable {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| unusable(format!("not PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| unusable(format!("a certificate cannot be used: {e}")))?;
    }
    if roots.is_empty() {
        return Err(unusable("no certificate in the file".to_owned()));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| unusable(e.to_string()))
}

/// The chain must lead to a `--backend-ca` certificate; the name it is for is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain first and the name after: a name error means a good chain.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Any certificate (`verify none`); the handshake's signatures are still checked, so the peer
/// holds the key of the certificate it sent. Also the verifier of the load benchmark's TLS
/// client and of the tests' clients, which look at the certificate presented.
#[derive(Debug)]
pub struct AnyCertificate(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
