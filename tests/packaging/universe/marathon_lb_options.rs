//! The migration path: the options file an operator used for Marathon-LB's package, with its
//! top-level key renamed, installs Switchyard and means what it meant. Every Marathon-LB option
//! is an option here of the same type and default; the ones that configure HAProxy are accepted,
//! documented as ignored and render nothing; `ssl-cert` (PEM text) reaches the balancer as its
//! default certificate.

use super::*;

use crate::support::process::Process;
use crate::support::proxy::{app, client, free_port, get, Backend};

/// Marathon-LB's options in its last Universe revision (45, Marathon-LB 1.15.0): name, JSON
/// type, default (`null`: none).
fn marathon_lb_options() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("auto-assign-service-ports", "boolean", json!(false)),
        ("bind-http-https", "boolean", json!(true)),
        ("container-syslogd", "boolean", json!(false)),
        ("cpus", "number", json!(2)),
        ("haproxy-group", "string", json!("external")),
        ("haproxy-map", "boolean", json!(true)),
        (
            "haproxy_global_default_options",
            "string",
            json!("redispatch,http-server-close,dontlognull"),
        ),
        ("instances", "integer", json!(1)),
        ("marathon-uri", "string", json!("http://marathon.mesos:8080")),
        ("max-reload-retries", "integer", json!(10)),
        ("maximumOverCapacity", "number", json!(0.2)),
        ("mem", "number", json!(1024.0)),
        ("minimumHealthCapacity", "number", json!(0.5)),
        ("name", "string", json!("marathon-lb")),
        ("parameters", "array", json!([])),
        ("reload-interval", "integer", json!(10)),
        ("role", "string", json!("slave_public")),
        ("secret_name", "string", json!("")),
        ("ssl-cert", "string", Value::Null),
        ("strict-mode", "boolean", json!(false)),
        (
            "sysctl-params",
            "string",
            json!("net.ipv4.tcp_tw_reuse=1 net.ipv4.tcp_fin_timeout=30 net.ipv4.tcp_max_syn_backlog=10240 net.ipv4.tcp_max_tw_buckets=400000 net.ipv4.tcp_max_orphans=60000 net.core.somaxconn=10000"),
        ),
        ("template-url", "string", json!("")),
    ]
}

/// A certificate chain and key for `name`, as PEM text.
fn pem_for(name: &str) -> String {
    let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    format!("{}{}", made.cert.pem(), made.key_pair.serialize_pem())
}

/// An options file written for Marathon-LB's package, every option set away from its default.
fn marathon_lb_options_file(pem: &str) -> Value {
    json!({"marathon-lb": {
        "name": "/edge/lb",
        "instances": 2,
        "cpus": 3,
        "mem": 2048,
        "role": "edge",
        "haproxy-group": "na-external",
        "marathon-uri": "https://marathon.mesos:8443",
        "secret_name": "marathon-lb/sa",
        "strict-mode": true,
        "bind-http-https": false,
        "auto-assign-service-ports": true,
        "ssl-cert": pem,
        "container-syslogd": true,
        "parameters": [{"key": "ulimit", "value": "nofile=1000000"}],
        "minimumHealthCapacity": 0,
        "maximumOverCapacity": 1,
        "haproxy-map": false,
        "sysctl-params": "net.core.somaxconn=65535",
        "haproxy_global_default_options": "redispatch,dontlognull",
        "max-reload-retries": -1,
        "reload-interval": 30,
        "template-url": "https://example.com/templates.tgz"
    }})
}

/// `{"marathon-lb": x}` → `{"switchyard": x}`: the one edit the operator makes.
fn renamed(options: Value) -> Value {
    json!({ PACKAGE: options["marathon-lb"].clone() })
}

fn properties() -> Value {
    read_json("config.json")["properties"][PACKAGE]["properties"].clone()
}

#[test]
fn every_marathon_lb_option_is_an_option_here_with_its_type_and_default() {
    let ours = properties();
    for (name, kind, default) in marathon_lb_options() {
        let option = &ours[name];
        assert_eq!(option["type"], kind, "{name}");
        match name {
            "name" => assert_eq!(option["default"], PACKAGE),
            // Marathon-LB's has none: its template rendered an empty variable.
            "ssl-cert" => assert_eq!(option["default"], ""),
            _ => assert_eq!(option["default"], default, "{name}"),
        }
    }
    assert!(ours["haproxy-group"]["description"]
        .as_str()
        .unwrap()
        .contains("HAPROXY_GROUP"));
}

