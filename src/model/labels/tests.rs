//! Table-driven: label map → typed values or a `LabelIssue` naming the label.

use super::*;

fn parse(pairs: &[(&str, &str)]) -> AppLabels {
    let map: Labels = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    AppLabels::parse(&map)
}

fn port0(pairs: &[(&str, &str)]) -> PortLabelSet {
    parse(pairs).take_port(0)
}

#[test]
fn every_per_port_label_becomes_a_typed_value() {
    let set = port0(&[
        (
            "HAPROXY_0_VHOST",
            " A.example.com ,*.B.example.com,, a.example.com",
        ),
        ("HAPROXY_0_PATH", "-i /api /v2"),
        ("HAPROXY_0_BACKEND_WEIGHT", "-3"),
        ("HAPROXY_0_PORT", "10080"),
        ("HAPROXY_0_MODE", "HTTP"),
        ("HAPROXY_0_BALANCE", "leastconn"),
        ("HAPROXY_0_STICKY", "yes"),
        ("HAPROXY_0_ENABLED", "T"),
        ("HAPROXY_0_GROUP", "external, internal"),
        ("HAPROXY_0_REDIRECT_TO_HTTPS", "y"),
        ("HAPROXY_0_USE_HSTS", "true"),
        (
            "HAPROXY_0_AUTH",
            "shop:admin:$6$saltsalt$0123456789abcdefABCDEF./",
        ),
        ("HAPROXY_0_SSL_CERT", "/etc/ssl/shop.pem"),
        ("HAPROXY_0_BIND_ADDR", "10.0.0.42"),
        ("HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "/api"),
        ("HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH", "/shop/api"),
        ("HAPROXY_0_HTTP_BACKEND_REDIR", "/home"),
        (
            "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL",
            "10.1.40.0/24 10.1.55.43 ::1",
        ),
        ("HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX", "1"),
    ]);
    assert!(set.issues.is_empty(), "{:?}", set.issues);
    let l = set.labels;
    assert_eq!(
        l.vhosts[..],
        [
            VHost::Exact("a.example.com".into()),
            VHost::Wildcard("b.example.com".into())
        ]
    );
    let path = l.path.unwrap();
    assert!(path.is_case_insensitive());
    assert_eq!(path.prefixes().collect::<Vec<_>>(), ["/api", "/v2"]);
    assert_eq!(l.backend_weight, Some(-3));
    assert_eq!(l.port, Some(10080));
    assert_eq!(l.mode, Some(Mode::Http));
    assert_eq!(l.balance, Balance::LeastConn);
    assert!(l.sticky);
    assert_eq!(l.enabled, Some(true));
    assert_eq!(
        l.groups.unwrap().iter().collect::<Vec<_>>(),
        ["external", "internal"]
    );
    assert!(l.redirect_to_https);
    assert!(l.use_hsts);
    let auth = l.auth.unwrap();
    assert_eq!((&*auth.realm, &*auth.user), ("shop", "admin"));
    assert!(
        !format!("{auth:?}").contains("saltsalt"),
        "hash is redacted in Debug"
    );
    assert_eq!(l.ssl_cert.unwrap().to_str(), Some("/etc/ssl/shop.pem"));
    assert_eq!(l.bind_addr, Some("10.0.0.42".parse().unwrap()));
    assert_eq!(l.proxypass_path.unwrap().as_str(), "/api");
    assert_eq!(l.revproxy_path.unwrap().as_str(), "/shop/api");
    assert_eq!(l.redirect_root_to.unwrap().as_str(), "/home");
    assert_eq!(l.allowed_networks.unwrap().len(), 3);
    assert_eq!(l.healthcheck_port_index, Some(1));
}

#[test]
fn defaults_without_labels() {
    let l = port0(&[("HAPROXY_0_VHOST", "a.com")]).labels;
    assert_eq!(l.balance, Balance::RoundRobin);
    assert!(!l.sticky && !l.redirect_to_https && !l.use_hsts);
    assert_eq!(l.enabled, None);
    assert_eq!(l.mode, None);
    assert_eq!(l.backend_weight, None);
}

#[test]
fn every_bad_value_is_an_invalid_issue_naming_its_label() {
    let cases: &[(&str, &str, &str)] = &[
        ("HAPROXY_0_VHOST", "a.com,b c.com", "not a valid host name"),
        ("HAPROXY_0_VHOST", "a.*.com", "wildcard"),
        (
            "HAPROXY_0_VHOST",
            "shop.example.com:80",
            "a port is not allowed",
        ),
        ("HAPROXY_0_PATH", "api", "does not start with `/`"),
        ("HAPROXY_0_PATH", "-m /api", "only the `-i` flag"),
        ("HAPROXY_0_PATH", "  ", "no path given"),
        ("HAPROXY_0_BACKEND_WEIGHT", "heavy", "not a valid number"),
        ("HAPROXY_0_BACKEND_WEIGHT", "1.5", "not a valid number"),
        ("HAPROXY_0_PORT", "0", "not a port number"),
        ("HAPROXY_0_PORT", "70000", "not a port number"),
        ("HAPROXY_0_PORT", "http", "not a port number"),
        ("HAPROXY_0_MODE", "udp", "not `http` or `tcp`"),
        ("HAPROXY_0_BALANCE", "random", "not one of roundrobin"),
        ("HAPROXY_0_STICKY", "sometimes", "not a boolean"),
        ("HAPROXY_0_ENABLED", "ture", "not a boolean"),
        ("HAPROXY_0_REDIRECT_TO_HTTPS", "always", "not a boolean"),
        ("HAPROXY_0_USE_HSTS", "2", "not a boolean"),
        ("HAPROXY_0_AUTH", "realm:user", "realm:user:crypt-hash"),
        (
            "HAPROXY_0_AUTH",
            ":user:$1$abcdefgh$abcdefghijklmnopqrstuv",
            "with a realm and a user",
        ),
        (
            "HAPROXY_0_AUTH",
            "realm:user:plaintext-password",
            "not a crypt(3) hash",
        ),
        ("HAPROXY_0_SSL_CERT", " ", "empty certificate path"),
        ("HAPROXY_0_BIND_ADDR", "eth0", "not an IP address"),
        (
            "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH",
            "api",
            "does not start with `/`",
        ),
        (
            "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH",
            "/a b",
            "control character",
        ),
        (
            "HAPROXY_0_HTTP_BACKEND_REDIR",
            "https://x/",
            "does not start with `/`",
        ),
        (
            "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL",
            "10.0.0.0/33",
            "not an IP address or CIDR",
        ),
        (
            "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL",
            "",
            "would allow nobody",
        ),
        (
            "HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX",
            "-1",
            "not a valid number",
        ),
    ];
    for (label, value, reason) in cases {
        let set = port0(&[(label, value)]);
        assert!(set.is_invalid(), "{label}={value:?} should be invalid");
        assert_eq!(set.issues.len(), 1, "{label}={value:?}");
        let issue = &set.issues[0];
        assert_eq!(issue.label, *label);
        assert_eq!(issue.kind, LabelIssueKind::Invalid);
        assert!(
            issue.reason.contains(reason),
            "{label}={value:?}: `{}` lacks `{reason}`",
            issue.reason
        );
    }
}

#[test]
fn an_auth_error_never_echoes_the_value() {
    let set = port0(&[("HAPROXY_0_AUTH", "realm:user:hunter2")]);
    assert!(!set.issues[0].reason.contains("hunter2"));
}

#[test]
fn booleans_accept_marathon_lb_words() {
    for v in ["true", "TRUE", "t", "yes", "Y", "1"] {
        assert!(port0(&[("HAPROXY_0_STICKY", v)]).labels.sticky, "{v}");
    }
    for v in ["false", "f", "no", "N", "0", ""] {
        let set = port0(&[("HAPROXY_0_STICKY", v)]);
        assert!(!set.labels.sticky && set.issues.is_empty(), "{v}");
    }
}

#[test]
fn templates_and_unknown_labels_are_reported_not_fatal() {
    let labels = parse(&[
        ("HAPROXY_0_BACKEND_HEAD", "  option httpchk"),
        ("HAPROXY_0_FRONTEND_HEAD", ""),
        ("HAPROXY_0_BIND_OPTIONS", "ciphers AES128"),
        ("HAPROXY_0_VHOTS", "typo.example.com"),
        ("HAPROXY_1_HTTP_FRONTEND_ACL", "x"),
        ("HAPROXY_HTTP_FRONTEND_ACL", "x"),
        ("HAPROXY_SOMETHING", "x"),
        ("VIP_0", "1.1.1.1:30000"),
        ("team", "shop"),
    ]);
    let p0 = &labels.port(0).unwrap();
    assert!(!p0.is_invalid());
    let kinds: Vec<_> = p0
        .issues
        .iter()
        .map(|i| (i.label.as_str(), i.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "HAPROXY_0_BACKEND_HEAD",
                LabelIssueKind::UnsupportedTemplate
            ),
            ("HAPROXY_0_BIND_OPTIONS", LabelIssueKind::Unsupported),
            (
                "HAPROXY_0_FRONTEND_HEAD",
                LabelIssueKind::UnsupportedTemplate
            ),
            ("HAPROXY_0_VHOTS", LabelIssueKind::Unknown),
        ]
    );
    assert_eq!(
        labels.port(1).unwrap().issues[0].kind,
        LabelIssueKind::UnsupportedTemplate
    );
    let app: Vec<_> = labels
        .issues
        .iter()
        .map(|i| (i.label.as_str(), i.kind))
        .collect();
    assert_eq!(
        app,
        [
            ("HAPROXY_HTTP_FRONTEND_ACL", LabelIssueKind::Unknown),
            ("HAPROXY_SOMETHING", LabelIssueKind::Unknown),
        ]
    );
}

