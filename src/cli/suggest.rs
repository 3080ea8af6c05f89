//! "Did you mean": the word clap took for Marathon-LB's mode that is a mistyped subcommand, and
//! a config file key that names no option. Similar means what clap's own suggestions mean
//! (Jaro similarity above 0.7).

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Command;

/// Marathon-LB's first word.
const MODES: [&str; 2] = ["sse", "poll"];

/// The most similar of `candidates`, if any is similar enough.
fn similar<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro(word, c), c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Any word that is not a subcommand lands on the `[sse|poll]` positional, and clap reports it
/// as a bad mode. A word nearer a subcommand than a mode (`route`, `version`) is reported as an
/// unknown subcommand, with the nearest subcommand or the flag of that name. `None` leaves
/// `err` as clap made it.
pub(super) fn unknown_first_word(err: &clap::Error, built: &Command) -> Option<clap::Error> {
    if err.kind() != ErrorKind::InvalidValue {
        return None;
    }
    let mode = built.get_positionals().find(|a| a.get_id() == "mode")?;
    match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(shown)) if *shown == mode.to_string() => {}
        _ => return None,
    }
    let Some(ContextValue::String(word)) = err.get(ContextKind::InvalidValue) else {
        return None;
    };
    if similar(word, MODES).is_some() {
        return None;
    }
    // A subcommand after an option: clap takes any option as serve mode's, and serve mode has
    // no subcommands.
    if built.find_subcommand(word).is_some() {
        let message = format!(
            "`{word}` must come first: options before it are serve mode's \
             (`switchyard {word} --config FILE ...`)"
        );
        return Some(built.clone().error(ErrorKind::ArgumentConflict, message));
    }
    let mut unknown = clap::Error::new(ErrorKind::InvalidSubcommand).with_cmd(built);
    let names = built
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(Command::get_name);
    if let Some(name) = similar(word, names) {
        let suggested = ContextValue::Strings(vec![name.to_owned()]);
        unknown.insert(ContextKind::SuggestedSubcommand, suggested);
    } else if built.get_arguments().any(|a| a.get_long() == Some(word)) {
        let flag = ContextValue::String(format!("--{word}"));
        unknown.insert(ContextKind::SuggestedArg, flag);
    }
    unknown.insert(
        ContextKind::InvalidSubcommand,
        ContextValue::String(word.clone()),
    );
    let usage = built.clone().render_usage();
    unknown.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
    Some(unknown)
}

/// The message for a config file key that names no option of `command`.
pub(super) fn unknown_key(key: &str, command: &Command) -> String {
    let options = command
        .get_arguments()
        .filter(|a| !a.is_positional() && a.get_id() != "config")
        .filter_map(|a| a.get_long());
    match similar(&key.replace('_', "-"), options) {
        Some(option) => {
            format!("unknown option `{key}`\n\n  tip: a similar option exists: `{option}`")
        }
        None => format!(
            "unknown option `{key}` (keys are the long option names, as in config/switchyard.toml)"
        ),
    }
}
