//! Rendering as Cosmos does: the defaults, every option (JSON-escaped), every combination of the
//! optional sections, arguments the balancer accepts, options merged like Cosmos.

use super::*;

#[test]
fn renders_marathon_lbs_app_with_the_defaults() {
    let app = render(&json!({}));

    let mut port_definitions = vec![
        json!({"port": 80, "protocol": "tcp", "name": "http"}),
        json!({"port": 443, "protocol": "tcp", "name": "https"}),
        json!({"port": 9090, "protocol": "tcp", "name": "admin"}),
        json!({"port": 9091, "protocol": "tcp", "name": "app-id"}),
    ];
    port_definitions.extend(SERVICE_PORTS.map(|port| json!({"port": port, "protocol": "tcp"})));
    let expected = json!({
        "id": "switchyard",
        "instances": 1,
        "cpus": 2,
        "mem": 1024,
        "container": {
            "type": "DOCKER",
            "docker": {
                "image": "switchyard/switchyard:0.1.0",
                "parameters": [
                    {"key": "label", "value": "created_by=marathon"},
                    {"key": "label", "value": "dcos_pkg_name=switchyard"}
                ]
            }
        },
        "networks": [{"mode": "host"}],
        "acceptedResourceRoles": ["slave_public"],
        "constraints": [["hostname", "UNIQUE"]],
        "healthChecks": [{
            "path": "/_haproxy_health_check",
            "portIndex": 2,
            "protocol": "MESOS_HTTP",
            "gracePeriodSeconds": 60,
            "intervalSeconds": 5,
            "timeoutSeconds": 2,
            "maxConsecutiveFailures": 2,
            "ignoreHttp1xx": false
        }],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
        "args": ["sse", "-m", "http://marathon.mesos:8080", "--health-check", "--group", "external"],
        // Always present, maybe empty, as in Marathon-LB's template.
        "env": {"HAPROXY_SSL_CERT": ""},
        "requirePorts": true,
        "portDefinitions": port_definitions
    });
    assert_eq!(
        app,
        expected,
        "rendered:\n{}",
        serde_json::to_string_pretty(&app).unwrap()
    );

    // The parts a drop-in replacement for Marathon-LB's package must keep, spelled out.
    assert_eq!(
        strings(&app["args"]),
        [
            "sse",
            "-m",
            "http://marathon.mesos:8080",
            "--health-check",
            "--group",
            "external"
        ]
    );
    assert_eq!(host_ports(&app), expected_ports(true, false));
    assert_eq!(app["requirePorts"], true);
    assert_health_check_on_admin_port(&app);
    assert!(app.get("secrets").is_none());
    assert!(app["container"].get("volumes").is_none());
    // Integral numbers render as integers, as Cosmos renders them (mem's default is 1024.0).
    assert!(app["mem"].is_u64() && app["cpus"].is_u64(), "{app}");
}