#[test]
fn app_group_and_port_group() {
    let labels = parse(&[
        ("HAPROXY_GROUP", "external,internal"),
        ("HAPROXY_1_GROUP", "internal"),
    ]);
    assert_eq!(
        labels.groups.as_ref().unwrap().iter().collect::<Vec<_>>(),
        ["external", "internal"]
    );
    assert_eq!(
        labels
            .port(1)
            .unwrap()
            .labels
            .groups
            .as_ref()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        ["internal"]
    );
}

#[test]
fn group_matching() {
    let served = Groups::parse("external");
    assert!(Groups::parse("external,internal").served_by(&served));
    assert!(!Groups::parse("internal").served_by(&served));
    assert!(!Groups::default().served_by(&served));
    let all = Groups::parse("*");
    assert!(Groups::default().served_by(&all));
    assert!(Groups::parse("internal").served_by(&all));
    let several = Groups::parse("a, b");
    assert!(Groups::parse("b").served_by(&several));
}

#[test]
fn parsing_is_independent_of_map_order() {
    let pairs = [
        ("HAPROXY_0_BALANCE", "x"),
        ("HAPROXY_0_MODE", "y"),
        ("HAPROXY_0_STICKY", "z"),
        ("HAPROXY_0_BACKEND_HEAD", "w"),
    ];
    let first = parse(&pairs);
    let mut reversed = pairs;
    reversed.reverse();
    assert_eq!(parse(&reversed), first);
}

#[test]
fn port_indexes_in_name_order_are_found_in_index_order() {
    // Name order puts `HAPROXY_10_` before `HAPROXY_1_` and `HAPROXY_2_`.
    let names: Vec<String> = (0..120)
        .map(|i| format!("HAPROXY_{i}_BACKEND_WEIGHT"))
        .collect();
    let pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "7")).collect();
    let mut pairs = pairs;
    pairs.push(("HAPROXY_10_PORT", "10010"));
    let labels = parse(&pairs);
    assert_eq!(
        labels.port_indexes().collect::<Vec<_>>(),
        (0..120).collect::<Vec<_>>()
    );
    let ten = labels.port(10).unwrap();
    assert_eq!(ten.labels.backend_weight, Some(7));
    assert_eq!(
        ten.labels.port,
        Some(10010),
        "both labels of index 10 in one set"
    );
    assert!(labels.port(120).is_none());
}

mod deployment;
