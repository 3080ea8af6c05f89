//! `switchyard healthcheck`, the image's HEALTHCHECK without curl: the real binary against a
//! balancer serving in this process; it finds the admin port from the flags, the variables or
//! the config file, as the balancer does.

use std::process::Output;
use std::time::Duration;

use serde_json::json;
use switchyard::proxy::ProxyConfig;
use switchyard::serve::Source;
use tokio::process::Command;

use crate::support::proxy::{app, closed_port, start_on_loopback, Proxy};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

async fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("healthcheck")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serving_balancer_is_healthy_by_flag_variable_or_config_file() {
    let proxy = Proxy::start(json!([app("/web", 10980, json!({}), &[31990])])).await;
    let admin = proxy.handle.admin_addr;
    let port = admin.port().to_string();

    let output = healthcheck(
        &["--admin-port", &port, "--admin-bind-address", "127.0.0.1"],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout).trim(),
        format!("http://{admin}/_haproxy_health_check: 200 OK")
    );

    let env = [
        ("SWITCHYARD_ADMIN_PORT", port.as_str()),
        ("SWITCHYARD_BIND_ADDRESS", "0.0.0.0"),
    ];
    let output = healthcheck(&["--ready"], &env).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("/readyz: 200 OK"),
        "{}",
        text(&output.stdout)
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchyard.toml");
    std::fs::write(
        &file,
        format!("admin-port = {port}\nadmin-bind-address = \"127.0.0.1\"\n"),
    )
    .unwrap();
    let output = healthcheck(&["--config", file.to_str().unwrap()], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    proxy.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_or_not_ready_is_unhealthy_with_the_reason() {
    let closed = closed_port().to_string();
    let output = healthcheck(
        &["--admin-port", &closed, "--bind-address", "127.0.0.1"],
        &[],
    )
    .await;
    let err = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "http://127.0.0.1:{closed}/_haproxy_health_check: cannot connect"
        )),
        "{err}"
    );

    // A source that cannot be read: the process serves, but no table was ever built.
    let dir = tempfile::tempdir().unwrap();
    let missing = Source::File(dir.path().join("missing.json"));
    let handle =
        start_on_loopback(missing, Duration::from_secs(3600), ProxyConfig::default()).await;
    let port = handle.admin_addr.port().to_string();
    let args = [
        "--admin-port",
        port.as_str(),
        "--admin-bind-address",
        "127.0.0.1",
    ];
    let output = healthcheck(&args, &[]).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "alive: {}",
        text(&output.stderr)
    );
    let output = healthcheck(&[&args[..], &["--ready"]].concat(), &[]).await;
    let err = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "not ready: {err}");
    assert!(err.contains("/readyz: 503"), "{err}");
    handle.shutdown().await;
}
