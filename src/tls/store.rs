//! The certificates and their reloads: `--ssl-certs` (files and directories, in order), then
//! the ones given as PEM text in Marathon-LB's `HAPROXY_SSL_CERT` variables, then the files apps
//! name in `HAPROXY_{n}_SSL_CERT`. A file is re-read when its contents change (seen by its size
//! and a hash of its bytes: a file rewritten in place at the same size within one tick of the
//! file system's clock keeps its size and time); one that fails keeps its last good version and
//! is reported once per change. Variables cannot change while the process runs: they are
//! checked once, at start.

use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use super::certs::{self, CertError, LoadedCert};
use super::env_certs::EnvCert;
use super::index::{CertIndex, SharedCerts};

/// A file's size and a hash of its bytes; `None` while it cannot be read.
type Stamp = Option<(u64, u64)>;

/// What one look at the certificates found.
#[derive(Debug, Default)]
pub struct Reload {
    /// Certificates that failed this time (one that keeps failing unchanged is not repeated).
    pub errors: Vec<CertError>,
    /// Certificates loaded this time: new, or changed since their last good version.
    pub loaded: Vec<LoadedCert>,
    /// Whether a new index was published (what serves changed).
    pub published: bool,
}

/// Everything known about the certificates.
#[derive(Debug)]
pub struct CertStore {
    /// `--ssl-certs`, in order.
    sources: Vec<PathBuf>,
    /// The good certificates given in variables, in order.
    from_env: Vec<LoadedCert>,
    /// Files named by apps.
    app_files: BTreeSet<PathBuf>,
    /// The last good version of each file, and the stamp of the version last looked at
    /// (`None` before the first look; a missing file's stamp is `Some(None)`).
    loaded: HashMap<PathBuf, (Option<Stamp>, Option<LoadedCert>)>,
    /// Used when no certificate loads at all.
    fallback: Arc<CertifiedKey>,
    /// The files the published index was built from (`None` before the first).
    published: Option<Vec<PathBuf>>,
    /// The certificates the published index holds, in its order (the first is the default).
    serving: Vec<LoadedCert>,
    pub shared: SharedCerts,
}

impl CertStore {
    /// Loads everything once: the files `sources` name and the certificates `from_env` holds.
    /// With no usable certificate at all the default is a self-signed one generated now.
    pub fn new(sources: Vec<PathBuf>, from_env: &[EnvCert]) -> Result<(CertStore, Reload), String> {
        let fallback = certs::self_signed()?.key;
        let mut env_errors = Vec::new();
        let mut env_loaded = Vec::new();
        for given in from_env {
            match certs::parse_from(&given.source(), &given.path, &given.pem) {
                Ok(cert) => env_loaded.push(cert),
                Err(err) => env_errors.push(err),
            }
        }
        let mut store = CertStore {
            sources,
            from_env: env_loaded.clone(),
            app_files: BTreeSet::new(),
            loaded: HashMap::new(),
            fallback: fallback.clone(),
            published: None,
            serving: Vec::new(),
            shared: SharedCerts::new(CertIndex::new(&[], fallback)),
        };
        let mut first = store.reload();
        env_errors.append(&mut first.errors);
        let file_loaded = std::mem::take(&mut first.loaded);
        first.errors = env_errors;
        // In the index's order: files given, then variables.
        first.loaded = file_loaded.into_iter().chain(env_loaded).collect();
        Ok((store, first))
    }

    /// Sets the files apps name; reports any newly loaded ones.
    pub fn set_app_files(&mut self, files: BTreeSet<PathBuf>) -> Reload {
        if files == self.app_files {
            return Reload::default();
        }
        self.app_files = files;
        self.reload()
    }