#[test]
fn options_that_configure_haproxy_are_documented_as_ignored_and_change_nothing() {
    let ours = properties();
    let mut ignored = Map::new();
    for name in IGNORED_MARATHON_LB_OPTIONS {
        let description = ours[name]["description"].as_str().unwrap();
        assert!(
            description.starts_with("Marathon-LB's option, accepted so that its options files install unchanged, and ignored: "),
            "{name}: {description}"
        );
        let set = &marathon_lb_options_file("")["marathon-lb"][name];
        ignored.insert(name.to_owned(), set.clone());
    }
    assert_eq!(
        render(&json!({ PACKAGE: ignored })),
        render(&json!({})),
        "rendered differently with {ignored:?}"
    );
}

#[test]
fn a_marathon_lb_options_file_renamed_installs_and_means_what_it_meant() {
    let pem = pem_for("edge.example.com");
    let options = renamed(marathon_lb_options_file(&pem));
    let app = render(&options);

    assert_eq!(app["id"], "/edge/lb");
    assert_eq!((&app["instances"], &app["cpus"]), (&json!(2), &json!(3)));
    assert_eq!(app["mem"], 2048);
    assert_eq!(app["acceptedResourceRoles"], json!(["edge"]));
    assert_eq!(
        strings(&app["args"]),
        [
            "sse",
            "-m",
            "https://marathon.mesos:8443",
            "--health-check",
            "--group",
            "na-external",
            "--strict-mode",
            "--dont-bind-http-https",
            "--min-serv-port-ip-per-task",
            "10101",
            "--max-serv-port-ip-per-task",
            "10150"
        ]
    );
    assert_eq!(host_ports(&app), expected_ports(false, true));
    assert_health_check_on_admin_port(&app);
    assert_eq!(
        app["env"],
        json!({
            "DCOS_SERVICE_ACCOUNT_CREDENTIAL": {"secret": "serviceCredential"},
            "SWITCHYARD_ACCESS_LOG": "true",
            "HAPROXY_SSL_CERT": pem
        })
    );
    assert_eq!(
        app["secrets"],
        json!({"serviceCredential": {"source": "marathon-lb/sa"}})
    );
    assert_eq!(
        app["container"]["docker"]["parameters"][0],
        json!({"key": "ulimit", "value": "nofile=1000000"})
    );
    assert_eq!(
        app["upgradeStrategy"],
        json!({"minimumHealthCapacity": 0, "maximumOverCapacity": 1})
    );
    // Nothing downloaded for template-url, no volume without ssl-cert-path.
    assert!(app.get("uris").is_none() && app.get("fetch").is_none());
    assert!(app["container"].get("volumes").is_none());

    let argv = std::iter::once("switchyard").chain(strings(&app["args"]));
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cli.serve.routing.group, ["na-external"]);
    assert!(cli.serve.ssl_certs.is_empty());

    // The only edit is the top-level key: without it, the install is refused.
    let validator = config_validator();
    let unrenamed = merged_options(&marathon_lb_options_file(&pem));
    assert!(!validator.is_valid(&unrenamed));
}

/// The rendered app's `HAPROXY_SSL_CERT` and `SWITCHYARD_ACCESS_LOG`, given to the real binary:
/// the certificate serves as the default and requests are logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_cert_and_container_syslogd_reach_the_balancer() {
    let pem = pem_for("edge.example.com");
    let rendered = render(&json!({ PACKAGE: {"ssl-cert": pem, "container-syslogd": true} }));
    let env: Vec<(String, String)> = rendered["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let web = Backend::start("web").await;
    let apps = json!([app(
        "/web",
        free_port(),
        json!({"HAPROXY_0_VHOST": "web.example.com"}),
        &[web.port()]
    )]);
    let mut balancer = Process::start(apps, &vars, &[]);
    let line = balancer
        .next_log("for $HAPROXY_SSL_CERT", |f| {
            f["message"] == "certificate loaded" && f["source"] == "$HAPROXY_SSL_CERT"
        })
        .await;
    assert_eq!(line["fields"]["names"], "edge.example.com", "{line}");
    assert_eq!(line["fields"]["default"], true, "{line}");
    balancer.next_message("routing table published").await;

    let url = format!("http://{}/x", balancer.http);
    let (status, backend, _) = get(&client(), &url, "web.example.com").await;
    assert_eq!((status, backend.as_str()), (200, "web"));
    let access = balancer
        .next_log("for the request", |f| f["path"] == "/x")
        .await;
    assert_eq!(access["target"], "access", "{access}");
    balancer.stop().await;
}
