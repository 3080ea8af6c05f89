//! The status page in a real browser: headless Chromium loads the admin port's `/`, runs the
//! page's script (which polls `/stats`, `/routes` and `/history`), and we query the DOM it
//! leaves: apps grouped with each endpoint once, charts from the history the balancer kept
//! before the page was opened, generations likewise, the search box, and a phone's width
//! without sideways scrolling. Screenshots at desktop and phone widths land in `target/`.

mod browser;
mod queries;
mod scale;
mod unrouted;

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use browser::Browser;
use queries::*;
use serde_json::{json, Value};
use support::proxy::*;
use switchyard::proxy::ProxyConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_apps_history_and_changes_from_its_script() {
    let started = Instant::now();
    let (old, new_a, new_b, new_c) = (
        Backend::start("old").await,
        Backend::start("new-a").await,
        Backend::start("new-b").await,
        Backend::start("new-c").await,
    );
    // Holds one request, so an endpoint shows a request in flight.
    let slow = Backend::start_with("slow", true).await;
    let (sick, well) = (Backend::start("sick").await, Backend::start("well").await);
    let (refused, unused) = (closed_port(), closed_port());
    let ports = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let apps = |shop: &[u16]| {
        // The balancer's own check fails `sick` (its /health answers 500).
        let mut checked = app(
            "/checked",
            ports.2,
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
                ports.0,
                json!({"HAPROXY_0_VHOST": "shop.example.com"}),
                shop
            ),
            app(
                "/slow",
                ports.1,
                json!({"HAPROXY_0_VHOST": "slow.example.com"}),
                &[slow.port()]
            ),
            checked,
            app(
                "/legacy",
                ports.3,
                json!({"HAPROXY_0_VHOST": "legacy.example.com"}),
                &[refused]
            ),
            // A label value is user input that reaches the page in a problem's message.
            app(
                "/evil",
                ports.4,
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
    // Three requests answered by the shop, then the shop moves: all before the page opens, so
    // only the balancer can tell it.
    for _ in 0..3 {
        assert_eq!(
            get(&client(), &proxy.url("/"), "shop.example.com").await.0,
            200
        );
    }
    proxy.set_apps(apps(&[new_a.port(), new_b.port()])).await;
    let moved = proxy.handle.generation();

    let mut browser = Browser::launch().await;
    browser.viewport(1280, 1000, false).await;
    browser.goto(&page).await;
    let generation = rendered(&mut browser, moved).await;
    browser
        .wait_for(
            "the shop's charts",
            r#"!!document.querySelector('[data-app="/shop"] .chart')"#,
        )
        .await;

    // The process: version and uptime.
    let version = browser
        .eval("document.getElementById('version').textContent")
        .await;
    assert_eq!(version, json!(env!("CARGO_PKG_VERSION")));
    let uptime = browser
        .eval("document.getElementById('uptime').textContent")
        .await;
    assert!(
        !matches!(uptime.as_str(), None | Some("" | "–")),
        "{uptime}"
    );

    // One card per app, each endpoint shown once whatever the listeners (vhost, service port,
    // app id): the shop's routes are three chips on one card.
    let routed: Value = client()
        .get(format!("{page}routes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut app_ids: Vec<&str> = routed["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["app_id"].as_str().unwrap())
        .collect();
    app_ids.dedup();
    let cards = browser
        .eval("[...document.querySelectorAll('#app-list .app')].map(a => a.dataset.app).sort()")
        .await;
    assert_eq!(cards, json!(app_ids));
    let shop = r#"document.querySelector('[data-app="/shop"]')"#;
    let routes = browser
        .eval(&format!(
            "[...{shop}.querySelectorAll('.route')].map(r => r.dataset.listener)"
        ))
        .await;
    assert_eq!(routes.as_array().unwrap().len(), 3, "{routes}");
    assert_eq!(routes[0], json!("vhost"), "{routes}");
    let endpoints = browser
        .eval(&format!(
            "[...{shop}.querySelectorAll('[data-endpoint]')].map(e => e.dataset.endpoint).sort()"
        ))
        .await;
    let mut expected = vec![
        format!("127.0.0.1:{}", new_a.port()),
        format!("127.0.0.1:{}", new_b.port()),
    ];
    expected.sort();
    assert_eq!(endpoints, json!(expected));

    // The history the balancer kept: the shop's three requests, though the page opened after.
    let charted = browser
        .eval(&format!(
            "{shop}.querySelector('.chart[data-series=requests]').dataset.sum"
        ))
        .await;
    assert_eq!(charted, json!("3"));
    let total = browser
        .eval("document.querySelector('#total-charts .chart[data-series=requests]').dataset.sum")
        .await;
    assert!(
        total.as_str().unwrap().parse::<u64>().unwrap() >= 3,
        "{total}"
    );
    // And the generations: the move of the shop is listed with what it changed.
    let listed = browser
        .eval(&format!(
            "document.querySelector('#history-list [data-generation=\"{moved}\"] .what')?.textContent"
        ))
        .await;
    let listed = listed.as_str().unwrap_or_default();
    assert!(
        listed.contains("changed: /shop") && listed.contains("+2 −1 endpoints"),
        "{listed}"
    );
    assert!(
        browser
            .eval("!!document.querySelector('#history-list [data-generation=\"1\"]')")
            .await
            == json!(true),
        "the first table, before the page opened"
    );

    // Health and in-flight on the endpoint chips.
    assert_eq!(endpoint(&mut browser, slow.port(), "inFlight").await, "1");
    assert_eq!(endpoint(&mut browser, slow.port(), "health").await, "up");
    assert_eq!(
        endpoint(&mut browser, sick.port(), "health").await,
        "check-failed"
    );
    assert_eq!(endpoint(&mut browser, well.port(), "health").await, "up");
    // A label value is shown as text, never markup.
    let problem = browser
        .eval(r#"document.querySelector('#problems-body [data-app="/evil"]')?.textContent"#)
        .await;
    assert!(
        problem
            .as_str()
            .unwrap_or_default()
            .contains("<img src=x onerror=alert(1)>"),
        "{problem}"
    );
    assert_eq!(
        browser
            .eval("document.querySelectorAll('img').length")
            .await,
        json!(0)
    );

    // The search box: by host, kept in the address; cleared, every app again.
    search(&mut browser, "slow.example").await;
    browser
        .wait_for(
            "only the slow app",
            "[...document.querySelectorAll('#app-list .app')].map(a => a.dataset.app).join() === '/slow'",
        )
        .await;
    assert_eq!(
        browser.eval("location.hash").await,
        json!("#q=slow.example")
    );
    search(&mut browser, "").await;
    browser
        .wait_for(
            "every app",
            &format!(
                "document.querySelectorAll('#app-list .app').length === {}",
                app_ids.len()
            ),
        )
        .await;

    // Move the shop while the page is open: the old endpoints go, the new one comes.
    proxy.set_apps(apps(&[new_c.port()])).await;
    let generation = rendered(&mut browser, generation + 1).await;
    browser
        .wait_for(
            "the shop on its new endpoint",
            &format!(
                "[...{shop}.querySelectorAll('[data-endpoint]')].map(e => e.dataset.endpoint).join() === '127.0.0.1:{}'",
                new_c.port()
            ),
        )
        .await;
    assert!(generation > moved);

    screenshots(&proxy, &mut browser).await;
    slow.release(1);
    assert_eq!(held.await.unwrap(), 200);
    eprintln!("status page test took {:?}", started.elapsed());
}

/// Desktop (the whole page) and phone screenshots (`target/status-page.png`,
/// `target/status-page-phone.png`),
/// after a few samples of steady traffic so that the charts have lines, and the phone width
/// checked for sideways scrolling.
async fn screenshots(proxy: &Proxy, browser: &mut Browser) {
    // For the picture: steady traffic to the shop, and requests to `legacy`, whose endpoint
    // refuses connections, keep it backed off and answering 5xx.
    let traffic = tokio::spawn({
        let url = proxy.url("/");
        async move {
            loop {
                let _ = get(&client(), &url, "shop.example.com").await;
                let _ = get(&fresh_client(), &url, "legacy.example.com").await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let samples = browser
        .eval("fetch('/stats').then(r => r.json()).then(s => s.history_samples)")
        .await
        .as_u64()
        .unwrap();
    browser
        .wait_for(
            "two more samples of the history",
            &format!(
                "fetch('/stats').then(r => r.json()).then(s => s.history_samples >= {})",
                samples + 2
            ),
        )
        .await;
    browser
        .wait_for(
            "charts with the new samples",
            "document.querySelectorAll('#total-charts .chart path.line').length >= 2",
        )
        .await;
    // The whole page: the viewport as tall as the page.
    let height = browser
        .eval("document.documentElement.scrollHeight")
        .await
        .as_u64()
        .unwrap();
    browser.viewport(1280, height as u32, false).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let png = browser.screenshot(&root.join("status-page.png")).await;
    assert_png(&png);

    browser.viewport(420, 900, true).await;
    browser
        .wait_for("the phone layout", "window.innerWidth === 420")
        .await;
    assert_eq!(sideways_scrolling(browser).await, json!([]), "at 420 px");
    let png = browser
        .screenshot(&root.join("status-page-phone.png"))
        .await;
    assert_png(&png);
    traffic.abort();
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
