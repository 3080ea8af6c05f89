//! Which Marathon and as whom: a standby redirecting to the leader, a leader change, an expired
//! token (one new login), and wrong basic credentials.

use super::*;

#[tokio::test]
async fn a_standby_redirects_to_the_leader_and_a_leader_change_reconnects() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let auth = SimAuth::Basic {
        user: "lb".into(),
        password: "s3cret".into(),
    };
    let sim = simulator(2, auth).await;
    sim.set_leader(1);
    sim.put_app(web_app());
    let task_a = move_web_to(&sim, &a, None);
    // The first URL is a standby: its 302 must be followed with the credentials.
    let credentials = Credentials::basic("lb:s3cret").unwrap();
    let handle = start(source(sim.urls(), credentials)).await;
    routed_to(&handle, &a).await;
    guarded("the stream", handle.wait_stream(|s| s.connected.is_some())).await;
    assert!(sim.stats().redirects >= 1, "{:?}", sim.stats());
    let task_b = move_web_to(&sim, &b, Some(&task_a));
    routed_to(&handle, &b).await;

    // Leadership moves mid-stream: the stream closes and the balancer finds the new leader.
    let connects = handle.stream_status().connects;
    sim.set_leader(0);
    guarded(
        "a reconnect",
        handle.wait_stream(|s| s.connects > connects && s.connected.is_some()),
    )
    .await;
    move_web_to(&sim, &c, Some(&task_b));
    routed_to(&handle, &c).await;
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_means_one_new_login_and_nothing_is_lost() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let sim = simulator(
        1,
        SimAuth::ServiceAccount {
            uid: "switchyard".into(),
            public_key_pem: PUBLIC_KEY.into(),
            token_lifetime: Duration::from_secs(3600),
        },
    )
    .await;
    sim.put_app(web_app());
    let task_a = move_web_to(&sim, &a, None);
    let credential = json!({
        "scheme": "RS256", "uid": "switchyard", "private_key": KEY,
        "login_endpoint": sim.login_endpoint()
    });
    let account = ServiceAccount::from_json(&credential.to_string()).unwrap();
    let handle = start(source(sim.urls(), Credentials::ServiceAccount(account))).await;
    routed_to(&handle, &a).await;
    guarded("the stream", handle.wait_stream(|s| s.connected.is_some())).await;
    assert_eq!(
        sim.stats().logins,
        1,
        "one login serves the fetch and the stream"
    );
    let sent = sim.last_headers("/v2/apps").unwrap();
    assert!(sent["authorization"]
        .to_str()
        .unwrap()
        .starts_with("token="));

    // The open stream survives the expiry (Marathon checks at connect); the next fetch gets a
    // 401, logs in once more and goes through.
    sim.expire_tokens();
    let unauthorized = sim.stats().unauthorized;
    move_web_to(&sim, &b, Some(&task_a));
    routed_to(&handle, &b).await;
    let stats = sim.stats();
    assert_eq!(stats.logins, 2, "{stats:?}");
    assert!(stats.unauthorized > unauthorized, "{stats:?}");
    // The metric counts both, once the read that logged in again is applied.
    let logins = guarded("both logins counted", async {
        loop {
            let text = metrics_text(&handle).await;
            let logins = support::metric(&text, "switchyard_dcos_logins_total");
            if logins >= 2.0 {
                break logins;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(logins, 2.0);
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_basic_credentials_serve_nothing_and_never_show_the_password() {
    let sim = simulator(
        1,
        SimAuth::Basic {
            user: "lb".into(),
            password: "right".into(),
        },
    )
    .await;
    sim.put_app(web_app());
    let credentials = Credentials::basic("lb:wrong-password").unwrap();
    let handle = start(source(sim.urls(), credentials)).await;
    let status = guarded(
        "a refused stream",
        handle.wait_stream(|s| s.last_error.is_some()),
    )
    .await;
    let error = status.last_error.unwrap();
    assert!(error.contains("401"), "{error}");
    assert!(!error.contains("wrong-password"), "{error}");
    handle.wait_refreshes(1).await;
    assert_eq!(
        handle.generation(),
        0,
        "nothing served without a good fetch"
    );
    assert!(
        sim.stats().unauthorized >= 2,
        "both the fetch and the stream were refused"
    );
    handle.shutdown().await;
    sim.shutdown().await;
}
