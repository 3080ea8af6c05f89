//! A binary upgrade (SIGUSR2) under load fails no request (C2).

use super::*;

/// A process this test did not start (the upgrade's successor), killed if the test ends early.
struct Adopted(u32);

impl Adopted {
    fn gone(&self) -> bool {
        // Gone, or a zombie its new parent has not reaped yet.
        std::fs::read_to_string(format!("/proc/{}/stat", self.0))
            .map(|stat| {
                stat.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
    }
}

impl Drop for Adopted {
    fn drop(&mut self) {
        if !self.gone() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

/// C2: SIGUSR2 under load from keep-alive and new-connection clients: the old process starts
/// the binary again with its listening sockets, the new one serves, the old one drains and
/// exits 0, and no request fails or is refused at any point; the new process serves alone after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_a_binary_upgrade_under_load_fails_no_request() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let backend = Backend::start("a").await;
    // Three workers: each listener is a group of three sockets, and every one of them must be
    // handed over (a connection the kernel queued on one left behind would be reset).
    let mut running = start_with(
        json!([app(
            "/a",
            free_port(),
            json!({"HAPROXY_0_VHOST": "a.example.com"}),
            &[backend.port()]
        )]),
        Duration::from_secs(10),
        &["--threads", "3"],
    )
    .await;
    let url = format!("http://{}/", running.http);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for keep_alive in [true, true, false, false, false, false, false, false] {
        let (stop, ok, failures, url) = (stop.clone(), ok.clone(), failures.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let pooled = client();
            while !stop.load(Ordering::Relaxed) {
                let client = if keep_alive {
                    pooled.clone()
                } else {
                    fresh_client()
                };
                let sent = client
                    .get(&url)
                    .header("host", "a.example.com")
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(r) if r.status() == 200 => {
                        r.bytes().await.map(drop).map_err(|e| format!("{e:?}"))
                    }
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(format!("{e:?}")),
                };
                match outcome {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(failure) => failures.lock().unwrap().push(failure),
                }
            }
        }));
    }
    let served = |n: usize| {
        let ok = ok.clone();
        async move {
            while ok.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    guarded("load before the upgrade", served(200)).await;

    let old = running.child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-USR2", &old.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let successor = guarded("the new process", async {
        loop {
            let children =
                std::fs::read_to_string(format!("/proc/{old}/task/{old}/children")).unwrap();
            if let Some(pid) = children.split_whitespace().next() {
                return Adopted(pid.parse().unwrap());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let exited = guarded("the old process to exit", running.child.wait())
        .await
        .unwrap();
    assert!(exited.success(), "old process: {exited:?}");
    // The new process alone serves on: the same ports, more requests.
    let after = ok.load(Ordering::Relaxed);
    guarded("load after the upgrade", served(after + 200)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    println!(
        "upgrade under load: {} requests ok, {} failed",
        ok.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(!successor.gone(), "the new process serves");

    sigterm_pid(successor.0);
    guarded("the new process to exit", async {
        while !successor.gone() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
