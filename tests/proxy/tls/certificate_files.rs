//! Certificate files changing under a running proxy: rotation under load, a broken file keeping
//! its last good version, and a changed file picked up without a signal.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_under_load_without_a_failed_handshake() {
    let a = Backend::start("a").await;
    let ca = Ca::new();
    let old = ca.issue(&["a.example.com"]);
    let new = ca.issue(&["a.example.com"]);
    let apps = json!([app(
        "/a",
        10711,
        json!({"HAPROXY_0_VHOST": "a.example.com"}),
        &[a.port()]
    )]);
    let tls = Tls::start(apps, &[("a.pem", &old)]).await;
    let https = tls.https;

    let stop = Arc::new(tokio::sync::Notify::new());
    let (counted, mut handshakes_rx) = tokio::sync::watch::channel(0usize);
    let counted = Arc::new(counted);
    let (failures, saw_new) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let new_der = Arc::new(new.der.clone());
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, failures, handshakes, saw_new, new_der) = (
            stop.clone(),
            failures.clone(),
            counted.clone(),
            saw_new.clone(),
            new_der.clone(),
        );
        load.push(tokio::spawn(async move {
            loop {
                let attempt = handshake(https, Some("a.example.com"));
                tokio::select! {
                    result = attempt => match result {
                        Ok((_, leaf)) => {
                            handshakes.send_modify(|n| *n += 1);
                            if leaf == *new_der {
                                saw_new.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(_) => { failures.fetch_add(1, Ordering::SeqCst); }
                    },
                    () = stop.notified() => return,
                }
            }
        }));
    }
    // An open connection made before the rotation keeps working after it.
    let (before, leaf) = handshake(https, Some("a.example.com")).await.unwrap();
    assert!(leaf == old.der);

    // Rotate while the load runs: some handshakes before, many after.
    handshakes_rx.wait_for(|n| *n >= 100).await.unwrap();
    tls.replace("a.pem", &new.pem).await;
    let (_, leaf) = handshake(https, Some("a.example.com")).await.unwrap();
    assert!(leaf == new.der, "a new handshake gets the new certificate");
    let after_rotation = *handshakes_rx.borrow();
    handshakes_rx
        .wait_for(|n| *n >= after_rotation + 100)
        .await
        .unwrap();
    stop.notify_waiters();
    for task in load {
        task.abort();
        let _ = task.await;
    }
    let response = request(
        before,
        "GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "failed handshakes during the rotation"
    );
    assert!(saw_new.load(Ordering::SeqCst) > 0);
    eprintln!("{} handshakes, 0 failed", *handshakes_rx.borrow());
    tls.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_certificate_file_keeps_its_last_good_version() {
    let a = Backend::start("a").await;
    let ca = Ca::new();
    let default = ca.issue(&["default.example.com"]);
    let good = ca.issue(&["a.example.com"]);
    let apps = json!([app(
        "/a",
        10721,
        json!({"HAPROXY_0_VHOST": "a.example.com"}),
        &[a.port()]
    )]);
    let tls = Tls::start(apps, &[("default.pem", &default), ("a.pem", &good)]).await;

    // Garbage, then a key that does not match, then an expired certificate: each is refused
    // and the last good version keeps serving; the other certificate is untouched.
    let other_key = KeyPair::generate().unwrap().serialize_pem();
    let mismatched = format!(
        "{}{other_key}",
        good.pem
            .split("-----BEGIN PRIVATE KEY-----")
            .next()
            .unwrap()
    );
    let expired = ca.issue_with(&["a.example.com"], |p| {
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
    });
    for broken in [
        "not a certificate",
        mismatched.as_str(),
        expired.pem.as_str(),
    ] {
        tls.replace("a.pem", broken).await;
        let (_, leaf) = handshake(tls.https, Some("a.example.com")).await.unwrap();
        assert!(
            leaf == good.der,
            "a broken file replaced a good certificate"
        );
        let (_, leaf) = handshake(tls.https, Some("default.example.com"))
            .await
            .unwrap();
        assert!(leaf == default.der);
    }

    // Each is a clear error naming the file.
    let path = tls.path("a.pem");
    for (contents, says) in [
        ("not a certificate", "no certificate"),
        (mismatched.as_str(), "does not belong"),
        (expired.pem.as_str(), "expired"),
    ] {
        write(&path, contents);
        let err = switchyard::tls::certs::load(&path).unwrap_err().to_string();
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains(says),
            "{err}"
        );
    }

    // Fixed: the new version serves.
    let fixed = ca.issue(&["a.example.com"]);
    tls.replace("a.pem", &fixed.pem).await;
    let (_, leaf) = handshake(tls.https, Some("a.example.com")).await.unwrap();
    assert!(leaf == fixed.der);
    tls.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_picked_up_without_a_signal() {
    let a = Backend::start("a").await;
    let ca = Ca::new();
    let (old, new) = (ca.issue(&["a.example.com"]), ca.issue(&["a.example.com"]));
    let apps = json!([app(
        "/a",
        10741,
        json!({"HAPROXY_0_VHOST": "a.example.com"}),
        &[a.port()]
    )]);
    let poll = Duration::from_millis(20);
    let tls = Tls::start_with(apps, &[("a.pem", &old)], ProxyConfig::default(), poll).await;
    write(&tls.path("a.pem"), &new.pem);
    // Two checks after the write: the second certainly saw the new file.
    let seen = tls.handle.cert_reloads();
    tls.handle.wait_cert_reloads(seen + 2).await;
    let (_, leaf) = handshake(tls.https, Some("a.example.com")).await.unwrap();
    assert!(leaf == new.der, "the poll did not pick up the new file");
    tls.handle.shutdown().await;
}
