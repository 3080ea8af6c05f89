//! One certificate file: PEM with the chain and the private key together (as HAProxy and
//! Marathon-LB users have them), checked and turned into a rustls `CertifiedKey` with the names
//! it serves.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A usable certificate.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    /// The path apps name it by in `HAPROXY_{n}_SSL_CERT`.
    pub path: PathBuf,
    /// Where it came from, as logs and errors name it: the file, or `$VARIABLE`.
    pub source: String,
    /// The leaf's subject, e.g. `CN=example.com, O=Example`.
    pub subject: String,
    /// Lower-cased DNS names from the subject alternative names (the common name when there
    /// are none); wildcards as `*.example.com`.
    pub names: Vec<String>,
    pub key: Arc<CertifiedKey>,
    pub not_after: SystemTime,
}

/// Why a file (or a variable) cannot serve; every message names it and never quotes its bytes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CertError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: no certificate in it")]
    NoCertificate { path: String },
    #[error("{path}: no private key in it (the key must be in the same PEM file as the chain)")]
    NoKey { path: String },
    #[error("{path}: the private key is of an unsupported type")]
    UnsupportedKey { path: String },
    #[error("{path}: the private key does not belong to the certificate")]
    KeyMismatch { path: String },
    #[error("{path}: the certificate is not valid X.509: {reason}")]
    BadCertificate { path: String, reason: String },
    #[error("{path}: the certificate expired at {not_after} (unix time)")]
    Expired { path: String, not_after: u64 },
}

/// Reads and checks one PEM file.
pub fn load(path: &Path) -> Result<LoadedCert, CertError> {
    parse(path, &read(path)?)
}

/// The bytes of one certificate file.
pub fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|e| CertError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Checks the PEM bytes read from `path` (named in errors).
pub fn parse(path: &Path, pem: &[u8]) -> Result<LoadedCert, CertError> {
    parse_from(&path.display().to_string(), path, pem)
}

/// Checks PEM bytes that came from `source` (named in logs and errors) and that apps name
/// `path`.
pub fn parse_from(source: &str, path: &Path, pem: &[u8]) -> Result<LoadedCert, CertError> {
    let shown = source.to_owned();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    let Some(leaf) = chain.first() else {
        return Err(CertError::NoCertificate { path: shown });
    };
    let (names, subject, not_after) =
        describe(leaf).map_err(|reason| CertError::BadCertificate {
            path: shown.clone(),
            reason,
        })?;
    let now = SystemTime::now();
    if not_after <= now {
        let not_after = not_after
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return Err(CertError::Expired {
            path: shown,
            not_after,
        });
    }
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|_| CertError::NoKey {
        path: shown.clone(),
    })?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).map_err(|_| {
        CertError::UnsupportedKey {
            path: shown.clone(),
        }
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| CertError::KeyMismatch {
        path: shown.clone(),
    })?;
    Ok(LoadedCert {
        path: path.to_owned(),
        source: shown,
        subject,
        names,
        key: Arc::new(certified),
        not_after,
    })
}

/// The DNS names a certificate serves, its subject, and when it expires.
fn describe(leaf: &CertificateDer<'_>) -> Result<(Vec<String>, String, SystemTime), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| e.to_string())?;
    let mut names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => {
                        Some(dns.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    let seconds = cert.validity().not_after.timestamp().max(0) as u64;
    let subject = cert.subject().to_string();
    Ok((names, subject, UNIX_EPOCH + Duration::from_secs(seconds)))
}

/// A self-signed certificate for when none is given, as Marathon-LB generates one.
pub fn self_signed() -> Result<LoadedCert, String> {
    let generated = rcgen::generate_simple_self_signed(vec!["switchyard.invalid".to_owned()])
        .map_err(|e| e.to_string())?;
    let der = CertificateDer::from(generated.cert.der().to_vec());
    let key =
        PrivateKeyDer::try_from(generated.key_pair.serialize_der()).map_err(|e| e.to_string())?;
    let signing =
        rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).map_err(|e| e.to_string())?;
    let (names, subject, not_after) = describe(&der)?;
    Ok(LoadedCert {
        path: PathBuf::from("<self-signed>"),
        source: "<self-signed>".to_owned(),
        subject,
        names,
        key: Arc::new(CertifiedKey::new(vec![der], signing)),
        not_after,
    })
}
