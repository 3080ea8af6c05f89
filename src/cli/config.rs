//! Options from three places besides the command line: a TOML file (`--config`), `SWITCHYARD_*`
//! environment variables, and the built-in defaults. Precedence: flag > environment > file >
//! default. The file's values become the options' defaults and each option reads
//! `SWITCHYARD_<NAME>`, so clap applies the precedence; a bad value is reported under the name
//! it was given by (the flag, the variable, or the file's key).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::builder::{FalseyValueParser, ValueParser};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};

use super::{suggest, Cli};

/// Subcommands that take the balancer's own options from the same variables and file, so that
/// they see the source, the ports and the groups the balancer sees.
const SHARE_OPTIONS: [&str; 2] = ["routes", "healthcheck"];

/// The keys a config file set: option id → the key as written.
struct FileKeys {
    path: PathBuf,
    keys: HashMap<String, String>,
}

/// Parses the command line with the environment and the config file. Errors name the option,
/// the file key or the environment variable.
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let mut command = command();
    let mut file = None;
    if let Some(path) = config_path(&args) {
        let (with_values, keys) = with_file(command, &path)?;
        command = with_values;
        file = Some(FileKeys { path, keys });
    }
    let matches: ArgMatches = command
        .clone()
        .try_get_matches_from(&args)
        .map_err(|err| explain(err, &command, &args, file.as_ref()))?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
    needs_source(&cli, &mut command)?;
    Ok(cli)
}

/// The command as the binary parses it: every named option also reads `SWITCHYARD_<ID>` (an
/// option that already reads a variable, such as `DCOS_SERVICE_ACCOUNT_CREDENTIAL`, keeps it),
/// and so do the balancer's options where a subcommand shares them. Help, completions and man
/// pages are made from it, so they name the variables.
pub fn command() -> Command {
    let top = Cli::command().mut_args(with_env);
    let balancer: Vec<String> = top
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    on_shared(top, |c| {
        c.mut_args(
            |arg| match balancer.iter().any(|id| arg.get_id() == id.as_str()) {
                true => with_env(arg),
                false => arg,
            },
        )
    })
}

/// `change` applied to the top-level command and to the subcommands that share its options.
fn on_shared(command: Command, change: impl Fn(Command) -> Command) -> Command {
    // `mut_subcommands`, not `mut_subcommand`: that one moves the subcommand to the end.
    change(command).mut_subcommands(|sub| match SHARE_OPTIONS.contains(&sub.get_name()) {
        true => change(sub),
        false => sub,
    })
}

fn with_env(arg: Arg) -> Arg {
    if arg.is_positional() || arg.get_env().is_some() || arg.get_id() == "help" {
        return arg;
    }
    let name = format!("SWITCHYARD_{}", arg.get_id().as_str().to_uppercase());
    arg.env(name)
}

/// `--config FILE`, `--config=FILE` or `SWITCHYARD_CONFIG`.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let arg = arg.to_string_lossy();
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("SWITCHYARD_CONFIG").map(PathBuf::from)
}

/// The file's values as the options' defaults. Keys are option names (`http-port` or
/// `http_port`); an unknown key (with the nearest option) or a value of a type options cannot
/// take is an error.
fn with_file(
    mut command: Command,
    path: &Path,
) -> Result<(Command, HashMap<String, String>), clap::Error> {
    let error = |kind: ErrorKind, message: String| {
        clap::Error::raw(kind, format!("{}: {message}\n", path.display()))
    };
    let invalid = |message: String| error(ErrorKind::InvalidValue, message);
    let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| invalid(format!("not TOML: {e}")))?;
    let mut keys = HashMap::new();
    for (key, value) in table {
        let id = key.replace('-', "_");
        let known = command
            .get_arguments()
            .any(|a| a.get_id() == id.as_str() && !a.is_positional() && id != "config");
        if !known {
            return Err(error(
                ErrorKind::UnknownArgument,
                suggest::unknown_key(&key, &command),
            ));
        }
        let values: Vec<String> = match value {
            toml::Value::Array(items) => items
                .into_iter()
                .map(scalar)
                .collect::<Option<_>>()
                .ok_or_else(|| invalid(format!("`{key}`: a list may hold only plain values")))?,
            other => {
                vec![scalar(other).ok_or_else(|| invalid(format!("`{key}`: not a plain value")))?]
            }
        };
        command = on_shared(command, |c| {
            let has = c.get_arguments().any(|a| a.get_id() == id.as_str());
            match has {
                true => c.mut_arg(&id, |arg| arg.default_values(values.clone())),
                false => c,
            }
        });
        keys.insert(id, key);
    }
    Ok((command, keys))
}