#[test]
fn renders_every_option_and_json_escapes_values() {
    let odd = "a \"quoted\" C:\\path\nand <&> 'x'";
    let user = json!({
        "switchyard": {
            "name": "/lb/edge",
            "instances": 3,
            "cpus": 1.5,
            "mem": 512,
            "role": "lb_role",
            "haproxy-group": "internal",
            "marathon-uri": "https://marathon.mesos:8443",
            "strict-mode": true,
            "bind-http-https": false,
            "auto-assign-service-ports": true,
            "ssl-cert": odd,
            "ssl-cert-path": "/etc/switchyard/certs",
            "container-syslogd": true,
            "secret_name": "switchyard/service-account",
            "parameters": [{"key": "ulimit", "value": odd}],
            "extra-args": ["--access-log", "--log-format", "json", odd],
            "minimumHealthCapacity": 1,
            "maximumOverCapacity": 0
        }
    });
    let app = render(&user);

    assert_eq!(app["id"], "/lb/edge");
    assert_eq!(app["instances"], 3);
    assert_eq!(app["cpus"], 1.5);
    assert_eq!(app["mem"], 512);
    assert_eq!(app["acceptedResourceRoles"], json!(["lb_role"]));
    assert_eq!(
        strings(&app["args"]),
        [
            "sse",
            "-m",
            "https://marathon.mesos:8443",
            "--health-check",
            "--group",
            "internal",
            "--strict-mode",
            "--dont-bind-http-https",
            "--min-serv-port-ip-per-task",
            "10101",
            "--max-serv-port-ip-per-task",
            "10150",
            "--ssl-certs",
            "/etc/switchyard/certs",
            "--access-log",
            "--log-format",
            "json",
            odd
        ]
    );
    assert_eq!(
        app["container"]["volumes"],
        json!([{
            "containerPath": "/etc/switchyard/certs",
            "hostPath": "/etc/switchyard/certs",
            "mode": "RO"
        }])
    );
    assert_eq!(
        app["container"]["docker"]["parameters"],
        json!([
            {"key": "ulimit", "value": odd},
            {"key": "label", "value": "created_by=marathon"},
            {"key": "label", "value": "dcos_pkg_name=switchyard"}
        ])
    );
    assert_eq!(
        app["env"],
        json!({
            "DCOS_SERVICE_ACCOUNT_CREDENTIAL": {"secret": "serviceCredential"},
            "SWITCHYARD_ACCESS_LOG": "true",
            "HAPROXY_SSL_CERT": odd
        })
    );
    assert_eq!(
        app["secrets"],
        json!({"serviceCredential": {"source": "switchyard/service-account"}})
    );
    // Without ports 80 and 443 the health check's portIndex moves to keep pointing at 9090.
    assert_eq!(host_ports(&app), expected_ports(false, true));
    assert_health_check_on_admin_port(&app);
    assert_eq!(
        app["upgradeStrategy"],
        json!({"minimumHealthCapacity": 1, "maximumOverCapacity": 0})
    );
}

#[test]
fn a_string_with_quotes_backslashes_and_html_characters_reaches_the_app_unchanged() {
    for value in [
        "a \"quoted\" group",
        "back\\slash\\",
        "<script>&amp;</script>",
        "tab\tand\nnewline and \u{1} control",
        "caf\u{e9} \u{2603}",
    ] {
        let app = render(&json!({"switchyard": {
            "haproxy-group": value,
            "secret_name": value,
            "ssl-cert": value,
            "parameters": [{"key": value, "value": value}],
            "extra-args": [value, value],
        }}));
        assert_eq!(app["args"][5], value);
        assert_eq!(app["args"][6], value);
        assert_eq!(app["args"][7], value);
        assert_eq!(app["secrets"]["serviceCredential"]["source"], value);
        assert_eq!(app["env"]["HAPROXY_SSL_CERT"], value);
        let parameter = &app["container"]["docker"]["parameters"][0];
        assert_eq!(
            (&parameter["key"], &parameter["value"]),
            (&json!(value), &json!(value))
        );
    }
}

#[test]
fn every_combination_of_the_optional_sections_renders_valid_json() {
    for bits in 0..256u16 {
        let on = |bit: u16| bits & (1 << bit) != 0;
        let (strict, bind, secret, cert) = (on(0), on(1), on(2), on(3));
        let (role, auto_assign, syslogd, parameters) = (on(4), on(5), on(6), on(7));
        let user = json!({"switchyard": {
            "strict-mode": strict,
            "bind-http-https": bind,
            "secret_name": if secret { "sa/secret" } else { "" },
            "ssl-cert-path": if cert { "/certs" } else { "" },
            "role": if role { "slave_public" } else { "" },
            "auto-assign-service-ports": auto_assign,
            "container-syslogd": syslogd,
            "parameters": if parameters { json!([{"key": "k", "value": "v"}]) } else { json!([]) },
        }});
        let app = render(&user);
        let context = format!("{user}");

        let mut args = vec!["sse", "-m", "http://marathon.mesos:8080"];
        args.extend(["--health-check", "--group", "external"]);
        if strict {
            args.push("--strict-mode");
        }
        if !bind {
            args.push("--dont-bind-http-https");
        }
        if auto_assign {
            args.extend(["--min-serv-port-ip-per-task", "10101"]);
            args.extend(["--max-serv-port-ip-per-task", "10150"]);
        }
        if cert {
            args.extend(["--ssl-certs", "/certs"]);
        }
        assert_eq!(strings(&app["args"]), args, "{context}");
        assert_eq!(
            host_ports(&app),
            expected_ports(bind, auto_assign),
            "{context}"
        );
        assert_health_check_on_admin_port(&app);
        assert_eq!(app.get("secrets").is_some(), secret, "{context}");
        let mut env = json!({"HAPROXY_SSL_CERT": ""});
        if secret {
            env["DCOS_SERVICE_ACCOUNT_CREDENTIAL"] = json!({"secret": "serviceCredential"});
        }
        if syslogd {
            env["SWITCHYARD_ACCESS_LOG"] = json!("true");
        }
        assert_eq!(app["env"], env, "{context}");
        assert_eq!(app["container"].get("volumes").is_some(), cert, "{context}");
        let docker_parameters = app["container"]["docker"]["parameters"].as_array().unwrap();
        assert_eq!(
            docker_parameters.len(),
            2 + usize::from(parameters),
            "{context}"
        );
        // Marathon-LB's template: an empty role drops acceptedResourceRoles (any agent).
        assert_eq!(
            app.get("acceptedResourceRoles").is_some(),
            role,
            "{context}"
        );
    }
}

