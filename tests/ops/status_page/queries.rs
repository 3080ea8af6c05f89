//! What the status page tests ask the page.

use serde_json::{json, Value};

use super::browser::Browser;

pub fn assert_png(png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "a near-empty screenshot: {} bytes",
        png.len()
    );
}

/// Waits until the script has rendered generation `at_least` (or later) from `/routes` and
/// `/stats`; returns the generation shown.
pub async fn rendered(browser: &mut Browser, at_least: u64) -> u64 {
    let main = "document.getElementById('status').dataset";
    browser
        .wait_for(
            "a table rendered by the script",
            &format!("{main}.renderedBy === 'script' && +{main}.generation >= {at_least} && document.getElementById('app-list').dataset.renderedBy === 'script'"),
        )
        .await;
    let shown = browser.eval(&format!("+{main}.generation")).await;
    let heading = browser
        .eval("document.getElementById('generation').textContent")
        .await;
    assert_eq!(heading, json!(shown.to_string()));
    shown.as_u64().unwrap()
}

/// A data attribute of the chip of the endpoint on `port`.
pub async fn endpoint(browser: &mut Browser, port: u16, key: &str) -> String {
    let value = browser
        .eval(&format!(
            r#"document.querySelector('[data-endpoint="127.0.0.1:{port}"]')?.dataset.{key}"#
        ))
        .await;
    value.as_str().unwrap_or_default().to_owned()
}

/// Types `text` into the search box, as a person does (an input event).
pub async fn search(browser: &mut Browser, text: &str) {
    browser
        .eval(&format!(
            "(() => {{ const box = document.getElementById('filter'); box.value = {text}; box.dispatchEvent(new Event('input')); return true; }})()",
            text = json!(text)
        ))
        .await;
}

/// The elements that scroll sideways (the page itself among them): none, on any width.
pub async fn sideways_scrolling(browser: &mut Browser) -> Value {
    browser
        .eval(
            "[document.documentElement, ...document.querySelectorAll('*')]
              .filter(e => e === document.documentElement || /auto|scroll/.test(getComputedStyle(e).overflowX))
              .filter(e => e.scrollWidth > e.clientWidth + 1)
              .map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className}: ${e.scrollWidth} > ${e.clientWidth}`)",
        )
        .await
}

/// The app ids of the cards shown, in their order.
pub async fn app_cards(browser: &mut Browser) -> Value {
    browser
        .eval("[...document.querySelectorAll('#app-list .app')].map(a => a.dataset.app)")
        .await
}