fn scalar(value: toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A parse error, said better where clap cannot know better: a word that is neither a
/// subcommand nor Marathon-LB's mode, and a bad value that came from a variable or the file.
fn explain(
    err: clap::Error,
    command: &Command,
    args: &[OsString],
    file: Option<&FileKeys>,
) -> clap::Error {
    if !matches!(
        err.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return err;
    }
    let mut built = command.clone();
    built.build();
    match suggest::unknown_first_word(&err, &built) {
        Some(unknown) => unknown,
        None => name_origin(err, &built, command, args, file),
    }
}

/// clap reports a bad value under the flag's name wherever it came from; this names the
/// variable (`SWITCHYARD_HTTP_PORT`) or the file and key (`http-port in /etc/switchyard.toml`).
/// Where it came from is asked of a second parse that takes any value.
fn name_origin(
    mut err: clap::Error,
    built: &Command,
    command: &Command,
    args: &[OsString],
    file: Option<&FileKeys>,
) -> clap::Error {
    let Some(ContextValue::String(shown)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    let shown = shown.clone();
    let lenient = on_shared(command.clone(), |c| c.mut_args(any_value));
    let Ok(matches) = lenient.try_get_matches_from(args) else {
        return err;
    };
    let mut levels = Vec::new();
    if let Some((name, sub_matches)) = matches.subcommand() {
        levels.extend(built.find_subcommand(name).map(|sub| (sub, sub_matches)));
    }
    levels.push((built, &matches));
    for (cmd, found) in levels {
        let Some(arg) = cmd.get_arguments().find(|a| a.to_string() == shown) else {
            continue;
        };
        let id = arg.get_id().as_str();
        if !found.ids().any(|i| i.as_str() == id) {
            continue;
        }
        let origin = match found.value_source(id) {
            Some(ValueSource::EnvVariable) => arg.get_env().map(|e| e.to_string_lossy().into()),
            Some(ValueSource::DefaultValue) => file.and_then(|f| {
                let key = f.keys.get(id)?;
                Some(format!("{key} in {}", f.path.display()))
            }),
            _ => None,
        };
        if let Some(origin) = origin {
            err.insert(ContextKind::InvalidArg, ContextValue::String(origin));
        }
        break;
    }
    err
}

/// An option that takes any value: only where values came from is asked of this parse.
fn any_value(arg: Arg) -> Arg {
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => arg.value_parser(FalseyValueParser::new()),
        action if action.takes_values() => arg.value_parser(ValueParser::os_string()),
        _ => arg,
    }
}

/// `switchyard routes` and `--dry` read the apps from somewhere. Checked here rather than with
/// clap's `required`, which does not count a value from the config file.
fn needs_source(cli: &Cli, command: &mut Command) -> Result<(), clap::Error> {
    let (name, missing) = match &cli.command {
        Some(super::Command::Routes(a)) => (
            Some("routes"),
            a.apps_file.is_none() && a.access.marathon.is_empty(),
        ),
        None => (
            None,
            cli.serve.dry && cli.serve.apps_file.is_none() && cli.serve.access.marathon.is_empty(),
        ),
        Some(_) => return Ok(()),
    };
    if !missing {
        return Ok(());
    }
    command.build();
    let message = "the apps come from --marathon URL or --apps-file FILE (or SWITCHYARD_MARATHON, \
                   SWITCHYARD_APPS_FILE, or `marathon` or `apps-file` in --config): give one";
    let command = match name.and_then(|n| command.find_subcommand_mut(n)) {
        Some(sub) => sub,
        None => command,
    };
    Err(command.error(ErrorKind::MissingRequiredArgument, message))
}
