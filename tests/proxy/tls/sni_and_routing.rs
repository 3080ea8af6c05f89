//! Certificates chosen by SNI (a wildcard, no SNI, unknown names), requests routed by Host,
//! HTTP/2 by ALPN, HSTS and redirects, with real TLS clients; a TLS service port.

use super::*;

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
