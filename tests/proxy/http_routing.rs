//! HTTP through the proxy, as a backend sees it: routing by host, path, app id and service port,
//! forwarded and hop-by-hop headers, redirects, ACLs and path rewrites, basic auth, and
//! absolute-form targets.

use crate::support;

use serde_json::json;
use support::proxy::*;

#[tokio::test]
async fn routes_by_host_path_app_id_and_service_port() {
    let (web, api) = (Backend::start("web").await, Backend::start("api").await);
    let service_port = free_port();
    let proxy = Proxy::start(json!([
        app(
            "/web",
            service_port,
            json!({"HAPROXY_0_VHOST": "shop.example.com"}),
            &[web.port()]
        ),
        app(
            "/api",
            free_port(),
            json!({"HAPROXY_0_VHOST": "shop.example.com", "HAPROXY_0_PATH": "/api"}),
            &[api.port()]
        ),
    ]))
    .await;
    let c = client();
    assert_eq!(get(&c, &proxy.url("/"), "shop.example.com").await.1, "web");
    assert_eq!(
        get(&c, &proxy.url("/api/cart"), "SHOP.example.com:80")
            .await
            .1,
        "api"
    );
    let (status, _, _) = get(&c, &proxy.url("/"), "unknown.example.com").await;
    assert_eq!(status, 503, "no route");

    // Port 9091 routes by X-Marathon-App-Id.
    let by_id = c
        .get(format!("http://{}/x", proxy.handle.app_id_addr))
        .header("x-marathon-app-id", "/api")
        .send()
        .await
        .unwrap();
    assert_eq!(by_id.headers()["x-backend"], "api");

    // The app's own service port serves that app whatever the Host.
    let (status, backend, _) =
        get(&c, &format!("http://127.0.0.1:{service_port}/"), "anything").await;
    assert_eq!((status, backend.as_str()), (200, "web"));

    // HTTP/2 with prior knowledge on the same port; the host is the :authority.
    let addr = proxy.handle.http_addr.unwrap();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .resolve("shop.example.com", addr)
        .build()
        .unwrap();
    let url = format!("http://shop.example.com:{}/api/x", addr.port());
    let response = h2.get(url).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.headers()["x-backend"], "api");
}

#[tokio::test]
async fn forwarded_and_hop_by_hop_headers() {
    let web = Backend::start("web").await;
    let proxy = Proxy::start(json!([app(
        "/web",
        free_port(),
        json!({"HAPROXY_0_VHOST": "h.example.com"}),
        &[web.port()]
    )]))
    .await;
    let response = client()
        .get(proxy.url("/echo?q=1"))
        .header("host", "h.example.com")
        .header("x-forwarded-for", "203.0.113.7")
        .header("connection", "keep-alive, x-private")
        .header("x-private", "secret")
        .header("te", "trailers")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("x-hop").is_none(),
        "response hop-by-hop header dropped"
    );
    let doc: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let h = &doc["headers"];
    assert_eq!(doc["path"], "/echo?q=1");
    assert_eq!(h["host"], "h.example.com");
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(
        h["x-forwarded-port"],
        proxy.handle.http_addr.unwrap().port().to_string()
    );
    assert!(
        h.get("x-private").is_none(),
        "named in Connection: hop-by-hop"
    );
    assert!(h.get("te").is_none());
}

