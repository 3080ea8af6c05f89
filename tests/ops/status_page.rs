//! The status page in a real browser: headless Chromium loads the admin port's `/`, runs the
//! page's script (which polls `/routes` and `/stats`), and we read the DOM it leaves. Needs
//! `chromium` (scripts/install-test-deps.sh); without it the test fails, it never skips.

use crate::support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::proxy::*;
use switchyard::proxy::ProxyConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_routes_health_and_changes_from_its_script() {
    let started = Instant::now();
    let (old, new_a, new_b) = (
        Backend::start("old").await,
        Backend::start("new-a").await,
        Backend::start("new-b").await,
    );
    // Holds one request, so an endpoint shows a request in flight.
    let slow = Backend::start_with("slow", true).await;
    let (sick, well) = (Backend::start("sick").await, Backend::start("well").await);
    let (refused, unused) = (closed_port(), closed_port());
    let apps = |shop: &[u16]| {
        // The balancer's own check fails `sick` (its /health answers 500).
        let mut checked = app(
            "/checked",
            free_port(),
            json!({"HAPROXY_0_VHOST": "checked.example.com"}),
            &[sick.port(), well.port()],
        );
        checked["healthChecks"] = json!([{"protocol": "HTTP", "path": "/health", "portIndex": 0,
            "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 0}]);
        for task in checked["tasks"].as_array_mut().unwrap() {
            task["healthCheckResults"] = json!([{"alive": true}]);
        }
        json!([
            app(
                "/shop",
                free_port(),
                json!({"HAPROXY_0_VHOST": "shop.example.com"}),
                shop
            ),
            app(
                "/slow",
                free_port(),
                json!({"HAPROXY_0_VHOST": "slow.example.com"}),
                &[slow.port()]
            ),
            checked,
            app(
                "/legacy",
                free_port(),
                json!({"HAPROXY_0_VHOST": "legacy.example.com"}),
                &[refused]
            ),
            // A label value is user input that reaches the page in a problem's message.
            app(
                "/evil",
                free_port(),
                json!({"HAPROXY_0_BALANCE": "<img src=x onerror=alert(1)>"}),
                &[unused]
            ),
        ])
    };
    let config = ProxyConfig {
        server_timeout: Duration::from_secs(300),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start_with(apps(&[old.port()]), config).await;
    let page = format!("http://{}/", proxy.handle.admin_addr);

    let held = tokio::spawn({
        let url = proxy.url("/");
        async move { get(&client(), &url, "slow.example.com").await.0 }
    });
    wait_until(|| slow.hits() == 1).await;
    wait_until(|| check_failed(&proxy, sick.port())).await;

    // Three requests answered by the shop: the traffic table counts them.
    for _ in 0..3 {
        assert_eq!(
            get(&client(), &proxy.url("/"), "shop.example.com").await.0,
            200
        );
    }

    let dom = dump_dom(&page).await;
    let generation = proxy.handle.generation();
    assert_rendered_by_script(&dom, generation);
    let traffic = element(&dom, "tbody", "traffic-body");
    let shop_row = start_tag_with(traffic, r#"data-requests="#);
    assert!(traffic.contains("/shop"), "{traffic}");
    assert!(shop_row.contains("data-backend="), "{shop_row}");
    let shop_requests = traffic
        .split("<tr ")
        .find(|row| row.contains(">/shop<"))
        .and_then(|row| attr(row, "data-requests"))
        .and_then(|n| n.parse::<u64>().ok());
    assert_eq!(shop_requests, Some(3), "{traffic}");
    let routes = element(&dom, "tbody", "routes-body");
    assert!(
        routes.contains(r#"data-host="shop.example.com""#),
        "{routes}"
    );
    assert!(routes.contains(r#"data-app="/shop""#), "{routes}");
    assert!(routes.contains(&endpoint_attr(old.port())), "{routes}");
    let slow_endpoint = start_tag_with(routes, &endpoint_attr(slow.port()));
    assert_eq!(
        attr(slow_endpoint, "data-in-flight"),
        Some("1"),
        "{slow_endpoint}"
    );
    assert_eq!(
        attr(slow_endpoint, "data-health"),
        Some("up"),
        "{slow_endpoint}"
    );
    let sick_endpoint = start_tag_with(routes, &endpoint_attr(sick.port()));
    assert_eq!(
        attr(sick_endpoint, "data-health"),
        Some("check-failed"),
        "{sick_endpoint}"
    );
    let well_endpoint = start_tag_with(routes, &endpoint_attr(well.port()));
    assert_eq!(
        attr(well_endpoint, "data-health"),
        Some("up"),
        "{well_endpoint}"
    );
    let problems = element(&dom, "tbody", "problems-body");
    assert!(problems.contains(r#"data-app="/evil""#), "{problems}");
    assert!(
        problems.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "shown as text: {problems}"
    );
    assert!(!dom.contains("<img"), "a label value became markup");

    // Move the shop to other ports: the old endpoint goes, the new ones come.
    proxy.set_apps(apps(&[new_a.port(), new_b.port()])).await;
    let dom = dump_dom(&page).await;
    let generation = proxy.handle.generation();
    assert_rendered_by_script(&dom, generation);
    let routes = element(&dom, "tbody", "routes-body");
    assert!(
        routes.contains(r#"data-host="shop.example.com""#),
        "{routes}"
    );
    assert!(routes.contains(&endpoint_attr(new_a.port())), "{routes}");
    assert!(routes.contains(&endpoint_attr(new_b.port())), "{routes}");
    assert!(!routes.contains(&endpoint_attr(old.port())), "{routes}");

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/status-page.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&shot);
    // For the picture only (not asserted: a back-off lasts seconds of real time): requests to
    // `legacy`, whose endpoint refuses connections, keep it backed off while Chromium runs.
    let knocker = tokio::spawn({
        let url = proxy.url("/");
        async move {
            loop {
                let _ = get(&fresh_client(), &url, "legacy.example.com").await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    chromium(vec![
        format!("--screenshot={}", shot.display()),
        "--window-size=1280,900".to_owned(),
        "--virtual-time-budget=5000".to_owned(),
        page,
    ])
    .await;
    knocker.abort();
    let png = std::fs::read(&shot).expect("Chromium wrote no screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG: {}", shot.display());
    assert!(
        png.len() > 20_000,
        "a near-empty screenshot: {} bytes",
        png.len()
    );

    slow.release(1);
    assert_eq!(held.await.unwrap(), 200);
    eprintln!("status page test took {:?}", started.elapsed());
}

/// What only the script produces: the marker it sets after rendering `/routes` and `/stats`,
/// freshly built tables, and its history of generations.
fn assert_rendered_by_script(dom: &str, generation: u64) {
    let main = element(dom, "main", "status");
    assert_eq!(
        attr(start_tag(main), "data-rendered-by"),
        Some("script"),
        "{dom}"
    );
    assert_eq!(
        attr(start_tag(main), "data-generation"),
        Some(&*generation.to_string())
    );
    for body in ["routes-body", "problems-body"] {
        let tag = start_tag(element(dom, "tbody", body));
        assert_eq!(attr(tag, "data-rendered-by"), Some("script"), "{tag}");
    }
    assert_eq!(
        text(element(dom, "dd", "generation")),
        generation.to_string()
    );
    let history = element(dom, "ol", "history-list");
    assert!(
        history.contains(&format!(r#"data-generation="{generation}""#)),
        "{history}"
    );
}

fn endpoint_attr(port: u16) -> String {
    format!(r#"data-endpoint="127.0.0.1:{port}""#)
}

/// Whether the active check has taken the endpoint on `port` out.
fn check_failed(proxy: &Proxy, port: u16) -> bool {
    let table = proxy.handle.table.load();
    let target = table
        .backends()
        .iter()
        .flat_map(|b| &b.targets)
        .find(|t| t.addr().port() == port);
    target.is_some_and(|t| t.state.is_check_failed())
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The DOM after the page's script ran for five seconds of virtual time (fetches included).
async fn dump_dom(url: &str) -> String {
    chromium(vec![
        "--dump-dom".to_owned(),
        "--virtual-time-budget=5000".to_owned(),
        url.to_owned(),
    ])
    .await
}

/// Runs headless Chromium with a fresh profile on a blocking thread (the server keeps running
/// on the runtime) and returns its stdout. A browser that hangs fails the test after 60 s.
async fn chromium(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
        let mut child = Command::new(browser())
            // Root in a container has no sandbox to run in; the page is our own, on loopback.
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
            ])
            // Nothing may leave the machine: no Google services, no updates, no QUIC.
            .args([
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .args(&args)
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .expect("cannot start chromium");
        let stderr = || std::fs::read_to_string(&err).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromium did not finish within 60 s: {args:?}\n{}",
                    stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "chromium failed ({status}): {args:?}\n{}",
            stderr()
        );
        std::fs::read_to_string(&out).unwrap()
    })
    .await
    .unwrap()
}

fn browser() -> PathBuf {
    let installed = Path::new("/usr/bin/chromium");
    if installed.is_file() {
        return installed.to_owned();
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("chromium"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "headless Chromium is needed (no /usr/bin/chromium, no chromium on PATH): \
                 run scripts/install-test-deps.sh"
            )
        })
}

/// The element whose start tag carries `id="{id}"`, from its start tag to its end tag (the
/// elements looked up here do not nest in themselves).
fn element<'d>(dom: &'d str, tag: &str, id: &str) -> &'d str {
    let at = dom
        .find(&format!(r#" id="{id}""#))
        .unwrap_or_else(|| panic!("no #{id} in\n{dom}"));
    let start = dom[..at].rfind('<').unwrap();
    assert!(
        dom[start..].starts_with(&format!("<{tag}")),
        "#{id} is not a <{tag}>"
    );
    let end = dom[start..]
        .find(&format!("</{tag}>"))
        .unwrap_or_else(|| panic!("#{id} is not closed"));
    &dom[start..start + end + tag.len() + 3]
}

fn start_tag(element: &str) -> &str {
    &element[..=element.find('>').unwrap()]
}

/// The start tag that contains `needle` (an attribute).
fn start_tag_with<'d>(html: &'d str, needle: &str) -> &'d str {
    let at = html
        .find(needle)
        .unwrap_or_else(|| panic!("no {needle} in\n{html}"));
    start_tag(&html[html[..at].rfind('<').unwrap()..])
}

fn attr<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let at = tag.find(&format!(r#" {name}=""#))? + name.len() + 3;
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// An element's text, tags removed.
fn text(element: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in element.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}
