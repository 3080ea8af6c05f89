//! The reader itself, the two stages (a Rust build and a Debian runtime of the same release), the
//! build stage (the release binary from the manifest and sources, its smoke check), and nothing
//! added from remote URLs.

use super::*;

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
