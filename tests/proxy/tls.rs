//! HTTPS end to end: certificates the test makes (a CA, several names, a wildcard), real TLS
//! clients (rustls directly, reqwest, curl), SNI selection, routing by Host, HTTP/2 by ALPN,
//! HSTS and redirects, a TLS service port, rotation under load and broken files.

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{json, Value};
use support::proxy::{app, client, get, Backend};
use switchyard::model::ModelOptions;
use switchyard::proxy::ProxyConfig;
use switchyard::routing::BuildOptions;
use switchyard::serve::{self, BoundListeners, Handle, ServeOptions, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
        let bind = || async { TcpListener::bind("127.0.0.1:0").await.unwrap() };
        let listeners = BoundListeners {
            http: Some(bind().await),
            https: Some(bind().await),
            app_id: bind().await,
            admin: bind().await,
        };
        let options = ServeOptions {
            model: ModelOptions::default(),
            build: BuildOptions::default(),
            source: Source::File(apps_file),
            poll_interval: Duration::from_secs(3600),
            bind_address: "127.0.0.1".parse().unwrap(),
            proxy,
            ssl_certs: paths,
            cert_poll_interval,
        };
        let handle = serve::start(options, listeners).unwrap();
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

/// Accepts any certificate: the tests look at which one was presented.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
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
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client that accepts any certificate and offers HTTP/1.1, sending SNI when `sni`.
fn client_config(sni: bool) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_chosen_by_sni_and_requests_routed_by_host() {
    let (a, w, d) = (
        Backend::start("a").await,
        Backend::start("wild").await,
        Backend::start("default").await,
    );
    let ca = Ca::new();
    let default = ca.issue(&["default.example.com"]);
    let cert_a = ca.issue(&["a.example.com"]);
    let wild = ca.issue(&["*.wild.example.com"]);
    let apps = json!([
        app(
            "/a",
            10701,
            json!({"HAPROXY_0_VHOST": "a.example.com", "HAPROXY_0_USE_HSTS": "true"}),
            &[a.port()]
        ),
        app(
            "/wild",
            10702,
            json!({"HAPROXY_0_VHOST": "*.wild.example.com", "HAPROXY_0_REDIRECT_TO_HTTPS": "true"}),
            &[w.port()]
        ),
        app(
            "/default",
            10703,
            json!({"HAPROXY_0_VHOST": "default.example.com"}),
            &[d.port()]
        ),
    ]);
    let tls = Tls::start(
        apps,
        &[
            ("default.pem", &default),
            ("a.pem", &cert_a),
            ("wild.pem", &wild),
        ],
    )
    .await;

    // SNI picks the certificate: exact, wildcard (one label only), unknown and none → default.
    for (sni, expected) in [
        (Some("a.example.com"), &cert_a),
        (Some("A.Example.COM"), &cert_a),
        (Some("x.wild.example.com"), &wild),
        (Some("y.x.wild.example.com"), &default),
        (Some("unknown.example.org"), &default),
        (None, &default),
    ] {
        let (_, leaf) = handshake(tls.https, sni).await.unwrap();
        assert!(
            leaf == expected.der,
            "SNI {sni:?} got the wrong certificate"
        );
    }

    // Routing is by Host, whatever the SNI: SNI only chose the certificate.
    let (stream, _) = handshake(tls.https, Some("a.example.com")).await.unwrap();
    let response = request(
        stream,
        "GET /x HTTP/1.1\r\nHost: x.wild.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.contains("x-backend: wild"), "{response}");
    // No Host at all (HTTP/1.0): the SNI name routes.
    let (stream, _) = handshake(tls.https, Some("a.example.com")).await.unwrap();
    let response = request(stream, "GET / HTTP/1.0\r\n\r\n").await;
    assert!(response.contains("x-backend: a"), "{response}");

    // A verifying client (reqwest, the test CA only): HTTP/2 by ALPN, X-Forwarded-Proto, HSTS.
    let c = https_client(&ca, tls.https, &["a.example.com", "x.wild.example.com"]);
    let port = tls.https.port();
    let response = c
        .get(format!("https://a.example.com:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=15768000"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["backend"], "a");
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");
    // The redirect label leaves HTTPS alone, and HSTS is only for apps that ask.
    let response = c
        .get(format!("https://x.wild.example.com:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("strict-transport-security")
        .is_none());

    // Plain HTTP: the redirect, and no HSTS header on the HSTS app.
    let plain = format!("http://{}/p?q=1", tls.handle.http_addr.unwrap());
    let response = client()
        .get(&plain)
        .header("host", "x.wild.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 301);
    assert_eq!(
        response.headers()["location"],
        "https://x.wild.example.com/p?q=1"
    );
    let response = client()
        .get(&plain)
        .header("host", "a.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("strict-transport-security")
        .is_none());

    // curl, verifying with the CA, over HTTP/2 and HTTP/1.1.
    let ca_file = tls.path("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let resolve = format!("a.example.com:{port}:127.0.0.1");
    let url = format!("https://a.example.com:{port}/");
    let version = curl(&[
        "--cacert",
        ca_file.to_str().unwrap(),
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{http_version}",
        &url,
    ]);
    assert_eq!(version, "200 2");
    let version = curl(&[
        "--http1.1",
        "--cacert",
        ca_file.to_str().unwrap(),
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{http_version}",
        &url,
    ]);
    assert_eq!(version, "200 1.1");
    tls.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_port_with_ssl_cert_speaks_tls_with_its_certificate() {
    let backend = Backend::start("svc").await;
    let ca = Ca::new();
    let default = ca.issue(&["default.example.com"]);
    let svc = ca.issue(&["svc.example.com"]);
    let dir = tempfile::tempdir().unwrap();
    let svc_path = dir.path().join("svc.pem");
    write(&svc_path, &svc.pem);
    let port = crate::support::proxy::free_port();
    let apps = json!([app(
        "/svc",
        port,
        json!({"HAPROXY_0_MODE": "http", "HAPROXY_0_SSL_CERT": svc_path.to_str().unwrap()}),
        &[backend.port()]
    )]);
    let tls = Tls::start(apps, &[("default.pem", &default)]).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // The app's file is loaded right after the table that names it: wait for that.
    let mut leaf = Vec::new();
    for _ in 0..200 {
        match handshake(addr, Some("anything.example.com")).await {
            Ok((_, der)) if der == svc.der => {
                leaf = der;
                break;
            }
            _ => {
                let seen = tls.handle.cert_reloads();
                tls.handle.reload();
                tls.handle.wait_cert_reloads(seen + 1).await;
            }
        };
    }
    assert!(
        leaf == svc.der,
        "the service port never presented the app's certificate"
    );
    let (stream, _) = handshake(addr, None).await.unwrap();
    let response = request(
        stream,
        "GET / HTTP/1.1\r\nHost: whatever\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.contains("x-backend: svc"), "{response}");
    assert!(
        response.contains("\"x-forwarded-proto\":\"https\""),
        "{response}"
    );
    tls.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_under_load_without_a_failed_handshake() {
    let a = Backend::start("a").await;
    let ca = Ca::new();
    let old = ca.issue(&["a.example.com"]);
    let new = ca.issue(&["a.example.com"]);
    let apps = json!([app(
        "/a",
        10711,
        json!({"HAPROXY_0_VHOST": "a.example.com"}),
        &[a.port()]
    )]);
    let tls = Tls::start(apps, &[("a.pem", &old)]).await;
    let https = tls.https;

    let stop = Arc::new(tokio::sync::Notify::new());
    let (counted, mut handshakes_rx) = tokio::sync::watch::channel(0usize);
    let counted = Arc::new(counted);
    let (failures, saw_new) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let new_der = Arc::new(new.der.clone());
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, failures, handshakes, saw_new, new_der) = (
            stop.clone(),
            failures.clone(),
            counted.clone(),
            saw_new.clone(),
            new_der.clone(),
        );
        load.push(tokio::spawn(async move {
            loop {
                let attempt = handshake(https, Some("a.example.com"));
                tokio::select! {
                    result = attempt => match result {
                        Ok((_, leaf)) => {
                            handshakes.send_modify(|n| *n += 1);
                            if leaf == *new_der {
                                saw_new.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(_) => { failures.fetch_add(1, Ordering::SeqCst); }
                    },
                    () = stop.notified() => return,
                }
            }
        }));
    }
    // An open connection made before the rotation keeps working after it.
    let (before, leaf) = handshake(https, Some("a.example.com")).await.unwrap();
    assert!(leaf == old.der);

    // Rotate while the load runs: some handshakes before, many after.
    handshakes_rx.wait_for(|n| *n >= 100).await.unwrap();
    tls.replace("a.pem", &new.pem).await;
    let (_, leaf) = handshake(https, Some("a.example.com")).await.unwrap();
    assert!(leaf == new.der, "a new handshake gets the new certificate");
    let after_rotation = *handshakes_rx.borrow();
    handshakes_rx
        .wait_for(|n| *n >= after_rotation + 100)
        .await
        .unwrap();
    stop.notify_waiters();
    for task in load {
        task.abort();
        let _ = task.await;
    }
    let response = request(
        before,
        "GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "failed handshakes during the rotation"
    );
    assert!(saw_new.load(Ordering::SeqCst) > 0);
    eprintln!("{} handshakes, 0 failed", *handshakes_rx.borrow());
    tls.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_certificate_file_keeps_its_last_good_version() {
    let a = Backend::start("a").await;
    let ca = Ca::new();
    let default = ca.issue(&["default.example.com"]);
    let good = ca.issue(&["a.example.com"]);
    let apps = json!([app(
        "/a",
        10721,
        json!({"HAPROXY_0_VHOST": "a.example.com"}),
        &[a.port()]
    )]);
    let tls = Tls::start(apps, &[("default.pem", &default), ("a.pem", &good)]).await;

    // Garbage, then a key that does not match, then an expired certificate: each is refused
    // and the last good version keeps serving; the other certificate is untouched.
    let other_key = KeyPair::generate().unwrap().serialize_pem();
    let mismatched = format!(
        "{}{other_key}",
        good.pem
            .split("-----BEGIN PRIVATE KEY-----")
            .next()
            .unwrap()
    );
    let expired = ca.issue_with(&["a.example.com"], |p| {
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
    });
    for broken in [
        "not a certificate",
        mismatched.as_str(),
        expired.pem.as_str(),
    ] {
        tls.replace("a.pem", broken).await;
        let (_, leaf) = handshake(tls.https, Some("a.example.com")).await.unwrap();
        assert!(
            leaf == good.der,
            "a broken file replaced a good certificate"
        );
        let (_, leaf) = handshake(tls.https, Some("default.example.com"))
            .await
            .unwrap();
        assert!(leaf == default.der);
    }

    // Each is a clear error naming the file.
    let path = tls.path("a.pem");
    for (contents, says) in [
        ("not a certificate", "no certificate"),
        (mismatched.as_str(), "does not belong"),
        (expired.pem.as_str(), "expired"),
    ] {
        write(&path, contents);
        let err = switchyard::tls::certs::load(&path).unwrap_err().to_string();
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains(says),
            "{err}"
        );
    }

    // Fixed: the new version serves.
    let fixed = ca.issue(&["a.example.com"]);
    tls.replace("a.pem", &fixed.pem).await;
    let (_, leaf) = handshake(tls.https, Some("a.example.com")).await.unwrap();
    assert!(leaf == fixed.der);
    tls.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_certificates_a_self_signed_one_serves_and_stalled_handshakes_are_closed() {
    let a = Backend::start("a").await;
    let apps = json!([app(
        "/a",
        10731,
        json!({"HAPROXY_0_VHOST": "a.example.com"}),
        &[a.port()]
    )]);
    let proxy = ProxyConfig {
        header_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    };
    let tls = Tls::start_with(apps, &[], proxy, Duration::from_secs(3600)).await;
    let (stream, leaf) = handshake(tls.https, Some("a.example.com")).await.unwrap();
    assert!(!leaf.is_empty());
    let response = request(
        stream,
        "GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.contains("x-backend: a"), "{response}");
    let (status, backend, _) = get(
        &client(),
        &format!("http://{}/", tls.handle.http_addr.unwrap()),
        "a.example.com",
    )
    .await;
    assert_eq!((status, backend.as_str()), (200, "a"));

    // A client that agreed on h2 by ALPN must speak it: bytes that are not the connection
    // preface end the connection (HTTP/2 frames only: the server's SETTINGS, at most a
    // GOAWAY(PROTOCOL_ERROR)), never an HTTP/1 answer (h2spec 3.5/2).
    let (mut stream, _) = handshake_offering(tls.https, Some("a.example.com"), b"h2")
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    stream
        .write_all(b"INVALID CONNECTION PREFACE\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let ended =
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(ended.is_ok(), "the connection was not closed");
    let mut frames = &answer[..];
    while !frames.is_empty() {
        assert!(frames.len() >= 9, "not HTTP/2 frames: {answer:?}");
        let length = u32::from_be_bytes([0, frames[0], frames[1], frames[2]]) as usize;
        let (kind, payload) = (frames[3], &frames[9..]);
        assert!(payload.len() >= length, "not HTTP/2 frames: {answer:?}");
        match kind {
            0x4 => {}
            0x7 => assert_eq!(payload[4..8], [0, 0, 0, 1], "GOAWAY, not PROTOCOL_ERROR"),
            other => panic!("frame type {other} after a bad preface: {answer:?}"),
        }
        frames = &payload[length..];
    }

    // A client that starts a handshake and stops is closed (at the header timeout), not kept.
    let mut stalled = TcpStream::connect(tls.https).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let mut rest = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(20), stalled.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
    tls.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_picked_up_without_a_signal() {
    let a = Backend::start("a").await;
    let ca = Ca::new();
    let (old, new) = (ca.issue(&["a.example.com"]), ca.issue(&["a.example.com"]));
    let apps = json!([app(
        "/a",
        10741,
        json!({"HAPROXY_0_VHOST": "a.example.com"}),
        &[a.port()]
    )]);
    let poll = Duration::from_millis(20);
    let tls = Tls::start_with(apps, &[("a.pem", &old)], ProxyConfig::default(), poll).await;
    write(&tls.path("a.pem"), &new.pem);
    // Two checks after the write: the second certainly saw the new file.
    let seen = tls.handle.cert_reloads();
    tls.handle.wait_cert_reloads(seen + 2).await;
    let (_, leaf) = handshake(tls.https, Some("a.example.com")).await.unwrap();
    assert!(leaf == new.der, "the poll did not pick up the new file");
    tls.handle.shutdown().await;
}

/// The client side of a connection whose first TLS record (the ClientHello) goes out split
/// into many small records, each written on its own: the record-layer fragmentation that
/// panicked rustls's `Acceptor` (RUSTSEC-2024-0399). Everything after passes through.
struct FragmentingClientHello {
    inner: TcpStream,
    /// The first record as it is being written by the TLS client.
    first: Vec<u8>,
    /// Bytes to put on the wire before anything else; `None` once the hello went out.
    pending: Option<std::collections::VecDeque<Vec<u8>>>,
    /// How many records the hello was split into.
    pieces: usize,
}

impl FragmentingClientHello {
    const PIECE: usize = 7;

    fn new(inner: TcpStream) -> FragmentingClientHello {
        FragmentingClientHello {
            inner,
            first: Vec::new(),
            pending: Some(Default::default()),
            pieces: 0,
        }
    }

    /// Once the first record is whole, re-frame its payload into records of `PIECE` bytes.
    fn split_first_record(&mut self) {
        let Some(pending) = &mut self.pending else {
            return;
        };
        if self.first.len() < 5 || !pending.is_empty() {
            return;
        }
        let len = usize::from(u16::from_be_bytes([self.first[3], self.first[4]]));
        if self.first.len() < 5 + len {
            return;
        }
        let (header, payload) = self.first.split_at(5);
        self.pieces = len.div_ceil(Self::PIECE);
        for piece in payload[..len].chunks(Self::PIECE) {
            let mut record = header[..3].to_vec();
            record.extend_from_slice(&(piece.len() as u16).to_be_bytes());
            record.extend_from_slice(piece);
            pending.push_back(record);
        }
        let rest = payload[len..].to_vec();
        if !rest.is_empty() {
            pending.push_back(rest);
        }
    }
}

impl tokio::io::AsyncRead for FragmentingClientHello {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for FragmentingClientHello {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        if self.pending.is_none() {
            return std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        }
        // Gather the first record; flush its fragments record by record.
        self.first.extend_from_slice(buf);
        self.split_first_record();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        if let Some(pending) = &mut this.pending {
            while let Some(front) = pending.front_mut() {
                match std::pin::Pin::new(&mut this.inner).poll_write(cx, front) {
                    Poll::Ready(Ok(n)) if n == front.len() => {
                        pending.pop_front();
                    }
                    Poll::Ready(Ok(n)) => {
                        front.drain(..n);
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if !this.first.is_empty() {
                this.pending = None;
            }
        }
        std::pin::Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hello_fragmented_into_small_records_is_served() {
    let a = Backend::start("a").await;
    let apps = json!([app(
        "/a",
        10732,
        json!({"HAPROXY_0_VHOST": "a.example.com"}),
        &[a.port()]
    )]);
    let tls = Tls::start_with(apps, &[], ProxyConfig::default(), Duration::from_secs(3600)).await;
    let config = client_config(true);
    let tcp = TcpStream::connect(tls.https).await.unwrap();
    let name = ServerName::try_from("a.example.com".to_owned()).unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, FragmentingClientHello::new(tcp))
        .await
        .expect("the fragmented hello completes a handshake");
    let fragmenting = stream.get_ref().0;
    assert!(fragmenting.pending.is_none(), "the hello went out");
    assert!(
        fragmenting.pieces >= 20,
        "the hello went out as {} records",
        fragmenting.pieces
    );
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("x-backend: a"), "{response}");
    tls.handle.shutdown().await;
}
