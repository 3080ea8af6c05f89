//! Memory that stays flat while 1 GiB goes through the real binary each way.

use super::*;

/// Peak and current resident memory of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_each_way_keeps_memory_flat() {
    let port = bulk_backend(
        std::sync::Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        std::sync::Arc::new(Notify::new()),
    )
    .await;
    let running = start(apps(port)).await;
    let pid = running.child.id().unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // Warm up the connection pools, then take the baseline.
    let _ = http
        .post(format!("http://{}/", running.http))
        .header("host", "bulk.example.com")
        .body("x")
        .send()
        .await
        .unwrap();
    let (_, baseline) = memory_kib(pid);

    // Upload: the client streams 1 GiB; the backend counts it.
    let stream = TcpStreamBody::new(GIB);
    let stream_conn = tokio::net::TcpStream::connect(running.http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream_conn))
        .await
        .unwrap();
    tokio::spawn(conn);
    let upload = Request::post("/upload")
        .header("host", "bulk.example.com")
        .header("content-length", GIB.to_string())
        .body(stream)
        .unwrap();
    let response = sender.send_request(upload).await.unwrap();
    let counted = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(counted, GIB.to_string().as_bytes());

    // Download: the backend streams 1 GiB; the client counts it.
    let mut response = http
        .get(format!("http://{}/download", running.http))
        .header("host", "bulk.example.com")
        .send()
        .await
        .unwrap();
    let mut received = 0u64;
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len() as u64;
    }
    assert_eq!(received, GIB);

    let (peak, _) = memory_kib(pid);
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    eprintln!(
        "switchyard RSS: baseline {} MiB, peak {} MiB",
        baseline / 1024,
        peak / 1024
    );
    assert!(
        growth_mib < 48,
        "peak RSS grew by {growth_mib} MiB while 2 GiB went through"
    );
}

/// A request body of `len` bytes, produced chunk by chunk from one shared buffer.
struct TcpStreamBody {
    left: u64,
    chunk: Bytes,
}

impl TcpStreamBody {
    fn new(len: u64) -> Self {
        TcpStreamBody {
            left: len,
            chunk: Bytes::from(vec![3u8; CHUNK]),
        }
    }
}

impl hyper::body::Body for TcpStreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(CHUNK as u64) as usize;
        self.left -= n as u64;
        std::task::Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }
}
