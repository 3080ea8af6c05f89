//! Options from three places besides the command line: a TOML file (`--config`), `SWITCHYARD_*`
//! environment variables, and the built-in defaults. Precedence: flag > environment > file >
//! default. The file's values become the options' defaults and each option reads
//! `SWITCHYARD_<NAME>`, so clap applies the precedence and names the option in every error.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};

use super::Cli;

/// Parses the command line with the environment and the config file. Errors name the option,
/// the file key or the environment variable.
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let mut command = with_env(Cli::command());
    if let Some(path) = config_path(&args) {
        command = with_file(command, &path)?;
    }
    let matches: ArgMatches = command.clone().try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}

/// Every named option of serve mode also reads `SWITCHYARD_<ID>` (an option that already reads
/// a variable, such as `DCOS_SERVICE_ACCOUNT_CREDENTIAL`, keeps it).
fn with_env(command: Command) -> Command {
    command.mut_args(|arg| {
        if arg.is_positional() || arg.get_env().is_some() || arg.get_id() == "help" {
            return arg;
        }
        let name = format!("SWITCHYARD_{}", arg.get_id().as_str().to_uppercase());
        arg.env(name)
    })
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
/// `http_port`); an unknown key or a value of a type options cannot take is an error.
fn with_file(mut command: Command, path: &std::path::Path) -> Result<Command, clap::Error> {
    let error = |message: String| {
        clap::Error::raw(
            clap::error::ErrorKind::InvalidValue,
            format!("{}: {message}\n", path.display()),
        )
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))?;
    let table: toml::Table = text.parse().map_err(|e| error(format!("not TOML: {e}")))?;
    for (key, value) in table {
        let id = key.replace('-', "_");
        let known = command
            .get_arguments()
            .any(|a| a.get_id() == id.as_str() && !a.is_positional() && id != "config");
        if !known {
            return Err(error(format!("unknown option `{key}`")));
        }
        let values: Vec<String> = match value {
            toml::Value::Array(items) => items
                .into_iter()
                .map(scalar)
                .collect::<Option<_>>()
                .ok_or_else(|| error(format!("`{key}`: a list may hold only plain values")))?,
            other => {
                vec![scalar(other).ok_or_else(|| error(format!("`{key}`: not a plain value")))?]
            }
        };
        command = command.mut_arg(id, |arg| arg.default_values(values));
    }
    Ok(command)
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