#[tokio::test]
async fn redirects_acl_and_path_rewrites() {
    let web = Backend::start("web").await;
    let proxy = Proxy::start(json!([
        app("/secure", free_port(), json!({"HAPROXY_0_VHOST": "secure.example.com", "HAPROXY_0_REDIRECT_TO_HTTPS": "true"}), &[web.port()]),
        app("/closed", free_port(), json!({"HAPROXY_0_VHOST": "closed.example.com", "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "10.0.0.0/8"}), &[web.port()]),
        app("/open", free_port(), json!({"HAPROXY_0_VHOST": "open.example.com", "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "10.0.0.0/8 127.0.0.1"}), &[web.port()]),
        app("/pp", free_port(), json!({"HAPROXY_0_VHOST": "pp.example.com", "HAPROXY_0_PATH": "/api",
            "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/api", "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH": "/api"}), &[web.port()]),
        app("/home", free_port(), json!({"HAPROXY_0_VHOST": "home.example.com", "HAPROXY_0_HTTP_BACKEND_REDIR": "/welcome"}), &[web.port()]),
    ]))
    .await;
    let c = client();
    let r = c
        .get(proxy.url("/cart?id=7"))
        .header("host", "secure.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(
        r.headers()["location"],
        "https://secure.example.com/cart?id=7"
    );

    assert_eq!(get(&c, &proxy.url("/"), "closed.example.com").await.0, 403);
    assert_eq!(get(&c, &proxy.url("/"), "open.example.com").await.0, 200);

    let (status, _, doc) = get(&c, &proxy.url("/api/items?x=1"), "pp.example.com").await;
    assert_eq!(
        (status, doc["path"].as_str()),
        (200, Some("/items?x=1")),
        "proxypass strips the prefix"
    );
    let r = c
        .get(proxy.url("/api/redirect-me"))
        .header("host", "pp.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["location"],
        "/api/landed",
        "revproxy puts Location back under the prefix"
    );

    let r = c
        .get(proxy.url("/"))
        .header("host", "home.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["location"].to_str().unwrap()
        ),
        (301, "/welcome")
    );
    assert_eq!(
        get(&c, &proxy.url("/other"), "home.example.com").await.0,
        200
    );
}

#[tokio::test]
async fn basic_auth_against_crypt_hashes() {
    let web = Backend::start("web").await;
    // Hashes of "s3cret" made by glibc's crypt(3) (SHA-512, MD5 and DES), as users have them.
    let hashes = [
        "$6$saltsalt$As4wrv0kZlfch1du9WeH7qhskyLriQWySXrZzynnvi46nFnNxjdpl6ksRegrrKexvhIa/Iny8S8uF3fVWTMuC1",
        "$1$saltsalt$RwMqRjSWhXMKbW72DwzGd1",
        "abhWCwoTZY2c6",
    ];
    let apps: Vec<_> = hashes
        .iter()
        .enumerate()
        .map(|(i, hash)| {
            app(&format!("/auth{i}"), free_port(), json!({"HAPROXY_0_VHOST": format!("auth{i}.example.com"), "HAPROXY_0_AUTH": format!("shop:admin:{hash}")}), &[web.port()])
        })
        .collect();
    let proxy = Proxy::start(json!(apps)).await;
    let c = client();
    for i in 0..hashes.len() {
        let host = format!("auth{i}.example.com");
        let r = c
            .get(proxy.url("/"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"shop\"");
        for (user, password) in [("admin", "wrong"), ("root", "s3cret")] {
            let r = c
                .get(proxy.url("/"))
                .header("host", &host)
                .basic_auth(user, Some(password))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{user}:{password} on {host}");
        }
        for _ in 0..2 {
            let r = c
                .get(proxy.url("/"))
                .header("host", &host)
                .basic_auth("admin", Some("s3cret"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{host}");
        }
    }
    assert_eq!(
        web.hits(),
        2 * hashes.len(),
        "only authenticated requests reached the backend"
    );
}

#[tokio::test]
async fn an_absolute_form_target_wins_over_host_and_is_what_the_backend_sees() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (web, other) = (Backend::start("web").await, Backend::start("other").await);
    let proxy = Proxy::start(json!([
        app(
            "/web",
            free_port(),
            json!({"HAPROXY_0_VHOST": "a.example.com"}),
            &[web.port()]
        ),
        app(
            "/other",
            free_port(),
            json!({"HAPROXY_0_VHOST": "b.example.com"}),
            &[other.port()]
        ),
    ]))
    .await;
    let mut s = tokio::net::TcpStream::connect(proxy.handle.http_addr.unwrap())
        .await
        .unwrap();
    s.write_all(
        b"GET http://a.example.com/x HTTP/1.1\r\nHost: b.example.com\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("x-backend: web"), "{text}");
    assert!(
        text.contains(r#""host":"a.example.com""#),
        "the backend sees the host it was routed by: {text}"
    );
    assert!(
        text.contains(r#""path":"/x""#),
        "origin-form upstream: {text}"
    );
    assert_eq!(other.hits(), 0);
}
