//! The simulator over real loopback HTTP: reqwest for documents, raw sockets for the SSE
//! framing. Waits are on the thing itself; timeouts only guard against hangs.

mod api;
mod auth;
mod stream;
mod writes;

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{SimAuth, Simulator, SimulatorOptions};

/// Long enough for anything that should happen; reaching it fails the test.
const GUARD: Duration = Duration::from_secs(5);
const HEARTBEAT: Duration = Duration::from_millis(50);

async fn start(nodes: usize, auth: SimAuth) -> Simulator {
    Simulator::start(SimulatorOptions {
        nodes,
        auth,
        heartbeat: HEARTBEAT,
    })
    .await
    .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_gzip()
        .build()
        .unwrap()
}

/// `host:port` of a base URL.
fn authority(url: &str) -> &str {
    url.trim_start_matches("http://")
}

/// A `/v2/events` request head with `Accept: text/event-stream` and `extra` header lines.
fn events_request(query: &str, extra: &str) -> String {
    format!(
        "GET /v2/events{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{extra}\r\n"
    )
}

/// The exact header block Jetty sends for an event stream.
const STREAM_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream;charset=UTF-8\r\nConnection: close\r\n\r\n";

/// A raw HTTP/1.1 connection and what has been read from it but not consumed yet.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(url: &str) -> Raw {
        let stream = TcpStream::connect(authority(url)).await.unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects and sends `head`.
    async fn request(url: &str, head: &str) -> Raw {
        let mut raw = Raw::connect(url).await;
        raw.stream.write_all(head.as_bytes()).await.unwrap();
        raw
    }

    /// Connects, asks for the event stream and checks the header block.
    async fn stream(url: &str, query: &str) -> Raw {
        let mut raw = Raw::request(url, &events_request(query, "")).await;
        let head = raw.until(b"\r\n\r\n").await;
        assert_eq!(String::from_utf8_lossy(&head), STREAM_HEAD);
        raw
    }

    /// Reads more; `false` at EOF.
    async fn fill(&mut self) -> bool {
        let read = tokio::time::timeout(GUARD, self.stream.read_buf(&mut self.buf))
            .await
            .expect("nothing arrived in time");
        matches!(read, Ok(n) if n > 0)
    }

    /// Everything up to and including the first `needle`.
    async fn until(&mut self, needle: &[u8]) -> Vec<u8> {
        loop {
            if let Some(at) = self.buf.windows(needle.len()).position(|w| w == needle) {
                return self.buf.drain(..at + needle.len()).collect();
            }
            assert!(
                self.fill().await,
                "EOF before {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Exactly the next `n` bytes.
    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "EOF after {:?}", self.buf);
        }
        self.buf.drain(..n).collect()
    }

    /// Reads until the server closes; returns the unconsumed bytes.
    async fn read_to_close(&mut self) -> Vec<u8> {
        while self.fill().await {}
        std::mem::take(&mut self.buf)
    }

    /// Whatever has already arrived, without waiting.
    fn drain(&mut self) -> Vec<u8> {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = self.stream.try_read(&mut chunk) {
            self.buf.extend_from_slice(&chunk[..n]);
        }
        std::mem::take(&mut self.buf)
    }

    /// The next event frame as (event name, data), skipping heartbeats.
    async fn next_event(&mut self) -> (String, Value) {
        loop {
            while matches!(self.buf.first(), Some(b'\r' | b'\n')) {
                self.buf.remove(0);
            }
            if !self.buf.is_empty() {
                break;
            }
            assert!(self.fill().await, "EOF while waiting for an event");
        }
        let frame = String::from_utf8(self.until(b"\r\n\r\n").await).unwrap();
        let rest = frame.strip_prefix("event: ").expect(&frame);
        let (name, rest) = rest.split_once("\r\n").expect(&frame);
        let data = rest
            .strip_prefix("data: ")
            .and_then(|d| d.strip_suffix("\r\n\r\n"))
            .expect(&frame);
        assert!(!data.contains('\n'), "one data line: {frame:?}");
        let json: Value = serde_json::from_str(data).unwrap();
        assert_eq!(json["eventType"], name);
        (name.to_owned(), json)
    }

    /// The status code of a complete response head already requested.
    async fn status(&mut self) -> (u16, String) {
        let head = String::from_utf8(self.until(b"\r\n\r\n").await).unwrap();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head)
    }
}

/// The value of header `name` in a raw response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn web_app(id: &str) -> Value {
    serde_json::json!({
        "id": id,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.org"},
        "portDefinitions": [{"port": 10001, "protocol": "tcp"}],
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0}],
    })
}
