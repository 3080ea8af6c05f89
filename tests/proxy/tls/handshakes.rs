//! Handshakes: a self-signed certificate when none is configured, stalled handshakes closed, and
//! a ClientHello fragmented into small records.

use super::*;

/// Backend `a` and the balancer routing `a.example.com` to it, with no certificate given.
async fn serving_a(proxy: ProxyConfig) -> (Backend, Tls) {
    let a = Backend::start("a").await;
    let apps = json!([app(
        "/a",
        support::proxy::free_port(),
        json!({"HAPROXY_0_VHOST": "a.example.com"}),
        &[a.port()]
    )]);
    let tls = Tls::start_with(apps, &[], proxy, Duration::from_secs(3600)).await;
    (a, tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_certificates_a_self_signed_one_serves_and_stalled_handshakes_are_closed() {
    let proxy = ProxyConfig {
        header_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    };
    let (_a, tls) = serving_a(proxy).await;
    let (stream, leaf) = handshake(tls.https, Some("a.example.com")).await.unwrap();
    assert!(!leaf.is_empty());
    let response = request(
        stream,
        "GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.contains("x-backend: a"), "{response}");
    let (status, backend, _) = get(
        &client(),
        &format!("http://{}/", tls.handle.http_addr.unwrap()),
        "a.example.com",
    )
    .await;
    assert_eq!((status, backend.as_str()), (200, "a"));

    // A client that agreed on h2 by ALPN must speak it: bytes that are not the connection
    // preface end the connection (HTTP/2 frames only: the server's SETTINGS, at most a
    // GOAWAY(PROTOCOL_ERROR)), never an HTTP/1 answer (h2spec 3.5/2).
    let (mut stream, _) = handshake_offering(tls.https, Some("a.example.com"), b"h2")
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    stream
        .write_all(b"INVALID CONNECTION PREFACE\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let ended =
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(ended.is_ok(), "the connection was not closed");
    let mut frames = &answer[..];
    while !frames.is_empty() {
        assert!(frames.len() >= 9, "not HTTP/2 frames: {answer:?}");
        let length = u32::from_be_bytes([0, frames[0], frames[1], frames[2]]) as usize;
        let (kind, payload) = (frames[3], &frames[9..]);
        assert!(payload.len() >= length, "not HTTP/2 frames: {answer:?}");
        match kind {
            0x4 => {}
            0x7 => assert_eq!(payload[4..8], [0, 0, 0, 1], "GOAWAY, not PROTOCOL_ERROR"),
            other => panic!("frame type {other} after a bad preface: {answer:?}"),
        }
        frames = &payload[length..];
    }

    // A client that starts a handshake and stops is closed (at the header timeout), not kept.
    let mut stalled = TcpStream::connect(tls.https).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let mut rest = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(20), stalled.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
    tls.handle.shutdown().await;
}

/// The client side of a connection whose first TLS record (the ClientHello) goes out split
/// into many small records, each written on its own: the record-layer fragmentation that
/// panicked rustls's `Acceptor` (RUSTSEC-2024-0399). Everything after passes through.
struct FragmentingClientHello {
    inner: TcpStream,
    /// The first record as it is being written by the TLS client.
    first: Vec<u8>,
    /// Bytes to put on the wire before anything else; `None` once the hello went out.
    pending: Option<std::collections::VecDeque<Vec<u8>>>,
    /// How many records the hello was split into.
    pieces: usize,
}

impl FragmentingClientHello {
    const PIECE: usize = 7;

    fn new(inner: TcpStream) -> FragmentingClientHello {
        FragmentingClientHello {
            inner,
            first: Vec::new(),
            pending: Some(Default::default()),
            pieces: 0,
        }
    }

    /// Once the first record is whole, re-frame its payload into records of `PIECE` bytes.
    fn split_first_record(&mut self) {
        let Some(pending) = &mut self.pending else {
            return;
        };
        if self.first.len() < 5 || !pending.is_empty() {
            return;
        }
        let len = usize::from(u16::from_be_bytes([self.first[3], self.first[4]]));
        if self.first.len() < 5 + len {
            return;
        }
        let (header, payload) = self.first.split_at(5);
        self.pieces = len.div_ceil(Self::PIECE);
        for piece in payload[..len].chunks(Self::PIECE) {
            let mut record = header[..3].to_vec();
            record.extend_from_slice(&(piece.len() as u16).to_be_bytes());
            record.extend_from_slice(piece);
            pending.push_back(record);
        }
        let rest = payload[len..].to_vec();
        if !rest.is_empty() {
            pending.push_back(rest);
        }
    }
}

impl tokio::io::AsyncRead for FragmentingClientHello {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for FragmentingClientHello {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        if self.pending.is_none() {
            return std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        }
        // Gather the first record; flush its fragments record by record.
        self.first.extend_from_slice(buf);
        self.split_first_record();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        if let Some(pending) = &mut this.pending {
            while let Some(front) = pending.front_mut() {
                match std::pin::Pin::new(&mut this.inner).poll_write(cx, front) {
                    Poll::Ready(Ok(n)) if n == front.len() => {
                        pending.pop_front();
                    }
                    Poll::Ready(Ok(n)) => {
                        front.drain(..n);
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if !this.first.is_empty() {
                this.pending = None;
            }
        }
        std::pin::Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hello_fragmented_into_small_records_is_served() {
    let (_a, tls) = serving_a(ProxyConfig::default()).await;
    let config = client_config(true);
    let tcp = TcpStream::connect(tls.https).await.unwrap();
    let name = ServerName::try_from("a.example.com".to_owned()).unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, FragmentingClientHello::new(tcp))
        .await
        .expect("the fragmented hello completes a handshake");
    let fragmenting = stream.get_ref().0;
    assert!(fragmenting.pending.is_none(), "the hello went out");
    assert!(
        fragmenting.pieces >= 20,
        "the hello went out as {} records",
        fragmenting.pieces
    );
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("x-backend: a"), "{response}");
    tls.handle.shutdown().await;
}

/// Sessions resume (no certificate, no key exchange signature) on TLS 1.3 and 1.2, and still
/// do after more clients than a server-side session cache holds have come and gone: the
/// balancer issues stateless tickets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_resume_after_many_other_clients() {
    let (_a, tls) = serving_a(ProxyConfig::default()).await;
    let name = ServerName::try_from("a.example.com").unwrap();
    let connect = |config: Arc<rustls::ClientConfig>| {
        let name = name.clone();
        async move {
            let tcp = TcpStream::connect(tls.https).await.unwrap();
            let mut stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .unwrap();
            // TLS 1.3 tickets come after the handshake: read until the server has sent them.
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut response = Vec::new();
            let _ = stream.read_to_end(&mut response).await;
            stream.get_ref().1.handshake_kind()
        }
    };
    for versions in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = |versions| Arc::new(client_config_for(&[versions], true));
        let returning = config(versions);
        assert_eq!(
            connect(returning.clone()).await,
            Some(rustls::HandshakeKind::Full)
        );
        // Each with a session store of its own, as so many browsers.
        for _ in 0..300 {
            connect(config(versions)).await;
        }
        assert_eq!(
            connect(returning).await,
            Some(rustls::HandshakeKind::Resumed),
            "{versions:?}"
        );
    }
}
