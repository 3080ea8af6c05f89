//! The container image's recipe, checked without Docker: the `Dockerfile` is read with a small
//! line-based reader (comments dropped, `\` continuations joined, each instruction split into its
//! keyword and arguments) and held against the crate itself: the manifest it builds from, the
//! CLI its CMD and EXPOSE must agree with, and the `.dockerignore` that must not hide its inputs.

use std::collections::BTreeSet;
use std::path::Path;

use clap::Parser;
use switchyard::cli::{Cli, SourceMode};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const ENTRYPOINT: &str = "/usr/local/bin/switchyard";
/// Marathon-LB's Universe package starts it with these arguments.
const UNIVERSE_ARGS: [&str; 6] = [
    "sse",
    "-m",
    "http://marathon.mesos:8080",
    "--health-check",
    "--group",
    "external",
];

// ---- the reader -----------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Instruction {
    /// 1-based line where the instruction starts.
    line: usize,
    /// Upper case: `FROM`, `RUN`, ...
    keyword: String,
    args: String,
}

#[derive(Debug)]
struct Stage {
    base: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = (usize, &'a Instruction)> + 'a {
        self.instructions
            .iter()
            .enumerate()
            .filter(move |(_, i)| i.keyword == keyword)
    }
}

fn read(name: &str) -> String {
    let path = Path::new(ROOT).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Comment and blank lines are dropped (also inside a continuation, as Docker does); a line
/// ending in `\` continues on the next.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (body, continues) = match trimmed.strip_suffix('\\') {
            Some(body) => (body.trim_end(), true),
            None => (trimmed, false),
        };
        match &mut current {
            Some((_, joined)) => {
                joined.push(' ');
                joined.push_str(body);
            }
            None => current = Some((index + 1, body.to_owned())),
        }
        if !continues {
            let (line, joined) = current.take().expect("an instruction in progress");
            let (keyword, args) = joined
                .split_once(char::is_whitespace)
                .unwrap_or((joined.as_str(), ""));
            out.push(Instruction {
                line,
                keyword: keyword.to_ascii_uppercase(),
                args: args.trim().to_owned(),
            });
        }
    }
    assert!(
        current.is_none(),
        "the Dockerfile ends inside a `\\` continuation"
    );
    out
}

fn stages(instructions: Vec<Instruction>) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions {
        if instruction.keyword == "FROM" {
            let (_, words) = flags(&instruction.args);
            let (base, name) = match words.as_slice() {
                [base] => (base.clone(), None),
                [base, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    (base.clone(), Some(name.clone()))
                }
                _ => panic!(
                    "line {}: cannot read `FROM {}`",
                    instruction.line, instruction.args
                ),
            };
            stages.push(Stage {
                base,
                name,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(instruction);
        } else {
            assert_eq!(
                instruction.keyword, "ARG",
                "line {}: only ARG may come before the first FROM",
                instruction.line
            );
        }
    }
    stages
}

fn dockerfile() -> Vec<Stage> {
    stages(instructions(&read("Dockerfile")))
}

/// Leading `--name=value` options, then the remaining words.
fn flags(args: &str) -> (Vec<String>, Vec<String>) {
    let mut words = args.split_whitespace().map(str::to_owned).peekable();
    let mut flags = Vec::new();
    while let Some(flag) = words.next_if(|w| w.starts_with("--")) {
        flags.push(flag);
    }
    (flags, words.collect())
}

fn flag<'a>(flags: &'a [String], name: &str) -> Option<&'a str> {
    flags
        .iter()
        .find_map(|f| f.strip_prefix(&format!("--{name}=")))
}

/// The JSON-array ("exec") form of ENTRYPOINT, CMD, HEALTHCHECK CMD, COPY.
fn exec_form(what: &str, args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| {
        panic!("{what} must be in exec form (a JSON array of strings), not `{args}`: {e}")
    })
}

/// The commands of a RUN's shell line, split at `&&`, `||` and `;`.
fn shell_commands(args: &str) -> Vec<Vec<String>> {
    args.split("&&")
        .flat_map(|part| part.split("||"))
        .flat_map(|part| part.split(';'))
        .map(|command| command.split_whitespace().map(str::to_owned).collect())
        .filter(|words: &Vec<String>| !words.is_empty())
        .collect()
}

