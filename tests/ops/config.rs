//! Options from `--config` files and `SWITCHYARD_*` variables: the documented file is complete
//! and equals the defaults, precedence is flag > environment > file > default, and bad input
//! is an error naming it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use clap::CommandFactory;
use switchyard::cli::{config, Cli};

const HAPROXY_ONLY: &[&str] = &[
    "haproxy-map",
    "haproxy-config",
    "command",
    "reload-interval",
    "max-reload-retries",
    "skip-validation",
    "archive-versions",
    "group-https-by-vhost",
    "lru-cache-capacity",
    "syslog-socket",
];

fn parse(args: &[&str]) -> Result<Cli, String> {
    let args = std::iter::once("switchyard").chain(args.iter().copied());
    config::parse(args.map(Into::into).collect()).map_err(|e| e.to_string())
}

#[test]
fn the_documented_file_names_every_option_and_holds_the_defaults() {
    let file = std::fs::read_to_string("config/switchyard.toml").unwrap();
    let command = Cli::command();
    let options: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .filter(|l| !["help", "version", "config"].contains(&l.as_str()))
        .filter(|l| !HAPROXY_ONLY.contains(&l.as_str()))
        .collect();
    assert!(options.len() > 30, "{options:?}");
    for option in &options {
        assert!(
            file.contains(&format!("\n{option} = ")) || file.contains(&format!("\n# {option} = ")),
            "config/switchyard.toml does not document --{option}"
        );
    }
    let with_file = parse(&[
        "--config",
        "config/switchyard.toml",
        "--apps-file",
        "a.json",
    ])
    .unwrap();
    let without = parse(&["--apps-file", "a.json"]).unwrap();
    assert_eq!(
        format!("{:?}", with_file.serve),
        format!("{:?}", without.serve)
    );
}

#[test]
fn file_values_apply_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    std::fs::write(
        &path,
        "http-port = 8081\ngroup = [\"internal\", \"external\"]\nstrict_mode = true\nmarathon = [\"http://m1:8080\", \"http://m2:8080\"]\n",
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let cli = parse(&["--config", path]).unwrap();
    assert_eq!(cli.serve.routing.http_port, 8081);
    assert_eq!(cli.serve.routing.group, ["internal", "external"]);
    assert!(cli.serve.routing.strict_mode);
    assert_eq!(
        cli.serve.access.marathon,
        ["http://m1:8080", "http://m2:8080"]
    );
    let cli = parse(&[
        "--config",
        path,
        "--http-port",
        "8082",
        "-m",
        "http://m3:8080",
    ])
    .unwrap();
    assert_eq!(cli.serve.routing.http_port, 8082);
    assert_eq!(cli.serve.access.marathon, ["http://m3:8080"]);
}

#[test]
fn bad_files_are_errors_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let unknown = write("unknown.toml", "htp-port = 80\n");
    let err = parse(&["--config", &unknown, "--apps-file", "a.json"]).unwrap_err();
    assert!(err.contains("htp-port") && err.contains("unknown"), "{err}");
    let bad = write("bad.toml", "http-port = \"eighty\"\n");
    let err = parse(&["--config", &bad, "--apps-file", "a.json"]).unwrap_err();
    assert!(
        err.contains("'eighty'") && err.contains(&format!("http-port in {bad}")),
        "{err}"
    );
    let broken = write("broken.toml", "http-port = [\n");
    let err = parse(&["--config", &broken, "--apps-file", "a.json"]).unwrap_err();
    assert!(err.contains("not TOML"), "{err}");
    let err = parse(&["--config", "/nonexistent/switchyard.toml"]).unwrap_err();
    assert!(err.contains("/nonexistent/switchyard.toml"), "{err}");
}

/// The HTTP port the real binary binds, with `env` set and `args` given.
fn bound_http_port(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "--apps-file",
            "config/example-apps.json",
            "--bind-address",
            "127.0.0.1",
        ])
        .args([
            "--https-port",
            "0",
            "--app-id-port",
            "0",
            "--admin-port",
            "0",
        ])
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let line = stderr
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("switchyard serving"))
        .expect("the start-up line");
    let _ = child.kill();
    let _ = child.wait();
    let field = line
        .split_whitespace()
        .find(|w| w.starts_with("http="))
        .unwrap();
    field.rsplit(':').next().unwrap().to_owned()
}

#[test]
fn environment_beats_the_file_and_a_flag_beats_both() {
    let free = || crate::support::proxy::free_port().to_string();
    let (from_file, from_env, from_flag) = (free(), free(), free());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    std::fs::write(&path, format!("http-port = {from_file}\n")).unwrap();
    let config = ["--config", path.to_str().unwrap()];
    assert_eq!(bound_http_port(&config, &[]), from_file);
    let env = [("SWITCHYARD_HTTP_PORT", from_env.as_str())];
    assert_eq!(bound_http_port(&config, &env), from_env);
    let mut with_flag = config.to_vec();
    with_flag.extend(["--http-port", &from_flag]);
    assert_eq!(bound_http_port(&with_flag, &env), from_flag);
    // SWITCHYARD_CONFIG names the file too.
    let env = [("SWITCHYARD_CONFIG", path.to_str().unwrap())];
    assert_eq!(bound_http_port(&[], &env), from_file);
}

