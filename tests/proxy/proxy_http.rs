//! The HTTP data plane over real sockets: routing, headers, errors, retries, balancing.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::proxy::*;
use switchyard::proxy::ProxyConfig;

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
async fn a_dead_endpoint_is_retried_elsewhere_and_all_dead_is_502() {
    let web = Backend::start("web").await;
    let dead = closed_port();
    let proxy = Proxy::start(json!([app(
        "/web",
        free_port(),
        json!({"HAPROXY_0_VHOST": "r.example.com"}),
        &[dead, web.port()]
    )]))
    .await;
    let c = fresh_client();
    for _ in 0..10 {
        let (status, backend, _) = get(&c, &proxy.url("/"), "r.example.com").await;
        assert_eq!((status, backend.as_str()), (200, "web"));
    }
    proxy
        .set_apps(json!([app(
            "/web",
            free_port(),
            json!({"HAPROXY_0_VHOST": "r.example.com"}),
            &[closed_port(), closed_port()]
        )]))
        .await;
    let (status, _, body) = get(&c, &proxy.url("/"), "r.example.com").await;
    assert_eq!(status, 502);
    assert_eq!(
        body,
        serde_json::Value::Null,
        "a short text body, no internals"
    );
}

#[tokio::test]
async fn a_slow_upstream_is_a_504() {
    let slow = Backend::start_with("slow", true).await;
    let config = ProxyConfig {
        server_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start_with(
        json!([app(
            "/slow",
            free_port(),
            json!({"HAPROXY_0_VHOST": "s.example.com"}),
            &[slow.port()]
        )]),
        config,
    )
    .await;
    let response = client()
        .get(proxy.url("/"))
        .header("host", "s.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    let text = response.text().await.unwrap();
    assert_eq!(text, "504 Gateway Timeout\n");
    slow.release(1);
}

#[tokio::test]
async fn bad_requests_get_400() {
    let web = Backend::start("web").await;
    let proxy = Proxy::start(json!([app(
        "/web",
        free_port(),
        json!({"HAPROXY_0_VHOST": "b.example.com"}),
        &[web.port()]
    )]))
    .await;
    let raw = |request: &'static [u8]| {
        let addr = proxy.handle.http_addr.unwrap();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(request).await.unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    let no_host = raw(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert!(no_host.starts_with("HTTP/1.1 400"), "{no_host}");
    let two_hosts = raw(b"GET / HTTP/1.1\r\nHost: b.example.com\r\nHost: b.example.com\r\nConnection: close\r\n\r\n").await;
    assert!(two_hosts.starts_with("HTTP/1.1 400"), "{two_hosts}");
    assert_eq!(web.hits(), 0, "nothing ambiguous reached the backend");
}

#[tokio::test]
async fn balancing_policies_draining_and_sticky_sessions() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let proxy = Proxy::start(json!([app(
        "/rr",
        free_port(),
        json!({"HAPROXY_0_VHOST": "rr.example.com"}),
        &[a.port(), b.port(), c.port()]
    )]))
    .await;
    let http = client();
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(get(&http, &proxy.url("/"), "rr.example.com").await.1);
    }
    seen.sort();
    assert_eq!(
        seen,
        ["a", "a", "b", "b", "c", "c"],
        "round-robin spreads evenly"
    );

    // Sticky: the cookie set on the first response pins the next requests.
    proxy
        .set_apps(json!([app(
            "/st",
            free_port(),
            json!({"HAPROXY_0_VHOST": "st.example.com", "HAPROXY_0_STICKY": "true"}),
            &[a.port(), b.port(), c.port()]
        )]))
        .await;
    let first = http
        .get(proxy.url("/"))
        .header("host", "st.example.com")
        .send()
        .await
        .unwrap();
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("mesosphere_server_id="), "{cookie}");
    let pinned = first.headers()["x-backend"].to_str().unwrap().to_owned();
    for _ in 0..5 {
        let r = http
            .get(proxy.url("/"))
            .header("host", "st.example.com")
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-backend"], pinned.as_str());
        assert!(r.headers().get("set-cookie").is_none(), "already pinned");
    }

    // Source hash: one client address always lands on the same endpoint.
    proxy
        .set_apps(json!([app(
            "/src",
            free_port(),
            json!({"HAPROXY_0_VHOST": "src.example.com", "HAPROXY_0_BALANCE": "source"}),
            &[a.port(), b.port(), c.port()]
        )]))
        .await;
    let first = get(&http, &proxy.url("/"), "src.example.com").await.1;
    for _ in 0..5 {
        assert_eq!(
            get(&fresh_client(), &proxy.url("/"), "src.example.com")
                .await
                .1,
            first
        );
    }
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
async fn an_endpoint_failing_its_active_health_check_leaves_rotation() {
    let (sick, well) = (Backend::start("sick").await, Backend::start("well").await);
    let mut checked = app(
        "/checked",
        free_port(),
        json!({"HAPROXY_0_VHOST": "hc.example.com"}),
        &[sick.port(), well.port()],
    );
    // Marathon still reports both tasks healthy; the balancer's own check disagrees for one.
    checked["healthChecks"] = json!([{"protocol": "HTTP", "path": "/health", "portIndex": 0,
        "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 0}]);
    for task in checked["tasks"].as_array_mut().unwrap() {
        task["healthCheckResults"] = json!([{"alive": true}]);
    }
    let proxy = Proxy::start(json!([checked])).await;
    let sick_state = {
        let table = proxy.handle.table.load();
        let backend = &table.backends()[0];
        let i = backend
            .targets
            .iter()
            .position(|t| t.addr() == sick.addr)
            .unwrap();
        backend.targets[i].state.clone()
    };
    // Wait on the endpoint's observable state (the first probe runs at once).
    tokio::time::timeout(Duration::from_secs(10), async {
        while !sick_state.is_down() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the failing endpoint is taken out");
    let c = client();
    for _ in 0..8 {
        assert_eq!(get(&c, &proxy.url("/"), "hc.example.com").await.1, "well");
    }
}

#[tokio::test]
async fn silent_and_idle_client_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let web = Backend::start("web").await;
    let config = ProxyConfig {
        header_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start_with(
        json!([app(
            "/web",
            free_port(),
            json!({"HAPROXY_0_VHOST": "i.example.com"}),
            &[web.port()]
        )]),
        config,
    )
    .await;
    let bound = Duration::from_secs(10);

    // A client that connects and says nothing.
    let mut silent = tokio::net::TcpStream::connect(proxy.handle.http_addr.unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(bound, silent.read(&mut buf))
        .await
        .expect("closed by the proxy")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");

    // A keep-alive client that goes idle after one request.
    let mut idle = tokio::net::TcpStream::connect(proxy.handle.http_addr.unwrap())
        .await
        .unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: i.example.com\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(bound, async {
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "idle keep-alive connection closed");
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"),
        "the request was answered first"
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

#[tokio::test]
async fn a_backend_that_stalls_mid_body_never_yields_a_complete_response() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stalling = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = stalling.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = stalling.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
                    .await
                    .unwrap();
                // Then nothing, with the connection held open.
                let _ = s.read(&mut buf).await;
            });
        }
    });
    let config = ProxyConfig {
        server_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start_with(
        json!([app(
            "/stall",
            free_port(),
            json!({"HAPROXY_0_VHOST": "st.example.com"}),
            &[port]
        )]),
        config,
    )
    .await;
    let response = client()
        .get(proxy.url("/"))
        .header("host", "st.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the head came through");
    let body = tokio::time::timeout(Duration::from_secs(10), response.bytes())
        .await
        .expect("cut short, not hung");
    assert!(
        body.is_err(),
        "the client sees a broken body, not a complete one"
    );
}
