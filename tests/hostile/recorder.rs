//! Shared by the hostile-client tests: a raw recorder backend (a hand-written accept loop that
//! keeps the exact bytes it receives; hyper or h11 would normalise them), a raw client, and a
//! balancer in front of a recorder.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use switchyard::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::support::proxy::{app, free_port, Proxy};

/// A balancer with one app, `/open` on vhost `open.test`, whose one task is `recorder`.
pub async fn proxy_for(recorder: &Recorder, config: ProxyConfig) -> Proxy {
    Proxy::start_with(
        json!([app(
            "/open",
            free_port(),
            json!({"HAPROXY_0_VHOST": "open.test"}),
            &[recorder.port()]
        )]),
        config,
    )
    .await
}

/// One message the recorder framed, with what is wrong with its head (empty = clean).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub request_line: String,
    pub head: Vec<u8>,
    pub problems: Vec<String>,
}

/// What a recorder connection saw, in order.
#[derive(Debug, Default)]
pub struct Log {
    pub messages: Vec<Recorded>,
    /// Bytes after a 101 (tunnel data, not HTTP).
    pub tunnelled: Vec<u8>,
    /// Connections that ended inside a message (an aborted upstream request).
    pub aborted: usize,
    /// Connections accepted / ended.
    pub accepted: usize,
    pub ended: usize,
}

/// A backend that records every byte and answers each message it can frame with a fixed 200
/// (or a 101 for `/upgrade-101` paths). When `hold_body` is set it reads heads but never the
/// body, to see an aborted upload arrive as a closed connection.
#[derive(Clone)]
pub struct Recorder {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Log>>,
    pub changed: Arc<Notify>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        Recorder::start_with(Vec::new()).await
    }

    /// `big`: the body of every 200 (e.g. megabytes, for slow-read tests).
    pub async fn start_with(big: Vec<u8>) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let recorder = Recorder {
            addr: listener.local_addr().unwrap(),
            log: Arc::default(),
            changed: Arc::new(Notify::new()),
        };
        let r = recorder.clone();
        let big = Arc::new(big);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                r.log.lock().unwrap().accepted += 1;
                r.changed.notify_waiters();
                let (r, big) = (r.clone(), big.clone());
                tokio::spawn(async move { r.connection(stream, &big).await });
            }
        });
        recorder
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn messages(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().messages.clone()
    }

    /// Waits (bounded) until `done` holds for the log.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&Log) -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = self.changed.notified();
                if done(&self.log.lock().unwrap()) {
                    return;
                }
                notified.await;
            }
        })
        .await;
        assert!(waited.is_ok(), "recorder: timed out waiting for {what}");
    }

    async fn connection(&self, mut stream: TcpStream, big: &[u8]) {
        let mut buf = Vec::new();
        let mut upgraded = false;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            // Frame every complete message in the buffer.
            while !upgraded {
                match frame(&buf) {
                    Framed::Incomplete => break,
                    Framed::Message { used, recorded } => {
                        let upgrade = recorded.request_line.contains("/upgrade-101");
                        buf.drain(..used);
                        self.log.lock().unwrap().messages.push(recorded);
                        self.changed.notify_waiters();
                        let answer: Vec<u8> = if upgrade {
                            upgraded = true;
                            b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n".to_vec()
                        } else {
                            let mut a = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Recorder: 1\r\n\r\n",
                                big.len().max(2)
                            )
                            .into_bytes();
                            a.extend_from_slice(if big.is_empty() { b"ok" } else { big });
                            a
                        };
                        if stream.write_all(&answer).await.is_err() {
                            return self.end(false);
                        }
                    }
                    Framed::Bad(problem, head) => {
                        self.log.lock().unwrap().messages.push(Recorded {
                            request_line: String::from_utf8_lossy(&head).into_owned(),
                            head,
                            problems: vec![problem],
                        });
                        self.changed.notify_waiters();
                        return self.end(false);
                    }
                }
            }
            if upgraded && !buf.is_empty() {
                self.log.lock().unwrap().tunnelled.append(&mut buf);
                self.changed.notify_waiters();
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return self.end(!buf.is_empty() && !upgraded),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn end(&self, inside_message: bool) {
        let mut log = self.log.lock().unwrap();
        log.ended += 1;
        if inside_message {
            log.aborted += 1;
        }
        drop(log);
        self.changed.notify_waiters();
    }
}

