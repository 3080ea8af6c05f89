//! Request and response heads as the native path reads and rewrites them.

use super::*;
use crate::upstream::h1_body::Framing;

fn forwarded() -> Forwarded {
    Forwarded::new("10.0.0.9".parse().unwrap(), "http", 80)
}

fn parse(raw: &str) -> (Parsed, String) {
    let mut out = Vec::new();
    let parsed = request(raw.as_bytes(), 1024, &forwarded(), &mut out);
    (parsed, String::from_utf8(out).unwrap())
}

#[test]
fn a_plain_request_is_forwarded_with_the_forwarded_headers() {
    let raw = "GET /a/b?q=1 HTTP/1.1\r\nHost: app.test:80\r\nConnection: keep-alive\r\n\
               X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nAccept: */*\r\n\
               X-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Host: evil\r\n\
               X-Client-IP: 6.6.6.6\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n";
    let (parsed, out) = parse(&format!("{raw}GET /next"));
    let Parsed::Request(head) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(head.len, raw.len());
    assert_eq!(&raw[head.host.clone()], "app.test:80");
    assert_eq!(&raw[head.path.clone()], "/a/b");
    assert!(!head.close && !head.head_method && head.app_id.is_none());
    assert_eq!(
        out,
        "GET /a/b?q=1 HTTP/1.1\r\nHost: app.test:80\r\nAccept: */*\r\n\
         x-forwarded-for: 1.2.3.4, 10.0.0.9\r\nx-real-ip: 10.0.0.9\r\n\
         x-forwarded-proto: http\r\nx-forwarded-port: 80\r\n\r\n"
    );
}

#[test]
fn a_small_body_that_came_with_its_head_goes_with_it() {
    let raw = "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello";
    let (parsed, out) = parse(raw);
    let Parsed::Request(head) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!((head.len, head.body_len, head.close), (raw.len(), 5, true));
    assert!(out.ends_with("\r\n\r\nhello"), "{out}");
    assert!(!out.contains("connection"), "{out}");
}

#[test]
fn what_this_path_does_not_forward_goes_to_hyper() {
    for raw in [
        "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, x-secret\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nProxy-Authorization: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1\r\nX-Forwarded-For: 2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n",
    ] {
        let (parsed, out) = parse(raw);
        let expected = if raw.ends_with("\r\n\r\n") || raw.contains("\r\n\r\n") {
            Parsed::Unsupported
        } else {
            Parsed::Partial
        };
        assert_eq!(parsed, expected, "{raw:?}");
        assert!(out.is_empty(), "nothing written for {raw:?}");
    }
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(1100));
    assert_eq!(parse(&long).0, Parsed::Unsupported, "a head past the limit");
    let many: String = (0..MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    let mut out = Vec::new();
    let parsed = request(many.as_bytes(), 8192, &forwarded(), &mut out);
    assert_eq!(
        parsed,
        Parsed::Unsupported,
        "more header lines than parsed here"
    );
}

fn answer(raw: &str, head_request: bool, close: bool) -> (ResponseHead, String) {
    let mut out = Vec::new();
    match response(raw.as_bytes(), head_request, close, &mut out) {
        Ok(ParsedResponse::Final(head)) => (head, String::from_utf8(out).unwrap()),
        other => panic!("{raw:?}: {other:?}"),
    }
}

#[test]
fn a_response_loses_its_hop_by_hop_headers_and_keeps_its_framing() {
    let raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, x-hop\r\n\
               x-hop: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: 1\r\n\r\nok";
    let (head, out) = answer(raw, false, false);
    assert_eq!(head.framing, Framing::Length(2));
    assert_eq!(head.len, raw.len() - 2);
    assert!(head.reusable);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Kept: 1\r\n\r\n"
    );

    let (head, out) = answer(
        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n",
        false,
        true,
    );
    assert_eq!(head.framing, Framing::Chunked);
    assert_eq!(
        out,
        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n"
    );

    let (head, out) = answer("HTTP/1.0 200 OK\r\nServer: old\r\n\r\n", false, false);
    assert_eq!(head.framing, Framing::Close);
    assert!(!head.reusable);
    assert!(out.ends_with("connection: close\r\n\r\n"), "{out}");

    let (head, _) = answer(
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        false,
        false,
    );
    assert!(head.reusable, "HTTP/1.0 with keep-alive");
    let (head, _) = answer(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        false,
        false,
    );
    assert!(!head.reusable);
}

#[test]
fn some_responses_have_no_body_whatever_they_say() {
    for (raw, head_request) in [
        ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true),
        ("HTTP/1.1 204 No Content\r\n\r\n", false),
        (
            "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
        ),
    ] {
        let (head, _) = answer(raw, head_request, false);
        assert_eq!(head.framing, Framing::Empty, "{raw:?}");
        assert!(head.reusable, "{raw:?}");
    }
}

#[test]
fn interim_and_unusable_responses() {
    let mut out = Vec::new();
    let interim = "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n";
    assert_eq!(
        response(interim.as_bytes(), false, false, &mut out),
        Ok(ParsedResponse::Interim(interim.len()))
    );
    assert_eq!(
        response(b"HTTP/1.1 200 OK\r\nContent-Len", false, false, &mut out),
        Ok(ParsedResponse::Partial)
    );
    for bad in [
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTX/1.1 200 OK\r\n\r\n",
    ] {
        assert!(
            response(bad.as_bytes(), false, false, &mut out).is_err(),
            "{bad:?}"
        );
    }
    assert!(out.is_empty());
}

proptest::proptest! {
    /// Whatever a client or a backend sends, parsing answers without panicking, and what it
    /// claims lies within the bytes given.
    #[test]
    fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let mut out = Vec::new();
        if let Parsed::Request(head) = request(&bytes, 256, &forwarded(), &mut out) {
            proptest::prop_assert!(head.len <= bytes.len());
            proptest::prop_assert!(head.host.end <= head.len && head.path.end <= head.len);
        }
        let mut out = Vec::new();
        if let Ok(ParsedResponse::Final(head)) = response(&bytes, false, false, &mut out) {
            proptest::prop_assert!(head.len <= bytes.len());
        }
        let mut scanner = crate::upstream::chunked::Scanner::default();
        if let Ok(n) = scanner.feed(&bytes) {
            proptest::prop_assert!(n <= bytes.len());
        }
    }

    /// A request built from valid parts, with any header names and values httparse takes,
    /// is forwarded with every one of its header lines but `Connection`.
    #[test]
    fn a_valid_request_keeps_its_header_lines(
        path in "/[a-z0-9/]{0,20}",
        headers in proptest::collection::vec(("x-[a-z]{1,8}", "[ -~]{0,16}"), 0..8),
    ) {
        let lines: String = headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        let raw = format!("GET {path} HTTP/1.1\r\nHost: a.test\r\n{lines}\r\n");
        let (parsed, out) = parse(&raw);
        proptest::prop_assert!(matches!(parsed, Parsed::Request(_)), "{:?}", parsed);
        for (name, value) in &headers {
            let trimmed = value.trim_matches(|c| c == ' ' || c == '\t');
            let line = format!("{name}: {trimmed}\r\n");
            proptest::prop_assert!(out.contains(&line), "{} missing from {}", line, out);
        }
    }
}
