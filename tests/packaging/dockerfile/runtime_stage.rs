//! The runtime stage: the binary at the exec-form entrypoint, CMD as Marathon-LB's Universe
//! arguments, EXPOSE and HEALTHCHECK (the binary's own subcommand) agreeing with the CLI, a slim
//! image with CA certificates and no curl, and a user that can bind the default ports.

use super::*;

#[test]
fn the_runtime_copies_the_binary_to_the_exec_form_entrypoint() {
    let stages = dockerfile();
    let (build, runtime) = (&stages[0], &stages[stages.len() - 1]);
    let entrypoints: Vec<_> = runtime.all("ENTRYPOINT").collect();
    assert_eq!(entrypoints.len(), 1, "one ENTRYPOINT in the runtime stage");
    assert_eq!(
        exec_form("ENTRYPOINT", &entrypoints[0].1.args),
        [ENTRYPOINT]
    );
    assert!(
        !build
            .all("ENV")
            .any(|(_, env)| env.args.contains("CARGO_TARGET_DIR")),
        "CARGO_TARGET_DIR moves the binary away from <WORKDIR>/target"
    );
    let workdir = build
        .all("WORKDIR")
        .last()
        .map_or("/".to_owned(), |(_, w)| w.args.clone());
    let built = format!(
        "{}/target/release/switchyard",
        workdir.trim_end_matches('/')
    );
    let copied = runtime.all("COPY").any(|(_, copy)| {
        let (flags, sources, dest) = copy_parts(copy);
        flag(&flags, "from") == build.name.as_deref()
            && sources == [built.as_str()]
            && dest == ENTRYPOINT
    });
    assert!(
        copied,
        "the runtime stage has no `COPY --from=build {built} {ENTRYPOINT}`"
    );
}

#[test]
fn cmd_is_marathon_lb_universe_arguments_and_the_cli_accepts_them() {
    let stages = dockerfile();
    let runtime = &stages[stages.len() - 1];
    let cmds: Vec<_> = runtime.all("CMD").collect();
    assert_eq!(cmds.len(), 1, "one CMD in the runtime stage");
    let cmd = exec_form("CMD", &cmds[0].1.args);
    assert_eq!(cmd, UNIVERSE_ARGS);
    let argv = std::iter::once(ENTRYPOINT.to_owned()).chain(cmd);
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("the CLI rejects CMD: {e}"));
    assert!(cli.command.is_none(), "CMD runs the balancer (serve mode)");
    assert_eq!(cli.serve.mode, Some(SourceMode::Sse));
    assert_eq!(cli.serve.access.marathon, ["http://marathon.mesos:8080"]);
    assert!(cli.serve.routing.health_check && !cli.serve.routing.no_health_check);
    assert_eq!(cli.serve.routing.group, ["external"]);
    assert!(cli.serve.apps_file.is_none());
}

#[test]
fn exposed_ports_are_the_cli_default_ports() {
    let stages = dockerfile();
    let runtime = &stages[stages.len() - 1];
    let exposed: BTreeSet<u16> = runtime
        .all("EXPOSE")
        .flat_map(|(_, e)| e.args.split_whitespace())
        .map(|port| {
            port.strip_suffix("/tcp")
                .unwrap_or(port)
                .parse()
                .unwrap_or_else(|e| panic!("EXPOSE {port}: {e} (TCP ports only)"))
        })
        .collect();
    let routing = defaults().serve.routing;
    let expected = BTreeSet::from([
        routing.http_port,
        routing.https_port,
        routing.admin_port,
        routing.app_id_port,
    ]);
    assert_eq!(
        exposed, expected,
        "EXPOSE lists --http-port, --https-port, --admin-port, --app-id-port defaults"
    );
}