/// COPY or ADD: options, sources, destination.
fn copy_parts(instruction: &Instruction) -> (Vec<String>, Vec<String>, String) {
    let (flags, words) = flags(&instruction.args);
    let mut paths = if words.first().is_some_and(|w| w.starts_with('[')) {
        exec_form(&instruction.keyword, &words.join(" "))
    } else {
        words
    };
    let dest = paths.pop().unwrap_or_default();
    assert!(
        !paths.is_empty(),
        "line {}: {} needs a source and a destination",
        instruction.line,
        instruction.keyword
    );
    (flags, paths, dest)
}

/// `./src/` → `src`; `.` stays.
fn normalize(path: &str) -> String {
    let path = path.trim_start_matches("./").trim_end_matches('/');
    if path.is_empty() {
        ".".to_owned()
    } else {
        path.to_owned()
    }
}

/// Context sources of the stage's COPY instructions (not `--from`), with their positions.
fn context_copies(stage: &Stage) -> Vec<(usize, String)> {
    let mut copies = Vec::new();
    for (at, copy) in stage.all("COPY") {
        let (flags, sources, _) = copy_parts(copy);
        if flag(&flags, "from").is_none() {
            copies.extend(sources.iter().map(|s| (at, normalize(s))));
        }
    }
    copies
}

fn covers(source: &str, path: &str) -> bool {
    source == "." || source == path || path.starts_with(&format!("{source}/"))
}

fn cargo_toml() -> toml::Table {
    read("Cargo.toml")
        .parse()
        .expect("Cargo.toml is valid TOML")
}

fn defaults() -> Cli {
    Cli::try_parse_from(["switchyard", "--apps-file", "x"]).expect("the CLI parses its defaults")
}

