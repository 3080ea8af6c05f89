//! `switchyard routes`: the real binary against a file and against a Marathon over loopback.

use std::convert::Infallible;
use std::io::Write as _;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::{run, stderr, stdout};

#[tokio::test]
async fn routes_from_the_example_file() {
    let output = run(&["routes", "--apps-file", "config/example-apps.json"]).await;
    // The example holds an error (/billing's balance): `haproxy -c`'s exit rule.
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("LISTENER"), "{text}");
    let row = |needle: &[&str]| lines.iter().any(|l| needle.iter().all(|n| l.contains(n)));
    assert!(
        row(&[
            "vhost",
            "shop.example.com",
            "/api",
            "/shop/api",
            "127.0.0.1:31020"
        ]),
        "{text}"
    );
    assert!(
        row(&[
            "vhost",
            "*.shop.example.com",
            "/shop/web",
            "127.0.0.1:31010"
        ]),
        "{text}"
    );
    assert!(
        row(&["tcp:10020", "/cache/redis", "127.0.0.3:31030"]),
        "{text}"
    );
    assert!(
        row(&["http:10000", "/tweeter", "127.0.0.1:31001, 127.0.0.2:31002"]),
        "{text}"
    );
    assert!(
        !text.contains("31003"),
        "the unhealthy tweeter task is not routed:\n{text}"
    );
    assert!(
        !text.contains("31011"),
        "the staging shop task is not routed:\n{text}"
    );
    assert!(
        row(&[
            "error",
            "invalid_label",
            "app=/billing",
            "label=HAPROXY_0_BALANCE"
        ]),
        "{text}"
    );
    assert!(
        row(&["unsupported_template", "label=HAPROXY_0_BACKEND_HEAD"]),
        "{text}"
    );
    assert!(row(&["not_in_group", "app=/post-tweets"]), "{text}");
}

#[tokio::test]
async fn routes_json_lists_routes_backends_and_problems() {
    let output = run(&[
        "routes",
        "--apps-file",
        "config/example-apps.json",
        "--json",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let routes = doc["routes"].as_array().unwrap();
    assert!(routes.iter().any(|r| r["listener"] == "vhost"
        && r["host"] == "tweeter.example.com"
        && r["app_id"] == "/tweeter"
        && r["backend"] == "tweeter_10000"));
    let tweeter = doc["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "tweeter_10000")
        .unwrap();
    assert_eq!(tweeter["mode"], "http");
    assert_eq!(tweeter["endpoints"].as_array().unwrap().len(), 2);
    assert_eq!(tweeter["endpoints"][0]["addr"], "127.0.0.1:31001");
    let problems = doc["problems"].as_array().unwrap();
    assert!(problems.iter().any(|p| p["kind"] == "invalid_label"
        && p["app_id"] == "/billing"
        && p["label"] == "HAPROXY_0_BALANCE"));
}

#[tokio::test]
async fn group_and_strict_mode_flags_change_what_is_routed() {
    let output = run(&[
        "routes",
        "--apps-file",
        "config/example-apps.json",
        "--group",
        "*",
        "--json",
    ])
    .await;
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let has = |doc: &serde_json::Value, app: &str| {
        doc["backends"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["app_id"] == app)
    };
    assert!(
        has(&doc, "/post-tweets"),
        "--group '*' serves apps without a group"
    );
    let output = run(&[
        "routes",
        "--apps-file",
        "config/example-apps.json",
        "--strict-mode",
        "--json",
    ])
    .await;
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        doc["backends"].as_array().unwrap().is_empty(),
        "no app sets ENABLED=true"
    );
}

#[tokio::test]
async fn a_missing_or_broken_file_is_a_clear_error() {
    let output = run(&["routes", "--apps-file", "no/such/file.json"]).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot read no/such/file.json"),
        "{}",
        stderr(&output)
    );

    let mut broken = tempfile::NamedTempFile::new().unwrap();
    broken.write_all(b"{\"apps\": [").unwrap();
    let path = broken.path().to_str().unwrap().to_owned();
    let output = run(&["routes", "--apps-file", &path]).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("malformed"), "{}", stderr(&output));
}

/// A Marathon that answers `/v2/apps?embed=apps.tasks` with a fixture, gzip-compressed when the
/// client accepts it, and 404 for anything else. Returns its base URL.
async fn marathon(status: StatusCode, body: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<Incoming>| async move {
                        Ok::<_, Infallible>(answer(&req, status, body))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn answer(req: &Request<Incoming>, status: StatusCode, body: &[u8]) -> Response<Full<Bytes>> {
    let wanted = req.uri().path() == "/v2/apps"
        && req.uri().query() == Some("embed=apps.tasks")
        && req
            .headers()
            .get("accept")
            .is_some_and(|v| v == "application/json");
    if !wanted {
        return Response::builder()
            .status(404)
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    let gzip = req
        .headers()
        .get("accept-encoding")
        .is_some_and(|v| v.to_str().unwrap_or("").contains("gzip"));
    let builder = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(body).unwrap();
        let compressed = encoder.finish().unwrap();
        builder
            .header("content-encoding", "gzip")
            .body(Full::new(Bytes::from(compressed)))
            .unwrap()
    } else {
        // A client that does not ask for gzip gets a body it cannot route from.
        builder
            .body(Full::new(Bytes::from_static(b"{\"apps\": []}")))
            .unwrap()
    }
}

#[tokio::test]
async fn routes_from_a_marathon_with_failover_to_the_next_url() {
    let fixture: &'static [u8] = include_bytes!("../fixtures/marathon-1.11-apps.json");
    let good = marathon(StatusCode::OK, fixture).await;
    // A port that was bound and released: connection refused.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let output = run(&["routes", "--marathon", &dead, &good, "--json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<_> = doc["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["shop_web_10010", "tweeter_10000", "users_10077"]);
}

#[tokio::test]
async fn a_marathon_error_is_reported_without_credentials() {
    let denied = marathon(
        StatusCode::UNAUTHORIZED,
        b"{\"message\":\"Invalid username or password.\"}",
    )
    .await;
    let with_credentials = denied.replace("http://", "http://ops:s3cret@");
    let output = run(&["routes", "--marathon", &with_credentials]).await;
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}
