//! Signals to the real binary (SIGHUP re-reads, SIGTERM drains and exits 0) and a connection
//! flood under a low open-file limit.

use super::*;

#[tokio::test]
async fn sighup_rereads_and_sigterm_drains_then_exits_zero() {
    let gate = std::sync::Arc::new(Semaphore::new(0));
    let arrived = std::sync::Arc::new(Notify::new());
    let port = bulk_backend(gate.clone(), arrived.clone()).await;
    let mut running = start(json!({"apps": []})).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let status = http
        .get(format!("http://{}/", running.http))
        .header("host", "bulk.example.com")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 503, "nothing routed yet");
    let health = http
        .get(format!("http://{}/_haproxy_health_check", running.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        200,
        "Marathon-LB's health check on the admin port"
    );

    std::fs::write(&running.apps_file, apps(port).to_string()).unwrap();
    signal(&running.child, "HUP");
    wait_generation(&running, 2).await;

    // A request in flight when SIGTERM arrives still completes.
    let in_flight = {
        let (http, url) = (http.clone(), format!("http://{}/", running.http));
        tokio::spawn(async move {
            http.post(url)
                .header("host", "bulk.example.com")
                .body("12345")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    // The backend holds it at the gate.
    arrived.notified().await;
    signal(&running.child, "TERM");
    // New connections are refused once the listener is gone...
    let refused = loop {
        match tokio::net::TcpStream::connect(running.http).await {
            Err(_) => break true,
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    assert!(refused);
    // ...while the request in flight finishes.
    gate.add_permits(1);
    assert_eq!(in_flight.await.unwrap(), "5");
    let status = running.child.wait().await.unwrap();
    assert!(status.success(), "exit status {status:?}");
}

/// B5: with an open-file limit of 256 and the default `--max-connections` (50,000), the cap is
/// fitted to the limit (one warning says so), a flood of 300 connections is held at it (the
/// rest wait in the kernel's backlog, no accept fails), and the admin port keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_low_open_file_limit_the_cap_fits_and_the_admin_port_keeps_answering() {
    use tokio::io::AsyncReadExt;
    const LIMIT: u64 = 256;
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut running = start_with(apps(backend.local_addr().unwrap().port()), |command| {
        command.stderr(Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| rlimit::setrlimit(rlimit::Resource::NOFILE, LIMIT, LIMIT));
        }
    })
    .await;
    let cap = switchyard::proxy::accept::open_files::fit_to(50_000, LIMIT).max_connections;
    assert!(cap < 300);

    let mut flood = Vec::new();
    for _ in 0..300 {
        let connected = tokio::net::TcpStream::connect(running.http);
        flood.push(guarded("a flood connection", connected).await.unwrap());
    }
    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |path: &str| format!("http://{}{path}", running.admin);
    // Connections the balancer holds open on its HTTP port.
    let http_open = format!(
        "switchyard_connections{{listener=\"http\",port=\"{}\"}}",
        running.http.port()
    );
    let open = || async {
        let metrics = admin.get(url("/metrics")).send().await.unwrap();
        let text = metrics.text().await.unwrap();
        metric(&text, &http_open)
    };
    // The cap fills up...
    guarded("the flood to reach the cap", async {
        while open().await < cap as f64 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // ...and holds there, while the admin port answers every probe.
    for _ in 0..20 {
        let probe = admin.get(url("/_haproxy_health_check")).send();
        assert_eq!(guarded("a probe", probe).await.unwrap().status(), 200);
    }
    assert_eq!(open().await, cap as f64, "held at the cap");
    drop(flood);
    drop(backend);

    signal(&running.child, "TERM");
    let status = guarded("the exit", running.child.wait()).await.unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    running
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(
        stderr.contains("--max-connections lowered")
            && stderr.contains(&format!("max_connections={cap}")),
        "{stderr}"
    );
    assert!(!stderr.contains("accept failed"), "{stderr}");
}
