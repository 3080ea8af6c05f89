//! `--dry` (Marathon-LB's `-d`): serve mode's options checked, the source read once, the
//! routing table printed with its problems and the certificates that do not load; nothing is
//! bound or served. The exit status says whether a start would serve everything as asked.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::routes::{errors, exit_code, read_and_build};
use super::serve::{check, warn_haproxy_only};
use super::{fail, ServeArgs};
use crate::model::Mode;
use crate::routing::report::RoutesReport;
use crate::routing::RoutingTable;
use crate::tls::CertStore;

/// Runs `switchyard --dry`: exits 0 when nothing is an error, 1 when a problem or a
/// certificate is, or when the options or the source cannot be read.
pub async fn dry_run(args: ServeArgs) -> ExitCode {
    warn_haproxy_only(&args);
    if let Err(message) = check(&args) {
        return fail(&message);
    }
    let table = match read_and_build(args.apps_file.as_deref(), &args.access, &args.routing).await {
        Ok(table) => table,
        Err(message) => return fail(&message),
    };
    let mut out = RoutesReport::new(&table).to_text();
    let cert_errors = certificates(&args.ssl_certs, &table, &mut out);
    print!("{out}");
    exit_code(errors(&table) + cert_errors)
}

/// Loads `--ssl-certs`, Marathon-LB's `HAPROXY_SSL_CERT` variables and the files apps name in
/// `HAPROXY_{n}_SSL_CERT` as serve mode would; writes one line per certificate that does not
/// load and returns how many.
fn certificates(ssl_certs: &[PathBuf], table: &RoutingTable, out: &mut String) -> usize {
    // As serve mode's listeners: a TCP-mode service port terminates no TLS.
    let app_files: BTreeSet<PathBuf> = table
        .service_ports()
        .filter(|f| f.mode == Mode::Http)
        .filter_map(|f| f.backend.labels().ssl_cert.clone())
        .collect();
    let from_env = crate::tls::env_certs::from_env();
    let given = ssl_certs.len() + from_env.len() + app_files.len();
    let (mut store, first) = match CertStore::new(ssl_certs.to_vec(), &from_env) {
        Ok(store) => store,
        Err(err) => {
            let _ = writeln!(
                out,
                "\nerror   certificate: cannot make a self-signed one: {err}"
            );
            return 1;
        }
    };
    let mut failed = first.errors;
    failed.extend(store.set_app_files(app_files).errors);
    let _ = match (given, failed.len()) {
        (0, _) => writeln!(
            out,
            "\ncertificates: none given; HTTPS serves a self-signed one"
        ),
        (_, 0) => writeln!(out, "\ncertificates: every one loads"),
        (_, n) => writeln!(out, "\ncertificates: {n} do(es) not load"),
    };
    for error in &failed {
        let _ = writeln!(out, "error   certificate {error}");
    }
    failed.len()
}
