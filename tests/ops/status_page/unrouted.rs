//! The Unrouted section: shown when `/stats` lists hosts answered 503 because nothing routes
//! them (`"unrouted": [{"host", "listener", "requests", "last_seen"}]`, most recent first),
//! hidden when the field is absent or empty. The balancer may not send the field: the test
//! adds it to the page's `/stats` answers in the browser.

use serde_json::json;

use super::browser::Browser;
use super::queries::*;
use super::scale::admin_over_synthetic;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrouted_hosts_get_a_section_when_stats_lists_them() {
    let (page, stop) = admin_over_synthetic(3).await;
    let mut browser = Browser::launch().await;
    browser.viewport(420, 900, true).await;

    // Without the field: no section.
    browser.goto(&page).await;
    rendered(&mut browser, 1).await;
    let hidden = "document.getElementById('unrouted').hidden";
    assert_eq!(browser.eval(hidden).await, json!(true));

    let unrouted = json!([
        {"host": "typo.example.com", "listener": "http", "requests": 3, "last_seen": "2026-12-07T15:00:00Z"},
        {"host": "<img src=x onerror=alert(1)>.example.com", "listener": "https", "requests": 1, "last_seen": "2026-12-07T14:59:00Z"},
    ]);
    browser
        .before_scripts(&format!(
            "const fetched = window.fetch;
             window.fetch = async (input, init) => {{
               const response = await fetched(input, init);
               if (!String(input).endsWith('/stats')) return response;
               const stats = await response.json();
               stats.unrouted = {unrouted};
               return new Response(JSON.stringify(stats), {{ headers: {{ 'content-type': 'application/json' }} }});
             }};"
        ))
        .await;
    browser.goto(&page).await;
    browser
        .wait_for(
            "the Unrouted section",
            "!document.getElementById('unrouted').hidden",
        )
        .await;
    let rows = browser
        .eval("[...document.querySelectorAll('#unrouted-body tr')].map(r => [...r.cells].map(c => c.textContent))")
        .await;
    assert_eq!(rows[0][0], json!("typo.example.com"), "{rows}");
    assert_eq!((&rows[0][1], &rows[0][2]), (&json!("http"), &json!("3")));
    assert!(rows[0][3].as_str().unwrap().contains(" ago)"), "{rows}");
    assert_eq!(
        rows[1][0],
        json!("<img src=x onerror=alert(1)>.example.com")
    );
    assert_eq!(
        browser
            .eval("document.querySelectorAll('img').length")
            .await,
        json!(0)
    );
    assert_eq!(
        browser
            .eval("document.getElementById('unrouted-count').textContent")
            .await,
        json!("2")
    );
    assert_eq!(
        sideways_scrolling(&mut browser).await,
        json!([]),
        "at 420 px"
    );
    stop.cancel();
}