#[test]
fn the_healthcheck_is_the_binary_asking_the_admin_port_without_curl() {
    let stages = dockerfile();
    let runtime = &stages[stages.len() - 1];
    let checks: Vec<_> = runtime.all("HEALTHCHECK").collect();
    assert_eq!(checks.len(), 1, "one HEALTHCHECK in the runtime stage");
    let args = &checks[0].1.args;
    let (options, command) = args
        .split_once("CMD")
        .unwrap_or_else(|| panic!("HEALTHCHECK {args}: no CMD"));
    let mut docker_timeout = 30.0;
    for option in options.split_whitespace() {
        let (name, value) = option
            .strip_prefix("--")
            .and_then(|o| o.split_once('='))
            .unwrap_or_else(|| panic!("HEALTHCHECK option `{option}` is not --name=value"));
        assert!(
            matches!(
                name,
                "interval" | "timeout" | "start-period" | "start-interval" | "retries"
            ),
            "HEALTHCHECK option `{option}` is not one Docker knows"
        );
        if name == "timeout" {
            docker_timeout = value
                .strip_suffix('s')
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("HEALTHCHECK --timeout={value}: not seconds"));
        }
    }
    let command = exec_form("HEALTHCHECK CMD", command.trim());
    assert_eq!(
        command[0], ENTRYPOINT,
        "the health check is the balancer's own binary (no curl in the image)"
    );
    let cli = Cli::try_parse_from(&command)
        .unwrap_or_else(|e| panic!("the CLI rejects the health check {command:?}: {e}"));
    let Some(Command::Healthcheck(check)) = cli.command else {
        panic!("the health check {command:?} is not `switchyard healthcheck`");
    };
    assert_eq!(
        check.admin_port,
        defaults().serve.routing.admin_port,
        "the health check asks the default admin port"
    );
    assert!(
        !check.ready,
        "Marathon-LB's check is /_haproxy_health_check (the process serves), not /readyz"
    );
    assert!(
        check.timeout < docker_timeout,
        "the subcommand's --timeout {} must end before Docker's {docker_timeout}s, so its reason \
         is printed",
        check.timeout
    );
    let installed: BTreeSet<String> = apt_installs(runtime)
        .iter()
        .flat_map(|(install, _)| packages(install))
        .collect();
    assert!(
        !installed.contains("curl"),
        "the runtime installs curl, which nothing needs"
    );
}

#[test]
fn the_runtime_is_slim_and_has_ca_certificates() {
    let stages = dockerfile();
    let runtime = &stages[stages.len() - 1];
    assert!(
        !runtime.base.starts_with("rust"),
        "the runtime must not be a Rust toolchain image"
    );
    let installs = apt_installs(runtime);
    assert!(!installs.is_empty(), "the runtime installs no packages");
    let mut installed = BTreeSet::new();
    for (install, run) in &installs {
        assert!(
            install.iter().any(|w| w == "--no-install-recommends"),
            "`{}` pulls in recommended packages",
            install.join(" ")
        );
        assert!(
            install.iter().any(|w| w == "-y" || w == "--yes"),
            "`{}` would wait for an answer",
            install.join(" ")
        );
        let in_run = |words: &[&str]| {
            run.iter()
                .any(|c| c.iter().map(String::as_str).eq(words.iter().copied()))
        };
        assert!(
            in_run(&["apt-get", "update"]),
            "apt-get update is not in the same RUN as `{}`",
            install.join(" ")
        );
        assert!(
            in_run(&["rm", "-rf", "/var/lib/apt/lists/*"]),
            "the RUN with `{}` leaves the apt lists in the image",
            install.join(" ")
        );
        installed.extend(packages(install));
    }
    assert!(
        installed.contains("ca-certificates"),
        "installed: {installed:?}"
    );
    for package in &installed {
        assert!(
            !package.ends_with("-dev")
                && ![
                    "build-essential",
                    "gcc",
                    "g++",
                    "make",
                    "cargo",
                    "rustc",
                    "pkg-config",
                    "git",
                ]
                .contains(&package.as_str()),
            "the runtime installs the build tool {package}"
        );
    }
}

#[test]
fn the_runtime_user_can_bind_the_default_ports() {
    // Root, as Marathon-LB's image: ports 80 and 443 need root or CAP_NET_BIND_SERVICE.
    let stages = dockerfile();
    let runtime = &stages[stages.len() - 1];
    let user = runtime.all("USER").last().map(|(_, u)| u.args.clone());
    let root = user
        .as_deref()
        .is_none_or(|u| matches!(u.split(':').next(), Some("root" | "0")));
    let routing = defaults().serve.routing;
    assert!(
        root || (routing.http_port > 1023 && routing.https_port > 1023),
        "USER {user:?} cannot bind the default ports {} and {}",
        routing.http_port,
        routing.https_port
    );
}