#[test]
fn an_unknown_key_gets_the_nearest_option() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, "helth_check = false\n").unwrap();
    let err = parse(&["--config", path.to_str().unwrap(), "--apps-file", "a.json"]).unwrap_err();
    assert!(
        err.contains("unknown option `helth_check`")
            && err.contains("a similar option exists: `health-check`"),
        "{err}"
    );
}

/// The real binary's stderr with `env` set (a variable cannot be set for this process alone).
fn stderr_with_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_value_from_a_variable_is_named_by_the_variable() {
    let env = [("SWITCHYARD_HTTP_PORT", "eighty")];
    for args in [
        &["--apps-file", "a.json"][..],
        &["routes", "--apps-file", "a.json"],
    ] {
        let err = stderr_with_env(args, &env);
        assert!(
            err.contains("invalid value 'eighty' for 'SWITCHYARD_HTTP_PORT'"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("--http-port"), "{args:?}: {err}");
    }
    let err = stderr_with_env(
        &["--apps-file", "a.json"],
        &[("SWITCHYARD_LOG_FORMAT", "jsn")],
    );
    assert!(
        err.contains("'SWITCHYARD_LOG_FORMAT'") && err.contains("'json'"),
        "{err}"
    );
    // On the command line, the flag is the name.
    let err = stderr_with_env(&["--apps-file", "a.json", "--http-port", "eighty"], &[]);
    assert!(err.contains("'--http-port <HTTP_PORT>'"), "{err}");
}

#[test]
fn a_bad_apps_file_in_serve_mode_is_reported_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apps.json");
    std::fs::write(&path, "{\"apps\": [").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "--apps-file",
            path.to_str().unwrap(),
            "--bind-address",
            "127.0.0.1",
        ])
        .args([
            "--http-port",
            "0",
            "--https-port",
            "0",
            "--app-id-port",
            "0",
            "--admin-port",
            "0",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let line = stderr
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("cannot read the apps"));
        let _ = tx.send(line);
    });
    // A guard against a hang, not a synchronisation point.
    let line = rx.recv_timeout(std::time::Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.ok().flatten().expect("the read error is logged");
    assert!(line.contains(path.to_str().unwrap()), "{line}");
    assert!(line.contains("malformed"), "{line}");
}

#[test]
fn health_check_false_in_the_file_turns_health_filtering_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    let path = path.to_str().unwrap();
    for (file, filtering) in [
        ("health-check = false\n", false),
        ("health-check = true\n", true),
        ("no-health-check = true\n", false),
        ("", true),
    ] {
        std::fs::write(path, file).unwrap();
        let cli = parse(&["--config", path, "--apps-file", "a.json"]).unwrap();
        let model = cli.serve.routing.model_options().unwrap();
        assert_eq!(model.health_check, filtering, "{file:?}");
    }
    // A flag beats the file; `--health-check` alone (Marathon-LB's) turns it on, and does not
    // take Marathon-LB's first word as its value.
    std::fs::write(path, "health-check = false\n").unwrap();
    let cli = parse(&[
        "--config",
        path,
        "--health-check",
        "poll",
        "-m",
        "http://m:8080",
    ])
    .unwrap();
    assert!(cli.serve.routing.model_options().unwrap().health_check);
    assert_eq!(cli.serve.mode, Some(switchyard::cli::SourceMode::Poll));
    let cli = parse(&["--health-check=false", "--apps-file", "a.json"]).unwrap();
    assert!(!cli.serve.routing.model_options().unwrap().health_check);
}

/// `switchyard routes --json` with `args` and `env`: the addresses it routes to.
fn routed_endpoints(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("routes")
        .args(args)
        .arg("--json")
        .envs(env.iter().copied())
        .env_remove("FRAMEWORK_NAME")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    doc["backends"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["endpoints"].as_array().unwrap().iter())
        .map(|e| e["addr"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn routes_reads_the_balancer_s_variables_and_config_file() {
    // The example's unhealthy tweeter task, and /post-tweets, which has no group.
    let unhealthy = "127.0.0.3:31003".to_owned();
    let example = ["--apps-file", "config/example-apps.json"];
    assert!(!routed_endpoints(&example, &[]).contains(&unhealthy));
    let off = [("SWITCHYARD_HEALTH_CHECK", "false")];
    assert!(routed_endpoints(&example, &off).contains(&unhealthy));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    std::fs::write(
        &path,
        "apps-file = \"config/example-apps.json\"\nhealth-check = false\ngroup = [\"*\"]\n",
    )
    .unwrap();
    let endpoints = routed_endpoints(&["--config", path.to_str().unwrap()], &[]);
    assert!(endpoints.contains(&unhealthy), "{endpoints:?}");
    assert!(
        endpoints.len() > routed_endpoints(&example, &off).len(),
        "--group '*' from the file"
    );
}