/// The commands in the stage that install Debian packages, with the whole RUN they are in.
fn apt_installs(stage: &Stage) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    stage
        .all("RUN")
        .flat_map(|(_, run)| {
            let commands = shell_commands(&run.args);
            commands
                .iter()
                .filter(|c| c.len() > 1 && c[0] == "apt-get" && c.contains(&"install".to_owned()))
                .map(|c| (c.clone(), commands.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn packages(install: &[String]) -> BTreeSet<String> {
    install
        .iter()
        .skip_while(|w| *w != "install")
        .skip(1)
        .filter(|w| !w.starts_with('-'))
        .cloned()
        .collect()
}

// ---- .dockerignore ----------------------------------------------------------------------------

/// Docker's rules: the last matching pattern wins, `!` re-includes, a pattern matching a parent
/// directory matches everything below it; `*` and `?` stay within a path segment, `**` spans any
/// number of segments.
struct DockerIgnore {
    patterns: Vec<(bool, Vec<String>)>,
}

impl DockerIgnore {
    fn read() -> DockerIgnore {
        let patterns = read(".dockerignore")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (negated, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                assert!(
                    !pattern.contains(['[', '\\']),
                    ".dockerignore pattern `{pattern}`: this reader knows only *, ? and **"
                );
                let segments = pattern
                    .trim_start_matches('/')
                    .trim_end_matches('/')
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .map(str::to_owned)
                    .collect();
                (negated, segments)
            })
            .collect();
        DockerIgnore { patterns }
    }

    fn excludes(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for (negated, pattern) in &self.patterns {
            let pattern: Vec<&str> = pattern.iter().map(String::as_str).collect();
            if (1..=segments.len()).any(|n| glob(&pattern, &segments[..n])) {
                excluded = !negated;
            }
        }
        excluded
    }
}

fn glob(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            glob(&pattern[1..], path) || (!path.is_empty() && glob(pattern, &path[1..]))
        }
        (Some(p), Some(s)) => {
            segment(p.as_bytes(), s.as_bytes()) && glob(&pattern[1..], &path[1..])
        }
        _ => false,
    }
}

fn segment(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            segment(&pattern[1..], text) || (!text.is_empty() && segment(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => segment(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) => p == t && segment(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// Every file under `relative` (itself if a file), as `/`-separated paths from the crate root.
fn files_under(relative: &str) -> Vec<String> {
    let path = Path::new(ROOT).join(relative);
    if path.is_file() {
        return vec![relative.to_owned()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        let name = entry.expect("a directory entry").file_name();
        files.extend(files_under(&format!(
            "{relative}/{}",
            name.to_string_lossy()
        )));
    }
    files
}

// ---- the checks ---------------------------------------------------------------------------------

#[test]
fn the_reader_joins_continuations_and_drops_comments() {
    let read = instructions(
        "# syntax=docker/dockerfile:1\nFROM a AS b\nrun one \\\n  # a comment\n    && two\n\nCMD [\"x\"]\n",
    );
    let summary: Vec<(usize, &str, &str)> = read
        .iter()
        .map(|i| (i.line, i.keyword.as_str(), i.args.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (2, "FROM", "a AS b"),
            (3, "RUN", "one && two"),
            (7, "CMD", "[\"x\"]")
        ]
    );
}

#[test]
fn two_stages_a_rust_build_and_a_debian_runtime_of_the_same_release() {
    let stages = dockerfile();
    assert_eq!(
        stages.len(),
        2,
        "expected a build stage and a runtime stage, found {}",
        stages.len()
    );
    let (build, runtime) = (&stages[0], &stages[1]);
    assert_eq!(
        build.name.as_deref(),
        Some("build"),
        "the first stage is `FROM ... AS build`"
    );
    let manifest = cargo_toml();
    let rust_version = manifest["package"]["rust-version"]
        .as_str()
        .expect("Cargo.toml declares package.rust-version");
    let release = build
        .base
        .strip_prefix(&format!("rust:{rust_version}-slim-"))
        .unwrap_or_else(|| {
            panic!(
                "the build stage's image `{}` is not rust:{rust_version}-slim-<debian release> \
                 (the crate's rust-version)",
                build.base
            )
        });
    assert_eq!(
        runtime.base,
        format!("debian:{release}-slim"),
        "the runtime is the build's Debian release, so the binary's glibc is there"
    );
}

#[test]
fn the_build_stage_builds_the_release_binary_from_the_manifest_and_sources() {
    let stages = dockerfile();
    let build = &stages[0];
    let builds: Vec<(usize, Vec<String>)> = build
        .all("RUN")
        .flat_map(|(at, run)| {
            shell_commands(&run.args)
                .into_iter()
                .filter(|c| c.starts_with(&["cargo".to_owned(), "build".to_owned()]))
                .map(move |c| (at, c))
        })
        .collect();
    assert!(!builds.is_empty(), "the build stage never runs cargo build");
    for (_, command) in &builds {
        let has = |word: &str| command.iter().any(|w| w == word);
        assert!(
            has("--release") && has("--locked"),
            "`{}` lacks --release or --locked",
            command.join(" ")
        );
        assert!(
            command
                .windows(2)
                .any(|w| w[0] == "--bin" && w[1] == "switchyard")
                || has("--bin=switchyard"),
            "`{}` does not name the switchyard binary",
            command.join(" ")
        );
    }
    let first_build = builds[0].0;
    let last_build = builds[builds.len() - 1].0;
    let copies = context_copies(build);
    let copied_before = |path: &str, at: usize| {
        copies
            .iter()
            .any(|(copy_at, source)| *copy_at < at && covers(source, path))
    };
    for file in ["Cargo.toml", "Cargo.lock"] {
        assert!(
            copied_before(file, first_build),
            "{file} is not copied before cargo first runs"
        );
    }
    // Cargo refuses a manifest whose declared targets' files are missing.
    let manifest = cargo_toml();
    for (kind, dir) in [
        ("bench", "benches"),
        ("test", "tests"),
        ("example", "examples"),
    ] {
        for target in manifest
            .get(kind)
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
        {
            let name = target["name"].as_str().expect("a target name");
            let path = target
                .get("path")
                .and_then(|p| p.as_str())
                .map_or_else(|| format!("{dir}/{name}.rs"), normalize);
            assert!(
                Path::new(ROOT).join(&path).is_file(),
                "[[{kind}]] {name}: {path} does not exist"
            );
            assert!(
                copied_before(&path, first_build),
                "[[{kind}]] {name}: {path} is not copied before cargo first runs, so the \
                 manifest does not load"
            );
        }
    }
    assert!(
        copied_before("src/main.rs", last_build) && copied_before("src/lib.rs", last_build),
        "the last cargo build runs before the real sources are copied"
    );
    for (_, source) in &copies {
        assert!(
            Path::new(ROOT).join(source).exists(),
            "COPY {source}: no such file in the crate"
        );
    }
}

#[test]
fn the_build_stage_smoke_check_passes() {
    let stages = dockerfile();
    let checks_version = stages[0].all("RUN").any(|(_, run)| {
        shell_commands(&run.args)
            .iter()
            .any(|c| c.len() == 2 && c[0].ends_with("/release/switchyard") && c[1] == "--version")
    });
    assert!(
        checks_version,
        "the build stage does not run the built binary with --version"
    );
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--version")
        .output()
        .expect("the binary runs");
    assert!(status.status.success(), "switchyard --version: {status:?}");
}

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
fn the_healthcheck_asks_the_admin_port_for_marathon_lb_health_check() {
    let stages = dockerfile();
    let runtime = &stages[stages.len() - 1];
    let checks: Vec<_> = runtime.all("HEALTHCHECK").collect();
    assert_eq!(checks.len(), 1, "one HEALTHCHECK in the runtime stage");
    let args = &checks[0].1.args;
    let (options, command) = args
        .split_once("CMD")
        .unwrap_or_else(|| panic!("HEALTHCHECK {args}: no CMD"));
    for option in options.split_whitespace() {
        let name = option
            .strip_prefix("--")
            .and_then(|o| o.split_once('='))
            .map(|(name, _)| name);
        assert!(
            matches!(
                name,
                Some("interval" | "timeout" | "start-period" | "start-interval" | "retries")
            ),
            "HEALTHCHECK option `{option}` is not one Docker knows"
        );
    }
    let command = exec_form("HEALTHCHECK CMD", command.trim());
    let admin_port = defaults().serve.routing.admin_port;
    let url = format!("http://127.0.0.1:{admin_port}/_haproxy_health_check");
    assert!(
        command.contains(&url),
        "the health check does not ask {url}: {command:?}"
    );
    assert_eq!(command[0], "curl", "the health check runs curl");
    assert!(
        command
            .iter()
            .any(|a| a == "--fail"
                || (a.starts_with('-') && !a.starts_with("--") && a.contains('f'))),
        "curl without -f succeeds on HTTP errors: {command:?}"
    );
    let installed: BTreeSet<String> = apt_installs(runtime)
        .iter()
        .flat_map(|(install, _)| packages(install))
        .collect();
    assert!(
        installed.contains("curl"),
        "the health check needs curl, which the runtime does not install"
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
fn nothing_is_added_from_remote_urls() {
    for stage in dockerfile() {
        for (_, add) in stage.all("ADD") {
            let (_, sources, _) = copy_parts(add);
            for source in sources {
                let lower = source.to_ascii_lowercase();
                assert!(
                    !(lower.contains("://")
                        || lower.starts_with("git@")
                        || lower.ends_with(".git")),
                    "line {}: ADD {source} fetches from the network",
                    add.line
                );
            }
        }
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

#[test]
fn dockerignore_excludes_target_and_keeps_every_build_input() {
    let ignore = DockerIgnore::read();
    for path in ["target", "target/release/switchyard", ".git", ".git/HEAD"] {
        assert!(
            ignore.excludes(path),
            ".dockerignore does not exclude {path}"
        );
    }
    let stages = dockerfile();
    let mut checked = 0;
    for stage in &stages {
        for (_, source) in context_copies(stage) {
            if source == "." {
                continue;
            }
            for file in files_under(&source) {
                assert!(
                    !ignore.excludes(&file),
                    ".dockerignore excludes {file}, which the Dockerfile copies"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 0,
        "no build inputs found to check against .dockerignore"
    );
}

#[test]
fn the_dockerignore_matcher_follows_docker_rules() {
    let ignore = DockerIgnore {
        patterns: vec![
            (false, vec!["docs".to_owned()]),
            (false, vec!["**".to_owned(), "*.swp".to_owned()]),
            (true, vec!["docs".to_owned(), "keep.md".to_owned()]),
            (false, vec!["a?c".to_owned()]),
        ],
    };
    assert!(ignore.excludes("docs/x.png"));
    assert!(!ignore.excludes("docs/keep.md"));
    assert!(ignore.excludes("src/deep/file.swp"));
    assert!(ignore.excludes("abc/x"));
    assert!(!ignore.excludes("abbc"));
    assert!(!ignore.excludes("src/main.rs"));
}
