//! Slow clients and connection floods (reliability matrix B1–B5, B7): each ends within its
//! timeout, bounded by an upper limit, and the rest of the service keeps answering.

use crate::hostile::recorder;
use crate::support;

use std::time::{Duration, Instant};

use recorder::{metric, proxy_for, statuses, Recorder};
use support::proxy::*;
use switchyard::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIG: usize = 32 << 20;

/// Reads until the peer closes (bounded); returns the bytes and the time it took.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still open after {within:?}");
    (out, started.elapsed())
}

/// Polls a counter on the admin port until it reaches `want` (bounded).
async fn wait_metric(admin: std::net::SocketAddr, name: &str, label: &str, want: f64) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while metric(admin, name, label).await < want {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{name}{{{label}}} never reached {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_a_stalled_body_are_cut_off_and_the_upstream_request_aborted() {
    let recorder = Recorder::start().await;
    let timeout = Duration::from_millis(800);
    let config = ProxyConfig {
        header_timeout: timeout,
        client_body_timeout: timeout,
        ..ProxyConfig::default()
    };
    let proxy = proxy_for(&recorder, config).await;
    let addr = proxy.handle.http_addr.unwrap();

    // Slowloris: a head that never ends is closed at the header timeout, nothing forwarded.
    let mut slow_head = TcpStream::connect(addr).await.unwrap();
    slow_head
        .write_all(b"GET /v/slow_head HTTP/1.1\r\nHost: open.test\r\nX-A: 1\r\n")
        .await
        .unwrap();
    let (_, took) = read_until_closed(&mut slow_head, timeout + Duration::from_secs(2)).await;
    println!("slow headers: closed after {took:.2?}");

    // Slow body: 10 of 1000 bytes, then nothing. 408 at the body timeout, and the upstream
    // request (already under way) is aborted: the recorder sees its connection end mid-body.
    let mut slow_body = TcpStream::connect(addr).await.unwrap();
    slow_body
        .write_all(b"POST /v/slow_body HTTP/1.1\r\nHost: open.test\r\nContent-Length: 1000\r\n\r\n0123456789")
        .await
        .unwrap();
    let (answer, took) = read_until_closed(&mut slow_body, timeout + Duration::from_secs(2)).await;
    assert_eq!(
        statuses(&answer),
        [408],
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(took >= timeout, "not before the timeout: {took:?}");
    println!("slow body: 408 and closed after {took:.2?}");
    recorder
        .wait_for("the aborted upstream request", |log| log.aborted == 1)
        .await;
    assert!(
        recorder.messages().is_empty(),
        "no complete request reached the backend"
    );

    // A chunked body that stalls mid-chunk is cut off the same way.
    let mut chunked = TcpStream::connect(addr).await.unwrap();
    chunked
        .write_all(b"POST /v/slow_chunk HTTP/1.1\r\nHost: open.test\r\nTransfer-Encoding: chunked\r\n\r\n64\r\nabc")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut chunked, timeout + Duration::from_secs(2)).await;
    assert_eq!(statuses(&answer), [408]);
    recorder
        .wait_for("the second aborted upstream request", |log| {
            log.aborted == 2
        })
        .await;

    // A dribbled body (R-U-D-Y: a byte every 100 ms, far below 1 KiB per window) is cut too.
    let mut dribble = TcpStream::connect(addr).await.unwrap();
    dribble
        .write_all(b"POST /v/dribble HTTP/1.1\r\nHost: open.test\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while started.elapsed() < timeout * 4 {
        // The attacker's pace, not synchronisation: one byte, then wait for an answer a while.
        if dribble.write_all(b"x").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(100), dribble.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
    }
    let (rest, _) = read_until_closed(&mut dribble, Duration::from_secs(5)).await;
    answer.extend(rest);
    let took = started.elapsed();
    assert_eq!(
        statuses(&answer),
        [408],
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(took < timeout * 2 + Duration::from_secs(2), "{took:?}");
    println!("dribbled body: 408 and closed after {took:.2?}");
    recorder
        .wait_for("the third aborted upstream request", |log| log.aborted == 3)
        .await;

    // A body that keeps coming is not cut off, however long it takes in total.
    let mut steady = TcpStream::connect(addr).await.unwrap();
    steady
        .write_all(b"POST /v/steady HTTP/1.1\r\nHost: open.test\r\nContent-Length: 4\r\nConnection: close\r\n\r\nab")
        .await
        .unwrap();
    // Its upstream connection is the recorder's fourth (after the three aborted uploads): the
    // proxy connects once it has the head, so from here the pause is in the body.
    recorder
        .wait_for("the steady head upstream", |log| log.accepted >= 4)
        .await;
    steady.write_all(b"cd").await.unwrap();
    let (answer, _) = read_until_closed(&mut steady, Duration::from_secs(5)).await;
    assert_eq!(statuses(&answer), [200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_at_the_send_timeout() {
    // 32 MiB: far more than the socket buffers on both sides hold.
    let recorder = Recorder::start_with(vec![b'x'; BIG]).await;
    let send = Duration::from_millis(800);
    let config = ProxyConfig {
        client_send_timeout: send,
        ..ProxyConfig::default()
    };
    let proxy = proxy_for(&recorder, config).await;
    let admin = proxy.handle.admin_addr;
    let mut reader = TcpStream::connect(proxy.handle.http_addr.unwrap())
        .await
        .unwrap();
    reader
        .write_all(b"GET /v/big HTTP/1.1\r\nHost: open.test\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    wait_metric(
        admin,
        "switchyard_client_connections_closed_total",
        "send_stalled",
        1.0,
    )
    .await;
    let closed_after = started.elapsed();
    // What was in flight when it closed is still readable, then the end: never the whole body.
    let (got, _) = read_until_closed(&mut reader, Duration::from_secs(5)).await;
    println!(
        "slow read: closed after {closed_after:.2?}, {} of {} bytes delivered",
        got.len(),
        BIG
    );
    assert!(
        closed_after < send + Duration::from_secs(3),
        "{closed_after:?}"
    );
    assert!(got.len() < BIG);

    // A client that reads it all gets it all.
    let response = client()
        .get(proxy.url("/v/big"))
        .header("host", "open.test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap().len(), BIG);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_from_one_address_are_capped_at_accept() {
    let recorder = Recorder::start().await;
    let config = ProxyConfig {
        max_connections_per_ip: 3,
        ..ProxyConfig::default()
    };
    let proxy = proxy_for(&recorder, config).await;
    let addr = proxy.handle.http_addr.unwrap();
    let request = b"GET /v/held HTTP/1.1\r\nHost: open.test\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(statuses(&buf[..n]), [200]);
        held.push(s);
    }
    // The fourth from the same address is closed unanswered; other listeners count too.
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    let _ = fourth.write_all(request).await;
    let (answer, _) = read_until_closed(&mut fourth, Duration::from_secs(5)).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let admin = proxy.handle.admin_addr;
    wait_metric(
        admin,
        "switchyard_client_connections_closed_total",
        "per_ip_limit",
        1.0,
    )
    .await;
    // A slot freed is a slot usable again.
    drop(held.pop());
    let opened = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let response = fresh_client()
                .get(proxy.url("/v/again"))
                .header("host", "open.test")
                .send()
                .await;
            if let Ok(response) = response {
                return response.status().as_u16();
            }
        }
    })
    .await
    .expect("a connection is accepted again");
    assert_eq!(opened, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_the_admin_port_still_answers_and_excess_clients_wait() {
    let recorder = Recorder::start().await;
    let config = ProxyConfig {
        max_connections: 2,
        ..ProxyConfig::default()
    };
    let proxy = proxy_for(&recorder, config).await;
    let addr = proxy.handle.http_addr.unwrap();
    let admin = proxy.handle.admin_addr;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /v/held HTTP/1.1\r\nHost: open.test\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(statuses(&buf[..n]), [200]);
        held.push(s);
    }
    assert_eq!(
        metric(admin, "switchyard_connections", "listener=\"http\"").await,
        2.0
    );
    // A third client queues in the backlog while the admin port keeps answering.
    let waiting = tokio::spawn({
        let url = proxy.url("/v/third");
        async move {
            let response = fresh_client()
                .get(url)
                .header("host", "open.test")
                .send()
                .await;
            response.map(|r| r.status().as_u16())
        }
    });
    for _ in 0..5 {
        let health = reqwest::get(format!("http://{admin}/_haproxy_health_check"))
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    }
    assert!(!waiting.is_finished(), "the third client waits for a slot");
    drop(held.pop());
    let third = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a slot frees")
        .unwrap();
    assert_eq!(third.unwrap(), 200);
}
