//! The status page with 2,500 apps, served by the admin port alone over a synthetic table (no
//! 2,500 service-port listeners): the server renders the first hundred and says where the rest
//! are; the script shows fifty at a time, pages on, finds one app by its host, and fits a
//! phone.

use std::sync::Arc;

use serde_json::json;
use switchyard::admin::{AdminState, Recorded};
use switchyard::metrics::Metrics;
use switchyard::routing::SharedTable;
use switchyard::sim::synthetic::{self, Shape};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::browser::Browser;
use super::queries::*;
use crate::support::proxy::client;

const APPS: usize = 2_500;

/// The admin port alone, on port 0, over a synthetic table of `apps` apps; returns the page's
/// address and what stops it.
pub async fn admin_over_synthetic(apps: usize) -> (String, CancellationToken) {
    let shape = Shape {
        exact_apps: apps,
        tasks_per_app: 1,
        ..Shape::default()
    };
    let table = SharedTable::new(synthetic::table(&shape));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page = format!("http://{}/", listener.local_addr().unwrap());
    let state = AdminState {
        table,
        reload: Arc::new(Notify::new()),
        cert_reload: Arc::new(Notify::new()),
        rebuild: Arc::new(Notify::new()),
        stream: watch::channel(Default::default()).1,
        read_status: watch::channel(Default::default()).1,
        metrics: Arc::new(Metrics::new()),
        recorded: Arc::new(Recorded::new()),
    };
    let stop = CancellationToken::new();
    tokio::spawn(switchyard::admin::run(listener, state, stop.clone()));
    (page, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_stays_usable_with_2500_apps() {
    let (page, stop) = admin_over_synthetic(APPS).await;

    // Without the script: the first hundred apps, and where the others are.
    let html = client()
        .get(&page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches(r#"<article class="app""#).count(), 100);
    assert!(html.contains("… and 2400 more apps"));

    let mut browser = Browser::launch().await;
    browser.viewport(1280, 900, false).await;
    browser.goto(&page).await;
    rendered(&mut browser, 1).await;
    let cards = app_cards(&mut browser).await;
    assert_eq!(cards.as_array().unwrap().len(), 50);
    assert_eq!(
        cards[0],
        json!("/synthetic/app-00000"),
        "alphabetical when idle"
    );
    let text = |id: &str| format!("document.getElementById('{id}').textContent");
    assert_eq!(browser.eval(&text("app-count")).await, json!("2,500"));
    assert_eq!(
        browser.eval(&text("app-shown")).await,
        json!("50 shown of 2,500 apps")
    );

    browser
        .eval("document.getElementById('show-more').click()")
        .await;
    browser
        .wait_for(
            "a second page",
            "document.querySelectorAll('#app-list .app').length === 100",
        )
        .await;

    search(&mut browser, "app-1234.example.com").await;
    browser
        .wait_for(
            "the one app with that host",
            "document.querySelectorAll('#app-list .app').length === 1",
        )
        .await;
    assert_eq!(
        app_cards(&mut browser).await,
        json!(["/synthetic/app-01234"])
    );
    search(&mut browser, "").await;

    browser.viewport(420, 900, true).await;
    browser
        .wait_for("the phone layout", "window.innerWidth === 420")
        .await;
    assert_eq!(
        sideways_scrolling(&mut browser).await,
        json!([]),
        "at 420 px"
    );
    stop.cancel();
}
