//! Certificates given as PEM text in the environment, as Marathon-LB's image takes them:
//! `HAPROXY_SSL_CERT` (what the Universe package's `ssl-cert` option sets) and
//! `HAPROXY_SSL_CERT0` to `HAPROXY_SSL_CERT100`.
//!
//! Marathon-LB's start script wrote each with `echo -e` to `/etc/ssl/cert.pem` and
//! `/etc/ssl/cert{i}.pem` and served them after any `--ssl-certs`. Here they stay in memory,
//! keep that order, answer to those paths (an app's `HAPROXY_{n}_SSL_CERT` may name them), and
//! have `echo -e`'s escapes read, so a PEM pasted on one line with `\n` works as it did.
//! Marathon-LB read the numbered variables only when `HAPROXY_SSL_CERT` was set; here each
//! counts on its own.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;

/// The variable Marathon-LB's package sets from its `ssl-cert` option.
pub const VARIABLE: &str = "HAPROXY_SSL_CERT";
/// The highest `HAPROXY_SSL_CERT{i}` Marathon-LB's start script reads.
const LAST_NUMBERED: u32 = 100;

/// One certificate (chain and key) given in a variable. Its `Debug` never shows the PEM.
#[derive(Clone)]
pub struct EnvCert {
    /// The variable's name.
    pub variable: String,
    /// The file Marathon-LB wrote it to: what apps' `HAPROXY_{n}_SSL_CERT` call it.
    pub path: PathBuf,
    pub pem: Vec<u8>,
}

impl fmt::Debug for EnvCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvCert")
            .field("variable", &self.variable)
            .field("path", &self.path)
            .field("pem", &format_args!("<{} bytes>", self.pem.len()))
            .finish()
    }
}

impl EnvCert {
    /// How logs and errors name it.
    pub fn source(&self) -> String {
        format!("${}", self.variable)
    }
}

/// The certificates this process's environment gives, in Marathon-LB's order.
pub fn from_env() -> Vec<EnvCert> {
    from_vars(std::env::vars_os())
}

/// The certificates `vars` give, in Marathon-LB's order: `HAPROXY_SSL_CERT`, then
/// `HAPROXY_SSL_CERT0` to `HAPROXY_SSL_CERT100`. Empty (or blank) variables count as unset.
pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Vec<EnvCert>
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut given: HashMap<String, String> = HashMap::new();
    for (name, value) in vars {
        let Some(name) = name.as_ref().to_str() else {
            continue;
        };
        if name.starts_with(VARIABLE) {
            given.insert(
                name.to_owned(),
                value.as_ref().to_string_lossy().into_owned(),
            );
        }
    }
    let first = (VARIABLE.to_owned(), PathBuf::from("/etc/ssl/cert.pem"));
    let numbered = (0..=LAST_NUMBERED).map(|i| {
        (
            format!("{VARIABLE}{i}"),
            PathBuf::from(format!("/etc/ssl/cert{i}.pem")),
        )
    });
    std::iter::once(first)
        .chain(numbered)
        .filter_map(|(variable, path)| {
            let value = given.get(&variable)?;
            if value.trim().is_empty() {
                return None;
            }
            let pem = echo_e(value).into_bytes();
            Some(EnvCert {
                variable,
                path,
                pem,
            })
        })
        .collect()
}

/// The backslash escapes `echo -e` reads that can occur in PEM text pasted on one line; any
/// other backslash stays as it is (base64 and PEM headers hold none).
fn echo_e(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marathon_lbs_variables_in_its_order_with_its_paths() {
        let vars = [
            ("HAPROXY_SSL_CERT2", "two"),
            ("PATH", "/usr/bin"),
            ("HAPROXY_SSL_CERT", "main"),
            ("HAPROXY_SSL_CERT0", "zero"),
            ("HAPROXY_SSL_CERT100", "last"),
            ("HAPROXY_SSL_CERT101", "beyond Marathon-LB's range"),
            ("HAPROXY_SSL_CERT1", ""),
            ("HAPROXY_SSL_CERT3", "  \n"),
            ("HAPROXY_SSL_CERT_EXTRA", "not one of them"),
        ];
        let certs = from_vars(vars);
        let seen: Vec<(&str, &str, &[u8])> = certs
            .iter()
            .map(|c| {
                (
                    c.variable.as_str(),
                    c.path.to_str().unwrap(),
                    c.pem.as_slice(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("HAPROXY_SSL_CERT", "/etc/ssl/cert.pem", &b"main"[..]),
                ("HAPROXY_SSL_CERT0", "/etc/ssl/cert0.pem", b"zero"),
                ("HAPROXY_SSL_CERT2", "/etc/ssl/cert2.pem", b"two"),
                ("HAPROXY_SSL_CERT100", "/etc/ssl/cert100.pem", b"last"),
            ]
        );
        assert_eq!(certs[0].source(), "$HAPROXY_SSL_CERT");
    }

    #[test]
    fn echo_e_escapes_are_read_as_marathon_lbs_start_script_read_them() {
        let one_line = r"-----BEGIN CERTIFICATE-----\nMIIB+/=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            echo_e(one_line),
            "-----BEGIN CERTIFICATE-----\nMIIB+/=\n-----END CERTIFICATE-----\n"
        );
        assert_eq!(echo_e(r"a\r\nb\tc\\d"), "a\r\nb\tc\\d");
        assert_eq!(
            echo_e(r"keep \q and a trailing \"),
            r"keep \q and a trailing \"
        );
        assert_eq!(echo_e("already\nmulti-line"), "already\nmulti-line");
    }

    #[test]
    fn debug_output_never_shows_the_pem() {
        let certs = from_vars([("HAPROXY_SSL_CERT", "-----BEGIN PRIVATE KEY-----secret")]);
        let shown = format!("{certs:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("PRIVATE"),
            "{shown}"
        );
        assert!(shown.contains("HAPROXY_SSL_CERT") && shown.contains("bytes"));
    }
}
