//! Mistakes on the command line answered with what the user meant: `switchyard routes` with no
//! source names both sources, a mistyped subcommand gets the nearest one, `version` points to
//! `--version`, a subcommand after an option is explained, a mistyped mode stays a mode.

use switchyard::cli::{config, Cli};

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let args = std::iter::once("switchyard").chain(args.iter().copied());
    config::parse(args.map(Into::into).collect())
}

fn error(args: &[&str]) -> (clap::error::ErrorKind, String) {
    let err = parse(args).expect_err("a mistake");
    (err.kind(), err.to_string())
}

#[test]
fn routes_without_a_source_names_both_sources() {
    let (kind, err) = error(&["routes"]);
    assert_eq!(
        kind,
        clap::error::ErrorKind::MissingRequiredArgument,
        "{err}"
    );
    assert!(
        err.contains("--marathon") && err.contains("--apps-file"),
        "{err}"
    );
    assert!(
        err.contains("switchyard routes"),
        "the usage of `routes`: {err}"
    );
    assert!(parse(&["routes", "-m", "http://m:8080"]).is_ok());
    assert!(parse(&["routes", "--apps-file", "a.json"]).is_ok());
}

#[test]
fn a_mistyped_subcommand_gets_the_nearest_one() {
    for (typed, meant) in [
        ("route", "routes"),
        ("healthchek", "healthcheck"),
        ("completion", "completions"),
    ] {
        let (kind, err) = error(&[typed]);
        assert_eq!(kind, clap::error::ErrorKind::InvalidSubcommand, "{err}");
        assert!(
            err.contains(&format!("unrecognized subcommand '{typed}'")),
            "{err}"
        );
        assert!(
            err.contains(&format!("a similar subcommand exists: '{meant}'")),
            "{err}"
        );
        assert!(!err.contains("[sse|poll]'"), "not a bad mode: {err}");
    }
    // A word nearer Marathon-LB's modes stays a bad mode.
    let (kind, err) = error(&["pol", "-m", "http://m:8080"]);
    assert_eq!(kind, clap::error::ErrorKind::InvalidValue, "{err}");
    assert!(err.contains("'poll'"), "{err}");
}

#[test]
fn version_as_a_word_points_to_the_flag() {
    let (kind, err) = error(&["version"]);
    assert_eq!(kind, clap::error::ErrorKind::InvalidSubcommand, "{err}");
    assert!(err.contains("'--version'"), "{err}");
}

#[test]
fn a_subcommand_after_an_option_is_explained() {
    let (_, err) = error(&["--config", "config/switchyard.toml", "routes"]);
    assert!(err.contains("`routes` must come first"), "{err}");
    assert!(!err.contains("similar subcommand"), "{err}");
}
