//! The container image's recipe, checked without Docker: the `Dockerfile` is read with a small
//! line-based reader (comments dropped, `\` continuations joined, each instruction split into its
//! keyword and arguments) and held against the crate itself: the manifest it builds from, the
//! CLI its CMD and EXPOSE must agree with, and the `.dockerignore` that must not hide its inputs.
//!
//! The reader and the helpers on its instructions are here; the checks are in `build_stage`,
//! `runtime_stage` and `dockerignore`.

use std::collections::BTreeSet;
use std::path::Path;

use clap::Parser;
use switchyard::cli::{Cli, Command, SourceMode};

mod build_stage;
mod dockerignore;
mod runtime_stage;

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
