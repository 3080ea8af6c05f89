//! HTTP/1 smuggling and parser vectors (reliability matrix A1, A4, A6), sent raw to the proxy
//! in front of a raw recorder backend. Each vector is rejected (400/408/414/431/501, the
//! connection closed) or normalised (one clean framing upstream); never a 5xx; a request
//! hidden in another's bytes never reaches the recorder.

use crate::hostile::recorder;
use crate::support;

use std::time::Duration;

use recorder::{exchange, statuses, Recorder};
use serde_json::json;
use support::proxy::*;
use switchyard::proxy::ProxyConfig;

/// What a vector may end in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// A 4xx from the proxy and a closed connection.
    Rejected,
    /// Either that, or forwarded with clean framing.
    RejectedOrNormalised,
    /// Never a complete head to the parser: closed at the header timeout with no answer.
    ClosedUnanswered,
    /// Upgraded after the backend's 101: the bytes sent early are tunnel data, not a request.
    Upgraded,
    /// An early answer from the proxy itself (403, 301) whose unread body must not be parsed.
    EarlyAnswer(u16),
}
use Expect::*;

struct Vector {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

const REJECT_STATUSES: [u16; 6] = [400, 408, 413, 414, 431, 501];

fn v(name: &'static str, bytes: impl AsRef<[u8]>, expect: Expect) -> Vector {
    Vector {
        name,
        bytes: bytes.as_ref().to_vec(),
        expect,
    }
}

/// A request that, if the proxy ever parsed it out of another request's bytes, would reach the
/// recorder (an open path) or bypass the ACL (`/forbidden`).
fn smuggled(name: &str) -> String {
    format!("GET /smuggled/{name} HTTP/1.1\r\nHost: open.test\r\n\r\n")
}

fn vectors() -> Vec<Vector> {
    let post = |name: &str, headers: &str, body: &str| {
        format!("POST /v/{name} HTTP/1.1\r\nHost: open.test\r\n{headers}\r\n{body}")
    };
    let get = |name: &str, headers: &str| {
        format!("GET /v/{name} HTTP/1.1\r\nHost: open.test\r\n{headers}\r\n")
    };
    let s = smuggled;
    let huge_value = "a".repeat(64 * 1024);
    let many_headers: String = (0..500).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let long_uri = format!("/v/huge_uri_70k?{}", "a".repeat(70 * 1024));
    let body_request = s("a6");
    vec![
        // Content-Length / Transfer-Encoding conflicts.
        v("cl_te", post("cl_te", "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", &format!("0\r\n\r\n{}", s("cl_te"))), RejectedOrNormalised),
        v("te_cl", post("te_cl", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", &format!("8\r\nSMUGGLED\r\n0\r\n\r\n{}", s("te_cl"))), RejectedOrNormalised),
        v("cl_dup_conflict", post("cl_dup_conflict", "Content-Length: 5\r\nContent-Length: 50\r\n", &format!("hello{}", s("cl_dup_conflict"))), Rejected),
        v("cl_dup_same", post("cl_dup_same", "Content-Length: 5\r\nContent-Length: 5\r\n", "hello"), RejectedOrNormalised),
        v("cl_plus", post("cl_plus", "Content-Length: +5\r\n", "hello"), Rejected),
        v("cl_hex", post("cl_hex", "Content-Length: 0x5\r\n", "hello"), Rejected),
        v("cl_negative", post("cl_negative", "Content-Length: -1\r\n", "hello"), Rejected),
        v("cl_inner_space", post("cl_inner_space", "Content-Length: 1 5\r\n", "hello"), Rejected),
        v("cl_comma_list", post("cl_comma_list", "Content-Length: 5, 50\r\n", "hello"), Rejected),
        v("cl_space_before_colon", post("cl_space_before_colon", "Content-Length : 5\r\n", "hello"), Rejected),
        // Transfer-Encoding obfuscation.
        v("te_xchunked", post("te_xchunked", "Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"), Rejected),
        v("te_chunked_identity", post("te_chunked_identity", "Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"), Rejected),
        v("te_dup_headers", post("te_dup_headers", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", "0\r\n\r\n"), Rejected),
        v("te_vtab", post("te_vtab", "Transfer-Encoding:\x0bchunked\r\n", "0\r\n\r\n"), Rejected),
        v("te_obs_fold", post("te_obs_fold", "Transfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n"), Rejected),
        v("te_space_before_colon", post("te_space_before_colon", "Transfer-Encoding : chunked\r\n", "0\r\n\r\n"), Rejected),
        v("te_upper_value", post("te_upper_value", "Transfer-Encoding: CHUNKED\r\n", "5\r\nhello\r\n0\r\n\r\n"), RejectedOrNormalised),
        v("http10_te", format!("POST /v/http10_te HTTP/1.0\r\nHost: open.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{}", s("http10_te")), Rejected),
        // Chunk abuse.
        v("chunk_size_not_hex", post("chunk_size_not_hex", "Transfer-Encoding: chunked\r\n", "zz\r\nhello\r\n0\r\n\r\n"), Rejected),
        v("chunk_size_overflow", post("chunk_size_overflow", "Transfer-Encoding: chunked\r\n", "fffffffffffffffff\r\nhello\r\n0\r\n\r\n"), Rejected),
        v("chunk_size_missing", post("chunk_size_missing", "Transfer-Encoding: chunked\r\n", "\r\nhello\r\n0\r\n\r\n"), Rejected),
        v("chunk_missing_crlf", post("chunk_missing_crlf", "Transfer-Encoding: chunked\r\n", &format!("5\r\nhelloXX0\r\n\r\n{}", s("chunk_missing_crlf"))), Rejected),
        v("chunk_ext_huge", post("chunk_ext_huge", "Transfer-Encoding: chunked\r\n", &format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(70 * 1024))), Rejected),
        v("chunk_final_missing", post("chunk_final_missing", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n"), Rejected),
        v("chunk_bare_lf", post("chunk_bare_lf", "Transfer-Encoding: chunked\r\n", "5\nhello\n0\n\n"), RejectedOrNormalised),
        // Line endings and control bytes.
        v("obs_fold", get("obs_fold", "X-A: a\r\n b\r\n"), Rejected),
        v("bare_lf", "GET /v/bare_lf HTTP/1.1\nHost: open.test\nX-A: a\n\n", RejectedOrNormalised),
        v("bare_cr_in_value", get("bare_cr_in_value", "X-A: a\rb\r\n"), Rejected),
        // Sent in one piece, the head is parsed whole and refused. (hyper parses a partial head
        // again only once a blank line arrives: sent in pieces, it is closed unanswered at
        // the header timeout. Never forwarded either way.)
        v("bare_cr_line_end", "GET /v/bare_cr_line_end HTTP/1.1\rHost: open.test\r\r", Rejected),
        v("head_never_ends", "GET /v/head_never_ends HTTP/1.1\r\nHost: open.test\r\n", ClosedUnanswered),
        v("nul_in_value", get("nul_in_value", "X-A: a\0b\r\n"), Rejected),
        v("ctl_in_value", get("ctl_in_value", "X-A: a\x01b\r\n"), Rejected),
        v("del_in_value", get("del_in_value", "X-A: a\x7fb\r\n"), Rejected),
        v("nul_in_name", get("nul_in_name", "X\0A: b\r\n"), Rejected),
        v("ctl_in_name", get("ctl_in_name", "X\x1fA: b\r\n"), Rejected),
        v("space_before_colon", get("space_before_colon", "X-A : b\r\n"), Rejected),
        v("nul_in_target", "GET /v/nul\0 HTTP/1.1\r\nHost: open.test\r\n\r\n", Rejected),
        v("http09", "GET /v/http09\r\n\r\n", Rejected),
        v("bad_version", "GET /v/bad_version HTTP/1.7x\r\nHost: open.test\r\n\r\n", Rejected),
        // Host rules.
        v("host_duplicate", get("host_duplicate", "Host: other.test\r\n"), Rejected),
        v("host_missing_11", "GET /v/host_missing_11 HTTP/1.1\r\nX-A: b\r\n\r\n", Rejected),
        v("host_with_path", "GET /v/host_with_path HTTP/1.1\r\nHost: open.test/../x\r\n\r\n", Rejected),
        v("host_userinfo", "GET /v/host_userinfo HTTP/1.1\r\nHost: evil@open.test\r\n\r\n", Rejected),
        v("absolute_form_mismatch", "GET http://open.test/v/absolute_form_mismatch HTTP/1.1\r\nHost: other.test\r\n\r\n", RejectedOrNormalised),
        v("connect_method", "CONNECT open.test:443 HTTP/1.1\r\nHost: open.test:443\r\n\r\n", Rejected),
        // Hop-by-hop abuse and bodies.
        // The upstream must still get a framed body: "hello" parsed as a request line would show.
        v("connection_nominates_cl", post("connection_nominates_cl", "Connection: Content-Length\r\nContent-Length: 5\r\n", "hello"), RejectedOrNormalised),
        v("connection_nominates_host", get("connection_nominates_host", "Connection: Host, close\r\n"), RejectedOrNormalised),
        v("get_with_body", format!("GET /v/get_with_body HTTP/1.1\r\nHost: open.test\r\nContent-Length: {}\r\n\r\n{}", s("get_with_body").len(), s("get_with_body")), RejectedOrNormalised),
        // Oversized inputs (A4).
        v("huge_header_64k", get("huge_header_64k", &format!("X-Big: {huge_value}\r\n")), Rejected),
        v("many_headers_500", get("many_headers_500", &many_headers), Rejected),
        v("huge_uri_70k", format!("GET {long_uri} HTTP/1.1\r\nHost: open.test\r\n\r\n"), Rejected),
        // Premature upgrade: bytes sent before the backend's 101 (RUSTSEC-2026-0033).
        v("upgrade_premature_200", "GET /v/upgrade_premature_200 HTTP/1.1\r\nHost: open.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /forbidden/upgrade_premature_200 HTTP/1.1\r\nHost: open.test\r\n\r\n", RejectedOrNormalised),
        v("upgrade_premature_101", "GET /v/upgrade-101 HTTP/1.1\r\nHost: open.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /forbidden/upgrade_premature_101 HTTP/1.1\r\nHost: open.test\r\n\r\n", Upgraded),
        // Early answers with an unread body holding a request, then a pipelined one (A6).
        v("early_403_body_pipeline", format!("POST /forbidden/a6 HTTP/1.1\r\nHost: open.test\r\nContent-Length: {}\r\n\r\n{body_request}GET /v/a6_after HTTP/1.1\r\nHost: open.test\r\n\r\n", body_request.len()), EarlyAnswer(403)),
        v("early_301_body_pipeline", format!("POST /v/a6_redirect HTTP/1.1\r\nHost: redirect.test\r\nContent-Length: {}\r\n\r\n{body_request}GET /v/a6_redirect_after HTTP/1.1\r\nHost: open.test\r\n\r\n", body_request.len()), EarlyAnswer(301)),
        v("early_403_chunked_body", format!("POST /forbidden/a6c HTTP/1.1\r\nHost: open.test\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body_request}\r\n0\r\n\r\nGET /v/a6c_after HTTP/1.1\r\nHost: open.test\r\n\r\n", body_request.len()), EarlyAnswer(403)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_and_parser_vectors_are_rejected_or_normalised() {
    let recorder = Recorder::start().await;
    let config = ProxyConfig {
        // Keep-alive connections and stalled bodies end quickly so every vector finishes.
        header_timeout: Duration::from_millis(2500),
        client_body_timeout: Duration::from_millis(1500),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start_with(
        json!([
            app(
                "/open",
                free_port(),
                json!({"HAPROXY_0_VHOST": "open.test"}),
                &[recorder.port()]
            ),
            app(
                "/deny",
                free_port(),
                json!({"HAPROXY_0_VHOST": "open.test", "HAPROXY_0_PATH": "/forbidden",
                       "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "10.255.0.0/16"}),
                &[recorder.port()]
            ),
            app(
                "/redir",
                free_port(),
                json!({"HAPROXY_0_VHOST": "redirect.test", "HAPROXY_0_REDIRECT_TO_HTTPS": "true"}),
                &[recorder.port()]
            ),
        ]),
        config,
    )
    .await;
    let addr = proxy.handle.http_addr.unwrap();
    let vectors = vectors();
    let count = vectors.len();
    // All at once: each on its own connection, each bounded by timeout + slack.
    let runs = vectors.into_iter().map(|vector| async move {
        let started = std::time::Instant::now();
        let (answer, closed) = exchange(addr, &vector.bytes, Duration::from_secs(4)).await;
        (vector, statuses(&answer), closed, started.elapsed(), answer)
    });
    let results = futures_util::future::join_all(runs).await;

    let messages = recorder.messages();
    let mut failures = Vec::new();
    let (mut rejected, mut normalised, mut early) = (0, 0, 0);
    for (vector, statuses, closed, elapsed, answer) in &results {
        let name = vector.name;
        let first = statuses.first().copied();
        let upstream: Vec<_> = messages
            .iter()
            .filter(|m| m.request_line.contains(&format!("/v/{name} ")))
            .collect();
        let outcome = match (first, vector.expect) {
            (Some(status), Rejected | RejectedOrNormalised)
                if REJECT_STATUSES.contains(&status) =>
            {
                rejected += 1;
                if !upstream.is_empty() && status != 408 {
                    failures.push(format!("{name}: rejected with {status} but forwarded"));
                }
                // Closed right after the answer, not left to the 2.5 s keep-alive timeout.
                if status != 408 && *elapsed >= Duration::from_millis(2000) {
                    failures.push(format!("{name}: rejected, but open until {elapsed:?}"));
                }
                format!("rejected {status}")
            }
            (None, ClosedUnanswered) => {
                rejected += 1;
                "closed, no answer".to_owned()
            }
            (Some(101), Upgraded) => {
                let log = recorder.log.lock().unwrap();
                let tunnelled = String::from_utf8_lossy(&log.tunnelled).into_owned();
                if !tunnelled.contains("/forbidden/upgrade_premature_101") {
                    failures.push(format!(
                        "{name}: early bytes not in the tunnel: {tunnelled:?}"
                    ));
                }
                normalised += 1;
                "upgraded, early bytes tunnelled after the 101".to_owned()
            }
            (Some(200), RejectedOrNormalised) => {
                normalised += 1;
                if upstream.len() != 1 {
                    failures.push(format!("{name}: {} messages upstream", upstream.len()));
                }
                "normalised".to_owned()
            }
            (Some(status), EarlyAnswer(want)) if status == want => {
                early += 1;
                format!("early {status}, then {:?}", &statuses[1..])
            }
            _ => {
                failures.push(format!(
                    "{name}: expected {:?}, got {statuses:?}: {:?}",
                    vector.expect,
                    String::from_utf8_lossy(&answer[..answer.len().min(200)])
                ));
                "FAIL".to_owned()
            }
        };
        if statuses.iter().any(|s| *s >= 500) {
            failures.push(format!("{name}: a 5xx in {statuses:?}"));
        }
        // An upgraded connection is a tunnel: it stays open until its idle timeout.
        if !closed && vector.expect != Upgraded {
            failures.push(format!("{name}: connection still open after 4 s"));
        }
        println!(
            "{name:28} {outcome:28} statuses {statuses:?} in {:.2?}",
            elapsed
        );
    }
    for message in &messages {
        if message.request_line.contains("/smuggled") || message.request_line.contains("/forbidden")
        {
            failures.push(format!(
                "smuggled request reached the backend: {:?}",
                message.request_line
            ));
        }
        if !message.problems.is_empty() {
            failures.push(format!(
                "unclean upstream head {:?}: {:?}",
                message.request_line, message.problems
            ));
        }
    }
    // The absolute-form target wins over Host, and is what the backend sees.
    let absolute = messages
        .iter()
        .find(|m| m.request_line.contains("absolute_form_mismatch"))
        .map(|m| String::from_utf8_lossy(&m.head).into_owned());
    if let Some(head) = absolute {
        assert!(
            head.starts_with("GET /v/absolute_form_mismatch HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("\r\nhost: open.test\r\n"),
            "{head}"
        );
    }
    println!(
        "{count} vectors: {rejected} rejected, {normalised} normalised, {early} early answers, {} failures; {} messages reached the recorder",
        failures.len(),
        messages.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(count >= 40);
}