    /// Re-reads changed files, publishes the new index, reports what loaded and what failed.
    pub fn reload(&mut self) -> Reload {
        let mut report = Reload::default();
        let (given, named_by_apps) = self.files();
        let files: Vec<PathBuf> = given.iter().chain(&named_by_apps).cloned().collect();
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
                    report.loaded.push(cert.clone());
                    entry.1 = Some(cert);
                    changed = true;
                }
                Err(err) => report.errors.push(err),
            }
        }
        self.loaded.retain(|path, _| files.contains(path));
        if !changed {
            return report;
        }
        let good = |paths: &[PathBuf]| -> Vec<LoadedCert> {
            paths
                .iter()
                .filter_map(|p| self.loaded.get(p).and_then(|(_, c)| c.clone()))
                .collect()
        };
        let mut ordered = good(&given);
        ordered.extend(self.from_env.iter().cloned());
        ordered.extend(good(&named_by_apps));
        let default = ordered
            .first()
            .map_or_else(|| self.fallback.clone(), |c| c.key.clone());
        self.shared.publish(CertIndex::new(&ordered, default));
        self.published = Some(files);
        self.serving = ordered;
        report.published = true;
        report
    }

    /// The certificates served, in the index's order: the first is the default. Empty: the
    /// self-signed one serves.
    pub fn serving(&self) -> &[LoadedCert] {
        &self.serving
    }

    /// Whether any certificate was given and loaded (else the self-signed default serves).
    pub fn has_certificates(&self) -> bool {
        !self.serving.is_empty()
    }

    /// `--ssl-certs` expanded (a directory's regular files in name order), and the files apps
    /// name that are neither among those nor a variable's path.
    fn files(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
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
        let in_memory = |path: &PathBuf| self.from_env.iter().any(|c| &c.path == path);
        let named_by_apps = self
            .app_files
            .iter()
            .filter(|path| !files.contains(path) && !in_memory(path))
            .cloned()
            .collect();
        (files, named_by_apps)
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
        let (mut store, first) = CertStore::new(vec![missing.clone()], &[]).unwrap();
        assert_eq!(first.errors.len(), 1);
        assert!(first.errors[0]
            .to_string()
            .contains("/nonexistent/switchyard/cert.pem"));
        assert!(!store.has_certificates());
        assert!(
            store.reload().errors.is_empty(),
            "reported again although unchanged"
        );
        let index = store.shared.load();
        assert!(Arc::ptr_eq(
            &index.for_name(Some("any.example.com")),
            &store.fallback
        ));
    }

    fn pem_for(name: &str) -> String {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        format!("{}{}", made.cert.pem(), made.key_pair.serialize_pem())
    }

    #[test]
    fn variables_serve_after_the_files_given_and_answer_to_marathon_lbs_paths() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file.pem");
        std::fs::write(&file, pem_for("file.example.com")).unwrap();
        let vars = super::super::env_certs::from_vars([
            ("HAPROXY_SSL_CERT", pem_for("env.example.com")),
            ("HAPROXY_SSL_CERT0", pem_for("zero.example.com")),
        ]);

        let (mut store, first) = CertStore::new(vec![file.clone()], &vars).unwrap();
        assert!(first.errors.is_empty(), "{:?}", first.errors);
        let sources: Vec<&str> = store.serving().iter().map(|c| c.source.as_str()).collect();
        let file_source = file.display().to_string();
        assert_eq!(
            sources,
            [
                file_source.as_str(),
                "$HAPROXY_SSL_CERT",
                "$HAPROXY_SSL_CERT0"
            ]
        );
        let names: Vec<&[String]> = first.loaded.iter().map(|c| c.names.as_slice()).collect();
        assert_eq!(names.len(), 3, "{names:?}");

        // An app naming the file Marathon-LB wrote the variable to gets the variable's
        // certificate; nothing is read from /etc/ssl.
        let alias = PathBuf::from("/etc/ssl/cert.pem");
        let found = store.set_app_files(BTreeSet::from([alias.clone()]));
        assert!(found.errors.is_empty(), "{:?}", found.errors);
        let index = store.shared.load();
        let env_key = &store.serving()[1].key;
        assert!(Arc::ptr_eq(&index.for_path(&alias), env_key));
        assert!(Arc::ptr_eq(
            &index.for_name(Some("zero.example.com")),
            &store.serving()[2].key
        ));
        assert!(Arc::ptr_eq(&index.for_name(None), &store.serving()[0].key));

        // Without files, the first variable is the default.
        let (store, _) = CertStore::new(Vec::new(), &vars).unwrap();
        assert!(Arc::ptr_eq(
            &store.shared.load().for_name(None),
            &store.serving()[0].key
        ));
        assert_eq!(store.serving()[0].source, "$HAPROXY_SSL_CERT");
    }

    #[test]
    fn a_bad_variable_is_reported_by_name_without_its_value() {
        let vars = super::super::env_certs::from_vars([(
            "HAPROXY_SSL_CERT",
            "-----BEGIN PRIVATE KEY-----\\nc2VjcmV0\\n-----END PRIVATE KEY-----",
        )]);
        let (store, first) = CertStore::new(Vec::new(), &vars).unwrap();
        assert!(!store.has_certificates());
        let errors: Vec<String> = first.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors, ["$HAPROXY_SSL_CERT: no certificate in it"]);
    }
}