enum Framed {
    Incomplete,
    Message { used: usize, recorded: Recorded },
    Bad(String, Vec<u8>),
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Frames one message strictly (CRLF only, one Content-Length or `chunked`), listing what is
/// unclean about its head.
fn frame(buf: &[u8]) -> Framed {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return Framed::Incomplete;
    };
    let head = &buf[..end + 4];
    let mut problems = Vec::new();
    for (i, &b) in head.iter().enumerate() {
        let ok = match b {
            b'\r' => head.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && head[i - 1] == b'\r',
            b'\t' => true,
            0..=31 | 127 => false,
            _ => true,
        };
        if !ok {
            problems.push(format!("control byte {b:#04x} at {i}"));
        }
    }
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    if request_line.split(' ').count() != 3 || !request_line.ends_with(" HTTP/1.1") {
        problems.push(format!("request line {request_line:?}"));
    }
    let (mut cl, mut te, mut hosts) = (Vec::new(), Vec::new(), 0);
    for line in lines {
        if line.starts_with([' ', '\t']) {
            problems.push("obs-fold".to_owned());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            problems.push(format!("header line without colon {line:?}"));
            continue;
        };
        if name.is_empty() || !name.bytes().all(is_tchar) {
            problems.push(format!("header name {name:?}"));
        }
        let value = value.trim_matches([' ', '\t']);
        match name.to_ascii_lowercase().as_str() {
            "content-length" => cl.push(value.to_owned()),
            "transfer-encoding" => te.push(value.to_owned()),
            "host" => hosts += 1,
            _ => {}
        }
    }
    if hosts != 1 {
        problems.push(format!("{hosts} Host headers"));
    }
    if cl.len() > 1 || (!cl.is_empty() && !te.is_empty()) || te.len() > 1 {
        problems.push(format!("framing CL {cl:?} TE {te:?}"));
    }
    let mut used = end + 4;
    if let Some(te) = te.first() {
        if te != "chunked" {
            return Framed::Bad(format!("TE {te:?}"), head.to_vec());
        }
        // Strict chunked: hex size, CRLF, data, CRLF; trailers not expected.
        loop {
            let Some(line_end) = find(&buf[used..], b"\r\n") else {
                return Framed::Incomplete;
            };
            let size_text = String::from_utf8_lossy(&buf[used..used + line_end]).into_owned();
            let Ok(size) = usize::from_str_radix(&size_text, 16) else {
                return Framed::Bad(format!("chunk size {size_text:?}"), head.to_vec());
            };
            used += line_end + 2;
            if buf.len() < used + size + 2 {
                return Framed::Incomplete;
            }
            if &buf[used + size..used + size + 2] != b"\r\n" {
                return Framed::Bad("chunk without CRLF".to_owned(), head.to_vec());
            }
            used += size + 2;
            if size == 0 {
                break;
            }
        }
    } else if let Some(cl) = cl.first() {
        let Ok(len) = cl.parse::<usize>() else {
            return Framed::Bad(format!("Content-Length {cl:?}"), head.to_vec());
        };
        if buf.len() < used + len {
            return Framed::Incomplete;
        }
        used += len;
    }
    Framed::Message {
        used,
        recorded: Recorded {
            request_line,
            head: head.to_vec(),
            problems,
        },
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Sends `bytes` on a new connection and reads until the proxy closes it (bounded by
/// `within`). Returns what came back and whether the connection was closed in time.
pub async fn exchange(addr: SocketAddr, bytes: &[u8], within: Duration) -> (Vec<u8>, bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The proxy may answer and close before it has read everything: that is fine.
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .is_ok();
    (out, closed)
}

/// The status codes of the HTTP/1 responses in `bytes`, in order.
pub fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.split("\r\n")
        .filter_map(|line| line.strip_prefix("HTTP/1.1 "))
        .filter_map(|rest| rest.get(..3)?.parse().ok())
        .collect()
}

/// The switchyard_* counter value with these labels from the admin port's metrics.
pub async fn metric(admin: SocketAddr, name: &str, label: &str) -> f64 {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