/// The container's entrypoint is the binary (see the Dockerfile), so the app's `args` are its
/// command line: every rendering must be one the CLI accepts, meaning what the options said.
#[test]
fn the_rendered_args_are_a_command_line_the_balancer_accepts() {
    let parse = |app: &Value| {
        let argv = std::iter::once("switchyard").chain(strings(&app["args"]));
        Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("the CLI rejects {}: {e}", app["args"]))
    };

    let cli = parse(&render(&json!({})));
    assert!(cli.command.is_none(), "serve mode");
    assert_eq!(cli.serve.mode, Some(SourceMode::Sse));
    assert_eq!(cli.serve.access.marathon, ["http://marathon.mesos:8080"]);
    assert_eq!(cli.serve.routing.group, ["external"]);
    assert!(cli.serve.routing.health_check && !cli.serve.routing.no_health_check);
    assert!(!cli.serve.routing.strict_mode && !cli.serve.dont_bind_http_https);
    assert!(cli.serve.ssl_certs.is_empty());

    let cli = parse(&render(&json!({"switchyard": {
        "haproxy-group": "internal",
        "marathon-uri": "https://marathon.mesos:8443",
        "strict-mode": true,
        "bind-http-https": false,
        "auto-assign-service-ports": true,
        "ssl-cert-path": "/etc/switchyard/certs",
        "extra-args": ["--access-log", "--log-format", "json"],
    }})));
    assert_eq!(cli.serve.access.marathon, ["https://marathon.mesos:8443"]);
    assert_eq!(cli.serve.routing.group, ["internal"]);
    assert!(cli.serve.routing.strict_mode && cli.serve.dont_bind_http_https);
    let routing = &cli.serve.routing;
    assert_eq!(
        (
            routing.min_serv_port_ip_per_task,
            routing.max_serv_port_ip_per_task
        ),
        (10101, 10150)
    );
    assert_eq!(
        cli.serve.ssl_certs,
        [std::path::PathBuf::from("/etc/switchyard/certs")]
    );
    assert!(cli.serve.limits.access_log);
    assert_eq!(cli.log_format, LogFormat::Json);
}

#[test]
fn options_merge_like_cosmos() {
    let defaults = json!({"a": {"b": 1, "c": [1, 2], "d": {"e": true}}, "f": "x"});
    let user = json!({"a": {"c": [3], "d": {"g": null}}, "h": 2});
    assert_eq!(
        deep_merge(&defaults, &user),
        json!({"a": {"b": 1, "c": [3], "d": {"e": true, "g": null}}, "f": "x", "h": 2})
    );
    // A partial options file keeps every other default.
    let merged = merged_options(&json!({"switchyard": {"haproxy-group": "internal"}}));
    assert_eq!(merged["switchyard"]["haproxy-group"], "internal");
    assert_eq!(merged["switchyard"]["name"], "switchyard");
    assert_eq!(
        merged["switchyard"]["marathon-uri"],
        "http://marathon.mesos:8080"
    );
    // An array option is replaced, not appended to.
    let merged = merged_options(&json!({"switchyard": {"extra-args": ["--access-log"]}}));
    assert_eq!(merged["switchyard"]["extra-args"], json!(["--access-log"]));
}
