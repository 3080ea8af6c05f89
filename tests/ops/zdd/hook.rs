//! `--pre-kill-hook`: run before each kill with the old app, the tasks to kill and the new app
//! (JSON); a hook that fails stops the deployment before anything is killed.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use super::{succeed, Balancer, Cluster};

/// A hook that appends its three arguments to `calls` and exits with `status`.
fn hook(cluster: &Cluster, name: &str, status: u8) -> (String, std::path::PathBuf) {
    let calls = cluster.dir.path().join(format!("{name}.calls"));
    let path = cluster.dir.path().join(format!("{name}.sh"));
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n%s\\n%s\\n' \"$1\" \"$2\" \"$3\" >> '{}'\nexit {status}\n",
        calls.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (path.display().to_string(), calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pre_kill_hook_sees_each_kill_and_a_failing_one_stops_it() {
    let cluster = Cluster::start().await;
    let balancer = Balancer::start(&cluster.marathon(), "127.0.0.1", None).await;
    succeed(cluster.zdd(&cluster.app_file(2, 1, true), &[&balancer], &[])).await;
    balancer.wait_routed(2).await;
    let blue_tasks = cluster.task_ids("/web-blue");

    let (ok, calls) = hook(&cluster, "ok", 0);
    let args = ["--pre-kill-hook", ok.as_str()];
    succeed(cluster.zdd(&cluster.app_file(2, 2, true), &[&balancer], &args)).await;
    let text = std::fs::read_to_string(&calls).expect("the hook ran");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len() % 3, 0, "{text}");
    let mut killed = Vec::new();
    for call in lines.chunks(3) {
        assert_eq!(call[0]["id"], "/web-blue", "the old app");
        assert_eq!(call[2]["id"], "/web-green", "the new app");
        for task in call[1].as_array().unwrap() {
            let task = task.as_str().unwrap().to_owned();
            assert!(
                blue_tasks.contains(&task),
                "{task} is not blue's: {blue_tasks:?}"
            );
            killed.push(task);
        }
    }
    killed.sort();
    let mut expected = blue_tasks.clone();
    expected.sort();
    assert_eq!(killed, expected, "every blue task went through the hook");
    assert_eq!(cluster.app_ids(), ["/web-green"]);
    balancer.wait_routed(2).await;

    // The next deployment's hook fails: it stops before the first kill.
    let green_tasks = cluster.task_ids("/web-green");
    let (fail, calls) = hook(&cluster, "fail", 3);
    let args = ["--pre-kill-hook", fail.as_str()];
    let (code, stdout, stderr) = cluster
        .zdd(&cluster.app_file(2, 3, true), &[&balancer], &args)
        .finish()
        .await;
    assert_eq!(code, 11, "{stdout}\n{stderr}");
    assert!(stderr.contains("pre-kill hook"), "{stderr}");
    assert!(std::fs::read_to_string(&calls).is_ok(), "it ran");
    assert_eq!(
        cluster.task_ids("/web-green"),
        green_tasks,
        "nothing killed"
    );
    let mut apps = cluster.app_ids();
    apps.sort();
    assert_eq!(apps, ["/web-blue", "/web-green"]);
    balancer.stop().await;
    cluster.shutdown().await;
}
