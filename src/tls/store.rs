//! The certificate files and their reloads: `--ssl-certs` (files and directories, in order) plus
//! the files apps name in `HAPROXY_{n}_SSL_CERT`. A file is re-read when its contents change
//! (seen by its size and a hash of its bytes: a file rewritten in place at the same size
//! within one tick of the file system's clock keeps its size and time); one that fails keeps
//! its last good version and is logged once per change.

use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use super::certs::{self, CertError, LoadedCert};
use super::index::{CertIndex, SharedCerts};

/// A file's size and a hash of its bytes; `None` while it cannot be read.
type Stamp = Option<(u64, u64)>;

/// Everything known about the certificate files.
#[derive(Debug)]
pub struct CertStore {
    /// `--ssl-certs`, in order.
    sources: Vec<PathBuf>,
    /// Files named by apps.
    app_files: BTreeSet<PathBuf>,
    /// The last good version of each file, and the stamp of the version last looked at
    /// (`None` before the first look; a missing file's stamp is `Some(None)`).
    loaded: HashMap<PathBuf, (Option<Stamp>, Option<LoadedCert>)>,
    /// Used when no certificate loads at all.
    fallback: Arc<CertifiedKey>,
    /// The files the published index was built from (`None` before the first).
    published: Option<Vec<PathBuf>>,
    pub shared: SharedCerts,
}

impl CertStore {
    /// Loads everything once. With no usable certificate at all the default is a self-signed
    /// one generated now.
    pub fn new(sources: Vec<PathBuf>) -> Result<(CertStore, Vec<CertError>), String> {
        let fallback = certs::self_signed()?.key;
        let mut store = CertStore {
            sources,
            app_files: BTreeSet::new(),
            loaded: HashMap::new(),
            fallback: fallback.clone(),
            published: None,
            shared: SharedCerts::new(CertIndex::new(&[], fallback)),
        };
        let errors = store.reload();
        Ok((store, errors))
    }

    /// Sets the files apps name; returns the errors of any newly loaded ones.
    pub fn set_app_files(&mut self, files: BTreeSet<PathBuf>) -> Vec<CertError> {
        if files == self.app_files {
            return Vec::new();
        }
        self.app_files = files;
        self.reload()
    }

    /// Re-reads changed files, publishes the new index, returns what failed this time (a
    /// file that keeps failing unchanged is not reported again).
    pub fn reload(&mut self) -> Vec<CertError> {
        let mut errors = Vec::new();
        let files = self.files();
        let mut changed = self.published.as_ref() != Some(&files);
        for path in &files {
            // Certificate files are a few KiB: each is read at every check, once, and the
            // bytes compared are the bytes loaded.
            let bytes = certs::read(path);
            let stamp = bytes.as_deref().ok().map(stamp);
            let entry = self.loaded.entry(path.clone()).or_insert((None, None));
            // Unchanged since the last look (still missing counts): nothing new to say.
            if entry.0 == Some(stamp) {
                continue;
            }
            entry.0 = Some(stamp);
            match bytes.and_then(|pem| certs::parse(path, &pem)) {
                Ok(cert) => {
                    entry.1 = Some(cert);
                    changed = true;
                }
                Err(err) => errors.push(err),
            }
        }
        self.loaded.retain(|path, _| files.contains(path));
        if !changed {
            return errors;
        }
        let ordered: Vec<LoadedCert> = files
            .iter()
            .filter_map(|p| self.loaded.get(p).and_then(|(_, c)| c.clone()))
            .collect();
        let default = ordered
            .first()
            .map_or_else(|| self.fallback.clone(), |c| c.key.clone());
        self.shared.publish(CertIndex::new(&ordered, default));
        self.published = Some(files);
        errors
    }

    /// Whether any certificate was given and loaded (else the self-signed default serves).
    pub fn has_certificates(&self) -> bool {
        self.loaded.values().any(|(_, c)| c.is_some())
    }

    /// `--ssl-certs` expanded (a directory's regular files in name order), then app files.
    fn files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for source in &self.sources {
            if source.is_dir() {
                let mut inside: Vec<PathBuf> = std::fs::read_dir(source)
                    .into_iter()
                    .flatten()
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect();
                inside.sort();
                files.extend(inside);
            } else {
                files.push(source.clone());
            }
        }
        for path in &self.app_files {
            if !files.contains(path) {
                files.push(path.clone());
            }
        }
        files
    }
}

fn stamp(bytes: &[u8]) -> (u64, u64) {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    (bytes.len() as u64, hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_reported_once_and_the_self_signed_default_serves() {
        let missing = PathBuf::from("/nonexistent/switchyard/cert.pem");
        let (mut store, errors) = CertStore::new(vec![missing.clone()]).unwrap();
        assert_eq!(errors.len(), 1);
        assert!(errors[0]
            .to_string()
            .contains("/nonexistent/switchyard/cert.pem"));
        assert!(!store.has_certificates());
        assert!(
            store.reload().is_empty(),
            "reported again although unchanged"
        );
        let index = store.shared.load();
        assert!(Arc::ptr_eq(
            &index.for_name(Some("any.example.com")),
            &store.fallback
        ));
    }
}
