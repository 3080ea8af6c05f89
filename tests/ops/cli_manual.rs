//! The command line's own documentation: `--help` grouped by topic, the man pages and the shell
//! completions generated from the same command the binary parses.

use std::collections::BTreeMap;
use std::process::Command;

use clap::CommandFactory;
use switchyard::cli::Cli;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

fn output(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "switchyard {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Every long option of serve mode, as `--name`.
fn long_options() -> Vec<String> {
    let mut command = Cli::command();
    command.build();
    command
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

/// `--help` read back: each heading (a line ending in `:` at the margin) with the long options
/// listed under it, in order.
fn help_sections(help: &str) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in help.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            sections.push((line.trim_end_matches(':').to_owned(), Vec::new()));
            continue;
        }
        let option = line.trim_start();
        let option = option
            .strip_prefix("-")
            .and_then(|o| o.split_once(", "))
            .map_or(option, |(_, long)| long);
        if line.starts_with("  ") && option.starts_with("--") {
            let name: String = option
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if let Some((_, options)) = sections.last_mut() {
                options.push(name);
            }
        }
    }
    sections
}

#[test]
fn help_groups_the_options_by_topic() {
    let help = output(&["--help"]);
    let sections = help_sections(&help);
    let headings: Vec<&str> = sections.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        headings,
        [
            "Commands",
            "Arguments",
            "Options",
            "Where the apps come from",
            "Logging in to Marathon",
            "Following Marathon",
            "What is routed",
            "Listeners",
            "TLS",
            "Timeouts (seconds)",
            "Limits and engines",
            "Logging",
            "Marathon-LB flags accepted with no effect (they configure HAProxy)",
        ],
        "{help}"
    );
    let under: BTreeMap<&str, &str> = sections
        .iter()
        .flat_map(|(h, options)| options.iter().map(move |o| (o.as_str(), h.as_str())))
        .collect();
    let listed: usize = sections.iter().map(|(_, o)| o.len()).sum();
    assert_eq!(listed, under.len(), "an option is listed twice:\n{help}");
    for option in long_options() {
        assert!(
            under.contains_key(option.as_str()),
            "{option} is not in --help"
        );
    }
    let options: Vec<&str> = sections[2].1.iter().map(String::as_str).collect();
    assert_eq!(
        options,
        ["--config", "--dry", "--help", "--version"],
        "{help}"
    );
    for (option, heading) in [
        ("--marathon", "Where the apps come from"),
        ("--dcos-auth-credentials", "Logging in to Marathon"),
        ("--resync-interval", "Following Marathon"),
        ("--health-check", "What is routed"),
        ("--admin-port", "Listeners"),
        ("--ssl-certs", "TLS"),
        ("--connect-timeout", "Timeouts (seconds)"),
        ("--max-connections", "Limits and engines"),
        ("--access-log", "Logging"),
        ("--log-level", "Logging"),
    ] {
        assert_eq!(under.get(option), Some(&heading), "{option}:\n{help}");
    }
}

#[test]
fn the_man_page_lists_every_option_its_variable_and_the_subcommands() {
    let page = output(&["man"]);
    assert!(page.contains(".TH switchyard 1"), "{page}");
    for option in long_options() {
        let roff = option.replace('-', "\\-");
        assert!(page.contains(&roff), "the man page lacks {option}");
    }
    assert!(
        page.contains("SWITCHYARD_HTTP_PORT"),
        "the variables are named"
    );
    for sub in ["routes", "healthcheck"] {
        assert!(
            page.contains(&format!("switchyard\\-{sub}(1)")),
            "{sub}: {page}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    output(&["man", "--dir", dir.path().to_str().unwrap()]);
    for file in [
        "switchyard.1",
        "switchyard-routes.1",
        "switchyard-healthcheck.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains(".TH switchyard"), "{file}: {text}");
    }
    let routes = std::fs::read_to_string(dir.path().join("switchyard-routes.1")).unwrap();
    assert!(
        routes.contains("\\-\\-json"),
        "routes' own options: {routes}"
    );
}

/// What bash offers after `words` (the last one being completed), with the generated script.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            r#"source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1));
               _switchyard switchyard "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}";
               printf '%s\n' "${COMPREPLY[@]}""#,
        )
        .arg("_")
        .arg(script)
        .args(words)
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_options_from_the_generated_script() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("switchyard.bash");
    std::fs::write(&script, output(&["completions", "bash"])).unwrap();
    assert_eq!(bash_completes(&script, &["switchyard", "rou"]), ["routes"]);
    assert_eq!(
        bash_completes(&script, &["switchyard", "health"]),
        ["healthcheck"]
    );
    assert_eq!(
        bash_completes(&script, &["switchyard", "--http"]),
        ["--http-port", "--https-port"]
    );
    assert_eq!(
        bash_completes(&script, &["switchyard", "routes", "--js"]),
        ["--json"]
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = output(&["completions", shell]);
        assert!(script.contains("healthcheck"), "{shell}: {script}");
    }
}
