//! Raw sockets on both sides of Switchyard: a scripted HTTP/1 upstream that sends exactly the
//! bytes a test gives it, and a raw client session, so that what each side sees (framing,
//! reuse, pipelining) is checked byte for byte.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use switchyard::proxy::ProxyConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::proxy::{app, free_port, Proxy};

/// What the scripted upstream does with one request.
pub enum Reply {
    /// Send these bytes; keep the connection.
    Send(Vec<u8>),
    /// Send these bytes, then close.
    SendAndClose(Vec<u8>),
    /// Close without answering.
    Hangup,
}

/// The request a script sees: which connection (0-based), which request on it, its head.
pub type Script = dyn Fn(usize, usize, &str) -> Reply + Send + Sync;

/// A raw HTTP/1 upstream that reads request heads (bodies by `Content-Length`) and answers as
/// its script says; it records the heads and counts connections.
pub struct RawUpstream {
    pub port: u16,
    connections: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RawUpstream {
    pub async fn start(
        script: impl Fn(usize, usize, &str) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let (count, seen) = (connections.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let index = count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve_raw(stream, index, script.clone(), seen.clone()));
            }
        });
        RawUpstream {
            port,
            connections,
            heads,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// The paths of the requests it received, in order.
    pub fn paths(&self) -> Vec<String> {
        self.heads().iter().map(|h| path_of(h).to_owned()).collect()
    }
}

/// The script of a backend whose first connection answers once and then drops the next
/// request unanswered (its close crossed our request); later connections answer.
pub fn answers_once_then_hangs_up(conn: usize, request: usize, head: &str) -> Reply {
    match (conn, request) {
        (0, 1..) => Reply::Hangup,
        _ => Reply::Send(ok(path_of(head))),
    }
}

pub async fn serve_raw(
    mut stream: TcpStream,
    conn: usize,
    script: Arc<Script>,
    heads: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = Vec::new();
    for request in 0.. {
        let Some(end) = read_head(&mut stream, &mut buf).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let body = content_length(&head);
        while buf.len() < end + body {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + body);
        heads.lock().unwrap().push(head.clone());
        match script(conn, request, &head) {
            Reply::Send(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::SendAndClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                return;
            }
            Reply::Hangup => return,
        }
    }
}

/// Reads until `buf` holds a whole head; its length, or `None` at EOF.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

pub fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.trim().parse().unwrap())
}

pub fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The path a request head asks for.
pub fn path_of(head: &str) -> &str {
    head.split(' ').nth(1).unwrap()
}

/// A raw client connection to Switchyard, started in front of one backend port (vhost
/// `raw.test`).
pub struct Session {
    pub proxy: Proxy,
    pub client: TcpStream,
    /// Bytes read and not yet part of an answer.
    pub buf: Vec<u8>,
}

impl Session {
    pub async fn to(port: u16) -> Session {
        Session::with(port, ProxyConfig::default()).await
    }

    /// A session to a Switchyard with this configuration (e.g. hyper's HTTP/1 path only).
    pub async fn with(port: u16, config: ProxyConfig) -> Session {
        let apps = json!([app(
            "/raw",
            free_port(),
            json!({"HAPROXY_0_VHOST": "raw.test"}),
            &[port]
        )]);
        let proxy = Proxy::start_with(apps, config).await;
        let client = TcpStream::connect(proxy.handle.http_addr.unwrap())
            .await
            .unwrap();
        Session {
            proxy,
            client,
            buf: Vec::new(),
        }
    }

    /// Reads what the client gets until Switchyard closes the connection (10 s at most).
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        let mut all = std::mem::take(&mut self.buf);
        let read = self.client.read_to_end(&mut all);
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("closed within 10 s")
            .ok();
        all
    }

    pub async fn write(&mut self, raw: &str) {
        self.client.write_all(raw.as_bytes()).await.unwrap();
    }

    /// Reads the next response (not to a HEAD).
    pub async fn answer(&mut self) -> Answer {
        read_answer(&mut self.client, &mut self.buf, false).await
    }

    /// Sends `raw` and reads the response to it.
    pub async fn send(&mut self, raw: &str) -> Answer {
        self.write(raw).await;
        read_answer(&mut self.client, &mut self.buf, raw.starts_with("HEAD ")).await
    }
}

/// A response as the client read it: head text and body bytes (chunked bodies as sent).
pub struct Answer {
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn status(&self) -> u16 {
        self.head[9..12].parse().unwrap()
    }
}

/// Reads one response: the body by `Content-Length`, to the end of a chunked body, or to EOF.
pub async fn read_answer<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    head_request: bool,
) -> Answer {
    let end = tokio::time::timeout(Duration::from_secs(10), read_head(stream, buf))
        .await
        .expect("a response head within 10 s")
        .expect("a response head before EOF");
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let lower = head.to_ascii_lowercase();
    let done = |buf: &[u8]| -> Option<usize> {
        if head_request {
            Some(0)
        } else if lower.contains("transfer-encoding: chunked") {
            // The last chunk, then the end of the trailers (test bodies hold no "\r\n0\r\n").
            let last = buf.windows(5).position(|w| w == b"\r\n0\r\n")? + 3;
            let end = buf[last..].windows(4).position(|w| w == b"\r\n\r\n")?;
            Some(last + end + 4)
        } else if lower.contains("content-length") {
            let n = content_length(&head);
            (buf.len() >= n).then_some(n)
        } else {
            None
        }
    };
    loop {
        if let Some(n) = done(buf) {
            let body = buf.drain(..n).collect();
            return Answer { head, body };
        }
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("the body within 10 s");
        match read {
            Ok(0) | Err(_) => {
                let body = std::mem::take(buf);
                return Answer { head, body };
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

pub const GET: &str = "GET / HTTP/1.1\r\nHost: raw.test\r\n\r\n";
