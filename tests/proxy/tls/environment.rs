//! Marathon-LB's `HAPROXY_SSL_CERT` variables through the real binary (the Universe package's
//! `ssl-cert` option sets the first): served on the HTTPS port and on the service port of an
//! app naming `/etc/ssl/cert.pem`, where Marathon-LB's image wrote it; each certificate logged
//! by source, names and expiry at start and again on SIGHUP, never its key; a bad one is one
//! error line naming the variable, without its value, and a counted error.

use super::*;

use support::metric;
use support::process::Process;
use support::proxy::free_port;

fn loaded_from(source: &'static str) -> impl Fn(&Value) -> bool {
    move |f| f["message"] == "certificate loaded" && f["source"] == source
}

/// One line of the base64 of the private key in `pem`.
fn key_line(pem: &str) -> &str {
    let key = pem.split("PRIVATE KEY-----\n").nth(1).expect("a key");
    key.lines().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_ssl_cert_variables_serve_and_are_logged_without_their_keys() {
    let web = Backend::start("web").await;
    let ca = Ca::new();
    let main = ca.issue(&["env.example.com"]);
    let zero = ca.issue(&["zero.example.com"]);
    let service_port = free_port();
    let apps = json!([app(
        "/web",
        service_port,
        json!({
            "HAPROXY_0_VHOST": "web.example.com",
            "HAPROXY_0_SSL_CERT": "/etc/ssl/cert.pem"
        }),
        &[web.port()]
    )]);
    // As pasted into an app definition on one line: Marathon-LB's `echo -e` made it PEM again.
    let one_line = main.pem.replace('\n', "\\n");
    let mut running = Process::start(
        apps,
        &[
            ("HAPROXY_SSL_CERT", &one_line),
            ("HAPROXY_SSL_CERT0", &zero.pem),
        ],
        &[],
    );

    let line = running
        .next_log("for $HAPROXY_SSL_CERT", loaded_from("$HAPROXY_SSL_CERT"))
        .await;
    let fields = &line["fields"];
    assert_eq!(fields["names"], "env.example.com", "{line}");
    assert_eq!(fields["default"], true, "{line}");
    assert!(
        fields["subject"].as_str().unwrap().contains("CN=rcgen"),
        "{line}"
    );
    // rcgen's certificates are valid until 4096.
    assert_eq!(fields["expires"], "4096-01-01T00:00:00Z", "{line}");
    assert!(fields["days_left"].as_u64().unwrap() > 700_000, "{line}");
    let line = running
        .next_log("for $HAPROXY_SSL_CERT0", loaded_from("$HAPROXY_SSL_CERT0"))
        .await;
    assert_eq!(line["fields"]["names"], "zero.example.com");
    assert_eq!(line["fields"]["default"], false);
    running.next_message("routing table published").await;

    // The first variable is the default certificate; the numbered one is chosen by SNI.
    let (_, leaf) = handshake(running.https, None).await.unwrap();
    assert!(leaf == main.der, "no SNI: HAPROXY_SSL_CERT");
    let (_, leaf) = handshake(running.https, Some("zero.example.com"))
        .await
        .unwrap();
    assert!(leaf == zero.der, "SNI zero.example.com: HAPROXY_SSL_CERT0");
    // The app's HAPROXY_0_SSL_CERT names the file Marathon-LB wrote the variable to.
    let tls_port: SocketAddr = ([127, 0, 0, 1], service_port).into();
    let (stream, leaf) = handshake(tls_port, Some("web.example.com")).await.unwrap();
    assert!(leaf == main.der, "service port: /etc/ssl/cert.pem");
    let response = request(
        stream,
        "GET / HTTP/1.1\r\nHost: web.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let metrics = running.metrics().await;
    let expiry = metric(
        &metrics,
        "switchyard_certificate_expiry_timestamp_seconds{source=\"$HAPROXY_SSL_CERT\"}",
    );
    assert_eq!(
        expiry, 67_090_118_400.0,
        "4096-01-01 in unix time:\n{metrics}"
    );
    assert_eq!(metric(&metrics, "switchyard_certificate_errors_total"), 0.0);

    // SIGHUP: the reload is logged even though nothing changed.
    running.signal("HUP");
    let line = running.next_message("certificates reloaded").await;
    assert_eq!(line["fields"]["serving"], 2, "{line}");

    let lines = running.stop().await;
    for secret in [key_line(&main.pem), key_line(&zero.pem), "PRIVATE KEY"] {
        assert!(
            !lines.iter().any(|l| l.contains(secret)),
            "{secret} logged:\n{}",
            lines.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_haproxy_ssl_cert_is_one_error_naming_the_variable_and_a_counted_error() {
    let ca = Ca::new();
    let issued = ca.issue(&["env.example.com"]);
    // A certificate without its key (the key went to another variable by mistake).
    let chain_only = issued.pem.split("-----BEGIN PRIVATE KEY").next().unwrap();
    let mut running = Process::start(json!([]), &[("HAPROXY_SSL_CERT", chain_only)], &[]);

    let line = running
        .next_log("for the bad variable", |f| {
            f["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("certificate not loaded"))
        })
        .await;
    let error = line["fields"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("$HAPROXY_SSL_CERT: no private key"),
        "{line}"
    );
    running
        .next_log("warning of the self-signed default", |f| {
            f["message"]
                .as_str()
                .is_some_and(|m| m.contains("self-signed"))
        })
        .await;
    running.next_message("routing table published").await;
    let metrics = running.metrics().await;
    assert_eq!(
        metric(&metrics, "switchyard_certificate_errors_total"),
        1.0,
        "{metrics}"
    );
    let (_, leaf) = handshake(running.https, None).await.unwrap();
    assert!(leaf != issued.der, "the self-signed default serves");

    let lines = running.stop().await;
    let value_line = chain_only.lines().nth(1).unwrap();
    assert!(
        !lines.iter().any(|l| l.contains(value_line)),
        "the variable's value was logged:\n{}",
        lines.join("\n")
    );
}
