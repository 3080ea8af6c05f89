//! HTTP/2 → HTTP/1 downgrade vectors (A2): every malformed request is reset or refused, and the
//! recorder behind the proxy never sees an ambiguous request.

use super::*;

/// One downgrade vector: a request HTTP/2 allows to be expressed but HTTP/1 must never see.
struct Downgrade {
    name: &'static str,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    /// A DATA frame after the head (with END_STREAM), when the vector has a body.
    body: Option<&'static [u8]>,
    /// Forwarding it cleaned up is acceptable (the offending part is dropped).
    may_normalise: bool,
}

fn downgrade_vectors() -> Vec<Downgrade> {
    let base = |name: &'static str,
                method: &[u8],
                path: &[u8],
                authority: &[u8],
                extra: &[(&[u8], &[u8])],
                body: Option<&'static [u8]>,
                may_normalise: bool| {
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b":method".to_vec(), method.to_vec()),
            (b":scheme".to_vec(), b"http".to_vec()),
            (b":path".to_vec(), path.to_vec()),
            (b":authority".to_vec(), authority.to_vec()),
        ];
        fields.extend(extra.iter().map(|(n, v)| (n.to_vec(), v.to_vec())));
        Downgrade {
            name,
            fields,
            body,
            may_normalise,
        }
    };
    let p = |name: &str| format!("/v/{name}").into_bytes();
    vec![
        base(
            "te_chunked",
            b"POST",
            &p("te_chunked"),
            b"open.test",
            &[(b"transfer-encoding", b"chunked")],
            Some(b"0\r\n\r\nGET /smuggled/te HTTP/1.1\r\nHost: open.test\r\n\r\n"),
            false,
        ),
        base(
            "te_gzip",
            b"GET",
            &p("te_gzip"),
            b"open.test",
            &[(b"te", b"gzip")],
            None,
            false,
        ),
        base(
            "te_trailers",
            b"GET",
            &p("te_trailers"),
            b"open.test",
            &[(b"te", b"trailers")],
            None,
            true,
        ),
        base(
            "cl_mismatch_short",
            b"POST",
            &p("cl_mismatch_short"),
            b"open.test",
            &[(b"content-length", b"100")],
            Some(b"hello"),
            false,
        ),
        base(
            "cl_mismatch_long",
            b"POST",
            &p("cl_mismatch_long"),
            b"open.test",
            &[(b"content-length", b"1")],
            Some(b"GET /smuggled/cl HTTP/1.1\r\nHost: open.test\r\n\r\n"),
            false,
        ),
        base(
            "connection_header",
            b"GET",
            &p("connection_header"),
            b"open.test",
            &[(b"connection", b"keep-alive")],
            None,
            false,
        ),
        base(
            "keep_alive_header",
            b"GET",
            &p("keep_alive_header"),
            b"open.test",
            &[(b"keep-alive", b"timeout=5")],
            None,
            false,
        ),
        base(
            "upgrade_header",
            b"GET",
            &p("upgrade_header"),
            b"open.test",
            &[(b"upgrade", b"websocket")],
            None,
            false,
        ),
        base(
            "crlf_in_value",
            b"GET",
            &p("crlf_in_value"),
            b"open.test",
            &[(b"x-a", b"a\r\nTransfer-Encoding: chunked")],
            None,
            false,
        ),
        base(
            "lf_in_value",
            b"GET",
            &p("lf_in_value"),
            b"open.test",
            &[(b"x-a", b"a\nx-b: b")],
            None,
            false,
        ),
        base(
            "nul_in_value",
            b"GET",
            &p("nul_in_value"),
            b"open.test",
            &[(b"x-a", b"a\0b")],
            None,
            false,
        ),
        base(
            "crlf_in_name",
            b"GET",
            &p("crlf_in_name"),
            b"open.test",
            &[(b"x-a\r\nx-b", b"b")],
            None,
            false,
        ),
        base(
            "colon_in_name",
            b"GET",
            &p("colon_in_name"),
            b"open.test",
            &[(b"x-a:b", b"b")],
            None,
            false,
        ),
        base(
            "uppercase_name",
            b"GET",
            &p("uppercase_name"),
            b"open.test",
            &[(b"X-Upper", b"1")],
            None,
            false,
        ),
        base(
            "space_in_path",
            b"GET",
            b"/v/space_in_path HTTP/1.1\r\nHost: open.test\r\n\r\nGET /smuggled/path",
            b"open.test",
            &[],
            None,
            false,
        ),
        base(
            "crlf_in_path",
            b"GET",
            b"/v/crlf_in_path\r\nX-A: b",
            b"open.test",
            &[],
            None,
            false,
        ),
        base(
            "crlf_in_method",
            b"GET /smuggled/method HTTP/1.1\r\nHost: open.test\r\n\r\nGET",
            &p("crlf_in_method"),
            b"open.test",
            &[],
            None,
            false,
        ),
        base(
            "space_in_method",
            b"G ET",
            &p("space_in_method"),
            b"open.test",
            &[],
            None,
            false,
        ),
        base(
            "crlf_in_authority",
            b"GET",
            &p("crlf_in_authority"),
            b"open.test\r\nX-A: b",
            &[],
            None,
            false,
        ),
        base(
            "userinfo_in_authority",
            b"GET",
            &p("userinfo_in_authority"),
            b"evil@open.test",
            &[],
            None,
            false,
        ),
        base(
            "host_differs",
            b"GET",
            &p("host_differs"),
            b"open.test",
            &[(b"host", b"other.test")],
            None,
            true,
        ),
        base(
            "host_invalid",
            b"GET",
            &p("host_invalid"),
            b"open.test",
            &[(b"host", b"a b")],
            None,
            false,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downgrade_vectors_are_reset_or_refused_and_nothing_ambiguous_reaches_http1() {
    let (recorder, proxy) = start().await;
    let addr = proxy.handle.http_addr.unwrap();
    let vectors = downgrade_vectors();
    let count = vectors.len();
    let mut failures = Vec::new();
    for vector in &vectors {
        let (read, mut write) = connect(addr, &[]).await;
        let fields: Vec<(&[u8], &[u8])> = vector
            .fields
            .iter()
            .map(|(n, v)| (&n[..], &v[..]))
            .collect();
        let head_flags = if vector.body.is_some() {
            END_HEADERS
        } else {
            END_HEADERS | END_STREAM
        };
        let mut bytes = frame(HEADERS, head_flags, 1, &block(&fields));
        if let Some(body) = vector.body {
            bytes.extend(frame(DATA, END_STREAM, 1, body));
        }
        write.write_all(&bytes).await.unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
        let ended = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn({
            let (seen, ended) = (seen.clone(), ended.clone());
            async move { read_frames(read, &seen, &ended).await }
        });
        // Wait (bounded) for the stream's answer: a RST_STREAM, a response head, or the end.
        let answered = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                {
                    let s = seen.lock().unwrap();
                    if s.closed || s.goaway.is_some() || !s.rst.is_empty() || !s.headers.is_empty()
                    {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        reader.abort();
        let s = seen.lock().unwrap();
        let outcome = match (s.rst.first(), s.headers.first(), s.goaway) {
            (Some((1, code)), _, _) => format!("RST_STREAM {code}"),
            (_, Some((1, 0x8c)), _) => "400".to_owned(),
            (_, Some((1, 0x88)), _) if vector.may_normalise => "200 (normalised)".to_owned(),
            (_, _, Some(code)) => format!("GOAWAY {code}"),
            (_, Some((1, other)), _) => format!("response head {other:#04x}"),
            _ => format!("nothing ({answered:?})"),
        };
        let ok = outcome.starts_with("RST_STREAM")
            || outcome == "400"
            || outcome.starts_with("GOAWAY")
            || outcome.starts_with("200");
        println!("{:24} {outcome}", vector.name);
        if !ok {
            failures.push(format!("{}: {outcome}", vector.name));
        }
    }
    for message in recorder.messages() {
        let head = String::from_utf8_lossy(&message.head).to_ascii_lowercase();
        let name = message
            .request_line
            .split('/')
            .nth(2)
            .unwrap_or("")
            .split(' ')
            .next()
            .unwrap_or("");
        let allowed = vectors.iter().any(|v| v.name == name && v.may_normalise);
        if !allowed
            || !message.problems.is_empty()
            || message.request_line.contains("smuggled")
            || head.contains("\r\nte:")
            || head.contains("other.test")
        {
            failures.push(format!(
                "reached the backend: {:?} {:?}",
                message.request_line, message.problems
            ));
        }
    }
    println!(
        "{count} downgrade vectors, {} failures, {} requests reached the recorder",
        failures.len(),
        recorder.messages().len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}
